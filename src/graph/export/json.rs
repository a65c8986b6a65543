//! Cytoscape.js elements JSON:
//! `{"data":{},"directed":true,"multigraph":false,"elements":{"nodes":[{"data":{…}}],
//! "edges":[{"data":{…}}]}}`, one element per line.
//!
//! Cytoscape.js reads `elements` (and `data`); `directed`, `multigraph` and each node's
//! `value` (its id again) are what networkx's `cytoscape_graph` needs. The graph never has two
//! edges between the same two nodes (each pair of node kinds has one edge kind), so it is not
//! a multigraph.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::SerializeMap;

use super::model::ExportGraph;
use crate::graph::Node;

struct NodeData<'g, 'n> {
    graph: &'g ExportGraph<'g>,
    node: &'n Node,
}

impl Serialize for NodeData<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.node;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &n.id)?;
        m.serialize_entry("value", &n.id)?;
        m.serialize_entry("label", &n.label)?;
        m.serialize_entry("kind", n.kind)?;
        for (name, value) in self.graph.props(n) {
            m.serialize_entry(name, &value)?;
        }
        m.end()
    }
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

pub(super) fn write(g: &ExportGraph<'_>, out: &mut dyn Write) -> io::Result<()> {
    // Elements are serialised into a local buffer (serde makes many small writes; through
    // `dyn Write` each would be a virtual call) and handed on in large blocks.
    const BLOCK: usize = 1 << 16;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + 4096);
    buf.extend_from_slice(
        b"{\"data\":{},\"directed\":true,\"multigraph\":false,\"elements\":{\"nodes\":[\n",
    );
    for (i, n) in g.nodes.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        let data = NodeData { graph: g, node: n };
        serde_json::to_writer(&mut buf, &Element { data })?;
        if buf.len() >= BLOCK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"\n],\"edges\":[\n");
    for (i, (s, t, k)) in g.edges.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        let data = EdgeData {
            id: ExportGraph::edge_id(i),
            source: s,
            target: t,
            kind: k.as_str(),
        };
        serde_json::to_writer(&mut buf, &Element { data })?;
        if buf.len() >= BLOCK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"\n]}}\n");
    out.write_all(&buf)
}
