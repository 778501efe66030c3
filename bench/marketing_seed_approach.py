#!/usr/bin/env python3
"""Benchmark: a faithful Python re-implementation of the seed (Airflow) marketing approach.

The teaching project's DAG `marketing_pipeline_v1` ran three scripts, generate >> unify >> report:
  marketing_data_gen.py  while total < 500,000: a list of 10,000 dicts built with `random`,
                         `uuid.uuid4()` and Faker().date_between(2024-01-01, 2024-12-31);
                         pd.DataFrame(list) -> to_csv(StringIO) -> s3.put_object(Body=getvalue())
                         as marketing_data_N.csv
  data_merger.py         list_objects_v2(Prefix=...); get_object + pd.read_csv(Body) for each;
                         pd.concat(ignore_index=True); to_csv to a local file, then to_csv(StringIO)
                         -> put_object as marketing_master_dataset.csv
  data_analysis.py       get_object + pd.read_csv(Body) of the master dataset; groupby platform
                         sums of costo_total/clicks/impressions, CPC_Real, CTR_Real; groupby
                         target_audience mean video_view_time sorted descending; print both.
This script does the same three phases, in one process, one boto3 client per phase (each seed
script made its own). Only the keys differ: the seed wrote to the bucket root; here
  raw/marketing/dt=YYYY-MM-DD/marketing_data_N.csv
  curated/marketing/dt=YYYY-MM-DD/marketing_master_dataset.csv  (the Rust pipeline's curated/ layout)
Objects under those keys and the local master file are deleted before (and, unless --keep,
after) the run, outside the timing.

Run (from the repository root):
  scripts/services up
  python3 -m venv bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt
  bench/.venv/bin/python bench/marketing_seed_approach.py [--rows 500000] [--batch 10000] [--date 2026-11-25]

S3 settings come from the process environment, else ../.services/env: AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ETL_BUCKET (created if missing).
stdout: the report tables, per-phase wall time, total, peak RSS, and as the last line one
JSON object with every figure. Progress goes to stderr.
Peak RSS per phase is VmHWM, reset at the start of each phase (/proc/self/clear_refs), so each
figure is comparable with one seed script run on its own (plus this process's imports); the
overall peak is the largest of them.
"""

import argparse
import datetime as dt
import json
import os
import platform as platform_mod
import random
import sys
import time
import uuid
from datetime import datetime
from io import StringIO
from pathlib import Path

import boto3
import botocore
import faker as faker_pkg
import numpy as np
import pandas as pd
from botocore.exceptions import ClientError
from faker import Faker

HERE = Path(__file__).resolve().parent
ENV_FILE = HERE.parent / ".services" / "env"
ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ETL_BUCKET")

# As in the seed's marketing_data_gen.py.
FECHA_INICIO = datetime(2024, 1, 1)
FECHA_FIN = datetime(2024, 12, 31)
PLATFORMS = ['Facebook ADS', 'Google ADS']
AUDIENCES = ['Mujer 18-25', 'Mujer 26-35', 'Mujer 36-45', 'Mujer +46',
             'Hombre 18-25', 'Hombre 26-35', 'Hombre 36-45', 'Hombre +46']
MASTER_NAME = "marketing_master_dataset.csv"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_settings():
    """Process env wins over .services/env (KEY=VALUE lines); values are never printed.
    The AWS_* values are put into os.environ so boto3 finds the credentials as the seed's
    `boto3.client('s3')` did."""
    values = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    values.update({k: os.environ[k] for k in ENV_KEYS if k in os.environ})
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if k in values:
            os.environ.setdefault(k, values[k])
    if "AWS_ENDPOINT_URL" not in values:
        sys.exit("AWS_ENDPOINT_URL is not set (run scripts/services up, or export it)")
    return values["AWS_ENDPOINT_URL"], values.get("AWS_REGION", "us-east-1"), values.get("ETL_BUCKET", "etl-lake-local")


# ------------------------------------------------------------------ memory figures

def hwm_kib():
    """High-water mark of resident memory (VmHWM), KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def reset_hwm():
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs).
    Returns False where the kernel refuses; the phase figures are then cumulative."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mib(kib):
    return round(kib / 1024, 1)


# ------------------------------------------------------------------ S3 helpers (untimed)

def s3_client(endpoint, region):
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def ensure_bucket(s3, bucket, region):
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        log(f"created bucket {bucket}")


def delete_prefix(s3, bucket, prefix):
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            n += len(keys)
    return n


# ------------------------------------------------------------------ phase 1: generate

def generate(s3, bucket, raw_prefix, total_rows, batch_size):
    """marketing_data_gen.py: one list of dicts per batch -> DataFrame -> CSV in a StringIO
    -> put_object. Returns (files, bytes, seconds building rows, seconds in pandas, seconds in S3)."""
    fake = Faker()
    total_registros_generados = 0
    numero_lote = 1
    nbytes = 0
    t_rows = t_pandas = t_put = 0.0
    while total_registros_generados < total_rows:
        # The seed always wrote a full batch; the last one is cut here so --rows is exact.
        tamano_lote = min(batch_size, total_rows - total_registros_generados)
        t0 = time.perf_counter()
        lote_datos = []
        for i in range(tamano_lote):
            impresiones_calc = random.randint(1000, 1000000)
            ctr_calc = random.uniform(0.01, 0.05)
            clicks_calc = int(impresiones_calc * ctr_calc)
            cpc_calc = random.uniform(0.01, 0.50)
            costo_total_calc = round(clicks_calc * cpc_calc, 2)
            video_view_time_calc = round(random.uniform(0.1, 10.00), 2)
            dato = {
                "campaign_id": str(uuid.uuid4()),
                "date": fake.date_between(start_date=FECHA_INICIO, end_date=FECHA_FIN),
                "platform": random.choice(PLATFORMS),
                "target_audience": random.choice(AUDIENCES),
                "impressions": impresiones_calc,
                "ctr": round(ctr_calc, 4),
                "clicks": clicks_calc,
                "cpc": round(cpc_calc, 2),
                "costo_total": costo_total_calc,
                "video_view_time": video_view_time_calc,
            }
            lote_datos.append(dato)
        t1 = time.perf_counter()

        df_lote = pd.DataFrame(lote_datos)
        csv_buffer = StringIO()
        df_lote.to_csv(csv_buffer, index=False)
        body = csv_buffer.getvalue()
        t2 = time.perf_counter()

        nombre_archivo = f"{raw_prefix}marketing_data_{numero_lote}.csv"
        s3.put_object(Bucket=bucket, Key=nombre_archivo, Body=body)
        t3 = time.perf_counter()

        nbytes += len(body)
        t_rows += t1 - t0
        t_pandas += t2 - t1
        t_put += t3 - t2
        total_registros_generados += tamano_lote
        if numero_lote % 10 == 0:
            log(f"  generate: {numero_lote} files, {total_registros_generados:,} rows")
        numero_lote += 1
    return numero_lote - 1, nbytes, t_rows, t_pandas, t_put


# ------------------------------------------------------------------ phase 2: unify

def unify(s3, bucket, raw_prefix, master_key, local_path):
    """data_merger.py: list by prefix, read_csv(Body) each, concat, to_csv locally, then
    to_csv(StringIO) -> put_object. The seed made one list_objects_v2 call (up to 1,000 keys);
    continuation pages are followed here too, which costs nothing at 50 files."""
    t0 = time.perf_counter()
    contents = []
    kwargs = {"Bucket": bucket, "Prefix": raw_prefix}
    while True:
        response = s3.list_objects_v2(**kwargs)
        contents.extend(response.get("Contents", []))
        if not response.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = response["NextContinuationToken"]
    if not contents:
        raise SystemExit(f"no objects under s3://{bucket}/{raw_prefix}")
    lista_dataframes = []
    for objeto in contents:
        obj_s3 = s3.get_object(Bucket=bucket, Key=objeto["Key"])
        lista_dataframes.append(pd.read_csv(obj_s3["Body"]))
    t1 = time.perf_counter()

    df_maestro = pd.concat(lista_dataframes, ignore_index=True)
    t2 = time.perf_counter()

    df_maestro.to_csv(local_path, index=False)
    t3 = time.perf_counter()

    csv_buffer = StringIO()
    df_maestro.to_csv(csv_buffer, index=False)
    body = csv_buffer.getvalue()
    t4 = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=master_key, Body=body)
    t5 = time.perf_counter()
    detail = {
        "list_and_read_s": round(t1 - t0, 3),
        "concat_s": round(t2 - t1, 3),
        "to_csv_local_s": round(t3 - t2, 3),
        "to_csv_buffer_s": round(t4 - t3, 3),
        "put_master_s": round(t5 - t4, 3),
    }
    return len(contents), len(df_maestro), len(body), detail


# ------------------------------------------------------------------ phase 3: analyse

def analyse(s3, bucket, master_key):
    """data_analysis.py: read the master dataset from S3, two groupbys, print."""
    t0 = time.perf_counter()
    response = s3.get_object(Bucket=bucket, Key=master_key)
    df = pd.read_csv(response["Body"])
    t1 = time.perf_counter()

    print("\n--- REPORTE DE MARKETING ---")
    plataforma_kpi = df.groupby('platform')[['costo_total', 'clicks', 'impressions']].sum()
    plataforma_kpi['CPC_Real'] = plataforma_kpi['costo_total'] / plataforma_kpi['clicks']
    plataforma_kpi['CTR_Real'] = (plataforma_kpi['clicks'] / plataforma_kpi['impressions']) * 100
    print("\n1. Rendimiento por Plataforma:")
    print(plataforma_kpi)

    print("\n2. Tiempo de visualización por Audiencia:")
    audiencia_view = df.groupby('target_audience')['video_view_time'].mean().sort_values(ascending=False)
    print(audiencia_view)
    sys.stdout.flush()
    t2 = time.perf_counter()
    detail = {"read_s": round(t1 - t0, 3), "groupby_and_print_s": round(t2 - t1, 3)}
    return len(df), detail


# ------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=500_000, help="rows in total (seed: 500,000)")
    p.add_argument("--batch", type=int, default=10_000, help="rows per CSV file (seed: 10,000)")
    p.add_argument("--date", default=dt.date.today().isoformat(),
                   help="partition date for the keys, YYYY-MM-DD (default: today)")
    p.add_argument("--local-dir", default=str(HERE),
                   help=f"where the local copy of {MASTER_NAME} goes (default: bench/, *.csv is git-ignored)")
    p.add_argument("--keep", action="store_true", help="leave the S3 objects and the local file in place")
    p.add_argument("--seed", type=int, default=None,
                   help="seed `random` and Faker (the seed did not; uuid4 is never seeded)")
    args = p.parse_args()
    dt.date.fromisoformat(args.date)

    endpoint, region, bucket = load_settings()
    part = f"dt={args.date}"
    raw_prefix = f"raw/marketing/{part}/"
    master_key = f"curated/marketing/{part}/{MASTER_NAME}"
    local_path = Path(args.local_dir) / MASTER_NAME
    if args.seed is not None:
        random.seed(args.seed)
        Faker.seed(args.seed)

    # Untimed set-up: bucket, and nothing left from an earlier run under these keys.
    admin = s3_client(endpoint, region)
    ensure_bucket(admin, bucket, region)
    stale = delete_prefix(admin, bucket, raw_prefix) + delete_prefix(admin, bucket, master_key)
    if stale:
        log(f"deleted {stale} objects left under this date")

    result = {
        "approach": "seed (random/uuid/Faker dicts + pandas DataFrame/to_csv/read_csv/concat/groupby + boto3 put/get_object)",
        "rows": args.rows,
        "batch": args.batch,
        "date": args.date,
        "bucket": bucket,
        "raw_prefix": raw_prefix,
        "master_key": master_key,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    hwm_reset = True
    phase_hwm = {"startup": hwm_kib()}

    # Phase 1
    hwm_reset &= reset_hwm()
    log(f"generate: {args.rows:,} rows in batches of {args.batch:,} -> s3://{bucket}/{raw_prefix}")
    t0 = time.perf_counter()
    s3 = s3_client(endpoint, region)
    files, raw_bytes, t_rows, t_pandas, t_put = generate(s3, bucket, raw_prefix, args.rows, args.batch)
    gen_s = time.perf_counter() - t0
    phase_hwm["generate"] = hwm_kib()
    log(f"generate: {gen_s:.1f} s")

    # Phase 2
    hwm_reset &= reset_hwm()
    log(f"unify: list {raw_prefix}, read, concat -> {local_path} and s3://{bucket}/{master_key}")
    t0 = time.perf_counter()
    s3 = s3_client(endpoint, region)
    unify_files, master_rows, master_bytes, unify_detail = unify(s3, bucket, raw_prefix, master_key, local_path)
    unify_s = time.perf_counter() - t0
    phase_hwm["unify"] = hwm_kib()
    log(f"unify: {unify_s:.1f} s")

    # Phase 3
    hwm_reset &= reset_hwm()
    log("analyse: read the master dataset back from S3, groupby platform / audience")
    t0 = time.perf_counter()
    s3 = s3_client(endpoint, region)
    analysed_rows, analyse_detail = analyse(s3, bucket, master_key)
    analyse_s = time.perf_counter() - t0
    phase_hwm["analyse"] = hwm_kib()
    log(f"analyse: {analyse_s:.1f} s")

    total_s = gen_s + unify_s + analyse_s
    peak_kib = max(v for v in phase_hwm.values() if v is not None)
    result.update({
        "files": files,
        "raw_bytes": raw_bytes,
        "generate_s": round(gen_s, 3),
        "generate_detail": {
            "build_rows_s": round(t_rows, 3),
            "dataframe_to_csv_s": round(t_pandas, 3),
            "put_object_s": round(t_put, 3),
        },
        "unify_s": round(unify_s, 3),
        "unify_files": unify_files,
        "unify_detail": unify_detail,
        "master_rows": master_rows,
        "master_bytes": master_bytes,
        "analyse_s": round(analyse_s, 3),
        "analyse_detail": analyse_detail,
        "analysed_rows": analysed_rows,
        "total_s": round(total_s, 3),
        "rows_per_s": round(args.rows / total_s),
        "peak_rss_mib": mib(peak_kib),
        "phase_peak_rss_mib": {k: (mib(v) if v is not None else None) for k, v in phase_hwm.items()},
        "phase_peak_rss_is_per_phase": hwm_reset,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "python": platform_mod.python_version(),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "faker": faker_pkg.VERSION,
            "boto3": boto3.__version__,
            "botocore": botocore.__version__,
        },
    })
    ok = files == unify_files and master_rows == args.rows == analysed_rows

    if not args.keep:
        removed = delete_prefix(admin, bucket, raw_prefix) + delete_prefix(admin, bucket, master_key)
        local_path.unlink(missing_ok=True)
        log(f"cleaned up {removed} objects and {local_path}")

    print()
    print(f"generate  {gen_s:9.2f} s   {files} files, {raw_bytes / 1e6:.1f} MB of CSV")
    print(f"unify     {unify_s:9.2f} s   {master_rows:,} rows, {master_bytes / 1e6:.1f} MB master")
    print(f"analyse   {analyse_s:9.2f} s")
    print(f"total     {total_s:9.2f} s   {round(args.rows / total_s):,} rows/s")
    print(f"peak RSS  {mib(peak_kib):9.1f} MiB "
          + "(" + ", ".join(f"{k} {v}" for k, v in result["phase_peak_rss_mib"].items()) + ")")
    if not ok:
        print(f"CHECK FAILED: files {files}/{unify_files}, rows {args.rows}/{master_rows}/{analysed_rows}")
    result["check_ok"] = ok
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
