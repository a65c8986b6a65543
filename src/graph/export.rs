//! Graph exports: Cytoscape.js `elements` JSON, Graphviz DOT, GraphML and a Neo4j Cypher
//! script.
//!
//! Every format carries the same nodes, edges and properties: [`model::ExportGraph`] takes them
//! from [`EntityGraph::snapshot`] (sorted, so that the same input always gives the same bytes)
//! and types the properties once (`vcpus` and `members` are integers, `severity` a double,
//! `finding` a boolean, the rest strings). Each writer is only its format's syntax, and writes
//! element by element (no document tree of the whole graph in memory).
//!
//! [`write_model`] writes any [`ExportGraph`], such as one sequence's neighbourhood
//! ([`ExportGraph::neighbourhood`]).

use std::io::{self, Write};

use super::EntityGraph;

mod cypher;
mod dot;
mod graphml;
mod json;
pub mod model;

pub use model::{ExportGraph, Neighbourhoods, PropType, Value};

/// Export formats. (The command line's names for them are in `cli.rs`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Cytoscape.js elements JSON (also what networkx's `cytoscape_graph` reads).
    Json,
    /// Graphviz DOT; each instance group is a cluster.
    Dot,
    /// GraphML with typed keys and TinkerPop `labelV`/`labelE` labels.
    Graphml,
    /// A Neo4j Cypher script of idempotent `MERGE`s.
    Cypher,
}

/// The file name endings [`Format::from_path`] knows, for messages.
pub const EXTENSIONS: &str = ".json, .dot (or .gv), .graphml, .cypher or .cql";

impl Format {
    /// The format a file name asks for by its extension (case-insensitive).
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "dot" | "gv" => Some(Format::Dot),
            "graphml" => Some(Format::Graphml),
            "cypher" | "cql" => Some(Format::Cypher),
            _ => None,
        }
    }
}

/// Writes the graph in `format`.
pub fn write(graph: &EntityGraph, format: Format, out: &mut dyn Write) -> io::Result<()> {
    write_model(&ExportGraph::new(graph), format, out)
}

/// Writes an export model (the whole graph or a part of it) in `format`.
pub fn write_model(g: &ExportGraph<'_>, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => json::write(g, out),
        Format::Dot => dot::write(g, out),
        Format::Graphml => graphml::write(g, out),
        Format::Cypher => cypher::write(g, out),
    }
}

/// Cytoscape.js elements JSON: `{"data":{},"directed":true,"multigraph":false,
/// "elements":{"nodes":[{"data":{…}}],"edges":[{"data":{…}}]}}`.
pub fn write_json(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    write(graph, Format::Json, out)
}

/// Graphviz DOT. Each instance group is a cluster holding its member instances.
pub fn write_dot(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    write(graph, Format::Dot, out)
}

/// GraphML (`http://graphml.graphdrawing.org/xmlns`).
pub fn write_graphml(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    write(graph, Format::Graphml, out)
}

/// A Neo4j Cypher script.
pub fn write_cypher(graph: &EntityGraph, out: &mut dyn Write) -> io::Result<()> {
    write(graph, Format::Cypher, out)
}
