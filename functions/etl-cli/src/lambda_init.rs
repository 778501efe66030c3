//! `etl bench lambda-init`: the cold start of each packaged Lambda binary, measured the way
//! Lambda bounds its init phase: from starting the process to the runtime's first
//! `GET /runtime/invocation/next`. Each run is a new process against a minimal Runtime API
//! endpoint that answers nothing; the process is killed as soon as it asks for work.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

impl InitFigure {
    /// The header of the table whose lines are `InitFigure`s.
    pub fn table_header() -> String {
        format!(
            "{:<22} {:>9} {:>5} {:>11} {:>8} {:>8} {:>12}",
            "function", "size", "runs", "init median", "p90", "max", "RSS at init"
        )
    }
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
    // The first request's arrival is stamped on its own thread, the moment its head is read.
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

    // Like Lambda, the process sees only its environment, and starts in a directory without
    // the repository's `.services/env`.
    let started = Instant::now();
    let mut child = Command::new(binary)
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
        .map_err(io)?;

    let outcome = loop {
        match first_request.recv_timeout(EXIT_CHECK) {
            Ok(request) => break Ok(request.map_err(io)?),
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(None),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child.try_wait().map_err(io)? {
            break Err(Some(status));
        }
        if started.elapsed() > INIT_DEADLINE {
            break Err(None);
        }
    };
    let rss_mib = crate::bench::peak_rss_mib_in(&format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let (asked_at, head) = match outcome {
        Ok(request) => request,
        Err(Some(status)) => {
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
        Err(None) => {
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
