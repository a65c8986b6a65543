//! One pass of the tool, whichever command runs it: `correlate --state` over files and
//! `run` in AWS mode both call [`run_once`] once the state is taken (a local file under its
//! lock, or the S3 object claimed with a lease).
//!
//! The pass: the [`Source`] reads from the state's checkpoints; the input is correlated with
//! the state (the pipeline); [`incremental::advance`] gives the findings to write and the
//! state after the run; the [`Sink`] writes them; the state is saved last. So a run that fails
//! before the save (a sink that fails after its retries, an output that cannot be written)
//! leaves the previous state, and the next run writes what this one did not. Findings the sink
//! did not write (Security Hub refused them) are forgotten in the saved state, so the next run
//! sends them again. A store with a lease stops renewing it before the final save (see
//! `aws::run`), so no renewal races it.

use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

use crate::config::Settings;
use crate::graph::EntityGraph;
use crate::incremental::{self, Changes};
use crate::pipeline::{self, CorrelateRun, Input};
use crate::rules::RuleSet;
use crate::sinks::asff::{self, Writer};
use crate::state::{State, StateStore};

/// What a run reads: files and folders, or what AWS mode's sources poll.
pub trait Source {
    /// Reads what is new since the checkpoints of `prior` (None: the run keeps no state).
    ///
    /// # Errors
    /// A read that failed after its retries: the run stops and saves nothing.
    fn read(&mut self, prior: Option<&State>) -> anyhow::Result<()> {
        let _ = prior;
        Ok(())
    }

    /// The input read, for the pipeline.
    fn input(&self) -> Input<'_>;

    /// Once the input is correlated: what each part of it decoded to (for logs and reports).
    fn decoded(&mut self, run: &CorrelateRun, prior: Option<&State>) {
        let _ = (run, prior);
    }

    /// Moves the checkpoints of the state to save forward, past what was read.
    fn checkpoint(&mut self, next: &mut State) {
        let _ = next;
    }
}

/// Where the findings of a run go.
pub trait Sink: Sync {
    /// Whether the graph keeps a node per signal (exports and reports draw them).
    fn keeps_signal_nodes(&self) -> bool {
        false
    }

    /// Called with the finished graph on a thread of its own while the rules are matched.
    fn on_graph(&self, graph: &EntityGraph) {
        let _ = graph;
    }

    /// Who writes the findings (account, region, partition), asked once the run is
    /// correlated and before any finding is made.
    ///
    /// # Errors
    /// The run cannot go on (nothing is saved); a [`Usage`] error is the caller's to report.
    fn writer(&mut self, run: &CorrelateRun) -> anyhow::Result<Writer>;

    /// Writes `findings` (new and changed ones with a state, every one without), or in a dry
    /// run what a dry run writes. Returns the ids of the findings that were not written, which
    /// the saved state forgets so that the next run sends them again.
    ///
    /// # Errors
    /// A write that failed: the run stops and saves nothing.
    fn write(
        &mut self,
        findings: &mut Vec<Value>,
        run: &CorrelateRun,
        dry_run: bool,
    ) -> anyhow::Result<Vec<String>>;
}

/// An error of the command's use (a sequence that is not there), not of the run: the caller
/// reports the message and exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The state a run has taken: where it is saved, and what was in it.
pub struct Taken<'a> {
    pub store: &'a dyn StateStore,
    pub prior: &'a State,
}

/// How the pass runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Save no state (sinks decide what a dry run writes).
    pub dry_run: bool,
}

/// What one pass did.
pub struct Outcome {
    pub run: CorrelateRun,
    /// With a state: what changed since it (the findings written are in `write`).
    pub changes: Option<Changes>,
    /// Without a state: every finding of the run, as written.
    pub findings: Vec<Value>,
    /// With a state: the state after the run.
    pub next: Option<State>,
    /// Where the state was saved (None in a dry run or without a state).
    pub saved: Option<String>,
}

impl Outcome {
    /// The findings the sink was given.
    pub fn written(&self) -> &[Value] {
        match &self.changes {
            Some(c) => &c.write,
            None => &self.findings,
        }
    }
}

/// Runs one pass: read → correlate → advance → write → save, the state last.
///
/// # Errors
/// A source, the sink or the save failed; nothing is saved then (or, when the save itself
/// failed, the previous state is unchanged).
pub fn run_once(
    state: Option<Taken<'_>>,
    source: &mut dyn Source,
    sink: &mut dyn Sink,
    settings: &Settings,
    rules: &Arc<RuleSet>,
    opts: Options,
) -> anyhow::Result<Outcome> {
    let prior = state.as_ref().map(|t| t.prior);
    source.read(prior)?;
    let shared: &dyn Sink = &*sink;
    let (run, ()) = pipeline::correlate_with(
        source.input(),
        settings,
        rules.clone(),
        shared.keeps_signal_nodes(),
        prior,
        |graph| shared.on_graph(graph),
    );
    source.decoded(&run, prior);
    let writer = sink.writer(&run)?;
    // Without a state every finding is written; with one, only new and changed ones.
    let (mut next, mut changes) = match prior {
        Some(p) => {
            let (next, changes) = incremental::advance(Some(p), &run, rules, settings, &writer);
            (Some(next), Some(changes))
        }
        None => (None, None),
    };
    let mut findings = match &changes {
        Some(_) => Vec::new(),
        None => asff::findings(&run.sequences, rules, &writer),
    };
    let not_written = sink.write(
        match &mut changes {
            Some(c) => &mut c.write,
            None => &mut findings,
        },
        &run,
        opts.dry_run,
    )?;
    let mut saved = None;
    if let (Some(next), Some(taken)) = (&mut next, &state) {
        next.forget_written(&not_written);
        source.checkpoint(next);
        next.lease = None;
        // Last, after every output is written.
        if !opts.dry_run {
            taken
                .store
                .save(next)
                .context("saving state (the previous state is unchanged)")?;
            saved = Some(taken.store.describe());
        }
    }
    Ok(Outcome {
        run,
        changes,
        findings,
        next,
        saved,
    })
}

/// Files and folders given on the command line (`correlate`): read as they are, with no
/// checkpoint (the state's horizon leaves out what earlier runs matched).
pub struct Files<'a>(pub &'a [std::path::PathBuf]);

impl Source for Files<'_> {
    fn input(&self) -> Input<'_> {
        Input::Paths(self.0)
    }
}
