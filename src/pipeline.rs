//! One run end to end: read inputs, decode, build the graph, match rules, count everything.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::baseline::Baselines;
use crate::config::Settings;
use crate::graph::{Detail, EntityGraph};
use crate::matcher::{Carried, Item, MatchStats, Matcher, Sequence};
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
        Input::Paths(paths),
        &settings.read,
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
    /// The signals matched (replayed ones from the state first), in matching order: for the
    /// state the run leaves. Empty when the caller does not keep them ([`correlate_with`]'s
    /// `keep_selected`: `run_loop::run_once` without a state).
    pub selected: Vec<Arc<Signal>>,
    /// What this run's records told the graph that no selected signal says (only kept when
    /// a state is given: the next run needs it): the latest copy of each distinct statement
    /// ([`graph_statement`], [`statement_rank`]), cut to what the next run reads of it
    /// ([`statement_to_keep`]), in event-time order.
    pub statements: Vec<Arc<Signal>>,
    /// Selected records older than the state's horizon, left out: matched by an earlier run
    /// if one read them, not matched at all if they arrived this late.
    pub before_horizon: u64,
    /// Records whose newest version read is archived (and so feeds no rule): the keys
    /// ([`crate::signal::RecordRef::key`]) of GuardDuty findings an analyst archived. A
    /// finding written earlier that holds one is withdrawn ([`crate::incremental`]).
    pub archived: Vec<String>,
    /// Per source: records used and the newest event time among them.
    pub sources: BTreeMap<&'static str, (u64, Option<Millis>)>,
    /// With a state: the matcher's windows and sequences at the next state's horizon, and
    /// the baselines as they stood then (see [`crate::matcher::Carried`]).
    pub carried: Option<(Carried, Baselines)>,
    /// What each input yielded (for response bodies, in their order).
    pub inputs: Vec<(Arc<std::path::Path>, file::FileStats)>,
}

/// Whether [`graph_statement`] has something to hash (without hashing it).
pub fn tells_the_graph(s: &Signal) -> bool {
    !(s.instances.is_empty()
        && s.resources.is_empty()
        && s.actor.as_ref().is_none_or(|a| a.instance_id.is_none()))
}

/// A hash of what the graph learns from a signal that no rule selects, or None when it
/// learns nothing: the instances it describes (every field, and the region), the other
/// entities it names, and the instance-session relation of its actor. Not the access key:
/// every call of an instance session may carry a new one, and nothing groups by an instance
/// session's key.
pub fn graph_statement(s: &Signal) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    if !tells_the_graph(s) {
        return None;
    }
    let session = s.actor.as_ref().filter(|a| a.instance_id.is_some());
    let mut h = rustc_hash::FxHasher::default();
    // The region only tells the graph where described instances are: an instance session's
    // calls into several regions say the same.
    crate::signal::hash_statement_place(
        &mut h,
        s.account.as_deref(),
        s.region.as_deref().filter(|_| !s.instances.is_empty()),
        &s.resources,
    );
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
        crate::signal::hash_statement_actor(
            &mut h,
            [
                a.principal_id.as_deref(),
                a.arn.as_deref(),
                a.role_arn.as_deref(),
                a.instance_id.as_deref(),
                a.account.as_deref(),
            ],
        );
        if session.is_none() {
            // A launcher is linked to what it launched: keep its key with it.
            a.access_key_id.hash(&mut h);
        }
    }
    // That the instances ended is a statement of its own: not one copy with a stop, a
    // reboot or a failed retry of the same instances by the same actor, whichever is kept.
    if s.ends_its_instances() {
        "terminated".hash(&mut h);
    }
    Some(h.finish())
}

/// What a state keeps of a graph statement: what the next run reads of it, and nothing else.
/// The graph reads its time, place, reference and version, its actor, the instances it
/// describes and the entities it names; the launch resolver ([`crate::launch::Resolver`])
/// its call's name and error, the instance type asked for and an Auto Scaling launch's types
/// and template; a graph export its kind, severity, finding type and endpoints. The rest of
/// its fields (the caller's address and agent, counts asked for and launched, a finding's
/// title and counters…) only ever mattered to a rule matching the signal itself, and no rule
/// matches a graph statement.
pub fn statement_to_keep(s: &Signal) -> Signal {
    let f = &s.fields;
    let launch = f
        .launch
        .as_deref()
        .filter(|l| l.kind == "auto_scaling_group")
        .map(|l| {
            Box::new(crate::launch::Launch {
                kind: l.kind.clone(),
                instance_types: l.instance_types.clone(),
                launch_template: l.launch_template.clone(),
                ..crate::launch::Launch::default()
            })
        });
    Signal {
        time: s.time,
        account: s.account.clone(),
        region: s.region.clone(),
        source: s.source,
        kind: s.kind.clone(),
        severity: s.severity,
        reference: s.reference.clone(),
        updated_at: s.updated_at,
        actor: s.actor.clone(),
        instances: s.instances.clone(),
        resources: s.resources.clone(),
        endpoints: s.endpoints.clone(),
        fields: crate::signal::Fields {
            event_name: f.event_name.clone(),
            error_code: f.error_code.clone(),
            requested_instance_type: f.requested_instance_type.clone(),
            launch,
            finding_type: f.finding_type.clone(),
            ..crate::signal::Fields::default()
        },
    }
}

/// Graph statements, one copy each (not one per record: an instance session's every call
/// restates which instance it is): the latest ([`statement_rank`]; on a tie the one kept
/// first), cut to what the next run reads of it ([`statement_to_keep`]).
#[derive(Default)]
pub struct Statements(HashMap<u64, Arc<Signal>>);

impl Statements {
    /// Keeps `s`, whose statement is `key` ([`graph_statement`]), if it is the latest copy so
    /// far, cut to what the next run reads of it.
    pub fn keep(&mut self, key: u64, s: &Signal) {
        self.keep_with(key, s, || Arc::new(statement_to_keep(s)));
    }

    /// As [`Statements::keep`], for a statement a state kept (cut already): shared, not
    /// copied.
    pub fn keep_kept(&mut self, key: u64, s: &Arc<Signal>) {
        self.keep_with(key, s, || s.clone());
    }

    fn keep_with(&mut self, key: u64, s: &Signal, kept: impl FnOnce() -> Arc<Signal>) {
        match self.0.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(kept());
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if statement_rank(s) > statement_rank(o.get()) {
                    o.insert(kept());
                }
            }
        }
    }

    /// The statements kept, in event-time order (then by record, then by statement: an
    /// order that does not depend on the map's).
    pub fn into_sorted(self) -> Vec<Arc<Signal>> {
        let mut kept: Vec<(u64, Arc<Signal>)> = self.0.into_iter().collect();
        kept.sort_by_cached_key(|(key, s)| (s.time, s.reference.key(), *key));
        kept.into_iter().map(|(_, s)| s).collect()
    }
}

/// Which of several copies of one graph statement a state keeps: the latest, then the one with
/// the highest hash of its record reference. A total order that does not depend on arrival.
pub fn statement_rank(s: &Signal) -> (Millis, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    s.reference.hash(&mut h);
    (s.time, h.finish())
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
    correlate_input(
        Input::Paths(paths),
        settings,
        rules,
        keep_signal_nodes,
        prior,
    )
}

/// [`correlate`] over any [`Input`].
pub fn correlate_input(
    input: Input<'_>,
    settings: &Settings,
    rules: Arc<RuleSet>,
    keep_signal_nodes: bool,
    prior: Option<&State>,
) -> CorrelateRun {
    correlate_with(
        input,
        settings,
        rules,
        detail(keep_signal_nodes),
        prior,
        true,
        |_| (),
    )
    .0
}

/// The graph's detail for a run whose graph may be exported: with a node per signal or not.
fn detail(keep_signal_nodes: bool) -> Detail {
    if keep_signal_nodes {
        Detail::Signals
    } else {
        Detail::Entities
    }
}

/// [`correlate_input`] building a graph of `detail`, calling `on_graph` with the finished
/// graph on a thread of its own while the rules are matched, and returning what it returned:
/// writing the graph out overlaps matching instead of following it (both only read the graph).
/// Unless `keep_selected`, the run's `selected` is empty: each signal is freed once matched
/// (for a caller that has no state to advance).
pub fn correlate_with<R: Send>(
    input: Input<'_>,
    settings: &Settings,
    rules: Arc<RuleSet>,
    detail: Detail,
    prior: Option<&State>,
    keep_selected: bool,
    on_graph: impl FnOnce(&EntityGraph) -> R + Send,
) -> (CorrelateRun, R) {
    let started = std::time::Instant::now();
    let keep_signal_nodes = detail == Detail::Signals;
    let mut graph = EntityGraph::with_detail(settings.group_precedence.clone(), detail);
    let mut matcher = Matcher::new(rules.clone(), settings.matching.clone());
    if let Some(p) = prior {
        matcher = matcher.with_baselines(p.baselines.clone());
        if let Some(c) = &p.carried {
            matcher.restore(c);
        }
    }
    let mut summary = Summary::default();
    let include_archived = settings.include_archived_findings;
    let mut selected: Vec<Item> = Vec::new();
    let mut statements = Statements::default();
    let mut before_horizon = 0u64;
    // Of those, by source: how many, and the oldest event time.
    let mut late: BTreeMap<&'static str, (u64, Millis)> = BTreeMap::new();
    let inputs;
    let mut sources: BTreeMap<&'static str, (u64, Option<Millis>)> = BTreeMap::new();
    let horizon = prior.and_then(|p| p.horizon).unwrap_or(Millis::MIN);
    // Launch templates' and Auto Scaling groups' instance types, for launches that name one
    // but no type: from the state's graph statements and signals, and from everything read.
    let mut resolver = crate::launch::Resolver::default();
    if let Some(p) = prior {
        for s in p.graph.iter().chain(&p.signals) {
            resolver.learn(s);
        }
        for s in &p.graph {
            graph.add_signal(s);
        }
        for s in &p.signals {
            if graph.add_signal(s) != crate::graph::Added::Duplicate {
                selected.push(Item::Signal(s.clone()));
            }
        }
    }
    let keep_statements = prior.is_some();
    // Records of accounts in other shards (`aws.shard`), dropped as they are read.
    let other_shards = std::sync::atomic::AtomicU64::new(0);
    let mut described: std::collections::HashMap<u64, Box<Signal>> =
        std::collections::HashMap::new();
    {
        let m = &matcher;
        // What a signal the rules do not select tells the graph (the instances it describes,
        // the instance its actor's session belongs to) is mostly said again and again:
        // findings on the same instance, calls of the same session. The graph needs each
        // distinct statement once, so repeats are dropped on the reading threads.
        //
        // With a state, the copy of a statement that is kept for later runs must not depend
        // on which copy a parallel read meets first: then a copy is also sent when it ranks
        // above every copy sent before (see `statement_rank`), so the best one always arrives.
        // So it is for a statement that describes instances, with or without a state: the
        // graph takes each fact from the newest record that states it, so the latest copy of
        // a description must arrive, not whichever a parallel read met first. Such copies
        // wait in `described` until the read ends, and only the best of each is added: how
        // many copies a read sends depends on their order, what is added and counted not.
        let sent_statements = Arc::new(normalize::SentStatements::default());
        let sent = &sent_statements.0;
        let classify = |s: &Signal| {
            if let (Some(shard), Some(account)) = (&settings.shard, s.account.as_deref())
                && !shard.owns(account)
            {
                other_shards.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Keep::Drop;
            }
            // An archived version is matched too, as far as choosing the newest version of
            // its finding: the newest decides whether the finding feeds rules (below).
            if m.wants(s) {
                return Keep::Match;
            }
            if keep_signal_nodes {
                return Keep::Graph;
            }
            // A Sigma match states nothing of the graph its call does not (it is a copy of
            // the call's signal): the call's own signal carries it, or was not needed.
            if crate::sigma::is_match(s) {
                return Keep::Drop;
            }
            let Some(key) = graph_statement(s) else {
                return Keep::Drop;
            };
            let ranked = keep_statements || !s.instances.is_empty();
            let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
            match sent.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(if ranked { statement_rank(s) } else { (0, 0) });
                    Keep::Graph
                }
                std::collections::hash_map::Entry::Occupied(mut o) if ranked => {
                    let rank = statement_rank(s);
                    if rank > *o.get() {
                        o.insert(rank);
                        Keep::Graph
                    } else {
                        Keep::Drop
                    }
                }
                std::collections::hash_map::Entry::Occupied(_) => Keep::Drop,
            }
        };
        // Calls no rule can take, by actors that are no instance, are counted but not built
        // into signals (unless the graph is to show every signal).
        let mut read_opts = settings.read.clone();
        // The rule set's launch catalog (with its `--rules` folder's additions) and Sigma
        // rules.
        read_opts.decode.launches = rules.launches.clone();
        read_opts.decode.sigma = (!rules.sigma.is_empty()).then(|| rules.sigma.clone());
        if let Some(set) = &read_opts.decode.sigma {
            tracing::debug!(
                sigma_rules = set.len(),
                every_record = set.every_record(),
                "Sigma rules evaluated on the CloudTrail records they may match"
            );
        }
        if !keep_signal_nodes {
            let calls = m.call_filter();
            tracing::debug!(
                every_call = calls.all,
                every_call_by_instances = calls.instance_all,
                names = calls.names.len(),
                patterns = calls.patterns.len(),
                high_risk_apis = calls.high_risk_by_anyone || calls.high_risk_by_instance,
                "the CloudTrail calls the rules may take"
            );
            read_opts.decode.calls = Some(Arc::new(normalize::CallFilter {
                // With a state, a later copy of a statement may still be sent (see above).
                sent: (!keep_statements).then(|| sent_statements.clone()),
                ..calls
            }));
        }
        inputs = read(
            input,
            &read_opts,
            &classify,
            &mut summary,
            &mut |s, keep, summary| {
                resolver.learn(&s);
                // The newest time of the kept signals; counts come from the summary below
                // (every record read, whichever copies were kept).
                let source = sources.entry(s.source.as_str()).or_insert((0, None));
                source.1 = source.1.max(Some(s.time));
                if keep == Keep::Graph
                    && !keep_signal_nodes
                    && !s.instances.is_empty()
                    && let Some(key) = graph_statement(&s)
                {
                    // One copy of a statement is needed, as if the others had been dropped;
                    // held until the end of reading, cut to what the graph reads of it.
                    match described.entry(key) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(Box::new(statement_to_keep(&s)));
                        }
                        std::collections::hash_map::Entry::Occupied(mut o) => {
                            if statement_rank(&s) > statement_rank(o.get()) {
                                o.insert(Box::new(statement_to_keep(&s)));
                            }
                            summary.not_needed += 1;
                        }
                    }
                    return;
                }
                let added = graph.add_signal(&s);
                summary.added(added);
                // Before the horizon an earlier run matched it, unless it is a later version of
                // a finding the carried windows hold (GuardDuty may update a finding whose
                // activity was last seen days ago): one run matches that version in its place.
                let matched =
                    keep == Keep::Match && (s.time >= horizon || m.holds_an_older_version(&s));
                // An archived version that feeds no rule is not a record left out.
                let feeds_rules = include_archived || s.fields.archived != Some(true);
                if keep == Keep::Match && !matched && feeds_rules {
                    before_horizon += 1;
                    let l = late.entry(s.source.as_str()).or_insert((0, s.time));
                    l.0 += 1;
                    l.1 = l.1.min(s.time);
                }
                if matched
                    && added != crate::graph::Added::Duplicate
                    && s.account.as_deref().is_none_or(str::is_empty)
                {
                    // A finding names the affected account; none can be made up for it
                    // (`000000000000`). The graph still has what the record says.
                    summary.no_account(&s.reference.key());
                } else if matched && added != crate::graph::Added::Duplicate {
                    // Without a state, a launch that only teaches the baselines is kept as
                    // that (the graph has its instances); with one, whole, for the state.
                    match (!keep_statements).then(|| m.learn_only(&s)).flatten() {
                        Some(l) => selected.push(Item::Learned(Box::new(l))),
                        None => selected.push(Item::Signal(Arc::new(*s))),
                    }
                } else if keep_statements && let Some(key) = graph_statement(&s) {
                    statements.keep(key, &s);
                }
            },
        );
    }
    summary.other_shards(other_shards.into_inner());
    // The best copy of each description, in a fixed order.
    let mut described: Vec<(u64, Box<Signal>)> = described.into_iter().collect();
    described.sort_unstable_by_key(|(k, _)| *k);
    for (_, s) in described {
        summary.added(graph.add_signal(&s));
        if keep_statements && let Some(key) = graph_statement(&s) {
            // Cut already: shared, not cut again.
            statements.keep_kept(key, &Arc::from(s));
        }
    }
    for (kind, n) in &summary.records {
        let source = match kind.split(' ').next() {
            Some("cloudtrail") => "cloudtrail",
            Some("guardduty") => "guardduty",
            _ => "securityhub",
        };
        sources.entry(source).or_insert((0, None)).0 += n;
    }
    if before_horizon > 0 {
        // Either read before (a run over input an earlier run read: matched then) or too late
        // to be matched: the windows they would have joined closed before the horizon (a
        // trail object read only now, a finding first exported days after its activity).
        // Which, the state cannot tell; a scheduled task should see neither.
        let by_source: Vec<String> = late
            .iter()
            .map(|(source, (n, oldest))| {
                format!(
                    "{source}: {n} from {}",
                    crate::time::format_rfc3339(*oldest)
                )
            })
            .collect();
        tracing::warn!(
            records = before_horizon,
            horizon = %crate::time::format_rfc3339(horizon),
            by_source = %by_source.join(", "),
            "selected records older than the state's horizon are left out: matched by an earlier run if one read them, not matched at all if they arrived this late"
        );
    }
    let read_ms = started.elapsed().as_millis() as u64;
    tracing::debug!(
        records = inputs.iter().map(|(_, st)| st.signals).sum::<u64>(),
        counted_only = inputs.iter().map(|(_, st)| st.counted_only).sum::<u64>(),
        "read: records, and those counted without building a signal"
    );
    for item in &mut selected {
        let Item::Signal(s) = item else {
            continue;
        };
        if s.fields
            .launch
            .as_deref()
            .is_some_and(|l| l.instance_types.is_empty())
        {
            let mut resolved = (**s).clone();
            if resolver.resolve(&mut resolved) {
                *s = Arc::new(resolved);
            }
        }
    }
    graph.seal();
    // The next state's horizon: the picture of the windows is taken there.
    if let Some(p) = prior {
        let newest = selected
            .iter()
            .filter_map(|i| match i {
                Item::Signal(s) => Some(s.time),
                Item::Learned(_) => None,
            })
            .max()
            .max(p.newest);
        let reach = crate::incremental::reach(&rules, settings);
        let at = newest.map_or(Millis::MIN, |n| n.saturating_sub(reach));
        matcher.carry_from(at.max(p.horizon.unwrap_or(Millis::MIN)));
    }
    // A finding whose newest version is archived (an analyst closed it as benign) feeds no
    // rule, whatever its earlier versions said, unless `include_archived_findings`; what it
    // tells the graph is kept as any other record's.
    let mut selected = newest_versions(selected);
    let mut archived = Vec::new();
    if !include_archived {
        selected.retain(|item| match item {
            Item::Signal(s) if s.fields.archived == Some(true) => {
                if keep_statements && let Some(key) = graph_statement(s) {
                    statements.keep(key, s);
                }
                archived.push((s.reference.clone(), s.version()));
                false
            }
            _ => true,
        });
        // An earlier run may have matched an earlier version: what the state's picture holds
        // of it goes (a later run's sequences are those one run reading the archived version
        // would find).
        let touched = matcher.withdraw(&archived);
        if touched > 0 {
            tracing::info!(
                groups = touched,
                "findings archived since an earlier run matched them taken out of its windows and sequences"
            );
        }
    }
    let graph_ref = &graph;
    let ((selected, sequences, matching, carried), out) = alongside(
        || on_graph(graph_ref),
        || {
            let selected = matcher.push_items(selected, graph_ref, keep_selected);
            let (sequences, matching, mut carried) = matcher.finish_carrying(graph_ref);
            let mut sequences = crate::rollup::roll_up(sequences, &rules);
            if let Some((picture, _)) = &mut carried {
                picture.leave_out_dead(&sequences);
            }
            for seq in &mut sequences {
                crate::sinks::asff::keep_what_the_finding_reads(seq);
            }
            (selected, sequences, matching, carried)
        },
    );
    tracing::debug!(
        read_ms,
        match_ms = started.elapsed().as_millis() as u64 - read_ms,
        "correlated: reading and the graph, then matching"
    );
    summary.graph(&graph);
    let run = CorrelateRun {
        graph,
        summary,
        sequences,
        matching,
        selected,
        statements: statements.into_sorted(),
        before_horizon,
        archived: archived.iter().map(|(r, _)| r.key()).collect(),
        sources,
        carried,
        inputs,
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

/// What a run reads: files and folders, or the bodies of API responses and trail objects
/// (AWS mode) as they arrive, each named for problems (`guardduty/us-east-1/GetFindings#3`,
/// `s3://bucket/key`).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Paths(&'a [PathBuf]),
    Stream(&'a dyn file::Bodies),
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Paths(p) => f.debug_tuple("Paths").field(p).finish(),
            Input::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A one-line progress display on stderr, redrawn at most twice a second, shown only after
/// the first two seconds (short reads stay quiet) and cleared when the read ends.
struct Progress {
    enabled: bool,
    total: usize,
    done: usize,
    bytes: u64,
    records: u64,
    started: std::time::Instant,
    last: std::time::Instant,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Progress {
        let now = std::time::Instant::now();
        Progress {
            enabled,
            total,
            done: 0,
            bytes: 0,
            records: 0,
            started: now,
            last: now,
            shown: false,
        }
    }

    fn file_done(&mut self, bytes: u64, records: u64) {
        self.done += 1;
        self.bytes += bytes;
        self.records += records;
        if !self.enabled {
            return;
        }
        let now = std::time::Instant::now();
        if now.duration_since(self.started).as_millis() < 2_000
            || now.duration_since(self.last).as_millis() < 500
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let secs = now.duration_since(self.started).as_secs_f64();
        // A stream's inputs are not known in advance.
        let of = if self.total > 0 {
            format!("/{}", self.total)
        } else {
            String::new()
        };
        eprint!(
            "\r\x1b[2Kreading {}{of} inputs, {:.0} MB, {} records ({:.0} MB/s)",
            self.done,
            self.bytes as f64 / 1e6,
            self.records,
            self.bytes as f64 / 1e6 / secs.max(0.001)
        );
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Reads `input`; returns what each input (file or response body) yielded, in the order they
/// were done.
fn read(
    input: Input<'_>,
    opts: &file::ReadOptions,
    classify: file::Classify<'_>,
    summary: &mut Summary,
    on_signal: &mut dyn FnMut(Box<Signal>, Keep, &mut Summary),
) -> Vec<(Arc<std::path::Path>, file::FileStats)> {
    let mut done: Vec<(Arc<std::path::Path>, file::FileStats)> = Vec::new();
    let (files, path_problems) = match input {
        Input::Paths(paths) => file::collect_files(paths),
        Input::Stream(_) => (Vec::new(), Vec::new()),
    };
    // Bodies are counted as they come.
    let total = files.len();
    let mut progress = Progress::new(opts.progress, total);
    let mut on_event = |e: Event| match e {
        Event::Signals(batch) => {
            for (kind, signal, keep) in batch {
                // A Sigma match is made from a record counted already.
                if !crate::sigma::is_match(&signal) {
                    summary.record(kind);
                    summary.region(signal.region.as_deref());
                    summary.instance_types(&signal);
                }
                on_signal(signal, keep, summary);
            }
        }
        Event::Dropped(counts) => {
            for (kind, n) in counts {
                summary.not_needed(kind, n);
            }
        }
        Event::Problem(p) => summary.problem(&p),
        Event::FileDone(name, stats) => {
            progress.file_done(stats.bytes, stats.signals);
            summary.file_done(&stats);
            done.push((name, stats));
        }
    };
    match input {
        Input::Paths(_) => {
            for p in path_problems {
                on_event(Event::Problem(p));
            }
            tracing::info!(files = files.len(), "reading inputs");
            file::read_files(&files, opts, classify, &mut on_event);
        }
        Input::Stream(bodies) => {
            tracing::info!("decoding API responses and trail objects as they arrive");
            file::read_bodies(bodies, opts, classify, &mut on_event);
        }
    }
    progress.finish();
    summary.warn_unknown_instance_types();
    done
}

/// One signal per record: of the versions of a finding (direct and through Security Hub,
/// older and newer), the one with the newest `updatedAt`, the GuardDuty original on a tie,
/// then the one with the latest activity.
/// Which copy a parallel read meets first must not decide what is matched.
fn newest_versions(items: Vec<Item>) -> Vec<Item> {
    let mut at: std::collections::HashMap<crate::signal::RecordRef, usize> =
        std::collections::HashMap::with_capacity(items.len());
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for s in items {
        match at.get(s.reference()) {
            Some(&i) => {
                if s.version() > out[i].version() {
                    out[i] = s;
                }
            }
            None => {
                at.insert(s.reference().clone(), out.len());
                out.push(s);
            }
        }
    }
    out
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
    let mut decode = settings.read.decode.clone();
    decode.launches = set.launches.clone();
    decode.sigma = (!set.sigma.is_empty()).then(|| set.sigma.clone());
    normalize::decode_reader(bytes.as_slice(), &decode, &mut |d| match d {
        Decoded::Signal(_, s) | Decoded::Sigma(_, s) => signals.push(s),
        Decoded::Unneeded(..) => {}
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
