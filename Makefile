# Loopline — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BENCH  := .venv-bench

.PHONY: demo test lint bench format clean vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$*]"
	@touch $@

## demo: install Loopline in .venv and run the whole loop on the embedded default
demo: $(VENV)/.installed-examples
	$(BIN)/python examples/demo.py

## test: install the dev extras and run the whole suite in parallel (tests of one xdist_group on one worker, in turn)
test: $(VENV)/.installed-dev
	$(BIN)/pytest -n auto --dist loadgroup -q

## lint: ruff (lint + format check), mypy strict on src/, import-linter layer contracts
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix .

## bench: side-by-side benchmarks against the peers, installed in their own venv
$(BENCH)/.installed: benchmarks/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/pip install -q --upgrade pip
	$(BENCH)/bin/pip install -q -r benchmarks/requirements.txt
	$(BENCH)/bin/pip install -q -e ".[sklearn,data,monitoring,features,redis,postgres,s3]"
	@touch $@

# A peer whose pins clash with the others' gets a venv of its own from requirements-<module>.txt.
PEER_REQS := $(wildcard benchmarks/requirements-*.txt)
PEER_VENVS := $(patsubst benchmarks/requirements-%.txt,.venv-bench-%/.installed,$(PEER_REQS))

.venv-bench-%/.installed: benchmarks/requirements-%.txt
	$(PYTHON) -m venv .venv-bench-$*
	.venv-bench-$*/bin/pip install -q --upgrade pip
	.venv-bench-$*/bin/pip install -q -r $<
	@touch $@

bench: $(BENCH)/.installed $(PEER_VENVS)
	$(BENCH)/bin/python -m benchmarks

## vendor: re-download the front-end files the servers ship, from registry.npmjs.org: the web UI's
## htmx and uPlot (checked against VENDOR.json's hashes) and the Swagger UI that /docs serves
SWAGGER_UI ?= latest
vendor:
	$(PYTHON) tools/vendor_ui.py
	$(PYTHON) tools/vendor_swagger_ui.py $(SWAGGER_UI)

clean:
	rm -rf $(VENV) $(BENCH) .venv-bench-* .loopline .pytest_cache .mypy_cache .ruff_cache
