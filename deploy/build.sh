#!/usr/bin/env bash
# Builds the binary the container image ships, and checks that it will run on the image's base
# (gcr.io/distroless/cc-debian12): deploy/Dockerfile runs this in its build stage, and
# tests/run.sh runs it in CI, where no container engine is available.
#
#   deploy/build.sh [OUT]      OUT: where to copy the binary (default: target/image/correlator)
#   deploy/build.sh --binary BIN [OUT]
#                              checks BIN, built already, instead of building the release
#                              binary (tests/run.sh: the dev build its tests ran, which needs
#                              the same shared libraries and glibc symbol versions: the same
#                              crate, target and linker; measured 2026-12-03, both need
#                              libc, libm, libgcc_s and at most GLIBC_2.34)
#
# Checks:
# - every shared library the binary needs (ldd) is one the base image has: glibc's and
#   libgcc_s (cc-debian12 = distroless base, i.e. glibc, libssl, ca-certificates and tzdata,
#   plus libgcc1, libgomp1 and libstdc++6, all from Debian 12);
# - no glibc symbol version newer than Debian 12's glibc (2.36) is needed, so that a binary
#   built on a newer system would fail here rather than at the first scheduled run;
# - the binary prints its version, validates the task's configuration (no AWS call), and
#   correlates the shipped fixtures into findings.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=""
if [ "${1:-}" = "--binary" ]; then
  bin="${2:?deploy/build.sh: --binary needs the path of a built correlator}"
  shift 2
fi
out="${1:-target/image/correlator}"
glibc_max="2.36"
allowed="linux-vdso.so.1 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 ld-linux-x86-64.so.2"

if [ -z "$bin" ]; then
  echo "== image binary: cargo build --release"
  cargo build --locked --release --bin correlator
  bin=target/release/correlator
else
  echo "== image binary: $bin (built already)"
  if [ ! -x "$bin" ]; then
    echo "deploy/build.sh: $bin is not an executable file" >&2
    exit 1
  fi
fi
mkdir -p "$(dirname "$out")"
# Without the line tables (≈ 175 MB of the 215 MB): Fargate pulls the image at every run, and
# through a NAT gateway every byte pulled is paid for. Symbols stay, so panics name functions.
objcopy --strip-debug "$bin" "$out"
echo "  $(du -m "$out" | cut -f1) MB"

echo "== shared libraries (ldd) against the base image's"
libs="$(ldd "$out" | awk '{ n = $1; sub(".*/", "", n); print n }' | sort -u)"
bad=""
for lib in $libs; do
  case " $allowed " in
    *" $lib "*) ;;
    *) bad="$bad $lib" ;;
  esac
done
echo "$libs" | sed 's/^/  /'
if [ -n "$bad" ]; then
  echo "deploy/build.sh: $out needs libraries that gcr.io/distroless/cc-debian12 lacks:$bad" >&2
  exit 1
fi

echo "== glibc symbol versions (at most $glibc_max, Debian 12's)"
newest="$(objdump -T "$out" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
echo "  newest needed: GLIBC_$newest"
if [ "$(printf '%s\n%s\n' "$newest" "$glibc_max" | sort -V | tail -n 1)" != "$glibc_max" ]; then
  echo "deploy/build.sh: $out needs GLIBC_$newest, newer than the base image's $glibc_max (build on Debian 12, as deploy/Dockerfile does)" >&2
  exit 1
fi

echo "== the binary runs"
"$out" --version
# The configuration the ECS task gives it (deploy/correlator.yaml), checked without AWS.
CORRELATOR_AWS_REGIONS=us-east-1,eu-west-1 \
  CORRELATOR_AWS_SOURCES=guardduty,securityhub,cloudtrail,cloudtrail_s3 \
  CORRELATOR_AWS_STATE=s3://example-state/correlator/state.json \
  CORRELATOR_AWS_TRAIL=s3://example-trail/AWSLogs/ \
  CORRELATOR_LOG_FORMAT=json \
  "$out" validate
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! "$out" correlate fixtures/ --asff "$tmp/findings.json" >"$tmp/correlate.log" 2>&1; then
  cat "$tmp/correlate.log" >&2
  echo "deploy/build.sh: correlate on fixtures/ failed" >&2
  exit 1
fi
findings="$(grep -c '"SchemaVersion"' "$tmp/findings.json" || true)"
if [ "$findings" -eq 0 ]; then
  echo "deploy/build.sh: correlate on fixtures/ wrote no finding" >&2
  exit 1
fi
echo "  correlate fixtures/: $findings findings"
echo "deploy/build.sh: $out is ready for the image"
