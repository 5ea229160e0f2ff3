#!/usr/bin/env bash
# Provide a local S3-compatible server for Tansu's durable `s3://` storage: moto's server
# mode (`moto[server]` from PyPI), installed into the project-local venv .venv on first use.
# Prints the path of its `moto_server` program on stdout; progress goes to stderr.
#
# moto keeps every bucket and object in its own memory: the storage outlives a broker that is
# killed and restarted, not moto itself (scripts/with-broker.sh --storage s3 starts and stops it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin/moto_server"
"$ROOT/scripts/pip-install.sh" "moto.server, flask" "moto[server]==5.2.5" "local S3 for Tansu's s3:// storage" >/dev/null
[[ -x "$BIN" ]] || { echo "[setup-moto] error: moto installed but $BIN is missing" >&2; exit 1; }
echo "$BIN"
