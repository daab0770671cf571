#!/usr/bin/env bash
# The seed 004 demo's images, built from Debian packages (no registry, no Docker): Redis (Debian's redis-server) and
# the Redis frontend (deploy/demo-images/frontend.py on Debian's python3.11-minimal).
#
#   scripts/build-demo-images.sh [OUT_DIR]     # default: build/images
#
# Writes `docker save` tarballs for the Mesos containerizer's --docker_registry directory:
#   OUT_DIR/localhost/mesolite/redis:7.tar               image localhost/mesolite/redis:7
#   OUT_DIR/localhost/mesolite/redis-frontend:latest.tar image localhost/mesolite/redis-frontend:latest
# and, when podman is there, loads both into the project's podman storage (scripts/setup-podman.sh), where the Docker
# containerizer (--containerizers=mesos,docker) finds them under the same names. Needs root and apt's package lists;
# the .deb files are cached in ~/.cache/mesolite/debs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build/images}
PYTHON=${PYTHON:-python3}
MKIMAGE=("$PYTHON" "$ROOT/scripts/mkimage.py")
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
  apt-get update -q
fi

"${MKIMAGE[@]}" debian "$OUT/localhost/mesolite/redis:7.tar" --name localhost/mesolite/redis:7 \
  --package redis-server --env "$PATH_ENV" \
  --cmd '["redis-server", "--protected-mode", "no", "--dir", "/tmp"]' --check '["redis-server", "--version"]'

"${MKIMAGE[@]}" debian "$OUT/localhost/mesolite/redis-frontend:latest.tar" \
  --name localhost/mesolite/redis-frontend:latest --package python3.11-minimal --env "$PATH_ENV" \
  --file "$ROOT/deploy/demo-images/frontend.py:/app/frontend.py" \
  --cmd '["python3.11", "/app/frontend.py"]' --check '["python3.11", "-c", "import socket, threading, urllib.parse"]'

if command -v podman >/dev/null; then
  started=$("$ROOT/scripts/setup-podman.sh" start | sed -n 's/^STARTED=//p')  # configures the project's storage
  trap '[ "$started" != 1 ] || "$ROOT/scripts/setup-podman.sh" stop' EXIT
  eval "$("$ROOT/scripts/setup-podman.sh" env | sed 's/^/export /')"
  for image in "localhost/mesolite/redis:7.tar" "localhost/mesolite/redis-frontend:latest.tar"; do
    podman load -q <"$OUT/$image"
  done
fi
echo "demo images in $OUT: localhost/mesolite/redis:7, localhost/mesolite/redis-frontend:latest"
