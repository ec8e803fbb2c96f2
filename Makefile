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
# Test workers (pytest-xdist; each test file runs whole on one worker, so a notebook's
# cells stay in order). Each worker runs torch on one thread: two workers on two cores
# beat one worker with two threads (7.4 → 5.1 min here). TEST_JOBS=0 runs serially.
TEST_JOBS ?= auto

BIN := $(VENV)/bin
STAMP := $(VENV)/.coursekit-installed

.PHONY: setup data lab test course bench lint clean

setup: $(STAMP) data

# Re-install only when the package's dependencies or the chosen torch change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@echo "$(TORCH_SPEC)" > $@

data: $(STAMP)
	@$(BIN)/coursekit data fetch

# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.default_url=/lab/tree/lectures/00_index.ipynb $(ROOT_FLAG) $(LAB_ARGS)

test: setup
	@start=$$(date +%s); \
	OMP_NUM_THREADS=1 COURSEKIT_SCALE=ci $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS); \
	status=$$?; \
	echo "whole suite: $$(( $$(date +%s) - start )) s"; exit $$status

course: setup
	$(BIN)/coursekit course --scale $(SCALE) -o build

bench: setup
	@mkdir -p build
	$(BIN)/python benchmarks/run_all.py build/bench.json

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache
