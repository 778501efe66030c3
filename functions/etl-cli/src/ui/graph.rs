//! A state machine drawn from its ASL definition: each graph (the machine's, a Parallel
//! branch's, a Map's item processor) laid out in ranks down from its `StartAt` over `Next`,
//! `Choices`, `Default` and `Catch` (graph/layout.rs), a Parallel or Map a box holding its
//! own graphs, every state one `<g class="state">` with a `<title>`, coloured and labelled by
//! what happened to it in one execution (graph/render.rs).

mod layout;
mod render;

use std::collections::HashMap;

use serde_json::{Map, Value};

use layout::{Layout, Link};

const NODE_H: f64 = 44.0;
const NODE_MIN_W: f64 = 120.0;
const PAD: f64 = 12.0;
const TITLE_H: f64 = 26.0;
/// Between two branches of a Parallel.
const BRANCH_GAP: f64 = 28.0;
/// A status is sized as at least this many characters, so that a machine's layout does not
/// move between runs with different outcomes ("succeeded" is the longest usual one).
const STATUS_CHARS: usize = 9;

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
    let drawn = draw(states, start, outcomes);
    Ok(render::svg(&drawn, count_states(states)))
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

/// The states a state goes to, and whether through a Catch: the main way first (`Next`, then
/// a Choice's rules, then its `Default`), the Catches last, so that failures tend to the
/// right of the drawing.
fn successors(state: &Value) -> Vec<(&str, bool)> {
    let mut next: Vec<(&str, bool)> = state
        .get("Next")
        .and_then(Value::as_str)
        .map(|target| (target, false))
        .into_iter()
        .collect();
    let targets = |key: &str| {
        state
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| rule.get("Next").and_then(Value::as_str))
    };
    next.extend(targets("Choices").map(|target| (target, false)));
    next.extend(
        state
            .get("Default")
            .and_then(Value::as_str)
            .map(|target| (target, false)),
    );
    next.extend(targets("Catch").map(|target| (target, true)));
    next
}

/// One graph laid out: its states (by index, in definition order), its edges and where
/// each goes.
struct Drawn<'a> {
    layout: Layout,
    states: Vec<StateView<'a>>,
    links: Vec<Link>,
}

/// One state as drawn.
struct StateView<'a> {
    name: &'a str,
    kind: &'a str,
    status: &'a str,
    /// A Parallel's or Map's graphs, each with its offset from the state's corner.
    inner: Vec<((f64, f64), Drawn<'a>)>,
}

impl StateView<'_> {
    fn label(&self) -> String {
        format!("{} {}", super::html::symbol(self.status), self.name)
    }

    fn caption(&self) -> String {
        format!("{} · {}", self.kind, self.status)
    }
}

/// A generous estimate of the width of 12px text (no font metrics here): long names must
/// stay inside their box.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 7.6
}

/// The states of one graph, each sized (a Parallel or Map after its own graphs), then laid
/// out. A transition to a state not in this graph is not drawn (the validator reports it);
/// a second transition between the same two states the same way is drawn once.
fn draw<'a>(states: &'a Map<String, Value>, start: &str, outcomes: &'a Outcomes) -> Drawn<'a> {
    let index: HashMap<&str, usize> = states
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut views = Vec::with_capacity(states.len());
    let mut sizes = Vec::with_capacity(states.len());
    let mut links: Vec<Link> = Vec::new();
    for (from, (name, state)) in states.iter().enumerate() {
        let (view, size) = state_view(name, state, outcomes);
        views.push(view);
        sizes.push(size);
        for (target, caught) in successors(state) {
            if let Some(&to) = index.get(target) {
                let link = Link { from, to, caught };
                if !links.contains(&link) {
                    links.push(link);
                }
            }
        }
    }
    let layout = layout::lay_out(&sizes, &links, index.get(start).copied());
    Drawn {
        layout,
        states: views,
        links,
    }
}

/// A state and its size: a box for its name, type and outcome; a Parallel or Map a box
/// around its graphs side by side, under a title line.
fn state_view<'a>(
    name: &'a str,
    state: &'a Value,
    outcomes: &'a Outcomes,
) -> (StateView<'a>, (f64, f64)) {
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("?");
    let status = outcomes.get(name).map_or("not run", String::as_str);
    let mut view = StateView {
        name,
        kind,
        status,
        inner: Vec::new(),
    };
    let padded = |text: String| {
        let short = STATUS_CHARS.saturating_sub(status.chars().count());
        text_width(&text) + text_width(&" ".repeat(short))
    };
    let graphs: Vec<Drawn<'a>> = inner_graphs(state)
        .into_iter()
        .map(|(states, start)| draw(states, start, outcomes))
        .collect();
    if graphs.is_empty() {
        let width = text_width(&view.label())
            .max(padded(view.caption()))
            .max(NODE_MIN_W)
            + 20.0;
        return (view, (width, NODE_H));
    }
    let inner_width =
        graphs.iter().map(|g| g.layout.width).sum::<f64>() + BRANCH_GAP * (graphs.len() - 1) as f64;
    let inner_height = graphs.iter().map(|g| g.layout.height).fold(0.0, f64::max);
    let title = padded(format!("{} ({})", view.label(), view.caption()));
    let width = (inner_width + 2.0 * PAD).max(title + 20.0);
    let height = TITLE_H + inner_height + 2.0 * PAD;
    let mut x = (width - inner_width) / 2.0;
    for graph in graphs {
        let w = graph.layout.width;
        view.inner.push(((x, TITLE_H + PAD), graph));
        x += w + BRANCH_GAP;
    }
    (view, (width, height))
}

#[cfg(test)]
mod check;

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

    /// The repository's machines, as `etl run` reads them (substitutions applied).
    fn repository_machines() -> Vec<(String, Value)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = crate::template::Template::load(&root.join("template.yaml")).unwrap();
        let names = ["hr-setup", "hr", "marketing", "clickstream"];
        assert_eq!(
            {
                let mut known = template.machine_names();
                known.sort_unstable();
                known
            },
            {
                let mut expected = names.to_vec();
                expected.sort_unstable();
                expected
            },
            "a machine was added or removed: list it here"
        );
        names
            .iter()
            .map(|name| {
                let text = template.machine(name).unwrap().definition().unwrap();
                (name.to_string(), serde_json::from_str(&text).unwrap())
            })
            .collect()
    }

    #[test]
    fn every_state_nested_or_not_is_one_node() {
        let definition = machine();
        let states = definition["States"].as_object().unwrap();
        assert_eq!(count_states(states), 8);
        let drawn = svg(&definition, &Outcomes::new()).unwrap();
        assert_eq!(drawn.matches("<g class=\"state ").count(), 8, "{drawn}");
        assert_eq!(drawn.matches("class=\"edge catch\"").count(), 1);
        assert_eq!(drawn.matches("class=\"edge").count(), 5);
    }

    #[test]
    fn ranks_follow_the_longest_path_and_a_loop_goes_back_up_on_the_right() {
        let definition = machine();
        let outcomes = Outcomes::new();
        let drawn = draw(definition["States"].as_object().unwrap(), "Plan", &outcomes);
        let top = |name: &str| {
            let i = drawn.states.iter().position(|s| s.name == name).unwrap();
            drawn.layout.boxes[i].y
        };
        assert!(top("Plan") < top("Fan"));
        assert_eq!(
            top("Fan"),
            top("Failed"),
            "a Catch's target one rank below its source"
        );
        assert!(top("Fan") < top("Check") && top("Check") < top("Done"));
        // Check -> Plan closes the loop: it leaves Check's right side and enters Plan's.
        let back = drawn.links.iter().position(|l| l.to == 0).unwrap();
        let route = &drawn.layout.routes[back];
        let (plan, check) = (
            drawn.layout.boxes[0],
            drawn.layout.boxes[drawn.links[back].from],
        );
        assert_eq!(route.start.0, check.right());
        let end = match route.steps.last().unwrap() {
            layout::Step::Line(p) | layout::Step::Curve(_, _, p) => *p,
        };
        assert_eq!(end.0, plan.right());
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

    /// A state that loops to itself, one nothing reaches, a transition to a state that does
    /// not exist and a Parallel with an empty branch: drawn all the same, and cleanly.
    #[test]
    fn odd_definitions_are_drawn_without_edges_through_boxes() {
        let definition = json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Choice", "Choices": [{"Next": "A"}, {"Next": "Gone"}], "Default": "B"},
                "B": {"Type": "Wait", "Seconds": 1, "Next": "A"},
                "Orphan": {"Type": "Pass", "Next": "B"},
                "Empty": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "X", "States": {}}]}
            }
        });
        let drawn = svg(&definition, &Outcomes::new()).unwrap();
        let report = check::measure(&drawn);
        assert_eq!((report.boxes, report.edges), (4, 4), "{drawn}");
        assert_eq!(report.loose_ends, 0, "{report:?}");
        assert!(
            report.overlaps.is_empty() && report.through.is_empty(),
            "{report:?}"
        );
        assert_eq!(report.along, 0, "{report:?}");
        // B -> A goes back up in the lanes on the right of B and A, so it crosses the edge
        // that comes into B from Orphan, further right: the one crossing here.
        assert_eq!(report.crossings, 1, "{report:?}");
    }

    #[test]
    fn a_definition_without_states_is_refused() {
        assert!(svg(&json!({"StartAt": "A"}), &Outcomes::new()).is_err());
    }

    #[test]
    fn the_checker_sees_overlaps_edges_through_boxes_and_crossings() {
        let drawn = "<svg><g class=\"state s-none\" data-state=\"A\"><rect x=\"0\" y=\"0\" width=\"100\" height=\"40\"/></g>\
            <g transform=\"translate(50,20)\"><g class=\"state s-none\" data-state=\"B\"><rect width=\"100\" height=\"40\"/></g></g>\
            <g class=\"state s-none\" data-state=\"C\"><rect x=\"0\" y=\"200\" width=\"100\" height=\"40\"/></g>\
            <g class=\"state s-none\" data-state=\"D\"><rect x=\"0\" y=\"100\" width=\"100\" height=\"40\"/></g>\
            <path class=\"edge\" d=\"M20,40 L20,200\"/><path class=\"edge catch\" d=\"M0,20 C-40,20 -40,220 0,220\"/>\
            <path class=\"edge\" d=\"M100,120 L-50,120 L-50,260 L50,260 L50,240\"/></svg>";
        let report = check::measure(drawn);
        assert_eq!((report.boxes, report.edges, report.loose_ends), (4, 3, 0));
        assert_eq!(report.overlaps, vec![("A".to_string(), "B".to_string())]);
        assert_eq!(
            report.through,
            vec![("A -> C".to_string(), "D".to_string())]
        );
        assert_eq!(report.crossings, 2, "{report:?}");
    }

    /// Drawings of the repository's machines: no box over another, no edge through (or within
    /// 2 px of) a box that is not its end, no two edges along each other, no crossing.
    #[test]
    fn the_repository_machines_are_drawn_readably() {
        for (name, definition) in repository_machines() {
            let drawn = svg(&definition, &Outcomes::new()).unwrap();
            let report = check::measure(&drawn);
            let states = count_states(definition["States"].as_object().unwrap());
            assert_eq!(report.boxes, states, "{name}");
            assert!(report.edges > 0, "{name}");
            assert_eq!(report.loose_ends, 0, "{name}: {report:?}");
            assert!(report.overlaps.is_empty(), "{name}: {:?}", report.overlaps);
            assert!(report.through.is_empty(), "{name}: {:?}", report.through);
            assert_eq!(report.along, 0, "{name}: edges run along each other");
            // Measured with check::measure: the breadth-first layout this replaced drew, on
            // hr.asl.json, 5 crossings, 7 edges through boxes and 2 pairs of edges along each
            // other (marketing 3, 1 and 4; clickstream 1, 3 and 1); this one draws none.
            assert_eq!(report.crossings, 0, "{name}: edges cross");
        }
    }

    #[test]
    fn a_machine_is_drawn_the_same_every_time_whatever_its_outcomes() {
        for (name, definition) in repository_machines() {
            let first = svg(&definition, &Outcomes::new()).unwrap();
            assert_eq!(first, svg(&definition, &Outcomes::new()).unwrap(), "{name}");
            let all_succeeded: Outcomes = first
                .match_indices("data-state=\"")
                .map(|(at, _)| {
                    let name = &first[at + 12..];
                    (
                        name[..name.find('"').unwrap()].to_string(),
                        "succeeded".to_string(),
                    )
                })
                .collect();
            let shapes = |drawn: &str| {
                let (boxes, lines) = check::read(drawn);
                let boxes: Vec<_> = boxes.into_iter().map(|b| (b.name, b.rect)).collect();
                let lines: Vec<_> = lines.into_iter().map(|l| l.points).collect();
                format!("{boxes:?}{lines:?}")
            };
            let succeeded = svg(&definition, &all_succeeded).unwrap();
            assert_ne!(first, succeeded);
            assert_eq!(
                shapes(&first),
                shapes(&succeeded),
                "{name}: the layout moved with the outcomes"
            );
        }
    }
}
