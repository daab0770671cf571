#!/usr/bin/env bash
# Install the unmodified PyPI pymesos (the acceptance tests' real scheduler client) on Python >= 3.11.
# Its http-parser dependency ships pre-generated Cython C that no longer builds on 3.11, but pymesos works with the
# package's pure-Python parser: install pymesos without dependencies, then copy http_parser's Python sources only.
set -euo pipefail
PY=${1:-.venv/bin/python}
if "$PY" -c 'import pymesos, http_parser.http' 2>/dev/null; then exit 0; fi
"$PY" -m pip install -q --no-deps 'pymesos==0.3.15'
"$PY" -m pip install -q six addict kazoo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: 'http-parser==0.9.0' -d "$tmp"
tar -xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/http_parser"
cp "$tmp"/http-parser-0.9.0/http_parser/*.py "$site/http_parser/"
"$PY" -c 'import pymesos, http_parser.http; print("pymesos", pymesos.__file__)'
