//! Where the report draws each entity of a sequence's neighbourhood: computed here, the same
//! every time, with no script and no layout library.
//!
//! Three columns. Left: actors (principals, access keys, IAM roles, accounts) above
//! endpoints (IPs, domains). Centre: instance groups as boxes, each group node heading its
//! members (the sequence's own group first), then instances of no group. Right: every other
//! entity (Auto Scaling group, launch template, stack, instance profile, AMI, VPC, subnet).
//! Relations then run between neighbouring columns, except actor–endpoint ones, which are
//! arcs on the outer side. Within a band a node sits as near as it can to the mean height of
//! its neighbours in the centre, so edges stay short and flat. A relation every shown member
//! of a group shares is drawn once, from the group.
//!
//! Each band and group shows a bounded number of nodes (those the sequence's signals name
//! first) and one "+N more" box for the rest, so a large neighbourhood stays readable.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::route::{Rect, place_label, route};
use crate::graph::EdgeKind;
use crate::graph::export::ExportGraph;

/// Height of a node box.
pub const NODE_H: f64 = 34.0;
const GAP_Y: f64 = 8.0;
/// Horizontal room between columns, for edges and their labels.
const COL_GAP: f64 = 150.0;
/// Room left and right of the columns, for the arcs drawn on the outer side.
pub const MARGIN_X: f64 = 90.0;
const TOP: f64 = 40.0;
const BAND_GAP: f64 = 44.0;
/// Width of one character of the 12px monospace labels (DejaVu Sans Mono is 7.22).
pub const CHAR_W: f64 = 7.3;
/// Width of one character of the 9.5px kind line and the 10px edge labels (sans-serif).
pub const SMALL_CHAR_W: f64 = 6.0;
/// Longest label shown whole; longer ones are shortened in the middle.
pub const MAX_LABEL: usize = 34;
const MIN_WIDTH: f64 = 150.0;
const CLUSTER_PAD: f64 = 10.0;
const INDENT: f64 = 16.0;

/// Nodes shown per band, per group, and groups shown.
pub const MAX_ACTORS: usize = 10;
pub const MAX_ENDPOINTS: usize = 10;
pub const MAX_OTHER: usize = 14;
pub const MAX_GROUPS: usize = 4;
pub const MAX_MEMBERS: usize = 8;
pub const MAX_UNGROUPED: usize = 8;

/// The bands nodes are drawn in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Band {
    Actors,
    Endpoints,
    Groups,
    Other,
}

impl Band {
    pub fn of(kind: &str) -> Band {
        match kind {
            "principal" | "access_key" | "iam_role" | "account" => Band::Actors,
            "ip" | "domain" => Band::Endpoints,
            "instance" | "instance_group" => Band::Groups,
            _ => Band::Other,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Band::Actors => "Actors",
            Band::Endpoints => "Endpoints",
            Band::Groups => "Instance groups",
            Band::Other => "Infrastructure",
        }
    }

    pub fn column(self) -> usize {
        match self {
            Band::Actors | Band::Endpoints => 0,
            Band::Groups => 1,
            Band::Other => 2,
        }
    }
}

/// What the layout needs besides the subgraph.
pub struct Input<'a> {
    pub graph: &'a ExportGraph<'a>,
    /// The node the sequence is keyed by (its group node).
    pub focus: &'a str,
    /// The member instance node ids its finding lists, in its order (those its signals name
    /// first); other members of the focus group are counted, not drawn.
    pub members: &'a [String],
    /// Entity node id → how many of the sequence's signals name it.
    pub named: &'a HashMap<String, usize>,
    /// (who a signal is about, an endpoint it names), once per signal.
    pub observed: &'a [(String, String)],
}

/// A drawn entity.
#[derive(Clone, Debug)]
pub struct Placed {
    pub id: String,
    pub kind: &'static str,
    /// The whole label (the tooltip).
    pub label: String,
    /// What fits in the box.
    pub text: String,
    /// The small line above the label: kind and a detail.
    pub caption: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    /// Signals of the sequence that name it.
    pub named: usize,
    /// A group node heading its members.
    pub header: bool,
    /// The node the sequence is keyed by.
    pub focus: bool,
}

/// A "+N more" box standing for nodes not drawn.
#[derive(Clone, Debug)]
pub struct More {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub count: usize,
    pub text: String,
}

/// The frame of one group.
#[derive(Clone, Debug)]
pub struct Frame {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub focus: bool,
}

/// A drawn relation.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Indices into [`Layout::nodes`].
    pub from: usize,
    pub to: usize,
    /// SVG path data.
    pub path: String,
    pub label: String,
    /// Where the label goes; None for a derived edge whose label found no free spot (its
    /// path still carries it as a tooltip).
    pub label_at: Option<(f64, f64)>,
    /// Derived from signals (an endpoint a signal names), not a relation of the graph.
    pub observed: bool,
}

/// A band's title.
#[derive(Clone, Debug)]
pub struct Title {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

/// The picture.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Placed>,
    pub more: Vec<More>,
    pub frames: Vec<Frame>,
    pub edges: Vec<Edge>,
    pub titles: Vec<Title>,
    /// Entities in the subgraph (drawn or not).
    pub entities: usize,
    /// Entities not drawn (counted in the "+N more" boxes).
    pub hidden: usize,
}

/// `s` in at most `max` characters, shortened in the middle (ids differ at both ends:
/// `web-instance-role/i-0aaa…` and `…:assumed-role/x/i-0aaa1`).
pub fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// A node's caption: its kind, with the detail that tells it apart.
fn caption(kind: &str, props: &crate::graph::Props) -> String {
    let k = kind.replace('_', " ");
    let detail = match kind {
        "instance" => props.get("instance_type"),
        "principal" => props.get("principal_type"),
        _ => None,
    };
    match detail {
        Some(d) => format!("{k} · {d}"),
        None => k,
    }
}

struct Entity<'g> {
    id: &'g str,
    kind: &'static str,
    label: &'g str,
    props: &'g crate::graph::Props,
    named: usize,
    degree: usize,
}

impl Entity<'_> {
    /// Drawn first when not all fit: named by more signals, then more connected, then by id.
    fn priority(&self) -> (std::cmp::Reverse<usize>, std::cmp::Reverse<usize>, &str) {
        (
            std::cmp::Reverse(self.named),
            std::cmp::Reverse(self.degree),
            self.id,
        )
    }
}

/// A group's frame in the centre: its node, the members shown, how many are not.
struct Cluster {
    group: usize,
    members: Vec<usize>,
    hidden: usize,
    /// Members of the sequence's own group that it does not list: they did not run while it
    /// did (ended before its first signal, launched after its last), so they are counted, not
    /// drawn, as its finding leaves them out.
    idle: usize,
}

/// What is drawn where, before positions.
struct Choice {
    clusters: Vec<Cluster>,
    hidden_groups: usize,
    hidden_group_instances: usize,
    ungrouped: Vec<usize>,
    hidden_ungrouped: usize,
    /// Per side band: the nodes shown and how many are not.
    side: BTreeMap<Band, (Vec<usize>, usize)>,
}

/// The subgraph's entities and relations, by index.
struct Scene<'a, 'g> {
    input: &'a Input<'g>,
    entities: Vec<Entity<'g>>,
    index: HashMap<&'g str, usize>,
    /// Relations between entities (signal nodes are the timeline's).
    relations: Vec<(usize, usize, EdgeKind)>,
    neighbours: HashMap<usize, Vec<usize>>,
}

/// Lays out the subgraph.
pub fn layout(input: &Input<'_>) -> Layout {
    let scene = Scene::new(input);
    let choice = scene.choose();
    let mut out = Layout {
        entities: scene.entities.len(),
        ..Layout::default()
    };
    let widths = scene.widths(&choice);
    let xs = [
        MARGIN_X,
        MARGIN_X + widths[0] + COL_GAP + CLUSTER_PAD,
        MARGIN_X + widths[0] + COL_GAP + CLUSTER_PAD + widths[1] + CLUSTER_PAD + COL_GAP,
    ];
    let (shown, hidden) = &choice.side[&Band::Other];
    out.width = if shown.is_empty() && *hidden == 0 {
        xs[1] + widths[1] + CLUSTER_PAD + MARGIN_X
    } else {
        xs[2] + widths[2] + MARGIN_X
    };
    let centre_bottom = scene.place_centre(&mut out, &choice, xs[1], widths[1]);
    let side_bottom =
        scene.place_sides(&mut out, &choice, [(xs[0], widths[0]), (xs[2], widths[2])]);
    out.height = centre_bottom.max(side_bottom) + 24.0;
    out.hidden = out.entities - out.nodes.len();
    scene.edges(&mut out, &choice);
    out
}

impl<'a, 'g> Scene<'a, 'g> {
    fn new(input: &'a Input<'g>) -> Scene<'a, 'g> {
        let g = input.graph;
        let mut entities: Vec<Entity<'g>> = g
            .nodes
            .iter()
            .filter(|n| n.kind != "signal")
            .map(|n| Entity {
                id: n.id.as_str(),
                kind: n.kind,
                label: n.label.as_str(),
                props: &n.props,
                named: input.named.get(n.id.as_str()).copied().unwrap_or(0),
                degree: 0,
            })
            .collect();
        let index: HashMap<&'g str, usize> = entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let relations: Vec<(usize, usize, EdgeKind)> = g
            .edges
            .iter()
            .filter_map(|(s, t, k)| Some((*index.get(s.as_ref())?, *index.get(t.as_ref())?, *k)))
            .collect();
        let mut neighbours: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(s, t, _) in &relations {
            entities[s].degree += 1;
            entities[t].degree += 1;
            neighbours.entry(s).or_default().push(t);
            neighbours.entry(t).or_default().push(s);
        }
        Scene {
            input,
            entities,
            index,
            relations,
            neighbours,
        }
    }

    fn by_priority(&self, v: &mut [usize]) {
        v.sort_by(|&a, &b| {
            self.entities[a]
                .priority()
                .cmp(&self.entities[b].priority())
        });
    }

    /// Which nodes are drawn. Centre: groups (the sequence's first) with their members (in
    /// the sequence's order), then instances of no group. Sides: first what the signals name
    /// or what relates to a drawn instance or group (a node related only to what is not
    /// drawn would float), then by priority.
    fn choose(&self) -> Choice {
        let e = &self.entities;
        let mut members_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut grouped: HashSet<usize> = HashSet::new();
        for &(s, t, k) in &self.relations {
            if k == EdgeKind::InGroup {
                members_of.entry(t).or_default().push(s);
                grouped.insert(s);
            }
        }
        let named_members = |g: usize| -> usize {
            members_of
                .get(&g)
                .map_or(0, |m| m.iter().map(|&i| e[i].named).sum())
        };
        let mut groups: Vec<usize> = (0..e.len())
            .filter(|&i| e[i].kind == "instance_group")
            .collect();
        groups.sort_by_key(|&i| {
            (
                e[i].id != self.input.focus,
                std::cmp::Reverse(named_members(i)),
                e[i].id,
            )
        });
        let rank: HashMap<&str, usize> = self
            .input
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_str(), i))
            .collect();
        let mut not_running: HashSet<usize> = HashSet::new();
        let clusters: Vec<Cluster> = groups
            .iter()
            .take(MAX_GROUPS)
            .map(|&group| {
                let mut members = members_of.get(&group).cloned().unwrap_or_default();
                let mut idle = 0;
                if e[group].id == self.input.focus {
                    let before = members.len();
                    members.retain(|&i| {
                        let listed = rank.contains_key(e[i].id);
                        if !listed {
                            not_running.insert(i);
                        }
                        listed
                    });
                    idle = before - members.len();
                }
                members.sort_by(|&a, &b| {
                    let r = |i: usize| rank.get(e[i].id).copied().unwrap_or(usize::MAX);
                    r(a).cmp(&r(b))
                        .then_with(|| e[a].priority().cmp(&e[b].priority()))
                });
                let hidden = members.len().saturating_sub(MAX_MEMBERS);
                members.truncate(MAX_MEMBERS);
                Cluster {
                    group,
                    members,
                    hidden,
                    idle,
                }
            })
            .collect();
        let hidden = &groups[clusters.len()..];
        let hidden_group_instances = hidden
            .iter()
            .map(|g| members_of.get(g).map_or(0, Vec::len))
            .sum();
        let mut ungrouped: Vec<usize> = (0..e.len())
            .filter(|&i| e[i].kind == "instance" && !grouped.contains(&i))
            .collect();
        self.by_priority(&mut ungrouped);
        let hidden_ungrouped = ungrouped.len().saturating_sub(MAX_UNGROUPED);
        ungrouped.truncate(MAX_UNGROUPED);

        let centre: HashSet<usize> = clusters
            .iter()
            .flat_map(|c| std::iter::once(c.group).chain(c.members.iter().copied()))
            .chain(ungrouped.iter().copied())
            .collect();
        let relevant = |i: usize| {
            e[i].named > 0
                || self
                    .neighbours
                    .get(&i)
                    .is_some_and(|n| n.iter().any(|x| centre.contains(x)))
        };
        let mut side = BTreeMap::new();
        for (band, max) in [
            (Band::Actors, MAX_ACTORS),
            (Band::Endpoints, MAX_ENDPOINTS),
            (Band::Other, MAX_OTHER),
        ] {
            // Not what relates to members the sequence does not list and to nothing drawn in
            // the centre (their subnets, addresses, sessions, launchers), unless a signal
            // names it: it would float beside the frame that leaves them out.
            let theirs = |i: usize| {
                e[i].named == 0
                    && self.neighbours.get(&i).is_some_and(|n| {
                        n.iter().any(|x| not_running.contains(x))
                            && !n.iter().any(|x| centre.contains(x))
                    })
            };
            let mut v: Vec<usize> = (0..e.len())
                .filter(|&i| Band::of(e[i].kind) == band && !theirs(i))
                .collect();
            let theirs = (0..e.len())
                .filter(|&i| Band::of(e[i].kind) == band && theirs(i))
                .count();
            v.sort_by(|&a, &b| {
                (!relevant(a), e[a].priority()).cmp(&(!relevant(b), e[b].priority()))
            });
            let hidden = v.len().saturating_sub(max) + theirs;
            v.truncate(max);
            side.insert(band, (v, hidden));
        }
        Choice {
            clusters,
            hidden_groups: hidden.len(),
            hidden_group_instances,
            ungrouped,
            hidden_ungrouped,
            side,
        }
    }

    /// A node's label (shortened) and caption; a group node heading its frame (`header`) says
    /// its key kind and size, and for the sequence's own group how many of its members ran
    /// while the sequence did when not all did.
    fn texts(&self, i: usize, header: Option<&Cluster>) -> (String, String) {
        let e = &self.entities[i];
        let Some(k) = header else {
            return (shorten(e.label, MAX_LABEL), caption(e.kind, e.props));
        };
        let (key_kind, name) = e.label.split_once('/').unwrap_or(("group", e.label));
        let members = e.props.get("members").map_or(String::new(), |m| {
            let plural = if m == "1" { "" } else { "s" };
            if k.idle > 0 {
                format!(" · {} of {m} member{plural}", k.members.len() + k.hidden)
            } else {
                format!(" · {m} member{plural}")
            }
        });
        let kind = key_kind.replace('_', " ");
        let cap = if kind.ends_with("group") {
            format!("{kind}{members}")
        } else {
            format!("{kind} group{members}")
        };
        (shorten(name, MAX_LABEL), cap)
    }

    /// The width a column needs for its texts and signal-count badges.
    fn width<'c>(&self, items: impl Iterator<Item = (usize, Option<&'c Cluster>)>) -> f64 {
        items
            .map(|(i, header)| {
                let (t, c) = self.texts(i, header);
                let w = t.chars().count() as f64 * CHAR_W;
                let cw = c.chars().count() as f64 * SMALL_CHAR_W;
                let named = self.entities[i].named;
                let badge = if named > 0 {
                    20.0 + 6.5 * named.to_string().len() as f64
                } else {
                    0.0
                };
                w.max(cw) + 20.0 + badge
            })
            .fold(MIN_WIDTH, f64::max)
    }

    /// Widths of the left, centre and right columns.
    fn widths(&self, c: &Choice) -> [f64; 3] {
        let shown = |b: Band| c.side[&b].0.iter().map(|&i| (i, None));
        let centre = c
            .clusters
            .iter()
            .flat_map(|k| {
                std::iter::once((k.group, Some(k))).chain(k.members.iter().map(|&i| (i, None)))
            })
            .chain(c.ungrouped.iter().map(|&i| (i, None)));
        [
            self.width(shown(Band::Actors).chain(shown(Band::Endpoints))),
            self.width(centre) + INDENT,
            self.width(shown(Band::Other)),
        ]
    }

    fn place(
        &self,
        out: &mut Layout,
        i: usize,
        (x, y, w): (f64, f64, f64),
        header: Option<&Cluster>,
    ) {
        let (text, caption) = self.texts(i, header);
        let header = header.is_some();
        let e = &self.entities[i];
        out.nodes.push(Placed {
            id: e.id.to_string(),
            kind: e.kind,
            label: e.label.to_string(),
            text,
            caption,
            x,
            y,
            w,
            named: e.named,
            header,
            focus: e.id == self.input.focus,
        });
    }

    /// The centre column, top to bottom; returns its bottom.
    fn place_centre(&self, out: &mut Layout, c: &Choice, x: f64, w: f64) -> f64 {
        let mut y = TOP;
        if !c.clusters.is_empty() {
            out.titles.push(Title {
                x: x - CLUSTER_PAD,
                y: y - 14.0,
                text: Band::Groups.title().into(),
            });
        }
        let row = NODE_H + GAP_Y;
        for k in &c.clusters {
            let top = y;
            y += CLUSTER_PAD;
            self.place(out, k.group, (x, y, w), Some(k));
            y += row;
            for &m in &k.members {
                self.place(out, m, (x + INDENT, y, w - INDENT), None);
                y += row;
            }
            if k.hidden > 0 {
                out.more.push(More {
                    x: x + INDENT,
                    y,
                    w: w - INDENT,
                    count: k.hidden,
                    text: format!("+{} more member{}", k.hidden, plural(k.hidden)),
                });
                y += row;
            }
            if k.idle > 0 {
                out.more.push(More {
                    x: x + INDENT,
                    y,
                    w: w - INDENT,
                    count: k.idle,
                    text: format!("+{} not running then", k.idle),
                });
                y += row;
            }
            out.frames.push(Frame {
                x: x - CLUSTER_PAD,
                y: top,
                w: w + 2.0 * CLUSTER_PAD,
                h: y - GAP_Y + CLUSTER_PAD - top,
                focus: self.entities[k.group].id == self.input.focus,
            });
            y += CLUSTER_PAD + 14.0;
        }
        if c.hidden_groups > 0 {
            let (n, m) = (c.hidden_groups, c.hidden_group_instances);
            out.more.push(More {
                x,
                y,
                w,
                count: n + m,
                text: format!("+{n} more group{} ({m} instance{})", plural(n), plural(m)),
            });
            y += row + 14.0;
        }
        if !c.ungrouped.is_empty() || c.hidden_ungrouped > 0 {
            y += 18.0;
            out.titles.push(Title {
                x,
                y: y - 14.0,
                text: "Instances of no group".into(),
            });
            for &i in &c.ungrouped {
                self.place(out, i, (x, y, w), None);
                y += row;
            }
            if c.hidden_ungrouped > 0 {
                let n = c.hidden_ungrouped;
                out.more.push(More {
                    x,
                    y,
                    w,
                    count: n,
                    text: format!("+{n} more instance{}", plural(n)),
                });
                y += row;
            }
        }
        y
    }

    /// Where each side node would like to be: the mean height of its neighbours in the
    /// centre; a node with none there (an access key, a role) follows its neighbours.
    fn barycentres(&self, out: &Layout, c: &Choice) -> HashMap<usize, f64> {
        let centre_y: HashMap<usize, f64> = out
            .nodes
            .iter()
            .map(|n| (self.index[n.id.as_str()], n.y + NODE_H / 2.0))
            .collect();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let around = |i: usize, at: &HashMap<usize, f64>| -> Vec<f64> {
            self.neighbours
                .get(&i)
                .into_iter()
                .flatten()
                .filter_map(|n| at.get(n).copied())
                .collect()
        };
        let side: Vec<usize> = c
            .side
            .values()
            .flat_map(|(v, _)| v.iter().copied())
            .collect();
        let mut bary: HashMap<usize, f64> = HashMap::new();
        for &i in &side {
            if let Some(m) = mean(&around(i, &centre_y)) {
                bary.insert(i, m);
            }
        }
        for &i in &side {
            if !bary.contains_key(&i)
                && let Some(m) = mean(&around(i, &bary))
            {
                bary.insert(i, m + 0.5);
            }
        }
        bary
    }

    /// The side columns, each node as near as it can to its barycentre; returns the bottom.
    fn place_sides(&self, out: &mut Layout, c: &Choice, columns: [(f64, f64); 2]) -> f64 {
        let bary = self.barycentres(out, c);
        let mut bottom: f64 = 0.0;
        let bands = [vec![Band::Actors, Band::Endpoints], vec![Band::Other]];
        for ((x, w), bands) in columns.into_iter().zip(bands) {
            let mut cursor = TOP;
            for band in bands {
                let (nodes, hidden) = &c.side[&band];
                if nodes.is_empty() && *hidden == 0 {
                    continue;
                }
                let mut nodes = nodes.clone();
                nodes.sort_by(|&a, &b| {
                    let at = |i: usize| bary.get(&i).copied().unwrap_or(f64::MAX);
                    at(a).total_cmp(&at(b)).then_with(|| {
                        self.entities[a]
                            .priority()
                            .cmp(&self.entities[b].priority())
                    })
                });
                // The title sits right above the band's first node.
                let first = nodes
                    .first()
                    .and_then(|i| bary.get(i))
                    .map_or(cursor, |b| (b - NODE_H / 2.0).max(cursor));
                out.titles.push(Title {
                    x,
                    y: first - 14.0,
                    text: band.title().into(),
                });
                for i in nodes {
                    let y = bary
                        .get(&i)
                        .map_or(cursor, |b| b - NODE_H / 2.0)
                        .max(cursor);
                    self.place(out, i, (x, y, w), None);
                    cursor = y + NODE_H + GAP_Y;
                }
                if *hidden > 0 {
                    out.more.push(More {
                        x,
                        y: cursor,
                        w,
                        count: *hidden,
                        text: format!("+{hidden} more"),
                    });
                    cursor += NODE_H + GAP_Y;
                }
                cursor += BAND_GAP;
            }
            bottom = bottom.max(cursor - BAND_GAP);
        }
        bottom
    }
    /// The drawn relations: the graph's (those every shown member of a group shares, once
    /// from the group), then the endpoints signals name (from whom the signal is about,
    /// unless already related), each routed and labelled.
    fn edges(&self, out: &mut Layout, c: &Choice) {
        let drawn: HashMap<usize, usize> = out
            .nodes
            .iter()
            .enumerate()
            .map(|(n, p)| (self.index[p.id.as_str()], n))
            .collect();
        let mut wanted = self.relations_drawn(&drawn, c);
        let mut observed: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for (subject, endpoint) in self.input.observed {
            let (Some(&s), Some(&t)) = (
                self.index.get(subject.as_str()),
                self.index.get(endpoint.as_str()),
            ) else {
                continue;
            };
            if s != t && drawn.contains_key(&s) && drawn.contains_key(&t) {
                *observed.entry((s, t)).or_default() += 1;
            }
        }
        for ((s, t), n) in observed {
            if wanted.contains_key(&(s, t)) || wanted.contains_key(&(t, s)) {
                continue;
            }
            let label = match n {
                1 => "observed".to_string(),
                n => format!("observed ×{n}"),
            };
            wanted.insert((s, t), (label, true));
        }

        let rect = |x, y, w| Rect { x, y, w, h: NODE_H };
        let mut taken: Vec<Rect> = out
            .nodes
            .iter()
            .map(|n| rect(n.x, n.y, n.w))
            .chain(out.more.iter().map(|m| rect(m.x, m.y, m.w)))
            .collect();
        for ((s, t), (label, observed)) in wanted {
            let (from, to) = (drawn[&s], drawn[&t]);
            let curve = route(&out.nodes[from], &out.nodes[to]);
            let label_at = place_label(&curve, &label, &mut taken, !observed, out.width);
            out.edges.push(Edge {
                from,
                to,
                path: curve.path(),
                label,
                label_at,
                observed,
            });
        }
    }

    /// The graph's relations between drawn nodes, (from, to) → (label, false); one from the
    /// group for a relation all its shown members (two or more) share with one node.
    fn relations_drawn(
        &self,
        drawn: &HashMap<usize, usize>,
        c: &Choice,
    ) -> BTreeMap<(usize, usize), (String, bool)> {
        let name = |k: EdgeKind| k.as_str().replace('_', " ");
        let mut cluster_of: HashMap<usize, usize> = HashMap::new();
        for k in &c.clusters {
            for &m in &k.members {
                cluster_of.insert(m, k.group);
            }
        }
        // Relations of shown members, by group, other end, kind and direction.
        let mut shared: BTreeMap<(usize, usize, EdgeKind, bool), Vec<usize>> = BTreeMap::new();
        let mut plain: Vec<(usize, usize, EdgeKind)> = Vec::new();
        for &(s, t, k) in &self.relations {
            if k == EdgeKind::InGroup || !drawn.contains_key(&s) || !drawn.contains_key(&t) {
                continue;
            }
            match (cluster_of.get(&s), cluster_of.get(&t)) {
                (Some(&g), None) => shared.entry((g, t, k, true)).or_default().push(s),
                (None, Some(&g)) => shared.entry((g, s, k, false)).or_default().push(t),
                _ => plain.push((s, t, k)),
            }
        }
        let shown: HashMap<usize, usize> = c
            .clusters
            .iter()
            .map(|k| (k.group, k.members.len()))
            .collect();
        let mut wanted: BTreeMap<(usize, usize), (String, bool)> = BTreeMap::new();
        for ((g, other, k, outward), members) in shared {
            if members.len() >= 2 && members.len() == shown[&g] {
                let key = if outward { (g, other) } else { (other, g) };
                wanted.insert(key, (format!("{} ×{}", name(k), members.len()), false));
            } else {
                for m in members {
                    let (s, t) = if outward { (m, other) } else { (other, m) };
                    plain.push((s, t, k));
                }
            }
        }
        for (s, t, k) in plain {
            wanted
                .entry((s, t))
                .and_modify(|(l, _)| {
                    l.push_str(", ");
                    l.push_str(&name(k));
                })
                .or_insert((name(k), false));
        }
        wanted
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;
    use std::borrow::Cow;

    fn node(id: &str, kind: &'static str) -> Cow<'static, Node> {
        Cow::Owned(Node {
            id: id.to_string(),
            kind,
            label: id.split_once(':').map_or(id, |(_, l)| l).to_string(),
            props: crate::graph::Props::new(),
        })
    }

    /// A group of `members` instances, each with its own subnet and public IP, all launched
    /// by one principal, plus `more_groups` other groups of one instance each.
    fn neighbourhood(members: usize, more_groups: usize) -> ExportGraph<'static> {
        let group = "instance_group:111122223333/auto_scaling_group/web-asg";
        let mut nodes = vec![
            node(group, "instance_group"),
            node("principal:AROAEXAMPLE:i-0000000000000001", "principal"),
            node("vpc:vpc-1", "vpc"),
        ];
        let mut edges: Vec<crate::graph::SnapshotEdge<'static>> = Vec::new();
        let e = |s: &str, t: &str, k| (Cow::Owned(s.to_string()), Cow::Owned(t.to_string()), k);
        for i in 0..members {
            let inst = format!("instance:i-{i:017}");
            nodes.push(node(&inst, "instance"));
            nodes.push(node(&format!("subnet:subnet-{i}"), "subnet"));
            nodes.push(node(&format!("ip:192.0.2.{}", i % 250), "ip"));
            edges.push(e(&inst, group, EdgeKind::InGroup));
            edges.push(e(&inst, "vpc:vpc-1", EdgeKind::InVpc));
            edges.push(e(&inst, &format!("subnet:subnet-{i}"), EdgeKind::InSubnet));
            edges.push(e(
                &inst,
                &format!("ip:192.0.2.{}", i % 250),
                EdgeKind::HasIp,
            ));
            edges.push(e(
                &inst,
                "principal:AROAEXAMPLE:i-0000000000000001",
                EdgeKind::LaunchedBy,
            ));
        }
        for j in 0..more_groups {
            let g = format!("instance_group:111122223333/ami/ami-{j}");
            let inst = format!("instance:i-9{j:016}");
            nodes.push(node(&g, "instance_group"));
            nodes.push(node(&inst, "instance"));
            edges.push(e(&inst, &g, EdgeKind::InGroup));
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes.dedup_by(|a, b| a.id == b.id);
        ExportGraph {
            nodes,
            edges,
            node_props: BTreeMap::new(),
        }
    }

    fn run(g: &ExportGraph<'_>, members: &[String]) -> Layout {
        let named = HashMap::new();
        layout(&Input {
            graph: g,
            focus: "instance_group:111122223333/auto_scaling_group/web-asg",
            members,
            named: &named,
            observed: &[],
        })
    }

    #[test]
    fn a_small_neighbourhood_is_drawn_whole_without_overlaps() {
        let g = neighbourhood(3, 1);
        let l = run(&g, &listed(3));
        assert_eq!(l.entities, g.nodes.len());
        assert_eq!(l.nodes.len(), l.entities, "all drawn");
        assert_eq!(l.hidden, 0);
        assert!(l.more.is_empty());
        assert_no_overlaps(&l);
        // The group heads its frame, first; members under it, indented.
        let header = &l.nodes[0];
        assert!(header.header && header.focus, "{header:?}");
        assert_eq!(l.frames.len(), 2);
        assert!(l.frames[0].focus);
        // Relations every member shares are drawn once, from the group.
        let mut from_group: Vec<&str> = l
            .edges
            .iter()
            .filter(|e| e.from == 0)
            .map(|e| e.label.as_str())
            .collect();
        from_group.sort();
        assert_eq!(from_group, ["in vpc ×3", "launched by ×3"], "{:?}", l.edges);
        assert_eq!(l.edges.iter().filter(|e| e.label == "in subnet").count(), 3);
    }

    #[test]
    fn a_large_neighbourhood_is_capped_with_more_boxes_that_add_up() {
        let g = neighbourhood(200, 9);
        let members = listed(200);
        let l = run(&g, &members);
        let bound = MAX_ACTORS + MAX_ENDPOINTS + MAX_OTHER + MAX_GROUPS * (1 + MAX_MEMBERS);
        assert!(l.nodes.len() <= bound, "{} drawn", l.nodes.len());
        assert_eq!(l.nodes.len() + l.hidden, l.entities);
        let more: usize = l.more.iter().map(|m| m.count).sum();
        assert_eq!(more, l.hidden, "{:?}", l.more);
        assert!(l.height < 1400.0, "height {}", l.height);
        assert!(l.width < 1400.0, "width {}", l.width);
        // The sequence's order decides which members show.
        let shown: Vec<&str> = l
            .nodes
            .iter()
            .filter(|n| n.kind == "instance")
            .take(3)
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(shown, &members[..3]);
        assert_no_overlaps(&l);
    }

    /// The node ids of the first `n` members of [`neighbourhood`]'s group.
    fn listed(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("instance:i-{i:017}")).collect()
    }

    #[test]
    fn members_the_finding_does_not_list_are_counted_not_drawn() {
        // Five members; the sequence lists the last two (the others ended before it or were
        // launched after it), so the frame shows those, as its finding's resources do. Each
        // member's role session acted as it, and is a session of the group's role.
        let mut g = neighbourhood(5, 0);
        let role = "iam_role:arn:aws:iam::111122223333:role/web";
        g.nodes.push(node(role, "iam_role"));
        for i in 0..5 {
            let session = format!("principal:AROAEXAMPLE:i-{i:017}");
            g.nodes.push(node(&session, "principal"));
            let e = |s: &str, t: &str, k| (Cow::Owned(s.to_string()), Cow::Owned(t.to_string()), k);
            g.edges.push(e(
                &session,
                &format!("instance:i-{i:017}"),
                EdgeKind::ActedAs,
            ));
            g.edges.push(e(&session, role, EdgeKind::SessionOf));
        }
        g.nodes.sort_by(|a, b| a.id.cmp(&b.id));
        for n in &mut g.nodes {
            if n.kind == "instance_group" {
                n.to_mut().props.insert("members", "5");
            }
        }
        let members: Vec<String> = listed(5).split_off(3);
        let l = run(&g, &members);
        let drawn: Vec<&str> = l
            .nodes
            .iter()
            .filter(|n| n.kind == "instance")
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(drawn, members);
        let idle: Vec<&More> = l
            .more
            .iter()
            .filter(|m| m.text.contains("not running"))
            .collect();
        assert_eq!(idle.len(), 1, "{:?}", l.more);
        assert_eq!(idle[0].count, 3);
        assert_eq!(idle[0].text, "+3 not running then");
        let header = l.nodes.iter().find(|n| n.header && n.focus).unwrap();
        assert!(
            header.caption.ends_with(" · 2 of 5 members"),
            "{}",
            header.caption
        );
        assert_eq!(l.nodes.len() + l.hidden, l.entities);
        let more: usize = l.more.iter().map(|m| m.count).sum();
        assert_eq!(more, l.hidden, "{:?}", l.more);
        // Their subnets, addresses and sessions relate to nothing drawn in the centre: not
        // pulled in beside it; the listed members' sessions and the role they share are.
        let ids: Vec<&str> = l.nodes.iter().map(|n| n.id.as_str()).collect();
        for gone in [
            "subnet:subnet-0",
            "ip:192.0.2.1",
            "principal:AROAEXAMPLE:i-00000000000000002",
        ] {
            assert!(!ids.contains(&gone), "{gone}: {ids:?}");
        }
        for kept in [
            "subnet:subnet-3",
            "principal:AROAEXAMPLE:i-00000000000000004",
            role,
        ] {
            assert!(ids.contains(&kept), "{kept}: {ids:?}");
        }
        assert_no_overlaps(&l);
    }

    #[test]
    fn the_same_input_gives_the_same_layout() {
        let g = neighbourhood(12, 3);
        let a = format!("{:?}", run(&g, &listed(12)));
        let b = format!("{:?}", run(&g, &listed(12)));
        assert_eq!(a, b);
    }

    #[test]
    fn long_labels_are_shortened_in_the_middle() {
        for (s, max, want) in [
            ("short", 10, "short"),
            (
                "web-instance-role/i-0aaaaaaaaaaaaaaa1",
                20,
                "web-insta…aaaaaaaaa1",
            ),
            ("abcdef", 5, "ab…ef"),
        ] {
            let got = shorten(s, max);
            assert_eq!(got, want, "{s}");
            assert!(got.chars().count() <= max, "{s}");
        }
    }

    fn assert_no_overlaps(l: &Layout) {
        let rects: Vec<(String, Rect)> = l
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id.clone(),
                    Rect {
                        x: n.x,
                        y: n.y,
                        w: n.w,
                        h: NODE_H,
                    },
                )
            })
            .chain(l.more.iter().map(|m| {
                (
                    m.text.clone(),
                    Rect {
                        x: m.x,
                        y: m.y,
                        w: m.w,
                        h: NODE_H,
                    },
                )
            }))
            .collect();
        for (i, (a, ra)) in rects.iter().enumerate() {
            assert!(ra.x >= 0.0 && ra.x + ra.w <= l.width, "{a} outside");
            assert!(ra.y >= 0.0 && ra.y + ra.h <= l.height, "{a} outside");
            for (b, rb) in &rects[i + 1..] {
                assert!(!ra.overlaps(rb), "{a} overlaps {b}");
            }
        }
    }
}
