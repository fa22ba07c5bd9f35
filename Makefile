# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slurm test-all bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch/torchvision/torchaudio are pinned on one line so pip takes the local wheels together.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/abaw demo $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

# The tests marked `slurm`, on a one-node SLURM cluster set up (as root) by .ci/slurm-up.sh.
test-slurm: install
	bash .ci/slurm-up.sh
	$(BIN)/python -m pytest -m slurm $(ARGS)

test-all: install
	$(BIN)/python -m pytest -m "" $(ARGS)

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) abaw-work
