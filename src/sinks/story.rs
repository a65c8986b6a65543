//! A finding's title and description as one story: what happened first, what the credentials
//! did, what was bought, and where; and, for a rolled-up finding, which sequences it absorbed.

use std::collections::BTreeMap;

use crate::matcher::{SeqSignal, Sequence};
use crate::signal::Source;
use crate::time::format_rfc3339;

/// At most this many items of a list are named; the rest are counted.
const NAMED: usize = 4;

fn named(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        out.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    out
}

/// `n × type` per instance type, most first (ties by type).
fn by_type(launched: &[(crate::signal::Str, Option<crate::signal::Str>)]) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, t) in launched {
        *counts
            .entry(t.as_deref().unwrap_or("unknown type"))
            .or_default() += 1;
    }
    let mut list: Vec<(&str, usize)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    list.into_iter()
        .map(|(t, n)| format!("{n} × {t}"))
        .collect()
}

/// The regions the sequence's instances were launched in, in order of launch.
pub fn launch_regions(seq: &Sequence) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &seq.signals {
        for (i, _) in &s.launched {
            let r = seq
                .instance_regions
                .get(i)
                .map(|r| r.to_string())
                .or_else(|| s.region.as_ref().map(|r| r.to_string()));
            if let Some(r) = r
                && !out.contains(&r)
            {
                out.push(r);
            }
        }
    }
    out
}

fn subject(s: &SeqSignal) -> String {
    if !s.instances.is_empty() {
        let list: Vec<String> = s.instances.iter().map(|i| i.to_string()).collect();
        return format!(" on {}", named(&list));
    }
    match s.actor.as_ref().and_then(|a| a.principal_key()) {
        Some(p) => format!(" by {p}"),
        None => String::new(),
    }
}

/// The finding's title: the rule's, the group, and what was launched where.
pub fn title(rule_title: &str, seq: &Sequence) -> String {
    let mut t = format!("{rule_title}: {}", seq.key);
    if !seq.launched.is_empty() {
        let regions = launch_regions(seq);
        t.push_str(&format!(
            ", {} instance(s) launched{}",
            seq.launched.len(),
            if regions.is_empty() {
                String::new()
            } else {
                format!(" in {}", named(&regions))
            }
        ));
    }
    t
}

/// The story of a sequence, in a few sentences.
pub fn story(seq: &Sequence) -> String {
    let mut out = Vec::new();
    if let Some(first) = seq.signals.first() {
        out.push(format!(
            "First, at {}, {}{}.",
            format_rfc3339(first.began()),
            first.describe(),
            subject(first)
        ));
    }
    // What the credentials did: calls, by instance role sessions when there are any, else by
    // whoever made them.
    let by_sessions = seq
        .signals
        .iter()
        .any(|s| s.actor.as_ref().is_some_and(|a| a.instance_id.is_some()));
    let mut whose: Vec<String> = Vec::new();
    let mut calls: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut flagged: Vec<String> = Vec::new();
    for s in &seq.signals {
        let Some(a) = &s.actor else { continue };
        if by_sessions && a.instance_id.is_none() {
            continue;
        }
        let who = match (&a.instance_id, a.principal_key()) {
            (Some(i), _) => i.to_string(),
            (None, Some(p)) => p.to_string(),
            (None, None) => continue,
        };
        if !whose.contains(&who) {
            whose.push(who);
        }
        match (&s.api, s.source) {
            (Some(api), Source::CloudTrail) => {
                let c = calls.entry(api.clone()).or_default();
                c.0 += 1;
                if let Some(e) = &s.error_code {
                    c.1 += 1;
                    if !errors.contains(&e.to_string()) {
                        errors.push(e.to_string());
                    }
                }
            }
            _ if !s.kind.starts_with("rule:") && !flagged.contains(&s.kind.to_string()) => {
                flagged.push(s.kind.to_string());
            }
            _ => {}
        }
    }
    if !whose.is_empty() && (!calls.is_empty() || !flagged.is_empty()) {
        let mut parts = Vec::new();
        if !flagged.is_empty() {
            parts.push(format!("were flagged by {}", named(&flagged)));
        }
        if !calls.is_empty() {
            let list: Vec<String> = calls
                .iter()
                .map(|(api, (n, failed))| match failed {
                    0 => format!("{api} ×{n}"),
                    f => format!("{api} ×{n} ({f} failed)"),
                })
                .collect();
            let mut made = format!("called {}", named(&list));
            if !errors.is_empty() {
                made.push_str(&format!(" (errors: {})", named(&errors)));
            }
            parts.push(made);
        }
        out.push(format!(
            "{} {} {}.",
            if by_sessions {
                "The role credentials of"
            } else {
                "The identity"
            },
            named(&whose),
            parts.join(" and ")
        ));
    }
    if !seq.launched.is_empty() {
        let regions = launch_regions(seq);
        out.push(format!(
            "{} instance(s) were launched ({}){}.",
            seq.launched.len(),
            named(&by_type(&seq.launched)),
            if regions.is_empty() {
                String::new()
            } else {
                format!(" in {}", named(&regions))
            }
        ));
    }
    // Compute bought other than instances listed above (spot requests, fleets, groups,
    // tasks, jobs, functions).
    let mut bought: Vec<String> = Vec::new();
    for s in &seq.signals {
        if let Some(l) = s.launch.as_deref().filter(|l| l.beyond_instances()) {
            let line = l.describe(s.api.as_deref());
            if !bought.contains(&line) {
                bought.push(line);
            }
        }
    }
    if !bought.is_empty() {
        out.push(format!("Compute bought: {}.", bought.join("; ")));
    }
    // Other findings: what GuardDuty saw on the group.
    let mut seen: Vec<String> = Vec::new();
    for s in &seq.signals {
        if s.source != Source::CloudTrail
            && !s.kind.starts_with("rule:")
            && s.actor.as_ref().is_none_or(|a| a.instance_id.is_none())
            && !seen.contains(&s.kind.to_string())
        {
            seen.push(s.kind.to_string());
        }
    }
    if seen.len() > 1 || (seen.len() == 1 && seq.signals.len() > 1) {
        out.push(format!("Findings: {}.", named(&seen)));
    }
    if let Some(r) = &seq.rollup {
        let list: Vec<String> = r
            .absorbed
            .iter()
            .map(|a| {
                format!(
                    "{} {} ({}) on {}, {} signal(s)",
                    a.severity.as_str(),
                    a.rule_id,
                    a.title,
                    a.key,
                    a.signals
                )
            })
            .collect();
        out.push(format!(
            "One attack: this finding also carries {} sequence(s) of other rules: {}.",
            list.len(),
            list.join("; ")
        ));
    }
    out.join(" ")
}
