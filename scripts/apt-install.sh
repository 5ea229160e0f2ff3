#!/usr/bin/env bash
# Installs Debian packages with apt-get (sudo when not root), refreshing the package lists
# once when the first try fails (a fresh machine has none yet). Used by the setup scripts:
#   scripts/apt-install.sh PACKAGE...
# Progress goes to stderr; exits non-zero when a package cannot be installed.
set -euo pipefail
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >&2; }
if ! install "$@"; then
  $SUDO apt-get update -qq >&2
  install "$@"
fi
