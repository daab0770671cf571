#!/usr/bin/env bash
# Install the unmodified Mesos CLI from PyPI (`avmesos-cli`, the acceptance tests' operator client) on Python 3.11.
# avmesos-cli 1.3.0 declares Requires-Python >=3.12 although its code runs on 3.11, and the only release pip would
# pick on 3.11 (1.0.0) cannot run `task exec` (it calls an unimported `mesos.http`). So install 1.3.0 ignoring the
# version marker, without its build-time extras (PyInstaller, tox), and add the libraries it imports at run time.
set -euo pipefail
PY=${1:-.venv/bin/python}
if "$PY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("avmesos-cli") != "1.3.0")' 2>/dev/null; then exit 0; fi
"$PY" -m pip install -q --no-deps --ignore-requires-python 'avmesos-cli==1.3.0'
"$PY" -m pip install -q 'docopt>=0.6.2' 'toml>=0.9.2' 'ujson>=5.8.0' 'tenacity>=4.12.0' 'requests>=2.30.0' 'kazoo>=2.5.0'
"$PY" -c 'import avmesos.cli, avmesos.http; print("avmesos-cli", avmesos.cli.__file__)'
