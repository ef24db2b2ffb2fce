PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ngsildclient pins an old httpx, so the interoperability test runs it from its own venv
INTEROP := .venv-interop
INTEROP_STAMP := $(INTEROP)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(INTEROP_STAMP):
	test -d $(INTEROP) || $(PY) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install -q 'ngsildclient==0.5.2'
	touch $(INTEROP_STAMP)

demo: $(STAMP)
	$(BIN)/maeul demo

test: $(STAMP) $(INTEROP_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: $(STAMP)
	$(BIN)/python bench/hub.py

clean:
	rm -rf $(VENV) $(INTEROP) build *.egg-info
