# The few verbs people type. `make test` is what CI runs (see .ci/run and README.md).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: build release test lint lint-library unit ship chaos bench load demo install-tools clean

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
	$(MAKE) lint-library

## The library crate on its own, in each feature combination a user can pick (the lib target only:
## tests and examples pull in the harness, which enables the default features), and its docs
## (every public item documented, no broken links) without and with every feature.
lint-library:
	$(CARGO) clippy -p kube-elector --lib --no-default-features -- -D warnings
	$(CARGO) clippy -p kube-elector --lib --no-default-features --features metrics -- -D warnings
	$(CARGO) clippy -p kube-elector --lib --no-default-features --features events -- -D warnings
	RUSTDOCFLAGS="-D warnings -D missing_docs" $(CARGO) doc --no-deps -p kube-elector --no-default-features
	RUSTDOCFLAGS="-D warnings -D missing_docs" $(CARGO) doc --no-deps -p kube-elector --all-features

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
