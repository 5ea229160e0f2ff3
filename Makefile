# Yishi (一事). Every target installs what it needs on first use
# (librdkafka >= 2.8 built from Debian's source package, the Tansu broker).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source scripts/env.sh

.PHONY: help demo deps build test bench broker clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# KEEP=1: after the report the broker and the hub keep running for the CLI until Ctrl-C.
demo:  ## the one-day 一件事 demo: the whole hub on a local Tansu broker it starts and stops (KEEP=1: keep both running)
	@$(ENV); swift build --product yishi $$YISHI_SWIFT_FLAGS
	@$(ENV); scripts/with-broker.sh .build/debug/yishi demo run $(if $(KEEP),--keep)

deps:  ## install librdkafka >= 2.8 and the Tansu broker if missing
	@$(ENV); echo "librdkafka: $$(pkg-config --modversion rdkafka); Tansu: $$(.venv/lib/tansu --version)"

build: ## debug build of everything
	@$(ENV); swift build $$YISHI_SWIFT_FLAGS

# Suites run one after another: on 2 cores, eleven hub processes of the end-to-end suite next to
# the Kafka layer's rebalance and fencing tests starved the broker and broke their timing.
test:  ## the whole test suite, against a Tansu broker it starts and stops
	@$(ENV); swift build --build-tests $$YISHI_SWIFT_FLAGS
	@scripts/setup-promtool.sh >/dev/null  # promtool (Debian's prometheus package) for the metrics tests
	@scripts/setup-moto.sh >/dev/null  # moto's S3 server (PyPI) for the broker restart test's durable storage
	@scripts/setup-pyyaml.sh >/dev/null    # PyYAML (Debian's python3-yaml if missing) for the deploy/ file checks
	@scripts/setup-chromium.sh >/dev/null  # headless chromium (Debian's package) for the 督查 report's rendering test
	@scripts/setup-confluent-kafka.sh >/dev/null  # confluent-kafka (PyPI) for the Python reference department in examples/
	@$(ENV); scripts/with-broker.sh swift test --skip-build --no-parallel $$YISHI_SWIFT_FLAGS

bench: ## throughput figures: BENCH <name> <value> <unit>
	@$(ENV); swift build -c release --product yishi-bench $$YISHI_SWIFT_FLAGS
	@$(ENV); swift build -c release --product yishi $$YISHI_SWIFT_FLAGS
	@$(ENV); YISHI_BIN=.build/release/yishi scripts/with-broker.sh .build/release/yishi-bench

broker: ## run a Tansu broker in the foreground on a free port (Ctrl-C stops it)
	@$(ENV); scripts/with-broker.sh bash -c 'echo "bootstrap: $$YISHI_BOOTSTRAP"; sleep infinity'

clean:
	rm -rf .build
