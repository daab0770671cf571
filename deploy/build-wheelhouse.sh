#!/usr/bin/env bash
# Build the wheelhouse the `mesolite` role installs from: the project and every dependency as wheels, in one tar
# (build/wheelhouse/mesolite-wheelhouse.tar), so target hosts need no package index.
#
# The tar is reproducible for unchanged sources (fixed mtimes, sorted entries): its checksum is the release id the
# role deploys, so re-running a playbook without code changes changes nothing on the hosts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
out="${MESOLITE_WHEELHOUSE:-$root/build/wheelhouse/mesolite-wheelhouse.tar}"
wheels="$(dirname "$out")/wheels"

rm -rf "$wheels"
mkdir -p "$wheels"
export SOURCE_DATE_EPOCH=315532800
"$python" -m pip wheel -q --wheel-dir "$wheels" "$root" >"$(dirname "$out")/pip-wheel.log" 2>&1 \
  || { cat "$(dirname "$out")/pip-wheel.log"; exit 1; }
# The role unpacks with `creates: .complete`: the marker comes last, so a cut-short unpack is redone.
touch -d "@$SOURCE_DATE_EPOCH" "$wheels/.complete"
find "$wheels" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar -C "$wheels" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -cf "$out.tmp" $(cd "$wheels" && ls -A | grep -v '^\.complete$') .complete
mv "$out.tmp" "$out"
echo "$out ($(ls "$wheels" | wc -l) wheels, sha1 $(sha1sum "$out" | cut -c1-12))"
