//! Incremental runs: from a run's sequences and the state before it, the findings to write
//! and the state after it.
//!
//! A finding is written when its sequence is new or has changed since the version last
//! written (a fingerprint of the whole finding is kept), so running twice on the same input
//! writes nothing the second time, and a sequence that continues into a later run is written
//! again under the same `Id` with a later `UpdatedAt` and its new signals. The `Id`,
//! `CreatedAt` and `UpdatedAt` all come from event times, never from the clock, so one run over
//! all input and any split of it into consecutive runs write the same findings. A written
//! finding keeps its `Id` and `CreatedAt` for life: a later sequence of the same rule and group
//! that holds one of its signals goes on under them, and it is archived as superseded only when
//! its signals now sit in another group's sequence.
//!
//! The state keeps what the next run needs and no more: the signals at or after the horizon
//! (the oldest point any still-open window, suppression period, allowed lag or replayed
//! sequence reaches back to), the graph statements of instances some record named within the
//! retention period (one copy of each, cut to what the next run reads of it: [`Statements`]),
//! and the records of sequences that may still be replayed.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::config::Settings;
use crate::matcher::{GroupKey, Sequence};
use crate::pipeline::{CorrelateRun, Statements, graph_statement, tells_the_graph};
use crate::rules::{Emit, RuleSet};
use crate::sinks::asff::{self, Writer};
use crate::state::{KeptFinding, SequenceRecord, SequenceStatus, State};
use crate::time::{Millis, format_rfc3339};

/// What a run changes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Findings to write: new, updated and superseded ones, in a stable order.
    pub write: Vec<KeptFinding>,
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Earlier findings whose signals now sit in another group's sequence (a group that
    /// became known): written once more as ARCHIVED, pointing at the new one.
    pub superseded: usize,
    /// Earlier findings that held a GuardDuty finding archived since (closed by an analyst),
    /// and form no sequence without it: written once more as ARCHIVED, saying which.
    pub withdrawn: usize,
    /// Finding sequences still open, and closed, at the end of the run.
    pub open: usize,
    pub closed: usize,
}

impl Changes {
    /// A one-line account for the summary.
    pub fn to_text(&self) -> String {
        let withdrawn = withdrawn_note(self.withdrawn);
        format!(
            "findings: {} new, {} updated, {} unchanged, {} superseded{withdrawn} ({} to write); sequences: {} open, {} closed\n",
            self.new,
            self.updated,
            self.unchanged,
            self.superseded,
            self.write.len(),
            self.open,
            self.closed
        )
    }
}

/// What a summary line says of withdrawn findings after the superseded ones: nothing when
/// there are none.
pub fn withdrawn_note(withdrawn: usize) -> String {
    match withdrawn {
        0 => String::new(),
        n => format!(", {n} withdrawn"),
    }
}

/// The span behind the newest signal that a later signal may still reach: the longest
/// window plus suppression of any rule, plus the allowed lag.
pub fn reach(rules: &RuleSet, settings: &Settings) -> Millis {
    rules
        .rules
        .iter()
        .map(|r| r.window.saturating_add(r.suppress))
        .max()
        .unwrap_or(0)
        .saturating_add(settings.matching.lag)
}

/// Computes the findings to write and the state after the run. `run` is the correlation of
/// this run's input with `prior` (an empty state for the first one): without a state, a
/// correlation keeps launches no rule reports only as what the baselines learn of them, not
/// among `run.selected`, so it cannot advance one.
pub fn advance(
    prior: Option<&State>,
    run: &CorrelateRun,
    rules: &RuleSet,
    settings: &Settings,
    writer: &Writer,
) -> (State, Changes) {
    let started = std::time::Instant::now();
    let newest = run
        .selected
        .iter()
        .map(|s| s.time)
        .max()
        .max(prior.and_then(|p| p.newest));
    let lag = settings.matching.lag;

    // The horizon: no later signal can reach behind it. The matcher's windows and sequences
    // at the horizon go on in the next run (the picture the run took there), so a sequence
    // that began before it is continued, not replayed from its start.
    let (carried, carried_baselines) = run
        .carried
        .as_ref()
        .expect("a run with a state takes the picture of its matcher");
    let h = carried.at;
    let in_picture = carried.sequences();
    // Findings: new, changed or unchanged since the version last written.
    let previous: HashMap<&str, &SequenceRecord> = prior
        .map(|p| p.sequences.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default();
    let mut changes = Changes::default();
    let mut records = Vec::new();
    let mut ids = std::collections::HashSet::new();
    // Ids this run's sequences compute, and earlier ones they continue: each is taken once.
    let mut taken: HashSet<String> = run
        .sequences
        .iter()
        .filter(|s| s.emit == Emit::Finding)
        .map(asff::finding_id)
        .collect();
    // Per rule, the signals its sequences hold now: an earlier finding none of them continues
    // is superseded only when its signals are here (regrouped), not when they form no sequence.
    let mut held: HashMap<String, HashSet<String>> = HashMap::new();
    // GuardDuty findings whose newest version read is archived: an earlier finding that held
    // one and forms no sequence without it is withdrawn.
    let archived: HashSet<&str> = run.archived.iter().map(String::as_str).collect();
    // Members of rolled-up sequences → the `Id` of the finding that carries them.
    let mut absorbed_by: HashMap<String, String> = HashMap::new();
    // The instances listed by findings the next run writes again: what records said of them
    // is kept while it does, or an ended member would drop out of a finding that did not
    // change (and be written again for it, unlike one run's). Within `graph_retention`
    // still: a sequence open for weeks keeps no member longer than that.
    let mut listed: rustc_hash::FxHashSet<crate::signal::Str> = Default::default();
    for seq in run.sequences.iter().filter(|s| s.emit == Emit::Finding) {
        let Some(rule) = rules.get(&seq.rule_id) else {
            continue;
        };
        let kept = crate::rollup::keep_written_id(seq, |id| previous.contains_key(id));
        let seq = kept.as_ref().unwrap_or(seq);
        // The finding's text is written once: its fingerprint is the hash of the text kept,
        // unless its `Id` or `UpdatedAt` moves below (then the version kept is written again).
        let (mut finding, mut kept_text) = asff::finding_and_text(seq, rule, writer);
        let mut id = asff::finding_id(seq);
        let refs = refs(seq);
        let mut created = asff::finding_created(seq);
        if !previous.contains_key(id.as_str())
            && let Some(r) = continued(prior, seq, &refs, &taken)
        {
            id.clone_from(&r.id);
            created = r.created.unwrap_or(r.start);
            inherit(&mut finding, &id, created);
            kept_text = KeptFinding::of(&finding);
            taken.insert(id.clone());
        }
        held.entry(seq.rule_id.clone())
            .or_default()
            .extend(refs.iter().cloned());
        let fingerprint = fingerprint(&kept_text);
        match previous.get(id.as_str()) {
            None => changes.new += 1,
            Some(r) if r.fingerprint != fingerprint => changes.updated += 1,
            Some(_) => changes.unchanged += 1,
        }
        let changed = previous
            .get(id.as_str())
            .is_none_or(|r| r.fingerprint != fingerprint);
        // `UpdatedAt` is the newest signal's time, so it moves forward whenever a signal joins.
        // A finding that changed without a new signal (its group learned more members) still
        // gets a later `UpdatedAt` than the version written before, or Security Hub would keep
        // the old one.
        let mut updated_at = seq.last_seen;
        if changed
            && let Some(prev) = previous.get(id.as_str()).and_then(|r| r.updated_at)
            && prev >= updated_at
        {
            updated_at = prev.saturating_add(1);
            finding["UpdatedAt"] = Value::from(format_rfc3339(updated_at));
            kept_text = KeptFinding::of(&finding);
        }
        if !changed && let Some(prev) = previous.get(id.as_str()).and_then(|r| r.updated_at) {
            updated_at = prev;
        }
        let closes_at = seq.last_seen.saturating_add(rule.window);
        let open = newest.is_some_and(|n| closes_at >= n.saturating_sub(lag));
        if open {
            changes.open += 1;
        } else {
            changes.closed += 1;
        }
        if let Some(r) = &seq.rollup {
            for m in r.member_ids().filter(|m| *m != id) {
                absorbed_by.insert(m.to_string(), id.clone());
            }
        }
        ids.insert(id.clone());
        if changed {
            changes.write.push(kept_text.clone());
        }
        // The next run writes it again if the picture holds it, or if it holds a signal the
        // next run matches again (one at or after the horizon): then it needs its record.
        let pictured = |rule: &str, key: &GroupKey, start: Millis| {
            in_picture.contains(&(rule.to_string(), key.to_string(), start))
        };
        let continues = seq.last_seen >= h
            || match &seq.rollup {
                None => pictured(&seq.rule_id, &seq.key, seq.start),
                Some(r) => {
                    pictured(&seq.rule_id, &seq.key, r.own_start)
                        || r.absorbed
                            .iter()
                            .any(|a| pictured(&a.rule_id, &a.key, a.start))
                }
            };
        if continues {
            listed.extend(seq.members.iter().cloned());
            records.push(SequenceRecord {
                id,
                rule: seq.rule_id.clone(),
                group: seq.key.to_string(),
                start: seq.start,
                last_seen: seq.last_seen,
                status: if open {
                    SequenceStatus::Open
                } else {
                    SequenceStatus::Closed
                },
                closes_at,
                signals: seq.total_signals,
                fingerprint,
                updated_at: Some(updated_at),
                // Closed or open: while its signals are replayed, they may form another
                // sequence (its group became known), and then this finding is archived.
                finding: Some(kept_text),
                created: Some(created),
                refs,
            });
        }
    }
    // Earlier findings this run replayed but no longer finds: their signals now belong to
    // other sequences. Archive them so an analyst sees one finding per attack.
    if let Some(p) = prior {
        for r in &p.sequences {
            // Every record the state kept belongs to a sequence this run matched again.
            if ids.contains(&r.id) {
                continue;
            }
            let at = newest
                .unwrap_or(r.last_seen)
                .max(r.updated_at.map_or(Millis::MIN, |u| u.saturating_add(1)));
            if !absorbed_by.contains_key(&r.id) && !regrouped(r, &held) {
                // It held a GuardDuty finding whose newest version is archived, and forms no
                // sequence without it: withdrawn, as one run reading that version would never
                // have written it.
                if let Some(gone) = r
                    .refs
                    .iter()
                    .map(|x| crate::signal::underlying_key(x))
                    .find(|x| archived.contains(x))
                {
                    if let Some(mut f) = r.finding.as_ref().map(KeptFinding::value) {
                        archive(&mut f, at, Why::Withdrawn(gone));
                        changes.write.push(KeptFinding::of(&f));
                        changes.withdrawn += 1;
                    }
                    continue;
                }
                // Its signals form no sequence in this run, nor joined one by roll-up (a
                // finding's update moved its time out of the window): the finding stays as
                // written, and the record waits for the sequence to form again.
                if r.last_seen >= h {
                    records.push(r.clone());
                }
                continue;
            }
            if let Some(mut f) = r.finding.as_ref().map(KeptFinding::value) {
                let why = match absorbed_by.get(&r.id) {
                    Some(id) => Why::RolledUp(id),
                    None => Why::Superseded,
                };
                archive(&mut f, at, why);
                changes.write.push(KeptFinding::of(&f));
                changes.superseded += 1;
            }
        }
    }

    // Signals to replay, and graph statements to keep.
    let mut signals = Vec::new();
    let mut leaving = Vec::new();
    for s in &run.selected {
        // A signal whose activity began before the horizon is in the picture.
        if s.since() >= h {
            signals.push(s.clone());
        } else if tells_the_graph(s) {
            leaving.push(&**s);
        }
    }
    let retention_start =
        newest.map_or(Millis::MIN, |n| n.saturating_sub(settings.graph_retention));
    // Statements the replayed signals make themselves need no copy.
    let replayed: rustc_hash::FxHashSet<u64> =
        signals.iter().filter_map(|s| graph_statement(s)).collect();
    let mut statements = Statements::default();
    // Kept already (the state's and this run's): shared, not copied.
    let kept: Vec<&std::sync::Arc<crate::signal::Signal>> = prior
        .map(|p| p.graph.iter())
        .into_iter()
        .flatten()
        .chain(run.statements.iter())
        .collect();
    // What records said about an instance is kept while some record names it within the
    // retention (a call made with its role, a finding, a later description), however long ago
    // it was launched: the newest time each instance was named, by anything kept or read.
    let mut last_named: rustc_hash::FxHashMap<&str, Millis> = Default::default();
    for s in kept
        .iter()
        .map(|s| &***s)
        .chain(run.selected.iter().map(|s| &**s))
    {
        for id in instances_named(s) {
            let t = last_named.entry(id).or_insert(s.time);
            *t = (*t).max(s.time);
        }
    }
    let retained = |s: &crate::signal::Signal| {
        s.time >= retention_start
            || instances_named(s)
                .any(|id| last_named.get(id).is_some_and(|&t| t >= retention_start))
    };
    // An instance that ended (a `TerminateInstances`, a Spot interruption) no record will
    // name for long (a late finding, its role's credentials until they expire): what records
    // said of it is let go `terminated_retention` after its (latest) end, however recently
    // it was named: the latest, as the graph's lifetime of it (a state keeps the latest copy
    // of a termination sent again, so only the latest is the same for split runs); unlike
    // the lifetime's [`crate::graph::Lifetime::end`], also an end a later launch of the
    // same id contradicts (the benchmark's estate relaunches the same ids: keeping them all
    // took the 7-day state from 43,000 statements to 80,000). At least
    // the longest window plus the lag: a sequence that forms lists the members that ran
    // from its first signal on, which can be that far back (a member that ended since must
    // still be known then, as one run knows it).
    let terminated_retention = settings
        .terminated_retention
        .max(rules.longest_window().saturating_add(settings.matching.lag));
    let ended_before = newest.map_or(Millis::MIN, |n| n.saturating_sub(terminated_retention));
    let mut terminated: rustc_hash::FxHashMap<&str, Millis> = Default::default();
    for s in kept
        .iter()
        .map(|s| &***s)
        .chain(run.selected.iter().map(|s| &**s))
        .filter(|s| s.ends_its_instances())
    {
        for i in &s.instances {
            let t = terminated.entry(i.instance_id.as_str()).or_insert(s.time);
            *t = (*t).max(s.time);
        }
    }
    // Not while a signal the next run matches again names the instance (its windows may
    // still need the instance's group), nor while a finding the next run writes again lists
    // it.
    let mut replayed_names: rustc_hash::FxHashSet<&str> =
        signals.iter().flat_map(|s| instances_named(s)).collect();
    replayed_names.extend(listed.iter().map(|i| &**i));
    // What a statement says is of the instances it describes (an instance that launched or
    // ended them, by its role, restates its own session with every call it makes), or of
    // the instance whose session made the call.
    let ended = |s: &crate::signal::Signal| {
        let ended = |id: &str| {
            terminated.get(id).is_some_and(|&t| t < ended_before) && !replayed_names.contains(id)
        };
        if s.instances.is_empty() {
            instances_named(s).next().is_some_and(ended)
        } else {
            s.instances.iter().all(|i| ended(&i.instance_id))
        }
    };
    let keeps = |s: &crate::signal::Signal| retained(s) && !ended(s);
    // A termination is kept while anything kept still names one of its instances (a launch
    // of several instances, some still running; a signal replayed): the statements that name
    // the instance are let go once every instance they name has ended.
    let mut still_named: rustc_hash::FxHashSet<&str> = Default::default();
    if !terminated.is_empty() {
        let others = kept
            .iter()
            .map(|s| &***s)
            .chain(leaving.iter().copied())
            .filter(|s| !s.ends_its_instances() && keeps(s))
            .chain(signals.iter().map(|s| &**s));
        for s in others {
            still_named.extend(instances_named(s).filter(|id| terminated.contains_key(id)));
        }
    }
    let keeps = |s: &crate::signal::Signal| {
        keeps(s)
            || (s.ends_its_instances() && instances_named(s).any(|id| still_named.contains(id)))
    };
    for s in kept {
        if !keeps(s) {
            continue;
        }
        if let Some(key) = graph_statement(s).filter(|k| !replayed.contains(k)) {
            statements.keep_kept(key, s);
        }
    }
    for s in leaving {
        if !keeps(s) {
            continue;
        }
        if let Some(key) = graph_statement(s).filter(|k| !replayed.contains(k)) {
            statements.keep(key, s);
        }
    }
    let graph = statements.into_sorted();

    let mut checkpoints = prior.map(|p| p.checkpoints.clone()).unwrap_or_default();
    for (source, (n, t)) in &run.sources {
        let c = checkpoints.entry((*source).to_string()).or_default();
        c.records += n;
        c.newest = c.newest.max(*t);
    }

    // Baselines as of the horizon: as the matcher had them when it took the picture.
    let mut baselines = carried_baselines.clone();
    if rules.rules.iter().any(crate::rules::Rule::uses_baselines) {
        let opts = &settings.matching.baseline;
        baselines.expire(h.saturating_sub(opts.retention), opts);
    }

    let mut state = State::new();
    state.baselines = baselines;
    state.checkpoints = checkpoints;
    state.newest = newest;
    // No horizon until a signal has been read (the picture then stands before everything).
    state.horizon = newest.map(|_| h);
    state.signals = signals;
    state.graph = graph;
    state.sequences = records;
    state.carried = Some(carried.clone());
    let (groups, carried_sequences, carried_signals) = carried.counts();
    tracing::debug!(
        horizon = %format_rfc3339(h),
        signals = state.signals.len(),
        statements = state.graph.len(),
        sequences = state.sequences.len(),
        carried_groups = groups,
        carried_sequences,
        carried_signals,
        ms = started.elapsed().as_millis() as u64,
        "state advanced"
    );
    (state, changes)
}

/// The instances a signal names: those it describes, and the one whose role session acted.
fn instances_named(s: &crate::signal::Signal) -> impl Iterator<Item = &str> {
    s.instances
        .iter()
        .map(|i| i.instance_id.as_str())
        .chain(s.actor.as_ref().and_then(|a| a.instance_id.as_deref()))
}

/// The references of a sequence's signals, sorted and without repeats.
fn refs(seq: &Sequence) -> Vec<String> {
    let mut out: Vec<String> = seq.signals.iter().map(|s| s.reference.key()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The earlier-written sequence that `seq` goes on with although its computed `Id` differs
/// (a late record opened it earlier, or a finding's other copy tells another first
/// sighting): same rule and group, and a signal in common. Grouping is unchanged, so the
/// finding keeps the `Id` and `CreatedAt` it was written with.
fn continued<'a>(
    prior: Option<&'a State>,
    seq: &Sequence,
    refs: &[String],
    taken: &HashSet<String>,
) -> Option<&'a SequenceRecord> {
    let group = seq.key.to_string();
    prior?.sequences.iter().find(|r| {
        r.rule == seq.rule_id
            && r.group == group
            && !taken.contains(&r.id)
            && r.refs.iter().any(|x| refs.binary_search(x).is_ok())
    })
}

/// Whether an earlier finding's signals are now held by sequences of its rule (in another
/// group, since no sequence continues it). Records of states that did not keep references
/// count as regrouped, as they did then.
fn regrouped(r: &SequenceRecord, held: &HashMap<String, HashSet<String>>) -> bool {
    r.refs.is_empty()
        || held
            .get(r.rule.as_str())
            .is_some_and(|h| r.refs.iter().any(|x| h.contains(x)))
}

/// Gives a finding the identity it was first written with.
fn inherit(f: &mut Value, id: &str, created: Millis) {
    f["Id"] = Value::from(id);
    f["CreatedAt"] = Value::from(format_rfc3339(created));
    if let Some(seq) = f.pointer_mut("/Detection/Sequence") {
        seq["Uid"] = Value::from(id);
    }
}

/// A fingerprint of a finding's whole content: a hash of its compact JSON text (the same bytes
/// as `Value::to_string`, which fingerprints were taken of before the text was kept).
fn fingerprint(f: &KeptFinding) -> String {
    crate::normalize::stable_hash(f.text().as_bytes())
}

/// Why an earlier finding is archived.
enum Why<'a> {
    /// Its signals sit in another group's sequence now.
    Superseded,
    /// The finding with this `Id` rolled it up.
    RolledUp(&'a str),
    /// It held the GuardDuty finding with this key, archived since.
    Withdrawn(&'a str),
}

/// Marks a finding written earlier as replaced: ARCHIVED, saying why in its description and
/// `ProductFields` (never in `Note` or `Workflow`, which belong to analysts).
fn archive(f: &mut Value, at: Millis, why: Why<'_>) {
    if let Some(m) = f.as_object_mut() {
        m.insert("RecordState".into(), Value::from("ARCHIVED"));
        m.insert("UpdatedAt".into(), Value::from(format_rfc3339(at)));
        let said;
        let (why, absorbed_by, withdrawn) = match why {
            Why::RolledUp(id) => {
                said = format!(
                    "Rolled up: this sequence is part of one attack with others, and the finding {id} carries its signals now (one finding per attack). "
                );
                (said.as_str(), Some(id), None)
            }
            Why::Superseded => (
                "Superseded: later records put this sequence's signals in another attack-sequence finding of finding-correlator (same rule), which carries them now. ",
                None,
                None,
            ),
            Why::Withdrawn(finding) => {
                said = format!(
                    "Withdrawn: the GuardDuty finding {finding} that this sequence held was archived since (closed by an analyst), and the other signals form no sequence without it. "
                );
                (said.as_str(), None, Some(finding))
            }
        };
        if let Some(d) = m.get("Description").and_then(Value::as_str) {
            let mut text = format!("{why}{d}");
            if text.chars().count() > 1024 {
                text = text.chars().take(1023).collect::<String>() + "…";
            }
            m.insert("Description".into(), Value::from(text));
        }
        if let Some(pf) = m.get_mut("ProductFields").and_then(Value::as_object_mut) {
            pf.insert(
                "finding-correlator/superseded".into(),
                Value::from(format_rfc3339(at)),
            );
            if let Some(id) = absorbed_by {
                pf.insert("finding-correlator/absorbed-by".into(), Value::from(id));
            }
            if let Some(finding) = withdrawn {
                pf.insert(
                    "finding-correlator/withdrawn-for".into(),
                    Value::from(finding),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_hash_of_the_text_a_finding_was_fingerprinted_by_before() {
        // States saved before the kept text was hashed hold the hash of `Value::to_string`: a
        // finding written then must not be taken for a changed one now.
        for v in [
            serde_json::json!({"Id": "x", "Title": "a \"quoted\" <tag> é\u{1}\n\t/", "Nested": {"b": [1, 2.5, -0.0, 1e300, null, true]}}),
            serde_json::json!({}),
            serde_json::json!({"Resources": [{"Id": "i-1", "Details": {"Other": {"k": "v"}}}]}),
        ] {
            assert_eq!(
                fingerprint(&KeptFinding::of(&v)),
                crate::normalize::stable_hash(v.to_string().as_bytes())
            );
        }
    }
}
