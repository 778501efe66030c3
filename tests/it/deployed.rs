//! `etl start` and `etl schedules` against moto's Step Functions and EventBridge Scheduler:
//! the real `etl` binary, with the endpoint from `.services/env` (`scripts/services up`).
//!
//! moto cannot run our Lambda binaries, so the machines here are stand-ins deployed under
//! the names CloudFormation would give the template's machines (`<LogicalId>-<suffix>`),
//! behind a per-test name prefix so concurrent tests and earlier runs never see each
//! other's machines. Their definitions are Pass/Fail states, which moto's engine executes.

use std::process::Output;

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use etl_cli::template::{FlexibleWindow, Template};
use etl_core::{Context, Service};
use integration_tests::cli::{command, output, stdout_of_success, text};
use integration_tests::{moto_sfn, template, unique_suffix};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/etl-test-scheduler";
const DEAD_LETTERS: &str = "arn:aws:sqs:us-east-1:123456789012:etl-test-dead-letters";

/// Clients for moto's Step Functions and Scheduler.
async fn moto() -> Context {
    moto_sfn::moto(&[Service::StepFunctions, Service::Scheduler]).await
}

/// A prefix no other test or run uses.
fn unique_prefix(label: &str) -> String {
    format!("t{}-{label}-", unique_suffix())
}

/// Deploys a stand-in machine, returning its ARN.
async fn deploy(ctx: &Context, name: &str, definition: Value) -> String {
    moto_sfn::deploy(ctx, name, &definition).await
}

fn echo_definition() -> Value {
    json!({
        "StartAt": "Echo",
        "States": {
            "Echo": {"Type": "Pass", "Parameters": {"processed.$": "$.logical_date"}, "End": true}
        }
    })
}

/// Runs the `etl` binary, with no machine prefix or scheduler role from the environment.
fn etl(args: &[&str]) -> Output {
    output(
        command(args)
            .env_remove("ETL_STATE_MACHINE_PREFIX")
            .env_remove("ETL_SCHEDULER_ROLE_ARN"),
    )
}

/// Runs `etl`, which must succeed; its stdout.
fn etl_ok(args: &[&str]) -> String {
    stdout_of_success(args, etl(args))
}

async fn execution_count(ctx: &Context, machine_arn: &str) -> usize {
    ctx.step_functions()
        .list_executions()
        .state_machine_arn(machine_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_sfn::error::DisplayErrorContext(e)))
        .executions()
        .len()
}

#[tokio::test]
async fn starting_twice_gives_one_execution_and_wait_prints_its_output() {
    let ctx = moto().await;
    let prefix = unique_prefix("start");
    // Deployed as CloudFormation names the template's HrSetupStateMachine.
    let machine_arn = deploy(
        &ctx,
        &format!("{prefix}HrSetupStateMachine-Q1w2E3r4T5y6"),
        echo_definition(),
    )
    .await;
    let args = [
        "start",
        "hr-setup",
        "--date",
        "2026-11-25",
        "--name-prefix",
        &prefix,
    ];

    let first = etl_ok(&[&args[..], &["--wait"]].concat());
    let lines: Vec<&str> = first.lines().collect();
    let expected_arn =
        machine_arn.replace(":stateMachine:", ":execution:") + ":hr-setup-2026-11-25";
    assert_eq!(lines.first(), Some(&expected_arn.as_str()), "{first}");
    assert_eq!(lines.get(1), Some(&"SUCCEEDED"), "{first}");
    let output: Value = serde_json::from_str(&lines[2..].join("\n"))
        .unwrap_or_else(|e| panic!("no JSON output after the status ({e}): {first}"));
    assert_eq!(output, json!({"processed": "2026-11-25"}));

    // Again, after it finished (moto, like AWS, answers ExecutionAlreadyExists then).
    let second = etl_ok(&args);
    assert_eq!(second.trim(), expected_arn);
    assert_eq!(execution_count(&ctx, &machine_arn).await, 1);

    // The same name with another input would be another run: refused, and said why.
    let other = etl(&[&args[..], &["--input", r#"{"params": {"count": 7}}"#]].concat());
    assert!(!other.status.success(), "a different input must be refused");
    assert!(
        text(&other.stderr).contains("different input"),
        "{}",
        text(&other.stderr)
    );
    assert_eq!(execution_count(&ctx, &machine_arn).await, 1);
}

#[tokio::test]
async fn a_failed_execution_exits_non_zero_with_its_error() {
    let ctx = moto().await;
    let prefix = unique_prefix("fail");
    let machine_arn = deploy(
        &ctx,
        &format!("{prefix}rejecting"),
        json!({
            "StartAt": "Reject",
            "States": {"Reject": {"Type": "Fail", "Error": "InvalidInput", "Cause": "rejected on purpose"}}
        }),
    )
    .await;
    let out = etl(&[
        "start",
        "hr",
        "--date",
        "2026-11-25",
        "--state-machine-arn",
        &machine_arn,
        "--wait",
    ]);
    assert!(!out.status.success(), "FAILED must exit non-zero");
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("InvalidInput") && stderr.contains("rejected on purpose"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_undeployed_machine_is_an_error_naming_what_was_looked_for() {
    let _ctx = moto().await;
    let prefix = unique_prefix("missing");
    let out = etl(&[
        "start",
        "hr",
        "--date",
        "2026-11-25",
        "--name-prefix",
        &prefix,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("{prefix}HrStateMachine-")),
        "{}",
        text(&out.stderr)
    );
}

/// The template's schedules, and the stand-in machines they target, per test.
struct Scheduled {
    ctx: Context,
    prefix: String,
    group: String,
    template: Template,
    /// Template machine logical id → stand-in ARN.
    machines: Vec<(String, String)>,
}

impl Scheduled {
    async fn deploy(label: &str) -> Self {
        let ctx = moto().await;
        let prefix = unique_prefix(label);
        let template = template();
        let mut machines = Vec::new();
        for spec in &template.schedules {
            if machines.iter().any(|(id, _)| id == &spec.target_machine) {
                continue;
            }
            let name = format!("{prefix}{}-AbCdEf123456", spec.target_machine);
            let arn = deploy(&ctx, &name, echo_definition()).await;
            machines.push((spec.target_machine.clone(), arn));
        }
        let group = format!("{prefix}group");
        Self {
            ctx,
            prefix,
            group,
            template,
            machines,
        }
    }

    fn apply(&self, extra: &[&str]) -> Output {
        etl(&[
            &[
                "schedules",
                "apply",
                "--group",
                &self.group,
                "--role-arn",
                ROLE,
                "--name-prefix",
                &self.prefix,
            ][..],
            extra,
        ]
        .concat())
    }

    async fn names(&self) -> Vec<String> {
        let listed = self
            .ctx
            .scheduler()
            .list_schedules()
            .group_name(&self.group)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_scheduler::error::DisplayErrorContext(e)));
        let mut names: Vec<String> = listed
            .schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    async fn get(
        &self,
        name: &str,
    ) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
        self.ctx
            .scheduler()
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "GetSchedule {name}: {}",
                    aws_sdk_scheduler::error::DisplayErrorContext(e)
                )
            })
    }
}

// One scenario end to end, step by step: split up, the order of its steps would be lost.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn schedules_apply_creates_the_templates_schedules_once_and_delete_removes_them() {
    let s = Scheduled::deploy("apply").await;
    assert!(
        s.template.schedules.len() >= 2,
        "template.yaml should declare the hr and clickstream schedules"
    );

    let out = s.apply(&["--dead-letter-arn", DEAD_LETTERS]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut expected: Vec<String> = s
        .template
        .schedules
        .iter()
        .map(|t| t.name.clone())
        .collect();
    expected.sort();
    assert_eq!(
        s.names().await,
        expected,
        "exactly the template's schedules"
    );

    for spec in &s.template.schedules {
        let have = s.get(&spec.name).await;
        assert_eq!(have.schedule_expression(), Some(spec.expression.as_str()));
        assert_eq!(
            have.schedule_expression_timezone(),
            Some(spec.timezone.as_str())
        );
        assert_eq!(
            have.state()
                .map(aws_sdk_scheduler::types::ScheduleState::as_str),
            Some(spec.state.as_str())
        );
        let window = have.flexible_time_window().expect("a flexible time window");
        let FlexibleWindow::Flexible { maximum_minutes } = spec.flexible_window else {
            panic!(
                "{}: the template's schedules use a flexible window",
                spec.name
            );
        };
        assert_eq!(window.mode(), &FlexibleTimeWindowMode::Flexible);
        assert_eq!(
            window.maximum_window_in_minutes(),
            Some(maximum_minutes as i32)
        );
        let target = have.target().expect("a target");
        let machine_arn = &s
            .machines
            .iter()
            .find(|(id, _)| id == &spec.target_machine)
            .expect("stand-in deployed")
            .1;
        assert_eq!(target.arn(), machine_arn);
        assert_eq!(target.role_arn(), ROLE);
        assert_eq!(target.input(), Some(spec.input.as_str()));
        let retry = target.retry_policy().expect("a retry policy");
        let want = spec.retry_policy.expect("the template gives one");
        assert_eq!(
            (
                retry.maximum_event_age_in_seconds(),
                retry.maximum_retry_attempts()
            ),
            (
                Some(want.maximum_event_age_seconds as i32),
                Some(want.maximum_retry_attempts as i32)
            )
        );
        assert_eq!(
            target.dead_letter_config().and_then(|d| d.arn()),
            Some(DEAD_LETTERS)
        );
    }

    // Twice: nothing changes, and it says so.
    let out = s.apply(&["--dead-letter-arn", DEAD_LETTERS]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("unchanged"))
            .count(),
        expected.len(),
        "{stdout}"
    );
    assert_eq!(s.names().await, expected);

    // Disabling is an update in place.
    let out = s.apply(&["--dead-letter-arn", DEAD_LETTERS, "--state", "DISABLED"]);
    assert!(
        text(&out.stdout).contains("updated"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        s.get(&expected[0])
            .await
            .state()
            .map(aws_sdk_scheduler::types::ScheduleState::as_str),
        Some("DISABLED")
    );

    let listed = etl_ok(&["schedules", "list", "--group", &s.group]);
    for spec in &s.template.schedules {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(&spec.name) && l.contains(&spec.expression)),
            "{} missing from:\n{listed}",
            spec.name
        );
    }

    let deleted = etl_ok(&["schedules", "delete", "--group", &s.group]);
    assert_eq!(
        deleted.lines().filter(|l| l.starts_with("deleted")).count(),
        expected.len(),
        "{deleted}"
    );
    assert!(s.names().await.is_empty(), "delete leaves nothing behind");
}

#[tokio::test]
async fn a_second_group_starting_the_same_machines_is_refused() {
    let s = Scheduled::deploy("dupes").await;
    assert!(s.apply(&[]).status.success());
    let elsewhere = Scheduled {
        group: format!("{}other", s.prefix),
        ..s
    };
    let out = elsewhere.apply(&[]);
    assert!(!out.status.success(), "both groups would start every run");
    assert!(
        text(&out.stderr).contains("--allow-duplicates"),
        "{}",
        text(&out.stderr)
    );
    assert!(elsewhere.names().await.is_empty());
}

#[tokio::test]
async fn a_backfill_is_one_self_deleting_at_schedule_per_date() {
    let s = Scheduled::deploy("backfill").await;
    let out = s.apply(&[
        "--backfill",
        "--machine",
        "hr",
        "--from",
        "2026-10-30",
        "--to",
        "2026-11-02",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = s.names().await;
    assert_eq!(
        names,
        vec![
            "hr-backfill-2026-10-30",
            "hr-backfill-2026-10-31",
            "hr-backfill-2026-11-01",
            "hr-backfill-2026-11-02"
        ]
    );
    let hr_arn = &s
        .machines
        .iter()
        .find(|(id, _)| id == "HrStateMachine")
        .expect("HrStateMachine stand-in")
        .1;
    let mut times = Vec::new();
    for name in &names {
        let have = s.get(name).await;
        let expression = have.schedule_expression().unwrap_or_default().to_string();
        assert!(
            expression.starts_with("at(") && expression.ends_with(":00)"),
            "{name}: {expression}"
        );
        times.push(expression);
        assert_eq!(
            have.action_after_completion(),
            Some(&ActionAfterCompletion::Delete)
        );
        let target = have.target().expect("a target");
        assert_eq!(target.arn(), hr_arn);
        let input: Value = serde_json::from_str(target.input().unwrap_or("")).unwrap();
        assert_eq!(
            input,
            json!({"logical_date": name.trim_start_matches("hr-backfill-")})
        );
    }
    let mut sorted = times.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, times, "one date after the other, never two at once");

    for (from, to, complaint) in [
        ("2026-11-05", "2026-11-01", "before"),
        ("2025-01-01", "2026-01-05", "at most 366"),
    ] {
        let out = s.apply(&["--backfill", "--machine", "hr", "--from", from, "--to", to]);
        assert!(!out.status.success(), "{from}..{to} must be refused");
        assert!(
            text(&out.stderr).contains(complaint),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(s.names().await.len(), 4, "a refused range creates nothing");
}
