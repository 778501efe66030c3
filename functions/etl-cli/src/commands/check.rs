//! `etl check`: does every service answer with the current configuration?

use std::fmt;
use std::process::ExitCode;

use etl_core::{probe, Service};

use super::{context, exit_code};

const CHECKED: [Service; 5] = [
    Service::Postgres,
    Service::S3,
    Service::Elasticsearch,
    Service::StepFunctions,
    Service::Scheduler,
];

pub async fn check() -> anyhow::Result<ExitCode> {
    let ctx = context().await?;
    let mut all_up = true;
    for service in CHECKED {
        let answer = probe::check(&ctx, service)
            .await
            .map_err(|err| err.to_string());
        all_up &= answer.is_ok();
        println!("{}", ServiceStatus { service, answer });
    }
    Ok(exit_code(all_up))
}

/// One service's line: up with what it said, or DOWN with why.
struct ServiceStatus {
    service: Service,
    answer: Result<String, String>,
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, detail) = match &self.answer {
            Ok(detail) => ("up", detail),
            Err(err) => ("DOWN", err),
        };
        write!(f, "  {:<22} {state:<6} {detail}", self.service.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_line_up() {
        let up = ServiceStatus {
            service: Service::Postgres,
            answer: Ok("PostgreSQL 16.4".into()),
        };
        let down = ServiceStatus {
            service: Service::S3,
            answer: Err("connection refused".into()),
        };
        assert_eq!(
            format!("{up}\n{down}"),
            "  PostgreSQL             up     PostgreSQL 16.4\n  \
             S3                     DOWN   connection refused"
        );
    }
}
