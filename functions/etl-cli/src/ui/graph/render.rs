//! The SVG of a laid-out machine, in absolute coordinates: each graph's edges first, then its
//! states on top; a Parallel's or Map's graphs inside its `<g class="state">`.

use std::fmt::Write as _;

use super::layout::{Point, Rect, Route, Step};
use super::{Drawn, StateView, PAD};
use crate::ui::html::{escape, status_class};

/// The whole `<svg>`: `states` is the count for its title.
pub(super) fn svg(drawn: &Drawn, states: usize) -> String {
    let (w, h) = (
        drawn.layout.width + 2.0 * PAD,
        drawn.layout.height + 2.0 * PAD,
    );
    let mut body = String::new();
    let mut ids = 0usize;
    graph(&mut body, drawn, (PAD, PAD), &mut ids);
    format!(
        "<svg class=\"graph\" role=\"img\" aria-labelledby=\"graph-title\" viewBox=\"0 0 {w:.0} {h:.0}\" \
         width=\"{w:.0}\" height=\"{h:.0}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"graph-title\">State machine: {states} states</title><defs>{arrow}{catch_arrow}</defs>\
         {body}</svg>",
        arrow = marker("arrow", "#57606a"),
        catch_arrow = marker("arrow-catch", "#cf222e"),
    )
}

fn marker(id: &str, colour: &str) -> String {
    format!(
        "<marker id=\"{id}\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"{colour}\"/></marker>"
    )
}

/// One graph with its corner at `origin`: edges under states.
fn graph(out: &mut String, drawn: &Drawn, origin: Point, ids: &mut usize) {
    for (link, route) in drawn.links.iter().zip(&drawn.layout.routes) {
        let (class, arrow) = if link.caught {
            ("edge catch", "arrow-catch")
        } else {
            ("edge", "arrow")
        };
        let _ = write!(
            out,
            "<path class=\"{class}\" data-from=\"{}\" data-to=\"{}\" marker-end=\"url(#{arrow})\" d=\"{}\"/>",
            escape(drawn.states[link.from].name),
            escape(drawn.states[link.to].name),
            path(route, origin)
        );
    }
    for (view, rect) in drawn.states.iter().zip(&drawn.layout.boxes) {
        let at = Rect {
            x: rect.x + origin.0,
            y: rect.y + origin.1,
            ..*rect
        };
        state(out, view, at, ids);
    }
}

/// A route as path data, moved by `origin`.
fn path(route: &Route, origin: Point) -> String {
    let at = |(x, y): Point| format!("{:.1},{:.1}", x + origin.0, y + origin.1);
    let mut d = format!("M{}", at(route.start));
    for step in &route.steps {
        match *step {
            Step::Line(to) => {
                let _ = write!(d, " L{}", at(to));
            }
            Step::Curve(c1, c2, to) => {
                let _ = write!(d, " C{} {} {}", at(c1), at(c2), at(to));
            }
        }
    }
    d
}

/// One state at `at`: its box, name, type and outcome; a Parallel or Map with its graphs.
fn state(out: &mut String, view: &StateView, at: Rect, ids: &mut usize) {
    *ids += 1;
    let (name, kind, status) = (escape(view.name), escape(view.kind), escape(view.status));
    let _ = write!(
        out,
        "<g class=\"state {cls}{container}\" id=\"state-{id}\" data-state=\"{name}\" data-type=\"{kind}\" \
         data-status=\"{status}\"><title>{name} ({kind}): {status}</title>\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"{rx}\"/>",
        cls = status_class(view.status),
        container = if view.inner.is_empty() { "" } else { " container" },
        id = *ids,
        x = at.x,
        y = at.y,
        w = at.w,
        h = at.h,
        rx = if view.inner.is_empty() { 6 } else { 8 },
    );
    let text = |out: &mut String, dy: f64, text: &str| {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            at.x + 10.0,
            at.y + dy,
            escape(text)
        );
    };
    if view.inner.is_empty() {
        text(out, 18.0, &view.label());
        text(out, 34.0, &view.caption());
    } else {
        text(out, 18.0, &format!("{} ({})", view.label(), view.caption()));
        // A Parallel's branches side by side, a dotted line between two.
        for pair in view.inner.windows(2) {
            let ((left_x, top), left) = &pair[0];
            let x = at.x + (left_x + left.layout.width + pair[1].0 .0) / 2.0;
            let _ = write!(
                out,
                "<line class=\"branch-gap\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                at.y + top - PAD / 2.0,
                at.y + at.h - PAD / 2.0
            );
        }
        for ((dx, dy), inner) in &view.inner {
            graph(out, inner, (at.x + dx, at.y + dy), ids);
        }
    }
    out.push_str("</g>");
}
