#!/usr/bin/env python3
"""Benchmark: a faithful Python re-implementation of the seed (Airflow) HR approach.

The teaching project's DAGs did:
  contratar_personal_masivo  Faker('es_ES'); per employee nombre = fake.name()[:50],
                             puesto = fake.job()[:50], fecha_ingreso = a date in the last
                             year; psycopg2 cursor.executemany("INSERT ... VALUES (%s, ...)")
  sincronizar_empleados_es   SELECT the rows back; elasticsearch.helpers.bulk, one document
                             per employee, _id = employee id.

To compare equal work with the Rust `hr` stages this also generates email (from the name,
as the Rust generator does: ascii-folded name + index % 1000 @empresa.es), department
(the same 11 Spanish departments) and salary (18,000.00 .. 95,000.99).

Everything lives in schema bench_seed and ES index bench_seed_employees, both dropped and
recreated at start. Settings come from the process environment, else ../.services/env.
Prints one JSON object with the figures at the end (progress goes to stderr).
"""

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
import unicodedata
from pathlib import Path

import psycopg2
from faker import Faker
from elasticsearch import Elasticsearch, helpers
import elasticsearch
import faker as faker_pkg

SCHEMA = "bench_seed"
TABLE = f"{SCHEMA}.employees"
INDEX = "bench_seed_employees"
# Same list as functions/etl-core/src/hr/locale.rs (es_es::DEPARTMENTS).
DEPARTMENTS = [
    "Ventas", "Marketing", "Finanzas", "Recursos Humanos", "Tecnología", "Operaciones",
    "Logística", "Atención al Cliente", "Legal", "Compras", "I+D",
]
EMAIL_DOMAIN = "empresa.es"
ENV_FILE = Path(__file__).resolve().parent.parent / ".services" / "env"

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {TABLE} (
    id            bigserial PRIMARY KEY,
    full_name     varchar(50),
    job_title     varchar(50),
    department    varchar(50),
    email         varchar(254),
    salary        numeric(12,2),
    hire_date     date
);
"""
INSERT = (f"INSERT INTO {TABLE} (full_name, job_title, department, email, salary, hire_date) "
          "VALUES (%s, %s, %s, %s, %s, %s)")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def settings():
    """Process env wins over .services/env (KEY=VALUE lines). Values are never printed."""
    values = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k in ("DATABASE_URL", "ELASTICSEARCH_URL")})
    return values["DATABASE_URL"], values.get("ELASTICSEARCH_URL", "http://127.0.0.1:9200")


_FOLD = str.maketrans({" ": ".", "-": ".", "'": "."})


def email_local_part(name):
    """'Begoña Ibáñez-Güell' -> 'begona.ibanez.guell' (like ascii_fold in generate.rs)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = ascii_name.translate(_FOLD).lower()
    return "".join(c for c in ascii_name if c.isalnum() or c == ".")


def hwm_kib():
    """High-water mark of resident memory so far (VmHWM), KiB; per-phase marker."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def generate(n):
    """The seed's loop: one Faker('es_ES') call per field, rows kept in a list."""
    Faker.seed(0)
    fake = Faker("es_ES")
    rnd = fake.random  # Faker's own seeded random.Random
    rows = []
    append = rows.append
    for i in range(n):
        nombre = fake.name()[:50]
        puesto = fake.job()[:50]
        fecha_ingreso = fake.date_between(start_date="-1y", end_date="today")
        department = rnd.choice(DEPARTMENTS)
        email = f"{email_local_part(nombre)}{i % 1000}@{EMAIL_DOMAIN}"[:254]
        salary = round(rnd.uniform(18_000, 95_000.99), 2)
        append((nombre, puesto, department, email, salary, fecha_ingreso))
    return rows


def load(conn, rows, batch):
    """cursor.executemany in chunks of `batch`, one commit at the end (as the seed DAG)."""
    with conn.cursor() as cur:
        for start in range(0, len(rows), batch):
            cur.executemany(INSERT, rows[start:start + batch])
            if (start // batch) % 10 == 9:
                log(f"  loaded {start + batch:,}")
    conn.commit()


def sync(conn, es, chunk_size):
    """SELECT everything back, build one action per employee, helpers.bulk."""
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, full_name, job_title, department, email, salary, hire_date "
                    f"FROM {TABLE} ORDER BY id")
        data = cur.fetchall()
    t_fetch = time.perf_counter() - t0
    actions = [
        {
            "_index": INDEX,
            "_id": r[0],
            "_source": {
                "id": r[0], "full_name": r[1], "job_title": r[2], "department": r[3],
                "email": r[4], "salary": r[5], "hire_date": r[6],
            },
        }
        for r in data
    ]
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    ok, errors = helpers.bulk(es, actions, **kwargs)
    total = time.perf_counter() - t0
    return len(data), ok, errors, t_fetch, total - t_fetch, total


def cleanup(conn, es):
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.commit()
    es.indices.delete(index=INDEX, ignore=[404])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=10_000, help="rows per executemany call")
    p.add_argument("--skip-es", action="store_true", help="generate and load only")
    p.add_argument("--es-chunk", type=int, default=None,
                   help="helpers.bulk chunk_size (default: the library default, 500)")
    p.add_argument("--sync-only", action="store_true",
                   help="reuse the rows already in bench_seed.employees; only re-index")
    p.add_argument("--dump-csv", metavar="PATH",
                   help="after loading (untimed), write the generated rows as CSV for copy_ceiling.sh")
    p.add_argument("--cleanup-only", action="store_true",
                   help="drop schema bench_seed and index bench_seed_employees, then exit")
    args = p.parse_args()

    database_url, es_url = settings()
    conn = psycopg2.connect(database_url)
    es = Elasticsearch([es_url], timeout=120)
    if args.cleanup_only:
        cleanup(conn, es)
        log("dropped schema bench_seed and index bench_seed_employees")
        return

    result = {
        "approach": "seed (Faker es_ES + psycopg2 executemany + elasticsearch helpers.bulk)",
        "rows": args.rows,
        "executemany_batch": args.batch,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }

    if not args.sync_only:
        with conn.cursor() as cur:
            cur.execute(DDL)
        conn.commit()

        log(f"generating {args.rows:,} rows with Faker('es_ES') ...")
        t0 = time.perf_counter()
        rows = generate(args.rows)
        gen_s = time.perf_counter() - t0
        result["hwm_after_generate_kib"] = hwm_kib()
        log(f"generated in {gen_s:.1f} s; loading with executemany (batch {args.batch:,}) ...")

        t0 = time.perf_counter()
        load(conn, rows, args.batch)
        load_s = time.perf_counter() - t0
        result["hwm_after_load_kib"] = hwm_kib()
        log(f"loaded in {load_s:.1f} s")

        result.update({
            "generate_s": round(gen_s, 3),
            "generate_rows_per_s": round(args.rows / gen_s),
            "load_s": round(load_s, 3),
            "load_rows_per_s": round(args.rows / load_s),
            "generate_plus_load_s": round(gen_s + load_s, 3),
            "generate_plus_load_rows_per_s": round(args.rows / (gen_s + load_s)),
        })

        if args.dump_csv:
            import csv
            with open(args.dump_csv, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rows)
            log(f"dumped rows to {args.dump_csv}")
        del rows
        gc.collect()

    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE}")
        result["pg_count"] = cur.fetchone()[0]

    if not args.skip_es:
        es.indices.delete(index=INDEX, ignore=[404])
        chunk = args.es_chunk
        result["es_chunk_size"] = chunk if chunk is not None else "library default (500)"
        log(f"syncing to ES index {INDEX} with helpers.bulk (chunk_size {chunk or 'default 500'}) ...")
        n, ok, errors, fetch_s, bulk_s, sync_s = sync(conn, es, chunk)
        result["hwm_after_sync_kib"] = hwm_kib()
        es.indices.refresh(index=INDEX)
        result.update({
            "sync_rows": n,
            "sync_bulk_ok": ok,
            "sync_bulk_errors": len(errors) if isinstance(errors, list) else errors,
            "sync_fetch_s": round(fetch_s, 3),
            "sync_build_and_bulk_s": round(bulk_s, 3),
            "sync_s": round(sync_s, 3),
            "sync_rows_per_s": round(n / sync_s),
            "es_count": es.count(index=INDEX)["count"],
        })
        log(f"synced in {sync_s:.1f} s")

    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["versions"] = {
        "python": platform.python_version(),
        "faker": faker_pkg.VERSION,
        "psycopg2": psycopg2.__version__.split()[0],
        "elasticsearch_py": ".".join(map(str, elasticsearch.VERSION)),
        "es_server": es.info()["version"]["number"],
    }
    conn.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
