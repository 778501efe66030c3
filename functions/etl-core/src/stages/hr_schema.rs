//! Stage `hr-schema`: brings the database schema to the version this build expects.

use serde::{Deserialize, Serialize};

use crate::clients::Context;
use crate::error::StageError;
use crate::logical_date::LogicalDate;
use crate::migrations::{migrate, MigrationReport};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SchemaEvent {
    /// Only for the logs: the schema does not depend on the date.
    #[serde(default)]
    pub logical_date: Option<LogicalDate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<LogicalDate>,
    #[serde(flatten)]
    pub migrations: MigrationReport,
}

pub async fn run(ctx: &Context, event: SchemaEvent) -> Result<SchemaOutput, StageError> {
    let mut client = ctx.postgres().await?;
    let migrations = migrate(&mut client).await?;
    tracing::info!(
        applied = ?migrations.applied,
        schema_version = migrations.schema_version,
        "schema is current"
    );
    Ok(SchemaOutput {
        logical_date: event.logical_date,
        migrations,
    })
}
