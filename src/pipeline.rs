//! One run end to end: read inputs, decode, build the graph, match rules, count everything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Settings;
use crate::graph::EntityGraph;
use crate::matcher::{MatchStats, Matcher, Sequence};
use crate::normalize::{self, Decoded};
use crate::rules::RuleSet;
use crate::signal::Signal;
use crate::sources::file::{self, Event, Keep};
use crate::state::State;
use crate::summary::Summary;
use crate::time::Millis;

/// The result of reading inputs into a graph.
pub struct GraphRun {
    pub graph: EntityGraph,
    pub summary: Summary,
}

/// Reads `paths` (files and folders) and builds the entity graph.
pub fn build_graph(paths: &[PathBuf], settings: &Settings, keep_signals: bool) -> GraphRun {
    let mut graph = EntityGraph::new(settings.group_precedence.clone(), keep_signals);
    let mut summary = Summary::default();
    read(
        paths,
        settings,
        &file::keep_all,
        &mut summary,
        &mut |s, _, summary| {
            summary.added(graph.add_signal(&s));
        },
    );
    summary.graph(&graph);
    GraphRun { graph, summary }
}

/// The result of correlating inputs.
pub struct CorrelateRun {
    pub graph: EntityGraph,
    pub summary: Summary,
    /// Every sequence found, of finding rules and weak-signal rules alike.
    pub sequences: Vec<Sequence>,
    pub matching: MatchStats,
    /// The signals matched (replayed ones from the state first), in matching order.
    pub selected: Vec<Arc<Signal>>,
    /// What this run's records told the graph that no selected signal says (only kept when
    /// a state is given: the next run needs it).
    pub statements: Vec<Signal>,
    /// Selected records older than the state's horizon: matched by an earlier run already.
    pub before_horizon: u64,
    /// Per source: records used and the newest event time among them.
    pub sources: BTreeMap<&'static str, (u64, Millis)>,
}

/// A hash of what the graph learns from a signal that no rule selects, or None when it
/// learns nothing: the instances it describes (every field), the other entities it names, and
/// the instance-session relation of its actor. Not the access key: every call of an instance
/// session may carry a new one, and nothing groups by an instance session's key.
pub fn graph_statement(s: &Signal) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let session = s.actor.as_ref().filter(|a| a.instance_id.is_some());
    if s.instances.is_empty() && s.resources.is_empty() && session.is_none() {
        return None;
    }
    let mut h = rustc_hash::FxHasher::default();
    (&s.account, &s.region, &s.resources).hash(&mut h);
    for i in &s.instances {
        (
            &i.instance_id,
            &i.auto_scaling_group,
            &i.launch_template,
            &i.launch_template_version,
            &i.cloudformation_stack,
            &i.instance_profile,
            &i.ami,
            &i.vpc,
            &i.subnet,
        )
            .hash(&mut h);
        (
            &i.instance_type,
            i.vcpus,
            &i.public_ips,
            i.launched,
            &i.tags,
        )
            .hash(&mut h);
    }
    if let Some(a) = s
        .actor
        .as_ref()
        .filter(|_| !s.instances.is_empty() || session.is_some())
    {
        (
            &a.principal_id,
            &a.arn,
            &a.role_arn,
            &a.instance_id,
            &a.account,
        )
            .hash(&mut h);
        if session.is_none() {
            // A launcher is linked to what it launched: keep its key with it.
            a.access_key_id.hash(&mut h);
        }
    }
    Some(h.finish())
}

/// Reads `paths`, builds the graph and matches `rules` over the signals in event-time order.
///
/// Files are read in parallel, so their records arrive in no particular order. The graph is
/// built from all of them first; the signals some rule selects (only those: records no rule
/// can use are dropped on the reading threads) are then matched in event-time order. The
/// result does not depend on how records are split across files or in which order they
/// arrive, and memory grows with selected signals, not with records read.
///
/// With a `prior` state the run continues the earlier ones: the graph starts from the
/// statements the state keeps, the state's signals are replayed with the new ones, and
/// selected records older than the state's horizon are left out (an earlier run matched
/// them), so the sequences are those one run over all the input would find.
pub fn correlate(
    paths: &[PathBuf],
    settings: &Settings,
    rules: Arc<RuleSet>,
    keep_signal_nodes: bool,
    prior: Option<&State>,
) -> CorrelateRun {
    correlate_with(paths, settings, rules, keep_signal_nodes, prior, |_| ()).0
}

/// [`correlate`], calling `on_graph` with the finished graph on a thread of its own while the
/// rules are matched, and returning what it returned: writing the graph out overlaps
/// matching instead of following it (both only read the graph).
pub fn correlate_with<R: Send>(
    paths: &[PathBuf],
    settings: &Settings,
    rules: Arc<RuleSet>,
    keep_signal_nodes: bool,
    prior: Option<&State>,
    on_graph: impl FnOnce(&EntityGraph) -> R + Send,
) -> (CorrelateRun, R) {
    let mut graph = EntityGraph::new(settings.group_precedence.clone(), keep_signal_nodes);
    let mut matcher = Matcher::new(rules, settings.matching.clone());
    if let Some(p) = prior {
        matcher = matcher.with_baselines(p.baselines.clone());
    }
    let mut summary = Summary::default();
    let include_archived = settings.include_archived_findings;
    let mut selected: Vec<Arc<Signal>> = Vec::new();
    let mut statements: Vec<Signal> = Vec::new();
    let mut before_horizon = 0u64;
    let mut sources: BTreeMap<&'static str, (u64, Millis)> = BTreeMap::new();
    let horizon = prior.and_then(|p| p.horizon).unwrap_or(Millis::MIN);
    if let Some(p) = prior {
        for s in &p.graph {
            graph.add_signal(s);
        }
        for s in &p.signals {
            if graph.add_signal(s) != crate::graph::Added::Duplicate {
                selected.push(Arc::new(s.clone()));
            }
        }
    }
    let keep_statements = prior.is_some();
    {
        let m = &matcher;
        // What a signal the rules do not select tells the graph (the instances it describes,
        // the instance its actor's session belongs to) is mostly said again and again:
        // findings on the same instance, calls of the same session. The graph needs each
        // distinct statement once, so repeats are dropped on the reading threads.
        let sent = std::sync::Mutex::new(rustc_hash::FxHashSet::<u64>::default());
        let classify = |s: &Signal| {
            if m.wants(s) && (include_archived || s.fields.archived != Some(true)) {
                return Keep::Match;
            }
            if keep_signal_nodes {
                return Keep::Graph;
            }
            let Some(key) = graph_statement(s) else {
                return Keep::Drop;
            };
            let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
            if sent.insert(key) {
                Keep::Graph
            } else {
                Keep::Drop
            }
        };
        read(
            paths,
            settings,
            &classify,
            &mut summary,
            &mut |s, keep, summary| {
                let source = sources.entry(s.source.as_str()).or_insert((0, Millis::MIN));
                source.0 += 1;
                source.1 = source.1.max(s.time);
                let added = graph.add_signal(&s);
                summary.added(added);
                let matched = keep == Keep::Match && s.time >= horizon;
                if keep == Keep::Match && !matched {
                    before_horizon += 1;
                }
                if matched && added != crate::graph::Added::Duplicate {
                    selected.push(Arc::new(*s));
                } else if keep_statements && graph_statement(&s).is_some() {
                    statements.push(*s);
                }
            },
        );
    }
    if before_horizon > 0 {
        tracing::info!(
            records = before_horizon,
            horizon = %crate::time::format_rfc3339(horizon),
            "records older than the state's horizon were matched by an earlier run and are left out"
        );
    }
    let graph_ref = &graph;
    let ((selected, sequences, matching), out) = alongside(
        || on_graph(graph_ref),
        || {
            let selected = matcher.push_ordered(selected, graph_ref);
            let (sequences, matching) = matcher.finish(graph_ref);
            (selected, sequences, matching)
        },
    );
    summary.graph(&graph);
    let run = CorrelateRun {
        graph,
        summary,
        sequences,
        matching,
        selected,
        statements,
        before_horizon,
        sources,
    };
    (run, out)
}

/// Runs `side` on a thread of its own (or here, when no thread can be started) while `main`
/// runs here; returns both results. A panic in either is passed on.
fn alongside<A, B: Send>(side: impl FnOnce() -> B + Send, main: impl FnOnce() -> A) -> (A, B) {
    let side = std::sync::Mutex::new(Some(side));
    let take = || side.lock().unwrap_or_else(|e| e.into_inner()).take();
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("graph-out".into())
            .spawn_scoped(scope, || take().map(|f| f()));
        let a = main();
        let b = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => {
                tracing::debug!(error = %e, "cannot start a thread for the graph output: written after matching");
                None
            }
        };
        // The side job runs here if its thread never started (or never took it).
        let b = b.or_else(|| take().map(|f| f()));
        match b {
            Some(b) => (a, b),
            None => unreachable!("the side job runs on its thread or here"),
        }
    })
}

fn read(
    paths: &[PathBuf],
    settings: &Settings,
    classify: file::Classify<'_>,
    summary: &mut Summary,
    on_signal: &mut dyn FnMut(Box<Signal>, Keep, &mut Summary),
) {
    let (files, problems) = file::collect_files(paths);
    for p in &problems {
        summary.problem(p);
    }
    tracing::info!(files = files.len(), "reading inputs");
    file::read_files(&files, &settings.read, classify, &mut |e| match e {
        Event::Signals(batch) => {
            for (kind, signal, keep) in batch {
                summary.record(kind);
                on_signal(signal, keep, summary);
            }
        }
        Event::Dropped(counts) => {
            for (kind, n) in counts {
                summary.not_needed(kind, n);
            }
        }
        Event::Problem(p) => summary.problem(&p),
        Event::FileDone(_, stats) => summary.file_done(&stats),
    });
}

/// The outcome of one inline rule test.
#[derive(Debug, serde::Serialize)]
pub struct RuleTestResult {
    pub rule: String,
    pub test: String,
    /// None when it passed; else what differed.
    pub failure: Option<String>,
}

/// Runs every inline test of every rule: decodes its records, matches them with the rule and
/// the rules it depends on, and compares the rule's sequences with the expectation.
pub fn test_rules(set: &RuleSet, settings: &Settings) -> Vec<RuleTestResult> {
    let mut out = Vec::new();
    for rule in &set.rules {
        for t in &rule.tests {
            out.push(RuleTestResult {
                rule: rule.id.clone(),
                test: t.name.clone(),
                failure: run_rule_test(set, rule, t, settings).err(),
            });
        }
    }
    out
}

fn run_rule_test(
    set: &RuleSet,
    rule: &crate::rules::Rule,
    t: &crate::rules::model::RuleTest,
    settings: &Settings,
) -> Result<(), String> {
    // The rule and, transitively, the rules whose signals it selects.
    let mut needed = vec![rule.id.clone()];
    let mut i = 0;
    while i < needed.len() {
        if let Some(r) = set.get(&needed[i]) {
            for d in r.depends_on() {
                if !needed.iter().any(|n| n == d) {
                    needed.push(d.to_string());
                }
            }
        }
        i += 1;
    }
    let mut bytes = Vec::new();
    for r in &t.records {
        serde_json::to_writer(&mut bytes, r).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
    }
    let mut signals = Vec::new();
    let mut problems = Vec::new();
    normalize::decode_reader(bytes.as_slice(), &settings.read.decode, &mut |d| match d {
        Decoded::Signal(_, s) => signals.push(s),
        Decoded::Problem(p) => problems.push(p.to_string()),
    });
    if !problems.is_empty() {
        return Err(format!("records do not decode: {}", problems.join("; ")));
    }
    let rules = Arc::new(set.subset(&needed));
    let mut graph = EntityGraph::new(settings.group_precedence.clone(), false);
    let mut matcher = Matcher::new(rules, settings.matching.clone());
    let mut selected = Vec::new();
    for s in signals {
        if graph.add_signal(&s) != crate::graph::Added::Duplicate {
            selected.push(Arc::new(*s));
        }
    }
    let _ = matcher.push_ordered(selected, &graph);
    let (seqs, _) = matcher.finish(&graph);
    let mine: Vec<&Sequence> = seqs.iter().filter(|s| s.rule_id == rule.id).collect();
    let e = &t.expect;
    if mine.len() != e.sequences {
        return Err(format!(
            "expected {} sequence(s), found {}{}",
            e.sequences,
            mine.len(),
            if mine.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    mine.iter()
                        .map(|s| format!("{} with {} signal(s)", s.key, s.total_signals))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    if let Some(n) = e.signals
        && let Some(s) = mine.iter().find(|s| s.total_signals != n)
    {
        return Err(format!(
            "expected {n} signal(s) in the sequence, found {}",
            s.total_signals
        ));
    }
    if let Some(g) = &e.group
        && let Some(s) = mine.iter().find(|s| s.key.to_string() != *g)
    {
        return Err(format!(
            "expected group {g:?}, found {:?}",
            s.key.to_string()
        ));
    }
    Ok(())
}
