# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv first.
# TORCH_SPEC pins the torch wheel installed before everything else so that pip never resolves an
# unpinned torch on its own (which pulls several GB of CUDA wheels). On a GPU machine the same pin
# resolves to the CUDA build from PyPI; override it to keep a torch you already have, e.g.
#   make test TORCH_SPEC="torch>=2.3"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test docs demo preview benchmark clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) docs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The API reference and the project's markdown pages; warnings are errors, so a broken reference or an
# autodoc import failure fails `make test` (and CI) too.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

demo: $(STAMP)
	$(BIN)/python -m monai_hsmix.apps.demo

preview: $(STAMP)
	$(BIN)/python -m monai_hsmix.preview --output hsmix_preview.png

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_hsmix.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info docs/_build
