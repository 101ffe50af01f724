# The README's two commands: `make demo` (main job on the embedded default) and `make test`.
# Both create/refresh .venv first. torch is pinned to the CPU build on the same pip command line, so no
# dependency can pull a CUDA build in: pip fails instead of upgrading it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
# a CUDA build: make demo TORCH=torch==2.13.0+cu128 PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cu128"
PIP_ARGS ?=
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIP_ARGS) "$(TORCH)" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The fair comparison on CPU (videoreason/recipe.py), TrapField: data -> the packaged SFT model trained to its
# validation plateau (videoreason/pretrained/trapfield_plateau) -> SDE-GRPO with Early-Step Focus (20 steps) and,
# for the same wall time, more plain SFT from the same model (sft_more) -> eval of the three on 200 held-out 5x5
# fields and on 100 larger 6x6 ones (out of distribution), ending with the tables with 95% bootstrap intervals and
# the paired GRPO - SFT differences. Everything lands in $(RECIPE) (results.md), its MLflow runs in runs/mlflow.db
# (`mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`, experiment recipe/trapfield); a rerun resumes
# (--reuse true keeps finished phases). The maze: `videoreason recipe --task maze`.
RECIPE ?= runs/recipe/trapfield
VR := $(VENV)/bin/videoreason

demo: $(STAMP)
	$(VR) recipe --task trapfield --ablate [sft_more] --ood true --out $(RECIPE) --reuse true

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not gpu and not distributed" $(PYTEST_ARGS)

# Slow and multi-process tests; exit code 5 (none collected) is not a failure.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m "(slow or distributed) and not gpu" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no slow tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check videoreason tests benchmarks examples

clean:
	rm -rf $(VENV) runs .pytest_cache
