#!/usr/bin/env bash
# The Debian packages the test suite drives for real (ZooKeeper, dig, dnsperf, haproxy, podman, Chromium, ...).
# Idempotent: only what is missing is installed, and the package lists are refreshed only then. Needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  python3-venv curl make
  zookeeper            # HA: masters, Marathon, Chronos, Mesos-DNS detection
  dnsutils dnsperf     # dig in the Mesos-DNS tests, dnsperf in bench/dns.py
  haproxy              # the HAProxy bridge
  podman runc busybox-static debootstrap  # Docker tasks through podman, the deployment's systemd "VMs"
  docker-registry apache2-utils  # image tests: a v2 registry on loopback with htpasswd basic auth
  chromium             # browser tests of the web UIs (Playwright drives /usr/bin/chromium)
  vagrant systemd      # vagrant validate, systemd-analyze verify
  prometheus           # promtool checks every service's /metrics/prometheus; the prometheus role
)
need=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: sudo $0)" >&2
  exit 1
fi
apt-get update -q
apt-get install -y -q "${need[@]}"
