#!/usr/bin/env bash
# Install one PyPI requirement into the project-local venv .venv unless its module imports
# already; prints the venv's python on stdout, progress on stderr.
#   usage: scripts/pip-install.sh MODULE REQUIREMENT WHAT
#   e.g.   scripts/pip-install.sh moto.server 'moto[server]==5.2.5' "local S3 for Tansu's s3:// storage"
# Exit 1 with a message when the module does not import after the install.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 MODULE REQUIREMENT WHAT" >&2; exit 2; }
MODULE="$1" REQUIREMENT="$2" WHAT="$3"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
"$ROOT/scripts/setup-tansu.sh" >/dev/null  # creates .venv when missing
if "$PY" -c "import $MODULE" 2>/dev/null; then echo "$PY"; exit 0; fi
echo "[pip-install] installing $REQUIREMENT ($WHAT) into .venv" >&2
# `python -m pip`, not .venv/bin/pip: a venv that was copied from elsewhere keeps the old path in pip's first line.
"$PY" -m pip install -q --disable-pip-version-check "$REQUIREMENT" >&2
"$PY" -c "import $MODULE" || { echo "[pip-install] error: $REQUIREMENT installed but '$MODULE' does not import" >&2; exit 1; }
echo "$PY"
