#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, and every test of every crate
# (unit, property, fault-injection and end-to-end tests of the real `aos` binary), after
# building the example reducers to WASM (scripts/build-reducers.sh installs the toolchain).
# Some fault tests mount small tmpfs and read-only bind mounts, so run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build example reducers (wasm32)"
scripts/build-reducers.sh
echo "== cargo test"
cargo test --workspace --locked
