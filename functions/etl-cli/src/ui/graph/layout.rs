//! A layered (Sugiyama-style) layout of one graph of boxes, with nothing of ASL in it:
//! edges that close a loop are turned round, ranks are the longest path from the sources,
//! an edge spanning several ranks gets a virtual point (a dummy) in every rank between, a
//! few barycenter sweeps and adjacent swaps order each rank for few crossings, and each
//! rank's horizontal positions are the closest to the weighted median of their neighbours'
//! that keep the boxes apart (a Catch's edge and an edge to a final state weigh little, so
//! the main way through a machine runs straight down). Routes then follow a fixed discipline that keeps them off every box: inside
//! a rank's band an edge only runs straight up or down in a column reserved for it (a
//! dummy's, a port's under or over its own box, or a lane on its own box's right side), and
//! it bends only in the empty gap between two bands.

use std::collections::VecDeque;

/// Space between two boxes of a rank.
const GAP_X: f64 = 28.0;
/// Space between a dummy's line and its neighbours in the rank.
const DUMMY_GAP: f64 = 12.0;
/// Half the width a dummy takes.
const DUMMY_HALF: f64 = 2.0;
/// Height of the gap between two ranks, where edges bend and cross.
const GAP_Y: f64 = 46.0;
/// Distance between the lanes on a box's right side that carry edges going back up.
const LANE: f64 = 14.0;
/// Most distance between two ports on one side of a box.
const PORT_SPACING: f64 = 26.0;
/// Vertical distance between two side ports of one box.
const SIDE_PORT_SPACING: f64 = 10.0;
/// How much an edge to a Catch or to a state that ends its graph pulls its ends into line,
/// against 1 for any other edge.
const SIDE_WEIGHT: f64 = 0.05;
/// How little a box without edges holds its place.
const LOOSE_WEIGHT: f64 = 1e-3;
const ORDER_SWEEPS: usize = 12;
/// Odd, so that the last sweep goes down: every item then sits by where its neighbours above
/// ended up (a final state by its source).
const POSITION_SWEEPS: usize = 9;

pub type Point = (f64, f64);

/// A box: top-left corner, width and height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

/// An edge between two boxes, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    /// Through a Catch: drawn dashed.
    pub caught: bool,
}

/// One piece of a route: a straight line or a cubic curve (two control points, then the end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    Line(Point),
    Curve(Point, Point, Point),
}

/// An edge's path, from its source's border to its target's.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub start: Point,
    pub steps: Vec<Step>,
}

/// Boxes (by the index given) and routes (by link index) at the graph's origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub boxes: Vec<Rect>,
    pub routes: Vec<Route>,
}

/// The layered graph: boxes and dummies ("items"), the rank of each, and each link's chain
/// of items from its upper end to its lower end.
struct Layered {
    rank: Vec<usize>,
    /// Some(box index) for a box, None for a dummy.
    node: Vec<Option<usize>>,
    chains: Vec<Vec<usize>>,
    ups: Vec<Vec<usize>>,
    downs: Vec<Vec<usize>>,
    /// How strongly each of `ups` and `downs` pulls an item towards it horizontally.
    up_weights: Vec<Vec<f64>>,
    down_weights: Vec<Vec<f64>>,
    /// How strongly an item holds its place against its neighbours in the rank.
    weight: Vec<f64>,
    ranks: usize,
}

/// Lays out boxes of the given sizes (width, height) joined by `links`; `start` (the
/// StartAt) is the first root when looking for loops and ordering ranks.
pub fn lay_out(sizes: &[(f64, f64)], links: &[Link], start: Option<usize>) -> Layout {
    if sizes.is_empty() {
        return Layout {
            width: 0.0,
            height: 0.0,
            boxes: Vec::new(),
            routes: Vec::new(),
        };
    }
    let back = back_links(sizes.len(), links, start);
    let rank = longest_path_ranks(sizes.len(), links, &back);
    let layered = layered(&rank, links, &back);
    let layers = order(&layered, start);
    let sides = side_ports(sizes.len(), links, &back);
    let extents: Vec<(f64, f64)> = (0..layered.rank.len())
        .map(|item| match layered.node[item] {
            Some(b) => (
                sizes[b].0 / 2.0,
                sizes[b].0 / 2.0 + LANE * sides[b].len() as f64,
            ),
            None => (DUMMY_HALF, DUMMY_HALF),
        })
        .collect();
    let mut centers = positions(&layered, &layers, &extents);
    let left = (0..centers.len())
        .map(|i| centers[i] - extents[i].0)
        .fold(f64::INFINITY, f64::min);
    centers.iter_mut().for_each(|c| *c -= left);
    let width = (0..centers.len())
        .map(|i| centers[i] + extents[i].1)
        .fold(0.0, f64::max);
    let bands = bands(&layered, sizes);
    let boxes: Vec<Rect> = (0..sizes.len())
        .map(|b| Rect {
            x: centers[b] - sizes[b].0 / 2.0,
            y: bands[layered.rank[b]].0,
            w: sizes[b].0,
            h: sizes[b].1,
        })
        .collect();
    let height = bands.last().map_or(0.0, |&(top, h)| top + h);
    let geometry = Geometry {
        layered: &layered,
        centers: &centers,
        bands: &bands,
        boxes: &boxes,
        sides: &sides,
    };
    let routes = geometry.routes(links, &back);
    Layout {
        width,
        height,
        boxes,
        routes,
    }
}

/// The links that close a loop: those a depth-first walk from `start` (then from every other
/// box, in order) finds going back to a box still on its path.
fn back_links(count: usize, links: &[Link], start: Option<usize>) -> Vec<bool> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, link) in links.iter().enumerate() {
        out[link.from].push(i);
    }
    let mut back = vec![false; links.len()];
    // 0: not seen, 1: on the current path, 2: done.
    let mut seen = vec![0u8; count];
    for root in start.into_iter().chain(0..count) {
        if seen[root] != 0 {
            continue;
        }
        seen[root] = 1;
        let mut path = vec![(root, 0usize)];
        while let Some((here, next)) = path.last_mut() {
            let here = *here;
            if let Some(&link) = out[here].get(*next) {
                *next += 1;
                let to = links[link].to;
                match seen[to] {
                    0 => {
                        seen[to] = 1;
                        path.push((to, 0));
                    }
                    1 => back[link] = true,
                    _ => {}
                }
            } else {
                seen[here] = 2;
                path.pop();
            }
        }
    }
    back
}

/// Each box's rank: one more than the highest rank among its sources, loops left out.
fn longest_path_ranks(count: usize, links: &[Link], back: &[bool]) -> Vec<usize> {
    let mut incoming = vec![0usize; count];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (link, _) in links.iter().zip(back).filter(|(_, &b)| !b) {
        incoming[link.to] += 1;
        out[link.from].push(link.to);
    }
    let mut rank = vec![0usize; count];
    let mut ready: VecDeque<usize> = (0..count).filter(|&b| incoming[b] == 0).collect();
    while let Some(here) = ready.pop_front() {
        for &to in &out[here] {
            rank[to] = rank[to].max(rank[here] + 1);
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push_back(to);
            }
        }
    }
    rank
}

/// Boxes first (item i is box i), then a dummy for every rank a link passes through.
fn layered(rank: &[usize], links: &[Link], back: &[bool]) -> Layered {
    let mut item_rank = rank.to_vec();
    let mut node: Vec<Option<usize>> = (0..rank.len()).map(Some).collect();
    let mut chains = Vec::with_capacity(links.len());
    for (link, &is_back) in links.iter().zip(back) {
        let (upper, lower) = if is_back {
            (link.to, link.from)
        } else {
            (link.from, link.to)
        };
        let mut chain = vec![upper];
        for r in rank[upper] + 1..rank[lower] {
            item_rank.push(r);
            node.push(None);
            chain.push(item_rank.len() - 1);
        }
        if lower != upper {
            chain.push(lower);
        }
        chains.push(chain);
    }
    let mut ups = vec![Vec::new(); item_rank.len()];
    let mut downs = vec![Vec::new(); item_rank.len()];
    let mut up_weights = vec![Vec::new(); item_rank.len()];
    let mut down_weights = vec![Vec::new(); item_rank.len()];
    // As dot does, long edges pull harder (straighter); here an edge to a Catch or to a
    // state that ends the graph pulls less, so that the way through a machine stays
    // straight and its failure handling and early ends go to the side.
    let side: Vec<f64> = links
        .iter()
        .map(|l| {
            let leaf = links.iter().all(|other| other.from != l.to);
            if l.caught || leaf {
                SIDE_WEIGHT
            } else {
                1.0
            }
        })
        .collect();
    // Likewise a box reached only by such edges gives way to the boxes on the main way, and
    // a dummy holds its place as its edge pulls.
    let mut weight: Vec<f64> = (0..item_rank.len())
        .map(|item| {
            if node[item].is_some() && links.iter().any(|l| l.to == item) {
                SIDE_WEIGHT
            } else {
                1.0
            }
        })
        .collect();
    for ((chain, link), &side) in chains.iter().zip(links).zip(&side) {
        weight[link.to] = weight[link.to].max(side);
        // A loop on one box has a chain of that box alone.
        for &dummy in chain
            .get(1..chain.len().saturating_sub(1))
            .unwrap_or_default()
        {
            weight[dummy] = 2.0 * side;
        }
        for pair in chain.windows(2) {
            let dummies = pair.iter().filter(|&&i| node[i].is_none()).count();
            let pull = [1.0, 2.0, 8.0][dummies] * side;
            downs[pair[0]].push(pair[1]);
            down_weights[pair[0]].push(pull);
            ups[pair[1]].push(pair[0]);
            up_weights[pair[1]].push(pull);
        }
    }
    let ranks = item_rank.iter().max().map_or(0, |r| r + 1);
    Layered {
        rank: item_rank,
        node,
        chains,
        ups,
        downs,
        up_weights,
        down_weights,
        weight,
        ranks,
    }
}

/// The order of the items in each rank: first as a depth-first walk down from `start` meets
/// them, then improved by barycenter sweeps and swaps; the order with the fewest crossings.
fn order(layered: &Layered, start: Option<usize>) -> Vec<Vec<usize>> {
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layered.ranks];
    let mut seen = vec![false; layered.rank.len()];
    for root in start.into_iter().chain(0..layered.rank.len()) {
        let mut stack = vec![root];
        while let Some(item) = stack.pop() {
            if std::mem::replace(&mut seen[item], true) {
                continue;
            }
            layers[layered.rank[item]].push(item);
            stack.extend(layered.downs[item].iter().rev().filter(|&&d| !seen[d]));
        }
    }
    let mut best = layers.clone();
    let mut fewest = crossings(layered, &layers);
    for sweep in 0..ORDER_SWEEPS {
        if sweep % 2 == 0 {
            for r in 1..layered.ranks {
                let (above, rest) = layers.split_at_mut(r);
                sort_by_barycenter(&mut rest[0], &above[r - 1], &layered.ups);
            }
        } else {
            for r in (0..layered.ranks.saturating_sub(1)).rev() {
                let (upto, below) = layers.split_at_mut(r + 1);
                sort_by_barycenter(&mut upto[r], &below[0], &layered.downs);
            }
        }
        transpose(layered, &mut layers);
        let now = crossings(layered, &layers);
        if now < fewest {
            fewest = now;
            best = layers.clone();
        }
    }
    best
}

/// Sorts `layer` by the mean position of each item's neighbours in `other` (an item without
/// any keeps its own position); the sort is stable, so ties keep their order.
fn sort_by_barycenter(layer: &mut [usize], other: &[usize], neighbours: &[Vec<usize>]) {
    let at = |item: usize| other.iter().position(|&o| o == item).unwrap_or(0) as f64;
    let keys: Vec<(usize, f64)> = layer
        .iter()
        .enumerate()
        .map(|(i, &item)| {
            let near = &neighbours[item];
            let key = if near.is_empty() {
                i as f64
            } else {
                near.iter().map(|&n| at(n)).sum::<f64>() / near.len() as f64
            };
            (item, key)
        })
        .collect();
    let mut sorted = keys;
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (slot, (item, _)) in layer.iter_mut().zip(sorted) {
        *slot = item;
    }
}

/// Each item's index within its rank.
fn indexes(layered: &Layered, layers: &[Vec<usize>]) -> Vec<usize> {
    let mut index = vec![0; layered.rank.len()];
    for layer in layers {
        for (i, &item) in layer.iter().enumerate() {
            index[item] = i;
        }
    }
    index
}

/// How many pairs of edges cross between consecutive ranks.
fn crossings(layered: &Layered, layers: &[Vec<usize>]) -> usize {
    let index = indexes(layered, layers);
    let mut total = 0;
    for layer in layers {
        let edges: Vec<(usize, usize)> = layer
            .iter()
            .flat_map(|&a| layered.downs[a].iter().map(move |&b| (a, b)))
            .map(|(a, b)| (index[a], index[b]))
            .collect();
        for (i, &(a1, b1)) in edges.iter().enumerate() {
            total += edges[i + 1..]
                .iter()
                .filter(|&&(a2, b2)| (a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2))
                .count();
        }
    }
    total
}

/// Swaps neighbours in a rank while that lowers the crossings their edges make.
fn transpose(layered: &Layered, layers: &mut [Vec<usize>]) {
    for _ in 0..layers.len().max(4) {
        let mut improved = false;
        for r in 0..layers.len() {
            for i in 0..layers[r].len().saturating_sub(1) {
                let index = indexes(layered, layers);
                let (u, v) = (layers[r][i], layers[r][i + 1]);
                if pair_crossings(layered, &index, v, u) < pair_crossings(layered, &index, u, v) {
                    layers[r].swap(i, i + 1);
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// The crossings between the edges of `left` and those of `right` were `left` left of
/// `right`.
fn pair_crossings(layered: &Layered, index: &[usize], left: usize, right: usize) -> usize {
    let mut count = 0;
    for near in [&layered.ups, &layered.downs] {
        for &a in &near[left] {
            count += near[right].iter().filter(|&&b| index[a] > index[b]).count();
        }
    }
    count
}

/// For each box, the loop links it ends on its right side (in link order).
fn side_ports(count: usize, links: &[Link], back: &[bool]) -> Vec<Vec<usize>> {
    let mut sides = vec![Vec::new(); count];
    for (i, (link, _)) in links.iter().zip(back).enumerate().filter(|(_, (_, &b))| b) {
        sides[link.from].push(i);
        if link.to != link.from {
            sides[link.to].push(i);
        }
    }
    sides
}

/// Horizontal centers: packed, then moved towards the mean of their neighbours above, then
/// below, as far as the order and the gaps let them.
fn positions(layered: &Layered, layers: &[Vec<usize>], extents: &[(f64, f64)]) -> Vec<f64> {
    let mut centers = vec![0.0; layered.rank.len()];
    for layer in layers {
        let wanted = vec![Some(0.0); layer.len()];
        place(layered, layer, extents, &wanted, &mut centers);
    }
    for sweep in 0..POSITION_SWEEPS {
        let downward = sweep % 2 == 0;
        let ranks: Vec<usize> = if downward {
            (0..layers.len()).collect()
        } else {
            (0..layers.len()).rev().collect()
        };
        for r in ranks {
            let wanted: Vec<Option<f64>> = layers[r]
                .iter()
                .map(|&item| {
                    let up = (&layered.ups[item], &layered.up_weights[item]);
                    let down = (&layered.downs[item], &layered.down_weights[item]);
                    // Towards the side the sweep comes from; an item with no neighbour
                    // there (a source, a final state) follows the other side.
                    let (first, then) = if downward { (up, down) } else { (down, up) };
                    let (near, weights) = if first.0.is_empty() { then } else { first };
                    let pulls: Vec<(f64, f64)> = near
                        .iter()
                        .zip(weights)
                        .map(|(&n, &w)| (centers[n], w))
                        .collect();
                    weighted_median(pulls)
                })
                .collect();
            place(layered, &layers[r], extents, &wanted, &mut centers);
        }
    }
    centers
}

/// The position that half the weight pulls left of and half right of: the one heavy edge
/// of a box is drawn straight, where a mean would leave it askew; the mean of the two
/// middle positions when they balance exactly.
fn weighted_median(mut pulls: Vec<(f64, f64)>) -> Option<f64> {
    pulls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = pulls.iter().map(|p| p.1).sum::<f64>() / 2.0;
    let mut below = 0.0;
    for (i, &(at, weight)) in pulls.iter().enumerate() {
        below += weight;
        if (below - half).abs() < 1e-9 {
            return Some(pulls.get(i + 1).map_or(at, |next| (at + next.0) / 2.0));
        }
        if below > half {
            return Some(at);
        }
    }
    None
}

/// Centers for one rank as close (least squares) to `wanted` as the gaps allow, the order
/// kept: pool-adjacent-violators on the wanted positions less each item's least offset. An
/// item that wants nothing (it has no edge) sits close by its left neighbour, or its right.
fn place(
    layered: &Layered,
    layer: &[usize],
    extents: &[(f64, f64)],
    wanted: &[Option<f64>],
    centers: &mut [f64],
) {
    let mut offsets = Vec::with_capacity(layer.len());
    let mut offset = 0.0;
    for (i, &item) in layer.iter().enumerate() {
        if i > 0 {
            let prev = layer[i - 1];
            let gap = if layered.node[prev].is_some() && layered.node[item].is_some() {
                GAP_X
            } else {
                DUMMY_GAP
            };
            offset += extents[prev].1 + gap + extents[item].0;
        }
        offsets.push(offset);
    }
    // Blocks of (sum of weighted targets, total weight, items); the dummies of the main
    // way's long edges weigh more than boxes so that those edges run straight.
    let targets: Vec<Option<f64>> = wanted
        .iter()
        .zip(&offsets)
        .map(|(w, offset)| w.map(|w| w - offset))
        .collect();
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (i, &item) in layer.iter().enumerate() {
        let nearest = targets[..i]
            .iter()
            .rev()
            .chain(&targets[i + 1..])
            .find_map(|t| *t);
        let (target, weight) = match (targets[i], nearest) {
            (Some(target), _) => (target, layered.weight[item]),
            (None, Some(near)) => (near, LOOSE_WEIGHT),
            (None, None) => (centers[item] - offsets[i], LOOSE_WEIGHT),
        };
        blocks.push((target * weight, weight, 1));
        while blocks.len() > 1 {
            let (s2, w2, n2) = blocks[blocks.len() - 1];
            let (s1, w1, n1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.truncate(blocks.len() - 2);
            blocks.push((s1 + s2, w1 + w2, n1 + n2));
        }
    }
    let mut i = 0;
    for (sum, weight, items) in blocks {
        for _ in 0..items {
            centers[layer[i]] = offsets[i] + sum / weight;
            i += 1;
        }
    }
}

/// Each rank's band: its top and height (its tallest box); boxes hang from the top.
fn bands(layered: &Layered, sizes: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut heights = vec![0.0f64; layered.ranks];
    for (b, size) in sizes.iter().enumerate() {
        heights[layered.rank[b]] = heights[layered.rank[b]].max(size.1);
    }
    let mut top = 0.0;
    heights
        .into_iter()
        .map(|h| {
            let band = (top, h);
            top += h + GAP_Y;
            band
        })
        .collect()
}

/// What routing needs of the finished layout.
struct Geometry<'a> {
    layered: &'a Layered,
    centers: &'a [f64],
    bands: &'a [(f64, f64)],
    boxes: &'a [Rect],
    sides: &'a [Vec<usize>],
}

impl Geometry<'_> {
    fn routes(&self, links: &[Link], back: &[bool]) -> Vec<Route> {
        let (bottom_ports, top_ports) = self.ports(links, back);
        links
            .iter()
            .enumerate()
            .map(|(i, link)| {
                if link.from == link.to {
                    self.self_loop(i, link.from)
                } else if back[i] {
                    self.back_route(i, link)
                } else {
                    self.forward_route(i, bottom_ports[i], top_ports[i])
                }
            })
            .collect()
    }

    /// The x of each forward link's port on its source's bottom and its target's top: a
    /// box's ports spread over its side in the order of where their edges go next, so that
    /// edges fan out without crossing at the box.
    fn ports(&self, links: &[Link], back: &[bool]) -> (Vec<f64>, Vec<f64>) {
        let mut bottom = vec![0.0; links.len()];
        let mut top = vec![0.0; links.len()];
        for b in 0..self.boxes.len() {
            let forward = |i: &usize| !back[*i] && links[*i].from != links[*i].to;
            let mut outs: Vec<usize> = (0..links.len())
                .filter(|i| links[*i].from == b && forward(i))
                .collect();
            let mut ins: Vec<usize> = (0..links.len())
                .filter(|i| links[*i].to == b && forward(i))
                .collect();
            let chains = &self.layered.chains;
            outs.sort_by(|&x, &y| {
                self.centers[chains[x][1]].total_cmp(&self.centers[chains[y][1]])
            });
            ins.sort_by(|&x, &y| {
                let before = |i: usize| self.centers[chains[i][chains[i].len() - 2]];
                before(x).total_cmp(&before(y))
            });
            spread(&outs, self.boxes[b], &mut bottom);
            spread(&ins, self.boxes[b], &mut top);
        }
        (bottom, top)
    }

    fn band_bottom(&self, rank: usize) -> f64 {
        self.bands[rank].0 + self.bands[rank].1
    }

    /// Down from the source's bottom port, through the dummies' columns, into the target's
    /// top port.
    fn forward_route(&self, link: usize, from_x: f64, to_x: f64) -> Route {
        let chain = &self.layered.chains[link];
        let (source, target) = (chain[0], chain[chain.len() - 1]);
        let start = (from_x, self.boxes[source].bottom());
        let mut steps = Vec::new();
        let mut at = start;
        let below = self.band_bottom(self.layered.rank[source]);
        if below > at.1 {
            at = (from_x, below);
            steps.push(Step::Line(at));
        }
        for &item in &chain[1..chain.len() - 1] {
            let r = self.layered.rank[item];
            let x = self.centers[item];
            steps.push(bend(at, (x, self.bands[r].0)));
            at = (x, self.band_bottom(r));
            steps.push(Step::Line(at));
        }
        steps.push(bend(at, (to_x, self.boxes[target].y)));
        Route { start, steps }
    }

    /// Out of the source's right side into its lane, up through the dummies' columns, and
    /// into the target's right side from its lane.
    fn back_route(&self, link: usize, ends: &Link) -> Route {
        let chain = &self.layered.chains[link];
        let (from_lane, from_y) = self.side_port(ends.from, link);
        let (to_lane, to_y) = self.side_port(ends.to, link);
        let start = (self.boxes[ends.from].right(), from_y);
        let top = self.bands[self.layered.rank[ends.from]].0;
        let mut steps = vec![
            Step::Line((from_lane, from_y)),
            Step::Line((from_lane, top)),
        ];
        let mut at = (from_lane, top);
        for &item in chain[1..chain.len() - 1].iter().rev() {
            let r = self.layered.rank[item];
            let x = self.centers[item];
            steps.push(bend(at, (x, self.band_bottom(r))));
            at = (x, self.bands[r].0);
            steps.push(Step::Line(at));
        }
        steps.push(bend(
            at,
            (to_lane, self.band_bottom(self.layered.rank[ends.to])),
        ));
        steps.push(Step::Line((to_lane, to_y)));
        steps.push(Step::Line((self.boxes[ends.to].right(), to_y)));
        Route { start, steps }
    }

    /// A box's edge to itself: out of its right side and back in a little higher.
    fn self_loop(&self, link: usize, b: usize) -> Route {
        let (lane, y) = self.side_port(b, link);
        let right = self.boxes[b].right();
        let (low, high) = (y + SIDE_PORT_SPACING / 2.0, y - SIDE_PORT_SPACING / 2.0);
        Route {
            start: (right, low),
            steps: vec![
                Step::Line((lane, low)),
                Step::Line((lane, high)),
                Step::Line((right, high)),
            ],
        }
    }

    /// The lane x and port y of a loop link on a box's right side.
    fn side_port(&self, b: usize, link: usize) -> (f64, f64) {
        let k = self.sides[b].iter().position(|&l| l == link).unwrap_or(0);
        let n = self.sides[b].len() as f64;
        let r = self.boxes[b];
        let lane = r.right() + LANE * (k as f64 + 1.0) - LANE / 2.0;
        let y = r.y + r.h / 2.0 + (k as f64 - (n - 1.0) / 2.0) * SIDE_PORT_SPACING;
        (lane, y.clamp(r.y + 4.0, r.bottom() - 4.0))
    }
}

/// Ports for `links` (already in order) spread evenly about the middle of a box's width.
fn spread(links: &[usize], r: Rect, ports: &mut [f64]) {
    let n = links.len() as f64;
    let spacing = PORT_SPACING.min(r.w * 0.8 / n.max(1.0));
    for (k, &link) in links.iter().enumerate() {
        ports[link] = r.x + r.w / 2.0 + (k as f64 - (n - 1.0) / 2.0) * spacing;
    }
}

/// An S-curve between two points on the two sides of a gap between ranks; it stays within
/// the gap, and two such curves over one gap cross only if their ends are in opposite order.
fn bend(from: Point, to: Point) -> Step {
    let mid = (from.1 + to.1) / 2.0;
    Step::Curve((from.0, mid), (to.0, mid), to)
}
