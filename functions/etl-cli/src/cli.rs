//! The command line's grammar: what `etl` accepts, with its `--help` texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use etl_cli::bench::CeilingClient;
use etl_cli::lambda_limits::{InjectedFault, LambdaLimits};
use etl_cli::runner::FunctionHost;
use etl_cli::schedules;
use etl_cli::template::ScheduleState;
use etl_core::ledger::Reprocess;
use etl_core::LogicalDate;

#[derive(Parser)]
#[command(
    name = "etl",
    version,
    about = "Serverless data pipelines, run locally or on AWS"
)]
pub struct Cli {
    /// The SAM template (default: template.yaml at the repository root).
    #[arg(long, global = true, env = "ETL_TEMPLATE")]
    pub template: Option<PathBuf>,
    /// Logs on stderr as they happen. Without it, `etl run`, `etl backfill` and `etl bench`
    /// show progress instead and write their logs (JSON lines) to a file whose path they
    /// print first ($ETL_LOG_DIR, default <temp dir>/etl-logs).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Execute a state machine from infra/statemachines/ locally (or `all` of them, in order).
    Run(RunArgs),
    /// Run a pipeline for every date of a range that the ledger says needs it.
    Backfill(BackfillArgs),
    /// Measure a pipeline's throughput and memory, or the Lambda binaries' cold starts
    /// (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Stream simulated clickstream events live, for dashboards (Ctrl-C stops).
    Simulate(SimulateArgs),
    /// Funnel statistics from Elasticsearch aggregations.
    Stats(StatsArgs),
    /// Print a pipeline's stored report: the marketing KPI tables of a date.
    Report(ReportArgs),
    /// List run-ledger rows, newest first; `etl runs skip` gives up on a failed date.
    #[command(args_conflicts_with_subcommands = true)]
    Runs(RunsArgs),
    /// Invoke one function with an event file (e.g. events/hr-schema.json).
    Invoke(InvokeArgs),
    /// Serve the functions' real binaries over a local Lambda Invoke API, as strict as
    /// Lambda (init failures, Timeout, MemorySize, 6 MB payloads, the concurrency quota),
    /// for `--lambda-endpoint`. Ctrl-C stops.
    LambdaHost(LambdaHostArgs),
    /// Start a deployed state machine (Step Functions API) as execution <machine>-<date>;
    /// starting it again returns the same execution.
    Start(StartArgs),
    /// Redrive a failed execution of a deployed machine (Step Functions RedriveExecution):
    /// it resumes from the step that failed, and the steps that succeeded do not run again.
    /// For a local execution, `etl run --redrive <execution>`.
    Redrive(RedriveArgs),
    /// EventBridge Scheduler schedules, as template.yaml declares them.
    Schedules {
        #[command(subcommand)]
        action: SchedulesAction,
    },
    /// List the state machines and functions the template declares.
    List(ListArgs),
    /// Check state machine definitions as Step Functions' ValidateStateMachineDefinition does:
    /// one line per error or warning; fails when there is an error.
    Validate(ValidateArgs),
    /// Check that every service answers with the current configuration.
    Check,
    /// Serve the local read-only viewer on 127.0.0.1: the runs grid, each run's page (state
    /// machine, event timeline, figures, outputs) and the Kibana dashboards without Kibana.
    /// Ctrl-C stops.
    Ui(UiArgs),
    /// Print an execution's event history (Step Functions' GetExecutionHistory): a local
    /// execution's from etl.executions, a deployed one's with --deployed.
    History(HistoryArgs),
    /// The functions' AWS calls against template.yaml's IAM permissions.
    Iam {
        #[command(subcommand)]
        action: IamAction,
    },
}

#[derive(Args)]
pub struct LambdaHostArgs {
    /// The Invoke API's address.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: std::net::SocketAddr,
    /// Where the binaries are: `<name>/bootstrap` as `cargo lambda build` leaves them
    /// (the default, under $CARGO_TARGET_DIR/lambda) or `<name>` as in target/debug.
    #[arg(long)]
    pub binaries: Option<PathBuf>,
    /// Invocations at once across all functions, as the account quota counts them (a new
    /// account may have 10).
    #[arg(long, default_value_t = etl_cli::lambda_host::NEW_ACCOUNT_CONCURRENCY)]
    pub concurrency: usize,
    /// Multiply each function's template Timeout.
    #[arg(long, default_value_t = 1.0)]
    pub timeout_scale: f64,
}

#[derive(Subcommand)]
pub enum IamAction {
    /// Decide every call of a call log (ETL_AWS_CALL_LOG) against the template: calls and
    /// denials per function, and the grants no call exercised. Fails when a call is denied.
    Report(IamReportArgs),
}

#[derive(Args)]
pub struct IamReportArgs {
    /// The call log: one JSON line per call, as the tests write it.
    #[arg(long)]
    pub calls: PathBuf,
    /// Markdown tables (for docs/iam.md) instead of plain text.
    #[arg(long)]
    pub markdown: bool,
}

/// Where Task states' functions run.
#[derive(Args)]
pub struct LambdaEndpoint {
    /// Call functions over this Lambda Invoke API (e.g. http://127.0.0.1:9000 for
    /// `cargo lambda watch`) instead of in-process.
    #[arg(long, env = "ETL_LAMBDA_ENDPOINT")]
    pub lambda_endpoint: Option<String>,
}

impl LambdaEndpoint {
    pub fn host(self) -> FunctionHost {
        self.lambda_endpoint
            .map_or(FunctionHost::InProcess, FunctionHost::InvokeApi)
    }
}

/// How a local execution runs: where its functions are, how long its waits last.
#[derive(Args)]
pub struct LocalExecution {
    #[command(flatten)]
    pub lambda: LambdaEndpoint,
    /// Multiply Wait and Retry delays (0.01 turns a 5-minute retry into 3 s).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Multiply each function's template Timeout (Lambda ends a longer invocation with
    /// Lambda.Unknown). Separate from --time-scale, which may be 0.
    #[arg(long, default_value_t = 1.0)]
    pub timeout_scale: f64,
    /// Do not compare an in-process invocation's peak RSS with the function's MemorySize.
    #[arg(long)]
    pub no_memory_check: bool,
    /// Make the Nth invoke of Task state STATE fail with ERROR before the function runs, e.g.
    /// Hire:1:Lambda.TooManyRequestsException (repeatable).
    #[arg(long = "inject-fault", value_name = "STATE:N:ERROR")]
    pub faults: Vec<InjectedFault>,
}

impl LocalExecution {
    /// The host and time scale, once the scale is known to be sensible.
    pub fn checked(self) -> anyhow::Result<(FunctionHost, f64)> {
        if !(0.0..=10.0).contains(&self.time_scale) {
            anyhow::bail!("--time-scale must be between 0 and 10");
        }
        Ok((self.lambda.host(), self.time_scale))
    }

    /// Lambda's limits as these options ask (the template fills in each function's sizing).
    pub fn lambda_limits(&self) -> anyhow::Result<LambdaLimits> {
        if !(self.timeout_scale > 0.0 && self.timeout_scale <= 10.0) {
            anyhow::bail!("--timeout-scale must be above 0 and at most 10");
        }
        Ok(LambdaLimits {
            timeout_scale: self.timeout_scale,
            memory_check: !self.no_memory_check,
            ..LambdaLimits::default()
        })
    }
}

#[derive(Args)]
pub struct UiArgs {
    /// The port on 127.0.0.1 (the viewer listens on no other address: it has no login).
    #[arg(long, default_value_t = etl_cli::ui::DEFAULT_PORT)]
    pub port: u16,
    /// Do not serve: time the runs grid's render for 365 dates × 4 pipelines and print
    /// min/median/max (the benchmark behind the viewer's 200 ms budget).
    #[arg(long)]
    pub bench_grid: bool,
    /// Show the deployed machines' executions, read from the Step Functions API (AWS, or
    /// moto with AWS_ENDPOINT_URL), instead of the local database's; machines are found as
    /// `etl start` finds them (--name-prefix).
    #[arg(long, conflicts_with = "bench_grid")]
    pub deployed: bool,
    // --name-prefix: read with --deployed only.
    #[command(flatten)]
    pub prefix: NamePrefix,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// The execution: its name or ARN.
    pub execution: String,
    /// Print GetExecutionHistory's JSON ({"events": […]}) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Read the history of a deployed execution from the Step Functions API.
    #[arg(long)]
    pub deployed: bool,
    /// With --deployed and an execution name: the machine it belongs to (e.g. hr).
    #[arg(long, requires = "deployed")]
    pub machine: Option<String>,
    #[command(flatten)]
    pub target: MachineTarget,
}

#[derive(Args)]
pub struct RunArgs {
    /// Machine name (the ASL file's stem, e.g. hr-setup) or `all`.
    #[arg(value_name = "MACHINE|all", required_unless_present = "redrive")]
    pub machine: Option<String>,
    /// Resume this failed local execution from the step that failed, as Step Functions'
    /// RedriveExecution does: same definition, input and name; what succeeded is not run
    /// again (its results are kept in etl.executions).
    #[arg(long, value_name = "EXECUTION", conflicts_with_all = ["machine", "date", "input", "execution_name", "overrides"])]
    pub redrive: Option<String>,
    /// The logical date (YYYY-MM-DD); default: today (UTC), unless --input carries
    /// `scheduled_time` (then the machine derives the date, as on a scheduled start).
    #[arg(long)]
    pub date: Option<LogicalDate>,
    /// Extra execution input, a JSON object merged over {"logical_date": …}; e.g.
    /// '{"scheduled_time": "2026-11-26T00:30:00Z", "cadence": "daily"}' without --date.
    #[arg(long)]
    pub input: Option<String>,
    #[command(flatten)]
    pub execution: LocalExecution,
    /// Execution name (default: <machine>-<date>-local-<timestamp>).
    #[arg(long)]
    pub execution_name: Option<String>,
    /// Override a definition substitution, e.g. --set RetryIntervalSeconds=5 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Args)]
pub struct BackfillArgs {
    /// The pipeline's state machine, e.g. hr.
    pub machine: String,
    #[arg(long)]
    pub from: LogicalDate,
    #[arg(long)]
    pub to: LogicalDate,
    /// Dates run at once (Airflow's max_active_runs); default: the template's.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// none: never-attempted dates; failed: also failed ones; all: every date.
    #[arg(long, default_value = "none")]
    pub reprocess: Reprocess,
    /// Stage parameters for every date, a JSON object (e.g. '{"count": 1000}').
    #[arg(long)]
    pub params: Option<String>,
    /// At most this many dates per execution (default and most: the measured maximum,
    /// plan-dates' MAX_DATES_PER_EXECUTION); a longer range runs as several executions.
    #[arg(long, value_parser = dates_per_execution)]
    pub dates_per_execution: Option<usize>,
    /// Print the dates that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub execution: LocalExecution,
}

/// `--dates-per-execution`: 1 to the measured maximum, as the planner accepts it.
fn dates_per_execution(text: &str) -> Result<usize, String> {
    let most = etl_core::stages::plan::MAX_DATES_PER_EXECUTION;
    match text.parse::<usize>() {
        Ok(n) if (1..=most).contains(&n) => Ok(n),
        _ => Err(format!("must be a number from 1 to {most}")),
    }
}

/// What `etl bench` measures.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchTarget {
    /// Hire and sync employees (rows = employees).
    Hr,
    /// Simulate and index events against the server's own ceiling (rows = events).
    Clickstream,
    /// The whole pipeline against the S3 ceiling (rows = campaign rows; the seed's volume is
    /// 500000).
    Marketing,
    /// Each packaged binary's size and cold-start init time (after `cargo lambda build
    /// --release`).
    LambdaInit,
}

/// As typed on the command line (how `--runs N` starts each run).
impl std::fmt::Display for BenchTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => Ok(()),
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    pub pipeline: BenchTarget,
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// How many times to run: lambda-init's cold starts per function (default 20); a
    /// pipeline's runs back to back, summarised as min / median / max (default 1).
    #[arg(long)]
    pub runs: Option<usize>,
    /// lambda-init: where `cargo lambda build` left the binaries
    /// (default: $CARGO_TARGET_DIR/lambda, else target/lambda).
    #[arg(long)]
    pub lambda_dir: Option<PathBuf>,
    /// lambda-init: the database settings come from a Secrets Manager secret, as when
    /// deployed, so init includes fetching it (from the configured AWS endpoint).
    #[arg(long)]
    pub database_secret: bool,
    /// Also write the runs, the per-phase summary and the workload lines (ours, ceiling,
    /// ratio) to this file as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// hr: leave out the sync to Elasticsearch (osmem indexes ≈ 2k docs/s).
    #[arg(long)]
    pub no_sync: bool,
    /// hr: what sends the hire ceiling's CSV (auto: psql when it is on PATH).
    #[arg(long, value_enum, default_value_t = CeilingClient::Auto)]
    pub ceiling_client: CeilingClient,
}

/// The one pipeline that streams live.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Streamed {
    Clickstream,
}

#[derive(Args)]
pub struct SimulateArgs {
    /// What to stream.
    pub what: Streamed,
    /// Keep streaming; without it, run the clickstream state machine once instead.
    #[arg(long)]
    pub follow: bool,
    /// Events per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// The one pipeline with funnel statistics.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum WithStatistics {
    Clickstream,
}

#[derive(Args)]
pub struct StatsArgs {
    pub what: WithStatistics,
    /// The logical date (default: today, UTC).
    #[arg(long)]
    pub date: Option<LogicalDate>,
}

/// The one pipeline that stores a report.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Reported {
    Marketing,
}

#[derive(Args)]
pub struct ReportArgs {
    pub what: Reported,
    /// The logical date (default: today, UTC).
    #[arg(long)]
    pub date: Option<LogicalDate>,
}

#[derive(Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    #[arg(long)]
    pub pipeline: Option<String>,
    #[arg(long)]
    pub since: Option<LogicalDate>,
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Subcommand)]
pub enum RunsAction {
    /// Give up on a date: record it `skipped`, so the planner stops retrying it (a failed
    /// date is otherwise planned by every run until it succeeds, however old).
    Skip(SkipArgs),
}

#[derive(Args)]
pub struct SkipArgs {
    #[arg(long)]
    pub pipeline: String,
    #[arg(long)]
    pub date: LogicalDate,
    /// Why, kept in the ledger row's error_cause.
    #[arg(long, default_value = "skipped by an operator")]
    pub reason: String,
}

#[derive(Args)]
pub struct InvokeArgs {
    pub function: String,
    #[arg(long)]
    pub event: PathBuf,
    #[command(flatten)]
    pub lambda: LambdaEndpoint,
}

#[derive(Args)]
pub struct RedriveArgs {
    /// The execution: its ARN, or its name with --machine.
    pub execution: String,
    /// The machine the execution belongs to (e.g. hr), when EXECUTION is a name.
    #[arg(long)]
    pub machine: Option<String>,
    /// Wait for the redriven execution to finish; exits non-zero unless it SUCCEEDED.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub target: MachineTarget,
}

#[derive(Args)]
pub struct StartArgs {
    /// Machine name (e.g. hr) or template logical id; found among the deployed machines
    /// as `hr`, `HrStateMachine` or CloudFormation's `HrStateMachine-<suffix>`.
    pub machine: String,
    #[arg(long)]
    pub date: LogicalDate,
    /// Wait for the execution to finish; print its status and output. Exits non-zero
    /// unless it SUCCEEDED.
    #[arg(long)]
    pub wait: bool,
    /// Extra execution input, a JSON object merged over {"logical_date": …}.
    #[arg(long)]
    pub input: Option<String>,
    #[command(flatten)]
    pub target: MachineTarget,
    /// Execution name instead of <machine>-<date> (e.g. to run a date again).
    #[arg(long)]
    pub execution_name: Option<String>,
}

/// How deployed machines are named.
#[derive(Args, Clone)]
pub struct NamePrefix {
    /// Look machines up as <prefix><name> (for machines deployed with prefixed names).
    #[arg(long, env = "ETL_STATE_MACHINE_PREFIX", default_value = "")]
    pub name_prefix: String,
}

/// How `start` finds a deployed machine.
#[derive(Args, Clone)]
pub struct MachineTarget {
    /// Use this machine instead of looking it up by name.
    #[arg(long)]
    pub state_machine_arn: Option<String>,
    #[command(flatten)]
    pub prefix: NamePrefix,
}

/// The schedule group `etl schedules` works in.
#[derive(Args)]
pub struct ScheduleGroup {
    /// The EventBridge Scheduler schedule group.
    #[arg(long, default_value = schedules::DEFAULT_GROUP)]
    pub group: String,
}

#[derive(Subcommand)]
pub enum SchedulesAction {
    /// Create or update the template's schedules (or, with --backfill, one-time schedules).
    Apply(ApplyArgs),
    /// Name, expression, state and target of every schedule in the group.
    List {
        #[command(flatten)]
        group: ScheduleGroup,
    },
    /// Delete the template's schedules from the group (with --all: every schedule in it,
    /// pending backfills too).
    Delete {
        #[command(flatten)]
        group: ScheduleGroup,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub group: ScheduleGroup,
    /// The role EventBridge Scheduler assumes to start the machines (the stack's
    /// SchedulerRole output).
    #[arg(long, env = "ETL_SCHEDULER_ROLE_ARN")]
    pub role_arn: String,
    /// SQS queue for starts that could not be delivered (the stack's
    /// ScheduleDeadLetterQueue ARN); without it schedules have none.
    #[arg(long)]
    pub dead_letter_arn: Option<String>,
    /// ENABLED or DISABLED for every schedule, instead of the template's SchedulesState.
    #[arg(long)]
    pub state: Option<ScheduleState>,
    /// Apply even if enabled schedules in other groups start the same machines.
    #[arg(long)]
    pub allow_duplicates: bool,
    #[command(flatten)]
    pub prefix: NamePrefix,
    /// One-time at() schedules, one per date of --from..--to, for --machine.
    #[arg(long, requires_all = ["machine", "from", "to"])]
    pub backfill: bool,
    #[arg(long, requires = "backfill")]
    pub machine: Option<String>,
    #[arg(long, requires = "backfill")]
    pub from: Option<LogicalDate>,
    #[arg(long, requires = "backfill")]
    pub to: Option<LogicalDate>,
    /// Minutes between two backfill runs (the first starts 5 minutes from now).
    #[arg(long, default_value_t = 10, requires = "backfill")]
    pub spacing_minutes: u32,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only the Lambda functions' binary names, one a line (for scripts).
    #[arg(long)]
    pub functions: bool,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// ASL definition files. One the template declares gets its DefinitionSubstitutions
    /// first, as SAM does on deploy.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Fail on warnings too.
    #[arg(long)]
    pub strict: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["etl"], args].concat())
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runs_lists_or_skips() {
        let Ok(Cli {
            command: Command::Runs(list),
            ..
        }) = parse(&["runs", "--pipeline", "hr"])
        else {
            panic!("etl runs --pipeline hr must parse");
        };
        assert!(list.action.is_none() && list.pipeline.as_deref() == Some("hr"));
        let Ok(Cli {
            command:
                Command::Runs(RunsArgs {
                    action: Some(RunsAction::Skip(skip)),
                    ..
                }),
            ..
        }) = parse(&["runs", "skip", "--pipeline", "hr", "--date", "2026-11-04"])
        else {
            panic!("etl runs skip must parse");
        };
        assert_eq!(
            (
                skip.pipeline.as_str(),
                skip.date.to_string(),
                skip.reason.as_str()
            ),
            ("hr", "2026-11-04".to_string(), "skipped by an operator")
        );
        assert!(parse(&["runs", "skip", "--pipeline", "hr", "--date", "2026-11-31"]).is_err());
    }

    #[test]
    fn bench_targets_are_checked_with_a_suggestion() {
        let Ok(Cli {
            command: Command::Bench(bench),
            ..
        }) = parse(&["bench", "lambda-init", "--runs", "3"])
        else {
            panic!("bench lambda-init should parse");
        };
        assert_eq!(
            (bench.pipeline, bench.runs),
            (BenchTarget::LambdaInit, Some(3))
        );
        assert_eq!(BenchTarget::LambdaInit.to_string(), "lambda-init");
        let err = parse(&["bench", "markting"]).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("'marketing'"), "{err}");
    }

    #[test]
    fn single_pipeline_commands_take_only_their_pipeline() {
        assert!(parse(&["stats", "clickstream", "--date", "2026-11-25"]).is_ok());
        assert!(parse(&["report", "marketing"]).is_ok());
        assert!(parse(&["simulate", "clickstream", "--follow"]).is_ok());
        assert!(parse(&["report", "hr"]).is_err());
        assert!(parse(&["stats", "marketing"]).is_err());
    }

    #[test]
    fn shared_options_keep_their_flags() {
        let Ok(Cli {
            command: Command::Backfill(backfill),
            ..
        }) = parse(&[
            "backfill",
            "hr",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-07",
            "--lambda-endpoint",
            "http://127.0.0.1:9000",
            "--time-scale",
            "0.01",
        ])
        else {
            panic!("backfill should parse");
        };
        assert_eq!(backfill.execution.time_scale, 0.01);
        assert!(backfill
            .execution
            .lambda_limits()
            .is_ok_and(|l| l.memory_check));
        assert!(matches!(
            backfill.execution.checked(),
            Ok((FunctionHost::InvokeApi(url), _)) if url == "http://127.0.0.1:9000"
        ));
        let Ok(Cli {
            command: Command::Run(run),
            ..
        }) = parse(&["run", "hr", "--time-scale", "11"])
        else {
            panic!("run should parse");
        };
        let refused = run.execution.checked().err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("--time-scale must be between 0 and 10")
        );
        assert!(parse(&["schedules", "list", "--group", "g"]).is_ok());
        let Ok(Cli {
            command: Command::Run(run),
            ..
        }) = parse(&[
            "run",
            "hr",
            "--inject-fault",
            "Hire:1:Lambda.ServiceException",
            "--inject-fault",
            "Sync:2:Lambda.TooManyRequestsException",
            "--timeout-scale",
            "0.5",
            "--no-memory-check",
        ])
        else {
            panic!("run with faults should parse");
        };
        assert_eq!(run.execution.faults.len(), 2);
        assert_eq!(run.execution.faults[1].nth, 2);
        let limits = run.execution.lambda_limits().ok();
        assert_eq!(
            limits.map(|l| (l.timeout_scale, l.memory_check)),
            Some((0.5, false))
        );
        assert!(parse(&["run", "hr", "--inject-fault", "Hire"]).is_err());
        assert!(parse(&["start", "hr", "--date", "2026-11-25", "--name-prefix", "p"]).is_ok());
    }

    #[test]
    fn list_takes_an_optional_functions_flag() {
        assert!(matches!(
            parse(&["list"]),
            Ok(Cli {
                command: Command::List(ListArgs { functions: false }),
                ..
            })
        ));
        assert!(matches!(
            parse(&["list", "--functions"]),
            Ok(Cli {
                command: Command::List(ListArgs { functions: true }),
                ..
            })
        ));
        assert!(parse(&["validate"]).is_err(), "validate needs a file");
        let Ok(Cli {
            command: Command::Validate(validate),
            ..
        }) = parse(&["validate", "a.json", "b.json", "--strict"])
        else {
            panic!("validate should parse");
        };
        assert_eq!(validate.files.len(), 2);
        assert!(validate.strict);
    }
}
