//! `etl run`: executes the deployed ASL definitions locally.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asl::lambda::LambdaTasks;
use asl::{execute, Failure, Machine, RunOptions, TaskInvoker};
use etl_core::{Context, LogicalDate};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::executions::{self, ExecutionStoreError, StoredExecution};
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
    #[error(transparent)]
    Store(#[from] ExecutionStoreError),
    #[error("the executions table is in PostgreSQL: {0}")]
    Database(#[from] etl_core::StageError),
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
    /// Told of the execution's events as they happen (`etl run`'s live progress).
    pub observer: Option<asl::Observer>,
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
            observer: None,
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
    /// When each event of `history` happened (same order).
    pub event_times: Vec<chrono::DateTime<chrono::Utc>>,
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

    /// The Task states the execution entered, in order (a state entered again, e.g. after a
    /// Catch loop, appears again; a redrive's replayed states do not appear).
    pub fn tasks_entered(&self) -> impl Iterator<Item = &str> {
        self.history.iter().filter_map(|event| match event {
            asl::Event::StateEntered { state, state_type } if state_type == "Task" => {
                Some(state.as_str())
            }
            _ => None,
        })
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
    parse_machine(spec, &spec.definition_with(overrides)?)
}

fn parse_machine(spec: &MachineSpec, definition: &str) -> Result<Machine, RunError> {
    Machine::from_json(definition).map_err(|source| RunError::Definition {
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
    let definition = spec.definition_with(&settings.overrides)?;
    let machine = parse_machine(spec, &definition)?;
    let input = execution_input(settings.date, settings.extra_input.as_ref())?;
    let date_label = settings
        .date
        .map_or_else(|| "scheduled".to_string(), |d| d.to_string());
    let execution_name = settings.execution_name.clone().unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
        format!("{}-{date_label}-local-{stamp}", spec.name)
    });
    let span = tracing::info_span!(
        "run",
        machine = %spec.name,
        logical_date = %date_label,
        execution = %execution_name,
    );
    let attempt = Attempt {
        machine: &machine,
        stored: StoredExecution {
            name: execution_name,
            machine: spec.name.clone(),
            definition,
            input,
            status: "RUNNING".into(),
            error: None,
            cause: None,
            output: None,
            redrive_count: 0,
            history_events: 0,
            journal: asl::Journal::default(),
            started_at: chrono::Utc::now(),
            stopped_at: chrono::Utc::now(),
        },
        redrive: None,
    };
    Ok(attempt.run(ctx, template, settings).instrument(span).await)
}

/// `etl run --redrive <execution>`: resumes a failed local execution from where it failed, as
/// `RedriveExecution` does — same definition, input and name; the states that completed are
/// not run again (see `asl::redrive`). `settings` says how to run it (host, time scale,
/// faults); its date, input, name and overrides are the execution's own and are ignored.
pub async fn redrive_machine(
    ctx: &Arc<Context>,
    template: &Template,
    execution_name: &str,
    settings: &RunSettings,
) -> Result<RunReport, RunError> {
    let client = ctx.postgres().await.map_err(RunError::Database)?;
    let stored = executions::load(&client, execution_name).await?;
    drop(client);
    let redrive = stored
        .redrive(chrono::Utc::now())
        .map_err(ExecutionStoreError::from)?;
    let spec = template.machine(&stored.machine)?;
    let machine = parse_machine(spec, &stored.definition)?;
    let span = tracing::info_span!(
        "redrive",
        machine = %stored.machine,
        execution = %stored.name,
        redrive_count = redrive.count + 1,
    );
    let attempt = Attempt {
        machine: &machine,
        stored,
        redrive: Some(redrive),
    };
    Ok(attempt.run(ctx, template, settings).instrument(span).await)
}

/// One attempt of an execution: run, then kept in `etl.executions` so that it can be redriven.
struct Attempt<'a> {
    machine: &'a Machine,
    stored: StoredExecution,
    redrive: Option<asl::Redrive>,
}

impl Attempt<'_> {
    async fn run(
        self,
        ctx: &Arc<Context>,
        template: &Template,
        settings: &RunSettings,
    ) -> RunReport {
        let Self {
            machine,
            mut stored,
            redrive,
        } = self;
        let mut options = RunOptions::new(&stored.machine, &stored.name);
        options.time_scale = settings.time_scale;
        // A distributed Map's ItemReader and ResultWriter reach the local S3 server.
        options.item_store = Some(Arc::new(S3ItemStore::new(ctx.s3().clone())));
        stored.redrive_count = redrive.as_ref().map_or(0, |r| r.count + 1);
        options.redrive = redrive;
        options.observer = settings.observer.clone();
        let started = Instant::now();
        let invoker = invoker(
            ctx,
            &settings.host,
            lambda_limits(template, settings),
            settings.faults.clone(),
        );
        let execution = execute(machine, stored.input.clone(), invoker, options).await;

        stored.stopped_at = chrono::Utc::now();
        stored.history_events = execution.service_events.values().sum();
        stored.journal = execution.journal;
        match &execution.output {
            Ok(output) => {
                stored.status = "SUCCEEDED".into();
                stored.output = Some(output.clone());
                (stored.error, stored.cause) = (None, None);
            }
            Err(failure) => {
                stored.status = "FAILED".into();
                stored.output = None;
                stored.error = Some(failure.error.clone());
                stored.cause = Some(failure.cause.clone());
            }
        }
        let saved = match ctx.postgres().await {
            Ok(client) => executions::save_with_history(
                &client,
                &stored,
                &execution.history,
                &execution.event_times,
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(reason) = &saved {
            tracing::warn!(execution = %stored.name, %reason, "execution not kept: it cannot be redriven");
        }
        RunReport {
            machine: stored.machine,
            execution_name: stored.name,
            duration: started.elapsed(),
            output: execution.output,
            history: execution.history,
            event_times: execution.event_times,
        }
    }
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
            event_times: Vec::new(),
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
