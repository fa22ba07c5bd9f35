# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slurm test-all bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Exact versions from constraints.txt (pyproject.toml only declares the ranges that work); torch,
# torchvision and torchaudio are installed on one line so pip takes the local wheels together.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision torchaudio
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/abaw demo $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

# The tests marked `slurm`, on a two-node SLURM cluster set up on this machine (as root) by .ci/slurm-up.sh.
test-slurm: install
	bash .ci/slurm-up.sh
	$(BIN)/python -m pytest -m slurm $(ARGS)

test-all: install
	$(BIN)/python -m pytest -m "" $(ARGS)

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) abaw-work
