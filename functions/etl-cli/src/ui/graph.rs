//! A state machine drawn from its ASL definition: states in ranks (breadth first from
//! `StartAt` over `Next`, `Default`, `Choices` and `Catch`), a Parallel's branches and a Map's
//! item processor drawn as boxes holding their own states, every state one `<g class="state">`
//! with a `<title>`, coloured and labelled by what happened to it in one execution.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::html::{escape, status_class, symbol};

const GAP_X: f64 = 24.0;
const GAP_Y: f64 = 34.0;
const NODE_H: f64 = 44.0;
const PAD: f64 = 12.0;
const TITLE_H: f64 = 26.0;
/// Room on the right for edges that go back up (loops, retries through a Choice).
const LOOP_MARGIN: f64 = 36.0;

/// What happened to each state, by name; a state missing here was not entered.
pub type Outcomes = HashMap<String, String>;

/// The `<svg>` for a definition, or why it cannot be drawn.
pub fn svg(definition: &Value, outcomes: &Outcomes) -> Result<String, String> {
    let states = definition
        .get("States")
        .and_then(Value::as_object)
        .ok_or("the definition has no States")?;
    let start = definition
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or("the definition has no StartAt")?;
    let mut ids = 0usize;
    let laid = lay_out(states, start, outcomes, &mut ids);
    let (w, h) = (laid.width + 2.0 * PAD, laid.height + 2.0 * PAD);
    Ok(format!(
        "<svg class=\"graph\" role=\"img\" aria-labelledby=\"graph-title\" viewBox=\"0 0 {w:.0} {h:.0}\" \
         width=\"{w:.0}\" height=\"{h:.0}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"graph-title\">State machine: {n} states</title>\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#57606a\"/></marker></defs>\
         <g transform=\"translate({PAD},{PAD})\">{body}</g></svg>",
        n = count_states(states),
        body = laid.body
    ))
}

/// Every state of a States object, nested ones included.
pub fn count_states(states: &Map<String, Value>) -> usize {
    states
        .values()
        .map(|state| {
            1 + inner_graphs(state)
                .iter()
                .map(|(states, _)| count_states(states))
                .sum::<usize>()
        })
        .sum()
}

/// A Parallel's branches or a Map's item processor: (States, StartAt) each.
fn inner_graphs(state: &Value) -> Vec<(&Map<String, Value>, &str)> {
    let mut graphs = Vec::new();
    if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
        graphs.extend(branches.iter().filter_map(as_graph));
    }
    for key in ["ItemProcessor", "Iterator"] {
        if let Some(processor) = state.get(key) {
            graphs.extend(as_graph(processor));
        }
    }
    graphs
}

fn as_graph(graph: &Value) -> Option<(&Map<String, Value>, &str)> {
    Some((
        graph.get("States")?.as_object()?,
        graph.get("StartAt")?.as_str()?,
    ))
}

/// The states a state goes to, and whether through a Catch.
fn successors(state: &Value) -> Vec<(&str, bool)> {
    let mut next = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(target) = state.get(key).and_then(Value::as_str) {
            next.push((target, false));
        }
    }
    for choice in state
        .get("Choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(target) = choice.get("Next").and_then(Value::as_str) {
            next.push((target, false));
        }
    }
    for catcher in state
        .get("Catch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(target) = catcher.get("Next").and_then(Value::as_str) {
            next.push((target, true));
        }
    }
    next
}

/// The rank of each state: its breadth-first distance from `start`; states not reachable
/// from it come last, in definition order.
fn ranks<'a>(states: &'a Map<String, Value>, start: &'a str) -> Vec<Vec<&'a str>> {
    let mut rank: HashMap<&str, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    if states.contains_key(start) {
        rank.insert(start, 0);
        queue.push_back(start);
    }
    while let Some(name) = queue.pop_front() {
        let here = rank[name];
        for (target, _) in states.get(name).map(successors).unwrap_or_default() {
            if let Some((key, _)) = states.get_key_value(target) {
                if !rank.contains_key(key.as_str()) {
                    rank.insert(key.as_str(), here + 1);
                    queue.push_back(key.as_str());
                }
            }
        }
    }
    let deepest = rank.values().copied().max().map_or(0, |r| r + 1);
    let mut rows: Vec<Vec<&str>> = vec![Vec::new(); deepest];
    let mut unreachable = Vec::new();
    for name in states.keys() {
        match rank.get(name.as_str()) {
            Some(&r) => rows[r].push(name),
            None => unreachable.push(name.as_str()),
        }
    }
    if !unreachable.is_empty() {
        rows.push(unreachable);
    }
    rows
}

/// SVG content at the origin, and its size.
struct Laid {
    width: f64,
    height: f64,
    body: String,
}

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 7.2
}

fn lay_out(states: &Map<String, Value>, start: &str, outcomes: &Outcomes, ids: &mut usize) -> Laid {
    let rows = ranks(states, start);
    let mut boxes: HashMap<&str, Laid> = HashMap::new();
    for name in rows.iter().flatten() {
        boxes.insert(name, node(name, &states[*name], outcomes, ids));
    }
    let widths: Vec<f64> = rows
        .iter()
        .map(|row| {
            row.iter().map(|n| boxes[n].width).sum::<f64>()
                + GAP_X * row.len().saturating_sub(1) as f64
        })
        .collect();
    let inner_width = widths.iter().copied().fold(0.0, f64::max);
    let mut placed: HashMap<&str, (f64, f64, f64, f64)> = HashMap::new();
    let mut y = 0.0;
    let mut body = String::new();
    for (row, row_width) in rows.iter().zip(&widths) {
        let mut x = (inner_width - row_width) / 2.0;
        let row_height = row.iter().map(|n| boxes[n].height).fold(0.0, f64::max);
        for name in row {
            let laid = &boxes[name];
            let _ = write!(
                body,
                "<g transform=\"translate({x:.1},{y:.1})\">{}</g>",
                laid.body
            );
            placed.insert(name, (x, y, laid.width, laid.height));
            x += laid.width + GAP_X;
        }
        y += row_height + GAP_Y;
    }
    let mut edges = String::new();
    for (name, state) in states {
        let Some(&from) = placed.get(name.as_str()) else {
            continue;
        };
        for (target, caught) in successors(state) {
            if let Some(&to) = placed.get(target) {
                edges.push_str(&edge(from, to, caught, inner_width));
            }
        }
    }
    Laid {
        width: inner_width + LOOP_MARGIN,
        height: (y - GAP_Y).max(0.0),
        body: edges + &body,
    }
}

/// A line from the bottom of `from` to the top of `to`, or a curve round the right side when
/// `to` is not below it.
fn edge(from: (f64, f64, f64, f64), to: (f64, f64, f64, f64), caught: bool, width: f64) -> String {
    let class = if caught { "edge catch" } else { "edge" };
    let (fx, fy, fw, fh) = from;
    let (tx, ty, tw, th) = to;
    if ty > fy + fh {
        let (x1, y1, x2, y2) = (fx + fw / 2.0, fy + fh, tx + tw / 2.0, ty);
        let mid = (y1 + y2) / 2.0;
        format!(
            "<path class=\"{class}\" marker-end=\"url(#arrow)\" d=\"M{x1:.1},{y1:.1} C{x1:.1},{mid:.1} {x2:.1},{mid:.1} {x2:.1},{y2:.1}\"/>"
        )
    } else {
        let (x1, y1, x2, y2) = (fx + fw, fy + fh / 2.0, tx + tw, ty + th / 2.0);
        let out = width + LOOP_MARGIN * 0.8;
        format!(
            "<path class=\"{class}\" marker-end=\"url(#arrow)\" d=\"M{x1:.1},{y1:.1} C{out:.1},{y1:.1} {out:.1},{y2:.1} {x2:.1},{y2:.1}\"/>"
        )
    }
}

/// One state: a box with its name, type and outcome; a Parallel or Map with its inner
/// graphs inside.
fn node(name: &str, state: &Value, outcomes: &Outcomes, ids: &mut usize) -> Laid {
    *ids += 1;
    let id = *ids;
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("?");
    let status = outcomes.get(name).map_or("not run", String::as_str);
    let label = format!("{} {name}", symbol(status));
    let caption = format!("{kind} · {status}");
    let head = format!(
        "<g class=\"state {cls}{container}\" id=\"state-{id}\" data-state=\"{n}\" data-type=\"{k}\" data-status=\"{s}\">\
         <title>{n} ({k}): {s}</title>",
        cls = status_class(status),
        container = if inner_graphs(state).is_empty() { "" } else { " container" },
        n = escape(name),
        k = escape(kind),
        s = escape(status),
    );
    let inner: Vec<Laid> = inner_graphs(state)
        .into_iter()
        .map(|(states, start)| lay_out(states, start, outcomes, ids))
        .collect();
    if inner.is_empty() {
        let width = text_width(&label).max(text_width(&caption)).max(120.0) + 20.0;
        let body = format!(
            "{head}<rect width=\"{width:.1}\" height=\"{NODE_H}\" rx=\"6\"/>\
             <text x=\"10\" y=\"18\">{}</text><text x=\"10\" y=\"34\">{}</text></g>",
            escape(&label),
            escape(&caption)
        );
        return Laid {
            width,
            height: NODE_H,
            body,
        };
    }
    let inner_width: f64 =
        inner.iter().map(|l| l.width).sum::<f64>() + GAP_X * (inner.len() - 1) as f64;
    let inner_height = inner.iter().map(|l| l.height).fold(0.0, f64::max);
    let title = format!("{label} ({caption})");
    let width = (inner_width + 2.0 * PAD).max(text_width(&title) + 20.0);
    let height = TITLE_H + inner_height + 2.0 * PAD;
    let mut body = format!(
        "{head}<rect width=\"{width:.1}\" height=\"{height:.1}\" rx=\"8\"/>\
         <text x=\"10\" y=\"18\">{}</text>",
        escape(&title)
    );
    let mut x = (width - inner_width) / 2.0;
    for laid in &inner {
        let _ = write!(
            body,
            "<g transform=\"translate({x:.1},{:.1})\">{}</g>",
            TITLE_H + PAD,
            laid.body
        );
        x += laid.width + GAP_X;
    }
    body.push_str("</g>");
    Laid {
        width,
        height,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine() -> Value {
        json!({
            "StartAt": "Plan",
            "States": {
                "Plan": {"Type": "Task", "Next": "Fan", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
                "Fan": {"Type": "Parallel", "Next": "Check", "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Map", "End": true,
                        "ItemProcessor": {"StartAt": "C", "States": {"C": {"Type": "Task", "End": true}}}}}}
                ]},
                "Check": {"Type": "Choice", "Choices": [{"Next": "Plan"}], "Default": "Done"},
                "Done": {"Type": "Succeed"},
                "Failed": {"Type": "Fail"}
            }
        })
    }

    #[test]
    fn every_state_nested_or_not_is_one_node() {
        let definition = machine();
        let states = definition["States"].as_object().unwrap();
        assert_eq!(count_states(states), 8);
        let drawn = svg(&definition, &Outcomes::new()).unwrap();
        assert_eq!(drawn.matches("<g class=\"state ").count(), 8, "{drawn}");
        assert_eq!(drawn.matches("class=\"edge catch\"").count(), 1);
    }

    #[test]
    fn ranks_follow_the_transitions_from_start_at() {
        let definition = machine();
        let rows = ranks(definition["States"].as_object().unwrap(), "Plan");
        assert_eq!(
            rows,
            vec![
                vec!["Plan"],
                vec!["Fan", "Failed"],
                vec!["Check"],
                vec!["Done"]
            ]
        );
    }

    #[test]
    fn a_state_shows_its_outcome_in_words_and_colour() {
        let outcomes = Outcomes::from([("Plan".to_string(), "failed".to_string())]);
        let drawn = svg(&machine(), &outcomes).unwrap();
        assert!(drawn.contains("class=\"state s-failed\""), "{drawn}");
        assert!(drawn.contains("<title>Plan (Task): failed</title>"));
        assert!(drawn.contains("Task · failed"));
        assert!(drawn.contains("<title>Done (Succeed): not run</title>"));
    }

    #[test]
    fn a_definition_without_states_is_refused() {
        assert!(svg(&json!({"StartAt": "A"}), &Outcomes::new()).is_err());
    }
}
