#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, runs them, and
# cleans up after itself. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: cargo is not installed (this project needs a Rust toolchain, rustc >= 1.94)" >&2
  exit 3
fi

# The real-data tests read ../shared/ beside the repository.
if [ ! -d ../shared/realdata ]; then
  echo "tests/run.sh: ../shared/realdata is missing beside the repository" >&2
  exit 3
fi

echo "== build"
cargo build --locked --all-targets

echo "== main job on the shipped fixtures"
cargo run --locked --quiet -- graph fixtures/ --output "${TMPDIR:-/tmp}/correlator-fixtures-graph.json"

echo "== tests"
# Benchmarks are built above but not run here: they are measured with `cargo bench`.
cargo test --locked

echo "== lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
