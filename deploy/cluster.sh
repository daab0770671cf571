#!/usr/bin/env bash
# The local "VM" cluster: `deploy/cluster.sh up` (make cluster) starts systemd containers on the playa network
# (10.141.141.0/24), runs playbooks/site.yml against them over the podman connection, deploys the demo and checks
# it from this host; `deploy/cluster.sh down` (make cluster-down) removes only what `up` created.
set -euo pipefail
source "$(dirname "$0")/env.sh"
inventory="$MESOLITE_ROOT/deploy/cluster/hosts.yml"
nodes=(mesolite-node1:10.141.141.10 mesolite-node2:10.141.141.11)

start_nodes() {
  for node in "${nodes[@]}"; do
    name="${node%%:*}" ip="${node#*:}"
    if podman container exists "$name"; then
      podman start "$name" >/dev/null
      continue
    fi
    podman run -d --name "$name" --hostname "${name#mesolite-}" --label mesolite=cluster \
      --network "$MESOLITE_NETWORK" --ip "$ip" --systemd=always "$MESOLITE_IMAGE" /sbin/init >/dev/null
  done
  for node in "${nodes[@]}"; do
    name="${node%%:*}"
    for _ in $(seq 60); do
      state="$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)"
      case "$state" in running | degraded) break ;; esac
      sleep 1
    done
    echo "$name: systemd $state"
  done
}

# What a user checks first: the DNS names the leader, Marathon answers, the demo app answers through HAProxy.
check() {
  local leader
  leader="$(dig +short +time=2 +tries=3 @10.141.141.10 leader.mesos A)"
  [ "$leader" = 10.141.141.10 ] || { echo "dig leader.mesos: '$leader'" >&2; return 1; }
  echo "dig @10.141.141.10 leader.mesos -> $leader"
  curl -fsS --max-time 5 http://10.141.141.10:8080/v2/info >/dev/null
  echo "Marathon answers on 10.141.141.10:8080"
  if ! bridge_available; then
    echo "WARNING: no haproxy-bridge: HAProxy not checked" >&2
    return 0
  fi
  for _ in $(seq 60); do
    if reply="$(curl -fsS --max-time 3 http://10.141.141.10:10000/ 2>/dev/null)"; then
      echo "HAProxy 10.141.141.10:10000 -> $reply"
      return 0
    fi
    sleep 2
  done
  echo "the demo app is not reachable through HAProxy on 10.141.141.10:10000" >&2
  return 1
}

up() {
  "$MESOLITE_ROOT/deploy/build-image.sh"
  "$MESOLITE_ROOT/deploy/build-wheelhouse.sh"
  ensure_network
  start_nodes
  local skip=()
  if ! bridge_available; then
    echo "WARNING: 'mesolite haproxy-bridge' does not exist here: deploying without the haproxy plays" >&2
    skip=(--skip-tags haproxy)
  fi
  ansible-playbook -i "$inventory" "${skip[@]}" "$MESOLITE_ROOT/playbooks/site.yml"
  ansible-playbook -i "$inventory" "$MESOLITE_ROOT/playbooks/demo.yml"
  check
}

down() {
  for node in "${nodes[@]}"; do
    name="${node%%:*}"
    if podman container exists "$name" \
      && [ "$(podman inspect -f '{{index .Config.Labels "mesolite"}}' "$name")" = cluster ]; then
      podman rm -f -t 5 "$name" >/dev/null
      echo "removed $name"
    fi
  done
  remove_network_if_unused
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  *) echo "usage: $0 up|down|check" >&2; exit 2 ;;
esac
