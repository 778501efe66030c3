//! `etl run`: executes the deployed ASL definitions locally.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asl::lambda::LambdaTasks;
use asl::{execute, Failure, Machine, RunOptions, TaskInvoker};
use etl_core::{Context, LogicalDate};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::functions::{InProcess, OverInvokeApi};
use crate::template::{MachineSpec, Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{path}: {source}")]
    Definition {
        path: String,
        #[source]
        source: asl::AslError,
    },
    #[error("--input must be a JSON object: {0}")]
    Input(String),
}

/// Where Task states' Lambda functions run.
#[derive(Debug, Clone)]
pub enum FunctionHost {
    InProcess,
    /// A Lambda Invoke API endpoint, e.g. `http://127.0.0.1:9000` for `cargo lambda watch`.
    InvokeApi(String),
}

#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The execution's `logical_date`. `None` starts it as EventBridge Scheduler does: the
    /// extra input then carries `scheduled_time` and `cadence`, and the machine derives it.
    pub date: Option<LogicalDate>,
    pub extra_input: Option<Value>,
    pub host: FunctionHost,
    pub time_scale: f64,
    pub execution_name: Option<String>,
    /// Substitution values to use instead of the template's (e.g. `MaxConcurrency`).
    pub overrides: HashMap<String, String>,
}

/// One finished execution.
#[derive(Debug)]
pub struct RunReport {
    pub machine: String,
    pub execution_name: String,
    pub duration: Duration,
    pub output: Result<Value, Failure>,
    pub history: Vec<asl::Event>,
}

pub fn invoker(ctx: &Arc<Context>, host: &FunctionHost) -> Arc<dyn TaskInvoker> {
    match host {
        FunctionHost::InProcess => Arc::new(LambdaTasks(InProcess {
            ctx: Arc::clone(ctx),
        })),
        FunctionHost::InvokeApi(url) => Arc::new(LambdaTasks(OverInvokeApi::new(ctx, url))),
    }
}

/// The execution input: `{"logical_date": D}` (when there is a date) plus any extra fields.
pub fn execution_input(
    date: Option<LogicalDate>,
    extra: Option<&Value>,
) -> Result<Value, RunError> {
    let mut input = Map::new();
    if let Some(date) = date {
        input.insert("logical_date".into(), Value::String(date.to_string()));
    }
    match extra {
        None => {}
        Some(Value::Object(fields)) => input.extend(fields.clone()),
        Some(other) => return Err(RunError::Input(other.to_string())),
    }
    Ok(Value::Object(input))
}

pub fn load_machine(
    spec: &MachineSpec,
    overrides: &HashMap<String, String>,
) -> Result<Machine, RunError> {
    Machine::from_json(&spec.definition_with(overrides)?).map_err(|source| RunError::Definition {
        path: spec.definition_path.display().to_string(),
        source,
    })
}

pub async fn run_machine(
    ctx: &Arc<Context>,
    template: &Template,
    name: &str,
    settings: &RunSettings,
) -> Result<RunReport, RunError> {
    let spec = template.machine(name)?;
    let machine = load_machine(spec, &settings.overrides)?;
    let input = execution_input(settings.date, settings.extra_input.as_ref())?;
    let date_label = settings
        .date
        .map_or_else(|| "scheduled".to_string(), |d| d.to_string());
    let execution_name = settings.execution_name.clone().unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
        format!("{}-{date_label}-local-{stamp}", spec.name)
    });
    let mut options = RunOptions::new(&spec.name, &execution_name);
    options.time_scale = settings.time_scale;

    let span = tracing::info_span!(
        "run",
        machine = %spec.name,
        logical_date = %date_label,
        execution = %execution_name,
    );
    let started = Instant::now();
    let execution = execute(&machine, input, invoker(ctx, &settings.host), options)
        .instrument(span)
        .await;
    Ok(RunReport {
        machine: spec.name.clone(),
        execution_name,
        duration: started.elapsed(),
        output: execution.output,
        history: execution.history,
    })
}
