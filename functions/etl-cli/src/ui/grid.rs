//! The runs grid: pipelines × logical dates, like Airflow's grid of DAG runs. A ledger
//! pipeline's cell is its latest `pipeline` row for the date (the run's outcome), or, before
//! one exists, its latest stage row; a machine that writes no ledger rows (`hr-setup`) shows
//! its executions from `etl.executions` instead.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::NaiveDate;
use etl_core::clients::PgClient;

use super::html::{escape, legend, status_class, symbol, url_part};

/// One cell: the run of a pipeline for a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// A ledger status (`succeeded`, `failed`, `running`, `abandoned`, `skipped`).
    pub status: String,
    pub execution: Option<String>,
    pub attempt: i32,
}

/// The grid's rows (in order), its dates (oldest first) and its cells.
#[derive(Debug, Default)]
pub struct Grid {
    pub pipelines: Vec<String>,
    pub dates: Vec<NaiveDate>,
    pub cells: HashMap<(String, NaiveDate), Cell>,
}

/// What the grid shows: its filters, as the form submits them.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct GridQuery {
    pub pipeline: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The filters, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GridFilter {
    pub pipeline: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterError {
    #[error("{field} must be a date (YYYY-MM-DD), not {value:?}")]
    Date { field: &'static str, value: String },
    #[error("from ({from}) is after to ({to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
}

impl GridQuery {
    pub fn checked(&self) -> Result<GridFilter, FilterError> {
        let date =
            |field: &'static str, value: &Option<String>| match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) => text
                    .parse::<NaiveDate>()
                    .map(Some)
                    .map_err(|_| FilterError::Date {
                        field,
                        value: text.to_string(),
                    }),
            };
        let (from, to) = (date("from", &self.from)?, date("to", &self.to)?);
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(FilterError::Reversed { from, to });
            }
        }
        let pipeline = self
            .pipeline
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from);
        Ok(GridFilter { pipeline, from, to })
    }
}

/// The ledger's cells, the newest pipeline row of each (pipeline, date) first.
const LEDGER_CELLS: &str = "
    SELECT DISTINCT ON (pipeline, logical_date) pipeline, logical_date, status, execution, attempt
      FROM etl.runs
     WHERE ($1::text IS NULL OR pipeline = $1)
       AND ($2::date IS NULL OR logical_date >= $2) AND ($3::date IS NULL OR logical_date <= $3)
     ORDER BY pipeline, logical_date, (stage = 'pipeline') DESC, run_id DESC";

/// The latest execution of each (machine, logical date) of machines outside the ledger.
const EXECUTION_CELLS: &str = "
    SELECT DISTINCT ON (machine, input->>'logical_date')
           machine, (input->>'logical_date')::date AS logical_date, lower(status), name,
           redrive_count + 1
      FROM etl.executions
     WHERE machine <> ALL($4) AND ($1::text IS NULL OR machine = $1)
       AND input->>'logical_date' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
       AND ($2::date IS NULL OR (input->>'logical_date')::date >= $2)
       AND ($3::date IS NULL OR (input->>'logical_date')::date <= $3)
     ORDER BY machine, input->>'logical_date', started_at DESC";

/// The grid for `filter`, rows in `machines` order (then any other ledger pipeline).
pub async fn load(
    client: &PgClient,
    machines: &[String],
    filter: &GridFilter,
) -> Result<Grid, tokio_postgres::Error> {
    let params = (&filter.pipeline, &filter.from, &filter.to);
    let ledger = client
        .query(LEDGER_CELLS, &[params.0, params.1, params.2])
        .await?;
    let mut grid = Grid::default();
    let mut pipelines: BTreeSet<String> = BTreeSet::new();
    let mut ledger_pipelines: Vec<String> = Vec::new();
    for row in &ledger {
        let pipeline: String = row.get(0);
        if pipelines.insert(pipeline.clone()) {
            ledger_pipelines.push(pipeline.clone());
        }
        grid.cells.insert(
            (pipeline, row.get(1)),
            Cell {
                status: row.get(2),
                execution: row.get(3),
                attempt: row.get(4),
            },
        );
    }
    let executions = client
        .query(
            EXECUTION_CELLS,
            &[params.0, params.1, params.2, &ledger_pipelines],
        )
        .await?;
    for row in &executions {
        let machine: String = row.get(0);
        pipelines.insert(machine.clone());
        grid.cells.insert(
            (machine, row.get(1)),
            Cell {
                status: row.get(2),
                execution: Some(row.get(3)),
                attempt: row.get(4),
            },
        );
    }
    grid.pipelines = machines
        .iter()
        .filter(|m| pipelines.contains(*m))
        .cloned()
        .collect();
    grid.pipelines
        .extend(pipelines.into_iter().filter(|p| !machines.contains(p)));
    let dates: BTreeSet<NaiveDate> = grid.cells.keys().map(|(_, date)| *date).collect();
    grid.dates = dates.into_iter().collect();
    Ok(grid)
}

/// The grid's page body: the filter form, the legend and the table.
pub fn render(grid: &Grid, filter: &GridFilter, machines: &[String]) -> String {
    let mut out = String::with_capacity(256 + grid.cells.len() * 200);
    filters(&mut out, filter, machines);
    out.push_str(&legend(&[
        "succeeded",
        "failed",
        "running",
        "abandoned",
        "skipped",
    ]));
    if grid.dates.is_empty() {
        out.push_str("<p role=\"status\">No runs in the ledger for these filters. Run <code>etl run all</code> or <code>scripts/demo</code>.</p>");
        return out;
    }
    let _ = write!(
        out,
        "<div class=\"scroll\" role=\"region\" aria-label=\"Runs grid\" tabindex=\"-1\">\
         <table class=\"grid\" id=\"runs-grid\"><caption class=\"sr\">Runs by pipeline and logical date, {} dates from {} to {}</caption>\
         <thead><tr><th scope=\"col\">Pipeline</th>",
        grid.dates.len(),
        grid.dates[0],
        grid.dates[grid.dates.len() - 1]
    );
    for date in &grid.dates {
        let _ = write!(
            out,
            "<th scope=\"col\"><time datetime=\"{date}\">{date}</time></th>"
        );
    }
    out.push_str("</tr></thead><tbody>");
    for pipeline in &grid.pipelines {
        let name = escape(pipeline);
        let _ = write!(out, "<tr><th scope=\"row\">{name}</th>");
        for date in &grid.dates {
            cell(
                &mut out,
                &name,
                *date,
                grid.cells.get(&(pipeline.clone(), *date)),
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn cell(out: &mut String, pipeline: &str, date: NaiveDate, cell: Option<&Cell>) {
    let Some(cell) = cell else {
        let _ = write!(
            out,
            "<td data-pipeline=\"{pipeline}\" data-date=\"{date}\" data-status=\"none\"><span class=\"sr\">{pipeline} {date}: no run</span></td>"
        );
        return;
    };
    let status = escape(&cell.status);
    let label = format!(
        "{pipeline} {date}: {status}{}",
        if cell.attempt > 1 {
            format!(" (attempt {})", cell.attempt)
        } else {
            String::new()
        }
    );
    let _ = write!(
        out,
        "<td data-pipeline=\"{pipeline}\" data-date=\"{date}\" data-status=\"{status}\">"
    );
    match &cell.execution {
        Some(execution) => {
            let _ = write!(
                out,
                "<a class=\"cell {cls}\" href=\"/runs/{href}\" aria-label=\"{label}\" title=\"{label}\"><span aria-hidden=\"true\">{sym}</span></a>",
                cls = status_class(&cell.status),
                href = url_part(execution),
                sym = symbol(&cell.status),
            );
        }
        None => {
            let _ = write!(
                out,
                "<span class=\"cell {cls}\" role=\"img\" aria-label=\"{label}\" title=\"{label} (no execution)\">{sym}</span>",
                cls = status_class(&cell.status),
                sym = symbol(&cell.status),
            );
        }
    }
    out.push_str("</td>");
}

fn filters(out: &mut String, filter: &GridFilter, machines: &[String]) {
    out.push_str("<form class=\"filters\" method=\"get\" action=\"/\" aria-label=\"Filter runs\"><label>Pipeline<select name=\"pipeline\"><option value=\"\">all</option>");
    for machine in machines {
        let selected = if filter.pipeline.as_deref() == Some(machine.as_str()) {
            " selected"
        } else {
            ""
        };
        let name = escape(machine);
        let _ = write!(out, "<option value=\"{name}\"{selected}>{name}</option>");
    }
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "</select></label><label>From<input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>To<input type=\"date\" name=\"to\" value=\"{}\"></label><button type=\"submit\">Show</button></form>",
        date(filter.from),
        date(filter.to)
    );
}

/// A grid of `days` dates × `pipelines` with every status, for the benchmark.
pub fn synthetic(days: u32, pipelines: &[&str]) -> Grid {
    const STATUSES: [&str; 4] = ["succeeded", "succeeded", "failed", "running"];
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    let mut grid = Grid {
        pipelines: pipelines.iter().map(ToString::to_string).collect(),
        ..Grid::default()
    };
    for day in 0..days {
        let date = start + chrono::Days::new(u64::from(day));
        grid.dates.push(date);
        for (i, pipeline) in pipelines.iter().enumerate() {
            let status = STATUSES[(day as usize + i) % STATUSES.len()];
            grid.cells.insert(
                (pipeline.to_string(), date),
                Cell {
                    status: status.to_string(),
                    execution: Some(format!("{pipeline}-{date}-local-20250101T000000000")),
                    attempt: 1,
                },
            );
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cell_links_its_execution_with_its_status_in_words() {
        let grid = synthetic(2, &["hr", "<x>"]);
        let html = render(&grid, &GridFilter::default(), &["hr".to_string()]);
        assert_eq!(html.matches("<td data-pipeline=").count(), 4);
        assert!(html.contains("<th scope=\"row\">hr</th>"));
        assert!(html.contains("<th scope=\"row\">&lt;x&gt;</th>"), "escaped");
        assert!(html.contains(
            "href=\"/runs/hr-2025-01-01-local-20250101T000000000\" aria-label=\"hr 2025-01-01: succeeded\""
        ));
        assert!(!html.contains("<x>"));
    }

    #[test]
    fn filters_are_checked_dates() {
        let query = GridQuery {
            pipeline: Some(" hr ".into()),
            from: Some("2026-11-01".into()),
            to: Some(String::new()),
        };
        let filter = query.checked().unwrap();
        assert_eq!(filter.pipeline.as_deref(), Some("hr"));
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(filter.to, None);
        let bad = GridQuery {
            from: Some("yesterday".into()),
            ..GridQuery::default()
        };
        assert_eq!(
            bad.checked(),
            Err(FilterError::Date {
                field: "from",
                value: "yesterday".into()
            })
        );
        let reversed = GridQuery {
            from: Some("2026-11-02".into()),
            to: Some("2026-11-01".into()),
            ..GridQuery::default()
        };
        assert!(matches!(
            reversed.checked(),
            Err(FilterError::Reversed { .. })
        ));
    }

    #[test]
    fn no_runs_says_how_to_make_some() {
        let html = render(&Grid::default(), &GridFilter::default(), &[]);
        assert!(html.contains("No runs in the ledger"));
    }
}
