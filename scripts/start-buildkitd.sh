#!/usr/bin/env bash
# Starts a local buildkitd (root, runc) for development and prints the
# BUILDKIT_HOST to export. hyperfork starts its own when build.buildkit and
# BUILDKIT_HOST are empty; this is for running one by hand, e.g. to share it
# between several checkouts.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${BUILDKITD_ROOT:-/var/lib/hyperfork-buildkitd}"
sock="${BUILDKITD_SOCK:-/run/hyperfork-buildkitd.sock}"
command -v runc >/dev/null || { echo "runc is missing: apt-get install -y runc" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "buildkitd with runc needs root" >&2; exit 1; }
bin=$(go tool -n buildkitd)
mkdir -p "$root"
nohup "$bin" --root "$root" --addr "unix://$sock" --oci-worker=true --containerd-worker=false \
  >"$root/buildkitd.log" 2>&1 &
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
[ -S "$sock" ] || { echo "buildkitd did not start; see $root/buildkitd.log" >&2; exit 1; }
echo "export BUILDKIT_HOST=unix://$sock"
