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
use crate::item_store::S3ItemStore;
use crate::lambda_limits::{InjectedFault, LambdaLimits, LimitedFunctions};
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
    /// Invokes that fail with a Lambda service error before the function runs.
    pub faults: Vec<InjectedFault>,
    /// Lambda's per-function limits. `sizing` entries here override the template's `Timeout`
    /// and `MemorySize` for that function (the rest come from the template).
    pub lambda_limits: LambdaLimits,
}

impl Default for RunSettings {
    /// Today's date is not a default: a run without one starts as the scheduler does.
    fn default() -> Self {
        Self {
            date: None,
            extra_input: None,
            host: FunctionHost::InProcess,
            time_scale: 1.0,
            execution_name: None,
            overrides: HashMap::new(),
            faults: Vec::new(),
            lambda_limits: LambdaLimits::default(),
        }
    }
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

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.output.is_ok()
    }

    /// The execution's status as Step Functions names it.
    pub fn status(&self) -> &'static str {
        if self.succeeded() {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
    }

    pub fn failure(&self) -> Option<FailedExecution<'_>> {
        let failure = self.output.as_ref().err()?;
        Some(FailedExecution {
            name: &self.execution_name,
            status: self.status(),
            error: &failure.error,
            cause: &failure.cause,
        })
    }
}

/// How an execution ended when it did not succeed: what `etl run` and `etl start` print.
#[derive(Debug, Clone, Copy)]
pub struct FailedExecution<'a> {
    pub name: &'a str,
    pub status: &'a str,
    pub error: &'a str,
    pub cause: &'a str,
}

impl std::fmt::Display for FailedExecution<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "execution {} {}\n  error: {}\n  cause: {}",
            self.name, self.status, self.error, self.cause
        )
    }
}

/// The table closing `etl run` and `etl backfill`: one line per execution.
pub struct RunSummary<'a>(pub &'a [RunReport]);

impl std::fmt::Display for RunSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run summary")?;
        write!(
            f,
            "  {:<20} {:<10} {:>10}  execution",
            "machine", "status", "seconds"
        )?;
        for report in self.0 {
            write!(
                f,
                "\n  {:<20} {:<10} {:>10.2}  {}",
                report.machine,
                report.status(),
                report.duration.as_secs_f64(),
                report.execution_name
            )?;
        }
        Ok(())
    }
}

/// The Task invoker of one execution: the host, with Lambda's limits and the injected faults
/// (counted per execution) around it.
pub fn invoker(
    ctx: &Arc<Context>,
    host: &FunctionHost,
    limits: LambdaLimits,
    faults: Vec<InjectedFault>,
) -> Arc<dyn TaskInvoker> {
    match host {
        FunctionHost::InProcess => {
            let host = InProcess {
                ctx: Arc::clone(ctx),
            };
            Arc::new(LambdaTasks(LimitedFunctions::new(
                host, limits, faults, true,
            )))
        }
        FunctionHost::InvokeApi(url) => {
            let host = OverInvokeApi::new(ctx, url);
            Arc::new(LambdaTasks(LimitedFunctions::new(
                host, limits, faults, false,
            )))
        }
    }
}

/// The settings' limits completed with the template's `Timeout` and `MemorySize`.
fn lambda_limits(template: &Template, settings: &RunSettings) -> LambdaLimits {
    let mut limits = settings.lambda_limits.clone();
    for (binary, sizing) in template.all_sizing() {
        limits.sizing.entry(binary.clone()).or_insert(*sizing);
    }
    limits
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
    // A distributed Map's ItemReader and ResultWriter reach the local S3 server.
    options.item_store = Some(Arc::new(S3ItemStore::new(ctx.s3().clone())));

    let span = tracing::info_span!(
        "run",
        machine = %spec.name,
        logical_date = %date_label,
        execution = %execution_name,
    );
    let started = Instant::now();
    let invoker = invoker(
        ctx,
        &settings.host,
        lambda_limits(template, settings),
        settings.faults.clone(),
    );
    let execution = execute(&machine, input, invoker, options)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(machine: &str, seconds: f64, output: Result<Value, Failure>) -> RunReport {
        RunReport {
            machine: machine.to_string(),
            execution_name: format!("{machine}-2026-11-25-local"),
            duration: Duration::from_secs_f64(seconds),
            output,
            history: Vec::new(),
        }
    }

    #[test]
    fn the_summary_has_a_line_per_execution() {
        let reports = [
            report("hr-setup", 1.234, Ok(Value::Null)),
            report("hr", 20.0, Err(Failure::new("States.TaskFailed", "boom"))),
        ];
        assert_eq!(
            RunSummary(&reports).to_string(),
            "run summary\n  \
             machine              status        seconds  execution\n  \
             hr-setup             SUCCEEDED        1.23  hr-setup-2026-11-25-local\n  \
             hr                   FAILED          20.00  hr-2026-11-25-local"
        );
    }

    #[test]
    fn a_failure_names_the_execution_its_error_and_cause() {
        let failed = report("hr", 1.0, Err(Failure::new("States.TaskFailed", "boom")));
        assert_eq!(
            failed.failure().map(|f| f.to_string()).as_deref(),
            Some("execution hr-2026-11-25-local FAILED\n  error: States.TaskFailed\n  cause: boom")
        );
        assert!(report("hr", 1.0, Ok(Value::Null)).failure().is_none());
    }
}
