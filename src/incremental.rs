//! Incremental runs: from a run's sequences and the state before it, the findings to write
//! and the state after it.
//!
//! A finding is written when its sequence is new or has changed since the version last
//! written (a fingerprint of the whole finding is kept), so running twice on the same input
//! writes nothing the second time, and a sequence that continues into a later run is written
//! again under the same `Id` with a later `UpdatedAt` and its new signals. The `Id`,
//! `CreatedAt` and `UpdatedAt` all come from event times, never from the clock, so one run over
//! all input and any split of it into consecutive runs write the same findings.
//!
//! The state keeps what the next run needs and no more: the signals at or after the horizon
//! (the oldest point any still-open window, suppression period, allowed lag or replayed
//! sequence reaches back to), the graph statements of the retention period, and the records
//! of sequences that may still be replayed.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::config::Settings;
use crate::matcher::Sequence;
use crate::pipeline::{CorrelateRun, graph_statement, statement_rank, tells_the_graph};
use crate::rules::{Emit, RuleSet};
use crate::sinks::asff::{self, Writer};
use crate::state::{SequenceRecord, SequenceStatus, State};
use crate::time::{Millis, format_rfc3339};

/// What a run changes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Findings to write: new, updated and superseded ones, in a stable order.
    pub write: Vec<Value>,
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Earlier findings whose signals now form another sequence (late records, or a group
    /// that became known): written once more as ARCHIVED, pointing at the new one.
    pub superseded: usize,
    /// Finding sequences still open, and closed, at the end of the run.
    pub open: usize,
    pub closed: usize,
}

impl Changes {
    /// A one-line account for the summary.
    pub fn to_text(&self) -> String {
        format!(
            "findings: {} new, {} updated, {} unchanged, {} superseded ({} to write); sequences: {} open, {} closed\n",
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

/// Computes the findings to write and the state after the run.
pub fn advance(
    prior: Option<&State>,
    run: &CorrelateRun,
    rules: &RuleSet,
    settings: &Settings,
    writer: &Writer,
) -> (State, Changes) {
    let prior_horizon = prior.and_then(|p| p.horizon);
    let newest = run
        .selected
        .iter()
        .map(|s| s.time)
        .max()
        .max(prior.and_then(|p| p.newest));
    let lag = settings.matching.lag;
    let window_of = |seq: &Sequence| rules.get(&seq.rule_id).map_or(0, |r| r.window);
    let suppress_of = |seq: &Sequence| rules.get(&seq.rule_id).map_or(0, |r| r.suppress);

    // The horizon: no later signal can reach behind it, and every sequence that reaches past
    // it is replayed whole (its start is not before it).
    let horizon = newest.map(|n| {
        let mut h = n.saturating_sub(reach(rules, settings));
        for seq in &run.sequences {
            let live = n.saturating_sub(lag) - seq.last_seen <= window_of(seq) + suppress_of(seq);
            if live {
                h = h.min(seq.start);
            }
        }
        loop {
            let pulled = run
                .sequences
                .iter()
                .filter(|s| s.last_seen >= h && s.start < h)
                .map(|s| s.start)
                .min();
            match pulled {
                Some(p) => h = p,
                None => break,
            }
        }
        prior_horizon.map_or(h, |p| h.max(p))
    });

    // Findings: new, changed or unchanged since the version last written.
    let previous: HashMap<&str, &SequenceRecord> = prior
        .map(|p| p.sequences.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default();
    let mut changes = Changes::default();
    let mut records = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for seq in run.sequences.iter().filter(|s| s.emit == Emit::Finding) {
        let Some(rule) = rules.get(&seq.rule_id) else {
            continue;
        };
        let mut finding = asff::finding(seq, rule, writer);
        let id = asff::finding_id(seq);
        let fingerprint = fingerprint(&finding);
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
        ids.insert(id.clone());
        if horizon.is_none_or(|h| seq.start >= h) {
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
                finding: Some(finding.clone()),
            });
        }
        if changed {
            changes.write.push(finding);
        }
    }
    // Earlier findings this run replayed but no longer finds: their signals now belong to
    // other sequences. Archive them so an analyst sees one finding per attack.
    if let Some(p) = prior {
        for r in &p.sequences {
            if ids.contains(&r.id) || r.start < prior_horizon.unwrap_or(Millis::MIN) {
                continue;
            }
            if let Some(mut f) = r.finding.clone() {
                let at = newest
                    .unwrap_or(r.last_seen)
                    .max(r.updated_at.map_or(Millis::MIN, |u| u.saturating_add(1)));
                archive(&mut f, at);
                changes.write.push(f);
                changes.superseded += 1;
            }
        }
    }

    // Signals to replay, and graph statements to keep.
    let h = horizon.unwrap_or(Millis::MIN);
    let mut signals = Vec::new();
    let mut leaving = Vec::new();
    for s in &run.selected {
        if s.time >= h {
            signals.push((**s).clone());
        } else if tells_the_graph(s) {
            leaving.push((**s).clone());
        }
    }
    let retention_start =
        newest.map_or(Millis::MIN, |n| n.saturating_sub(settings.graph_retention));
    // Statements the replayed signals make themselves need no copy.
    let replayed: std::collections::HashSet<u64> =
        signals.iter().filter_map(graph_statement).collect();
    let mut statements: BTreeMap<u64, crate::signal::Signal> = BTreeMap::new();
    let all = prior
        .map(|p| p.graph.iter())
        .into_iter()
        .flatten()
        .chain(run.statements.iter())
        .chain(leaving.iter());
    for s in all {
        if s.time < retention_start {
            continue;
        }
        let Some(key) = graph_statement(s).filter(|k| !replayed.contains(k)) else {
            continue;
        };
        match statements.get(&key) {
            Some(have) if statement_rank(have) >= statement_rank(s) => {}
            _ => {
                statements.insert(key, s.clone());
            }
        }
    }
    let mut graph: Vec<_> = statements.into_values().collect();
    graph.sort_by_key(|s| (s.time, s.reference.key()));

    let mut checkpoints = prior.map(|p| p.checkpoints.clone()).unwrap_or_default();
    for (source, (n, t)) in &run.sources {
        let c = checkpoints.entry((*source).to_string()).or_default();
        c.records += n;
        c.newest = c.newest.max(Some(*t));
    }

    // Baselines as of the horizon: the state's, plus the launches that will not be replayed.
    let mut baselines = prior.map(|p| p.baselines.clone()).unwrap_or_default();
    if rules.rules.iter().any(crate::rules::Rule::uses_baselines) {
        let from = prior_horizon.unwrap_or(Millis::MIN);
        let opts = &settings.matching.baseline;
        for s in run.selected.iter().filter(|s| s.time >= from && s.time < h) {
            baselines.observe(s, opts);
        }
        baselines.expire(h.saturating_sub(opts.retention), opts);
    }

    let mut state = State::new();
    state.baselines = baselines;
    state.checkpoints = checkpoints;
    state.newest = newest;
    state.horizon = horizon;
    state.signals = signals;
    state.graph = graph;
    state.sequences = records;
    if let Some(h) = horizon {
        tracing::debug!(
            horizon = %format_rfc3339(h),
            signals = state.signals.len(),
            statements = state.graph.len(),
            sequences = state.sequences.len(),
            "state advanced"
        );
    }
    (state, changes)
}

/// A fingerprint of a finding's whole content.
fn fingerprint(f: &Value) -> String {
    crate::normalize::stable_hash(f.to_string().as_bytes())
}

/// Marks a finding written earlier as replaced: ARCHIVED, saying why in its description and
/// `ProductFields` (never in `Note` or `Workflow`, which belong to analysts).
fn archive(f: &mut Value, at: Millis) {
    if let Some(m) = f.as_object_mut() {
        m.insert("RecordState".into(), Value::from("ARCHIVED"));
        m.insert("UpdatedAt".into(), Value::from(format_rfc3339(at)));
        let why = "Superseded: later records put this sequence's signals in another attack-sequence finding of finding-correlator (same rule), which carries them now. ";
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
        }
    }
}
