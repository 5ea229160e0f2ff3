#!/usr/bin/env bash
# Provide `promtool` (from Debian's `prometheus` package) for the metrics tests:
# `promtool check metrics` lints every service's /metrics page.
#
# Installs it with apt-get on first use (sudo when not root); prints its path on stdout.
# Progress goes to stderr. Exits 1 with a message when it cannot be installed.
set -euo pipefail
log() { echo "[setup-promtool] $*" >&2; }

if path=$(command -v promtool 2>/dev/null); then echo "$path"; exit 0; fi
log "installing Debian's prometheus package (for promtool)"
"$(dirname "$0")/apt-install.sh" prometheus
# The package starts no daemon in a container; where systemd runs one, it is not needed here.
path=$(command -v promtool) || { log "error: prometheus installed but promtool is not on PATH"; exit 1; }
echo "$path"
