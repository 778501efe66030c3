//! Collects what a stage records during one invocation. Stages record through plain
//! functions (`ledger::tracked`, `record-run`), and only a caller that asked for it (the
//! Lambda wrapper, with [`measure`]) gets the figures: a task-local per invocation keeps
//! concurrent in-process stages (`etl run`) apart, and outside [`measure`] recording is a
//! no-op, so the CLI writes no metric lines.

use std::cell::RefCell;
use std::future::Future;

use super::invocation::{Invocation, StageFigures};

tokio::task_local! {
    static CURRENT: RefCell<Invocation>;
}

/// Runs `work`, returning its output and what it recorded.
pub async fn measure<F: Future>(work: F) -> (F::Output, Invocation) {
    CURRENT
        .scope(RefCell::new(Invocation::default()), async move {
            let output = work.await;
            let recorded = CURRENT.with(RefCell::take);
            (output, recorded)
        })
        .await
}

/// Records a stage's figures for the invocation being measured, if any.
pub fn record_stage(figures: StageFigures) {
    // Outside `measure` (the CLI, tests, spawned tasks) there is nothing to record into.
    let _ = CURRENT.try_with(|current| current.borrow_mut().add_stage(figures));
}

/// Records a pipeline run's outcome for the invocation being measured, if any.
pub fn record_run(pipeline: &str, succeeded: bool) {
    let _ = CURRENT.try_with(|current| current.borrow_mut().set_run(pipeline, succeeded));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn figures_recorded_inside_measure_are_returned() {
        let ((), invocation) = measure(async {
            record_stage(StageFigures {
                pipeline: "hr".into(),
                rows_out: Some(5),
                ..StageFigures::default()
            });
            record_run("hr", true);
        })
        .await;
        assert_eq!(invocation.figures.unwrap().rows_out, Some(5));
        assert_eq!(invocation.run, Some(("hr".to_string(), true)));
    }

    #[tokio::test]
    async fn recording_outside_measure_is_a_no_op_and_invocations_stay_apart() {
        record_run("hr", true);
        let (a, b) = tokio::join!(
            measure(async { record_run("a", true) }),
            measure(async { record_run("b", false) }),
        );
        assert_eq!(a.1.run, Some(("a".to_string(), true)));
        assert_eq!(b.1.run, Some(("b".to_string(), false)));
    }
}
