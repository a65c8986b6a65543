//! The sliding-window sequence matcher: signals + rules → attack sequences.
//!
//! Signals arrive in any order; a reorder buffer releases them in the order their activity
//! began ([`Signal::since`]: the event time, or a finding's first sighting) once they are older
//! than the newest time seen minus the allowed lag (default 1 h), so records from several
//! files and regions can interleave. A finding stays in a window from its first sighting until
//! the window has passed its last, so the same matches come out whether a run read its first
//! version or a later one. Each released signal is offered to every rule in
//! dependency order: a rule's stages select it (the first matching stage wins), the
//! allowlist may drop it, and the rule's `group_by` gives its group keys. Per rule and group
//! the matcher keeps only the signals inside the window, with running counts, sums and
//! distinct sets, so memory is bounded by live windows, not by events read.
//!
//! When the condition holds, a sequence opens; every later matching signal within the
//! window of the sequence's last signal extends the same sequence (one finding per ongoing
//! attack). A rule whose `emit` is `weak_signal` turns each signal that joins its sequences
//! into a `rule:<id>` signal that later rules can select.

mod candidates;
mod carry;
mod sequence;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::baseline::{BaselineOptions, Baselines, Facts, OwnedLaunch};
use crate::graph::EntityGraph;
use crate::rules::compile::{
    BaselineContext, Glob, Measure, PatternSet, SelectContext, baseline_notes,
};
use crate::rules::fields::{FieldContext, Value};
use crate::rules::{Emit, GroupBy, Rule, RuleSet};
use crate::signal::{EntityId, EntityKind, RecordRef, Signal, Source, Str, Version};
use crate::time::Millis;

use candidates::Candidates;
pub use carry::Carried;
pub use sequence::{GroupKey, SeqSignal, Sequence};

/// Matcher settings.
#[derive(Clone, Debug)]
pub struct MatchOptions {
    /// How far behind the newest signal a signal may arrive and still be ordered correctly.
    pub lag: Millis,
    /// The configuration's edits of the detection lists, in order, applied over the lists of
    /// the rule set ([`MatchOptions::lists`]).
    pub lists: Vec<(String, crate::rules::lists::ListEdit)>,
    /// Signals kept per sequence; beyond this the sequence counts them but keeps only the
    /// first ones (findings hold at most 100 anyway).
    pub max_signals_per_sequence: usize,
    /// Defaults for rules' baseline conditions.
    pub baseline: BaselineOptions,
}

impl MatchOptions {
    /// The lists of `base` (a rule set's) with the configuration's edits applied.
    pub fn lists(&self, base: &crate::rules::lists::Lists) -> crate::rules::lists::Lists {
        let mut lists = base.clone();
        for (name, edit) in &self.lists {
            lists.apply(name, edit);
        }
        lists
    }
}

/// Counts the summary reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MatchStats {
    /// Signals offered to the matcher (selected by at least one stage of a rule).
    pub candidates: u64,
    /// Stage matches left out by an allowlist, per rule.
    pub allowlisted: BTreeMap<String, u64>,
    /// Signals released later than the lag allowed (still matched, maybe out of order).
    pub late: u64,
    /// Weak signals produced, per rule.
    pub weak_signals: BTreeMap<String, u64>,
}

struct Pending {
    time: Millis,
    /// Tie-break so that equal times release in a fixed order whatever the arrival order.
    key: String,
    signal: Arc<Signal>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.time == o.time && self.key == o.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.time, &self.key).cmp(&(o.time, &o.key))
    }
}

/// One matched signal in a window.
struct Entry {
    /// When the signal's activity began ([`Signal::since`]): the order of the window.
    time: Millis,
    /// When it was last seen: it stays in a window until the window has passed this.
    until: Millis,
    /// Its place among the group's entries (set when it joins).
    order: u64,
    stage: usize,
    weak: bool,
    signal: Arc<SeqSignal>,
    /// Per threshold: the value this entry adds (None when the threshold does not apply).
    measures: Vec<Option<Measured>>,
}

#[derive(Clone)]
enum Measured {
    One,
    Number(f64),
    Values(Vec<Str>),
}

/// Running aggregates over a window's entries.
#[derive(Default)]
struct Agg {
    stage_counts: Vec<u32>,
    stage_times: Vec<VecDeque<Millis>>,
    sums: Vec<f64>,
    distinct: Vec<HashMap<Str, u32>>,
}

impl Agg {
    fn new(rule: &Rule) -> Agg {
        Agg {
            stage_counts: vec![0; rule.stages.len()],
            stage_times: vec![VecDeque::new(); rule.stages.len()],
            sums: vec![0.0; rule.condition.thresholds.len()],
            distinct: vec![HashMap::new(); rule.condition.thresholds.len()],
        }
    }

    fn add(&mut self, e: &Entry, sign: i8) {
        if e.weak {
            return;
        }
        // Each stage's times stay sorted, and an entry that leaves takes its own time out:
        // findings leave the window in the order their activity ended, not began, and a
        // signal placed before a restored picture joins behind later ones.
        let times = &mut self.stage_times[e.stage];
        if sign > 0 {
            self.stage_counts[e.stage] += 1;
            let at = times.partition_point(|&t| t <= e.time);
            times.insert(at, e.time);
        } else {
            self.stage_counts[e.stage] -= 1;
            if let Ok(at) = times.binary_search(&e.time) {
                times.remove(at);
            } else {
                debug_assert!(false, "a time that left was never in its stage's times");
            }
        }
        for (i, m) in e.measures.iter().enumerate() {
            match m {
                None => {}
                Some(Measured::One) => self.sums[i] += f64::from(sign),
                Some(Measured::Number(n)) => self.sums[i] += f64::from(sign) * n,
                Some(Measured::Values(vs)) => {
                    for v in vs {
                        if sign > 0 {
                            *self.distinct[i].entry(v.clone()).or_default() += 1;
                        } else if let Some(c) = self.distinct[i].get_mut(v) {
                            *c -= 1;
                            if *c == 0 {
                                self.distinct[i].remove(v);
                            }
                        }
                    }
                }
            }
        }
    }

    fn holds(&self, rule: &Rule) -> bool {
        let c = &rule.condition;
        if let Some(n) = c.distinct_stages {
            let present = rule
                .stages
                .iter()
                .enumerate()
                .filter(|(i, s)| !s.weak && !s.absent && self.stage_counts[*i] > 0)
                .count() as u32;
            if present < n {
                return false;
            }
        }
        if rule
            .stages
            .iter()
            .enumerate()
            .any(|(i, s)| s.absent && self.stage_counts[i] > 0)
        {
            return false;
        }
        if c.require.iter().any(|&i| self.stage_counts[i] == 0) {
            return false;
        }
        if !c.ordered.is_empty() {
            let firsts: Option<Vec<Millis>> = c
                .ordered
                .iter()
                .map(|&i| self.stage_times[i].front().copied())
                .collect();
            match firsts {
                Some(f) if f.windows(2).all(|w| w[0] <= w[1]) => {}
                _ => return false,
            }
        }
        c.thresholds.iter().enumerate().all(|(i, t)| {
            let v = match t.measure {
                Measure::Distinct(_) => self.distinct[i].len() as f64,
                Measure::Count | Measure::Sum(_) => self.sums[i],
            };
            v >= t.at_least
        })
    }
}

/// Matching state of one rule and one group.
struct KeyState {
    /// Entries seen at one moment (calls), in time order: they leave from the front.
    entries: VecDeque<Entry>,
    /// Entries seen over a span (findings), in the order they began: any of them may leave
    /// first, so they are kept apart, with the earliest end among them.
    spans: Vec<Entry>,
    spans_end: Millis,
    /// Entries that joined so far (the next entry's `order`).
    joined: u64,
    agg: Agg,
    open: Option<Sequence>,
    /// The last closed sequence, kept while `suppress` may still reopen it.
    closed: Option<Sequence>,
}

impl KeyState {
    fn new(rule: &Rule) -> KeyState {
        KeyState {
            entries: VecDeque::new(),
            spans: Vec::new(),
            spans_end: Millis::MAX,
            joined: 0,
            agg: Agg::new(rule),
            open: None,
            closed: None,
        }
    }

    fn push(&mut self, mut e: Entry) {
        e.order = self.joined;
        self.joined += 1;
        self.agg.add(&e, 1);
        if e.until > e.time {
            self.spans_end = self.spans_end.min(e.until);
            self.spans.push(e);
        } else {
            self.entries.push_back(e);
        }
    }

    /// Drops the entries last seen before `horizon`.
    fn expire(&mut self, horizon: Millis) {
        while self.entries.front().is_some_and(|f| f.until < horizon) {
            if let Some(old) = self.entries.pop_front() {
                self.agg.add(&old, -1);
            }
        }
        if self.spans_end < horizon {
            let agg = &mut self.agg;
            self.spans.retain(|e| {
                if e.until >= horizon {
                    return true;
                }
                agg.add(e, -1);
                false
            });
            self.settle_spans_end();
        }
    }

    /// Takes the entries of the records `gone` says are withdrawn out of the window (and its
    /// aggregates), and their signals out of the sequences, open or closed
    /// ([`withdraw_from`]). Whether anything was taken.
    fn withdraw(&mut self, rule: &Rule, gone: &dyn Fn(&RecordRef) -> bool) -> bool {
        let agg = &mut self.agg;
        let mut taken = false;
        let mut keep = |e: &Entry| {
            let out = gone(&e.signal.reference);
            if out {
                agg.add(e, -1);
                taken = true;
            }
            !out
        };
        self.entries.retain(&mut keep);
        self.spans.retain(&mut keep);
        self.settle_spans_end();
        for slot in [&mut self.open, &mut self.closed] {
            if let Some(seq) = slot.as_mut()
                && let Some(kept) = withdraw_from(seq, rule, gone)
            {
                taken = true;
                if !kept {
                    *slot = None;
                }
            }
        }
        taken
    }

    /// The earliest end among the spans.
    fn settle_spans_end(&mut self) {
        self.spans_end = self
            .spans
            .iter()
            .map(|e| e.until)
            .min()
            .unwrap_or(Millis::MAX);
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.spans.is_empty()
    }

    /// Puts `e` in the place of the window's entry of the same record (a later version of a
    /// signal the window holds): the entry keeps its place among the others, and the window's
    /// aggregates lose the old version and gain the new one. Gives `e` back if the window holds
    /// no entry of its record.
    fn replace(&mut self, mut e: Entry) -> Option<Entry> {
        let r = &e.signal.reference;
        let old = if let Some(i) = self.entries.iter().position(|x| x.signal.reference == *r) {
            self.entries.remove(i)
        } else if let Some(i) = self.spans.iter().position(|x| x.signal.reference == *r) {
            Some(self.spans.remove(i))
        } else {
            None
        };
        let Some(old) = old else {
            return Some(e);
        };
        self.agg.add(&old, -1);
        self.agg.add(&e, 1);
        e.order = old.order;
        if e.until > e.time {
            let at = self
                .spans
                .partition_point(|x| (x.time, x.order) <= (e.time, e.order));
            self.spans.insert(at, e);
        } else {
            let at = self.entries.partition_point(|x| x.time <= e.time);
            self.entries.insert(at, e);
        }
        self.settle_spans_end();
        None
    }

    /// When the oldest entry in the window began.
    fn window_start(&self) -> Option<Millis> {
        let calls = self.entries.front().map(|e| e.time);
        let spans = self.spans.first().map(|e| e.time);
        calls.into_iter().chain(spans).min()
    }

    /// The window's entries in the order they joined.
    fn in_order(&self) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self.entries.iter().chain(&self.spans).collect();
        if !self.spans.is_empty() {
            out.sort_by_key(|e| e.order);
        }
        out
    }
}

/// Takes the signals `gone` says are withdrawn out of `seq`. None when it held none; else
/// whether it still stands without them: by its own signals, their stages within one
/// window against `rule`'s condition ([`still_holds`]). A sequence whose list of signals was cut short
/// (`max_signals_per_sequence`) stands, with its times as they were: what it dropped cannot
/// be told.
fn withdraw_from(
    seq: &mut Sequence,
    rule: &Rule,
    gone: &dyn Fn(&RecordRef) -> bool,
) -> Option<bool> {
    let before = seq.signals.len();
    let complete = before == seq.total_signals;
    seq.signals.retain(|x| !gone(&x.reference));
    let removed = before - seq.signals.len();
    if removed == 0 {
        return None;
    }
    seq.total_signals = seq.total_signals.saturating_sub(removed);
    if !complete {
        return Some(true);
    }
    if seq.signals.is_empty() || !still_holds(rule, &seq.signals) {
        return Some(false);
    }
    seq.first_seen = seq
        .signals
        .iter()
        .map(|x| x.first_seen.min(x.time))
        .min()
        .unwrap_or(seq.first_seen);
    seq.last_seen = seq
        .signals
        .iter()
        .map(|x| x.time)
        .max()
        .unwrap_or(seq.last_seen);
    Some(true)
}

/// Whether `signals` (a sequence's, whole) meet `rule`'s condition within one window, as the
/// matcher saw them arrive: at some signal's start, the signals that had begun and not yet
/// left the window (ended within `rule.window` before it) meet it by their stages
/// ([`stages_hold`]).
fn still_holds(rule: &Rule, signals: &[Arc<SeqSignal>]) -> bool {
    signals.iter().any(|x| {
        let t = x.began();
        let from = t.saturating_sub(rule.window);
        let inside: Vec<&SeqSignal> = signals
            .iter()
            .filter(|s| s.began() <= t && s.time >= from)
            .map(|s| &**s)
            .collect();
        stages_hold(rule, &inside)
    })
}

/// Whether `signals` meet `rule`'s condition by their stages: the distinct stages, the
/// required ones, their order and the count thresholds, as a window's aggregates do
/// ([`Agg::holds`]). A sum or a count of distinct values is not kept per signal: such a
/// threshold counts as met.
fn stages_hold(rule: &Rule, signals: &[&SeqSignal]) -> bool {
    let n = rule.stages.len();
    let mut counts = vec![0usize; n];
    let mut firsts = vec![Millis::MAX; n];
    for s in signals {
        if let Some(i) = rule.stages.iter().position(|st| st.name == s.stage) {
            counts[i] += 1;
            firsts[i] = firsts[i].min(s.began());
        }
    }
    let c = &rule.condition;
    let counted = |i: usize| !rule.stages[i].weak && !rule.stages[i].absent;
    if let Some(d) = c.distinct_stages
        && ((0..n).filter(|&i| counted(i) && counts[i] > 0).count() as u32) < d
    {
        return false;
    }
    if c.require.iter().any(|&i| counts[i] == 0) {
        return false;
    }
    let ordered: Vec<Millis> = c.ordered.iter().map(|&i| firsts[i]).collect();
    if ordered.contains(&Millis::MAX) || ordered.windows(2).any(|w| w[0] > w[1]) {
        return false;
    }
    c.thresholds.iter().all(|t| match t.measure {
        Measure::Count => {
            let count: usize = match t.stage {
                Some(i) if counted(i) => counts[i],
                Some(_) => 0,
                None => (0..n).filter(|&i| counted(i)).map(|i| counts[i]).sum(),
            };
            count as f64 >= t.at_least
        }
        Measure::Sum(_) | Measure::Distinct(_) => true,
    })
}

/// The matcher.
pub struct Matcher {
    rules: Arc<RuleSet>,
    opts: MatchOptions,
    high_powered: Vec<Glob>,
    high_risk: PatternSet,
    cryptomining_types: Vec<Glob>,
    mining_pools: crate::rules::lists::DomainSet,
    /// The stages each signal could reach, for [`Matcher::wants`].
    candidates: Candidates,
    buffer: BinaryHeap<Reverse<Pending>>,
    newest: Millis,
    released_up_to: Millis,
    states: Vec<HashMap<GroupKey, KeyState>>,
    finished: Vec<Sequence>,
    /// Signals processed since the last sweep of idle groups.
    since_sweep: usize,
    /// What launches have been seen (only when some rule asks).
    baselines: Baselines,
    uses_baselines: bool,
    /// Some stage selects launches (`launch: true`).
    uses_launches: bool,
    /// Where to take the picture a later run goes on from ([`Matcher::carry_from`]), until
    /// it is taken.
    carry_at: Option<Millis>,
    /// The picture, with the baselines as they stood then.
    carried: Option<(Carried, Baselines)>,
    /// The point of the picture this matcher went on from, if any: a later version of a
    /// signal that began before it replaces the version the windows hold.
    restored_at: Option<Millis>,
    /// The version of each record the restored picture holds (of the signals that began
    /// before its point, those records come in again only as other versions).
    restored_versions: HashMap<RecordRef, Version>,
    pub stats: MatchStats,
}

/// Signals between sweeps of idle group states.
const SWEEP_EVERY: usize = 4096;

impl Matcher {
    pub fn new(rules: Arc<RuleSet>, opts: MatchOptions) -> Matcher {
        use crate::rules::lists::{
            CRYPTOMINING_FINDING_TYPES, DomainSet, HIGH_POWERED_INSTANCE_TYPES, HIGH_RISK_APIS,
            MINING_POOL_DOMAINS,
        };
        let n = rules.rules.len();
        let lists = opts.lists(&rules.lists);
        Matcher {
            high_powered: lists
                .get(HIGH_POWERED_INSTANCE_TYPES)
                .iter()
                .map(|p| Glob::new(p))
                .collect(),
            high_risk: PatternSet::new(lists.get(HIGH_RISK_APIS).iter().map(String::as_str)),
            cryptomining_types: lists
                .get(CRYPTOMINING_FINDING_TYPES)
                .iter()
                .map(|p| Glob::new(p))
                .collect(),
            mining_pools: DomainSet::new(lists.get(MINING_POOL_DOMAINS).iter()),
            candidates: Candidates::new(&rules),
            buffer: BinaryHeap::new(),
            newest: Millis::MIN,
            released_up_to: Millis::MIN,
            states: (0..n).map(|_| HashMap::new()).collect(),
            finished: Vec::new(),
            since_sweep: 0,
            baselines: Baselines::default(),
            uses_baselines: rules.rules.iter().any(Rule::uses_baselines),
            uses_launches: rules
                .rules
                .iter()
                .any(|r| r.stages.iter().any(|st| st.selector.launch)),
            carry_at: None,
            carried: None,
            restored_at: None,
            restored_versions: HashMap::new(),
            rules,
            opts,
            stats: MatchStats::default(),
        }
    }

    /// Takes a picture of the windows and sequences (and the baselines) just before the first
    /// signal whose activity began at or after `at`, or at the end if none does: what
    /// [`Matcher::finish_carrying`] returns for the next run to go on from.
    pub fn carry_from(&mut self, at: Millis) {
        self.carry_at = Some(at);
    }

    /// Takes the picture if `since` has reached its point.
    fn carry_before(&mut self, since: Millis) {
        if self.carry_at.is_some_and(|at| since >= at) {
            self.take_picture();
        }
    }

    fn take_picture(&mut self) {
        if let Some(at) = self.carry_at.take() {
            // What no signal from `at` on can find in a window any more leaves it now, as it
            // would at the next signal of its group (or the next sweep): then groups with
            // nothing left are not carried.
            let rules = self.rules.clone();
            for (ri, states) in self.states.iter_mut().enumerate() {
                let window = rules.rules[ri].window;
                states.retain(|_, st| {
                    st.expire(at.saturating_sub(window));
                    !(st.is_empty() && st.open.is_none() && st.closed.is_none())
                });
            }
            self.carried = Some((self.picture(at), self.baselines.clone()));
        }
    }

    /// The longest window of any rule: how far apart two sequences may be and still roll up.
    fn longest_window(&self) -> Millis {
        self.rules.longest_window()
    }

    /// Starts from what earlier runs learned.
    pub fn with_baselines(mut self, baselines: Baselines) -> Matcher {
        self.baselines = baselines;
        self
    }

    /// Whether some rule asks the baselines (then every launch must reach the matcher).
    pub fn uses_baselines(&self) -> bool {
        self.uses_baselines
    }

    /// The context for selecting; `facts` are the baselines' facts of the signal being
    /// matched (None on the reading threads).
    fn select_ctx<'a>(&'a self, facts: Option<Option<&'a Facts>>) -> SelectContext<'a> {
        SelectContext {
            fields: FieldContext {
                high_powered: &self.high_powered,
            },
            high_risk_apis: &self.high_risk,
            cryptomining_finding_types: &self.cryptomining_types,
            mining_pool_domains: &self.mining_pools,
            sigma: &self.rules.sigma,
            baseline: facts.map(|facts| BaselineContext {
                facts,
                opts: &self.opts.baseline,
            }),
        }
    }

    /// The CloudTrail calls [`Matcher::wants`] may take (see
    /// [`CallFilter`](crate::normalize::CallFilter)): the reading threads build no signal for
    /// the others unless the graph needs it.
    pub fn call_filter(&self) -> crate::normalize::CallFilter {
        let mut f = self.candidates.call_filter(&self.rules, &self.high_risk);
        if self.uses_baselines {
            // Launches teach the baselines (they are decoded in full anyway: they describe
            // instances).
            f.names
                .extend(["RunInstances".to_string(), "StartInstances".to_string()]);
            for name in self.rules.launches.event_names() {
                match name.literal() {
                    Some(n) => {
                        f.names.insert(n.to_string());
                    }
                    None => f.patterns.push(name.clone()),
                }
            }
        }
        f
    }

    /// Whether any stage of any rule selects the signal, or the baselines must learn it:
    /// only those need to be kept.
    pub fn wants(&self, s: &Signal) -> bool {
        let ctx = self.select_ctx(None);
        // A launch whose instance type comes from an earlier launch template or Auto Scaling
        // group call is judged once that is looked up (see `crate::launch::Resolver`).
        let unresolved = s
            .fields
            .launch
            .as_deref()
            .is_some_and(|l| l.instance_types.is_empty() && self.uses_launches);
        unresolved
            || (self.uses_baselines && crate::baseline::is_launch(s))
            || self.candidates.any(s, |at| {
                self.rules.rules[at.rule].stages[at.stage]
                    .selector
                    .matches(s, &ctx)
            })
    }

    /// Takes a signal (the graph must already hold what it says). Releases, in the order
    /// their activity began, every buffered signal older than the newest time minus the lag.
    pub fn push(&mut self, s: Arc<Signal>, graph: &EntityGraph) {
        if !self.wants(&s) {
            return;
        }
        self.stats.candidates += 1;
        self.newest = self.newest.max(s.since());
        self.buffer.push(Reverse(Pending {
            time: s.since(),
            key: s.reference.key(),
            signal: s,
        }));
        let horizon = self.newest.saturating_sub(self.opts.lag);
        while self.buffer.peek().is_some_and(|p| p.0.time <= horizon) {
            if let Some(Reverse(p)) = self.buffer.pop() {
                self.process(&p.signal, graph);
            }
        }
    }

    /// Matches signals that are all known at once (files): sorted by when their activity began here, so
    /// arrival order never matters. Returns them in the order matched.
    pub fn push_ordered(
        &mut self,
        signals: Vec<Arc<Signal>>,
        graph: &EntityGraph,
    ) -> Vec<Arc<Signal>> {
        self.push_items(signals.into_iter().map(Item::Signal).collect(), graph, true)
    }

    /// [`Matcher::push_ordered`] of signals and launches that only teach the baselines, in one
    /// order; returns the signals in the order matched if `keep`, else none (each is freed once
    /// matched, unless a window holds it).
    pub fn push_items(
        &mut self,
        items: Vec<Item>,
        graph: &EntityGraph,
        keep: bool,
    ) -> Vec<Arc<Signal>> {
        let mut keyed: Vec<(Millis, String, Item)> = items
            .into_iter()
            .map(|i| (i.since(), i.reference().key(), i))
            .collect();
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut out = Vec::with_capacity(if keep { keyed.len() } else { 0 });
        for (since, _, item) in keyed {
            self.stats.candidates += 1;
            self.newest = self.newest.max(since);
            match item {
                Item::Signal(s) => {
                    self.process(&s, graph);
                    if keep {
                        out.push(s);
                    }
                }
                Item::Learned(l) => self.learn(*l),
            }
        }
        out
    }

    /// A launch no rule can report, as [`Matcher::process`] would take its signal: counted
    /// where an allowlist left it out (by the baselines' facts of it, as a stage would judge
    /// them), then learned.
    fn learn(&mut self, l: Learned) {
        self.carry_before(l.since);
        self.release(l.since);
        let OwnedLaunch {
            account,
            launcher,
            values,
            instances,
        } = l.launch;
        let launch = crate::baseline::Launch {
            account: &account,
            launcher,
            values,
            instances,
        };
        let rules = self.rules.clone();
        let selector = |(r, st): (u32, u32)| &rules.rules[r as usize].stages[st as usize].selector;
        let facts = l
            .stages
            .iter()
            .any(|&at| selector(at).uses_baselines())
            .then(|| {
                self.baselines
                    .facts_of(&launch, l.time, &self.opts.baseline)
            });
        let mut counted = None;
        for &(r, st) in &l.stages {
            if counted == Some(r) {
                continue;
            }
            let sel = selector((r, st));
            let selects = !sel.uses_baselines()
                || facts
                    .as_ref()
                    .is_some_and(|f| sel.baseline_holds_for(f, &self.opts.baseline));
            if selects {
                *self
                    .stats
                    .allowlisted
                    .entry(rules.rules[r as usize].id.clone())
                    .or_default() += 1;
                counted = Some(r);
            }
        }
        self.baselines.learn(launch, l.time, &self.opts.baseline);
    }

    /// What is left to match of a launch no rule can report: every rule with a stage that
    /// selects it (the baselines' conditions left aside, as on the reading threads) is
    /// allowlisted for it whatever the instances' tags, so in matching it only teaches the
    /// baselines and is counted by those allowlists. None for any other signal, and for a
    /// launch whose instance types are still to be looked up.
    pub fn learn_only(&self, s: &Signal) -> Option<Learned> {
        if !self.uses_baselines
            || s.fields
                .launch
                .as_deref()
                .is_some_and(|l| l.instance_types.is_empty())
        {
            return None;
        }
        let launch = crate::baseline::launch_of(s)?;
        let ctx = self.select_ctx(None);
        let mut stages = Vec::new();
        for (r, rule) in self.rules.rules.iter().enumerate() {
            if s.kind.strip_prefix("rule:") == Some(rule.id.as_str()) {
                continue;
            }
            let at = stages.len();
            for (st, stage) in rule.stages.iter().enumerate() {
                if stage.selector.matches(s, &ctx) {
                    stages.push((r as u32, st as u32));
                }
            }
            if stages.len() > at && !rule.allowlist.allows(s, &[]) {
                return None;
            }
        }
        Some(Learned {
            reference: s.reference.clone(),
            since: s.since(),
            time: s.time,
            updated_at: s.updated_at,
            source: s.source,
            launch: launch.to_owned_launch(),
            stages,
        })
    }

    /// Releases everything buffered, closes the windows, and returns every sequence found
    /// (of rules that emit findings and of weak-signal rules alike), sorted.
    pub fn finish(self, graph: &EntityGraph) -> (Vec<Sequence>, MatchStats) {
        let (sequences, stats, _) = self.finish_carrying(graph);
        (sequences, stats)
    }

    /// [`Matcher::finish`], and the picture [`Matcher::carry_from`] asked for, with the
    /// baselines as they stood then.
    pub fn finish_carrying(
        mut self,
        graph: &EntityGraph,
    ) -> (Vec<Sequence>, MatchStats, Option<(Carried, Baselines)>) {
        while let Some(Reverse(p)) = self.buffer.pop() {
            self.process(&p.signal, graph);
        }
        self.take_picture();
        let mut carried = self.carried.take();
        let mut out = std::mem::take(&mut self.finished);
        for states in &mut self.states {
            for (_, st) in states.drain() {
                out.extend(st.open);
                out.extend(st.closed);
            }
        }
        for seq in &mut out {
            seq.finalize(graph);
        }
        out.sort_by(|a, b| {
            (a.rule_id.as_str(), &a.key, a.start).cmp(&(b.rule_id.as_str(), &b.key, b.start))
        });
        if let Some((picture, _)) = &mut carried {
            self.mark_dead(picture, &out);
        }
        (out, self.stats, carried)
    }

    /// Marks in `picture` the sequences that ended as they were in it (no signal joined them
    /// after its point), whose last signal is older than the picture's point less the longest
    /// window (so no sequence the next run makes can roll up with them), and that no signal of
    /// their group's window could reopen: the next run would only write them again, unchanged,
    /// unless they rolled up with a sequence that goes on ([`Carried::leave_out_dead`]).
    fn mark_dead(&self, picture: &mut Carried, out: &[Sequence]) {
        let ended: HashMap<(&str, String, Millis), (Millis, usize)> = out
            .iter()
            .map(|s| {
                (
                    (s.rule_id.as_str(), s.key.to_string(), s.start),
                    (s.last_seen, s.total_signals),
                )
            })
            .collect();
        let before = picture.at.saturating_sub(self.longest_window());
        let rules = &self.rules;
        picture.mark_dead(|rule, key, start, last_seen, signals, earliest_entry| {
            let suppress = rules.get(rule).map_or(0, |r| r.suppress);
            let unchanged =
                ended.get(&(rule, key.to_string(), start)) == Some(&(last_seen, signals));
            unchanged
                && last_seen < before
                && earliest_entry.is_none_or(|t| t.saturating_sub(last_seen) > suppress)
        });
    }

    /// Takes note of a record released whose activity began at `since`: counted late if
    /// after a later one, and the windows swept every so often.
    fn release(&mut self, since: Millis) {
        if since < self.released_up_to {
            self.stats.late += 1;
        }
        self.released_up_to = self.released_up_to.max(since);
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.sweep(self.released_up_to);
        }
    }

    /// Takes records out of the restored picture: those of `archived` (records whose newest
    /// version, read by this run, feeds no rule: a GuardDuty finding an analyst archived)
    /// that it holds in an older version, as one run that read the archived version would
    /// never have matched the record; and the weak signals rules made of them. Their entries
    /// leave the windows and their signals the sequences, open, closed or ended
    /// ([`withdraw_from`]); the finding written for a sequence dropped is withdrawn
    /// ([`crate::incremental`]). Returns how many sequences and group states lost something.
    pub fn withdraw(&mut self, archived: &[(RecordRef, Version)]) -> usize {
        let gone: HashSet<String> = archived
            .iter()
            .filter(|(r, v)| self.restored_versions.get(r).is_some_and(|held| held < v))
            .map(|(r, _)| r.key())
            .collect();
        if gone.is_empty() {
            return 0;
        }
        let is_gone = |r: &RecordRef| gone.contains(crate::signal::underlying_key(&r.key()));
        let mut touched = 0;
        let rules = self.rules.clone();
        for (ri, states) in self.states.iter_mut().enumerate() {
            let rule = &rules.rules[ri];
            states.retain(|_, st| {
                touched += usize::from(st.withdraw(rule, &is_gone));
                !(st.is_empty() && st.open.is_none() && st.closed.is_none())
            });
        }
        // Ended sequences the picture carried, written again at the end of the run.
        self.finished.retain_mut(|seq| {
            let Some(rule) = rules.get(&seq.rule_id) else {
                return true;
            };
            match withdraw_from(seq, rule, &is_gone) {
                None => true,
                Some(kept) => {
                    touched += 1;
                    kept
                }
            }
        });
        touched
    }

    /// Whether `s` is a later version of a record the restored picture holds (what
    /// [`Matcher::process`] puts in the held version's place).
    pub fn holds_an_older_version(&self, s: &Signal) -> bool {
        s.updated_at.is_some()
            && self
                .restored_versions
                .get(&s.reference)
                .is_some_and(|held| *held < s.version())
    }

    fn process(&mut self, s: &Arc<Signal>, graph: &EntityGraph) {
        self.carry_before(s.since());
        // A signal that began before the restored picture: matched only if it is a later
        // version of what the picture holds of its record (or the picture holds none), as one
        // run matches only the latest version of each record.
        if self.restored_at.is_some_and(|at| s.since() < at) {
            let version = s.version();
            match self.restored_versions.get(&s.reference) {
                Some(held) if *held >= version => return,
                _ => {
                    self.restored_versions.insert(s.reference.clone(), version);
                }
            }
        }
        self.release(s.since());
        // What the baselines knew before this signal; it is learned after every rule saw it.
        let launch = if self.uses_baselines {
            crate::baseline::launch_of(s)
        } else {
            None
        };
        let facts = launch
            .as_ref()
            .map(|l| self.baselines.facts_of(l, s.time, &self.opts.baseline));
        // Signals of this step: the original, then weak signals rules produce from it.
        let mut step: Vec<Arc<Signal>> = vec![s.clone()];
        let rules = self.rules.clone();
        for (ri, rule) in rules.rules.iter().enumerate() {
            let mut produced = Vec::new();
            for sig in &step {
                self.offer(ri, rule, sig, graph, facts.as_ref(), &mut produced);
            }
            step.extend(produced);
        }
        if let Some(l) = launch {
            self.baselines.learn(l, s.time, &self.opts.baseline);
        }
    }

    fn offer(
        &mut self,
        ri: usize,
        rule: &Rule,
        s: &Arc<Signal>,
        graph: &EntityGraph,
        facts: Option<&Facts>,
        produced: &mut Vec<Arc<Signal>>,
    ) {
        // A weak signal never feeds the rule that made it.
        if s.kind.strip_prefix("rule:") == Some(rule.id.as_str()) {
            return;
        }
        let ctx = self.select_ctx(Some(facts));
        let Some(stage) = rule
            .stages
            .iter()
            .position(|st| st.selector.matches(s, &ctx))
        else {
            return;
        };
        if !rule.allowlist.is_empty() {
            let tags = subject_tags(s, graph);
            if rule.allowlist.allows(s, &tags) {
                *self.stats.allowlisted.entry(rule.id.clone()).or_default() += 1;
                return;
            }
        }
        let keys = group_keys(rule.group_by, s, graph, &ctx.fields);
        if keys.is_empty() {
            return;
        }
        let measures: Vec<Option<Measured>> = rule
            .condition
            .thresholds
            .iter()
            .map(|t| {
                if t.stage.is_some_and(|ts| ts != stage)
                    || rule.stages[stage].weak
                    || rule.stages[stage].absent
                {
                    return None;
                }
                match t.measure {
                    Measure::Count => Some(Measured::One),
                    Measure::Sum(f) => match f.get(s, &ctx.fields) {
                        Value::Number(n) => Some(Measured::Number(n)),
                        _ => None,
                    },
                    Measure::Distinct(f) => match f.get(s, &ctx.fields) {
                        Value::Text(t) => Some(Measured::Values(vec![Str::from(t)])),
                        Value::List(l) => {
                            Some(Measured::Values(l.into_iter().map(Str::from).collect()))
                        }
                        Value::Number(n) => Some(Measured::Values(vec![Str::from(n.to_string())])),
                        Value::Bool(b) => Some(Measured::Values(vec![Str::from(b.to_string())])),
                        Value::Absent => None,
                    },
                }
            })
            .collect();
        let notes = baseline_notes(&rule.stages[stage].selector, &ctx);
        let mut seq_signal =
            SeqSignal::new(s, &rule.stages[stage].name, rule.stages[stage].weak, &ctx);
        seq_signal.notes.clone_from(&notes);
        let seq_signal = Arc::new(seq_signal);
        for key in keys {
            let joined = self.add(
                ri,
                rule,
                key,
                Entry {
                    time: s.since(),
                    until: s.time,
                    order: 0,
                    stage,
                    weak: rule.stages[stage].weak,
                    signal: seq_signal.clone(),
                    measures: measures.clone(),
                },
            );
            if joined && rule.emit == Emit::WeakSignal {
                *self.stats.weak_signals.entry(rule.id.clone()).or_default() += 1;
                produced.push(Arc::new(weak_signal(rule, s, &notes)));
            }
        }
    }

    /// Closes what has gone quiet and forgets groups with nothing left in their window, so
    /// memory follows the live windows, not the signals read.
    fn sweep(&mut self, now: Millis) {
        let rules = self.rules.clone();
        for (ri, states) in self.states.iter_mut().enumerate() {
            let rule = &rules.rules[ri];
            states.retain(|_, st| {
                st.expire(now - rule.window);
                if st
                    .open
                    .as_ref()
                    .is_some_and(|o| now - o.last_seen > rule.window)
                    && let Some(done) = st.open.take()
                    && let Some(prev) = st.closed.replace(done)
                {
                    self.finished.push(prev);
                }
                if st
                    .closed
                    .as_ref()
                    .is_some_and(|c| now - c.last_seen > rule.suppress)
                    && let Some(done) = st.closed.take()
                {
                    self.finished.push(done);
                }
                !(st.is_empty() && st.open.is_none() && st.closed.is_none())
            });
        }
    }

    /// Group states held (for tests and the benchmark: memory follows live windows).
    pub fn live_states(&self) -> usize {
        self.states.iter().map(HashMap::len).sum()
    }

    /// Adds an entry to a group's window; returns whether it joined a sequence.
    fn add(&mut self, ri: usize, rule: &Rule, key: GroupKey, e: Entry) -> bool {
        let t = e.time;
        let st = self.states[ri]
            .entry(key.clone())
            .or_insert_with(|| KeyState::new(rule));
        st.expire(t - rule.window);
        if st
            .open
            .as_ref()
            .is_some_and(|o| t - o.last_seen > rule.window)
            && let Some(done) = st.open.take()
            && let Some(prev) = st.closed.replace(done)
        {
            self.finished.push(prev);
        }
        let signal = e.signal.clone();
        let absent = rule.stages[e.stage].absent;
        // A later version of a signal the restored windows hold takes its place there, as one
        // run would have matched only that version.
        let e = if self.restored_at.is_some_and(|at| t < at) {
            st.replace(e)
        } else {
            Some(e)
        };
        if let Some(e) = e {
            st.push(e);
        }
        // A signal of an absent stage only keeps sequences from opening while in the window.
        if absent {
            return false;
        }
        let max = self.opts.max_signals_per_sequence;
        if let Some(open) = st.open.as_mut() {
            open.add(signal, max);
            return true;
        }
        if !st.agg.holds(rule) {
            return false;
        }
        let window_start = st.window_start().unwrap_or(t);
        let reopen = st
            .closed
            .as_ref()
            .is_some_and(|c| rule.suppress > 0 && window_start - c.last_seen <= rule.suppress);
        let mut seq = if reopen {
            st.closed.take().expect("checked above")
        } else {
            if let Some(prev) = st.closed.take() {
                self.finished.push(prev);
            }
            let mut opening = Sequence::new(rule, key, window_start);
            opening.opened = t;
            opening
        };
        for entry in st
            .in_order()
            .into_iter()
            .filter(|e| !rule.stages[e.stage].absent)
        {
            seq.add(entry.signal.clone(), max);
        }
        if !reopen {
            seq.created = seq.first_seen;
        }
        st.open = Some(seq);
        true
    }
}

/// What the matcher takes: a signal, or a launch that only teaches the baselines.
pub enum Item {
    Signal(Arc<Signal>),
    Learned(Box<Learned>),
}

impl Item {
    pub fn since(&self) -> Millis {
        match self {
            Item::Signal(s) => s.since(),
            Item::Learned(l) => l.since,
        }
    }

    pub fn reference(&self) -> &RecordRef {
        match self {
            Item::Signal(s) => &s.reference,
            Item::Learned(l) => &l.reference,
        }
    }

    /// Which of two versions of a record is matched: the later `updatedAt`, then GuardDuty's
    /// own over Security Hub's copy, then the later time.
    pub fn version(&self) -> Version {
        match self {
            Item::Signal(s) => s.version(),
            Item::Learned(l) => crate::signal::version(l.updated_at, l.source, l.time),
        }
    }
}

/// A launch no rule can report ([`Matcher::learn_only`]): what matching needs of it, a few
/// hundred bytes where its signal (instances, request, response) takes kilobytes.
#[derive(Debug)]
pub struct Learned {
    reference: RecordRef,
    since: Millis,
    time: Millis,
    updated_at: Option<Millis>,
    source: Source,
    launch: OwnedLaunch,
    /// The (rule, stage) pairs whose selector takes it when the baselines' conditions are
    /// left aside; each of those rules' allowlist leaves it out.
    stages: Vec<(u32, u32)>,
}

/// A weak signal of `rule` about `s`: the same actor, instances and endpoints, so that later
/// rules group it as they would group `s`.
fn weak_signal(rule: &Rule, s: &Signal, notes: &[String]) -> Signal {
    // The title says why the rule matched when a baseline condition did.
    let title = if notes.is_empty() {
        Str::from(rule.title.as_str())
    } else {
        compact_str::format_compact!("{}: {}", rule.title, notes.join("; "))
    };
    s.derived("rule", &rule.id, rule.severity.score(), title)
}

/// The group keys a signal belongs to under `by`.
pub fn group_keys(
    by: GroupBy,
    s: &Signal,
    graph: &EntityGraph,
    fields: &crate::rules::fields::FieldContext<'_>,
) -> Vec<GroupKey> {
    let mut keys = Vec::new();
    let mut push = |k: GroupKey| {
        if !keys.contains(&k) {
            keys.push(k);
        }
    };
    let actor = s.actor.as_ref();
    match by {
        GroupBy::InstanceGroup => {
            // The instances a finding is about (not instances a call launched: those are
            // the call's objects, and belong to the launcher's sequence).
            let about = s.instances.iter().filter(|i| !i.launched);
            for i in about.filter(|_| s.source != Source::CloudTrail) {
                match graph.group_of(&EntityId::new(EntityKind::Instance, i.instance_id.clone())) {
                    Some(g) => push(GroupKey::Group(g.clone())),
                    None => push(GroupKey::Instance(i.instance_id.clone())),
                }
            }
            // The instance whose credentials acted.
            if let Some(inst) = actor.and_then(|a| a.instance_id.as_ref()) {
                let by_principal = actor
                    .and_then(|a| a.principal())
                    .and_then(|p| graph.group_of(&p).cloned());
                let g = by_principal.or_else(|| {
                    graph
                        .group_of(&EntityId::new(EntityKind::Instance, inst.clone()))
                        .cloned()
                });
                match g {
                    Some(g) => push(GroupKey::Group(g)),
                    None => push(GroupKey::Instance(inst.clone())),
                }
            }
        }
        GroupBy::Principal => {
            if let Some(p) = actor.and_then(|a| a.principal()) {
                push(GroupKey::Principal(p.id));
            }
        }
        GroupBy::Account => {
            if let Some(a) = &s.account {
                push(GroupKey::Account(a.clone()));
            }
        }
        GroupBy::AccessKey => {
            if let Some(k) = actor.and_then(|a| a.access_key_id.clone()) {
                push(GroupKey::AccessKey(k));
            }
        }
        GroupBy::Field(f) => {
            let name = f.name();
            match f.get(s, fields) {
                crate::rules::fields::Value::Absent => {}
                crate::rules::fields::Value::Text(t) => push(GroupKey::Field(name, Str::from(t))),
                crate::rules::fields::Value::List(items) => {
                    for t in items {
                        push(GroupKey::Field(name, Str::from(t)));
                    }
                }
                crate::rules::fields::Value::Number(n) => {
                    push(GroupKey::Field(name, Str::from(n.to_string())));
                }
                crate::rules::fields::Value::Bool(b) => {
                    push(GroupKey::Field(name, Str::from(b.to_string())));
                }
            }
        }
    }
    keys
}

/// Tags of the instances a signal is about or acts as, from the record and the graph.
fn subject_tags<'a>(s: &'a Signal, graph: &'a EntityGraph) -> Vec<(&'a str, &'a str)> {
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for i in &s.instances {
        tags.extend(i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        tags.extend(
            graph
                .instance_tags(&i.instance_id)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    if let Some(inst) = s.actor.as_ref().and_then(|a| a.instance_id.as_deref()) {
        tags.extend(
            graph
                .instance_tags(inst)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    tags
}
