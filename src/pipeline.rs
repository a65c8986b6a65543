//! One run end to end: read inputs, decode, build the graph, count everything.

use std::path::PathBuf;

use crate::config::Settings;
use crate::graph::EntityGraph;
use crate::sources::file::{self, Event};
use crate::summary::Summary;

/// The result of reading inputs into a graph.
pub struct GraphRun {
    pub graph: EntityGraph,
    pub summary: Summary,
}

/// Reads `paths` (files and folders) and builds the entity graph.
pub fn build_graph(paths: &[PathBuf], settings: &Settings, keep_signals: bool) -> GraphRun {
    let mut graph = EntityGraph::new(settings.group_precedence.clone(), keep_signals);
    let mut summary = Summary::default();
    let (files, problems) = file::collect_files(paths);
    for p in &problems {
        summary.problem(p);
    }
    tracing::info!(files = files.len(), "reading inputs");
    file::read_files(&files, &settings.read, &mut |e| match e {
        Event::Signals(batch) => {
            for (kind, signal) in batch {
                summary.record(kind);
                summary.added(graph.add_signal(&signal));
            }
        }
        Event::Problem(p) => summary.problem(&p),
        Event::FileDone(_, stats) => summary.file_done(&stats),
    });
    summary.graph(&graph);
    GraphRun { graph, summary }
}
