//! Graph exports: Cytoscape.js `elements` JSON and Graphviz DOT.
//!
//! Both carry the same nodes, edges and properties, from [`EntityGraph::snapshot`], sorted so
//! that the same input always gives the same bytes.

use std::io::{self, Write};

use serde::Serialize;

use super::EntityGraph;

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Dot,
}

impl Format {
    /// The format a file name asks for by its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "dot" | "gv" => Some(Format::Dot),
            _ => None,
        }
    }
}

/// Writes the graph in `format`.
pub fn write(graph: &EntityGraph, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => write_json(graph, out),
        Format::Dot => write_dot(graph, out),
    }
}

/// Cytoscape.js elements: `{"elements":{"nodes":[{"data":{…}}],"edges":[{"data":{…}}]}}`,
/// written element by element (no JSON tree of the whole graph in memory).
pub fn write_json(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct NodeData<'a> {
        id: &'a str,
        label: &'a str,
        kind: &'a str,
        #[serde(flatten)]
        props: &'a std::collections::BTreeMap<&'static str, String>,
    }
    #[derive(Serialize)]
    struct EdgeData<'a> {
        id: String,
        source: &'a str,
        target: &'a str,
        kind: &'a str,
    }
    #[derive(Serialize)]
    struct Element<T> {
        data: T,
    }
    let (nodes, edges) = graph.snapshot();
    out.write_all(b"{\"elements\":{\"nodes\":[\n")?;
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        let data = NodeData {
            id: &n.id,
            label: &n.label,
            kind: n.kind,
            props: &n.props,
        };
        serde_json::to_writer(&mut *out, &Element { data })?;
    }
    out.write_all(b"\n],\"edges\":[\n")?;
    for (i, (s, t, k)) in edges.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        let data = EdgeData {
            id: format!("e{i}"),
            source: s,
            target: t,
            kind: k.as_str(),
        };
        serde_json::to_writer(&mut *out, &Element { data })?;
    }
    out.write_all(b"\n]}}\n")
}

fn dot_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn shape(kind: &str) -> &'static str {
    match kind {
        "instance" => "box",
        "instance_group" => "box3d",
        "principal" | "access_key" => "ellipse",
        "signal" => "note",
        "ip" | "domain" => "diamond",
        _ => "oval",
    }
}

/// Graphviz DOT. Each instance group is a cluster holding its member instances.
pub fn write_dot(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    let (nodes, edges) = graph.snapshot();
    writeln!(out, "digraph entities {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(out, "  node [fontsize=10];")?;
    let node_line = |n: &super::Node| {
        let mut attrs = vec![
            format!("label={}", dot_escape(&format!("{}\n{}", n.kind, n.label))),
            format!("kind={}", dot_escape(n.kind)),
            format!("shape={}", shape(n.kind)),
        ];
        for (k, v) in &n.props {
            attrs.push(format!("{k}={}", dot_escape(v)));
        }
        format!("{} [{}];", dot_escape(&n.id), attrs.join(", "))
    };
    // Instances (and group nodes) go inside their group's cluster.
    let groups: Vec<_> = graph.groups().collect();
    let mut cluster_of = std::collections::HashMap::new();
    for (i, (group, members)) in groups.iter().enumerate() {
        cluster_of.insert(super::group_node_id(group), i);
        for m in members.iter() {
            cluster_of.insert(format!("instance:{m}"), i);
        }
    }
    let mut clusters: Vec<Vec<&super::Node>> = vec![Vec::new(); groups.len()];
    let mut rest = Vec::new();
    for n in &nodes {
        match cluster_of.get(&n.id) {
            Some(&i) => clusters[i].push(n),
            None => rest.push(n),
        }
    }
    for (i, members) in clusters.iter().enumerate() {
        writeln!(out, "  subgraph cluster_{i} {{")?;
        writeln!(out, "    label={};", dot_escape(&groups[i].0.to_string()))?;
        writeln!(out, "    style=rounded;")?;
        for n in members {
            writeln!(out, "    {}", node_line(n))?;
        }
        writeln!(out, "  }}")?;
    }
    for n in rest {
        writeln!(out, "  {}", node_line(n))?;
    }
    for (s, t, k) in &edges {
        writeln!(
            out,
            "  {} -> {} [label={}, kind={}];",
            dot_escape(s),
            dot_escape(t),
            dot_escape(k.as_str()),
            dot_escape(k.as_str())
        )?;
    }
    writeln!(out, "}}")
}
