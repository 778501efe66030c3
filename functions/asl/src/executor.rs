//! The run loop: states, transitions, Map and Parallel. Retry, Catch and the result fields
//! that Task, Parallel and Map share are in [`task_like`]; Wait's delay in [`wait`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::item_store::ItemStore;
use crate::limits::{self, check_payload, History, Payload};
use crate::map_run::MapRun;
use crate::model::{
    ChoiceState, FailState, Flow, Io, Machine, MapState, ParallelState, PassState, State,
    SucceedState, TaskState, WaitState,
};
use crate::redrive::{self, Journal, Recorder, Redrive, Step};
use crate::template::{assign, expand, place, read, select, Roots};
use crate::variables::{check_sizes, Variables};
use crate::{choice, errors, intrinsics, Event, Failure, TaskInvoker, TaskRequest};

mod child_execution;
mod distributed_map;
mod fan_out;
mod jsonata_state;
#[cfg(test)]
mod redrive_tests;
mod task_like;
mod wait;

use task_like::TaskLike;
pub(crate) use wait::parse_timestamp;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub execution_name: String,
    pub state_machine_name: String,
    /// Multiplies every Wait and Retry interval: 0.01 turns a 5-minute retry into 3 seconds.
    pub time_scale: f64,
    /// `$$.Execution.RoleArn`.
    pub role_arn: String,
    /// `$$.Execution.StartTime`; the moment `execute` is called when `None`.
    pub start_time: Option<DateTime<Utc>>,
    /// S3, for a distributed Map's `ItemReader` and `ResultWriter`; a run that needs it
    /// without one fails with `States.Runtime`.
    pub item_store: Option<Arc<dyn ItemStore>>,
    /// Resume this earlier attempt of the execution instead of starting afresh (see
    /// [`redrive`]). The caller checks it is redrivable ([`redrive::check_redrivable`]).
    pub redrive: Option<Redrive>,
    /// Told of every history event as it is recorded (e.g. to show live progress); none by
    /// default. A distributed Map's child executions share it.
    pub observer: Option<Observer>,
}

/// One history event as it happens, for an [`Observer`].
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The state machine's name; a distributed Map's child executions run
    /// `<machine>/<Map state>`.
    pub state_machine: &'a str,
    pub execution: &'a str,
    /// Whether the event is a distributed Map's child execution's rather than the
    /// execution's own.
    pub child: bool,
    pub event: &'a Event,
    /// With a Task state's `StateExited`: the result its resource returned (before
    /// `ResultSelector`; a Lambda's output is under `Payload`), so that an observer can read
    /// figures such as rows from it. Borrowed for the call only and never stored in the
    /// history; `None` with every other event.
    pub result: Option<&'a Value>,
}

/// Watches an execution's events as they are recorded. It is called on the executor's task,
/// inside the run loop: it must return quickly and must not block.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Observed<'_>) + Send + Sync>);

impl Observer {
    pub fn new(watch: impl Fn(&Observed<'_>) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(watch))
    }

    fn tell(&self, observed: &Observed<'_>) {
        (self.0)(observed);
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl RunOptions {
    pub fn new(state_machine_name: &str, execution_name: &str) -> Self {
        Self {
            execution_name: execution_name.to_string(),
            state_machine_name: state_machine_name.to_string(),
            time_scale: 1.0,
            role_arn: "arn:aws:iam::000000000000:role/local-execution".to_string(),
            start_time: None,
            item_store: None,
            redrive: None,
            observer: None,
        }
    }
}

pub struct Execution {
    pub output: Result<Value, Failure>,
    pub history: Vec<Event>,
    /// When each event of `history` happened (same length, same order): the timestamps of
    /// the stored execution history (`etl history`).
    pub event_times: Vec<DateTime<Utc>>,
    /// The events Step Functions would have written to this execution's history, by type:
    /// what its 25,000-event quota counts.
    pub service_events: BTreeMap<&'static str, u64>,
    /// The distributed Maps' runs, with their child executions (and those of any Map Run
    /// nested in them), in the order they ended.
    pub map_runs: Vec<MapRun>,
    /// Every state entry that completed, in this attempt or an earlier one: what a redrive of
    /// this execution replays.
    pub journal: Journal,
}

/// Runs a state machine to completion.
pub async fn execute(
    machine: &Machine,
    input: Value,
    invoker: Arc<dyn TaskInvoker>,
    options: RunOptions,
) -> Execution {
    let started = options.start_time.unwrap_or_else(Utc::now);
    // The context object's fields, as "Accessing execution data from the Context object"
    // lists them; RedriveTime appears only once an execution was redriven.
    let mut execution = json!({
        "Id": format!("arn:aws:states:local:000000000000:execution:{}:{}", options.state_machine_name, options.execution_name),
        "Name": options.execution_name,
        "Input": input.clone(),
        "RoleArn": options.role_arn,
        "StartTime": started.to_rfc3339_opts(SecondsFormat::Millis, true),
        "RedriveCount": 0,
    });
    let (recorder, service_history) = match &options.redrive {
        Some(earlier) => {
            execution["RedriveCount"] = json!(earlier.count + 1);
            execution["RedriveTime"] =
                json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true));
            (
                Recorder::replaying(earlier.journal.clone()),
                History::redriven(earlier.prior_events),
            )
        }
        None => (Recorder::default(), History::default()),
    };
    let runner = Runner {
        invoker,
        history: Mutex::new(Vec::new()),
        event_times: Mutex::default(),
        service_history,
        map_runs: Arc::default(),
        recorder: Arc::new(recorder),
        execution,
        state_machine: json!({
            "Id": format!("arn:aws:states:local:000000000000:stateMachine:{}", options.state_machine_name),
            "Name": options.state_machine_name,
        }),
        options,
    };
    let run = async {
        check_payload(&input, "", Payload::ExecutionInput)?;
        match &runner.options.redrive {
            Some(earlier) => {
                runner.service_history.record(&["ExecutionRedriven"])?;
                runner.record(Event::ExecutionRedriven {
                    redrive_count: earlier.count + 1,
                    replayed_steps: earlier.journal.len(),
                });
            }
            None => runner.service_history.record(&["ExecutionStarted"])?,
        }
        runner
            .run_machine(machine, input, None, Variables::default(), "")
            .await
    };
    let output = match machine.timeout_seconds {
        Some(seconds) => match tokio::time::timeout(runner.scaled(seconds as f64), run).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                errors::TIMEOUT,
                format!("the execution ran longer than its TimeoutSeconds ({seconds} s)"),
            )),
        },
        None => run.await,
    };
    runner.service_history.finish(output.is_ok());
    match &output {
        Ok(_) => runner.record(Event::ExecutionSucceeded),
        Err(f) => runner.record(Event::ExecutionFailed {
            error: f.error.clone(),
            cause: f.cause.clone(),
        }),
    }
    let history = runner
        .history
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let event_times = runner
        .event_times
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let map_runs = std::mem::take(
        &mut *runner
            .map_runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Execution {
        output,
        history,
        event_times,
        service_events: runner.service_history.counts(),
        map_runs,
        journal: runner.recorder.journal(),
    }
}

struct Runner {
    invoker: Arc<dyn TaskInvoker>,
    options: RunOptions,
    history: Mutex<Vec<Event>>,
    event_times: Mutex<Vec<DateTime<Utc>>>,
    service_history: History,
    execution: Value,
    state_machine: Value,
    /// Shared with the child executions' runners.
    map_runs: Arc<Mutex<Vec<MapRun>>>,
    /// The execution's journal, replayed on a redrive; shared with the child executions'
    /// runners.
    recorder: Arc<Recorder>,
}

/// The Map item a state runs for, if any: `$$.Map.Item`.
type MapItem = Option<(usize, Value)>;

/// One entry into a state: what its context object (`$$`) is built from, and the
/// variables it sees.
#[derive(Clone, Copy)]
struct Visit<'a> {
    name: &'a str,
    /// Where this entry is in the execution's [`Journal`]; the iterations and branches it
    /// runs are keyed under it.
    key: &'a str,
    entered: DateTime<Utc>,
    item: &'a MapItem,
    vars: &'a Variables,
}

impl<'a> Visit<'a> {
    /// A state entered now.
    fn new(name: &'a str, key: &'a str, item: &'a MapItem, vars: &'a Variables) -> Self {
        Self {
            name,
            key,
            entered: Utc::now(),
            item,
            vars,
        }
    }

    fn roots(self, context: &'a Value) -> Roots<'a> {
        Roots {
            context,
            vars: self.vars,
        }
    }
}

/// Where a state goes, with what output, having assigned which variables.
#[derive(Clone)]
struct Transition {
    next: Option<String>,
    output: Value,
    assigned: Map<String, Value>,
    /// A Task's result, kept only while an observer watches the run, for its `StateExited`
    /// ([`Observed::result`]); dropped as the state exits.
    observed_result: Option<Value>,
}

fn runtime<T>(result: Result<T, String>) -> Result<T, Failure> {
    result.map_err(Failure::runtime)
}

/// A state's `Assign`, evaluated and checked against the size quotas.
fn assigned(
    template: Option<&Value>,
    value: &Value,
    roots: Roots<'_>,
) -> Result<Map<String, Value>, Failure> {
    let assigned = runtime(assign(template, value, roots))?;
    check_sizes(&assigned)?;
    Ok(assigned)
}

/// The service's Cause for a runtime or JSONata evaluation error names the state it happened
/// in.
fn in_state(failure: Failure, state: &str, event_id: u64) -> Failure {
    let named =
        failure.error == errors::RUNTIME || failure.error == crate::jsonata::QUERY_EVALUATION_ERROR;
    if !named
        || failure
            .cause
            .starts_with("An error occurred while executing")
    {
        return failure;
    }
    Failure::new(
        failure.error,
        format!(
            "An error occurred while executing the state '{state}' (entered at the event id #{event_id}). {}",
            failure.cause
        ),
    )
}

impl Runner {
    fn record(&self, event: Event) {
        self.record_with_result(event, None);
    }

    /// Whether an observer watches the run: only then is a Task's result kept for it.
    fn observed(&self) -> bool {
        self.options.observer.is_some()
    }

    /// Records `event`; the observer also sees `result` ([`Observed::result`]).
    fn record_with_result(&self, event: Event, result: Option<&Value>) {
        match &event {
            Event::StateEntered { state, state_type } => {
                tracing::info!(state = %state, state_type = %state_type, "state entered");
            }
            Event::TaskFailed {
                state,
                error,
                retry_count,
            } => {
                tracing::warn!(state = %state, error = %error, retry_count, "task failed");
            }
            Event::RetryScheduled {
                state,
                delay_seconds,
                retry_count,
                ..
            } => {
                tracing::info!(state = %state, retry_count, delay_seconds, "retry scheduled");
            }
            Event::Caught { state, error, next } => {
                tracing::warn!(state = %state, error = %error, next = %next, "error caught");
            }
            _ => tracing::debug!(?event),
        }
        if let Some(observer) = &self.options.observer {
            let state_machine = self.options.state_machine_name.as_str();
            observer.tell(&Observed {
                state_machine,
                execution: &self.options.execution_name,
                // Only a child's machine name has a '/': `<machine>/<Map state>`.
                child: state_machine.contains('/'),
                event: &event,
                result,
            });
        }
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        history.push(event);
        // Under the history's lock, so that the two stay in step.
        self.event_times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Utc::now());
    }

    /// `seconds` of model time as wall-clock time. Bounded to [0, a year] first so that no
    /// definition can make `time_scale` multiply infinity (inf * 0 is NaN) or overflow a
    /// `Duration`; whatever is left unrepresentable waits the full year.
    fn scaled(&self, seconds: f64) -> Duration {
        let bounded = if seconds.is_nan() {
            0.0
        } else {
            seconds.clamp(0.0, limits::MAX_DELAY_SECONDS)
        };
        let scaled = bounded * self.options.time_scale;
        if !scaled.is_finite() || scaled < 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(scaled.min(limits::MAX_DELAY_SECONDS)).unwrap_or(Duration::ZERO)
    }

    fn context(&self, visit: Visit<'_>, retry_count: u32) -> Value {
        let mut context = json!({
            "Execution": self.execution,
            "StateMachine": self.state_machine,
            "State": {
                "Name": visit.name,
                "EnteredTime": visit.entered.to_rfc3339_opts(SecondsFormat::Millis, true),
                "RetryCount": retry_count,
            },
        });
        if let Some((index, value)) = visit.item {
            context["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        context
    }

    /// Runs `machine` (the execution's, a branch's or an iteration's) from its start state.
    /// `scope` prefixes the journal keys of the states it enters.
    fn run_machine<'a>(
        &'a self,
        machine: &'a Machine,
        input: Value,
        item: MapItem,
        vars: Variables,
        scope: &'a str,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        async move {
            let mut name = machine.start_at.clone();
            let mut input = input;
            let mut vars = vars;
            let mut entries: BTreeMap<String, u32> = BTreeMap::new();
            loop {
                let state = machine
                    .state(&name)
                    .map_err(|e| Failure::runtime(e.to_string()))?;
                let nth = entries.entry(name.clone()).or_insert(0);
                let key = redrive::entry_key(scope, &name, *nth);
                *nth += 1;
                let transition = match self.recorder.replayed(&key) {
                    // Completed in an earlier attempt: taken as it was, not run again.
                    Some(step) => Transition {
                        next: step.next,
                        output: step.output,
                        assigned: step.assigned,
                        observed_result: None,
                    },
                    None => {
                        self.enter_state(machine, state, &name, &key, input, &item, &vars)
                            .await?
                    }
                };
                self.recorder.record(
                    key,
                    Step {
                        next: transition.next.clone(),
                        output: transition.output.clone(),
                        assigned: transition.assigned.clone(),
                    },
                );
                vars.apply(transition.assigned)?;
                match transition.next {
                    Some(next) => {
                        name = next;
                        input = transition.output;
                    }
                    None => return Ok(transition.output),
                }
            }
        }
        .boxed()
    }

    /// One entry into a state, booked in both histories; a failure is the state's own, not
    /// caught by it.
    #[allow(clippy::too_many_arguments)]
    async fn enter_state(
        &self,
        machine: &Machine,
        state: &State,
        name: &str,
        key: &str,
        input: Value,
        item: &MapItem,
        vars: &Variables,
    ) -> Result<Transition, Failure> {
        self.record(Event::StateEntered {
            state: name.to_string(),
            state_type: state.type_name().to_string(),
        });
        let (entered, exited) = service_events(state);
        self.service_history.record(&[entered])?;
        let event_id = self.service_history.total();
        check_payload(&input, name, Payload::StateInput)?;
        let step = match machine.jsonata.get(name) {
            Some(fields) => self
                .step_jsonata(name, key, state, fields, input, item, vars)
                .boxed(),
            None => self.step(name, key, state, input, item, vars).boxed(),
        };
        let mut transition = step.await.map_err(|f| in_state(f, name, event_id))?;
        check_payload(&transition.output, name, Payload::StateOutput)?;
        self.service_history.record(&[exited])?;
        let result = transition.observed_result.take();
        self.record_with_result(
            Event::StateExited {
                state: name.to_string(),
            },
            result.as_ref(),
        );
        Ok(transition)
    }

    async fn step(
        &self,
        name: &str,
        key: &str,
        state: &State,
        raw: Value,
        item: &MapItem,
        vars: &Variables,
    ) -> Result<Transition, Failure> {
        let visit = Visit::new(name, key, item, vars);
        match state {
            State::Task(task) => self.task(visit, task, raw).await,
            State::Parallel(parallel) => self.parallel(visit, parallel, raw).await,
            State::Map(map) => self.map(visit, map, raw).await,
            State::Pass(pass) => self.pass(visit, pass, raw),
            State::Choice(state) => self.choice(visit, state, raw),
            State::Wait(wait) => self.wait(visit, wait, raw).await,
            State::Succeed(succeed) => self.succeed(visit, succeed, raw),
            State::Fail(fail) => self.fail(visit, fail, &raw),
        }
    }

    async fn task(
        &self,
        visit: Visit<'_>,
        task: &TaskState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let work = move |retry_count, effective: Value, context: Value| async move {
            let roots = visit.roots(&context);
            let parameters = expand_or_keep(task.parameters.as_ref(), effective.clone(), roots)?;
            let timeout = wait::task_timeout(task, &effective, roots)?;
            self.invoke_task(visit, &task.resource, parameters, retry_count, timeout)
                .await
        };
        self.run_task_like(visit, &TaskLike::from(task).keeping_result(), raw, work)
            .await
    }

    /// One call of a Task's resource, within its timeout, recorded in the service history.
    async fn invoke_task(
        &self,
        visit: Visit<'_>,
        resource: &str,
        parameters: Value,
        retry_count: u32,
        timeout: Option<u64>,
    ) -> Result<Value, Failure> {
        let request = TaskRequest {
            resource: resource.to_string(),
            parameters,
            state: visit.name.to_string(),
            retry_count,
            execution_name: self.options.execution_name.clone(),
        };
        check_payload(&request.parameters, visit.name, Payload::StateInput)?;
        self.service_history
            .record(&["TaskScheduled", "TaskStarted"])?;
        let call = self.invoker.invoke(request);
        let result = match timeout {
            Some(limit) => tokio::time::timeout(Duration::from_secs(limit), call)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        errors::TIMEOUT,
                        format!("task ran longer than {limit} s"),
                    ))
                }),
            None => call.await,
        }
        .and_then(|result| {
            check_payload(&result, visit.name, Payload::TaskResult)?;
            Ok(result)
        });
        self.service_history.record(&[match &result {
            Ok(_) => "TaskSucceeded",
            Err(f) if f.error == errors::TIMEOUT => "TaskTimedOut",
            Err(_) => "TaskFailed",
        }])?;
        result
    }

    async fn parallel(
        &self,
        visit: Visit<'_>,
        parallel: &ParallelState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let work = move |_, effective, context: Value| async move {
            let input = expand_or_keep(
                parallel.parameters.as_ref(),
                effective,
                visit.roots(&context),
            )?;
            self.run_branches(visit, parallel, input).await
        };
        self.run_task_like(visit, &TaskLike::from(parallel), raw, work)
            .await
    }

    async fn map(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let work = move |retry_count, effective, context| {
            self.map_items(visit, map, retry_count, effective, context)
        };
        self.run_task_like(visit, &TaskLike::from(map), raw, work)
            .await
    }

    /// One attempt of a Map state: runs the item processor over every item, at most
    /// `MaxConcurrency` at a time, and keeps the results in item order.
    async fn map_items(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        retry_count: u32,
        effective: Value,
        context: Value,
    ) -> Result<Value, Failure> {
        if map.is_distributed() {
            return self
                .map_run(visit, map, retry_count, effective, context)
                .await;
        }
        let roots = visit.roots(&context);
        let items = match &map.items_path {
            Some(p) => runtime(read(p, &effective, roots))?,
            None => effective.clone(),
        };
        let Value::Array(items) = items else {
            return Err(Failure::runtime(format!(
                "Map state {:?}: ItemsPath must select an array",
                visit.name
            )));
        };
        let max_concurrency = wait::max_concurrency(map, &effective, roots)?;
        let limit = limits::map_concurrency(max_concurrency);
        let item_input = |item_visit: Visit<'_>, value: Value| match &map.item_selector {
            Some(selector) => {
                let context = self.context(item_visit, retry_count);
                runtime(expand(selector, &effective, item_visit.roots(&context)))
            }
            None => Ok(value),
        };
        self.run_iterations(visit, map, items, limit, item_input)
            .await
    }

    /// The context object of a state that is not retried, and its effective input (after
    /// `InputPath`).
    fn enter(&self, visit: Visit<'_>, io: &Io, raw: Value) -> Result<(Value, Value), Failure> {
        let context = self.context(visit, 0);
        let effective = runtime(select(&io.input_path, raw, visit.roots(&context)))?;
        Ok((context, effective))
    }

    fn pass(&self, visit: Visit<'_>, pass: &PassState, raw: Value) -> Result<Transition, Failure> {
        let (context, effective) = self.enter(visit, &pass.io, raw.clone())?;
        let roots = visit.roots(&context);
        let result = match &pass.result {
            Some(result) => result.clone(),
            None => expand_or_keep(pass.parameters.as_ref(), effective, roots)?,
        };
        let assigned = assigned(pass.assign.as_ref(), &result, roots)?;
        let output = runtime(place(&pass.result_path, raw, result))?;
        finish(&pass.io, &pass.flow, output, roots, assigned)
    }

    fn choice(
        &self,
        visit: Visit<'_>,
        state: &ChoiceState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let (context, effective) = self.enter(visit, &state.io, raw)?;
        let roots = visit.roots(&context);
        let mut chosen = None;
        for rule in &state.choices {
            if runtime(choice::matches(rule, &effective, roots))? {
                chosen = rule
                    .get("Next")
                    .and_then(Value::as_str)
                    .map(|next| (next.to_string(), rule.get("Assign")));
                break;
            }
        }
        let (next, template) = match chosen {
            Some(found) => found,
            None => match &state.default {
                Some(default) => (default.clone(), state.assign.as_ref()),
                None => {
                    return Err(Failure::new(
                        errors::NO_CHOICE_MATCHED,
                        format!(
                            "No Choice matched and no Default is specified in the state '{}'",
                            visit.name
                        ),
                    ))
                }
            },
        };
        let assigned = assigned(template, &effective, roots)?;
        let output = runtime(select(&state.io.output_path, effective, roots))?;
        Ok(Transition {
            next: Some(next),
            output,
            assigned,
            observed_result: None,
        })
    }

    async fn wait(
        &self,
        visit: Visit<'_>,
        wait: &WaitState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let (context, effective) = self.enter(visit, &wait.io, raw)?;
        let roots = visit.roots(&context);
        let seconds = wait::seconds(wait, &effective, roots)?;
        let assigned = assigned(wait.assign.as_ref(), &effective, roots)?;
        tokio::time::sleep(self.scaled(seconds)).await;
        finish(&wait.io, &wait.flow, effective, roots, assigned)
    }

    fn succeed(
        &self,
        visit: Visit<'_>,
        succeed: &SucceedState,
        raw: Value,
    ) -> Result<Transition, Failure> {
        let (context, effective) = self.enter(visit, &succeed.io, raw)?;
        let output = runtime(select(
            &succeed.io.output_path,
            effective,
            visit.roots(&context),
        ))?;
        Ok(Transition {
            next: None,
            output,
            assigned: Map::new(),
            observed_result: None,
        })
    }

    fn fail(&self, visit: Visit<'_>, fail: &FailState, raw: &Value) -> Result<Transition, Failure> {
        let context = self.context(visit, 0);
        let roots = visit.roots(&context);
        let error = text_or_path(
            fail.error.as_deref(),
            fail.error_path.as_deref(),
            raw,
            roots,
        )?;
        let cause = text_or_path(
            fail.cause.as_deref(),
            fail.cause_path.as_deref(),
            raw,
            roots,
        )?;
        Err(Failure::new(error, cause))
    }
}

/// The history events Step Functions writes on entering and on leaving a state of this type.
fn service_events(state: &State) -> (&'static str, &'static str) {
    match state {
        State::Task(_) => ("TaskStateEntered", "TaskStateExited"),
        State::Parallel(_) => ("ParallelStateEntered", "ParallelStateExited"),
        State::Map(_) => ("MapStateEntered", "MapStateExited"),
        State::Pass(_) => ("PassStateEntered", "PassStateExited"),
        State::Choice(_) => ("ChoiceStateEntered", "ChoiceStateExited"),
        State::Wait(_) => ("WaitStateEntered", "WaitStateExited"),
        State::Succeed(_) => ("SucceedStateEntered", "SucceedStateExited"),
        State::Fail(_) => ("FailStateEntered", "FailStateExited"),
    }
}

/// `Parameters` or `ResultSelector`: the template expanded against `value`, or `value` as is
/// when the state has none.
fn expand_or_keep(
    template: Option<&Value>,
    value: Value,
    roots: Roots<'_>,
) -> Result<Value, Failure> {
    match template {
        Some(template) => runtime(expand(template, &value, roots)),
        None => Ok(value),
    }
}

/// `OutputPath`, then `Next` or `End`. `OutputPath` still sees the variables from before
/// the state: what it assigned takes effect as it exits.
fn finish(
    io: &Io,
    flow: &Flow,
    output: Value,
    roots: Roots<'_>,
    assigned: Map<String, Value>,
) -> Result<Transition, Failure> {
    let output = runtime(select(&io.output_path, output, roots))?;
    Ok(Transition {
        next: flow.next.clone().filter(|_| !flow.end),
        output,
        assigned,
        observed_result: None,
    })
}

/// A Fail state's `Error` or `Cause`: from `path` when given (a path or an intrinsic
/// function; a non-string reads as empty), else the literal text.
fn text_or_path(
    text: Option<&str>,
    path: Option<&str>,
    raw: &Value,
    roots: Roots<'_>,
) -> Result<String, Failure> {
    let value = match path {
        Some(p) if intrinsics::is_intrinsic(p) => runtime(intrinsics::evaluate(p, raw, roots))?,
        Some(p) => runtime(read(p, raw, roots))?,
        None => return Ok(text.unwrap_or_default().to_string()),
    };
    Ok(value.as_str().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails the first `fail_times` calls of each resource with `error`, then echoes.
    struct Flaky {
        calls: AtomicU32,
        fail_times: u32,
        error: &'static str,
    }

    impl TaskInvoker for Flaky {
        fn invoke(&self, request: TaskRequest) -> BoxFuture<'_, Result<Value, Failure>> {
            async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if n < self.fail_times {
                    Err(Failure::new(self.error, format!("call {n} failed")))
                } else {
                    Ok(json!({"echo": request.parameters, "retry_count": request.retry_count}))
                }
            }
            .boxed()
        }
    }

    async fn run(definition: Value, input: Value, invoker: Flaky) -> Execution {
        let machine = Machine::from_json(&definition.to_string()).unwrap();
        let mut options = RunOptions::new("test", "exec");
        options.time_scale = 0.0;
        execute(&machine, input, Arc::new(invoker), options).await
    }

    fn flaky(fail_times: u32, error: &'static str) -> Flaky {
        Flaky {
            calls: AtomicU32::new(0),
            fail_times,
            error,
        }
    }

    #[tokio::test]
    async fn retry_then_succeed_with_result_path_and_selector() {
        let definition = json!({
            "StartAt": "T",
            "States": {"T": {
                "Type": "Task", "Resource": "r",
                "Parameters": {"d.$": "$.date"},
                "ResultSelector": {"got.$": "$.echo.d", "tries.$": "$.retry_count"},
                "ResultPath": "$.result",
                "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 300, "MaxAttempts": 2}],
                "End": true
            }}
        });
        let exec = run(
            definition,
            json!({"date": "2026-11-25"}),
            flaky(2, "Retryable"),
        )
        .await;
        assert_eq!(retry_delays(&exec), vec![300.0, 600.0]);
        assert_eq!(
            exec.output.unwrap(),
            json!({"date": "2026-11-25", "result": {"got": "2026-11-25", "tries": 2}})
        );
    }

    #[tokio::test]
    async fn exhausted_retries_fall_to_catch_and_runtime_errors_are_not_caught() {
        let definition = json!({
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "r", "End": true,
                      "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 1}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}]},
                "Handled": {"Type": "Pass", "End": true}
            }
        });
        let exec = run(definition.clone(), json!({"a": 1}), flaky(5, "Retryable")).await;
        assert_eq!(
            exec.output.unwrap(),
            json!({"a": 1, "error": {"Error": "Retryable", "Cause": "call 1 failed"}})
        );

        let exec = run(definition, json!({"a": 1}), flaky(5, "States.Runtime")).await;
        assert_eq!(exec.output.unwrap_err().error, "States.Runtime");
    }

    #[tokio::test]
    async fn huge_backoff_rates_neither_panic_nor_hang() {
        let definition = json!({
            "StartAt": "T",
            "States": {"T": {
                "Type": "Task", "Resource": "r", "End": true,
                "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 4, "BackoffRate": 1e308}]
            }}
        });
        let exec = run(definition, json!({}), flaky(4, "Retryable")).await;
        assert!(exec.output.is_ok(), "{:?}", exec.output);
        let max = limits::MAX_DELAY_SECONDS;
        assert_eq!(retry_delays(&exec), vec![1.0, max, max, max]);
    }

    /// The delays of the retries an execution scheduled, in order.
    fn retry_delays(exec: &Execution) -> Vec<f64> {
        exec.history
            .iter()
            .filter_map(|e| match e {
                Event::RetryScheduled { delay_seconds, .. } => Some(*delay_seconds),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn non_matching_errors_fail_the_execution() {
        let definition = json!({
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": "r", "End": true,
                "Retry": [{"ErrorEquals": ["Retryable"]}],
                "Catch": [{"ErrorEquals": ["InvalidInput"], "Next": "F"}]},
                "F": {"Type": "Fail", "Error": "Handled", "Cause": "bad input"}}
        });
        let exec = run(definition.clone(), json!({}), flaky(1, "Fatal")).await;
        assert_eq!(
            exec.output.unwrap_err(),
            Failure::new("Fatal", "call 0 failed")
        );
        let exec = run(definition, json!({}), flaky(1, "InvalidInput")).await;
        assert_eq!(
            exec.output.unwrap_err(),
            Failure::new("Handled", "bad input")
        );
    }

    #[tokio::test]
    async fn map_keeps_order_and_exposes_item_context() {
        let definition = json!({
            "StartAt": "M",
            "States": {"M": {
                "Type": "Map", "ItemsPath": "$.days", "MaxConcurrency": 2,
                "ItemSelector": {"day.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "run.$": "$.run"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                "ResultPath": "$.results", "OutputPath": "$.results", "End": true
            }}
        });
        let exec = run(
            definition,
            json!({"days": ["a", "b", "c"], "run": 7}),
            flaky(0, ""),
        )
        .await;
        assert_eq!(
            exec.output.unwrap(),
            json!([{"day": "a", "i": 0, "run": 7}, {"day": "b", "i": 1, "run": 7}, {"day": "c", "i": 2, "run": 7}])
        );
    }

    #[tokio::test]
    async fn parallel_choice_and_wait() {
        let definition = json!({
            "StartAt": "Both",
            "States": {
                "Both": {"Type": "Parallel", "Next": "Pick", "ResultPath": "$.branches", "Branches": [
                    {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "Next": "A"},
                                                 "A": {"Type": "Pass", "Result": 1, "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 2, "End": true}}}
                ]},
                "Pick": {"Type": "Choice", "Default": "Low", "Choices": [
                    {"Variable": "$.branches[1]", "NumericGreaterThan": 1, "Next": "High"}
                ]},
                "High": {"Type": "Succeed", "OutputPath": "$.branches"},
                "Low": {"Type": "Fail", "Error": "Low"}
            }
        });
        let exec = run(definition, json!({}), flaky(0, "")).await;
        assert_eq!(exec.output.unwrap(), json!([1, 2]));
    }

    #[tokio::test]
    async fn missing_paths_are_runtime_errors() {
        let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.nope", "End": true}}});
        let exec = run(definition, json!({}), flaky(0, "")).await;
        let failure = exec.output.unwrap_err();
        assert_eq!(failure.error, "States.Runtime");
        assert!(failure.cause.contains("$.nope"), "{}", failure.cause);
    }

    #[test]
    fn invalid_definitions_are_refused_at_load() {
        for (definition, expect) in [
            (json!({"StartAt": "X", "States": {}}), "StartAt"),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}),
                "missing state",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
                "neither Next nor End",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": true}}}),
                "Teleport",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true, "ItemReader": {},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}}}}),
                "distributed",
            ),
        ] {
            let err = Machine::from_json(&definition.to_string())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }
}
