#!/usr/bin/env bash
# Provide confluent-kafka (Confluent's Python client; its wheel bundles librdkafka) in the
# project-local venv .venv, for the integrator's reference department in examples/python-department.
# Prints the venv's python on stdout; progress goes to stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
VERSION="2.16.1"
"$ROOT/scripts/setup-tansu.sh" >/dev/null  # creates .venv when missing
if "$PY" -c 'import confluent_kafka' 2>/dev/null; then echo "$PY"; exit 0; fi
echo "[setup-confluent-kafka] installing confluent-kafka==$VERSION into .venv" >&2
# `python -m pip`, not .venv/bin/pip: a venv that was copied from elsewhere keeps the old path in pip's first line.
"$PY" -m pip install -q --disable-pip-version-check "confluent-kafka==$VERSION" >&2
"$PY" -c 'import confluent_kafka' || { echo "[setup-confluent-kafka] error: installed but not importable" >&2; exit 1; }
echo "$PY"
