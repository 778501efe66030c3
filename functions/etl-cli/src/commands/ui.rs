//! `etl ui`: the viewer (see `etl_cli::ui`) of the local runs, or with `--deployed` of the
//! deployed machines' runs; with `--bench-grid` the timing of its runs grid at a year of dates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use etl_cli::ui::deployed_runs::DeployedRuns;
use etl_cli::ui::source::RunSource;
use etl_cli::ui::{self, grid, Viewer};

use super::{context, load_template};
use crate::cli::UiArgs;

pub async fn ui(template: Option<PathBuf>, args: UiArgs) -> anyhow::Result<ExitCode> {
    if args.bench_grid {
        bench_grid();
        return Ok(ExitCode::SUCCESS);
    }
    let template = load_template(template)?;
    let machines = template
        .machine_names()
        .into_iter()
        .map(String::from)
        .collect();
    let ctx = context().await?;
    let (source, what) = if args.deployed {
        let runs = DeployedRuns::new(
            ctx.step_functions().clone(),
            &template,
            &args.prefix.name_prefix,
        );
        (
            RunSource::Deployed(runs),
            "the deployed runs, from Step Functions",
        )
    } else {
        (RunSource::Local, "the local runs")
    };
    let address = ui::address(args.port);
    println!("etl ui: {what} on http://{address}/ (Ctrl-C stops)");
    let viewer = Viewer {
        ctx,
        machines,
        source,
    };
    ui::serve(viewer, args.port).await.with_context(|| {
        format!("cannot serve on {address} (is another `etl ui` running? try --port)")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Renders the grid of 365 dates × 4 pipelines again and again; prints min/median/max.
fn bench_grid() {
    const ROUNDS: usize = 200;
    let pipelines = ["hr-setup", "hr", "clickstream", "marketing"];
    let machines: Vec<String> = pipelines.iter().map(ToString::to_string).collect();
    let built = Instant::now();
    let grid = grid::synthetic(365, &pipelines);
    let build = built.elapsed();
    let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let html = ui::html::page(
            "Runs",
            &grid::render(&grid, &grid::GridFilter::default(), &machines),
        );
        times.push(started.elapsed());
        bytes = html.len();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "runs grid, 365 dates x 4 pipelines ({} cells, {bytes} bytes of HTML), {ROUNDS} renders:\n  \
         min {:.2} ms  median {:.2} ms  max {:.2} ms  (building the cells: {:.2} ms)",
        grid.cells.len(),
        ms(times[0]),
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS - 1]),
        ms(build)
    );
}
