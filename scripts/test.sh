#!/usr/bin/env bash
# README's test command: installs the dependencies, then runs every test of the workspace
# (unit tests, and integration tests that start real daemons, runc, nftables and network
# namespaces, each test in a namespace of its own). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root: the tests create network namespaces, bridges and nftables tables" >&2; exit 1; }
bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace "$@"
# the benchmark harness: its leak check, and a tether-only run that must leave nothing
bash bench/selftest.sh "$PWD/target/x86_64-unknown-linux-gnu/debug/tether"
