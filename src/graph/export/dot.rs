//! Graphviz DOT. Each instance group is a cluster holding its group node and member
//! instances; every node carries its properties as attributes (`kind="instance"`,
//! `vcpus="2"`…), every edge its `id` (`e0`…, as in the other formats) and `kind`.
//!
//! Values are DOT quoted strings: `"` and `\` are escaped with a backslash and a newline is
//! `\n` (Graphviz's escString, so labels show it as a line break); other control characters
//! are left out, as DOT has no way to write them.

use std::collections::HashMap;
use std::io::{self, Write};

use super::model::ExportGraph;
use crate::graph::Node;

fn quote(s: &str) -> String {
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

fn node_line(g: &ExportGraph<'_>, n: &Node) -> String {
    let mut attrs = vec![
        format!("label={}", quote(&format!("{}\n{}", n.kind, n.label))),
        format!("kind={}", quote(n.kind)),
        format!("shape={}", shape(n.kind)),
    ];
    for (k, v) in g.props(n) {
        attrs.push(format!("{k}={}", quote(&v.text())));
    }
    format!("{} [{}];", quote(&n.id), attrs.join(", "))
}

pub(super) fn write(g: &ExportGraph<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "digraph entities {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(out, "  node [fontsize=10];")?;
    // Instances (and group nodes) go inside their group's cluster.
    let groups = g.groups();
    let mut cluster_of: HashMap<&str, usize> = HashMap::new();
    for (i, (group, members)) in groups.iter().enumerate() {
        cluster_of.insert(group.id.as_str(), i);
        for m in members {
            cluster_of.insert(m, i);
        }
    }
    let mut clusters: Vec<Vec<&Node>> = vec![Vec::new(); groups.len()];
    let mut rest = Vec::new();
    for n in &g.nodes {
        match cluster_of.get(n.id.as_str()) {
            Some(&i) => clusters[i].push(n),
            None => rest.push(n),
        }
    }
    for (i, members) in clusters.iter().enumerate() {
        writeln!(out, "  subgraph cluster_{i} {{")?;
        writeln!(out, "    label={};", quote(&groups[i].0.label))?;
        writeln!(out, "    style=rounded;")?;
        for n in members {
            writeln!(out, "    {}", node_line(g, n))?;
        }
        writeln!(out, "  }}")?;
    }
    for n in rest {
        writeln!(out, "  {}", node_line(g, n))?;
    }
    for (i, (s, t, k)) in g.edges.iter().enumerate() {
        writeln!(
            out,
            "  {} -> {} [id={}, label={}, kind={}];",
            quote(s),
            quote(t),
            quote(&ExportGraph::edge_id(i)),
            quote(k.as_str()),
            quote(k.as_str())
        )?;
    }
    writeln!(out, "}}")
}
