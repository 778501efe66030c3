//! Versioned, idempotent schema migrations.
//!
//! All pending migrations run in one transaction under an advisory lock, so concurrent
//! callers (two Lambda invocations, a retry racing a slow first attempt) serialise, and a
//! failure leaves the schema exactly as it was. An applied migration whose text has changed
//! is refused: the database would no longer match the code.

use serde::Serialize;

use crate::clients::PgClient;
use crate::error::StageError;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only; never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "hr_employees",
        sql: include_str!("../migrations/0001_hr_employees.sql"),
    },
    Migration {
        version: 2,
        name: "etl_run_ledger",
        sql: include_str!("../migrations/0002_etl_run_ledger.sql"),
    },
    Migration {
        version: 3,
        name: "run_leases",
        sql: include_str!("../migrations/0003_run_leases.sql"),
    },
    Migration {
        version: 4,
        name: "skipped_runs",
        sql: include_str!("../migrations/0004_skipped_runs.sql"),
    },
    Migration {
        version: 5,
        name: "executions",
        sql: include_str!("../migrations/0005_executions.sql"),
    },
    Migration {
        version: 6,
        name: "hire_batches",
        sql: include_str!("../migrations/0006_hire_batches.sql"),
    },
    Migration {
        version: 7,
        name: "execution_history",
        sql: include_str!("../migrations/0007_execution_history.sql"),
    },
    Migration {
        version: 8,
        name: "hire_batch_id_blocks",
        sql: include_str!("../migrations/0008_hire_batch_id_blocks.sql"),
    },
];

/// Arbitrary but fixed: the advisory lock key all migrators agree on.
const MIGRATION_LOCK_KEY: i64 = 0x0065_746c_5f6d_6967; // "etl_mig"

const BOOKKEEPING: &str = "
    CREATE SCHEMA IF NOT EXISTS etl;
    CREATE TABLE IF NOT EXISTS etl.schema_migrations (
        version    integer PRIMARY KEY,
        name       text        NOT NULL,
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    );";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Versions applied by this call, in order.
    pub applied: Vec<i32>,
    /// How many were already in place.
    pub already_applied: usize,
    /// The highest version now in the database.
    pub schema_version: i32,
}

pub async fn migrate(client: &mut PgClient) -> Result<MigrationReport, StageError> {
    let tx = client.transaction().await.map_err(StageError::postgres)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(StageError::postgres)?;
    tx.batch_execute(BOOKKEEPING)
        .await
        .map_err(StageError::postgres)?;

    let rows = tx
        .query(
            "SELECT version, name, checksum FROM etl.schema_migrations",
            &[],
        )
        .await
        .map_err(StageError::postgres)?;
    let mut applied_before = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i32 = row.get(0);
        let checksum: String = row.get(2);
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(StageError::Internal(format!(
                "the database has migration {version} ({}) that this build does not know; deploy a newer build",
                row.get::<_, String>(1)
            )));
        };
        if checksum != checksum_of(known.sql) {
            return Err(StageError::Internal(format!(
                "migration {version} ({}) was edited after it was applied; add a new migration instead",
                known.name
            )));
        }
        applied_before.push(version);
    }

    let mut applied = Vec::new();
    for migration in MIGRATIONS
        .iter()
        .filter(|m| !applied_before.contains(&m.version))
    {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        tx.batch_execute(migration.sql).await.map_err(|e| {
            let err = StageError::postgres(e);
            StageError::Internal(format!("migration {} failed: {err}", migration.version))
        })?;
        tx.execute(
            "INSERT INTO etl.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[
                &migration.version,
                &migration.name,
                &checksum_of(migration.sql),
            ],
        )
        .await
        .map_err(StageError::postgres)?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(StageError::postgres)?;

    Ok(MigrationReport {
        already_applied: applied_before.len(),
        applied,
        schema_version: MIGRATIONS.last().map_or(0, |m| m.version),
    })
}

/// FNV-1a 64: stable across builds and platforms, enough to notice an edited file.
fn checksum_of(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_ascending() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{} is out of order", m.name);
        }
    }

    #[test]
    fn checksum_is_stable_and_sensitive() {
        assert_eq!(checksum_of("SELECT 1"), checksum_of("SELECT 1"));
        assert_ne!(checksum_of("SELECT 1"), checksum_of("SELECT 2"));
        assert_eq!(checksum_of(""), "cbf29ce484222325");
    }
}
