#!/usr/bin/env bash
# Loading ceiling for the HR benchmark: psql \copy of N CSV rows into bench_seed.employees_copy
# (same columns as bench_seed.employees). Only the \copy is timed.
#
#   bench/copy_ceiling.sh [ROWS] [CSV]
#
# ROWS defaults to 1000000. CSV defaults to bench/seed_rows.csv if it exists with at least ROWS
# rows (dumped by `hr_seed_approach.py --dump-csv bench/seed_rows.csv`, i.e. the real Faker rows);
# otherwise bench/copy_rows.csv is generated with a fast plain-Python loop (not Faker; similar
# field shapes), outside the timing. DATABASE_URL comes from the environment, else .services/env.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
rows="${1:-1000000}"
csv="${2:-}"
source_desc="given CSV"

if [[ -z "${DATABASE_URL:-}" ]]; then
  DATABASE_URL="$(grep -E '^DATABASE_URL=' "$here/../.services/env" | head -1 | cut -d= -f2-)"
fi
export DATABASE_URL
py="$here/.venv/bin/python"
[[ -x "$py" ]] || py=python3

if [[ -z "$csv" ]]; then
  if [[ -f "$here/seed_rows.csv" ]] && (( $(wc -l < "$here/seed_rows.csv") >= rows )); then
    csv="$here/copy_input.csv"
    head -n "$rows" "$here/seed_rows.csv" > "$csv"
    source_desc="Faker rows dumped by hr_seed_approach.py"
  else
    csv="$here/copy_rows.csv"
    "$py" - "$rows" "$csv" <<'PY'
import csv, random, sys, datetime
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(0)
first = ["María", "José", "Begoña", "Íñigo", "Lucía", "Jorge", "Purificación", "Wálter"]
last = ["García", "Ibáñez", "Rivero", "Arjona", "Collado-Menéndez", "Gil", "Vargas", "Otero"]
jobs = ["Arquitecto", "Cartógrafo", "Inspector de policía", "Técnico en química industrial"]
depts = ["Ventas", "Marketing", "Finanzas", "Recursos Humanos", "Tecnología", "Operaciones",
         "Logística", "Atención al Cliente", "Legal", "Compras", "I+D"]
today = datetime.date.today()
with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    for i in range(n):
        name = f"{rnd.choice(first)} {rnd.choice(last)} {rnd.choice(last)}"
        email = f"user.{i}{i % 1000}@empresa.es"
        w.writerow((name, rnd.choice(jobs), rnd.choice(depts), email,
                    f"{rnd.uniform(18000, 95000.99):.2f}", today - datetime.timedelta(days=rnd.randrange(366))))
PY
    source_desc="plain-Python generated rows"
  fi
fi

psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench_seed;
DROP TABLE IF EXISTS bench_seed.employees_copy;
CREATE TABLE bench_seed.employees_copy (
    id            bigserial PRIMARY KEY,
    full_name     varchar(50),
    job_title     varchar(50),
    department    varchar(50),
    email         varchar(254),
    salary        numeric(12,2),
    hire_date     date
);
SQL

start=$(date +%s.%N)
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "\copy bench_seed.employees_copy(full_name, job_title, department, email, salary, hire_date) FROM '$csv' CSV"
end=$(date +%s.%N)

loaded=$(psql "$DATABASE_URL" -At -c "SELECT count(*) FROM bench_seed.employees_copy")
awk -v n="$loaded" -v s="$start" -v e="$end" -v src="$source_desc" -v f="$csv" 'BEGIN {
  t = e - s
  printf "{\"copy_rows\": %d, \"copy_s\": %.3f, \"copy_rows_per_s\": %d, \"csv\": \"%s\", \"source\": \"%s\"}\n", n, t, n / t, f, src
}'
