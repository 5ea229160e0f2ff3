#!/usr/bin/env bash
# Provide a local S3-compatible server for Tansu's durable `s3://` storage: moto's server
# mode (`moto[server]` from PyPI), installed into the project-local venv .venv on first use.
# Prints the path of its `moto_server` program on stdout; progress goes to stderr.
#
# moto keeps every bucket and object in its own memory: the storage outlives a broker that is
# killed and restarted, not moto itself (scripts/with-broker.sh --storage s3 starts and stops it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/bin/moto_server"
MOTO_VERSION="5.2.5"
"$ROOT/scripts/setup-tansu.sh" >/dev/null  # creates .venv when missing
if [[ -x "$BIN" ]] && "$VENV/bin/python" -c 'import moto.server, flask' 2>/dev/null; then echo "$BIN"; exit 0; fi
echo "[setup-moto] installing moto[server]==$MOTO_VERSION (local S3 for Tansu's s3:// storage) into .venv" >&2
# `python -m pip`, not .venv/bin/pip: a venv that was copied from elsewhere keeps the old path in pip's first line.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
[[ -x "$BIN" ]] || { echo "[setup-moto] error: moto installed but $BIN is missing" >&2; exit 1; }
echo "$BIN"
