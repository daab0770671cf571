#!/usr/bin/env bash
# A Docker-compatible engine for the agent's Docker containerizer, without Docker: rootful podman serving the Docker
# API on a unix socket of the project's own, plus a small local image (no registry is ever pulled from).
#
#   scripts/setup-podman.sh start   # configure, build the image once, start the API service; prints DOCKER_HOST=...
#   scripts/setup-podman.sh stop    # stop the API service this script started
#   scripts/setup-podman.sh env     # print the environment podman commands need to see the same storage
#
# Everything lives under $MESOLITE_PODMAN_DIR (default ~/.cache/mesolite/podman: storage and the image survive
# between runs) and $MESOLITE_PODMAN_RUN (default /run/mesolite-podman: socket, runtime state). The configuration
# goes through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, so the host's own podman setup is left alone:
# runtime runc and the cgroupfs manager (crun and systemd cgroups fail on hosts like CI containers), and ulimits
# no higher than the hard limits a container may be given here.
set -euo pipefail

STATE=${MESOLITE_PODMAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mesolite/podman}
RUN=${MESOLITE_PODMAN_RUN:-/run/mesolite-podman}
SOCKET=$RUN/podman.sock
IMAGE=${MESOLITE_IMAGE:-localhost/mesolite-busybox:latest}
export CONTAINERS_CONF=$STATE/containers.conf
export CONTAINERS_STORAGE_CONF=$STATE/storage.conf

configure() {
  mkdir -p "$STATE/storage" "$RUN/storage" "$RUN/tmp"
  cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$RUN/tmp"
EOF
  cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$RUN/storage"
EOF
}

build_image() {
  if podman image exists "$IMAGE"; then return 0; fi
  local busybox=/bin/busybox rootfs  # Debian's busybox-static: one static binary, so the image needs no libc
  [ -x "$busybox" ] || { echo "$busybox is missing (apt-get install busybox-static)" >&2; exit 2; }
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev,mnt/mesos/sandbox}
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  tar -C "$rootfs" -c . |
    podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$IMAGE" >"$RUN/import.log" 2>&1 ||
    { cat "$RUN/import.log" >&2; rm -rf "$rootfs"; exit 1; }
  rm -rf "$rootfs"
}

running() {
  curl -sf --max-time 2 --unix-socket "$SOCKET" http://podman/_ping >/dev/null 2>&1 || return 1
  # A service whose working directory was deleted answers pings but can start no container: replace it.
  local pid
  pid=$(cat "$RUN/service.pid" 2>/dev/null) || return 0
  if [ -e "/proc/$pid" ] && [[ "$(readlink "/proc/$pid/cwd")" == *" (deleted)" ]]; then
    kill "$pid" 2>/dev/null || true
    sleep 0.5
    return 1
  fi
}

start() {
  command -v podman >/dev/null || { echo "podman is not installed (apt-get install podman runc busybox-static)" >&2; exit 2; }
  configure
  build_image
  local started=0
  if ! running; then
    # From a directory that outlives the caller: the service's conmon children inherit its working directory,
    # and start no container once that directory (a test's temporary checkout, say) is gone.
    (cd "$RUN" && exec setsid podman system service --time=0 "unix://$SOCKET" >"$RUN/service.log" 2>&1 </dev/null) &
    echo $! >"$RUN/service.pid"
    for _ in $(seq 100); do running && break; sleep 0.1; done
    running || { echo "podman system service did not come up:" >&2; cat "$RUN/service.log" >&2; exit 1; }
    started=1
  fi
  echo "DOCKER_HOST=unix://$SOCKET"
  echo "MESOLITE_IMAGE=$IMAGE"
  echo "STARTED=$started"
}

stop() {
  if [ -f "$RUN/service.pid" ]; then
    kill "$(cat "$RUN/service.pid")" 2>/dev/null || true
    rm -f "$RUN/service.pid"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) echo "CONTAINERS_CONF=$CONTAINERS_CONF"; echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
