//! One pass of the tool, whichever command runs it: `correlate --state` over files and
//! `run` in AWS mode both call [`run_once`] once the state is taken (a local file under its
//! lock, or the S3 object claimed with a lease).
//!
//! The pass: the [`Source`] reads from the state's checkpoints; the input is correlated with
//! the state (the pipeline); [`incremental::advance`] gives the findings to write and the
//! state after the run; the [`Sink`] writes them; the state is saved last, and then the source
//! is told whether it was ([`Source::finish`]: a queue deletes its messages only then). So a
//! run that fails before the save (a sink that fails after its retries, an output that cannot
//! be written) leaves the previous state, and the next run writes what this one did not.
//! Findings the sink
//! did not write (Security Hub refused them) are forgotten in the saved state and kept as they
//! were to be written, so the next run sends them again, even when their sequence is behind
//! its horizon by then. A store with a lease stops renewing it before the final save (see
//! `aws::run`), so no renewal races it.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::graph::{Detail, EntityGraph};
use crate::incremental::{self, Changes};
use crate::pipeline::{self, CorrelateRun, Input};
use crate::rules::RuleSet;
use crate::sinks::asff::{self, Writer};
use crate::state::{KeptFinding, State, StateStore};

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

    /// The end of the pass: `saved` says whether the state after it was saved (after every
    /// finding was written). A source that must acknowledge what it read (a queue's messages)
    /// does so only then; otherwise it lets the next run read it again.
    fn finish(&mut self, saved: bool) {
        let _ = saved;
    }
}

/// Where the findings of a run go.
pub trait Sink: Sync {
    /// What the run's graph keeps: a node per signal for a sink that draws them (exports,
    /// reports); labels and properties for one that exports the graph or reads it in
    /// [`Sink::write`]; for any other, only what matching and findings read.
    fn graph_detail(&self) -> Detail {
        Detail::Entities
    }

    /// Called with the finished graph on a thread of its own while the rules are matched.
    fn on_graph(&self, graph: &EntityGraph) {
        let _ = graph;
    }

    /// Whether [`Sink::write`] reads the run's graph (a report, a sequence's neighbourhood).
    /// When it does not, the graph, the largest part of a run's memory, is freed once the
    /// rules have matched and the sink has had it in [`Sink::on_graph`], before any finding is
    /// made, so that the graph and the findings are never in memory together.
    fn reads_graph(&self) -> bool {
        true
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
        findings: &mut Vec<KeptFinding>,
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
    pub findings: Vec<KeptFinding>,
    /// With a state: the state after the run.
    pub next: Option<State>,
    /// Where the state was saved (None in a dry run or without a state).
    pub saved: Option<String>,
}

impl Outcome {
    /// The findings the sink was given.
    pub fn written(&self) -> &[KeptFinding] {
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
    let (mut run, ()) = pipeline::correlate_with(
        source.input(),
        settings,
        rules.clone(),
        shared.graph_detail(),
        prior,
        // Without a state the signals matched are not read again (a sequence holds its own
        // copy of what its finding shows): each is freed once matched.
        prior.is_some(),
        |graph| shared.on_graph(graph),
    );
    source.decoded(&run, prior);
    let writer = sink.writer(&run)?;
    if !sink.reads_graph() {
        // Freed here (see `Sink::reads_graph`), not at the end of the run.
        run.graph = EntityGraph::new(Vec::new(), false);
        return_freed_memory();
    }
    // Without a state every finding is written; with one, only new and changed ones.
    let (mut next, mut changes) = match prior {
        Some(p) => {
            let (next, changes) = incremental::advance(Some(p), &run, rules, settings, &writer);
            (Some(next), Some(changes))
        }
        None => (None, None),
    };
    // What an earlier run could not write goes again, unless this run has a newer version.
    if let (Some(p), Some(c)) = (prior, &mut changes) {
        let again = p.still_unsent(&c.write);
        if !again.is_empty() {
            tracing::info!(
                findings = again.len(),
                "writing again the findings the sink did not take last time"
            );
            c.write.extend(again);
        }
    }
    let mut findings = match &changes {
        Some(_) => Vec::new(),
        None => asff::finding_texts(&run.sequences, rules, &writer),
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
        let given = changes.as_ref().map_or(&[][..], |c| &c.write[..]);
        next.forget_written(&not_written, given);
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
    source.finish(saved.is_some());
    Ok(Outcome {
        run,
        changes,
        findings,
        next,
        saved,
    })
}

/// Hands the memory freed so far back to the system, before the findings and the next state
/// are built. The binary's allocator (mimalloc) keeps freed pages for reuse a while, and the
/// pages the reading threads held until they ended are not reused soon: on the heavy benchmark
/// mix, after the graph is freed, this lowered the stateless run's peak RSS by about 30 MiB
/// and a slice's by about 50 MiB (both now at the findings and the state, not the graph).
/// Where mimalloc is not the global allocator (library tests), it collects mimalloc's own
/// empty heaps and changes nothing else.
fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointer and only walks mimalloc's own heaps and pages.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Files and folders given on the command line (`correlate`): read as they are, with no
/// checkpoint (the state's horizon leaves out what earlier runs matched).
pub struct Files<'a>(pub &'a [std::path::PathBuf]);

impl Source for Files<'_> {
    fn input(&self) -> Input<'_> {
        Input::Paths(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Checkpoint, FileStore};

    fn settings() -> Settings {
        crate::config::Config::default()
            .validate()
            .expect("the defaults are valid")
    }

    fn rules() -> Arc<RuleSet> {
        Arc::new(RuleSet::builtin().expect("shipped rules load"))
    }

    /// Two attacks' records, each a finding.
    fn paths() -> Vec<std::path::PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
        vec![
            root.join("compromised-instance-group/positive"),
            root.join("instance-credentials-launch-compute/positive"),
        ]
    }

    /// Files, and a checkpoint saved with the state.
    struct Checkpointed<'a>(Files<'a>);

    impl Source for Checkpointed<'_> {
        fn input(&self) -> Input<'_> {
            self.0.input()
        }

        fn checkpoint(&mut self, next: &mut State) {
            next.checkpoints.insert(
                "test/source".into(),
                Checkpoint {
                    cursor: Some(42),
                    ..Checkpoint::default()
                },
            );
        }
    }

    /// A sink that records what it is given, refuses the ids in `refuse`, or fails whole.
    #[derive(Default)]
    struct Recorder<'a> {
        store: Option<&'a FileStore>,
        fail: bool,
        refuse_all: bool,
        given: Vec<String>,
        /// Whether the state file existed while the findings were written.
        state_there: Option<bool>,
        /// Whether it reads the graph when it writes, and the entities it found there.
        reads_graph: bool,
        graph_entities: Option<usize>,
        /// What the graph keeps.
        detail: Detail,
        /// The signals matched that the run still held when it wrote.
        selected: Option<usize>,
    }

    impl Sink for Recorder<'_> {
        fn reads_graph(&self) -> bool {
            self.reads_graph
        }

        fn graph_detail(&self) -> Detail {
            self.detail
        }

        fn writer(&mut self, _run: &CorrelateRun) -> anyhow::Result<Writer> {
            Ok(Writer::default())
        }

        fn write(
            &mut self,
            findings: &mut Vec<KeptFinding>,
            run: &CorrelateRun,
            _dry_run: bool,
        ) -> anyhow::Result<Vec<String>> {
            self.state_there = self.store.map(|s| s.path.exists());
            self.graph_entities = Some(run.graph.entity_count());
            self.selected = Some(run.selected.len());
            if self.fail {
                anyhow::bail!("the sink is down");
            }
            let ids: Vec<String> = findings
                .iter()
                .map(|f| f.id().unwrap_or_default())
                .collect();
            self.given = ids.clone();
            Ok(if self.refuse_all { ids } else { Vec::new() })
        }
    }

    fn pass(store: &FileStore, sink: &mut Recorder<'_>, dry_run: bool) -> anyhow::Result<Outcome> {
        pass_over(&paths(), store, sink, dry_run)
    }

    fn pass_over(
        paths: &[std::path::PathBuf],
        store: &FileStore,
        sink: &mut Recorder<'_>,
        dry_run: bool,
    ) -> anyhow::Result<Outcome> {
        let prior = store.load().expect("state loads").unwrap_or_default();
        run_once(
            Some(Taken {
                store,
                prior: &prior,
            }),
            &mut Checkpointed(Files(paths)),
            sink,
            &settings(),
            &rules(),
            Options { dry_run },
        )
    }

    #[test]
    fn the_graph_and_the_signals_are_freed_before_the_findings_unless_read_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut outcomes = Vec::new();
        // A sink that reads the graph keeps its labels and properties; one that does not, only
        // what matching and findings read.
        for (reads_graph, detail) in [(true, Detail::Entities), (false, Detail::Matching)] {
            let mut sink = Recorder {
                reads_graph,
                detail,
                ..Recorder::default()
            };
            let stateless = run_once(
                None,
                &mut Files(&paths()),
                &mut sink,
                &settings(),
                &rules(),
                Options { dry_run: false },
            )
            .unwrap();
            let seen = sink.graph_entities.expect("written");
            if reads_graph {
                assert!(seen > 0, "a sink that reads the graph gets it whole");
            } else {
                assert_eq!(seen, 0, "freed before the findings were made");
            }
            assert_eq!(
                sink.selected,
                Some(0),
                "without a state, the signals are freed"
            );
            let store = FileStore::new(dir.path().join(format!("state-{reads_graph}.json")));
            let mut with_state = Recorder {
                reads_graph,
                detail,
                ..Recorder::default()
            };
            pass(&store, &mut with_state, false).unwrap();
            assert!(
                with_state.selected.is_some_and(|n| n > 0),
                "with a state, the signals are kept for it"
            );
            let saved = store.load().unwrap().expect("saved");
            outcomes.push((
                stateless.run.summary.to_text(),
                stateless.findings,
                sink.given,
                with_state.given,
                saved.sequences,
                saved.signals.len(),
                saved.graph.len(),
            ));
        }
        assert_eq!(outcomes[0].1.len(), 2);
        assert_eq!(
            outcomes[0], outcomes[1],
            "the same summary, findings and state whatever the graph kept, and whether or not it was kept"
        );
    }

    #[test]
    fn issue_15_the_state_is_saved_last_and_never_when_the_sink_fails_or_in_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let mut failing = Recorder {
            store: Some(&store),
            fail: true,
            ..Recorder::default()
        };
        let e = pass(&store, &mut failing, false)
            .err()
            .expect("the sink failed");
        assert!(e.to_string().contains("the sink is down"), "{e:#}");
        assert!(!store.path.exists(), "a failed sink saves nothing");

        let mut dry = Recorder::default();
        let out = pass(&store, &mut dry, true).unwrap();
        assert_eq!(dry.given.len(), 2, "a dry run gives the sink the findings");
        assert!(
            out.saved.is_none() && !store.path.exists(),
            "a dry run saves nothing"
        );

        let mut sink = Recorder {
            store: Some(&store),
            ..Recorder::default()
        };
        let out = pass(&store, &mut sink, false).unwrap();
        assert_eq!(sink.given.len(), 2);
        assert_eq!(sink.state_there, Some(false), "saved after the findings");
        assert_eq!(out.saved, Some(store.describe()));
        let saved = store.load().unwrap().expect("saved");
        assert_eq!(
            saved.checkpoints["test/source"].cursor,
            Some(42),
            "the source's checkpoint is saved with the state"
        );
        assert!(
            !saved.sequences.is_empty(),
            "the written findings are recorded"
        );
        // The same input again: nothing new to write.
        let mut again = Recorder::default();
        pass(&store, &mut again, false).unwrap();
        assert!(again.given.is_empty(), "{:?}", again.given);
    }

    #[test]
    fn issue_15_findings_the_sink_refused_are_sent_again_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        // One attack, whose signals the state replays.
        let paths = &paths()[1..];
        let mut refusing = Recorder {
            refuse_all: true,
            ..Recorder::default()
        };
        pass_over(paths, &store, &mut refusing, false).unwrap();
        assert_eq!(refusing.given.len(), 1);
        assert!(
            store.path.exists(),
            "the run is saved, without the refused findings"
        );
        let mut next = Recorder::default();
        pass_over(paths, &store, &mut next, false).unwrap();
        assert_eq!(next.given, refusing.given, "sent again");
        let mut last = Recorder::default();
        pass_over(paths, &store, &mut last, false).unwrap();
        assert!(last.given.is_empty(), "{:?}", last.given);
    }

    #[test]
    fn findings_refused_behind_the_new_horizon_are_sent_again() {
        // The first attack (2025-05-03) ends days before the second: after a run over both,
        // the state's horizon is past the first one's records, so no later run matches it
        // again. Refused, it must still be sent by the next run, as it was to be written.
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let mut refusing = Recorder {
            refuse_all: true,
            ..Recorder::default()
        };
        let first = pass(&store, &mut refusing, false).unwrap();
        assert_eq!(refusing.given.len(), 2);
        let saved = store.load().unwrap().expect("saved");
        assert_eq!(saved.unsent.len(), 2, "kept to send again");
        let horizon = saved.horizon.expect("a horizon");
        let early = first
            .run
            .sequences
            .iter()
            .filter(|s| s.last_seen < horizon)
            .count();
        assert!(early > 0, "one attack is behind the horizon");

        let mut next = Recorder::default();
        pass(&store, &mut next, false).unwrap();
        let (mut got, mut want) = (next.given.clone(), refusing.given.clone());
        got.sort();
        want.sort();
        assert_eq!(got, want, "both sent again");
        assert!(store.load().unwrap().expect("saved").unsent.is_empty());
        let mut last = Recorder::default();
        pass(&store, &mut last, false).unwrap();
        assert!(last.given.is_empty(), "{:?}", last.given);
    }

    #[test]
    fn issue_15_without_a_state_every_finding_is_written_and_nothing_saved() {
        let paths = paths();
        let mut sink = Recorder::default();
        for _ in 0..2 {
            let out = run_once(
                None,
                &mut Files(&paths),
                &mut sink,
                &settings(),
                &rules(),
                Options::default(),
            )
            .unwrap();
            assert_eq!(sink.given.len(), 2);
            assert_eq!(out.written().len(), 2);
            assert!(out.next.is_none() && out.saved.is_none() && out.changes.is_none());
        }
    }
}
