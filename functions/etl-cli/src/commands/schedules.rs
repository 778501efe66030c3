//! `etl schedules apply|list|delete`: the template's EventBridge Scheduler schedules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use chrono::{Duration, DurationRound, Utc};
use etl_cli::deployed::{self, MachineLocator};
use etl_cli::schedules::{
    self, BackfillTiming, Deployment, DesiredSchedule, ScheduleChange, ScheduleError, ScheduleTable,
};
use etl_cli::template::Template;
use etl_core::Context;

use super::{context, load_template};
use crate::cli::{ApplyArgs, ScheduleGroup, SchedulesAction};

pub async fn schedules(
    template: Option<PathBuf>,
    action: SchedulesAction,
) -> anyhow::Result<ExitCode> {
    let template = load_template(template)?;
    let ctx = context().await?;
    match action {
        SchedulesAction::Apply(args) => apply(&ctx, &template, args).await,
        SchedulesAction::List { group } => list(&ctx, group).await,
        SchedulesAction::Delete { group, all } => delete(&ctx, &template, group, all).await,
    }
}

async fn apply(ctx: &Context, template: &Template, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.scheduler();
    let group = &args.group.group;
    let desired = desired_schedules(ctx, template, &args).await?;
    // A backfill runs past dates once; only recurring schedules can double up.
    if !args.allow_duplicates && !args.backfill {
        let targets = desired.iter().map(|d| d.target_arn.clone()).collect();
        let found = schedules::duplicates_elsewhere(client, group, &targets).await?;
        if !found.is_empty() {
            return Err(ScheduleError::Duplicates {
                group: group.clone(),
                found: found.join(", "),
            }
            .into());
        }
    }
    for (name, outcome) in schedules::apply(client, group, &desired).await? {
        let change = ScheduleChange {
            action: outcome.as_str(),
            group,
            name: &name,
        };
        println!("{change}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The template's schedules, or with `--backfill` one-time schedules, each aimed at its
/// deployed machine.
async fn desired_schedules(
    ctx: &Context,
    template: &Template,
    args: &ApplyArgs,
) -> anyhow::Result<Vec<DesiredSchedule>> {
    let deployed_machines = deployed::deployed_machines(ctx.step_functions()).await?;
    let find = |machine: &str| {
        MachineLocator::new(template, machine, &args.prefix.name_prefix).choose(&deployed_machines)
    };
    match (args.backfill, &args.machine, args.from, args.to) {
        (true, Some(machine), Some(from), Some(to)) => {
            let timing = BackfillTiming {
                // Whole minutes, at least 5 from now: time to look before it fires.
                first_at: (Utc::now() + Duration::minutes(6))
                    .duration_trunc(Duration::minutes(1))?,
                spacing: Duration::minutes(i64::from(args.spacing_minutes)),
            };
            let target = find(machine)?;
            Ok(schedules::backfill(
                machine,
                &target,
                &args.role_arn,
                from,
                to,
                timing,
            )?)
        }
        (true, ..) => bail!("--backfill needs --machine, --from and --to"),
        (false, ..) => {
            if args.dead_letter_arn.is_none()
                && template.schedules.iter().any(|s| s.dead_letter_queue)
            {
                eprintln!(
                    "note: without --dead-letter-arn the schedules get no dead-letter \
                     queue (the template gives them ScheduleDeadLetterQueue)"
                );
            }
            let deployment = Deployment {
                role_arn: args.role_arn.clone(),
                dead_letter_arn: args.dead_letter_arn.clone(),
                state: args.state,
            };
            Ok(template
                .schedules
                .iter()
                .map(|spec| {
                    find(&spec.target_machine)
                        .map(|arn| DesiredSchedule::from_spec(spec, &arn, &deployment))
                })
                .collect::<Result<Vec<_>, _>>()?)
        }
    }
}

async fn list(ctx: &Context, group: ScheduleGroup) -> anyhow::Result<ExitCode> {
    let listed = schedules::list(ctx.scheduler(), &group.group).await?;
    println!("{}", ScheduleTable(&listed));
    Ok(ExitCode::SUCCESS)
}

/// Deletes the template's schedules, or with `all` every schedule in the group.
async fn delete(
    ctx: &Context,
    template: &Template,
    group: ScheduleGroup,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let client = ctx.scheduler();
    let group = group.group;
    let names: Vec<String> = if all {
        schedules::list(client, &group)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect()
    } else {
        template.schedules.iter().map(|s| s.name.clone()).collect()
    };
    for (name, existed) in schedules::delete(client, &group, &names).await? {
        let change = ScheduleChange {
            action: if existed { "deleted" } else { "absent" },
            group: &group,
            name: &name,
        };
        println!("{change}");
    }
    Ok(ExitCode::SUCCESS)
}
