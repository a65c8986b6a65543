//! Investigating attack sequences: picking one by its finding `Id` (`--sequence`), its
//! neighbourhood in the entity graph (what every graph export writes with `--sequence`), and
//! the self-contained HTML investigation report.
//!
//! A sequence's neighbourhood starts from its signals (as signal nodes), the entities they
//! name, its group node and its members; [`ExportGraph::neighbourhood`] adds one hop of
//! entities around them. The report ([`html`]) draws that subgraph as SVG laid out here in
//! Rust ([`layout`]), beside a timeline of the signals; it hands nothing on.

mod html;
mod layout;
mod route;
mod svg;

use std::io::{self, Write};

use crate::graph::export::ExportGraph;
use crate::graph::{EntityGraph, group_node_id};
use crate::matcher::{GroupKey, SeqSignal, Sequence};
use crate::rules::{Emit, RuleSet};
use crate::signal::{Endpoint, EntityId, EntityKind, RecordRef};
use crate::sinks::asff::finding_id;

/// The sequences that become findings (weak-signal rules' sequences do not), most severe
/// first, then by when they opened and by id.
pub fn finding_sequences<'a>(seqs: &'a [Sequence], rules: &RuleSet) -> Vec<&'a Sequence> {
    let mut out: Vec<(std::cmp::Reverse<u8>, i64, String, &Sequence)> = seqs
        .iter()
        .filter(|s| s.emit == Emit::Finding)
        .map(|s| {
            let severity = rules.get(&s.rule_id).map_or(0, |r| r.severity as u8);
            (std::cmp::Reverse(severity), s.start, finding_id(s), s)
        })
        .collect();
    out.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
    out.into_iter().map(|(.., s)| s).collect()
}

/// The sequence whose finding `Id` (which is also its `Detection.Sequence.Uid`) is `id`.
///
/// # Errors
/// A message naming the known ids when no finding sequence has that id.
pub fn pick<'a>(seqs: &'a [Sequence], rules: &RuleSet, id: &str) -> Result<&'a Sequence, String> {
    let candidates = finding_sequences(seqs, rules);
    let id = id.trim();
    if let Some(s) = candidates.iter().find(|s| finding_id(s) == id) {
        return Ok(s);
    }
    // The id a sequence rolled into another would have had (an earlier link) names the
    // finding that carries it now.
    if let Some(s) = candidates.iter().find(|s| {
        s.rollup
            .as_ref()
            .is_some_and(|r| r.member_ids().any(|m| m == id))
    }) {
        return Ok(s);
    }
    let mut msg = format!("--sequence: no attack sequence has the id {id:?}");
    if candidates.is_empty() {
        msg.push_str("; this input has no attack sequences");
    } else {
        msg.push_str("; the known ids (finding Id, also its Detection.Sequence.Uid) are:");
        for s in &candidates {
            msg.push_str("\n  ");
            msg.push_str(&finding_id(s));
        }
    }
    Err(msg)
}

/// The sequences to show: the one `id` names, or every finding sequence when `id` is None.
///
/// # Errors
/// As [`pick`].
pub fn select<'a>(
    seqs: &'a [Sequence],
    rules: &RuleSet,
    id: Option<&str>,
) -> Result<Vec<&'a Sequence>, String> {
    match id {
        Some(id) => pick(seqs, rules, id).map(|s| vec![s]),
        None => Ok(finding_sequences(seqs, rules)),
    }
}

/// The key of the raw record behind a signal: a rule's weak signal is about another signal
/// (`rule:<id>/<that signal's key>`), and so is a Sigma rule's match (`sigma:<id>/<key>`),
/// whose record is the one in the graph.
pub fn record_key(r: &RecordRef) -> String {
    let mut key = r.key();
    if matches!(r, RecordRef::RuleMatch(_)) {
        while let Some(rest) = key
            .strip_prefix("rule:")
            .or_else(|| key.strip_prefix("sigma:"))
        {
            match rest.split_once('/') {
                Some((_, inner)) => key = inner.to_string(),
                None => break,
            }
        }
    }
    key
}

/// The export node id of the entity a sequence is keyed by (its group node for a group).
pub fn key_node(key: &GroupKey) -> String {
    match key {
        GroupKey::Group(g) => group_node_id(g),
        GroupKey::Instance(i) => EntityId::new(EntityKind::Instance, i.clone()).to_string(),
        GroupKey::Principal(p) => EntityId::new(EntityKind::Principal, p.clone()).to_string(),
        GroupKey::Account(a) => EntityId::new(EntityKind::Account, a.clone()).to_string(),
        GroupKey::AccessKey(k) => EntityId::new(EntityKind::AccessKey, k.clone()).to_string(),
        // No entity stands for a field's value: the neighbourhood starts from the signals.
        GroupKey::Field(..) => key.to_string(),
    }
}

/// The node ids a sequence's neighbourhood starts from: its signals' nodes, the entities the
/// signals name (also when the graph keeps no signal nodes), the node of its key (the group)
/// and its members.
pub fn seeds(seq: &Sequence) -> Vec<String> {
    let mut out = vec![key_node(&seq.key)];
    for m in &seq.members {
        out.push(EntityId::new(EntityKind::Instance, m.clone()).to_string());
    }
    for s in &seq.signals {
        out.push(signal_node(s));
        out.extend(signal_entities(s));
    }
    out.sort();
    out.dedup();
    out
}

/// The node id of a sequence signal's record.
pub fn signal_node(s: &SeqSignal) -> String {
    format!("signal:{}", record_key(&s.reference))
}

/// The node ids of the entities a sequence signal names, as the sequence keeps it: its
/// actor (principal, access key, role, instance), the instances it is about or launched,
/// its endpoints.
pub fn signal_entities(s: &SeqSignal) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = &s.actor {
        out.extend(a.principal().map(|p| p.to_string()));
        let named = [
            (EntityKind::AccessKey, &a.access_key_id),
            (EntityKind::IamRole, &a.role_arn),
            (EntityKind::Instance, &a.instance_id),
        ];
        for (kind, v) in named {
            if let Some(v) = v {
                out.push(EntityId::new(kind, v.clone()).to_string());
            }
        }
    }
    for i in s.instances.iter().chain(s.launched.iter().map(|(i, _)| i)) {
        out.push(EntityId::new(EntityKind::Instance, i.clone()).to_string());
    }
    for e in &s.endpoints {
        out.push(match e {
            Endpoint::Ip(ip) => EntityId::new(EntityKind::Ip, ip.clone()).to_string(),
            Endpoint::Domain(d) => EntityId::new(EntityKind::Domain, d.clone()).to_string(),
        });
    }
    out.dedup();
    out
}

/// A sequence's neighbourhood in the graph.
pub fn neighbourhood<'g>(graph: &'g EntityGraph, seq: &Sequence) -> ExportGraph<'g> {
    ExportGraph::neighbourhood(graph, &seeds(seq))
}

/// What the report is about.
pub struct Report<'a> {
    pub graph: &'a EntityGraph,
    pub rules: &'a RuleSet,
    /// The sequences to show, in order.
    pub sequences: Vec<&'a Sequence>,
}

/// Writes the HTML investigation report: one self-contained page (styles and script inline,
/// nothing loaded from anywhere).
pub fn write_html(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    html::write(report, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_signal_leads_to_the_record_it_is_about() {
        for (r, want) in [
            (RecordRef::EventId("e-1".into()), "e-1"),
            (
                RecordRef::FindingArn("arn:aws:guardduty:x/finding/1".into()),
                "arn:aws:guardduty:x/finding/1",
            ),
            (RecordRef::RuleMatch("rule:a/e-1".into()), "e-1"),
            (RecordRef::RuleMatch("rule:a/rule:b/e-1".into()), "e-1"),
            (
                RecordRef::RuleMatch("rule:a/arn:aws:guardduty:x/finding/1".into()),
                "arn:aws:guardduty:x/finding/1",
            ),
            // An event id that happens to start like a rule match is kept as it is.
            (RecordRef::EventId("rule:x/y".into()), "rule:x/y"),
        ] {
            assert_eq!(record_key(&r), want, "{r:?}");
        }
    }
}
