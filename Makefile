# Two commands for a user: `make demo` and `make test`. Both set up .venv on their own.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# A Python >= 3.12: first on PATH, then in pyenv's versions folder.
FIND_PYTHON = for c in python3.13 python3.12 python3 python; do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit 0; }; \
	done; \
	root=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
	for p in $$(ls -d $$root/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV); do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit 0; }; \
	done; exit 1

# The PyTorch peer of benchmarks/bench_llc_torch.py lives in its own venv (torch is
# never a dependency of ours): any Python torch has wheels for; the pinned release is
# the one known to work here (override: make bench-peers TORCH_SPEC='torch==2.9.1').
TORCH_PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
TORCH_STAMP := .venv-torch/.installed

.PHONY: setup demo test bench bench-peers lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  base=$$($(FIND_PYTHON)) || { echo "error: no Python >= 3.12 found on PATH or under pyenv; install one and retry" >&2; exit 1; }; \
	  echo "creating $(VENV) with $$base"; $$base -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/surf demo --force

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	-@$(MAKE) --no-print-directory bench-peers || echo "PyTorch peer unavailable: its benchmark row will say so"
	$(PY) benchmarks/run_all.py

bench-peers: $(TORCH_STAMP)

$(TORCH_STAMP):
	$(TORCH_PYTHON) -m venv .venv-torch
	.venv-torch/bin/python -m pip install --quiet '$(TORCH_SPEC)' numpy
	@touch $(TORCH_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-torch runs .pytest_cache
