//! What one stage invocation measured, and the EMF document that reports it: the stage's
//! figures under dimensions (Pipeline, Stage), and a pipeline run's outcome under (Pipeline)
//! alone, which the "no successful run" alarms watch.

use super::emf::{Directive, Document, EmfError, Unit, PIPELINE, STAGE};

/// Metric names, as template.yaml's alarms and dashboard name them.
pub mod names {
    pub const ROWS_IN: &str = "RowsIn";
    pub const ROWS_OUT: &str = "RowsOut";
    /// Rows or documents a stage refused: rejected HR rows, Elasticsearch documents not
    /// indexed, quarantined marketing rows. Alarmed on: a run with rejects is not a clean run.
    pub const ROWS_REJECTED: &str = "RowsRejected";
    pub const BYTES: &str = "Bytes";
    pub const DURATION: &str = "Duration";
    /// The ledger's attempt number for the (pipeline, stage, date): above 1 is a re-run.
    pub const ATTEMPT: &str = "Attempt";
    /// Requests the stage retried internally (bulk indexing).
    pub const RETRIES: &str = "Retries";
    /// 1 when the invocation failed, else 0.
    pub const FAILURES: &str = "Failures";
    /// 1 per run `record-run` recorded as succeeded / failed (dimension Pipeline only).
    pub const RUN_SUCCEEDED: &str = "RunSucceeded";
    pub const RUN_FAILED: &str = "RunFailed";

    /// Every metric the stages emit under (Pipeline, Stage).
    pub const STAGE_METRICS: &[&str] = &[
        ROWS_IN,
        ROWS_OUT,
        ROWS_REJECTED,
        BYTES,
        DURATION,
        ATTEMPT,
        RETRIES,
        FAILURES,
    ];
    /// Every metric emitted under (Pipeline) alone.
    pub const RUN_METRICS: &[&str] = &[RUN_SUCCEEDED, RUN_FAILED];
}

/// The figures a stage reports about its work (what `ledger::tracked` knows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageFigures {
    pub pipeline: String,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub rows_rejected: Option<i64>,
    pub bytes: Option<u64>,
    pub retries: Option<u64>,
    pub attempt: Option<i32>,
}

/// Everything recorded during one invocation. A stage normally records its figures once;
/// should it record several times, counts add up and the highest attempt wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub figures: Option<StageFigures>,
    /// `Some(true)` when a pipeline run was recorded as succeeded, `Some(false)` as failed.
    pub run: Option<(String, bool)>,
}

fn add<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

impl Invocation {
    pub fn add_stage(&mut self, figures: StageFigures) {
        self.figures = Some(match self.figures.take() {
            None => figures,
            Some(seen) => StageFigures {
                pipeline: seen.pipeline,
                rows_in: add(seen.rows_in, figures.rows_in),
                rows_out: add(seen.rows_out, figures.rows_out),
                rows_rejected: add(seen.rows_rejected, figures.rows_rejected),
                bytes: add(seen.bytes, figures.bytes),
                retries: add(seen.retries, figures.retries),
                attempt: seen.attempt.max(figures.attempt),
            },
        });
    }

    pub fn set_run(&mut self, pipeline: &str, succeeded: bool) {
        self.run = Some((pipeline.to_string(), succeeded));
    }

    /// The pipeline the invocation worked for: what the stage recorded, else `fallback`.
    pub fn pipeline<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.figures
            .as_ref()
            .map(|f| f.pipeline.as_str())
            .or_else(|| self.run.as_ref().map(|(p, _)| p.as_str()))
            .filter(|p| !p.is_empty())
            .unwrap_or(fallback)
    }

    /// The EMF document for this invocation of `stage`, which took `duration_ms` and failed
    /// or not.
    pub fn document(
        &self,
        stage: &str,
        fallback_pipeline: &str,
        duration_ms: u64,
        failed: bool,
        timestamp_ms: i64,
    ) -> Document {
        let figures = self.figures.clone().unwrap_or_default();
        let as_f64 = |v: Option<i64>| v.map(|v| v as f64);
        let stage_metrics = Directive::new(&[PIPELINE, STAGE])
            .metric(names::DURATION, Unit::Milliseconds, duration_ms as f64)
            .metric(names::FAILURES, Unit::Count, if failed { 1.0 } else { 0.0 })
            .metric_opt(names::ROWS_IN, Unit::Count, as_f64(figures.rows_in))
            .metric_opt(names::ROWS_OUT, Unit::Count, as_f64(figures.rows_out))
            .metric_opt(
                names::ROWS_REJECTED,
                Unit::Count,
                as_f64(figures.rows_rejected),
            )
            .metric_opt(names::BYTES, Unit::Bytes, figures.bytes.map(|b| b as f64))
            .metric_opt(
                names::RETRIES,
                Unit::Count,
                figures.retries.map(|r| r as f64),
            )
            .metric_opt(names::ATTEMPT, Unit::Count, figures.attempt.map(f64::from));
        let run_metrics = match self.run {
            Some((_, succeeded)) => Directive::new(&[PIPELINE])
                .metric(
                    names::RUN_SUCCEEDED,
                    Unit::Count,
                    f64::from(u8::from(succeeded)),
                )
                .metric(
                    names::RUN_FAILED,
                    Unit::Count,
                    f64::from(u8::from(!succeeded)),
                ),
            None => Directive::new(&[PIPELINE]),
        };
        Document::new(timestamp_ms)
            .dimension(PIPELINE, self.pipeline(fallback_pipeline))
            .dimension(STAGE, stage)
            .directive(stage_metrics)
            .directive(run_metrics)
    }

    /// As [`Self::document`], as the single JSON line to write to stdout.
    pub fn emf_line(
        &self,
        stage: &str,
        fallback_pipeline: &str,
        duration_ms: u64,
        failed: bool,
        timestamp_ms: i64,
    ) -> Result<String, EmfError> {
        self.document(stage, fallback_pipeline, duration_ms, failed, timestamp_ms)
            .to_line()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::emf::{validate, NAMESPACE};
    use super::*;

    fn sync_figures() -> StageFigures {
        StageFigures {
            pipeline: "hr".into(),
            rows_in: Some(100),
            rows_out: Some(98),
            rows_rejected: Some(2),
            bytes: None,
            retries: Some(3),
            attempt: Some(1),
        }
    }

    fn parse(line: &str) -> Value {
        let doc: Value = serde_json::from_str(line).unwrap();
        validate(&doc).unwrap();
        doc
    }

    #[test]
    fn a_stage_reports_its_figures_under_pipeline_and_stage() {
        let mut invocation = Invocation::default();
        invocation.add_stage(sync_figures());
        let doc = parse(
            &invocation
                .emf_line("hr-sync", "x", 1500, false, 42)
                .unwrap(),
        );
        assert_eq!(doc["Pipeline"], "hr");
        assert_eq!(doc["Stage"], "hr-sync");
        assert_eq!(doc["RowsIn"], 100);
        assert_eq!(doc["RowsOut"], 98);
        assert_eq!(doc["RowsRejected"], 2);
        assert_eq!(doc["Retries"], 3);
        assert_eq!(doc["Attempt"], 1);
        assert_eq!(doc["Duration"], 1500);
        assert_eq!(doc["Failures"], 0);
        assert!(doc.get("Bytes").is_none());
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1, "no run outcome, no second directive");
        assert_eq!(directives[0]["Namespace"], NAMESPACE);
        assert_eq!(directives[0]["Dimensions"], json!([["Pipeline", "Stage"]]));
    }

    #[test]
    fn record_run_reports_the_outcome_under_pipeline_alone() {
        let mut invocation = Invocation::default();
        invocation.set_run("marketing", true);
        let doc = parse(
            &invocation
                .emf_line("record-run", "-", 20, false, 42)
                .unwrap(),
        );
        assert_eq!(doc["Pipeline"], "marketing");
        assert_eq!(doc["RunSucceeded"], 1);
        assert_eq!(doc["RunFailed"], 0);
        let run = &doc["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(run["Dimensions"], json!([["Pipeline"]]));
        let declared: Vec<&str> = run["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(declared, names::RUN_METRICS);
    }

    #[test]
    fn a_failed_invocation_without_figures_still_reports_duration_and_failure() {
        let doc = parse(
            &Invocation::default()
                .emf_line("plan-dates", "hr", 7, true, 42)
                .unwrap(),
        );
        assert_eq!(doc["Pipeline"], "hr", "the fallback pipeline");
        assert_eq!(doc["Failures"], 1);
        assert_eq!(doc["Duration"], 7);
        assert!(doc.get("RowsIn").is_none());
    }

    #[test]
    fn figures_recorded_twice_add_up() {
        let mut invocation = Invocation::default();
        invocation.add_stage(sync_figures());
        invocation.add_stage(StageFigures {
            attempt: Some(2),
            bytes: Some(10),
            ..sync_figures()
        });
        let figures = invocation.figures.unwrap();
        assert_eq!(figures.rows_in, Some(200));
        assert_eq!(figures.rows_rejected, Some(4));
        assert_eq!(figures.bytes, Some(10));
        assert_eq!(figures.attempt, Some(2));
    }

    #[test]
    fn every_declared_metric_is_a_known_name() {
        let mut invocation = Invocation::default();
        invocation.add_stage(StageFigures {
            bytes: Some(1),
            ..sync_figures()
        });
        invocation.set_run("hr", false);
        let doc = invocation
            .document("hr-sync", "-", 1, false, 0)
            .to_json()
            .unwrap();
        let mut declared = Vec::new();
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for metric in directive["Metrics"].as_array().unwrap() {
                declared.push(metric["Name"].as_str().unwrap().to_string());
            }
        }
        let mut known: Vec<String> = names::STAGE_METRICS
            .iter()
            .chain(names::RUN_METRICS)
            .map(|n| (*n).to_string())
            .collect();
        declared.sort();
        known.sort();
        assert_eq!(
            declared, known,
            "a full invocation declares every metric once"
        );
    }
}
