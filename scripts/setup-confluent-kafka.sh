#!/usr/bin/env bash
# Provide confluent-kafka (Confluent's Python client; its wheel bundles librdkafka) in the
# project-local venv .venv, for the integrator's reference department in examples/python-department.
# Prints the venv's python on stdout; progress goes to stderr.
set -euo pipefail
exec "$(dirname "$0")/pip-install.sh" confluent_kafka "confluent-kafka==2.16.1" "the Python reference department"
