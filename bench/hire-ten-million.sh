#!/usr/bin/env bash
# 10M employees in one hr-hire invocation of the real release binary under `etl lambda-host`
# (its template MemorySize and Timeout enforced as Lambda enforces them): the invocation's
# wall time, the function's peak RSS (its process's VmHWM, and lambda-host's
# `platform.report` line) and the output. Run bench/lambda-packages.sh first (it leaves the
# packages this serves).
#
#   bench/lambda-packages.sh --no-init && bench/hire-ten-million.sh [DATE]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
scripts/services up
load_service_env
etl="$CARGO_TARGET_DIR/release/etl"
packages="$CARGO_TARGET_DIR/lambda-packages"
[ -x "$packages/hr-hire/bootstrap" ] || { echo "no $packages/hr-hire/bootstrap: run bench/lambda-packages.sh --no-init" >&2; exit 1; }
date=${1:-2026-12-24}
port=9135
work=$(mktemp -d)
"$etl" lambda-host --binaries "$packages" --listen "127.0.0.1:$port" 2> "$work/host.log" &
host=$!
trap 'kill $host 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

echo "{\"logical_date\":\"$date\",\"count\":10000000,\"seed\":5}" > "$work/hire.json"
/usr/bin/time -f "invoke: %e s wall (the etl invoke client)" \
  "$etl" invoke hr-hire --event "$work/hire.json" --lambda-endpoint "http://127.0.0.1:$port"
# The sandbox stays warm after the invocation, as Lambda's does: its high-water mark is the
# invocation's peak.
pid=$(pgrep -f "$packages/hr-hire/bootstrap" | head -1)
grep -E "VmHWM" "/proc/$pid/status"
ps -o cputime= -p "$pid" | sed 's/^/function CPU time: /'
grep '"platform.report"' "$work/host.log" || true
