//! The matcher's windows and sequences as they stood at a point in event time, kept in the
//! state so that the next run goes on from there instead of matching again everything
//! before it.
//!
//! A scheduled run takes this picture at the state's next horizon: just before the first
//! signal whose activity began at or after it. The next run restores it and matches only the
//! signals from the horizon on, in the same order one run over everything would: so every
//! window, open sequence and sequence that may still reopen goes on as it would have, however
//! long ago it began, and a run replays a fixed span (the longest window plus suppression plus
//! the allowed lag) instead of everything back to the start of the oldest open sequence.
//!
//! Sequences that ended within the longest window before the point are carried too, and a
//! sequence that ended long before stays while it rolled up with one that goes on, so the
//! next run rolls them up again. A signal that began before the point comes in again only as
//! another version of its record (a GuardDuty finding updated since): a later one takes the
//! old one's place in its window, an older one is not matched, as one run matches only the
//! latest version of each record.
//!
//! What the picture cannot do is move a signal taken before the horizon to another group
//! when the graph later learns more (a group that becomes known days after its instances'
//! calls): it stays in the group it was matched in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Agg, Entry, KeyState, Matcher, Measured, SeqSignal, Sequence};
use crate::graph::GroupId;
use crate::matcher::GroupKey;
use crate::rules::{GroupBy, Rule};
use crate::signal::{EntityId, Str};
use crate::time::Millis;

/// The matcher's windows and sequences at [`Carried::at`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    /// The signals whose activity began before this are in the windows and sequences below;
    /// those at or after it are matched again by the next run.
    pub at: Millis,
    /// How far matching had come (a signal that began before this is late).
    released_up_to: Millis,
    /// The signals the windows and sequences hold, each once.
    signals: Vec<Arc<SeqSignal>>,
    /// Per rule, its groups' windows and sequences.
    rules: Vec<CarriedRule>,
    /// Sequences that had ended by the point, recently enough that a sequence the next run
    /// writes may still roll up with them: the next run writes them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ended: Vec<CarriedEnded>,
    /// Sequences of `rules` the run that took the picture found no later signal can change
    /// (rule, group, start), until [`Carried::leave_out_dead`] leaves them out.
    #[serde(skip)]
    dead: HashSet<(String, String, Millis)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedEnded {
    rule: String,
    shape: String,
    key: KeyForm,
    sequence: CarriedSequence,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedRule {
    rule: String,
    /// A hash of what the windows' arithmetic depends on (stages, condition, grouping,
    /// window, suppression): a rule changed since is matched afresh from the horizon.
    shape: String,
    groups: Vec<CarriedGroup>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedGroup {
    key: KeyForm,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entries: Vec<CarriedEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spans: Vec<CarriedEntry>,
    joined: u64,
    counts: Vec<u32>,
    stage_times: Vec<Vec<Millis>>,
    /// The running sums, as the bits of each `f64` (exact whatever was added and taken away).
    sums: Vec<u64>,
    distinct: Vec<Vec<(Str, u32)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<CarriedSequence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed: Option<CarriedSequence>,
}

/// A group key as the state writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KeyForm {
    Group {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Str>,
        key: EntityId,
    },
    Instance(Str),
    Principal(Str),
    Account(Str),
    AccessKey(Str),
    Field(String, Str),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedEntry {
    time: Millis,
    until: Millis,
    order: u64,
    stage: usize,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    weak: bool,
    /// Its index in [`Carried::signals`].
    signal: usize,
    measures: Vec<Option<MeasureForm>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MeasureForm {
    One,
    /// The bits of the `f64`.
    Number(u64),
    Values(Vec<Str>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CarriedSequence {
    start: Millis,
    created: Millis,
    opened: Millis,
    first_seen: Millis,
    last_seen: Millis,
    /// Indexes in [`Carried::signals`], in the order the sequence holds them.
    signals: Vec<usize>,
    total_signals: usize,
}

/// A hash of what a rule's windows depend on.
fn shape(rule: &Rule) -> String {
    let stages: Vec<(&str, bool, bool)> = rule
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.weak, s.absent))
        .collect();
    let text = format!(
        "{stages:?} {:?} {:?} {} {}",
        rule.condition, rule.group_by, rule.window, rule.suppress
    );
    crate::normalize::stable_hash(text.as_bytes())
}

/// Collects signals into one table, each once.
#[derive(Default)]
struct Table {
    signals: Vec<Arc<SeqSignal>>,
    index: HashMap<*const SeqSignal, usize>,
}

impl Table {
    fn of(&mut self, s: &Arc<SeqSignal>) -> usize {
        *self.index.entry(Arc::as_ptr(s)).or_insert_with(|| {
            self.signals.push(s.clone());
            self.signals.len() - 1
        })
    }
}

fn key_form(key: &GroupKey) -> KeyForm {
    match key {
        GroupKey::Group(g) => KeyForm::Group {
            account: g.account.clone(),
            key: g.key.clone(),
        },
        GroupKey::Instance(i) => KeyForm::Instance(i.clone()),
        GroupKey::Principal(p) => KeyForm::Principal(p.clone()),
        GroupKey::Account(a) => KeyForm::Account(a.clone()),
        GroupKey::AccessKey(k) => KeyForm::AccessKey(k.clone()),
        GroupKey::Field(name, v) => KeyForm::Field((*name).to_string(), v.clone()),
    }
}

/// The key back, if `rule` still groups that way.
fn group_key(form: KeyForm, rule: &Rule) -> Option<GroupKey> {
    Some(match form {
        KeyForm::Group { account, key } => GroupKey::Group(GroupId { account, key }),
        KeyForm::Instance(i) => GroupKey::Instance(i),
        KeyForm::Principal(p) => GroupKey::Principal(p),
        KeyForm::Account(a) => GroupKey::Account(a),
        KeyForm::AccessKey(k) => GroupKey::AccessKey(k),
        KeyForm::Field(name, v) => match rule.group_by {
            GroupBy::Field(f) if f.name() == name => GroupKey::Field(f.name(), v),
            _ => return None,
        },
    })
}

fn entry_form(e: &Entry, table: &mut Table) -> CarriedEntry {
    CarriedEntry {
        time: e.time,
        until: e.until,
        order: e.order,
        stage: e.stage,
        weak: e.weak,
        signal: table.of(&e.signal),
        measures: e
            .measures
            .iter()
            .map(|m| {
                m.as_ref().map(|m| match m {
                    Measured::One => MeasureForm::One,
                    Measured::Number(n) => MeasureForm::Number(n.to_bits()),
                    Measured::Values(v) => MeasureForm::Values(v.clone()),
                })
            })
            .collect(),
    }
}

fn sequence_form(s: &Sequence, table: &mut Table) -> CarriedSequence {
    CarriedSequence {
        start: s.start,
        created: s.created,
        opened: s.opened,
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        signals: s.signals.iter().map(|x| table.of(x)).collect(),
        total_signals: s.total_signals,
    }
}

/// The key as [`GroupKey`]'s `Display` writes it (the group of a sequence record).
fn key_text(k: &KeyForm) -> String {
    match k {
        KeyForm::Group { account, key } => GroupId {
            account: account.clone(),
            key: key.clone(),
        }
        .to_string(),
        KeyForm::Instance(i) => GroupKey::Instance(i.clone()).to_string(),
        KeyForm::Principal(p) => GroupKey::Principal(p.clone()).to_string(),
        KeyForm::Account(a) => GroupKey::Account(a.clone()).to_string(),
        KeyForm::AccessKey(k) => GroupKey::AccessKey(k.clone()).to_string(),
        KeyForm::Field(name, v) => format!("{name}/{v}"),
    }
}

/// A carried sequence back as the matcher holds it.
fn sequence_back(
    s: &CarriedSequence,
    rule: &Rule,
    key: &GroupKey,
    signals: &[Arc<SeqSignal>],
) -> Sequence {
    let mut seq = Sequence::new(rule, key.clone(), s.start);
    seq.created = s.created;
    seq.opened = s.opened;
    seq.first_seen = s.first_seen;
    seq.last_seen = s.last_seen;
    seq.signals = s.signals.iter().map(|&i| signals[i].clone()).collect();
    seq.total_signals = s.total_signals;
    seq
}

/// Why a carried picture cannot be restored.
fn damaged(what: &str) -> String {
    format!("the state's carried windows are damaged: {what}")
}

impl Carried {
    /// Sequences it holds, as (rule, group, start): the next run writes them again.
    pub fn sequences(&self) -> HashSet<(String, String, Millis)> {
        let mut out = HashSet::new();
        for r in &self.rules {
            for g in &r.groups {
                let key = key_text(&g.key);
                for s in g.open.iter().chain(&g.closed) {
                    out.insert((r.rule.clone(), key.clone(), s.start));
                }
            }
        }
        for e in &self.ended {
            out.insert((e.rule.clone(), key_text(&e.key), e.sequence.start));
        }
        out
    }

    /// Whether the picture holds together: every signal it names is in its table, and each
    /// window's entries and aggregates have the sizes of its rule's stages and thresholds.
    pub fn check(&self) -> Result<(), String> {
        let n = self.signals.len();
        let named = |i: usize| {
            if i < n {
                Ok(())
            } else {
                Err(damaged(&format!("it names signal {i} of {n}")))
            }
        };
        for r in &self.rules {
            for g in &r.groups {
                let stages = g.counts.len();
                let thresholds = g.sums.len();
                if g.stage_times.len() != stages || g.distinct.len() != thresholds {
                    return Err(damaged(&format!(
                        "a window of rule {} has aggregates of different sizes",
                        r.rule
                    )));
                }
                for e in g.entries.iter().chain(&g.spans) {
                    named(e.signal)?;
                    if e.stage >= stages || e.measures.len() != thresholds {
                        return Err(damaged(&format!(
                            "an entry of rule {} does not fit its window",
                            r.rule
                        )));
                    }
                }
                for s in g.open.iter().chain(&g.closed) {
                    for &i in &s.signals {
                        named(i)?;
                    }
                }
            }
        }
        for e in &self.ended {
            for &i in &e.sequence.signals {
                named(i)?;
            }
        }
        Ok(())
    }

    /// Marks the sequences `dead` says no later signal can reach (given rule, group, start,
    /// the sequence as the picture holds it: last seen, signals, and when the earliest entry
    /// of its group's window began).
    pub(super) fn mark_dead(
        &mut self,
        dead: impl Fn(&str, &str, Millis, Millis, usize, Option<Millis>) -> bool,
    ) {
        for r in &self.rules {
            for g in &r.groups {
                let key = key_text(&g.key);
                let earliest = g.entries.iter().chain(&g.spans).map(|e| e.time).min();
                for s in g.open.iter().chain(&g.closed) {
                    if dead(
                        &r.rule,
                        &key,
                        s.start,
                        s.last_seen,
                        s.total_signals,
                        earliest,
                    ) {
                        self.dead.insert((r.rule.clone(), key.clone(), s.start));
                    }
                }
            }
        }
    }

    /// Leaves out the sequences marked dead, but for those rolled up (in `rolled`, the run's
    /// sequences after roll-up) with one that is not (the next run must roll them up again),
    /// with the groups left with nothing and the signals only they held.
    pub fn leave_out_dead(&mut self, rolled: &[Sequence]) {
        let mut dead = std::mem::take(&mut self.dead);
        for seq in rolled {
            let Some(r) = &seq.rollup else {
                continue;
            };
            let members: Vec<(String, String, Millis)> =
                std::iter::once((seq.rule_id.clone(), seq.key.to_string(), r.own_start))
                    .chain(
                        r.absorbed
                            .iter()
                            .map(|a| (a.rule_id.clone(), a.key.to_string(), a.start)),
                    )
                    .collect();
            if members.iter().any(|m| !dead.contains(m)) {
                for m in &members {
                    dead.remove(m);
                }
            }
        }
        if dead.is_empty() {
            return;
        }
        for r in &mut self.rules {
            for g in &mut r.groups {
                let key = key_text(&g.key);
                for slot in [&mut g.open, &mut g.closed] {
                    if slot
                        .as_ref()
                        .is_some_and(|s| dead.contains(&(r.rule.clone(), key.clone(), s.start)))
                    {
                        *slot = None;
                    }
                }
            }
        }
        for r in &mut self.rules {
            r.groups.retain(|g| {
                !(g.entries.is_empty()
                    && g.spans.is_empty()
                    && g.open.is_none()
                    && g.closed.is_none())
            });
        }
        self.rules.retain(|r| !r.groups.is_empty());
        // The signals still held, renumbered in the order they were.
        let mut used = vec![false; self.signals.len()];
        for e in &self.ended {
            for &i in &e.sequence.signals {
                used[i] = true;
            }
        }
        for r in &self.rules {
            for g in &r.groups {
                for e in g.entries.iter().chain(&g.spans) {
                    used[e.signal] = true;
                }
                for s in g.open.iter().chain(&g.closed) {
                    for &i in &s.signals {
                        used[i] = true;
                    }
                }
            }
        }
        let mut renumber = vec![usize::MAX; self.signals.len()];
        let mut kept = Vec::new();
        for (i, s) in std::mem::take(&mut self.signals).into_iter().enumerate() {
            if used[i] {
                renumber[i] = kept.len();
                kept.push(s);
            }
        }
        self.signals = kept;
        for e in &mut self.ended {
            for i in &mut e.sequence.signals {
                *i = renumber[*i];
            }
        }
        for r in &mut self.rules {
            for g in &mut r.groups {
                for e in g.entries.iter_mut().chain(&mut g.spans) {
                    e.signal = renumber[e.signal];
                }
                for s in g.open.iter_mut().chain(&mut g.closed) {
                    for i in &mut s.signals {
                        *i = renumber[*i];
                    }
                }
            }
        }
    }

    /// Per rule: its groups with a window or sequence, and their open and closed sequences
    /// (for `state inspect`).
    pub fn per_rule(&self) -> Vec<(&str, usize, usize, usize)> {
        self.rules
            .iter()
            .map(|r| {
                let open = r.groups.iter().filter(|g| g.open.is_some()).count();
                let closed = r.groups.iter().filter(|g| g.closed.is_some()).count();
                (r.rule.as_str(), r.groups.len(), open, closed)
            })
            .collect()
    }

    /// What it holds: groups, sequences, signals.
    pub fn counts(&self) -> (usize, usize, usize) {
        let groups = self.rules.iter().map(|r| r.groups.len()).sum();
        let sequences = self
            .rules
            .iter()
            .flat_map(|r| &r.groups)
            .map(|g| usize::from(g.open.is_some()) + usize::from(g.closed.is_some()))
            .sum::<usize>()
            + self.ended.len();
        (groups, sequences, self.signals.len())
    }
}

impl Matcher {
    /// The windows and sequences as they stand now, with the point they stand at.
    pub(super) fn picture(&self, at: Millis) -> Carried {
        let mut table = Table::default();
        let since = at.saturating_sub(self.longest_window());
        let mut ended: Vec<(&Sequence, &Rule)> = self
            .finished
            .iter()
            .filter(|s| s.last_seen >= since)
            .filter_map(|s| Some((s, self.rules.get(&s.rule_id)?)))
            .collect();
        ended.sort_by(|(a, _), (b, _)| {
            (a.rule_id.as_str(), &a.key, a.start).cmp(&(b.rule_id.as_str(), &b.key, b.start))
        });
        let ended: Vec<CarriedEnded> = ended
            .into_iter()
            .map(|(seq, rule)| CarriedEnded {
                rule: seq.rule_id.clone(),
                shape: shape(rule),
                key: key_form(&seq.key),
                sequence: sequence_form(seq, &mut table),
            })
            .collect();
        let mut rules = Vec::new();
        for (ri, states) in self.states.iter().enumerate() {
            let rule = &self.rules.rules[ri];
            let mut keyed: Vec<(&GroupKey, &KeyState)> = states.iter().collect();
            keyed.sort_by(|a, b| a.0.cmp(b.0));
            let mut groups = Vec::with_capacity(keyed.len());
            for (key, st) in keyed {
                let mut distinct: Vec<Vec<(Str, u32)>> = st
                    .agg
                    .distinct
                    .iter()
                    .map(|d| d.iter().map(|(v, n)| (v.clone(), *n)).collect())
                    .collect();
                for d in &mut distinct {
                    d.sort();
                }
                groups.push(CarriedGroup {
                    key: key_form(key),
                    entries: st
                        .entries
                        .iter()
                        .map(|e| entry_form(e, &mut table))
                        .collect(),
                    spans: st.spans.iter().map(|e| entry_form(e, &mut table)).collect(),
                    joined: st.joined,
                    counts: st.agg.stage_counts.clone(),
                    stage_times: st
                        .agg
                        .stage_times
                        .iter()
                        .map(|t| t.iter().copied().collect())
                        .collect(),
                    sums: st.agg.sums.iter().map(|s| s.to_bits()).collect(),
                    distinct,
                    open: st.open.as_ref().map(|s| sequence_form(s, &mut table)),
                    closed: st.closed.as_ref().map(|s| sequence_form(s, &mut table)),
                });
            }
            if !groups.is_empty() {
                rules.push(CarriedRule {
                    rule: rule.id.clone(),
                    shape: shape(rule),
                    groups,
                });
            }
        }
        Carried {
            at,
            released_up_to: self.released_up_to,
            signals: table.signals,
            rules,
            ended,
            dead: HashSet::new(),
        }
    }

    /// Goes on from `carried` (which [`Carried::check`] passed): its windows and sequences
    /// become this matcher's. A rule that is gone or changed since matches afresh from the
    /// picture's point (a warning says so).
    pub fn restore(&mut self, carried: &Carried) {
        let signal = |i: usize| carried.signals[i].clone();
        let by_id: HashMap<&str, usize> = self
            .rules
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let rules = self.rules.clone();
        for cr in &carried.rules {
            let Some(&ri) = by_id.get(cr.rule.as_str()) else {
                tracing::warn!(rule = %cr.rule, "the state holds windows of a rule that is gone: they are dropped");
                continue;
            };
            let rule = &rules.rules[ri];
            if shape(rule) != cr.shape {
                tracing::warn!(rule = %cr.rule, "the rule changed since the state was saved: its windows before the state's horizon are dropped");
                continue;
            }
            for g in &cr.groups {
                // The shape is the same, so is the field it groups by.
                let Some(key) = group_key(g.key.clone(), rule) else {
                    continue;
                };
                let entry = |e: &CarriedEntry| Entry {
                    time: e.time,
                    until: e.until,
                    order: e.order,
                    stage: e.stage,
                    weak: e.weak,
                    signal: signal(e.signal),
                    measures: e
                        .measures
                        .iter()
                        .map(|m| {
                            m.as_ref().map(|m| match m {
                                MeasureForm::One => Measured::One,
                                MeasureForm::Number(b) => Measured::Number(f64::from_bits(*b)),
                                MeasureForm::Values(v) => Measured::Values(v.clone()),
                            })
                        })
                        .collect(),
                };
                let sequence = |s: &CarriedSequence| sequence_back(s, rule, &key, &carried.signals);
                let spans: Vec<Entry> = g.spans.iter().map(entry).collect();
                let entries: VecDeque<Entry> = g.entries.iter().map(entry).collect();
                // The stage times are those of the entries held, sorted: made again from them,
                // not read (a picture saved before expiring findings took their own times out
                // can hold the time of an entry still there in place of one that left).
                let mut stage_times = vec![Vec::new(); g.stage_times.len()];
                for e in entries.iter().chain(&spans).filter(|e| !e.weak) {
                    stage_times[e.stage].push(e.time);
                }
                let st = KeyState {
                    entries,
                    spans_end: spans.iter().map(|e| e.until).min().unwrap_or(Millis::MAX),
                    spans,
                    joined: g.joined,
                    agg: Agg {
                        stage_counts: g.counts.clone(),
                        stage_times: stage_times
                            .into_iter()
                            .map(|mut t| {
                                t.sort_unstable();
                                t.into()
                            })
                            .collect(),
                        sums: g.sums.iter().map(|b| f64::from_bits(*b)).collect(),
                        distinct: g
                            .distinct
                            .iter()
                            .map(|d| d.iter().cloned().collect())
                            .collect(),
                    },
                    open: g.open.as_ref().map(sequence),
                    closed: g.closed.as_ref().map(sequence),
                };
                self.states[ri].insert(key, st);
            }
        }
        for e in &carried.ended {
            let Some(rule) = rules.get(&e.rule).filter(|r| shape(r) == e.shape) else {
                continue;
            };
            if let Some(key) = group_key(e.key.clone(), rule) {
                self.finished
                    .push(sequence_back(&e.sequence, rule, &key, &carried.signals));
            }
        }
        // The version of each record the picture holds (not the weak signals rules made of
        // them, which carry no version of their own).
        for s in carried
            .signals
            .iter()
            .filter(|s| !s.kind.starts_with("rule:"))
        {
            let version = crate::signal::version(s.updated_at, s.source, s.time);
            let held = self
                .restored_versions
                .entry(s.reference.clone())
                .or_insert(version);
            *held = (*held).max(version);
        }
        self.released_up_to = self.released_up_to.max(carried.released_up_to);
        self.newest = self.newest.max(carried.released_up_to);
        self.restored_at = Some(carried.at);
    }
}
