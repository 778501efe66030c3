//! `etl schedules`: the template's EventBridge Scheduler schedules, applied through the
//! Scheduler API to one schedule group (for accounts or emulators where the SAM stack's
//! own schedules are not deployed), and one-time backfill schedules.
//!
//! The template's `AWS::Scheduler::Schedule` resources are the only definition: `apply`
//! turns each [`ScheduleSpec`] into a [`DesiredSchedule`] by filling in what only a
//! deployment knows (the target machine's ARN, the scheduler's role, the dead-letter queue).

use std::collections::BTreeSet;

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy as SdkRetryPolicy, ScheduleState as SdkScheduleState, Target,
};
use chrono::{DateTime, Duration, Utc};
use etl_core::stages::plan::MAX_DATES;
use etl_core::{LogicalDate, Service, StageError};

use crate::template::{FlexibleWindow, RetryPolicy, ScheduleSpec, ScheduleState};

/// The group `etl schedules` manages unless told otherwise.
pub const DEFAULT_GROUP: &str = "etl-pipelines";

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("--to {to} is before --from {from}")]
    ReversedRange { from: LogicalDate, to: LogicalDate },
    #[error("{days} dates from {from} to {to}: a backfill covers at most {MAX_DATES}")]
    RangeTooLong {
        from: LogicalDate,
        to: LogicalDate,
        days: i64,
    },
    #[error(
        "enabled schedules outside group {group} already start these machines: {found}. \
         Applying would start each run twice (is the SAM stack's schedule deployed?). \
         Disable those, or pass --allow-duplicates"
    )]
    Duplicates { group: String, found: String },
    #[error("schedule {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error(transparent)]
    Service(#[from] StageError),
}

fn scheduler_error<E>(
    err: aws_sdk_scheduler::error::SdkError<E, aws_sdk_scheduler::config::http::HttpResponse>,
) -> ScheduleError
where
    E: aws_sdk_scheduler::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ScheduleError::Service(StageError::aws(Service::Scheduler, err))
}

/// A schedule as it should exist in the service.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSchedule {
    pub name: String,
    pub description: Option<String>,
    pub expression: String,
    pub timezone: String,
    pub state: ScheduleState,
    pub flexible_window: FlexibleWindow,
    pub target_arn: String,
    pub role_arn: String,
    pub input: String,
    pub retry_policy: Option<RetryPolicy>,
    pub dead_letter_arn: Option<String>,
    /// ActionAfterCompletion DELETE, for one-time backfill schedules: gone once fired.
    pub delete_after_completion: bool,
}

/// What only a deployment knows, for [`DesiredSchedule::from_spec`].
#[derive(Debug, Clone)]
pub struct Deployment {
    pub role_arn: String,
    /// Without it, the template's dead-letter queue is left out (e.g. in moto).
    pub dead_letter_arn: Option<String>,
    /// Overrides every schedule's template state.
    pub state: Option<ScheduleState>,
}

impl DesiredSchedule {
    pub fn from_spec(spec: &ScheduleSpec, target_arn: &str, deployment: &Deployment) -> Self {
        Self {
            name: spec.name.clone(),
            description: spec.description.clone(),
            expression: spec.expression.clone(),
            timezone: spec.timezone.clone(),
            state: deployment.state.unwrap_or(spec.state),
            flexible_window: spec.flexible_window,
            target_arn: target_arn.to_string(),
            role_arn: deployment.role_arn.clone(),
            input: spec.input.clone(),
            retry_policy: spec.retry_policy,
            dead_letter_arn: if spec.dead_letter_queue {
                deployment.dead_letter_arn.clone()
            } else {
                None
            },
            delete_after_completion: false,
        }
    }
}

/// When backfill runs start and how far apart.
#[derive(Debug, Clone, Copy)]
pub struct BackfillTiming {
    pub first_at: DateTime<Utc>,
    pub spacing: Duration,
}

const BACKFILL_INFIX: &str = "-backfill-";

/// The backfill schedule's name for one date: `<machine>-backfill-<date>`.
pub fn backfill_name(machine: &str, date: LogicalDate) -> String {
    format!("{machine}{BACKFILL_INFIX}{date}")
}

/// One one-time `at(…)` schedule per date of `[from, to]`, oldest first and `spacing` apart
/// (so they do not all run at once), each starting `machine` with `{"logical_date": D}` and
/// deleting itself once it has fired.
pub fn backfill(
    machine: &str,
    target_arn: &str,
    role_arn: &str,
    from: LogicalDate,
    to: LogicalDate,
    timing: BackfillTiming,
) -> Result<Vec<DesiredSchedule>, ScheduleError> {
    let days = (to.date() - from.date()).num_days() + 1;
    if days < 1 {
        return Err(ScheduleError::ReversedRange { from, to });
    }
    if days > MAX_DATES {
        return Err(ScheduleError::RangeTooLong { from, to, days });
    }
    let mut schedules = Vec::new();
    let mut date = Some(from);
    let mut at = timing.first_at;
    while let Some(day) = date.filter(|d| *d <= to) {
        schedules.push(DesiredSchedule {
            name: backfill_name(machine, day),
            description: Some(format!("etl backfill of {machine} for {day}")),
            expression: format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")),
            timezone: "UTC".into(),
            state: ScheduleState::Enabled,
            flexible_window: FlexibleWindow::Off,
            target_arn: target_arn.to_string(),
            role_arn: role_arn.to_string(),
            input: serde_json::json!({ "logical_date": day }).to_string(),
            retry_policy: None,
            dead_letter_arn: None,
            delete_after_completion: true,
        });
        date = day.next();
        at += timing.spacing;
    }
    Ok(schedules)
}

/// What `apply` did to one schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// What `etl schedules apply` or `delete` did to one schedule, as it prints it.
pub struct ScheduleChange<'a> {
    /// `created`, `updated`, `unchanged`, `deleted` or `absent`.
    pub action: &'a str,
    pub group: &'a str,
    pub name: &'a str,
}

impl std::fmt::Display for ScheduleChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<10} {}/{}", self.action, self.group, self.name)
    }
}

/// Creates the group if it does not exist.
pub async fn ensure_group(
    client: &aws_sdk_scheduler::Client,
    group: &str,
) -> Result<(), ScheduleError> {
    match client.get_schedule_group().name(group).send().await {
        Ok(_) => return Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(aws_sdk_scheduler::operation::get_schedule_group::GetScheduleGroupError::is_resource_not_found_exception) => {}
        Err(err) => return Err(scheduler_error(err)),
    }
    match client.create_schedule_group().name(group).send().await {
        Ok(_) => Ok(()),
        // Created meanwhile by someone else: what we wanted.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(aws_sdk_scheduler::operation::create_schedule_group::CreateScheduleGroupError::is_conflict_exception) =>
        {
            Ok(())
        }
        Err(err) => Err(scheduler_error(err)),
    }
}

/// Enabled schedules in other groups whose target is one of `target_arns`, as `group/name`.
pub async fn duplicates_elsewhere(
    client: &aws_sdk_scheduler::Client,
    group: &str,
    target_arns: &BTreeSet<String>,
) -> Result<Vec<String>, ScheduleError> {
    let mut found = Vec::new();
    let mut pages = client
        .list_schedules()
        .state(SdkScheduleState::Enabled)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for schedule in page.map_err(scheduler_error)?.schedules() {
            let in_group = schedule.group_name().unwrap_or("default");
            let target = schedule
                .target()
                .map(aws_sdk_scheduler::types::TargetSummary::arn)
                .unwrap_or_default();
            let name = schedule.name().unwrap_or("?");
            // Pending one-time backfills start each date once; they cannot double up.
            let one_time_backfill = name.contains(BACKFILL_INFIX);
            if in_group != group && target_arns.contains(target) && !one_time_backfill {
                found.push(format!("{in_group}/{name}"));
            }
        }
    }
    Ok(found)
}

fn to_sdk(desired: &DesiredSchedule) -> Result<(Target, FlexibleTimeWindow), ScheduleError> {
    let invalid = |e: aws_smithy_types::error::operation::BuildError| ScheduleError::Invalid {
        name: desired.name.clone(),
        reason: e.to_string(),
    };
    let mut target = Target::builder()
        .arn(&desired.target_arn)
        .role_arn(&desired.role_arn)
        .input(&desired.input);
    if let Some(policy) = desired.retry_policy {
        target = target.retry_policy(
            SdkRetryPolicy::builder()
                .maximum_event_age_in_seconds(clamp(policy.maximum_event_age_seconds))
                .maximum_retry_attempts(clamp(policy.maximum_retry_attempts))
                .build(),
        );
    }
    if let Some(arn) = &desired.dead_letter_arn {
        target = target.dead_letter_config(DeadLetterConfig::builder().arn(arn).build());
    }
    let window = match desired.flexible_window {
        FlexibleWindow::Off => FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off),
        FlexibleWindow::Flexible { maximum_minutes } => FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Flexible)
            .maximum_window_in_minutes(clamp(maximum_minutes)),
    };
    Ok((
        target.build().map_err(invalid)?,
        window.build().map_err(invalid)?,
    ))
}

/// The service takes i32; the template's numbers are far below its limit.
fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn sdk_state(state: ScheduleState) -> SdkScheduleState {
    match state {
        ScheduleState::Enabled => SdkScheduleState::Enabled,
        ScheduleState::Disabled => SdkScheduleState::Disabled,
    }
}

/// Does the schedule the service has match the one we want?
fn matches(
    have: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    want: &DesiredSchedule,
) -> bool {
    let Some(target) = have.target() else {
        return false;
    };
    let window = have
        .flexible_time_window()
        .map(|w| (w.mode().as_str().to_string(), w.maximum_window_in_minutes()));
    let want_window = match want.flexible_window {
        FlexibleWindow::Off => ("OFF".to_string(), None),
        FlexibleWindow::Flexible { maximum_minutes } => {
            ("FLEXIBLE".to_string(), Some(clamp(maximum_minutes)))
        }
    };
    let retry = target
        .retry_policy()
        .map(|p| (p.maximum_event_age_in_seconds(), p.maximum_retry_attempts()));
    // Without a policy of ours the service applies its default one; any is fine then.
    let retry_matches = match want.retry_policy {
        None => true,
        Some(p) => {
            retry
                == Some((
                    Some(clamp(p.maximum_event_age_seconds)),
                    Some(clamp(p.maximum_retry_attempts)),
                ))
        }
    };
    have.schedule_expression() == Some(want.expression.as_str())
        && have.schedule_expression_timezone().unwrap_or("UTC") == want.timezone
        && have.state() == Some(&sdk_state(want.state))
        && have.description() == want.description.as_deref()
        && window == Some(want_window)
        && target.arn() == want.target_arn
        && target.role_arn() == want.role_arn
        && target.input() == Some(want.input.as_str())
        && retry_matches
        && target.dead_letter_config().and_then(|d| d.arn()) == want.dead_letter_arn.as_deref()
}

/// Creates each schedule, updates it if it differs, or leaves it alone.
pub async fn apply(
    client: &aws_sdk_scheduler::Client,
    group: &str,
    desired: &[DesiredSchedule],
) -> Result<Vec<(String, Applied)>, ScheduleError> {
    ensure_group(client, group).await?;
    let mut results = Vec::new();
    for want in desired {
        let (target, window) = to_sdk(want)?;
        let existing = match client
            .get_schedule()
            .group_name(group)
            .name(&want.name)
            .send()
            .await
        {
            Ok(have) => Some(have),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_scheduler::operation::get_schedule::GetScheduleError::is_resource_not_found_exception) =>
            {
                None
            }
            Err(err) => return Err(scheduler_error(err)),
        };
        let after_completion = want
            .delete_after_completion
            .then_some(ActionAfterCompletion::Delete);
        let outcome = match existing {
            Some(have) if matches(&have, want) => Applied::Unchanged,
            Some(_) => {
                client
                    .update_schedule()
                    .group_name(group)
                    .name(&want.name)
                    .set_description(want.description.clone())
                    .schedule_expression(&want.expression)
                    .schedule_expression_timezone(&want.timezone)
                    .state(sdk_state(want.state))
                    .flexible_time_window(window)
                    .target(target)
                    .set_action_after_completion(after_completion)
                    .send()
                    .await
                    .map_err(scheduler_error)?;
                Applied::Updated
            }
            None => {
                client
                    .create_schedule()
                    .group_name(group)
                    .name(&want.name)
                    .set_description(want.description.clone())
                    .schedule_expression(&want.expression)
                    .schedule_expression_timezone(&want.timezone)
                    .state(sdk_state(want.state))
                    .flexible_time_window(window)
                    .target(target)
                    .set_action_after_completion(after_completion)
                    .send()
                    .await
                    .map_err(scheduler_error)?;
                Applied::Created
            }
        };
        results.push((want.name.clone(), outcome));
    }
    Ok(results)
}

/// A schedule as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSchedule {
    pub name: String,
    pub expression: String,
    pub timezone: String,
    pub state: String,
    pub target_arn: String,
    pub input: String,
}

/// The table of `etl schedules list`: a header, then a line per schedule.
pub struct ScheduleTable<'a>(pub &'a [ListedSchedule]);

impl std::fmt::Display for ScheduleTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<40} {:<28} {:<9} target",
            "name", "expression", "state"
        )?;
        for s in self.0 {
            write!(
                f,
                "\n{:<40} {:<28} {:<9} {}",
                s.name,
                format!("{} {}", s.expression, s.timezone),
                s.state,
                s.target_arn
            )?;
        }
        Ok(())
    }
}

/// Every schedule of the group, by name. A group that does not exist has none.
pub async fn list(
    client: &aws_sdk_scheduler::Client,
    group: &str,
) -> Result<Vec<ListedSchedule>, ScheduleError> {
    let mut names = Vec::new();
    let mut pages = client
        .list_schedules()
        .group_name(group)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_scheduler::operation::list_schedules::ListSchedulesError::is_resource_not_found_exception) =>
            {
                return Ok(Vec::new())
            }
            Err(err) => return Err(scheduler_error(err)),
        };
        names.extend(
            page.schedules()
                .iter()
                .filter(|s| s.group_name().unwrap_or(group) == group)
                .filter_map(|s| s.name().map(str::to_string)),
        );
    }
    names.sort();
    let mut listed = Vec::new();
    // The summaries carry no expression or input: one GetSchedule each.
    for name in names {
        let have = client
            .get_schedule()
            .group_name(group)
            .name(&name)
            .send()
            .await
            .map_err(scheduler_error)?;
        listed.push(ListedSchedule {
            expression: have.schedule_expression().unwrap_or_default().to_string(),
            timezone: have
                .schedule_expression_timezone()
                .unwrap_or("UTC")
                .to_string(),
            state: have
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            target_arn: have
                .target()
                .map(|t| t.arn().to_string())
                .unwrap_or_default(),
            input: have
                .target()
                .and_then(|t| t.input())
                .unwrap_or_default()
                .to_string(),
            name,
        });
    }
    Ok(listed)
}

/// Deletes the named schedules; `true` for each that existed.
pub async fn delete(
    client: &aws_sdk_scheduler::Client,
    group: &str,
    names: &[String],
) -> Result<Vec<(String, bool)>, ScheduleError> {
    let mut results = Vec::new();
    for name in names {
        let existed = match client
            .delete_schedule()
            .group_name(group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => true,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError::is_resource_not_found_exception) =>
            {
                false
            }
            Err(err) => return Err(scheduler_error(err)),
        };
        results.push((name.clone(), existed));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_listings_line_up() {
        let change = ScheduleChange {
            action: Applied::Unchanged.as_str(),
            group: "etl-pipelines",
            name: "HrDailySchedule",
        };
        assert_eq!(
            change.to_string(),
            "unchanged  etl-pipelines/HrDailySchedule"
        );
        let listed = [ListedSchedule {
            name: "HrDailySchedule".into(),
            expression: "cron(30 0 * * ? *)".into(),
            timezone: "UTC".into(),
            state: "ENABLED".into(),
            target_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:hr".into(),
            input: "{}".into(),
        }];
        assert_eq!(
            ScheduleTable(&listed).to_string(),
            "name                                     expression                   state     target\n\
             HrDailySchedule                          cron(30 0 * * ? *) UTC       ENABLED   \
             arn:aws:states:us-east-1:000000000000:stateMachine:hr"
        );
    }

    fn date(text: &str) -> LogicalDate {
        text.parse().unwrap()
    }

    fn timing() -> BackfillTiming {
        BackfillTiming {
            first_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            spacing: Duration::minutes(15),
        }
    }

    #[test]
    fn a_backfill_is_one_self_deleting_at_schedule_per_date() {
        let schedules = backfill(
            "hr",
            "arn:m",
            "arn:r",
            date("2026-02-27"),
            date("2026-03-02"),
            timing(),
        )
        .unwrap();
        let summary: Vec<(&str, &str, &str)> = schedules
            .iter()
            .map(|s| (s.name.as_str(), s.expression.as_str(), s.input.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "hr-backfill-2026-02-27",
                    "at(2026-12-01T10:00:00)",
                    r#"{"logical_date":"2026-02-27"}"#
                ),
                (
                    "hr-backfill-2026-02-28",
                    "at(2026-12-01T10:15:00)",
                    r#"{"logical_date":"2026-02-28"}"#
                ),
                (
                    "hr-backfill-2026-03-01",
                    "at(2026-12-01T10:30:00)",
                    r#"{"logical_date":"2026-03-01"}"#
                ),
                (
                    "hr-backfill-2026-03-02",
                    "at(2026-12-01T10:45:00)",
                    r#"{"logical_date":"2026-03-02"}"#
                ),
            ]
        );
        assert!(schedules.iter().all(|s| s.delete_after_completion
            && s.flexible_window == FlexibleWindow::Off
            && s.timezone == "UTC"));
        let one = backfill(
            "hr",
            "a",
            "r",
            date("2026-11-25"),
            date("2026-11-25"),
            timing(),
        );
        assert_eq!(one.unwrap().len(), 1);
    }

    #[test]
    fn reversed_and_absurd_ranges_are_refused() {
        let err = backfill(
            "hr",
            "a",
            "r",
            date("2026-11-25"),
            date("2026-11-24"),
            timing(),
        )
        .unwrap_err();
        assert!(matches!(err, ScheduleError::ReversedRange { .. }), "{err}");
        assert!(err.to_string().contains("before"), "{err}");
        let err = backfill(
            "hr",
            "a",
            "r",
            date("2025-01-01"),
            date("2026-01-02"),
            timing(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ScheduleError::RangeTooLong { days: 367, .. }),
            "{err}"
        );
        assert!(backfill(
            "hr",
            "a",
            "r",
            date("2025-01-01"),
            date("2026-01-01"),
            timing()
        )
        .is_ok());
    }
}
