//! Roll-up: one attack, one finding. Between matching and the sinks, the sequences of finding
//! rules that are about the same attack are joined into the most severe of them.
//!
//! Two sequences are about the same attack when they are in the same account, their time spans
//! overlap or come within the absorbing rule's window of each other, and (a) they have the
//! same group key, or (b) one is keyed on a principal (or access key) whose role session is the
//! credentials of an instance of the other's group, or (c) they share a signal (the same
//! record, also when a weak-signal rule passed it on). Of two related sequences the higher
//! ranked absorbs the other (severity, then the earlier start, then the rule id), and only if
//! its rule's `rollup.absorbs` names the other's rule (a component's top must be allowed to
//! absorb every member, not only the one it is related to). Related pairs join into connected
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
    /// The finding's `CreatedAt`: that of the member whose `Id` it has.
    pub created: Millis,
    /// The `Id` the absorbing sequence would have on its own.
    pub own_id: String,
    /// Its own start (the rolled-up sequence starts at its earliest member's).
    pub own_start: Millis,
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
    /// Its finding's `CreatedAt` on its own ([`Sequence::created`]).
    #[serde(skip)]
    pub created: Millis,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub signals: usize,
    pub stages: Vec<String>,
    /// The records its signals stand for (a timeline marks them as this sequence's stages).
    #[serde(skip)]
    pub records: Vec<String>,
    #[serde(skip)]
    pub tactics: Vec<String>,
    #[serde(skip)]
    pub techniques: Vec<String>,
    #[serde(skip)]
    pub types: Vec<String>,
}

/// The record a signal stands for: a weak signal (`rule:<id>/<record>`) or a Sigma match
/// (`sigma:<id>/<record>`) stands for the record it was made from.
fn record_key(reference: &RecordRef) -> String {
    let key = reference.key();
    let mut k = key.as_str();
    while let Some(rest) = k.strip_prefix("rule:").or_else(|| k.strip_prefix("sigma:")) {
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
        GroupKey::Group(_) => seq
            .members
            .iter()
            .chain(&seq.other_members)
            .any(|m| m.as_str() == inst),
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
    let mut comp_rules: Vec<Vec<&str>> = ranked
        .iter()
        .map(|&i| vec![seqs[i].rule_id.as_str()])
        .collect();
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
            // The joined component's top must be allowed to absorb every other member.
            let (top, low) = (x.min(y), x.max(y));
            let top_rule = rule_of(&seqs[ranked[top]]);
            if !comp_rules[low]
                .iter()
                .all(|r| top_rule.is_some_and(|t| t.may_absorb(r)))
            {
                continue;
            }
            parent[low] = top;
            group[top] = group[top].or(group[low]);
            let moved = std::mem::take(&mut comp_rules[low]);
            comp_rules[top].extend(moved);
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
    let mut first = (seq.opened, at, seq.created);
    let own_start = seq.start;
    for (j, o) in &others {
        if o.opened < first.0 {
            first = (o.opened, *j, o.created);
        }
    }
    let mut held: HashSet<String> = seq
        .signals
        .iter()
        .map(|s| record_key(&s.reference))
        .collect();
    // A member that ran while an absorbed sequence did is listed, whichever it was of the
    // absorbing one; the other members stay of the group.
    let mut listed: HashSet<crate::signal::Str> = seq.members.iter().cloned().collect();
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
            created: o.created,
            first_seen: o.first_seen,
            last_seen: o.last_seen,
            signals: o.total_signals,
            stages: o.stages().into_iter().map(str::to_string).collect(),
            records: o.signals.iter().map(|s| record_key(&s.reference)).collect(),
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
            if listed.insert(m.clone()) {
                seq.members.push(m);
            }
        }
        seq.other_members.extend(o.other_members);
        for d in o.instance_details {
            if !seq
                .instance_details
                .iter()
                .any(|x| x.instance_id == d.instance_id)
            {
                seq.instance_details.push(d);
            }
        }
        seq.instance_regions.add_missing(o.instance_regions);
    }
    seq.other_members.sort_unstable();
    seq.other_members.dedup();
    seq.other_members.retain(|m| !listed.contains(m));
    seq.signals.sort_by_cached_key(|a| a.story_order());
    seq.rollup = Some(Box::new(RollUp {
        id: ids[first.1].clone(),
        created: first.2,
        own_id: ids[at].clone(),
        own_start,
        absorbed,
    }));
}

/// With a state: the rolled-up sequence under the `Id` of the member written first, when a
/// member was written before (`written`) and the `Id` roll-up chose was not. Late records can
/// make a member that opened earlier appear after another member was written; the finding in
/// Security Hub keeps its identity. None when the chosen `Id` stands.
pub fn keep_written_id(seq: &Sequence, written: impl Fn(&str) -> bool) -> Option<Sequence> {
    let r = seq.rollup.as_ref()?;
    if written(&r.id) {
        return None;
    }
    let first = std::iter::once((seq.opened, r.own_id.as_str(), seq.created))
        .chain(
            r.absorbed
                .iter()
                .map(|a| (a.opened, a.id.as_str(), a.created)),
        )
        .filter(|(_, id, _)| written(id))
        .min()?;
    let mut kept = seq.clone();
    if let Some(k) = kept.rollup.as_mut() {
        k.id = first.1.to_string();
        k.created = first.2;
    }
    Some(kept)
}

/// The absorbed sequences a signal of a rolled-up sequence belongs to (a signal may be in the
/// absorbing sequence too), for a timeline.
pub fn absorbed_with<'a>(seq: &'a Sequence, s: &crate::matcher::SeqSignal) -> Vec<&'a Absorbed> {
    let Some(r) = &seq.rollup else {
        return Vec::new();
    };
    let key = record_key(&s.reference);
    r.absorbed
        .iter()
        .filter(|a| a.records.contains(&key))
        .collect()
}

/// How many sequences were absorbed into others.
pub fn absorbed_count(seqs: &[Sequence]) -> usize {
    seqs.iter()
        .filter_map(|s| s.rollup.as_ref())
        .map(|r| r.absorbed.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GroupId;
    use crate::matcher::SeqSignal;
    use crate::signal::{Actor, EntityId, EntityKind, Source, Str};
    use proptest::prelude::*;
    use std::sync::Arc;

    const T0: Millis = 1_746_176_400_000; // 2025-05-02T09:00:00Z
    const MIN: Millis = 60_000;

    fn rules() -> RuleSet {
        RuleSet::builtin().expect("shipped rules load")
    }

    fn group(name: &str) -> GroupKey {
        GroupKey::Group(GroupId {
            account: Some(Str::from("111122223333")),
            key: EntityId::new(EntityKind::AutoScalingGroup, name),
        })
    }

    /// A call at `T0 + minute` minutes by the role session of `instance`.
    fn call(id: &str, minute: i64, instance: Option<&str>, launched: usize) -> Arc<SeqSignal> {
        let session = instance.unwrap_or("ci-runner");
        Arc::new(SeqSignal {
            reference: crate::signal::RecordRef::EventId(Str::from(id)),
            time: T0 + minute * MIN,
            source: Source::CloudTrail,
            kind: Str::from("ec2.amazonaws.com:RunInstances"),
            severity: 0.0,
            stage: "launch".into(),
            weak: false,
            title: None,
            account: Some(Str::from("111122223333")),
            region: Some(Str::from("ap-southeast-3")),
            actor: Some(Box::new(Actor {
                principal_id: Some(Str::from(format!("AROAEXAMPLE:{session}"))),
                instance_id: instance.map(Str::from),
                ..Actor::default()
            })),
            instances: instance.map(Str::from).into_iter().collect(),
            launched: (0..launched)
                .map(|j| {
                    (
                        Str::from(format!("i-0{id}{j}")),
                        Some(Str::from("p3.16xlarge")),
                    )
                })
                .collect(),
            endpoints: vec![],
            api: Some("ec2:RunInstances".into()),
            high_risk_api: false,
            mining_domains: vec![],
            error_code: None,
            count: 1,
            first_seen: T0 + minute * MIN,
            last_seen: T0 + minute * MIN,
            updated_at: None,
            notes: Vec::new(),
            launch: None,
            tactics: Vec::new(),
            techniques: Vec::new(),
        })
    }

    fn finding_signal(id: &str, minute: i64, instance: &str) -> Arc<SeqSignal> {
        let mut s = (*call(id, minute, None, 0)).clone();
        s.reference = crate::signal::RecordRef::FindingArn(Str::from(format!(
            "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{id}"
        )));
        s.source = Source::GuardDuty;
        s.kind = Str::from("CryptoCurrency:EC2/BitcoinTool.B!DNS");
        s.actor = None;
        s.api = None;
        s.instances = vec![Str::from(instance)];
        s.stage = "cryptomining".into();
        Arc::new(s)
    }

    fn seq(
        set: &RuleSet,
        rule: &str,
        key: GroupKey,
        members: &[&str],
        signals: Vec<Arc<SeqSignal>>,
    ) -> Sequence {
        let r = set.get(rule).expect("shipped rule");
        let start = signals.iter().map(|s| s.time).min().expect("signals");
        let mut s = Sequence::new(r, key, start);
        s.opened = signals.iter().map(|s| s.time).max().expect("signals");
        for x in signals {
            s.add(x, 1000);
        }
        s.signals.sort_by_key(|a| a.time);
        s.account = Some(Str::from("111122223333"));
        s.region = Some(Str::from("us-east-1"));
        s.members = members.iter().map(|m| Str::from(*m)).collect();
        s.launched = s.signals.iter().flat_map(|x| x.launched.clone()).collect();
        s
    }

    /// The attack on web-asg: the group sequence, the launch sequence of its credentials on
    /// the group, and a mass-compute sequence keyed on the stolen role session.
    fn attack(set: &RuleSet) -> Vec<Sequence> {
        let member = "i-0aaaaaaaaaaaaaaa1";
        vec![
            seq(
                set,
                "compromised-instance-group",
                group("web-asg"),
                &[member, "i-0aaaaaaaaaaaaaaa2"],
                vec![
                    finding_signal("f1", 0, member),
                    call("e1", 20, Some(member), 0),
                ],
            ),
            seq(
                set,
                "instance-credentials-launch-compute",
                group("web-asg"),
                &[member, "i-0aaaaaaaaaaaaaaa2"],
                vec![call("e2", 25, Some(member), 4)],
            ),
            seq(
                set,
                "mass-compute-deployment",
                GroupKey::Principal(Str::from(format!("AROAEXAMPLE:{member}"))),
                &[],
                vec![call("e3", 30, Some(member), 2)],
            ),
        ]
    }

    fn ids(seqs: &[Sequence]) -> Vec<String> {
        seqs.iter().map(crate::sinks::asff::finding_id).collect()
    }

    #[test]
    fn issue_14_one_attack_rolls_into_the_most_severe_sequence() {
        let set = rules();
        let out = roll_up(attack(&set), &set);
        assert_eq!(out.len(), 1, "{:?}", ids(&out));
        let s = &out[0];
        assert_eq!(
            s.rule_id, "compromised-instance-group",
            "the CRITICAL one absorbs"
        );
        let r = s.rollup.as_ref().expect("rolled up");
        let absorbed: Vec<&str> = r.absorbed.iter().map(|a| a.rule_id.as_str()).collect();
        assert_eq!(
            absorbed,
            [
                "instance-credentials-launch-compute",
                "mass-compute-deployment"
            ],
            "(a) the same group and (b) a session of a member, in rank order"
        );
        assert_eq!(s.total_signals, 4, "every signal joins, once");
        assert_eq!(s.signals.len(), 4);
        assert_eq!(s.launched.len(), 6, "launched instances join");
        assert_eq!(s.last_seen, T0 + 30 * MIN);
        // The group sequence opened first (at its second signal, minute 20).
        assert_eq!(r.id, r.own_id);
        assert_eq!(crate::sinks::asff::finding_id(s), r.own_id);
        assert_eq!(absorbed_count(&out), 2);
    }

    #[test]
    fn a_session_of_a_member_not_listed_in_the_group_finding_still_rolls_up() {
        // The mass-compute sequence acts with the credentials of a member launched after the
        // group sequence's last signal: not listed in its finding (it did not run while the
        // attack did), but of the group, so the sequences are one attack.
        let set = rules();
        let late = "i-0aaaaaaaaaaaaaaa3";
        let mut seqs = attack(&set);
        seqs.remove(1);
        seqs[0].other_members = vec![Str::from(late)];
        seqs[1] = seq(
            &set,
            "mass-compute-deployment",
            GroupKey::Principal(Str::from(format!("AROAEXAMPLE:{late}"))),
            &[],
            vec![call("e3", 30, Some(late), 2)],
        );
        let out = roll_up(seqs, &set);
        assert_eq!(out.len(), 1, "{:?}", ids(&out));
        assert_eq!(out[0].rule_id, "compromised-instance-group");
        assert_eq!(
            out[0].members,
            ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"],
            "the listed members stay those that ran while the attack did"
        );
        assert_eq!(out[0].other_members, [late]);
    }

    #[test]
    fn a_member_that_ran_while_an_absorbed_sequence_did_is_listed() {
        // The group sequence ran before a member launched; the launch sequence of the same
        // group, which it absorbs, ran while that member did: the member is listed, and no
        // longer among the others.
        let set = rules();
        let late = "i-0aaaaaaaaaaaaaaa3";
        let mut seqs = attack(&set);
        seqs.truncate(2);
        seqs[0].other_members = vec![Str::from(late)];
        seqs[1].members.push(Str::from(late));
        let out = roll_up(seqs, &set);
        assert_eq!(out.len(), 1, "{:?}", ids(&out));
        assert_eq!(
            out[0].members,
            ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", late]
        );
        assert!(
            out[0].other_members.is_empty(),
            "{:?}",
            out[0].other_members
        );
    }

    #[test]
    fn issue_14_the_id_is_the_member_that_opened_first() {
        let set = rules();
        let mut seqs = attack(&set);
        // The launch sequence opened (was written) before the group's condition held.
        seqs[0].opened = T0 + 40 * MIN;
        let own_launch_id = crate::sinks::asff::finding_id(&seqs[1]);
        let out = roll_up(seqs, &set);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule_id, "compromised-instance-group");
        assert_eq!(crate::sinks::asff::finding_id(&out[0]), own_launch_id);
    }

    #[test]
    fn issue_14_the_result_does_not_depend_on_the_order_of_sequences() {
        let set = rules();
        let base = attack(&set);
        let expect = roll_up(base.clone(), &set);
        for perm in [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let seqs: Vec<Sequence> = perm.iter().map(|&i| base[i].clone()).collect();
            let out = roll_up(seqs, &set);
            assert_eq!(ids(&out), ids(&expect), "order {perm:?}");
            let refs = |s: &Sequence| -> Vec<String> {
                s.signals.iter().map(|x| x.reference.key()).collect()
            };
            assert_eq!(refs(&out[0]), refs(&expect[0]), "order {perm:?}");
        }
    }

    #[test]
    fn issue_14_a_shared_signal_relates_sequences_and_weak_copies_count_once() {
        let set = rules();
        let member = "i-0ccccccccccccccc1";
        // The group sequence holds the launch as a weak signal of another rule.
        let mut weak = (*call("e9", 5, Some(member), 3)).clone();
        weak.reference =
            crate::signal::RecordRef::RuleMatch(Str::from("rule:compute-resource-creation/e9"));
        let g = seq(
            &set,
            "compromised-instance-group",
            group("batch-asg"),
            &[member],
            vec![finding_signal("f2", 0, member), Arc::new(weak)],
        );
        // An access-key sequence naming no group, sharing the record.
        let mut k = seq(
            &set,
            "mass-compute-deployment",
            GroupKey::AccessKey(Str::from("ASIAOTHER")),
            &[],
            vec![call("e9", 5, None, 3), call("e10", 6, None, 1)],
        );
        k.rule_id = "launch-rate-outlier".into();
        let out = roll_up(vec![g, k], &set);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].total_signals, 3,
            "e9 once, as the group's weak signal"
        );
    }

    #[test]
    fn issue_14_never_across_accounts_groups_or_time() {
        let set = rules();
        // Another account.
        let mut seqs = attack(&set);
        seqs[1].account = Some(Str::from("444455556666"));
        assert_eq!(roll_up(seqs, &set).len(), 2, "two accounts stay apart");
        // Beyond the absorbing rule's window (24 h) of each other.
        let mut seqs = attack(&set);
        seqs.truncate(2);
        let late = 25 * 60 * MIN;
        seqs[1] = seq(
            &set,
            "instance-credentials-launch-compute",
            group("web-asg"),
            &["i-0aaaaaaaaaaaaaaa1"],
            vec![call("e2", 40 + late / MIN, Some("i-0aaaaaaaaaaaaaaa1"), 4)],
        );
        assert_eq!(roll_up(seqs, &set).len(), 2, "a day apart");
        // Two groups, each attacked, and a session sequence sharing a signal with each:
        // the session joins one of them, the groups never join.
        let a = "i-0aaaaaaaaaaaaaaa1";
        let b = "i-0bbbbbbbbbbbbbbb1";
        let ga = seq(
            &set,
            "compromised-instance-group",
            group("web-asg"),
            &[a],
            vec![finding_signal("fa", 0, a), call("ea", 3, Some(a), 0)],
        );
        let gb = seq(
            &set,
            "compromised-instance-group",
            group("etl-asg"),
            &[b],
            vec![finding_signal("fb", 1, b), call("eb", 4, Some(b), 0)],
        );
        let p = seq(
            &set,
            "mass-compute-deployment",
            GroupKey::Principal(Str::from(format!("AROAEXAMPLE:{a}"))),
            &[],
            vec![call("ea", 3, Some(a), 0), call("eb", 4, Some(b), 0)],
        );
        let out = roll_up(vec![ga, gb, p], &set);
        assert_eq!(out.len(), 2, "{:?}", ids(&out));
        assert_eq!(absorbed_count(&out), 1);
        let groups: Vec<String> = out.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            groups,
            ["auto_scaling_group/web-asg", "auto_scaling_group/etl-asg"]
        );
    }

    #[test]
    fn issue_14_rules_declare_what_they_absorb() {
        let mut set = rules();
        for r in &mut set.rules {
            if r.id == "compromised-instance-group" {
                r.absorbs = vec!["mass-*".into()];
            }
        }
        let out = roll_up(attack(&set), &set);
        let kept: Vec<&str> = out.iter().map(|s| s.rule_id.as_str()).collect();
        assert_eq!(
            kept,
            [
                "compromised-instance-group",
                "instance-credentials-launch-compute"
            ],
            "only mass-compute-deployment is absorbed"
        );
        for r in &mut set.rules {
            r.absorbs = Vec::new();
        }
        assert_eq!(
            roll_up(attack(&set), &set).len(),
            3,
            "`absorbs: []` absorbs nothing"
        );
    }

    /// A run of the incremental path with these sequences (already rolled up), whose newest
    /// signal is at `newest`.
    fn run_of(seqs: Vec<Sequence>, newest: Millis) -> crate::pipeline::CorrelateRun {
        let signal = crate::signal::Signal {
            time: newest,
            account: Some(Str::from("111122223333")),
            region: Some(Str::from("us-east-1")),
            source: Source::CloudTrail,
            kind: Str::from("ec2.amazonaws.com:DescribeInstances"),
            severity: 0.0,
            reference: crate::signal::RecordRef::EventId(Str::from(format!("newest-{newest}"))),
            updated_at: None,
            actor: None,
            instances: Vec::new(),
            resources: Vec::new(),
            endpoints: Vec::new(),
            fields: crate::signal::Fields::default(),
        };
        crate::pipeline::CorrelateRun {
            graph: crate::graph::EntityGraph::new(Vec::new(), false),
            summary: crate::summary::Summary::default(),
            sequences: seqs,
            matching: crate::matcher::MatchStats::default(),
            selected: vec![Arc::new(signal)],
            statements: Vec::new(),
            before_horizon: 0,
            archived: Vec::new(),
            sources: std::collections::BTreeMap::new(),
            // A picture taken before every signal: every sequence is kept.
            carried: Some((
                crate::matcher::Carried::default(),
                crate::baseline::Baselines::default(),
            )),
            inputs: Vec::new(),
        }
    }

    #[test]
    fn issue_14_members_written_separately_leave_one_active_finding() {
        let set = rules();
        let settings = crate::config::Config::default()
            .validate()
            .expect("default settings");
        let writer = crate::sinks::asff::Writer::default();
        let member = "i-0aaaaaaaaaaaaaaa1";
        let group_seq = |members: &[&str]| {
            seq(
                &set,
                "compromised-instance-group",
                group("web-asg"),
                members,
                vec![
                    finding_signal("f1", 0, member),
                    call("e1", 20, Some(member), 0),
                ],
            )
        };
        let session = seq(
            &set,
            "mass-compute-deployment",
            GroupKey::Principal(Str::from(format!("AROAEXAMPLE:{member}"))),
            &[],
            vec![call("e3", 30, Some(member), 2)],
        );
        // Run 1: the session's instance is not known as a member yet: two findings.
        let first = roll_up(vec![group_seq(&[]), session.clone()], &set);
        assert_eq!(first.len(), 2);
        let (state, changes) = crate::incremental::advance(
            Some(&crate::state::State::new()),
            &run_of(first, T0 + 31 * MIN),
            &set,
            &settings,
            &writer,
        );
        assert_eq!(changes.write.len(), 2);
        let group_id = crate::sinks::asff::finding_id(&group_seq(&[]));
        let session_id = crate::sinks::asff::finding_id(&session);
        // Run 2: a record made it a member; the group's finding absorbs the session's.
        let second = roll_up(vec![group_seq(&[member]), session.clone()], &set);
        assert_eq!(second.len(), 1);
        let (_, changes) = crate::incremental::advance(
            Some(&state),
            &run_of(second, T0 + 32 * MIN),
            &set,
            &settings,
            &writer,
        );
        assert_eq!(changes.superseded, 1);
        let by_id = |id: &str| {
            changes
                .write
                .iter()
                .map(crate::state::KeptFinding::value)
                .find(|f| f["Id"] == id)
                .unwrap_or_else(|| panic!("{id} not written: {:?}", changes.write))
        };
        let active = by_id(&group_id);
        assert_eq!(active["RecordState"], "ACTIVE");
        assert_eq!(
            active["ProductFields"]["finding-correlator/absorbed-ids"],
            session_id.as_str()
        );
        let archived = by_id(&session_id);
        assert_eq!(archived["RecordState"], "ARCHIVED");
        assert_eq!(
            archived["ProductFields"]["finding-correlator/absorbed-by"],
            group_id.as_str()
        );
        assert!(
            archived["Description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Rolled up: ") && d.contains(&group_id)),
            "{}",
            archived["Description"]
        );
    }

    #[test]
    fn issue_14_a_member_written_first_keeps_its_id() {
        let set = rules();
        let written_id = crate::sinks::asff::finding_id(&attack(&set)[2]);
        // The group sequence opened first (it would name the finding), but only the session's
        // sequence was written before.
        let out = roll_up(attack(&set), &set);
        assert_ne!(crate::sinks::asff::finding_id(&out[0]), written_id);
        let kept = keep_written_id(&out[0], |id| id == written_id).expect("a written member");
        assert_eq!(crate::sinks::asff::finding_id(&kept), written_id);
        assert_eq!(kept.rule_id, "compromised-instance-group");
        assert!(keep_written_id(&out[0], |_| false).is_none());
    }

    /// Sequences of several attacks at once: web-asg's three, two groups bridged by a session
    /// sequence, and one in another account.
    fn pool(set: &RuleSet) -> Vec<Sequence> {
        let mut out = attack(set);
        let (a, b) = ("i-0ccccccccccccccc1", "i-0ddddddddddddddd1");
        out.push(seq(
            set,
            "compromised-instance-group",
            group("etl-asg"),
            &[a],
            vec![finding_signal("fa", 2, a), call("ea", 3, Some(a), 0)],
        ));
        out.push(seq(
            set,
            "instance-credentials-launch-compute",
            group("api-asg"),
            &[b],
            vec![call("eb", 4, Some(b), 3)],
        ));
        out.push(seq(
            set,
            "mass-compute-deployment",
            GroupKey::Principal(Str::from(format!("AROAEXAMPLE:{a}"))),
            &[],
            vec![call("ea", 3, Some(a), 0), call("eb", 4, Some(b), 3)],
        ));
        let mut other = seq(
            set,
            "instance-credentials-launch-compute",
            group("web-asg"),
            &["i-0aaaaaaaaaaaaaaa1"],
            vec![call("e7", 26, Some("i-0aaaaaaaaaaaaaaa1"), 2)],
        );
        other.account = Some(Str::from("444455556666"));
        out.push(other);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any subset of the pool in any order: the same findings, never two groups or two
        /// accounts in one, and every input either written or absorbed exactly once.
        #[test]
        fn issue_14_roll_up_is_a_function_of_the_set_of_sequences(
            picked in proptest::sample::subsequence((0..7usize).collect::<Vec<_>>(), 1..=7),
            order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let set = rules();
            let all = pool(&set);
            let inputs: Vec<Sequence> = order
                .iter()
                .filter(|i| picked.contains(i))
                .map(|&i| all[i].clone())
                .collect();
            let sorted: Vec<Sequence> = picked.iter().map(|&i| all[i].clone()).collect();
            let n = inputs.len();
            let out = roll_up(inputs, &set);
            let want = roll_up(sorted, &set);
            let mut got_ids = ids(&out);
            let mut want_ids = ids(&want);
            got_ids.sort();
            want_ids.sort();
            prop_assert_eq!(&got_ids, &want_ids);
            prop_assert_eq!(out.len() + absorbed_count(&out), n);
            for s in &out {
                let Some(r) = &s.rollup else { continue };
                for a in &r.absorbed {
                    if let (Some(g), GroupKey::Group(_) | GroupKey::Instance(_)) =
                        (group_of(s), &a.key)
                    {
                        prop_assert_eq!(g, &a.key, "two groups in one finding");
                    }
                }
                let account = format!("/{}/", s.account.as_deref().unwrap_or("none"));
                prop_assert!(r.absorbed.iter().all(|a| a.id.contains(&account)), "two accounts");
            }
        }
    }
}
