//! `etl start`: the deployed state machines, through the real Step Functions API (AWS, or
//! moto/LocalStack with `AWS_ENDPOINT_URL`).
//!
//! Finding a machine: a machine the template declares (e.g. `hr`, logical id
//! `HrStateMachine`) is deployed by CloudFormation under a generated name,
//! `HrStateMachine-<random suffix>`. It is found by listing the account's machines and
//! taking the one named exactly `hr` or `HrStateMachine`, else the one whose name starts with
//! `HrStateMachine-`. `--name-prefix P` puts `P` before each of those names (for machines
//! deployed with explicit, prefixed names); `--state-machine-arn` skips the lookup.
//!
//! Idempotency: executions are named `<machine>-<date>`. Step Functions answers a second
//! StartExecution with the same name and input with the running execution, but with
//! `ExecutionAlreadyExists` once it has finished or if the input differs (moto 5 does the
//! same). So `start` first looks the name up and returns the execution it finds, whatever
//! its status; it refuses one that ran with another input, which would be another run.
//!
//! Reading: [`execution_history`] is GetExecutionHistory in the shape `etl.execution_events`
//! keeps (`etl history --deployed` and `etl ui --deployed` print the same), and
//! [`executions_of`], [`describe_if_exists`] and [`definition_for_execution`] are what the
//! viewer's deployed runs are read with.

use std::time::Duration;

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
use chrono::NaiveDate;
use etl_core::{LogicalDate, Service, StageError};
use serde_json::{json, Map, Value};

use crate::executions::{ExecutionHistory, HistoryEvent};
use crate::template::Template;

#[derive(Debug, thiserror::Error)]
pub enum DeployedError {
    #[error("no deployed state machine is named {wanted}; deployed: {deployed}")]
    NotDeployed { wanted: String, deployed: String },
    #[error(
        "several deployed state machines match {wanted}: {matches}; \
         choose one with --state-machine-arn (or --name-prefix)"
    )]
    Ambiguous { wanted: String, matches: String },
    #[error("{0} is not a state machine ARN (arn:…:states:…:stateMachine:NAME)")]
    NotAStateMachineArn(String),
    #[error(
        "execution {name} already exists with a different input ({status}); \
         its input: {existing_input}. Start it under another --execution-name"
    )]
    DifferentInput {
        name: String,
        status: String,
        existing_input: String,
    },
    #[error(transparent)]
    Service(#[from] StageError),
    /// A read call that failed, with what it was called on.
    #[error("{operation} {target}: {source}")]
    Call {
        operation: &'static str,
        target: String,
        #[source]
        source: StageError,
    },
}

/// A failed call `operation` on `target` (an ARN), saying which.
fn call_error<E>(
    operation: &'static str,
    target: &str,
    err: aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>,
) -> DeployedError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    DeployedError::Call {
        operation,
        target: target.to_string(),
        source: StageError::aws(Service::StepFunctions, err),
    }
}

fn sfn_error<E>(
    err: aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>,
) -> DeployedError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    DeployedError::Service(StageError::aws(Service::StepFunctions, err))
}

/// Which deployed names stand for one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineLocator {
    /// Names that are this machine.
    pub exact: Vec<String>,
    /// CloudFormation's generated names start with this (`<LogicalId>-`).
    pub generated_prefix: Option<String>,
}

impl MachineLocator {
    /// For `machine` as named on the command line: a template machine (by ASL name or
    /// logical id) or, if the template has none of that name, a deployed name as is.
    pub fn new(template: &Template, machine: &str, name_prefix: &str) -> Self {
        match template.machine(machine) {
            Ok(spec) => Self {
                exact: vec![
                    format!("{name_prefix}{}", spec.name),
                    format!("{name_prefix}{}", spec.logical_id),
                ],
                generated_prefix: Some(format!("{name_prefix}{}-", spec.logical_id)),
            },
            Err(_) => Self {
                exact: vec![format!("{name_prefix}{machine}")],
                generated_prefix: None,
            },
        }
    }

    fn describe(&self) -> String {
        let mut names: Vec<String> = self.exact.iter().map(|n| format!("{n:?}")).collect();
        if let Some(prefix) = &self.generated_prefix {
            names.push(format!("\"{prefix}…\""));
        }
        names.join(" or ")
    }

    /// The ARN among `(name, arn)` pairs: an exact name wins over a generated one; more than
    /// one candidate of the winning kind is ambiguous, never a guess.
    pub fn choose(&self, deployed: &[(String, String)]) -> Result<String, DeployedError> {
        let exact: Vec<&(String, String)> = deployed
            .iter()
            .filter(|(name, _)| self.exact.contains(name))
            .collect();
        let generated: Vec<&(String, String)> = deployed
            .iter()
            .filter(|(name, _)| {
                self.generated_prefix
                    .as_ref()
                    .is_some_and(|prefix| name.starts_with(prefix.as_str()))
            })
            .collect();
        let candidates = if exact.is_empty() { generated } else { exact };
        match candidates.as_slice() {
            [(_, arn)] => Ok(arn.clone()),
            [] => Err(DeployedError::NotDeployed {
                wanted: self.describe(),
                deployed: match deployed.len() {
                    0 => "none".into(),
                    n => {
                        // Enough to spot a naming mismatch without flooding the terminal.
                        let shown: Vec<&str> = deployed
                            .iter()
                            .take(20)
                            .map(|(name, _)| name.as_str())
                            .collect();
                        let more = if n > 20 {
                            format!(" and {} more", n - 20)
                        } else {
                            String::new()
                        };
                        format!("{}{more}", shown.join(", "))
                    }
                },
            }),
            many => Err(DeployedError::Ambiguous {
                wanted: self.describe(),
                matches: many
                    .iter()
                    .map(|(_, arn)| arn.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Every deployed state machine, `(name, arn)`.
pub async fn deployed_machines(
    sfn: &aws_sdk_sfn::Client,
) -> Result<Vec<(String, String)>, DeployedError> {
    let mut machines = Vec::new();
    let mut pages = sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        for machine in page.map_err(sfn_error)?.state_machines() {
            machines.push((
                machine.name().to_string(),
                machine.state_machine_arn().to_string(),
            ));
        }
    }
    Ok(machines)
}

pub async fn find_machine_arn(
    sfn: &aws_sdk_sfn::Client,
    locator: &MachineLocator,
) -> Result<String, DeployedError> {
    locator.choose(&deployed_machines(sfn).await?)
}

/// `<machine>-<date>`: the one execution of a machine for a date.
pub fn execution_name(machine: &str, date: LogicalDate) -> String {
    format!("{machine}-{date}")
}

/// The logical date an execution name ends with (`…-YYYY-MM-DD`, as [`execution_name`] and
/// `etl start` name them); `None` for other names, e.g. those EventBridge Scheduler generates.
pub fn date_of_execution_name(name: &str) -> Option<NaiveDate> {
    let split = name.len().checked_sub(11)?;
    let (head, date) = (name.get(..=split)?, name.get(split + 1..)?);
    if !head.ends_with('-') || head.len() < 2 {
        return None;
    }
    date.parse().ok()
}

/// `arn:aws:states:R:A:stateMachine:M` + `N` → `arn:aws:states:R:A:execution:M:N`, the ARN
/// Step Functions gives a standard machine's execution.
pub fn execution_arn(machine_arn: &str, name: &str) -> Result<String, DeployedError> {
    let parts: Vec<&str> = machine_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", machine] => Ok(format!(
            "arn:{partition}:states:{region}:{account}:execution:{machine}:{name}"
        )),
        _ => Err(DeployedError::NotAStateMachineArn(machine_arn.to_string())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_arn: String,
    /// False when an execution of this name already existed (this call started nothing).
    pub new: bool,
}

/// Starts `name` with `input`, or returns the execution of that name if there is one with
/// the same input.
pub async fn start(
    sfn: &aws_sdk_sfn::Client,
    machine_arn: &str,
    name: &str,
    input: &Value,
) -> Result<Started, DeployedError> {
    let execution_arn = execution_arn(machine_arn, name)?;
    if let Some(existing) = existing(sfn, &execution_arn, name, input).await? {
        return Ok(existing);
    }
    let sent = sfn
        .start_execution()
        .state_machine_arn(machine_arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Started {
            execution_arn: out.execution_arn().to_string(),
            new: true,
        }),
        // Someone started it between our look and our start.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(aws_sdk_sfn::operation::start_execution::StartExecutionError::is_execution_already_exists) =>
        {
            existing(sfn, &execution_arn, name, input)
                .await?
                .ok_or_else(|| sfn_error(err))
        }
        Err(err) => Err(sfn_error(err)),
    }
}

/// The execution at `execution_arn`, if there is one: `Ok(None)` if not, an error if it ran
/// with another input (returning it would pass off another run as this one).
async fn existing(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    name: &str,
    input: &Value,
) -> Result<Option<Started>, DeployedError> {
    let Some(described) = describe_if_exists(sfn, execution_arn).await? else {
        return Ok(None);
    };
    let existing_input: Option<Value> = described
        .input()
        .and_then(|text| serde_json::from_str(text).ok());
    if existing_input.as_ref() != Some(input) {
        return Err(DeployedError::DifferentInput {
            name: name.to_string(),
            status: described.status().as_str().to_string(),
            existing_input: described.input().unwrap_or("(not shown)").to_string(),
        });
    }
    Ok(Some(Started {
        execution_arn: execution_arn.to_string(),
        new: false,
    }))
}

/// DescribeExecution, or `None` when there is no execution at `execution_arn`.
pub async fn describe_if_exists(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Option<DescribeExecutionOutput>, DeployedError> {
    match sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
    {
        Ok(described) => Ok(Some(described)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(aws_sdk_sfn::operation::describe_execution::DescribeExecutionError::is_execution_does_not_exist) =>
        {
            Ok(None)
        }
        Err(err) => Err(call_error("DescribeExecution", execution_arn, err)),
    }
}

/// Every execution of a machine (ListExecutions, every page), newest first as the service
/// lists them.
pub async fn executions_of(
    sfn: &aws_sdk_sfn::Client,
    machine_arn: &str,
) -> Result<Vec<ExecutionListItem>, DeployedError> {
    let mut executions = Vec::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(machine_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("ListExecutions", machine_arn, e))?;
        executions.extend(page.executions().iter().cloned());
    }
    Ok(executions)
}

/// The definition the execution ran (DescribeStateMachineForExecution: the machine's
/// definition, or the version's, as deployed when it started).
pub async fn definition_for_execution(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<String, DeployedError> {
    let described = sfn
        .describe_state_machine_for_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| call_error("DescribeStateMachineForExecution", execution_arn, e))?;
    Ok(described.definition().to_string())
}

/// Every page of a deployed execution's history (GetExecutionHistory), in the shape a local
/// one is kept in.
pub async fn execution_history(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<ExecutionHistory, DeployedError> {
    let mut events = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(execution_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("GetExecutionHistory", execution_arn, e))?;
        events.extend(page.events().iter().map(history_event));
    }
    Ok(ExecutionHistory { events })
}

/// A service event's id, type, time and the details the viewer and `etl history` show.
pub fn history_event(event: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    let at = event.timestamp();
    let timestamp =
        chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
    let mut details = Map::new();
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_string(), value);
    };
    if let Some(d) = event.execution_started_event_details() {
        put(
            "executionStartedEventDetails",
            json!({"input": d.input(), "roleArn": d.role_arn()}),
        );
    }
    if let Some(d) = event.execution_succeeded_event_details() {
        put(
            "executionSucceededEventDetails",
            json!({"output": d.output()}),
        );
    }
    if let Some(d) = event.execution_failed_event_details() {
        put(
            "executionFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.state_entered_event_details() {
        put(
            "stateEnteredEventDetails",
            json!({"name": d.name(), "input": d.input()}),
        );
    }
    if let Some(d) = event.state_exited_event_details() {
        put(
            "stateExitedEventDetails",
            json!({"name": d.name(), "output": d.output()}),
        );
    }
    if let Some(d) = event.task_failed_event_details() {
        put(
            "taskFailedEventDetails",
            json!({"resourceType": d.resource_type(), "resource": d.resource(), "error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.lambda_function_failed_event_details() {
        put(
            "lambdaFunctionFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.map_run_started_event_details() {
        put(
            "mapRunStartedEventDetails",
            json!({"mapRunArn": d.map_run_arn()}),
        );
    }
    if let Some(d) = event.map_run_failed_event_details() {
        put(
            "mapRunFailedEventDetails",
            json!({"error": d.error(), "cause": d.cause()}),
        );
    }
    if let Some(d) = event.execution_redriven_event_details() {
        put(
            "executionRedrivenEventDetails",
            json!({"redriveCount": d.redrive_count()}),
        );
    }
    if let Some(d) = event.map_state_started_event_details() {
        put("mapStateStartedEventDetails", json!({"length": d.length()}));
    }
    let iterations = [
        (
            "mapIterationStartedEventDetails",
            event.map_iteration_started_event_details(),
        ),
        (
            "mapIterationSucceededEventDetails",
            event.map_iteration_succeeded_event_details(),
        ),
        (
            "mapIterationFailedEventDetails",
            event.map_iteration_failed_event_details(),
        ),
        (
            "mapIterationAbortedEventDetails",
            event.map_iteration_aborted_event_details(),
        ),
    ];
    for (key, d) in iterations {
        if let Some(d) = d {
            put(key, json!({"name": d.name(), "index": d.index()}));
        }
    }
    HistoryEvent {
        id: event.id(),
        previous_event_id: event.previous_event_id(),
        timestamp,
        event_type: event.r#type().as_str().to_string(),
        details,
    }
}

/// Redrives a failed, timed-out or aborted execution (RedriveExecution): it resumes from the
/// step that failed. A client token makes a retried call the same redrive, not a second one.
/// Returns when the redrive started; the service refuses (`ExecutionNotRedrivable`) one that
/// succeeded, is running, ended over 14 days ago or was redriven 1,000 times.
pub async fn redrive(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    client_token: &str,
) -> Result<String, DeployedError> {
    let before = redrive_count(sfn, execution_arn).await?;
    let redriven = sfn
        .redrive_execution()
        .execution_arn(execution_arn)
        .client_token(client_token)
        .send()
        .await
        .map_err(sfn_error)?;
    // DescribeExecution may still show the failed attempt for a moment: a `wait` that starts
    // then would return its old status. Wait for the redrive to show (bounded).
    let mut pause = Duration::from_millis(200);
    for _ in 0..20 {
        if redrive_count(sfn, execution_arn).await? > before {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    Ok(redriven.redrive_date().to_string())
}

async fn redrive_count(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<i32, DeployedError> {
    Ok(describe(sfn, execution_arn)
        .await?
        .redrive_count()
        .unwrap_or(0))
}

async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput, DeployedError> {
    sfn.describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(sfn_error)
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded.as_str()
    }
}

/// Polls DescribeExecution until the execution is no longer running: every second at first,
/// backing off to every 10 s, since a pipeline run can take hours.
pub async fn wait(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Finished, DeployedError> {
    let mut pause = Duration::from_millis(500);
    loop {
        let described = describe(sfn, execution_arn).await?;
        match described.status() {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            status => {
                return Ok(Finished {
                    status: status.as_str().to_string(),
                    output: described.output().map(str::to_string),
                    error: described.error().map(str::to_string),
                    cause: described.cause().map(str::to_string),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Template::load(&root.join("template.yaml")).unwrap()
    }

    fn deployed(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    format!("arn:aws:states:eu-west-1:1:stateMachine:{n}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_template_machine_is_found_under_its_cloudformation_name() {
        let hr = MachineLocator::new(&template(), "hr", "");
        let arn = hr
            .choose(&deployed(&[
                "HrSetupStateMachine-aaa",
                "HrStateMachine-Q1w2E3r4T5y6",
                "ClickstreamStateMachine-bbb",
            ]))
            .unwrap();
        assert!(arn.ends_with(":HrStateMachine-Q1w2E3r4T5y6"), "{arn}");
        // The logical id names the same machine.
        assert_eq!(MachineLocator::new(&template(), "HrStateMachine", ""), hr);
        // An exact name wins over generated ones.
        let arn = hr.choose(&deployed(&["HrStateMachine-x", "hr"])).unwrap();
        assert!(arn.ends_with(":hr"), "{arn}");
    }

    #[test]
    fn two_stacks_are_ambiguous_and_none_is_not_deployed() {
        let hr = MachineLocator::new(&template(), "hr", "");
        let err = hr
            .choose(&deployed(&["HrStateMachine-one", "HrStateMachine-two"]))
            .unwrap_err();
        assert!(matches!(err, DeployedError::Ambiguous { .. }), "{err}");
        assert!(err.to_string().contains("--state-machine-arn"), "{err}");
        let err = hr
            .choose(&deployed(&["HrSetupStateMachine-x"]))
            .unwrap_err();
        assert!(
            err.to_string().contains("HrSetupStateMachine-x")
                && err.to_string().contains("HrStateMachine-"),
            "{err}"
        );
    }

    #[test]
    fn a_name_prefix_and_machines_outside_the_template() {
        let hr = MachineLocator::new(&template(), "hr", "dev-");
        let arn = hr
            .choose(&deployed(&["HrStateMachine-x", "dev-hr"]))
            .unwrap();
        assert!(arn.ends_with(":dev-hr"), "{arn}");
        let other = MachineLocator::new(&template(), "adhoc", "");
        assert_eq!(other.generated_prefix, None);
        assert!(other.choose(&deployed(&["adhoc-x"])).is_err());
        assert!(other.choose(&deployed(&["adhoc"])).is_ok());
    }

    #[test]
    fn execution_names_and_arns() {
        assert_eq!(
            execution_name("hr", "2026-11-25".parse().unwrap()),
            "hr-2026-11-25"
        );
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:HrStateMachine-x",
                "hr-2026-11-25"
            )
            .unwrap(),
            "arn:aws:states:us-east-1:123456789012:execution:HrStateMachine-x:hr-2026-11-25"
        );
        assert!(execution_arn("arn:aws:lambda:us-east-1:1:function:f", "x").is_err());
    }

    #[test]
    fn an_execution_name_gives_its_date_only_when_it_ends_with_one() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 25);
        assert_eq!(date_of_execution_name("hr-2026-11-25"), date);
        assert_eq!(date_of_execution_name("hr-setup-2026-11-25"), date);
        for undated in [
            "2026-11-25",
            "-2026-11-25",
            "hr2026-11-25",
            "hr-2026-11-25-again",
            "hr-2026-13-25",
            "9f0c4a52-1b6e-4c1a-8e57-0c1d2e3f4a5b",
            "",
            "é-2026-11-2",
        ] {
            assert_eq!(date_of_execution_name(undated), None, "{undated}");
        }
    }

    #[test]
    fn a_service_event_keeps_its_type_and_details() {
        let event = aws_sdk_sfn::types::HistoryEvent::builder()
            .id(3)
            .previous_event_id(2)
            .timestamp(aws_smithy_types::DateTime::from_secs(1_780_000_000))
            .r#type(aws_sdk_sfn::types::HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                aws_sdk_sfn::types::StateEnteredEventDetails::builder()
                    .name("Hire")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let ours = history_event(&event);
        assert_eq!((ours.id, ours.previous_event_id), (3, 2));
        assert_eq!(ours.event_type, "TaskStateEntered");
        assert_eq!(ours.field("name"), Some("Hire"));
        assert_eq!(ours.timestamp.timestamp(), 1_780_000_000);
    }
}
