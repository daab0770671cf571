# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-pymesos.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	scripts/install-pymesos.sh $(PY)
	touch $(STAMP)

demo: install
	$(VENV)/bin/mesolite up

# The whole suite, slow end-to-end tests included (CI runs this).
test: install
	$(VENV)/bin/ruff check services tests bench
	$(PY) -m pytest -q -p no:cacheprovider tests

# Everything but the suites marked slow.
test-fast: install
	$(PY) -m pytest -q -m 'not slow' tests

lint: install
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench

bench: install
	$(PY) bench/allocator.py
	$(PY) bench/launch.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
