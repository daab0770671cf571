# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo demo-images test test-slow test-all lint bench clean cluster cluster-down lint-deploy

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-pymesos.sh scripts/install-mesos-cli.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	scripts/install-pymesos.sh $(PY)
	scripts/install-mesos-cli.sh $(PY)
	touch $(STAMP)

demo: install
	$(VENV)/bin/mesolite up

# Seed 004's Redis and frontend images from Debian packages (scripts/build-demo-images.sh; root): tarballs in
# build/images for --docker_registry, and loaded into podman for the Docker containerizer.
demo-images:
	scripts/build-demo-images.sh build/images

# Debian packages the tests drive for real (ZooKeeper, dig, haproxy, podman, Chromium, ...).
system-deps:
	scripts/install-system-deps.sh

# Integration tests run real processes on a small shared machine; a test that fails on timing gets two more
# tries (RERUNS=0 to see every flake).
RERUNS ?= 2
PYTEST := $(PY) -m pytest -q -p no:cacheprovider --reruns $(RERUNS) --reruns-delay 1

# The default run: lint and every test not marked slow (unit, integration, browser, deployment lint).
test: system-deps install lint
	$(PYTEST) -m 'not slow' tests

# The slow end-to-end suites (containers as VMs, failovers, full browser flows); CI runs them after `make test`.
test-slow: system-deps install
	$(PYTEST) -m slow tests

test-all: test test-slow

# Lint: ruff (rules in pyproject.toml, unused noqa refused), ruff's formatting, and mypy over services/.
lint: install
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/allocator.py
	$(PY) bench/launch.py
	$(PY) bench/dns.py
	$(PY) bench/failover.py
	$(PY) bench/marathon.py
	$(PY) bench/containers.py
	$(PY) bench/haproxy.py

# The podman "VM" cluster on 10.141.141.0/24 (deploy/cluster.sh; root and podman needed), and its removal.
cluster: install
	deploy/cluster.sh up

cluster-down:
	deploy/cluster.sh down

# ansible-lint (production profile), yamllint, `vagrant validate` and `systemd-analyze verify` of the units.
lint-deploy: install
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e/deploy/test_lint.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
