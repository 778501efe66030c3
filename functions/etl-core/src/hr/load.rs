//! Loading hired employees: binary COPY into a session staging table, then one
//! `INSERT … ON CONFLICT DO NOTHING` on the natural key, all in one transaction. A re-run
//! inserts nothing; a connection lost mid-load rolls everything back.

use serde_json::json;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::clean::{Employee, Reject};
use crate::error::StageError;
use crate::logical_date::LogicalDate;

const CREATE_STAGING: &str = "
    CREATE TEMP TABLE hire_staging (
        batch_index  integer NOT NULL,
        full_name    text    NOT NULL,
        job_title    text    NOT NULL,
        department   text    NOT NULL,
        email        text    NOT NULL,
        salary_cents bigint  NOT NULL,
        hire_date    date    NOT NULL
    ) ON COMMIT DROP";

const COPY_STAGING: &str = "COPY hire_staging (batch_index, full_name, job_title, department, email, salary_cents, hire_date) FROM STDIN (FORMAT binary)";

const STAGING_TYPES: &[Type] = &[
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::DATE,
];

const MERGE: &str = "
    INSERT INTO hr.employees
        (logical_date, batch_seed, batch_index, full_name, job_title, department, email, salary, hire_date)
    SELECT $1, $2, batch_index, full_name, job_title, department, email, salary_cents / 100.0, hire_date
      FROM hire_staging
     ORDER BY batch_index
    ON CONFLICT ON CONSTRAINT employees_natural_key DO NOTHING";

const SAVE_REJECTS: &str = "
    INSERT INTO hr.employee_rejects (logical_date, batch_seed, batch_index, record, reason)
    SELECT $1, $2, r.batch_index, r.record, r.reason
      FROM UNNEST($3::integer[], $4::jsonb[], $5::text[]) AS r(batch_index, record, reason)
    ON CONFLICT DO NOTHING";

/// A COPY in progress into the staging table.
pub struct StagingCopy<'t, 'c> {
    writer: std::pin::Pin<Box<BinaryCopyInWriter>>,
    tx: &'t Transaction<'c>,
    rows: u64,
}

impl<'t, 'c> StagingCopy<'t, 'c> {
    pub async fn begin(tx: &'t Transaction<'c>) -> Result<Self, StageError> {
        tx.batch_execute(CREATE_STAGING)
            .await
            .map_err(StageError::postgres)?;
        let sink = tx
            .copy_in(COPY_STAGING)
            .await
            .map_err(StageError::postgres)?;
        Ok(Self {
            writer: Box::pin(BinaryCopyInWriter::new(sink, STAGING_TYPES)),
            tx,
            rows: 0,
        })
    }

    pub async fn write(&mut self, employees: &[Employee]) -> Result<(), StageError> {
        for e in employees {
            self.writer
                .as_mut()
                .write(&[
                    &e.index,
                    &e.full_name,
                    &e.job_title,
                    &e.department,
                    &e.email,
                    &e.salary_cents,
                    &e.hire_date,
                ])
                .await
                .map_err(StageError::postgres)?;
        }
        self.rows += employees.len() as u64;
        Ok(())
    }

    /// Ends the COPY and merges the staged rows; returns (staged, newly inserted).
    pub async fn merge(mut self, date: LogicalDate, seed: i64) -> Result<(u64, u64), StageError> {
        let staged = self
            .writer
            .as_mut()
            .finish()
            .await
            .map_err(StageError::postgres)?;
        if staged != self.rows {
            return Err(StageError::Internal(format!(
                "COPY reported {staged} rows, {} were written",
                self.rows
            )));
        }
        let inserted = self
            .tx
            .execute(MERGE, &[&date.date(), &seed])
            .await
            .map_err(StageError::postgres)?;
        Ok((staged, inserted))
    }
}

/// Records rejected rows with their reasons (idempotent per natural key).
pub async fn save_rejects(
    tx: &Transaction<'_>,
    date: LogicalDate,
    seed: i64,
    rejects: &[Reject],
) -> Result<u64, StageError> {
    if rejects.is_empty() {
        return Ok(0);
    }
    let indexes: Vec<i32> = rejects.iter().map(|r| r.raw.index).collect();
    let records: Vec<serde_json::Value> = rejects.iter().map(|r| json!(r.raw)).collect();
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    tx.execute(
        SAVE_REJECTS,
        &[&date.date(), &seed, &indexes, &records, &reasons],
    )
    .await
    .map_err(StageError::postgres)
}
