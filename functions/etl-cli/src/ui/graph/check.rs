//! For the tests: the geometry of a drawn graph read back from its SVG (boxes of the
//! `<g class="state">` groups, edge paths flattened to polylines, `translate` groups
//! followed), and what makes a drawing hard to read measured on it: boxes overlapping, edges
//! through boxes that are not their ends, edges crossing, edges running along each other.
//! It reads the SVG rather than the layout so that it measures what is drawn, and so that
//! any drawing of these elements can be measured the same way.

use super::layout::{Point, Rect};

/// How far from a box an edge must stay (when the box is not one of its ends).
const MARGIN: f64 = 2.0;
/// How far from a box's border an edge's end may be to count as ending on it.
const END_TOLERANCE: f64 = 2.0;
/// Segments from one cubic or quadratic curve.
const CURVE_STEPS: usize = 24;

/// A state's box, absolute.
#[derive(Debug, Clone)]
pub struct Shape {
    pub name: String,
    pub rect: Rect,
}

/// An edge as a polyline, absolute.
#[derive(Debug, Clone)]
pub struct Line {
    pub points: Vec<Point>,
}

/// What was measured.
#[derive(Debug, Default)]
pub struct Report {
    pub boxes: usize,
    pub edges: usize,
    /// Pairs of boxes that overlap without one holding the other.
    pub overlaps: Vec<(String, String)>,
    /// (edge "from -> to", box) where the edge passes through (or within MARGIN of) a box
    /// that is neither of its ends nor holds both of them.
    pub through: Vec<(String, String)>,
    /// Points where two edges cross.
    pub crossings: usize,
    /// Pairs of edges that run along each other for more than a few pixels.
    pub along: usize,
    /// Edges whose start or end is on no box's border.
    pub loose_ends: usize,
}

/// The boxes and edges of an SVG drawn as graph/render.rs (or as its predecessor) draws.
pub fn read(svg: &str) -> (Vec<Shape>, Vec<Line>) {
    let mut shapes = Vec::new();
    let mut lines = Vec::new();
    let mut offsets = vec![(0.0, 0.0)];
    let mut pending_state: Option<String> = None;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c);
        let tag = &rest[open + 1..close];
        rest = &rest[(close + 1).min(rest.len())..];
        let base = *offsets.last().unwrap_or(&(0.0, 0.0));
        if tag.starts_with("/g") {
            offsets.pop();
        } else if tag.starts_with("g ") || tag == "g" {
            let (dx, dy) = attr(tag, "transform").map_or((0.0, 0.0), |t| translate(&t));
            offsets.push((base.0 + dx, base.1 + dy));
            if attr(tag, "class").is_some_and(|c| c.split(' ').any(|w| w == "state")) {
                pending_state = attr(tag, "data-state");
            }
        } else if tag.starts_with("rect ") {
            if let Some(name) = pending_state.take() {
                let number = |key: &str| attr(tag, key).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                shapes.push(Shape {
                    name,
                    rect: Rect {
                        x: base.0 + number("x"),
                        y: base.1 + number("y"),
                        w: number("width"),
                        h: number("height"),
                    },
                });
            }
        } else if tag.starts_with("path ")
            && attr(tag, "class").is_some_and(|c| c.starts_with("edge"))
        {
            let points = flatten(&attr(tag, "d").unwrap_or_default(), base);
            lines.push(Line { points });
        }
    }
    (shapes, lines)
}

fn attr(tag: &str, key: &str) -> Option<String> {
    let from = tag.find(&format!(" {key}=\""))? + key.len() + 3;
    let len = tag[from..].find('"')?;
    Some(tag[from..from + len].to_string())
}

fn translate(transform: &str) -> (f64, f64) {
    let inner = transform
        .trim_start_matches("translate(")
        .trim_end_matches(')');
    let mut parts = inner.split(',').map(|p| p.trim().parse().unwrap_or(0.0));
    (parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0))
}

/// Absolute M, L, Q and C path data as a polyline, moved by `base`.
fn flatten(d: &str, base: Point) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    let mut command = ' ';
    let mut numbers: Vec<f64> = Vec::new();
    let spaced = d.replace(',', " ");
    let mut tokens: Vec<&str> = spaced.split_whitespace().collect();
    tokens.push("Z");
    for token in tokens {
        let (letter, number) = match token.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => (Some(c), &token[1..]),
            _ => (None, token),
        };
        if let Some(next) = letter {
            emit(command, &numbers, base, &mut points);
            command = next;
            numbers.clear();
        }
        if let Ok(value) = number.parse::<f64>() {
            numbers.push(value);
        }
    }
    points
}

fn emit(command: char, numbers: &[f64], base: Point, points: &mut Vec<Point>) {
    let pairs: Vec<Point> = numbers
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0] + base.0, c[1] + base.1))
        .collect();
    let from = points.last().copied().unwrap_or((0.0, 0.0));
    match command {
        'M' | 'L' => points.extend(pairs),
        'C' => {
            for c in pairs.chunks(3).filter(|c| c.len() == 3) {
                let at = *points.last().unwrap_or(&from);
                for i in 1..=CURVE_STEPS {
                    let t = i as f64 / CURVE_STEPS as f64;
                    let u = 1.0 - t;
                    let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
                    let x = w[0] * at.0 + w[1] * c[0].0 + w[2] * c[1].0 + w[3] * c[2].0;
                    let y = w[0] * at.1 + w[1] * c[0].1 + w[2] * c[1].1 + w[3] * c[2].1;
                    points.push((x, y));
                }
            }
        }
        'Q' => {
            for c in pairs.chunks(2).filter(|c| c.len() == 2) {
                let at = *points.last().unwrap_or(&from);
                for i in 1..=CURVE_STEPS {
                    let t = i as f64 / CURVE_STEPS as f64;
                    let u = 1.0 - t;
                    let x = u * u * at.0 + 2.0 * u * t * c[0].0 + t * t * c[1].0;
                    let y = u * u * at.1 + 2.0 * u * t * c[0].1 + t * t * c[1].1;
                    points.push((x, y));
                }
            }
        }
        _ => {}
    }
}

fn contains(outer: &Rect, inner: &Rect) -> bool {
    let slack = 0.5;
    inner.x >= outer.x - slack
        && inner.y >= outer.y - slack
        && inner.right() <= outer.right() + slack
        && inner.bottom() <= outer.bottom() + slack
}

/// Distance from a point to a box's border.
fn border_distance(p: Point, r: &Rect) -> f64 {
    let dx = (r.x - p.0).max(p.0 - r.right()).max(0.0);
    let dy = (r.y - p.1).max(p.1 - r.bottom()).max(0.0);
    if dx > 0.0 || dy > 0.0 {
        return dx.hypot(dy);
    }
    (p.0 - r.x)
        .min(r.right() - p.0)
        .min(p.1 - r.y)
        .min(r.bottom() - p.1)
}

/// The box an edge's end is on: the nearest border, the smaller box on a tie.
fn end_box(p: Point, shapes: &[Shape]) -> Option<usize> {
    let mut best: Option<(f64, f64, usize)> = None;
    for (i, s) in shapes.iter().enumerate() {
        let d = border_distance(p, &s.rect);
        let area = s.rect.w * s.rect.h;
        if d <= END_TOLERANCE && best.is_none_or(|(bd, ba, _)| (d, area) < (bd, ba)) {
            best = Some((d, area, i));
        }
    }
    best.map(|(_, _, i)| i)
}

/// Whether segment a-b comes into the box grown by `margin`.
fn segment_hits(a: Point, b: Point, r: &Rect, margin: f64) -> bool {
    let (x0, y0, x1, y1) = (
        r.x - margin,
        r.y - margin,
        r.right() + margin,
        r.bottom() + margin,
    );
    // Liang-Barsky clipping.
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t0 < t1
}

/// Where two segments meet: each from its start (included) to its end (excluded), so that a
/// crossing at a joint of a polyline counts once.
fn crossing(a: Point, b: Point, c: Point, d: Point) -> Option<Point> {
    let r = (b.0 - a.0, b.1 - a.1);
    let s = (d.0 - c.0, d.1 - c.1);
    let denominator = r.0 * s.1 - r.1 * s.0;
    if denominator.abs() < 1e-9 {
        return None;
    }
    let t = ((c.0 - a.0) * s.1 - (c.1 - a.1) * s.0) / denominator;
    let u = ((c.0 - a.0) * r.1 - (c.1 - a.1) * r.0) / denominator;
    let inside = |v: f64| (-1e-9..1.0 - 1e-9).contains(&v);
    (inside(t) && inside(u)).then_some((a.0 + t * r.0, a.1 + t * r.1))
}

/// How long segments a-b and c-d run along each other (nearly parallel, within a pixel).
fn along(a: Point, b: Point, c: Point, d: Point) -> f64 {
    let length = (b.0 - a.0).hypot(b.1 - a.1);
    if length < 1e-9 {
        return 0.0;
    }
    let unit = ((b.0 - a.0) / length, (b.1 - a.1) / length);
    let off_line = |p: Point| ((p.0 - a.0) * unit.1 - (p.1 - a.1) * unit.0).abs();
    if off_line(c) > 1.0 || off_line(d) > 1.0 {
        return 0.0;
    }
    let on_line = |p: Point| (p.0 - a.0) * unit.0 + (p.1 - a.1) * unit.1;
    let (lo, hi) = (on_line(c).min(on_line(d)), on_line(c).max(on_line(d)));
    (hi.min(length) - lo.max(0.0)).max(0.0)
}

fn bounds(points: &[Point]) -> Rect {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in points {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

/// Measures a drawing.
pub fn measure(svg: &str) -> Report {
    let (shapes, lines) = read(svg);
    let mut report = Report {
        boxes: shapes.len(),
        edges: lines.len(),
        ..Report::default()
    };
    for (i, a) in shapes.iter().enumerate() {
        for b in &shapes[i + 1..] {
            let w = a.rect.right().min(b.rect.right()) - a.rect.x.max(b.rect.x);
            let h = a.rect.bottom().min(b.rect.bottom()) - a.rect.y.max(b.rect.y);
            if w > 0.5 && h > 0.5 && !contains(&a.rect, &b.rect) && !contains(&b.rect, &a.rect) {
                report.overlaps.push((a.name.clone(), b.name.clone()));
            }
        }
    }
    for line in &lines {
        through(line, &shapes, &mut report);
    }
    let boxes: Vec<Rect> = lines.iter().map(|l| bounds(&l.points)).collect();
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            let (p, q) = (&boxes[i], &boxes[j]);
            if p.x > q.right() + 1.0
                || q.x > p.right() + 1.0
                || p.y > q.bottom() + 1.0
                || q.y > p.bottom() + 1.0
            {
                continue;
            }
            pair(&lines[i].points, &lines[j].points, &mut report);
        }
    }
    report
}

/// The boxes one edge passes through.
fn through(line: &Line, shapes: &[Shape], report: &mut Report) {
    let (Some(&first), Some(&last)) = (line.points.first(), line.points.last()) else {
        report.loose_ends += 1;
        return;
    };
    let (Some(from), Some(to)) = (end_box(first, shapes), end_box(last, shapes)) else {
        report.loose_ends += 1;
        return;
    };
    let name = format!("{} -> {}", shapes[from].name, shapes[to].name);
    for (i, shape) in shapes.iter().enumerate() {
        let holds_both =
            contains(&shape.rect, &shapes[from].rect) && contains(&shape.rect, &shapes[to].rect);
        if i == from || i == to || holds_both {
            continue;
        }
        if line
            .points
            .windows(2)
            .any(|s| segment_hits(s[0], s[1], &shape.rect, MARGIN))
        {
            report.through.push((name.clone(), shape.name.clone()));
        }
    }
}

/// The crossings of two edges, and whether they run along each other.
fn pair(a: &[Point], b: &[Point], report: &mut Report) {
    let mut points: Vec<Point> = Vec::new();
    let mut shared = 0.0;
    // Where edges meet at their ends (on a box) is not a crossing.
    let ends: Vec<Point> = [a, b]
        .iter()
        .flat_map(|l| [l.first(), l.last()])
        .flatten()
        .copied()
        .collect();
    let apart = |p: &Point, q: &Point| (q.0 - p.0).hypot(q.1 - p.1) > 2.0;
    for s in a.windows(2) {
        for t in b.windows(2) {
            if let Some(p) = crossing(s[0], s[1], t[0], t[1]) {
                if points.iter().chain(&ends).all(|q| apart(&p, q)) {
                    points.push(p);
                }
            }
            shared += along(s[0], s[1], t[0], t[1]);
        }
    }
    report.crossings += points.len();
    if shared > 8.0 {
        report.along += 1;
    }
}
