#!/usr/bin/env bash
# Provide a python3 with the yaml module (PyYAML) for the deploy/ file checks
# (Tests/DeployTests): prints the interpreter's path on stdout.
#
# Uses `python3` on PATH or the system's /usr/bin/python3 when either can `import yaml`;
# otherwise installs Debian's python3-yaml with apt-get (sudo when not root). Progress goes to
# stderr. Exits 1 with a message when no such interpreter can be provided.
set -euo pipefail
log() { echo "[setup-pyyaml] $*" >&2; }
has_yaml() { "$1" -c 'import yaml' >/dev/null 2>&1; }

for py in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
  [[ -n "$py" && -x "$py" ]] && has_yaml "$py" && { echo "$py"; exit 0; }
done
log "installing Debian's python3-yaml"
"$(dirname "$0")/apt-install.sh" python3-yaml
has_yaml /usr/bin/python3 || { log "error: python3-yaml installed but /usr/bin/python3 cannot import yaml"; exit 1; }
echo /usr/bin/python3
