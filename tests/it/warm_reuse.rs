//! A warm Lambda container runs many invocations in one process and keeps `/tmp` between
//! them. A backfill through one container must not fill its ephemeral storage: unify keeps
//! only the newest few dates' local copies.

use etl_core::LogicalDate;
use integration_tests::marketing::{generate_marketing_day, marketing_lake};
use integration_tests::TestEnv;
use marketing::stages::plan::PlanEvent;
use marketing::stages::unify::{self, UnifyEvent};

const DATES: [&str; 5] = [
    "2026-11-01",
    "2026-11-02",
    "2026-11-03",
    "2026-11-04",
    "2026-11-05",
];

async fn generate_day(env: &TestEnv, date: LogicalDate) {
    let event = PlanEvent {
        logical_date: date,
        rows: Some(2_000),
        partition_rows: Some(1_000),
        partitions_per_task: Some(2),
        seed: Some(3),
        execution: None,
    };
    generate_marketing_day(env, event).await;
}

fn local_dates(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("marketing"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_backfill_through_one_process_keeps_tmp_bounded() {
    let env = marketing_lake().await;
    let root = std::env::temp_dir().join(format!("warm-reuse-{}", env.ctx.config.bucket));
    for day in DATES {
        let date: LogicalDate = day.parse().unwrap();
        generate_day(&env, date).await;
        let unified = unify::run(
            &env.ctx,
            UnifyEvent {
                logical_date: date,
                execution: None,
                local_dir: Some(root.clone()),
            },
        )
        .await
        .unwrap();
        assert_eq!(unified.rows_out, 2_000, "{day}");
        assert!(unified.local_csv.is_file(), "{day}: no local copy");
    }
    assert_eq!(
        local_dates(&root),
        ["dt=2026-11-03", "dt=2026-11-04", "dt=2026-11-05"],
        "only the newest three dates stay on local disk"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
