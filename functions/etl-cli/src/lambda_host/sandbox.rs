//! One execution environment: a function's process and its Runtime API. It runs one
//! invocation at a time and is reused while it stays healthy, as Lambda reuses a warm
//! environment; a timeout, a crash or too much memory ends it.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::http::serve;
use super::runtime_api::{Invocation, Reply, RuntimeApi};

/// Lambda's init phase limit for on-demand functions.
const INIT_BUDGET: Duration = Duration::from_secs(10);

/// How an invocation ended.
pub enum Outcome {
    /// The runtime answered; the sandbox can take the next event.
    Replied(Reply),
    /// Lambda's own error document; the sandbox is gone.
    Ended(Bytes),
}

/// What a sandbox needs to know about its function.
pub struct FunctionSpec<'a> {
    pub name: &'a str,
    pub binary: &'a Path,
    pub memory_mb: u64,
    pub env: &'a [(String, String)],
}

pub struct Sandbox {
    child: Child,
    api: Arc<RuntimeApi>,
    events: mpsc::Sender<Invocation>,
    server: JoinHandle<()>,
    initialized: bool,
    memory_mb: u64,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The child is killed on drop (`kill_on_drop`); its Runtime API goes with it.
        self.server.abort();
    }
}

impl Sandbox {
    pub async fn start(function: &FunctionSpec<'_>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (api, events) = RuntimeApi::new();
        let api = Arc::new(api);
        let served = Arc::clone(&api);
        let server = tokio::spawn(serve(listener, move |request| {
            let api = Arc::clone(&served);
            async move { api.handle(request).await }
        }));
        let task_root = function.binary.parent().unwrap_or(Path::new("/"));
        // Only the function's settings and what Lambda sets: nothing of this shell leaks in.
        let child = Command::new(function.binary)
            .current_dir(std::env::temp_dir())
            .env_clear()
            .envs(function.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                function.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", function.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            // template.yaml's LoggingConfig: LogFormat JSON.
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("LAMBDA_TASK_ROOT", task_root)
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self {
            child,
            api,
            events,
            server,
            initialized: false,
            memory_mb: function.memory_mb,
        })
    }

    /// Runs one invocation within `timeout`. A cold sandbox first gets Lambda's 10 s init
    /// budget; an init that takes longer is, in Lambda, run again inside the invocation and
    /// counted against `timeout`, so here the invocation must then end within 10 s + `timeout`
    /// of the start (a little more lenient than Lambda, which starts that init over).
    pub async fn invoke(&mut self, invocation: Invocation, timeout: Duration) -> Outcome {
        let request_id = invocation.request_id.clone();
        let started = Instant::now();
        let mut deadline = started + timeout;
        let mut init_duration = None;
        if !self.initialized {
            let mut initialized = self.api.initialized();
            let init_ends = started + INIT_BUDGET + timeout;
            tokio::select! {
                asked = initialized.wait_for(|asked| *asked) => {
                    if asked.is_err() {
                        return Outcome::Ended(exit_error(&request_id, "the Runtime API stopped"));
                    }
                }
                status = self.child.wait() => return Outcome::Ended(self.exited(&request_id, status)),
                () = tokio::time::sleep_until(init_ends) => return Outcome::Ended(timed_out(&request_id, timeout)),
            }
            self.initialized = true;
            let init = started.elapsed();
            init_duration = Some(init);
            deadline = if init <= INIT_BUDGET {
                Instant::now() + timeout
            } else {
                init_ends
            };
        }
        let reply = self.api.expect_reply(&request_id);
        let invoked = Instant::now();
        if self.events.send(invocation).await.is_err() {
            return Outcome::Ended(exit_error(&request_id, "the Runtime API stopped"));
        }
        let outcome = tokio::select! {
            reply = reply => match reply {
                Ok(reply) => Outcome::Replied(reply),
                Err(_) => Outcome::Ended(exit_error(&request_id, "the Runtime API stopped")),
            },
            status = self.child.wait() => Outcome::Ended(self.exited(&request_id, status)),
            () = tokio::time::sleep_until(deadline) => Outcome::Ended(timed_out(&request_id, timeout)),
        };
        let peak_mib = self
            .child
            .id()
            .and_then(|pid| crate::bench::peak_rss_mib_in(&format!("/proc/{pid}/status")));
        let report = Report {
            request_id: &request_id,
            duration: invoked.elapsed(),
            memory_mb: self.memory_mb,
            peak_mib,
            init_duration,
            replied: matches!(outcome, Outcome::Replied(_)),
        };
        eprintln!("{}", report.json_line());
        match (outcome, peak_mib) {
            // Lambda stops a function at its memory size; the peak so far says it got there.
            (Outcome::Replied(_), Some(peak)) if peak > self.memory_mb as f64 => {
                Outcome::Ended(out_of_memory(&request_id))
            }
            (outcome, _) => outcome,
        }
    }

    fn exited(&self, request_id: &str, status: std::io::Result<ExitStatus>) -> Bytes {
        // A runtime that reported its init failure before exiting: Lambda passes that on.
        if !self.initialized {
            if let Some(reported) = self.api.init_error() {
                return reported;
            }
        }
        let how = match status {
            Ok(status) => describe(status),
            Err(err) => format!("unknown ({err})"),
        };
        exit_error(request_id, &how)
    }
}

/// What Lambda logs after every invocation (`platform.report`, in the JSON log format the
/// template sets): duration, billed duration, memory size and the peak the process reached,
/// so a local run shows how close a function came to its `MemorySize` and `Timeout`.
struct Report<'a> {
    request_id: &'a str,
    duration: Duration,
    memory_mb: u64,
    peak_mib: Option<f64>,
    init_duration: Option<Duration>,
    replied: bool,
}

impl Report<'_> {
    fn json_line(&self) -> String {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut metrics = serde_json::json!({
            "durationMs": ms(self.duration),
            // Lambda bills whole milliseconds, rounded up.
            "billedDurationMs": self.duration.as_nanos().div_ceil(1_000_000),
            "memorySizeMB": self.memory_mb,
            // Lambda's "MB" of memory are MiB (a 128 MB function has 128 MiB).
            "maxMemoryUsedMB": self.peak_mib.map(|mib| mib.ceil() as u64),
        });
        if let Some(init) = self.init_duration {
            metrics["initDurationMs"] = ms(init).into();
        }
        serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "type": "platform.report",
            "record": {
                "requestId": self.request_id,
                "metrics": metrics,
                "status": if self.replied { "success" } else { "error" },
            },
        })
        .to_string()
    }
}

/// As Go's `ExitStatus` prints it in Lambda's messages: `exit status 1`, `signal: killed`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".to_string(),
        (None, Some(libc::SIGABRT)) => "signal: aborted".to_string(),
        (None, Some(libc::SIGSEGV)) => "signal: segmentation fault".to_string(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => "unknown".to_string(),
    }
}

fn error_document(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

fn exit_error(request_id: &str, how: &str) -> Bytes {
    error_document(
        "Runtime.ExitError",
        &format!("RequestId: {request_id} Error: Runtime exited with error: {how}"),
    )
}

fn timed_out(request_id: &str, timeout: Duration) -> Bytes {
    error_document(
        "Sandbox.Timedout",
        &format!(
            "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
            timeout.as_secs_f64()
        ),
    )
}

fn out_of_memory(request_id: &str) -> Bytes {
    error_document(
        "Runtime.OutOfMemory",
        &format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_as_lambda_prints_them() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGSEGV)),
            "signal: segmentation fault"
        );
    }

    #[test]
    fn the_report_line_has_lambdas_platform_report_shape() {
        let report = Report {
            request_id: "r-2",
            duration: Duration::from_micros(1_234_567),
            memory_mb: 512,
            peak_mib: Some(99.2),
            init_duration: Some(Duration::from_micros(4_321)),
            replied: true,
        };
        let line: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
        assert_eq!(line["type"], "platform.report");
        assert_eq!(line["record"]["requestId"], "r-2");
        assert_eq!(line["record"]["status"], "success");
        let metrics = &line["record"]["metrics"];
        assert_eq!(metrics["durationMs"], 1234.567);
        assert_eq!(metrics["billedDurationMs"], 1235);
        assert_eq!(metrics["memorySizeMB"], 512);
        assert_eq!(metrics["maxMemoryUsedMB"], 100);
        assert_eq!(metrics["initDurationMs"], 4.321);
    }

    #[test]
    fn a_timeout_names_the_configured_seconds() {
        let doc: serde_json::Value =
            serde_json::from_slice(&timed_out("r-1", Duration::from_secs(300))).unwrap();
        assert_eq!(doc["errorType"], "Sandbox.Timedout");
        assert_eq!(
            doc["errorMessage"],
            "RequestId: r-1 Error: Task timed out after 300.00 seconds"
        );
    }
}
