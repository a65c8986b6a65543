//! What every export carries, whatever its syntax: the nodes and edges of
//! [`EntityGraph::snapshot`] (sorted by id; edges by source, target, kind) and the type of each
//! node property.
//!
//! A node has an `id`, a `label` and a `kind`, then its properties; an edge has an `id`
//! (`e0`, `e1`… in snapshot order), a source, a target and a `kind`. Properties are stored as
//! strings by the graph; here each name gets one type for the whole export:
//! [`PropType::declared`], unless some value of it does not parse as that type, when the
//! property is a string everywhere (so that a typed column never holds a stray string).
//!
//! [`ExportGraph::neighbourhood`] keeps only what is around a few seed nodes (one sequence's
//! signals, group and members): every export format writes that subgraph the same way.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::graph::{EdgeKind, EntityGraph, Node, SnapshotEdge};

/// Names a node has beside its properties; a property of one of these names is not exported
/// (`value` is the node key networkx's Cytoscape reader needs in the JSON).
pub const RESERVED: [&str; 4] = ["id", "label", "kind", "value"];

/// The type of a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PropType {
    String,
    Int,
    Double,
    Boolean,
}

impl PropType {
    /// The type a property name is declared with: counts are integers, a severity is a
    /// double, a flag is a boolean; everything else a string.
    pub fn declared(name: &str) -> PropType {
        match name {
            "vcpus" | "members" => PropType::Int,
            "severity" => PropType::Double,
            "finding" => PropType::Boolean,
            _ => PropType::String,
        }
    }

    /// The GraphML `attr.type` (also the name used in messages).
    pub fn as_str(self) -> &'static str {
        match self {
            PropType::String => "string",
            PropType::Int => "int",
            PropType::Double => "double",
            PropType::Boolean => "boolean",
        }
    }

    /// `text` as a value of this type, if it is one.
    pub fn parse(self, text: &str) -> Option<Value<'_>> {
        match self {
            PropType::String => Some(Value::Str(text)),
            PropType::Int => text.parse().ok().map(Value::Int),
            PropType::Double => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Value::Double),
            PropType::Boolean => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}

/// A typed property value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl Value<'_> {
    /// The value as text, the same in every format that writes text: integers in decimal,
    /// doubles as JSON writes them (`8.0`, `5.5`), booleans `true`/`false`.
    pub fn text(&self) -> Cow<'_, str> {
        match *self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Double(d) => {
                Cow::Owned(serde_json::to_string(&d).unwrap_or_else(|_| d.to_string()))
            }
            Value::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        }
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(v),
            Value::Double(v) => s.serialize_f64(v),
            Value::Bool(v) => s.serialize_bool(v),
        }
    }
}

/// The graph as every export sees it.
pub struct ExportGraph<'a> {
    /// Sorted by id.
    pub nodes: Vec<Cow<'a, Node>>,
    /// Sorted by source, target, kind; edge `i` has the id `e{i}`.
    pub edges: Vec<SnapshotEdge<'a>>,
    /// Every property name some node has, with its type, sorted by name.
    pub node_props: BTreeMap<&'static str, PropType>,
}

impl<'a> ExportGraph<'a> {
    /// The whole graph.
    pub fn new(graph: &'a EntityGraph) -> ExportGraph<'a> {
        let (nodes, edges) = graph.snapshot();
        ExportGraph::from_parts(nodes, edges)
    }

    /// The neighbourhood of `seeds` (node ids): see [`Neighbourhoods::around`].
    pub fn neighbourhood<S: AsRef<str>>(graph: &'a EntityGraph, seeds: &[S]) -> ExportGraph<'a> {
        Neighbourhoods::new(graph).around(seeds)
    }

    /// The same graph without signal nodes and their edges.
    pub fn without_signals(self) -> ExportGraph<'a> {
        let nodes: Vec<Cow<'a, Node>> = self
            .nodes
            .into_iter()
            .filter(|n| n.kind != "signal")
            .collect();
        let ids: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let edges: Vec<SnapshotEdge<'a>> = self
            .edges
            .into_iter()
            .filter(|(s, t, _)| ids.contains(s.as_ref()) && ids.contains(t.as_ref()))
            .collect();
        ExportGraph::from_parts(nodes, edges)
    }

    /// Types the properties of sorted nodes and edges.
    fn from_parts(nodes: Vec<Cow<'a, Node>>, edges: Vec<SnapshotEdge<'a>>) -> ExportGraph<'a> {
        let mut node_props: BTreeMap<&'static str, PropType> = BTreeMap::new();
        for n in &nodes {
            for (name, value) in n.props.iter() {
                if RESERVED.contains(&name) {
                    continue;
                }
                let t = node_props
                    .entry(name)
                    .or_insert_with(|| PropType::declared(name));
                if t.parse(value).is_none() {
                    *t = PropType::String;
                }
            }
        }
        ExportGraph {
            nodes,
            edges,
            node_props,
        }
    }

    /// A node's properties (reserved names left out), typed, sorted by name.
    pub fn props<'n>(&self, node: &'n Node) -> impl Iterator<Item = (&'static str, Value<'n>)> {
        node.props.iter().filter_map(|(name, text)| {
            let t = *self.node_props.get(name)?;
            Some((name, t.parse(text).unwrap_or(Value::Str(text))))
        })
    }

    /// The id of the `i`th edge.
    pub fn edge_id(i: usize) -> String {
        format!("e{i}")
    }

    /// The instance groups, for formats that draw them: each group node with the ids of its
    /// member instances (from the `in_group` edges), in node order.
    pub fn groups(&self) -> Vec<(&Node, Vec<&str>)> {
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (s, t, k) in &self.edges {
            if *k == EdgeKind::InGroup {
                members.entry(t.as_ref()).or_default().push(s.as_ref());
            }
        }
        self.nodes
            .iter()
            .filter(|n| n.kind == "instance_group")
            .map(|n| {
                let m = members.remove(n.id.as_str()).unwrap_or_default();
                (n.as_ref(), m)
            })
            .collect()
    }
}

/// The whole graph, indexed to cut out the neighbourhoods of many seed sets (one per sequence
/// of a report) without scanning all of it for each.
pub struct Neighbourhoods<'a> {
    /// Sorted by id, as in the snapshot.
    nodes: Vec<Cow<'a, Node>>,
    edges: Vec<SnapshotEdge<'a>>,
    /// Per edge: the indices of its source and target nodes.
    ends: Vec<(usize, usize)>,
    /// Per node: the edges leaving it and those entering it.
    outgoing: Vec<Vec<usize>>,
    incoming: Vec<Vec<usize>>,
}

impl<'a> Neighbourhoods<'a> {
    pub fn new(graph: &'a EntityGraph) -> Neighbourhoods<'a> {
        let (nodes, edges) = graph.snapshot();
        let mut outgoing = vec![Vec::new(); nodes.len()];
        let mut incoming = vec![Vec::new(); nodes.len()];
        let mut ends = Vec::with_capacity(edges.len());
        let pos = |id: &str| nodes.binary_search_by(|n| n.id.as_str().cmp(id)).ok();
        for (i, (s, t, _)) in edges.iter().enumerate() {
            // Both ends are nodes of the snapshot.
            let (a, b) = (pos(s).unwrap_or(0), pos(t).unwrap_or(0));
            outgoing[a].push(i);
            incoming[b].push(i);
            ends.push((a, b));
        }
        Neighbourhoods {
            nodes,
            edges,
            ends,
            outgoing,
            incoming,
        }
    }

    /// The neighbourhood of `seeds` (node ids): the seeds, the entities the seed signals are
    /// observed on, and one hop of entities around all of those; with every edge between
    /// the nodes kept. Signal nodes come only from the seeds: a busy role session or
    /// instance makes thousands of calls that would bury the ones that matter. Seeds the
    /// graph does not have are ignored.
    pub fn around<S: AsRef<str>>(&self, seeds: &[S]) -> ExportGraph<'a> {
        let signal = |i: usize| self.nodes[i].kind == "signal";
        let mut core: BTreeSet<usize> = seeds
            .iter()
            .filter_map(|s| {
                self.nodes
                    .binary_search_by(|n| n.id.as_str().cmp(s.as_ref()))
                    .ok()
            })
            .collect();
        let named: Vec<usize> = core
            .iter()
            .filter(|&&i| signal(i))
            .flat_map(|&i| &self.outgoing[i])
            .filter(|&&e| self.edges[e].2 == EdgeKind::ObservedOn)
            .map(|&e| self.ends[e].1)
            .collect();
        core.extend(named);
        let mut keep = core.clone();
        for &i in &core {
            let next = self.outgoing[i].iter().map(|&e| self.ends[e].1);
            let prev = self.incoming[i].iter().map(|&e| self.ends[e].0);
            keep.extend(next.chain(prev).filter(|&n| !signal(n)));
        }
        let mut edges: Vec<usize> = keep
            .iter()
            .flat_map(|&i| &self.outgoing[i])
            .copied()
            .filter(|&e| keep.contains(&self.ends[e].1))
            .collect();
        edges.sort_unstable();
        ExportGraph::from_parts(
            keep.iter().map(|&i| self.nodes[i].clone()).collect(),
            edges.into_iter().map(|e| self.edges[e].clone()).collect(),
        )
    }
}
