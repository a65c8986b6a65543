//! Roll-up: one attack, one finding. Between matching and the sinks, the sequences of finding
//! rules that are about the same attack are joined into the most severe of them.
//!
//! Two sequences are about the same attack when they are in the same account, their time spans
//! overlap or come within the absorbing rule's window of each other, and (a) they have the
//! same group key, or (b) one is keyed on a principal (or access key) whose role session is the
//! credentials of an instance of the other's group, or (c) they share a signal (the same
//! record, also when a weak-signal rule passed it on). Of two related sequences the higher
//! ranked absorbs the other (severity, then the earlier start, then the rule id), and only if
//! its rule's `rollup.absorbs` names the other's rule. Related pairs join into connected
//! components (union-find over the pairs in rank order, so the result does not depend on the
//! order sequences arrive in); a pair that would put two different instance groups (or
//! instances) into one component is left out, so a roll-up never merges two groups. The top
//! sequence of each component absorbs the rest: their signals, stages, launched instances and
//! members join it, and they are listed in its finding instead of being written on their own.
//!
//! The rolled-up finding keeps the `Id` of the member that opened first (whose condition held
//! at the earliest event time): a scheduled task writes that member first, so a finding already
//! in Security Hub keeps its identity when sequences of other rules join it later, and one run
//! over all input gives the same `Id` as consecutive runs.

use std::cmp::Reverse;
use std::collections::HashSet;

use serde::Serialize;

use crate::matcher::{GroupKey, Sequence};
use crate::rules::{Emit, Label, Rule, RuleSet};
use crate::signal::RecordRef;
use crate::time::Millis;

/// What a sequence absorbed, and the finding `Id` it is written under.
#[derive(Clone, Debug, Serialize)]
pub struct RollUp {
    /// The finding `Id`: that of the member that opened first.
    pub id: String,
    /// The `Id` the absorbing sequence would have on its own.
    pub own_id: String,
    /// The absorbed sequences, in rank order.
    pub absorbed: Vec<Absorbed>,
}

impl RollUp {
    /// The `Id`s every member (the absorbing sequence first) would have on its own.
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.own_id.as_str()).chain(self.absorbed.iter().map(|a| a.id.as_str()))
    }
}

/// A sequence absorbed by another.
#[derive(Clone, Debug, Serialize)]
pub struct Absorbed {
    /// The finding `Id` it would have on its own.
    pub id: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Label,
    pub key: GroupKey,
    pub start: Millis,
    pub opened: Millis,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub signals: usize,
    pub stages: Vec<String>,
    #[serde(skip)]
    pub tactics: Vec<String>,
    #[serde(skip)]
    pub techniques: Vec<String>,
    #[serde(skip)]
    pub types: Vec<String>,
}

/// The record a signal stands for: a weak signal (`rule:<id>/<record>`) stands for the record
/// it was made from.
fn record_key(reference: &RecordRef) -> String {
    let key = reference.key();
    let mut k = key.as_str();
    while let Some(rest) = k.strip_prefix("rule:") {
        match rest.split_once('/') {
            Some((_, inner)) => k = inner,
            None => break,
        }
    }
    k.to_string()
}

/// The instances whose credentials a principal- or access-key-keyed sequence is about.
fn session_instances(seq: &Sequence) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in &seq.signals {
        let Some(a) = &s.actor else { continue };
        let keyed = match &seq.key {
            GroupKey::Principal(p) => a.principal_key() == Some(p.as_str()),
            GroupKey::AccessKey(k) => a.access_key_id.as_deref() == Some(k.as_str()),
            _ => false,
        };
        if let Some(i) = a.instance_id.as_deref().filter(|_| keyed)
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

/// Whether `inst` is an instance of the sequence's group (or the instance it stands for).
fn in_group(seq: &Sequence, inst: &str) -> bool {
    match &seq.key {
        GroupKey::Group(_) => seq.members.iter().any(|m| m.as_str() == inst),
        GroupKey::Instance(i) => i.as_str() == inst,
        _ => false,
    }
}

/// The instance group (or lone instance) a sequence is keyed on.
fn group_of(seq: &Sequence) -> Option<&GroupKey> {
    matches!(seq.key, GroupKey::Group(_) | GroupKey::Instance(_)).then_some(&seq.key)
}

/// What [`related`] needs of a sequence, computed once.
struct Facts<'a> {
    records: HashSet<String>,
    sessions: Vec<&'a str>,
}

impl<'a> Facts<'a> {
    fn of(seq: &'a Sequence) -> Facts<'a> {
        Facts {
            records: seq
                .signals
                .iter()
                .map(|s| record_key(&s.reference))
                .collect(),
            sessions: session_instances(seq),
        }
    }
}

/// Whether two sequences are about the same attack, with `window` the absorbing rule's.
fn related(a: &Sequence, fa: &Facts<'_>, b: &Sequence, fb: &Facts<'_>, window: Millis) -> bool {
    match (&a.account, &b.account) {
        (Some(x), Some(y)) if x == y => {}
        _ => return false,
    }
    let gap = a
        .first_seen
        .max(b.first_seen)
        .saturating_sub(a.last_seen.min(b.last_seen));
    if gap > window {
        return false;
    }
    a.key == b.key
        || fa.sessions.iter().any(|i| in_group(b, i))
        || fb.sessions.iter().any(|i| in_group(a, i))
        || fa.records.iter().any(|r| fb.records.contains(r))
}

/// Rolls related finding sequences into the most severe of each attack. Weak-signal
/// sequences pass unchanged; the order of the rest is kept, absorbed ones left out.
pub fn roll_up(seqs: Vec<Sequence>, rules: &RuleSet) -> Vec<Sequence> {
    let rule_of = |s: &Sequence| -> Option<&Rule> {
        rules.get(&s.rule_id).filter(|_| s.emit == Emit::Finding)
    };
    // Finding sequences in rank order: the most severe, then the earliest, then by rule id.
    let mut ranked: Vec<usize> = (0..seqs.len())
        .filter(|&i| rule_of(&seqs[i]).is_some())
        .collect();
    if ranked.len() < 2 {
        return seqs;
    }
    let rank = |i: usize| {
        let s = &seqs[i];
        let severity = rule_of(s).map(|r| r.severity);
        (
            Reverse(severity),
            s.start,
            s.rule_id.as_str(),
            &s.key,
            s.opened,
        )
    };
    ranked.sort_by(|&a, &b| rank(a).cmp(&rank(b)));
    let facts: Vec<Facts<'_>> = ranked.iter().map(|&i| Facts::of(&seqs[i])).collect();

    // Union-find over positions in `ranked`; a root is always its component's best rank.
    let n = ranked.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut group: Vec<Option<&GroupKey>> = ranked.iter().map(|&i| group_of(&seqs[i])).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for a in 0..n {
        let (sa, ra) = (&seqs[ranked[a]], rule_of(&seqs[ranked[a]]));
        let Some(ra) = ra else { continue };
        for b in a + 1..n {
            let sb = &seqs[ranked[b]];
            if !ra.may_absorb(&sb.rule_id) || !related(sa, &facts[a], sb, &facts[b], ra.window) {
                continue;
            }
            let (x, y) = (root(&mut parent, a), root(&mut parent, b));
            if x == y {
                continue;
            }
            if let (Some(gx), Some(gy)) = (group[x], group[y])
                && gx != gy
            {
                continue;
            }
            let (top, low) = (x.min(y), x.max(y));
            parent[low] = top;
            group[top] = group[top].or(group[low]);
        }
    }

    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for p in 0..n {
        let r = root(&mut parent, p);
        members[r].push(p);
    }
    // Sequence index → the index of the sequence that absorbs it.
    let mut absorbed_into: Vec<Option<usize>> = vec![None; seqs.len()];
    let mut absorbing: Vec<Option<Vec<usize>>> = vec![None; seqs.len()];
    for (r, list) in members.iter().enumerate() {
        if list.len() < 2 {
            continue;
        }
        let top = ranked[r];
        let rest: Vec<usize> = list.iter().skip(1).map(|&p| ranked[p]).collect();
        for &i in &rest {
            absorbed_into[i] = Some(top);
        }
        absorbing[top] = Some(rest);
    }
    if absorbing.iter().all(Option::is_none) {
        return seqs;
    }
    let ids: Vec<String> = seqs.iter().map(crate::sinks::asff::finding_id).collect();
    let mut out: Vec<Sequence> = Vec::with_capacity(seqs.len());
    let mut taken: Vec<Option<Sequence>> = seqs.into_iter().map(Some).collect();
    for i in 0..taken.len() {
        if absorbed_into[i].is_some() {
            continue;
        }
        let Some(mut seq) = taken[i].take() else {
            continue;
        };
        if let Some(rest) = &absorbing[i] {
            let others: Vec<(usize, Sequence)> = rest
                .iter()
                .filter_map(|&j| taken[j].take().map(|s| (j, s)))
                .collect();
            absorb(&mut seq, i, others, &ids, rules);
        }
        out.push(seq);
    }
    out
}

/// Joins `others` (with their indices into `ids`) into `seq` (index `at`).
fn absorb(
    seq: &mut Sequence,
    at: usize,
    others: Vec<(usize, Sequence)>,
    ids: &[String],
    rules: &RuleSet,
) {
    // The Id of the member that opened first (ties: the better rank, which comes first).
    let mut first = (seq.opened, at);
    for (j, o) in &others {
        if o.opened < first.0 {
            first = (o.opened, *j);
        }
    }
    let mut held: HashSet<String> = seq
        .signals
        .iter()
        .map(|s| record_key(&s.reference))
        .collect();
    let mut absorbed = Vec::with_capacity(others.len());
    for (j, o) in others {
        let rule = rules.get(&o.rule_id);
        absorbed.push(Absorbed {
            id: ids[j].clone(),
            rule_id: o.rule_id.clone(),
            title: rule.map(|r| r.title.clone()).unwrap_or_default(),
            severity: rule.map_or(Label::Informational, |r| r.severity),
            key: o.key.clone(),
            start: o.start,
            opened: o.opened,
            first_seen: o.first_seen,
            last_seen: o.last_seen,
            signals: o.total_signals,
            stages: o.stages().into_iter().map(str::to_string).collect(),
            tactics: rule.map(|r| r.tactics.clone()).unwrap_or_default(),
            techniques: rule.map(|r| r.techniques.clone()).unwrap_or_default(),
            types: rule.map(|r| r.types.clone()).unwrap_or_default(),
        });
        let mut added = 0;
        for s in &o.signals {
            if held.insert(record_key(&s.reference)) {
                seq.signals.push(s.clone());
                added += 1;
            }
        }
        seq.total_signals += added + o.total_signals.saturating_sub(o.signals.len());
        seq.start = seq.start.min(o.start);
        seq.first_seen = seq.first_seen.min(o.first_seen);
        seq.last_seen = seq.last_seen.max(o.last_seen);
        for l in o.launched {
            if !seq.launched.contains(&l) {
                seq.launched.push(l);
            }
        }
        for m in o.members {
            if !seq.members.contains(&m) {
                seq.members.push(m);
            }
        }
        for d in o.instance_details {
            if !seq
                .instance_details
                .iter()
                .any(|x| x.instance_id == d.instance_id)
            {
                seq.instance_details.push(d);
            }
        }
        for (i, r) in o.instance_regions {
            seq.instance_regions.entry(i).or_insert(r);
        }
    }
    seq.signals.sort_by_key(|a| (a.time, a.reference.key()));
    seq.rollup = Some(Box::new(RollUp {
        id: ids[first.1].clone(),
        own_id: ids[at].clone(),
        absorbed,
    }));
}

/// How many sequences were absorbed into others.
pub fn absorbed_count(seqs: &[Sequence]) -> usize {
    seqs.iter()
        .filter_map(|s| s.rollup.as_ref())
        .map(|r| r.absorbed.len())
        .sum()
}
