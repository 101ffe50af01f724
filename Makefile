# The README's two commands: `make demo` (main job on the embedded default) and `make test`.
# Both create/refresh .venv first. torch is pinned to the CPU build on the same pip command line, so no
# dependency can pull a CUDA build in: pip fails instead of upgrading it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The maze recipe end to end on CPU: data -> SFT (tiny) -> SDE-GRPO with Early-Step Focus -> eval, then the
# SFT-vs-GRPO table. Everything lands in runs/ (MLflow stores in each run folder: `mlflow ui --backend-store-uri
# sqlite:///runs/maze/grpo_tiny/mlflow.db`).
DATA ?= runs/data/maze_tiny
VR := $(VENV)/bin/videoreason

demo: $(STAMP)
	$(VR) data generate --task maze --difficulty tiny --num 2000 --split train --out $(DATA)
	$(VR) data generate --task maze --difficulty tiny --num 16 --split val --out $(DATA)
	$(VR) data generate --task maze --difficulty tiny --num 200 --split test --out $(DATA)
	$(VR) fit --config configs/maze/sft_tiny.yaml --data.init_args.root $(DATA)
	$(VR) eval --ckpt runs/maze/sft_tiny/adapter --data $(DATA) --split test
	$(VR) fit --config configs/maze/grpo_tiny.yaml --data.init_args.root $(DATA)
	$(VR) eval --ckpt runs/maze/grpo_tiny/adapter --data $(DATA) --split test
	$(PY) -m videoreason.eval.compare SFT=runs/maze/sft_tiny/eval/test GRPO=runs/maze/grpo_tiny/eval/test

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
