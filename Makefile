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
# Reproducible installs: on the Python a lock was made for (3.11, what CI runs) every package but torch is
# pinned to constraints/py3.X.txt, the set the suite last passed with, so a release on the index cannot
# break a fresh clone. Other Pythons, and CONSTRAINTS= (empty), resolve setup.cfg's ranges;
# `make test-latest` tests the newest versions those ranges admit, `make lock` refreshes the pins.
PY_MINOR := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
CONSTRAINTS ?= $(wildcard constraints/py$(PY_MINOR).txt)
PIP := -m pip install -q --disable-pip-version-check

.PHONY: install test lint docs demo preview benchmark clean test-latest test-min lock

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP) "$(TORCH_SPEC)"
	$(BIN)/python $(PIP) $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[all,test]"
	@echo "installed .[all,test] $(if $(CONSTRAINTS),pinned by $(CONSTRAINTS),from setup.cfg's ranges (no lock for Python $(PY_MINOR)))"
	touch $(STAMP)

# numba compiles HSMix's CPU kernels on first use (tens of seconds): compile them into its cache now
install: $(STAMP)
	$(BIN)/python -m monai_hsmix.warmup

test: $(STAMP) lint docs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff with pyproject.toml's [tool.ruff] (MONAI's flake8 rules, 120 characters); --no-cache leaves no .ruff_cache.
lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

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

# The newest versions setup.cfg admits, in a venv of their own (the pinned .venv is left alone).
test-latest:
	$(MAKE) test VENV=.venv-latest CONSTRAINTS=

# The lowest versions setup.cfg admits, in a venv of their own: every `>=X` floor of install_requires and of
# the all and test extras becomes `==X.*` (the floor's release series: pip takes its newest patch release,
# and `==X` alone would miss wheels numbered X.0.N), torch included. A floor that fails here is wrong and
# must be raised; one with no wheel for this Python fails at install, which says so too.
MIN_CONSTRAINTS ?= .venv-min-constraints.txt
$(MIN_CONSTRAINTS): setup.cfg
	$(PYTHON) -c 'import configparser, re; c = configparser.ConfigParser(); c.read("setup.cfg"); \
	  o = c["options"]; x = c["options.extras_require"]; \
	  reqs = "\n".join([o["install_requires"], x["all"], x["test"]]); \
	  pins = sorted({re.sub(r"\s*>=\s*(\S+)", r"==\1.*", r.strip()) for r in reqs.splitlines() if ">=" in r and not r.strip().startswith("#")}); \
	  open("$@", "w").write("\n".join(pins) + "\n")'

# torch's floor resolves to a CUDA build on Linux (several GB); on a CPU machine add
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu to the environment.
test-min: $(MIN_CONSTRAINTS)
	$(MAKE) test VENV=.venv-min CONSTRAINTS=$(MIN_CONSTRAINTS) \
	  TORCH_SPEC="$$(grep '^torch==' $(MIN_CONSTRAINTS))"

# Refresh the pins: resolve the ranges afresh, run the suite on them, then freeze what passed.
lock: test-latest
	{ printf '%s\n' "# Versions make install / make test pin on Python $(PY_MINOR): the set the suite last passed with." \
	  "# Regenerate with 'make lock' (resolves setup.cfg's ranges afresh in .venv-latest, tests, then freezes it)." \
	  "# torch is not here: the Makefile's TORCH_SPEC pins it, so a GPU user can keep their own build."; \
	  .venv-latest/bin/python -m pip freeze --exclude-editable \
	  | grep -v -E '^(torch|nvidia-|triton)[=-]'; } > constraints/py$(PY_MINOR).txt.tmp
	mv constraints/py$(PY_MINOR).txt.tmp constraints/py$(PY_MINOR).txt

clean:
	rm -rf $(VENV) .venv-latest .venv-min .venv-min-constraints.txt .pytest_cache .hypothesis *.egg-info docs/_build
