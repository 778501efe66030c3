#!/usr/bin/env bash
# LocalStack init hook: the data-lake bucket the pipelines write to.
set -euo pipefail
awslocal s3 mb "s3://${ETL_BUCKET:-etl-lake-local}" 2>/dev/null || true
