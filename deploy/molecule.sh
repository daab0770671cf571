#!/usr/bin/env bash
# Run a molecule scenario offline: `deploy/molecule.sh playa [test|converge|verify|destroy]` for the single-node
# playa site (deploy/molecule/playa), or `deploy/molecule.sh <role> [...]` for a role's molecule/default.
# Builds what the scenario needs first (image, wheelhouse, network); never `molecule reset`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
target="${1:?usage: deploy/molecule.sh playa|<role> [molecule command]}"
shift
[ $# -gt 0 ] || set -- test

"$MESOLITE_ROOT/deploy/build-image.sh"
[ -s "$MESOLITE_WHEELHOUSE" ] && [ "${MESOLITE_REBUILD_WHEELHOUSE:-1}" = 0 ] || "$MESOLITE_ROOT/deploy/build-wheelhouse.sh"
ensure_network

if ! bridge_available; then
  echo "WARNING: 'mesolite haproxy-bridge' does not exist here: the playa node is converged without the haproxy group" >&2
  export MESOLITE_PLAYA_HAPROXY_GROUP=haproxy_unavailable
fi
if [ "$target" = playa ]; then
  cd "$MESOLITE_ROOT/deploy"
  scenario=playa
else
  cd "$MESOLITE_ROOT/roles/$target"
  scenario=default
fi
rc=0
molecule "$@" -s "$scenario" || rc=$?
remove_network_if_unused
exit $rc
