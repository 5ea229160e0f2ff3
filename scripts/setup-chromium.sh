#!/usr/bin/env bash
# Provide headless Chromium (Debian's `chromium` package) for the 督查 report's rendering test:
# the HTML report is rendered to a screenshot and its DOM dumped, to check it shows tables and charts.
#
# Installs it with apt-get on first use (sudo when not root); prints its path on stdout.
# Progress goes to stderr. Exits 1 with a message when it cannot be installed.
set -euo pipefail
log() { echo "[setup-chromium] $*" >&2; }

for name in chromium chromium-browser; do
  if path=$(command -v "$name" 2>/dev/null); then echo "$path"; exit 0; fi
done
# fonts-noto-cjk: the report's labels are Chinese; without a CJK font they render as boxes.
packages=(chromium fonts-noto-cjk)
log "installing Debian's ${packages[*]} packages"
"$(dirname "$0")/apt-install.sh" "${packages[@]}"
path=$(command -v chromium) || { log "error: chromium installed but not on PATH"; exit 1; }
echo "$path"
