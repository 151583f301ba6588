#!/usr/bin/env bash
# Installs what DeskOps needs on this machine: Debian packages (when run as root
# on Debian or Ubuntu), a virtualenv in .venv and the pinned Python packages.
# Usage: scripts/bootstrap.sh [runtime|dev]   (dev adds the test tools)
# Running it again only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour="${1:-runtime}"
python="${PYTHON:-python3}"

system_packages=(libldap2-dev libsasl2-dev slapd ldap-utils gcc)
# The tests start a throwaway sshd as the guest of the SSH executor, and drive
# Debian's chromium through Playwright for the browser tests.
if [ "$flavour" = dev ]; then
  system_packages+=(openssh-server chromium)
fi
# Debian's own interpreter keeps venv and the C headers in separate packages.
if [ "$(command -v "$python")" = /usr/bin/python3 ]; then
  system_packages+=(python3-dev python3-venv)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${system_packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "==> Missing Debian packages: ${missing[*]}" >&2
    echo "    Install them (sudo apt-get install ${missing[*]}) and run this again." >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating the virtualenv in .venv"
  "$python" -m venv .venv
fi

requirements=requirements.txt
[ "$flavour" = dev ] && requirements=requirements-dev.txt
stamp=".venv/.installed-$flavour"
wanted=$(cat requirements.txt "$requirements" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "==> Installing Python packages from $requirements"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  echo "$wanted" >"$stamp"
fi
