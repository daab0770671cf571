# Sourced by the deploy scripts: one place for the names, addresses and settings they share.
# shellcheck shell=bash
MESOLITE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$MESOLITE_ROOT/deploy/containers.conf}"
export MESOLITE_IMAGE="${MESOLITE_IMAGE:-localhost/mesolite-debian12-systemd:local}"
export MESOLITE_WHEELHOUSE="${MESOLITE_WHEELHOUSE:-$MESOLITE_ROOT/build/wheelhouse/mesolite-wheelhouse.tar}"
# The playa address space: `make cluster` nodes from .10, molecule instances from .100.
MESOLITE_NETWORK="${MESOLITE_NETWORK:-mesolite-playa}"
MESOLITE_SUBNET="10.141.141.0/24"
MESOLITE_GATEWAY="10.141.141.1"
# The venv's ansible, molecule and linters, and molecule's own calls to ansible-config.
export PATH="$MESOLITE_ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$MESOLITE_ROOT/ansible.cfg"

# Create the playa network unless it exists (molecule and the cluster share it; neither deletes it while in use).
ensure_network() {
  podman network exists "$MESOLITE_NETWORK" && return 0
  podman network create --subnet "$MESOLITE_SUBNET" --gateway "$MESOLITE_GATEWAY" \
    --label mesolite=playa "$MESOLITE_NETWORK" >/dev/null
}

# Remove the network only when this project created it and no container is left on it.
remove_network_if_unused() {
  podman network exists "$MESOLITE_NETWORK" || return 0
  [ "$(podman network inspect -f '{{index .Labels "mesolite"}}' "$MESOLITE_NETWORK")" = playa ] || return 0
  if [ -z "$(podman ps -a --filter network="$MESOLITE_NETWORK" -q)" ]; then
    podman network rm "$MESOLITE_NETWORK" >/dev/null
  fi
}

# The HAProxy bridge service may not exist yet in this checkout: then the haproxy plays and checks are left out,
# and the scripts say so.
bridge_available() {
  "$MESOLITE_ROOT/.venv/bin/mesolite" haproxy-bridge --help >/dev/null 2>&1
}
