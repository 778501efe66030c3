#!/usr/bin/env bash
# Every function's deployment package as Lambda receives it: the release binary as
# `bootstrap`, zipped (deflate, as `sam build` and `cargo lambda build --output-format zip`
# zip it), its size checked against the limits of #18 item 7 and against the sizes recorded
# in bench/lambda-packages.baseline (a binary that grows by more than 10 % must say why in
# BENCHMARKS.md), then the cold-init benchmark on the same binaries.
#
#   bench/lambda-packages.sh            # build, package, check, measure init (20 runs)
#   bench/lambda-packages.sh --no-init  # build, package, check only
#   bench/lambda-packages.sh --no-build # package what the last release build left
#
# The binaries come from one `cargo build --release --workspace --bins` for the host
# (x86_64-unknown-linux-gnu, the same target and profile as `cargo lambda build --release
# --compiler cargo`), which shares its dependency build with `etl`'s release build instead
# of building every dependency a second time for an explicit `--target`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
require_rust

readonly ZIP_LIMIT_BYTES=$((50 * 1000 * 1000))   # #18 item 7: every zip ≤ 50 MB
readonly GROWTH_LIMIT_PERCENT=10
readonly BASELINE="$ROOT/bench/lambda-packages.baseline"
out="$CARGO_TARGET_DIR/lambda-packages"
run_init=1
build=1
for arg in "$@"; do
  case "$arg" in
    --no-init) run_init=0 ;;
    --no-build) build=0 ;;
    *) echo "unknown option $arg (known: --no-init, --no-build)" >&2; exit 2 ;;
  esac
done

if [ "$build" = 1 ]; then
  step "release build of every binary"
  cargo build --release --workspace --bins
fi
etl="$CARGO_TARGET_DIR/release/etl"
mapfile -t functions < <("$etl" list --functions)
[ "${#functions[@]}" -gt 0 ] || { echo "etl list --functions named no function" >&2; exit 1; }

step "packages under $out"
rm -rf "$out"
failed=0
printf '%-22s %12s %12s %10s\n' function binary_bytes zip_bytes vs_baseline
for f in "${functions[@]}"; do
  mkdir -p "$out/$f"
  cp "$CARGO_TARGET_DIR/release/$f" "$out/$f/bootstrap"
  (cd "$out/$f" && zip -q -9 -X bootstrap.zip bootstrap)
  binary=$(stat -c %s "$out/$f/bootstrap")
  zipped=$(stat -c %s "$out/$f/bootstrap.zip")
  base=$(awk -v f="$f" '$1 == f { print $2 }' "$BASELINE" 2>/dev/null || true)
  growth="new"
  if [ -n "$base" ]; then
    growth=$(awk -v b="$binary" -v a="$base" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }')
    if [ $((binary * 100)) -gt $((base * (100 + GROWTH_LIMIT_PERCENT))) ]; then
      echo "$f grew by $growth over its baseline ($base bytes): say why in BENCHMARKS.md" >&2
      failed=1
    fi
  fi
  if [ "$zipped" -gt "$ZIP_LIMIT_BYTES" ]; then
    echo "$f: zip is $zipped bytes, over the 50 MB limit" >&2
    failed=1
  fi
  printf '%-22s %12d %12d %10s\n' "$f" "$binary" "$zipped" "$growth"
done

if [ "$run_init" = 1 ]; then
  step "cold init, settings in env, then with the database secret read from moto"
  scripts/services up
  load_service_env
  "$etl" bench lambda-init --runs 20 --lambda-dir "$out"
  "$etl" bench lambda-init --runs 20 --lambda-dir "$out" --database-secret
fi
exit "$failed"
