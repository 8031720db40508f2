#!/usr/bin/env bash
# Installs what hyperfork's tests and its embedded buildkitd need on a
# Debian machine: git 2.38+ (merge-tree --write-tree), runc, sshd for
# the test of sync over SSH, Debian's chromium, which the test of the
# HTML test report drives headless, shellcheck, which actionlint runs on
# the shipped workflows' scripts, and jq, which those scripts read the
# report with (ci/citest runs them). Idempotent.
set -euo pipefail

need=()
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v git >/dev/null 2>&1 || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v jq >/dev/null 2>&1 || need+=(jq)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-prerequisites: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" || { apt-get update && apt-get install -y "${need[@]}"; }
fi

# merge-tree --write-tree arrived in git 2.38.
v=$(git --version | awk '{print $3}')
if [ "$(printf '%s\n2.38\n' "$v" | sort -V | head -1)" != 2.38 ]; then
  echo "install-prerequisites: git $v is too old; hyperfork needs git 2.38 or newer" >&2
  exit 1
fi
