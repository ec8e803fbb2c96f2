# Two commands do all the set-up: `make lab` and `make test`. Both run `make setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# The PyTorch build to install. The default is the CPU build (fast, small); a GPU
# user picks a CUDA build, e.g. `make setup TORCH_SPEC="torch>=2.2,<3"`.
TORCH_SPEC ?= torch==2.13.0
SCALE ?= ci
# Extra arguments for `jupyter lab`, e.g. LAB_ARGS="--no-browser --port=8899".
LAB_ARGS ?=
PYTEST_ARGS ?=
# Tests marked `headline` replay a lecture's headline for a seed its notebook does not run (seed 1):
# each trains a lecture's experiment again, ~2 min of the 10-min CI budget, so `make test` leaves them
# to `make headlines` and `make margins` (seeds 0-4 through the notebooks). PYTEST_MARKS= runs all.
PYTEST_MARKS ?= not headline
# Torch threads per test worker (one per worker on 2 cores is fastest); OMP_NUM_THREADS=2 make test
# checks that nothing depends on it.
OMP_NUM_THREADS ?= 1
# Test workers (pytest-xdist; each test file runs whole on one worker, so a notebook's
# cells stay in order): as many as the cores hold at OMP_NUM_THREADS threads each. Two
# workers on two cores beat one worker with two threads (7.4 → 5.1 min here), and more
# threads than cores make OpenMP threads wait for each other (a lecture cell: 20 s → 120 s).
# TEST_JOBS=0 runs serially.
TEST_JOBS ?= $(shell n=$$(( $$(nproc) / $(OMP_NUM_THREADS) )); echo $$(( n > 0 ? n : 1 )))

BIN := $(VENV)/bin
STAMP := $(VENV)/.coursekit-installed

.PHONY: setup data sandbox browser lab test headlines ui course site slides bench margins lint clean

setup: $(STAMP) data sandbox browser

# Re-install only when the package's dependencies or the chosen torch change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@echo "$(TORCH_SPEC)" > $@

data: $(STAMP)
	@$(BIN)/coursekit data fetch

# The grading sandbox (bubblewrap): installed as root with apt, then checked.
sandbox: $(STAMP)
	@$(BIN)/python -m coursekit.tooling.grading.sandbox

# Debian's Chromium and its driver, for the real-browser test (tests/ui): installed as root with apt where
# missing; elsewhere that test skips and says why.
browser: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || $(BIN)/python -m coursekit.core.debian chromium chromium-driver \
	  || echo "no Chromium: the real-browser test (tests/ui) will skip"

# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.default_url=/lab/tree/lectures/00_index.ipynb $(ROOT_FLAG) $(LAB_ARGS)

test: setup
	@start=$$(date +%s); \
	OMP_NUM_THREADS=$(OMP_NUM_THREADS) COURSEKIT_SCALE=ci $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile \
	  $(if $(PYTEST_MARKS),-m "$(PYTEST_MARKS)") $(PYTEST_ARGS); \
	status=$$?; \
	echo "whole suite: $$(( $$(date +%s) - start )) s"; exit $$status

# Every lecture in Chromium on JupyterLab (make test runs two of them): Run All, every control moved.
ui: setup
	COURSEKIT_UI=all OMP_NUM_THREADS=$(OMP_NUM_THREADS) $(BIN)/python -m pytest -n 0 tests/ui $(PYTEST_ARGS)

# Every lecture's headline for seed 1 (COURSEKIT_SEEDS=0,1,2 for more), outside CI's budget.
headlines: setup
	OMP_NUM_THREADS=$(OMP_NUM_THREADS) COURSEKIT_SCALE=ci $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile \
	  -m headline $(PYTEST_ARGS)

course: setup
	$(BIN)/coursekit course --scale $(SCALE) -o build

# The static website: every lecture executed at SCALE, the labs as released, the docs (MkDocs, offline).
site: setup
	$(BIN)/coursekit site --scale $(SCALE) -o build/site

# Static reveal.js slides of every lecture executed at SCALE (reuses `make course`'s copies when fresh).
# Live slides: `make lab`, open a lecture, press RISE's button. REVEAL_PREFIX=<url or folder of reveal.js 4>.
REVEAL_PREFIX ?=
slides: setup
	$(BIN)/coursekit slides --scale $(SCALE) -o build/slides $(if $(REVEAL_PREFIX),--reveal-prefix $(REVEAL_PREFIX))

bench: setup
	@mkdir -p build
	$(BIN)/python benchmarks/run_all.py build/bench.json

# Each trained check's margin over seeds 0-4 and 1 and 2 threads (about 35 min on 2 cores; not in CI).
margins: setup
	$(BIN)/python tests/margins.py -o build/margins

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache
