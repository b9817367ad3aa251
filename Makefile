# The few verbs people type. `make test` is what CI runs (see .ci/run and README.md).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: build release test lint unit ship chaos bench load demo install-tools clean

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release --workspace --bins

## Everything CI checks, installing what a fresh machine lacks.
test: install-tools lint unit ship chaos

install-tools:
	scripts/install-tools.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

ship:
	scripts/check-ship.sh

chaos:
	scripts/chaos.sh

bench:
	scripts/bench.sh

## Probe latency and renew latency under connection floods, a /readyz flood and a /metrics scrape flood.
load:
	scripts/load.sh

demo:
	scripts/demo.sh

clean:
	$(CARGO) clean
