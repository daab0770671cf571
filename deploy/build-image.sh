#!/usr/bin/env bash
# Build the Debian 12 image with systemd as PID 1 that stands in for a VM in molecule and `make cluster`.
#
# No container registry is reachable, so the image is made from scratch: debootstrap from the Debian mirror apt
# already uses, then `podman import`. The packages the roles install with apt (ZooKeeper, HAProxy, python3-venv)
# are baked in, so converging needs no package index; the rootfs tarball is cached outside the repository, so a
# re-run only imports it (seconds) and an existing image is left alone (instant).
#
# Usage: deploy/build-image.sh [--force]      (env: MESOLITE_IMAGE, MESOLITE_CACHE_DIR, MESOLITE_DEBIAN_MIRROR)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
image="${MESOLITE_IMAGE:-localhost/mesolite-debian12-systemd:local}"
cache="${MESOLITE_CACHE_DIR:-/var/cache/mesolite}"
# Bump when the package list below changes, so a stale cached rootfs is not reused.
recipe=4
tarball="$cache/debian12-systemd-rootfs-r$recipe.tar"
base_packages=(systemd systemd-sysv dbus python3 python3-venv python3-apt iproute2 procps ca-certificates sudo)
service_packages=(zookeeper zookeeperd haproxy)

force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" = 0 ] && podman image exists "$image" \
  && [ "$(podman image inspect -f '{{index .Labels "mesolite.recipe"}}' "$image")" = "$recipe" ]; then
  echo "image $image exists"
  exit 0
fi

# The mirror apt uses here (deb822 `URIs:` or one-line `deb URL bookworm`): the only Debian source reachable.
debian_mirror() {
  local uri
  uri="$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')"
  [ -n "$uri" ] || uri="$(grep -hE '^deb +[^ ]+ +bookworm ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    2>/dev/null | head -1 | awk '{print $2}')"
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
  mirror="${MESOLITE_DEBIAN_MIRROR:-$(debian_mirror)}"
  mkdir -p "$cache"
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  cleanup() {
    if mountpoint -q "$rootfs/proc"; then umount -l "$rootfs/proc"; fi
    rm -rf "$rootfs"
  }
  trap cleanup EXIT
  echo "debootstrap bookworm from $mirror into $rootfs"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${base_packages[*]}")" bookworm "$rootfs" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || { tail -30 "$cache/debootstrap.log"; exit 1; }
  # Daemons must not start inside the chroot while packages are configured.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" apt-get install -y -q --no-install-recommends "${service_packages[@]}" >>"$cache/debootstrap.log" 2>&1 \
    || { tail -30 "$cache/debootstrap.log"; exit 1; }
  umount "$rootfs/proc"
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" apt-get clean
  # A container is not a VM: units that need real hardware or a console only fail and slow boot down.
  for unit in systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount getty@tty1.service \
    console-getty.service systemd-remount-fs.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  # The roles enable what they configure; packaged services stay off until then.
  chroot "$rootfs" systemctl disable zookeeper.service haproxy.service >/dev/null 2>&1 || true
  : >"$rootfs/etc/machine-id"
  echo "mesolite" >"$rootfs/etc/hostname"
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

podman import --change 'CMD ["/sbin/init"]' --change 'ENV container=podman' \
  --change "LABEL mesolite.recipe=$recipe" "$tarball" "$image" >/dev/null
echo "image $image imported from $tarball"
