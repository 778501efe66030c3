//! `etl bench lambda-init`: the cold start of each packaged Lambda binary, measured the way
//! Lambda bounds its init phase: from starting the process to the runtime's first
//! `GET /runtime/invocation/next`. Each run is a new process against a minimal Runtime API
//! endpoint that answers nothing; the process is killed as soon as it asks for work.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etl_core::config::DATABASE_SECRET_VAR;
use etl_core::Context;
use serde::Serialize;

use crate::bench::mib_or_unknown;
use crate::stats::percentile;

/// How long a binary may take to ask for its first event before the run counts as failed.
const INIT_DEADLINE: Duration = Duration::from_secs(10);
/// How often the wait for the first request checks whether the process died instead.
const EXIT_CHECK: Duration = Duration::from_millis(5);
/// The Runtime API path that ends Lambda's init phase.
const NEXT_INVOCATION: &str = "/2018-06-01/runtime/invocation/next";

#[derive(Debug, thiserror::Error)]
pub enum InitBenchError {
    #[error("no packaged binary at {0} (run `cargo lambda build --release` first)")]
    MissingBinary(PathBuf),
    #[error("{function}: {source}")]
    Io {
        function: String,
        source: std::io::Error,
    },
    #[error("{function} did not ask for an event within {INIT_DEADLINE:?}")]
    Timeout { function: String },
    #[error("{function} exited during init ({status}): {stderr}")]
    ExitedDuringInit {
        function: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{function} sent {request:?} where the runtime's first request was expected")]
    UnexpectedRequest { function: String, request: String },
    #[error("create the benchmark's database secret: {0}")]
    Secret(String),
}

/// One function's figures over all runs.
#[derive(Debug, Serialize)]
pub struct InitFigure {
    pub function: String,
    /// Size of the `bootstrap` binary, MiB.
    pub binary_mib: f64,
    pub runs: usize,
    pub init_ms_median: f64,
    pub init_ms_p90: f64,
    pub init_ms_max: f64,
    /// Peak resident memory when the runtime asked for its first event, MiB.
    pub rss_mib_at_init: Option<f64>,
}

/// One line of the table.
impl std::fmt::Display for InitFigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<22} {:>5.1} MiB {:>5} {:>8.1} ms {:>5.1} ms {:>5.1} ms {:>12}",
            self.function,
            self.binary_mib,
            self.runs,
            self.init_ms_median,
            self.init_ms_p90,
            self.init_ms_max,
            mib_or_unknown(self.rss_mib_at_init, 1)
        )
    }
}

/// The figures' table: a header, then a line per function.
pub struct InitTable<'a>(pub &'a [InitFigure]);

impl std::fmt::Display for InitTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<22} {:>9} {:>5} {:>11} {:>8} {:>8} {:>12}",
            "function", "size", "runs", "init median", "p90", "max", "RSS at init"
        )?;
        for figure in self.0 {
            write!(f, "\n{figure}")?;
        }
        Ok(())
    }
}

/// Where `cargo lambda build` leaves the binaries: `$CARGO_TARGET_DIR/lambda`, else
/// `target/lambda`.
pub fn default_lambda_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("lambda")
}

/// A Secrets Manager secret holding the database URL for one benchmark, so the functions'
/// init fetches it as when deployed. Deleted by [`Self::delete`].
pub struct DatabaseSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl DatabaseSecret {
    pub async fn create(ctx: &Context, database_url: &str) -> Result<Self, InitBenchError> {
        let client = aws_sdk_secretsmanager::Client::new(ctx.aws_config());
        let created = client
            .create_secret()
            .name(format!("etl-bench/lambda-init-{}", std::process::id()))
            // The shape the README asks operators to store: `{"url": …}`.
            .secret_string(serde_json::json!({ "url": database_url }).to_string())
            .send()
            .await
            .map_err(|e| {
                InitBenchError::Secret(
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        let arn = created
            .arn()
            .ok_or_else(|| InitBenchError::Secret("the new secret has no ARN".into()))?
            .to_string();
        Ok(Self { client, arn })
    }

    /// Function settings that name this secret instead of carrying the URL.
    pub fn in_place_of_the_url(&self, settings: &mut Vec<(String, String)>) {
        settings.retain(|(key, _)| key != "DATABASE_URL");
        settings.push((DATABASE_SECRET_VAR.to_string(), self.arn.clone()));
    }

    /// Best effort: a secret left behind costs nothing but clutter.
    pub async fn delete(self) {
        let _ = self
            .client
            .delete_secret()
            .secret_id(self.arn)
            .force_delete_without_recovery(true)
            .send()
            .await;
    }
}

/// Measures every function in `functions`, `runs` cold starts each, from the binaries
/// `cargo lambda build` leaves at `<lambda_dir>/<function>/bootstrap`. Each process gets
/// exactly `env` plus the variables Lambda sets, nothing of this shell's. Blocking: it
/// waits on child processes.
pub fn measure(
    lambda_dir: &Path,
    functions: &[&str],
    runs: usize,
    env: &[(String, String)],
) -> Result<Vec<InitFigure>, InitBenchError> {
    let mut figures = Vec::with_capacity(functions.len());
    for function in functions {
        let binary = lambda_dir.join(function).join("bootstrap");
        let size = std::fs::metadata(&binary)
            .map_err(|_| InitBenchError::MissingBinary(binary.clone()))?
            .len();
        let mut millis = Vec::with_capacity(runs);
        let mut rss: Option<f64> = None;
        for _ in 0..runs.max(1) {
            let run = cold_start(function, &binary, env)?;
            millis.push(run.init.as_secs_f64() * 1e3);
            rss = match (rss, run.rss_mib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        millis.sort_by(f64::total_cmp);
        figures.push(InitFigure {
            function: function.to_string(),
            binary_mib: size as f64 / (1024.0 * 1024.0),
            runs: millis.len(),
            init_ms_median: percentile(&millis, 0.5),
            init_ms_p90: percentile(&millis, 0.9),
            init_ms_max: millis.last().copied().unwrap_or_default(),
            rss_mib_at_init: rss,
        });
    }
    Ok(figures)
}

struct ColdStart {
    init: Duration,
    rss_mib: Option<f64>,
}

/// How a cold start's init phase ended.
enum InitEnd {
    /// The runtime sent its first request (`head`, read when it arrived).
    Asked {
        at: Instant,
        head: Vec<u8>,
    },
    Exited(std::process::ExitStatus),
    TimedOut,
}

fn cold_start(
    function: &str,
    binary: &Path,
    env: &[(String, String)],
) -> Result<ColdStart, InitBenchError> {
    let io = |source| InitBenchError::Io {
        function: function.to_string(),
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let api = listener.local_addr().map_err(io)?;
    let first_request = first_request_on(listener);
    let started = Instant::now();
    let mut child = spawn_as_lambda(function, binary, env, api).map_err(io)?;
    let end = wait_for_init(&first_request, &mut child, started);
    let rss_mib = crate::bench::peak_rss_mib_in(&format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let (asked_at, head) = match end.map_err(io)? {
        InitEnd::Asked { at, head } => (at, head),
        InitEnd::Exited(status) => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(InitBenchError::ExitedDuringInit {
                function: function.to_string(),
                status,
                stderr: stderr.trim().chars().take(2000).collect(),
            });
        }
        InitEnd::TimedOut => {
            return Err(InitBenchError::Timeout {
                function: function.to_string(),
            })
        }
    };
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if !request_line.starts_with(&format!("GET {NEXT_INVOCATION}")) {
        return Err(InitBenchError::UnexpectedRequest {
            function: function.to_string(),
            request: request_line,
        });
    }
    Ok(ColdStart {
        init: asked_at - started,
        rss_mib,
    })
}

/// The first request's head, stamped on a thread of its own the moment it is read.
fn first_request_on(listener: TcpListener) -> mpsc::Receiver<std::io::Result<(Instant, Vec<u8>)>> {
    let (arrived, first_request) = mpsc::channel();
    std::thread::spawn(move || {
        let request = listener.accept().and_then(|(mut stream, _)| {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0_u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            Ok((Instant::now(), head))
        });
        let _ = arrived.send(request);
    });
    first_request
}

/// Starts `binary` as Lambda would, its Runtime API at `api`.
fn spawn_as_lambda(
    function: &str,
    binary: &Path,
    env: &[(String, String)],
    api: SocketAddr,
) -> std::io::Result<Child> {
    // Like Lambda, the process sees only its environment, and starts in a directory without
    // the repository's `.services/env`.
    Command::new(binary)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
}

/// Waits for the first request, the process's death or the deadline, whichever comes first.
fn wait_for_init(
    first_request: &mpsc::Receiver<std::io::Result<(Instant, Vec<u8>)>>,
    child: &mut Child,
    started: Instant,
) -> std::io::Result<InitEnd> {
    loop {
        match first_request.recv_timeout(EXIT_CHECK) {
            Ok(request) => {
                let (at, head) = request?;
                return Ok(InitEnd::Asked { at, head });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(InitEnd::TimedOut),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child.try_wait()? {
            return Ok(InitEnd::Exited(status));
        }
        if started.elapsed() > INIT_DEADLINE {
            return Ok(InitEnd::TimedOut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_header_and_a_line_per_function() {
        let figures = [
            InitFigure {
                function: "hr-schema".into(),
                binary_mib: 12.34,
                runs: 20,
                init_ms_median: 8.04,
                init_ms_p90: 9.5,
                init_ms_max: 11.0,
                rss_mib_at_init: Some(6.3),
            },
            InitFigure {
                function: "marketing-unify".into(),
                binary_mib: 40.0,
                runs: 1,
                init_ms_median: 30.0,
                init_ms_p90: 30.0,
                init_ms_max: 30.0,
                rss_mib_at_init: None,
            },
        ];
        assert_eq!(
            InitTable(&figures).to_string(),
            "function                    size  runs init median      p90      max  RSS at init\n\
             hr-schema               12.3 MiB    20      8.0 ms   9.5 ms  11.0 ms      6.3 MiB\n\
             marketing-unify         40.0 MiB     1     30.0 ms  30.0 ms  30.0 ms            ?"
        );
    }
}
