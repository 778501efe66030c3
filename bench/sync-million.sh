#!/usr/bin/env bash
# The hr-sync client on about a million documents (what osmem can hold): hires 1M rows for
# one date, then invokes hr-sync (in process, with its template Timeout) as the `hr`
# machine's Sync → SyncMore loop would, until it answers `more: false`. Prints each
# invocation's wall time, the client's user + sys CPU and peak RSS (GNU time), and output.
# Under an index prefix of its own, deleted at the end.
#
#   cargo build --release --bin etl && bench/sync-million.sh [DATE]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
scripts/services up
load_service_env
export ETL_INDEX_PREFIX="bench1m-$$-"
etl="$CARGO_TARGET_DIR/release/etl"
date=${1:-2026-12-23}
work=$(mktemp -d)
trap 'curl -s -X DELETE "$ELASTICSEARCH_URL/${ETL_INDEX_PREFIX}empleados_search" >/dev/null; rm -rf "$work"' EXIT

echo "{\"logical_date\":\"$date\",\"count\":1000000,\"seed\":11}" > "$work/hire.json"
/usr/bin/time -f "hire: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
  "$etl" invoke hr-hire --event "$work/hire.json"

event="{\"logical_date\":\"$date\"}"
for invocation in 1 2 3 4 5 6; do
  echo "$event" > "$work/sync.json"
  /usr/bin/time -f "sync $invocation: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
    "$etl" invoke hr-sync --event "$work/sync.json" > "$work/out.json"
  cat "$work/out.json"
  # The machine hands the invocation's progress back as `sync`: its cursor and totals.
  event=$(python3 -c '
import json, sys
out = json.load(open(sys.argv[1]))
if out["progress"]["more"]:
    print(json.dumps({"logical_date": out["logical_date"], "sync": out["progress"]}))
' "$work/out.json")
  [ -n "$event" ] || exit 0
done
echo "still more to sync after 6 invocations" >&2
exit 1
