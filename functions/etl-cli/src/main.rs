//! `etl`: run the pipelines' state machines locally, invoke single functions, check services.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use etl_cli::deployed::{self, MachineLocator};
use etl_cli::functions::{call_in_process, function_names, OverInvokeApi};
use etl_cli::runner::{execution_input, run_machine, FunctionHost, RunReport, RunSettings};
use etl_cli::schedules::{self, BackfillTiming, Deployment, DesiredSchedule};
use etl_cli::template::{ScheduleState, Template};
use etl_core::ledger::{self, Reprocess};
use etl_core::stages::plan::{self, RunRequest};
use etl_core::{probe, Config, Context, EnvSource, LogicalDate, Service};
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "etl",
    version,
    about = "Serverless data pipelines, run locally or on AWS"
)]
struct Cli {
    /// The SAM template (default: template.yaml at the repository root).
    #[arg(long, global = true, env = "ETL_TEMPLATE")]
    template: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Execute a state machine from infra/statemachines/ locally (or `all` of them, in order).
    Run {
        /// Machine name (the ASL file's stem, e.g. hr-setup) or `all`.
        machine: String,
        /// The logical date (YYYY-MM-DD); default: today (UTC), unless --input carries
        /// `scheduled_time` (then the machine derives the date, as on a scheduled start).
        #[arg(long)]
        date: Option<LogicalDate>,
        /// Extra execution input, a JSON object merged over {"logical_date": …}; e.g.
        /// '{"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily"}' without --date.
        #[arg(long)]
        input: Option<String>,
        /// Call functions over this Lambda Invoke API (e.g. http://127.0.0.1:9000 for
        /// `cargo lambda watch`) instead of in-process.
        #[arg(long, env = "ETL_LAMBDA_ENDPOINT")]
        lambda_endpoint: Option<String>,
        /// Multiply Wait and Retry delays (0.01 turns a 5-minute retry into 3 s).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Execution name (default: <machine>-<date>-local-<timestamp>).
        #[arg(long)]
        execution_name: Option<String>,
        /// Override a definition substitution, e.g. --set RetryIntervalSeconds=5 (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        overrides: Vec<String>,
    },
    /// Run a pipeline for every date of a range that the ledger says needs it.
    Backfill {
        /// The pipeline's state machine, e.g. hr.
        machine: String,
        #[arg(long)]
        from: LogicalDate,
        #[arg(long)]
        to: LogicalDate,
        /// Dates run at once (Airflow's max_active_runs); default: the template's.
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// none: never-attempted dates; failed: also failed ones; all: every date.
        #[arg(long, default_value = "none")]
        reprocess: Reprocess,
        /// Stage parameters for every date, a JSON object (e.g. '{"count": 1000}').
        #[arg(long)]
        params: Option<String>,
        /// Print the dates that would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "ETL_LAMBDA_ENDPOINT")]
        lambda_endpoint: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
    },
    /// Measure a pipeline's throughput and memory, or the Lambda binaries' cold starts
    /// (see BENCHMARKS.md).
    Bench {
        /// `hr` (rows = employees), `clickstream` (rows = events), `marketing` (rows =
        /// campaign rows; the seed's volume is 500000), or `lambda-init`: each packaged
        /// binary's size and cold-start init time (after `cargo lambda build --release`).
        pipeline: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// How many times to run: lambda-init's cold starts per function (default 20); a
        /// pipeline's runs back to back, summarised as min / median / max (default 1).
        #[arg(long)]
        runs: Option<usize>,
        /// lambda-init: where `cargo lambda build` left the binaries
        /// (default: $CARGO_TARGET_DIR/lambda, else target/lambda).
        #[arg(long)]
        lambda_dir: Option<PathBuf>,
        /// lambda-init: the database settings come from a Secrets Manager secret, as when
        /// deployed, so init includes fetching it (from the configured AWS endpoint).
        #[arg(long)]
        database_secret: bool,
    },
    /// Stream simulated clickstream events live, for dashboards (Ctrl-C stops).
    Simulate {
        /// Only `clickstream`.
        what: String,
        /// Keep streaming; without it, run the clickstream state machine once instead.
        #[arg(long)]
        follow: bool,
        /// Events per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Funnel statistics from Elasticsearch aggregations.
    Stats {
        /// Only `clickstream`.
        what: String,
        #[arg(long)]
        date: Option<LogicalDate>,
    },
    /// Print a pipeline's stored report: the marketing KPI tables of a date.
    Report {
        /// Only `marketing`.
        what: String,
        #[arg(long)]
        date: Option<LogicalDate>,
    },
    /// List run-ledger rows, newest first.
    Runs {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        since: Option<LogicalDate>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Invoke one function with an event file (e.g. events/hr-schema.json).
    Invoke {
        function: String,
        #[arg(long)]
        event: PathBuf,
        #[arg(long, env = "ETL_LAMBDA_ENDPOINT")]
        lambda_endpoint: Option<String>,
    },
    /// Start a deployed state machine (Step Functions API) as execution <machine>-<date>;
    /// starting it again returns the same execution.
    Start {
        /// Machine name (e.g. hr) or template logical id; found among the deployed machines
        /// as `hr`, `HrStateMachine` or CloudFormation's `HrStateMachine-<suffix>`.
        machine: String,
        #[arg(long)]
        date: LogicalDate,
        /// Wait for the execution to finish; print its status and output. Exits non-zero
        /// unless it SUCCEEDED.
        #[arg(long)]
        wait: bool,
        /// Extra execution input, a JSON object merged over {"logical_date": …}.
        #[arg(long)]
        input: Option<String>,
        #[command(flatten)]
        target: MachineTarget,
        /// Execution name instead of <machine>-<date> (e.g. to run a date again).
        #[arg(long)]
        execution_name: Option<String>,
    },
    /// EventBridge Scheduler schedules, as template.yaml declares them.
    Schedules {
        #[command(subcommand)]
        action: SchedulesAction,
    },
    /// List the state machines and functions the template declares.
    List,
    /// Check that every service answers with the current configuration.
    Check,
}

/// How `start` and `schedules apply` find a deployed machine.
#[derive(clap::Args, Clone)]
struct MachineTarget {
    /// Use this machine instead of looking it up by name.
    #[arg(long)]
    state_machine_arn: Option<String>,
    /// Look machines up as <prefix><name> (for machines deployed with prefixed names).
    #[arg(long, env = "ETL_STATE_MACHINE_PREFIX", default_value = "")]
    name_prefix: String,
}

#[derive(Subcommand)]
enum SchedulesAction {
    /// Create or update the template's schedules (or, with --backfill, one-time schedules).
    Apply {
        #[arg(long, default_value = schedules::DEFAULT_GROUP)]
        group: String,
        /// The role EventBridge Scheduler assumes to start the machines (the stack's
        /// SchedulerRole output).
        #[arg(long, env = "ETL_SCHEDULER_ROLE_ARN")]
        role_arn: String,
        /// SQS queue for starts that could not be delivered (the stack's
        /// ScheduleDeadLetterQueue ARN); without it schedules have none.
        #[arg(long)]
        dead_letter_arn: Option<String>,
        /// ENABLED or DISABLED for every schedule, instead of the template's SchedulesState.
        #[arg(long)]
        state: Option<ScheduleState>,
        /// Apply even if enabled schedules in other groups start the same machines.
        #[arg(long)]
        allow_duplicates: bool,
        #[arg(long, env = "ETL_STATE_MACHINE_PREFIX", default_value = "")]
        name_prefix: String,
        /// One-time at() schedules, one per date of --from..--to, for --machine.
        #[arg(long, requires_all = ["machine", "from", "to"])]
        backfill: bool,
        #[arg(long, requires = "backfill")]
        machine: Option<String>,
        #[arg(long, requires = "backfill")]
        from: Option<LogicalDate>,
        #[arg(long, requires = "backfill")]
        to: Option<LogicalDate>,
        /// Minutes between two backfill runs (the first starts 5 minutes from now).
        #[arg(long, default_value_t = 10, requires = "backfill")]
        spacing_minutes: u32,
    },
    /// Name, expression, state and target of every schedule in the group.
    List {
        #[arg(long, default_value = schedules::DEFAULT_GROUP)]
        group: String,
    },
    /// Delete the template's schedules from the group (with --all: every schedule in it,
    /// pending backfills too).
    Delete {
        #[arg(long, default_value = schedules::DEFAULT_GROUP)]
        group: String,
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Human-readable logs on stderr, with the span fields (machine, logical date, request id)
/// on every line; stdout carries only results.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();
}

fn load_template(path: Option<PathBuf>) -> anyhow::Result<Template> {
    let path = match path {
        Some(p) => p,
        None => etl_cli::project_root()
            .context("no template.yaml in this directory or its parents (use --template)")?
            .join("template.yaml"),
    };
    Ok(Template::load(&path)?)
}

async fn context() -> anyhow::Result<Arc<Context>> {
    let config = Config::from_env().context("configuration")?;
    Ok(Arc::new(Context::new(config).await?))
}

/// One run of `etl bench <pipeline>` in a child process of this same binary: its phase table
/// and logs go to our stderr, its phases (JSON on its stdout) come back.
async fn bench_in_fresh_process(
    pipeline: String,
    rows: u64,
) -> anyhow::Result<Vec<etl_cli::bench::Phase>> {
    let exe = std::env::current_exe().context("finding this binary to run a benchmark in")?;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["bench", &pipeline, "--rows", &rows.to_string()])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
    })
    .await
    .context("the benchmark's child process")?
    .context("starting a benchmark run")?;
    if !output.status.success() {
        bail!(
            "a benchmark run failed ({}): see its error above",
            output.status
        );
    }
    serde_json::from_slice(&output.stdout).context("reading a benchmark run's phases")
}

/// `etl bench lambda-init`: every function's packaged binary, started cold `runs` times with
/// the settings a deployed function gets (and, with `database_secret`, a real secret to fetch).
async fn bench_lambda_init(
    runs: usize,
    lambda_dir: Option<PathBuf>,
    database_secret: bool,
) -> anyhow::Result<ExitCode> {
    let source = EnvSource::load().context("configuration")?;
    let mut settings = source.function_settings();
    let mut secret = None;
    if database_secret {
        let ctx = context().await?;
        let database_url = source
            .get("DATABASE_URL")
            .context("--database-secret needs DATABASE_URL to store in the secret")?;
        let client = aws_sdk_secretsmanager::Client::new(ctx.aws_config());
        let created = client
            .create_secret()
            .name(format!("etl-bench/lambda-init-{}", std::process::id()))
            // The shape the README asks operators to store: `{"url": …}`.
            .secret_string(serde_json::json!({ "url": database_url }).to_string())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "create the benchmark's database secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let arn = created
            .arn()
            .context("the new secret has no ARN")?
            .to_string();
        settings.retain(|(key, _)| key != "DATABASE_URL");
        settings.push((
            etl_core::config::DATABASE_SECRET_VAR.to_string(),
            arn.clone(),
        ));
        secret = Some((client, arn));
    }
    let dir = lambda_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("lambda")
    });
    let measured = tokio::task::spawn_blocking(move || {
        etl_cli::lambda_init::measure(&dir, &function_names(), runs, &settings)
    })
    .await
    .context("the cold-start measurement panicked")?;
    if let Some((client, arn)) = secret {
        let _ = client
            .delete_secret()
            .secret_id(arn)
            .force_delete_without_recovery(true)
            .send()
            .await;
    }
    let figures = measured?;
    eprintln!("{}", etl_cli::lambda_init::InitFigure::table_header());
    for f in &figures {
        eprintln!("{f}");
    }
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            machine,
            date,
            input,
            lambda_endpoint,
            time_scale,
            execution_name,
            overrides,
        } => {
            check_time_scale(time_scale)?;
            let template = load_template(cli.template)?;
            let extra_input = input
                .map(|text| serde_json::from_str::<Value>(&text))
                .transpose()
                .context("--input is not JSON")?;
            // A scheduler-style input has no date of its own: the machine derives it.
            let scheduled = extra_input
                .as_ref()
                .is_some_and(|input| input.get("scheduled_time").is_some());
            let settings = RunSettings {
                date: if scheduled {
                    date
                } else {
                    date.or_else(|| Some(today()))
                },
                extra_input,
                host: lambda_endpoint.map_or(FunctionHost::InProcess, FunctionHost::InvokeApi),
                time_scale,
                execution_name,
                overrides: parse_overrides(&overrides)?,
            };
            let names: Vec<String> = if machine == "all" {
                template
                    .machine_names()
                    .into_iter()
                    .map(String::from)
                    .collect()
            } else {
                vec![machine]
            };
            let ctx = context().await?;
            let mut reports = Vec::new();
            for name in &names {
                let report = run_machine(&ctx, &template, name, &settings).await?;
                let failed = report.output.is_err();
                reports.push(report);
                if failed {
                    break; // later machines depend on earlier ones (schema first)
                }
            }
            print_reports(&reports);
            Ok(
                if reports.iter().all(|r| r.output.is_ok()) && reports.len() == names.len() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Backfill {
            machine,
            from,
            to,
            max_concurrency,
            reprocess,
            params,
            dry_run,
            lambda_endpoint,
            time_scale,
        } => {
            check_time_scale(time_scale)?;
            if from > to {
                bail!("--from {from} is after --to {to}");
            }
            let params: Option<serde_json::Map<String, Value>> = params
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .context("--params must be a JSON object")?;
            let ctx = context().await?;
            let request = RunRequest {
                logical_date: to,
                start_date: Some(from),
                reprocess: Some(reprocess),
                lookback_days: 31,
                params: params.clone(),
            };
            let dates = plan_dates(&ctx, &machine, &request).await?;
            eprintln!(
                "{} date(s) to run for {machine} in [{from}, {to}] (reprocess {reprocess:?})",
                dates.len()
            );
            for date in &dates {
                println!("{date}");
            }
            if dry_run || dates.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            let template = load_template(cli.template)?;
            let mut input =
                serde_json::json!({"start_date": from.to_string(), "reprocess": reprocess});
            if let Some(params) = params {
                input["params"] = Value::Object(params);
            }
            let mut overrides = HashMap::new();
            if let Some(n) = max_concurrency {
                overrides.insert("MaxConcurrency".to_string(), n.to_string());
            }
            let settings = RunSettings {
                date: Some(to),
                extra_input: Some(input),
                host: lambda_endpoint.map_or(FunctionHost::InProcess, FunctionHost::InvokeApi),
                time_scale,
                execution_name: Some(format!(
                    "{machine}-backfill-{from}-{to}-{}",
                    chrono::Utc::now().format("%H%M%S")
                )),
                overrides,
            };
            let report = run_machine(&ctx, &template, &machine, &settings).await?;
            let ok = report.output.is_ok();
            print_reports(&[report]);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench {
            pipeline,
            runs,
            lambda_dir,
            database_secret,
            ..
        } if pipeline == "lambda-init" => {
            bench_lambda_init(runs.unwrap_or(20), lambda_dir, database_secret).await
        }
        Command::Bench {
            pipeline,
            rows,
            runs,
            ..
        } => {
            let runs = runs.unwrap_or(1);
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            if runs > 1 {
                // Each run in a process of its own, as each Lambda is: a run must not
                // inherit the heap an earlier run (or its ceiling phases) left behind, which
                // glibc keeps and which would inflate later runs' peak RSS.
                let mut all = Vec::with_capacity(runs);
                for _ in 0..runs {
                    all.push(bench_in_fresh_process(pipeline.clone(), rows).await?);
                }
                let summary = etl_cli::bench::summarise(&all);
                eprintln!("\nover {runs} runs, each in a fresh process (min / median / max):");
                for s in &summary {
                    eprintln!("{s}");
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "runs": all, "summary": summary })
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let ctx = context().await?;
            let phases = match pipeline.as_str() {
                "hr" => etl_cli::bench::hr(&ctx, rows).await?,
                "clickstream" => etl_cli::bench::clickstream(&ctx, rows).await?,
                "marketing" => etl_cli::bench::marketing(&ctx, rows).await?,
                other => bail!(
                    "no benchmark for {other:?} (have: hr, clickstream, marketing, lambda-init)"
                ),
            };
            for p in &phases {
                eprintln!("{p}");
            }
            println!("{}", serde_json::to_string_pretty(&phases)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            what,
            follow,
            rate,
            seconds,
        } => {
            if what != "clickstream" {
                bail!("nothing to simulate named {what:?} (have: clickstream)");
            }
            if !follow {
                bail!("use --follow for a live stream, or `etl run clickstream --date D` for one interval");
            }
            let ctx = context().await?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let totals = etl_cli::follow::follow(
                &ctx,
                rate,
                seconds.map(std::time::Duration::from_secs),
                stop,
            )
            .await?;
            eprintln!(
                "streamed {} events in {} s ({} indexed, {} failed)",
                totals.events, totals.seconds, totals.indexed, totals.failed
            );
            Ok(if totals.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Report { what, date } => {
            if what != "marketing" {
                bail!("no report for {what:?} (have: marketing)");
            }
            let ctx = context().await?;
            let date = date.unwrap_or_else(today);
            let report = marketing::stages::report::load(&ctx, date).await?;
            print!("{}", marketing::render::text(&report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { what, date } => {
            if what != "clickstream" {
                bail!("no statistics for {what:?} (have: clickstream)");
            }
            let ctx = context().await?;
            let date = date.unwrap_or_else(today);
            let s = etl_core::clickstream::stats::funnel(&ctx, date).await?;
            println!("clickstream funnel for {date}");
            println!("  events                {:>10}", s.events);
            println!("  sessions              {:>10}", s.sessions);
            println!(
                "  → added to cart       {:>10}  ({:.1} %)",
                s.sessions_with_cart,
                s.view_to_cart * 100.0
            );
            println!(
                "  → purchased           {:>10}  ({:.1} % of carts)",
                s.sessions_with_purchase,
                s.cart_to_purchase * 100.0
            );
            println!("  revenue               {:>10.2}", s.revenue);
            println!("  top categories by revenue:");
            for c in &s.top_categories {
                println!(
                    "    {:<20} {:>6} purchases {:>12.2}",
                    c.category, c.purchases, c.revenue
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            pipeline,
            since,
            limit,
        } => {
            let ctx = context().await?;
            let rows = ledger::list(&ctx, pipeline.as_deref(), since, limit).await?;
            println!(
                "{:>6}  {:<12} {:<9} {:<10} {:>3}  {:<9} {:>9} {:>9} {:>8} {:>8}  error",
                "run",
                "pipeline",
                "stage",
                "date",
                "try",
                "status",
                "rows_in",
                "rows_out",
                "rejected",
                "ms"
            );
            let num = |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
            for r in rows {
                println!(
                    "{:>6}  {:<12} {:<9} {:<10} {:>3}  {:<9} {:>9} {:>9} {:>8} {:>8}  {}",
                    r.run_id,
                    r.pipeline,
                    r.stage,
                    r.logical_date,
                    r.attempt,
                    r.status,
                    num(r.rows_in),
                    num(r.rows_out),
                    num(r.rows_rejected),
                    num(r.duration_ms),
                    r.error_name.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            function,
            event,
            lambda_endpoint,
        } => {
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("cannot read {}", event.display()))?;
            let payload: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", event.display()))?;
            let ctx = context().await?;
            let result = match lambda_endpoint {
                Some(url) => OverInvokeApi::new(&ctx, &url)
                    .call(&function, &payload)
                    .await
                    .map_err(|f| format!("{}: {}", f.error, f.cause)),
                None => call_in_process(&ctx, &function, payload)
                    .await
                    .map_err(|e| format!("{}: {e}", e.kind())),
            };
            match result {
                Ok(output) => {
                    println!("{}", serde_json::to_string_pretty(&output)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("{function} failed: {message}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Start {
            machine,
            date,
            wait,
            input,
            target,
            execution_name,
        } => {
            let template = load_template(cli.template)?;
            let extra_input = input
                .map(|text| serde_json::from_str::<Value>(&text))
                .transpose()
                .context("--input is not JSON")?;
            let input = execution_input(Some(date), extra_input.as_ref())?;
            let ctx = context().await?;
            let sfn = ctx.step_functions();
            let machine_arn = match target.state_machine_arn {
                Some(arn) => arn,
                None => {
                    let locator = MachineLocator::new(&template, &machine, &target.name_prefix);
                    deployed::find_machine_arn(sfn, &locator).await?
                }
            };
            let name = execution_name.unwrap_or_else(|| deployed::execution_name(&machine, date));
            let started = deployed::start(sfn, &machine_arn, &name, &input).await?;
            eprintln!(
                "{} {name} on {machine_arn}",
                if started.new {
                    "started"
                } else {
                    "already started:"
                }
            );
            println!("{}", started.execution_arn);
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            let finished = deployed::wait(sfn, &started.execution_arn).await?;
            println!("{}", finished.status);
            if let Some(output) = &finished.output {
                let pretty = serde_json::from_str::<Value>(output)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| output.clone());
                println!("{pretty}");
            }
            if finished.succeeded() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "execution {name} {}\n  error: {}\n  cause: {}",
                    finished.status,
                    finished.error.as_deref().unwrap_or("-"),
                    finished.cause.as_deref().unwrap_or("-")
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Schedules { action } => {
            let template = load_template(cli.template)?;
            let ctx = context().await?;
            schedules_command(&ctx, &template, action).await
        }
        Command::List => {
            let template = load_template(cli.template)?;
            println!("state machines:");
            for m in &template.machines {
                println!("  {:<20} {}", m.name, m.definition_path.display());
            }
            println!("functions:");
            for f in function_names() {
                println!("  {f}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let ctx = context().await?;
            let mut all_up = true;
            for service in [
                Service::Postgres,
                Service::S3,
                Service::Elasticsearch,
                Service::StepFunctions,
                Service::Scheduler,
            ] {
                match probe::check(&ctx, service).await {
                    Ok(detail) => println!("  {:<22} up     {detail}", service.to_string()),
                    Err(err) => {
                        all_up = false;
                        println!("  {:<22} DOWN   {err}", service.to_string());
                    }
                }
            }
            Ok(if all_up {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn schedules_command(
    ctx: &Context,
    template: &Template,
    action: SchedulesAction,
) -> anyhow::Result<ExitCode> {
    let client = ctx.scheduler();
    match action {
        SchedulesAction::Apply {
            group,
            role_arn,
            dead_letter_arn,
            state,
            allow_duplicates,
            name_prefix,
            backfill,
            machine,
            from,
            to,
            spacing_minutes,
        } => {
            let deployed_machines = deployed::deployed_machines(ctx.step_functions()).await?;
            let find = |machine: &str| {
                MachineLocator::new(template, machine, &name_prefix).choose(&deployed_machines)
            };
            let desired = match (backfill, machine, from, to) {
                (true, Some(machine), Some(from), Some(to)) => {
                    let timing = BackfillTiming {
                        // Whole minutes, at least 5 from now: time to look before it fires.
                        first_at: chrono::DurationRound::duration_trunc(
                            chrono::Utc::now() + chrono::Duration::minutes(6),
                            chrono::Duration::minutes(1),
                        )?,
                        spacing: chrono::Duration::minutes(i64::from(spacing_minutes)),
                    };
                    let target = find(&machine)?;
                    schedules::backfill(&machine, &target, &role_arn, from, to, timing)?
                }
                (true, ..) => bail!("--backfill needs --machine, --from and --to"),
                (false, ..) => {
                    if dead_letter_arn.is_none()
                        && template.schedules.iter().any(|s| s.dead_letter_queue)
                    {
                        eprintln!(
                            "note: without --dead-letter-arn the schedules get no dead-letter \
                             queue (the template gives them ScheduleDeadLetterQueue)"
                        );
                    }
                    let deployment = Deployment {
                        role_arn,
                        dead_letter_arn,
                        state,
                    };
                    template
                        .schedules
                        .iter()
                        .map(|spec| {
                            find(&spec.target_machine)
                                .map(|arn| DesiredSchedule::from_spec(spec, &arn, &deployment))
                        })
                        .collect::<Result<Vec<_>, _>>()?
                }
            };
            // A backfill runs past dates once; only recurring schedules can double up.
            if !allow_duplicates && !backfill {
                let targets = desired.iter().map(|d| d.target_arn.clone()).collect();
                let found = schedules::duplicates_elsewhere(client, &group, &targets).await?;
                if !found.is_empty() {
                    return Err(schedules::ScheduleError::Duplicates {
                        group,
                        found: found.join(", "),
                    }
                    .into());
                }
            }
            for (name, outcome) in schedules::apply(client, &group, &desired).await? {
                println!(
                    "{:<10} {group}/{name}",
                    format!("{outcome:?}").to_lowercase()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SchedulesAction::List { group } => {
            let listed = schedules::list(client, &group).await?;
            println!("{:<40} {:<28} {:<9} target", "name", "expression", "state");
            for s in listed {
                println!(
                    "{:<40} {:<28} {:<9} {}",
                    s.name,
                    format!("{} {}", s.expression, s.timezone),
                    s.state,
                    s.target_arn
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SchedulesAction::Delete { group, all } => {
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
                println!(
                    "{:<10} {group}/{name}",
                    if existed { "deleted" } else { "absent" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_time_scale(time_scale: f64) -> anyhow::Result<()> {
    if !(0.0..=10.0).contains(&time_scale) {
        bail!("--time-scale must be between 0 and 10");
    }
    Ok(())
}

fn parse_overrides(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--set {pair:?} is not NAME=VALUE"))
        })
        .collect()
}

async fn plan_dates(
    ctx: &Context,
    pipeline: &str,
    request: &RunRequest,
) -> anyhow::Result<Vec<LogicalDate>> {
    Ok(plan::plan(ctx, pipeline, request).await?)
}

fn today() -> LogicalDate {
    // Today's date is always inside LogicalDate's range.
    LogicalDate::new(chrono::Utc::now().date_naive()).unwrap_or_else(|_| unreachable!())
}

fn print_reports(reports: &[RunReport]) {
    for report in reports {
        match &report.output {
            Ok(output) => println!(
                "{}",
                serde_json::to_string_pretty(output).unwrap_or_else(|_| output.to_string())
            ),
            Err(failure) => eprintln!(
                "execution {} FAILED\n  error: {}\n  cause: {}",
                report.execution_name, failure.error, failure.cause
            ),
        }
    }
    eprintln!("\nrun summary");
    eprintln!(
        "  {:<20} {:<10} {:>10}  execution",
        "machine", "status", "seconds"
    );
    for report in reports {
        let status = if report.output.is_ok() {
            "SUCCEEDED"
        } else {
            "FAILED"
        };
        eprintln!(
            "  {:<20} {:<10} {:>10.2}  {}",
            report.machine,
            status,
            report.duration.as_secs_f64(),
            report.execution_name
        );
    }
}
