# fsmw: `make demo` runs the example on a local store; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STORE  ?= demo-store
WORKERS ?= 3

.PHONY: demo test clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(STORE)
	PYTHON=$(PY) sh examples/run_local.sh $(WORKERS) $(STORE)

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) $(STORE) build *.egg-info .pytest_cache
