//! `correlator state inspect`: what a state holds, part by part, and what each part weighs.
//!
//! The weight of a part is the length of its own JSON encoding in the state document, so the
//! parts add up to the document (less its few header fields); the state is saved compressed,
//! and its size as saved is given beside the document's. Counts are given in the terms of the
//! part: signals by source and kind, graph statements by what they say, sequences by status,
//! baselines by the values they learned.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::signal::Signal;
use crate::state::{SequenceStatus, State};
use crate::time::{Millis, format_rfc3339};

/// What `inspect` found, in the order it is printed.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub origin: String,
    pub version: u32,
    pub written_by: String,
    /// The length of the state as it is saved (compressed).
    pub bytes: usize,
    /// The length of its JSON document (what the parts' weights add up to, less the header
    /// fields).
    pub document_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon: Option<String>,
    pub parts: Vec<Part>,
}

/// One part of the state.
#[derive(Debug, Serialize)]
pub struct Part {
    pub name: &'static str,
    /// What the part is for, in a line.
    pub holds: &'static str,
    pub items: usize,
    pub bytes: usize,
    /// Counts within the part, largest first (at most [`DETAIL_LINES`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<(String, String)>,
}

/// Lines of detail printed per part; the rest is summed up in one more line.
pub const DETAIL_LINES: usize = 8;

fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

fn time_text(t: Option<Millis>) -> Option<String> {
    t.map(format_rfc3339)
}

/// `n` of `unit`, plural when it is not one.
fn count(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Counts of `keys`, largest first and then by name, cut to [`DETAIL_LINES`] with the rest
/// summed in a last line.
fn tally<I: IntoIterator<Item = String>>(keys: I, unit: &str) -> Vec<(String, String)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest: usize = counts.iter().skip(DETAIL_LINES).map(|c| c.1).sum();
    let others = counts.len().saturating_sub(DETAIL_LINES);
    let mut out: Vec<(String, String)> = counts
        .into_iter()
        .take(DETAIL_LINES)
        .map(|(k, n)| (k, count(n, unit)))
        .collect();
    if others > 0 {
        out.push((format!("{others} more"), count(rest, unit)));
    }
    out
}

fn span(times: impl Iterator<Item = Millis> + Clone) -> Option<(String, String)> {
    let first = times.clone().min()?;
    let last = times.max()?;
    Some((
        "event times".into(),
        format!("{} to {}", format_rfc3339(first), format_rfc3339(last)),
    ))
}

fn signal_kind(s: &Signal) -> String {
    format!("{}: {}", s.source.as_str(), s.kind)
}

/// What a graph statement tells the graph, in a word.
fn statement_kind(s: &Signal) -> String {
    let launched = s.instances.iter().filter(|i| i.launched).count();
    if s.ends_its_instances() {
        "terminations (instances ended, let go `terminated_retention` after)".into()
    } else if launched > 0 {
        "launches (who launched which instance into which group)".into()
    } else if !s.instances.is_empty() {
        "instance facts (group, profile, AMI, VPC)".into()
    } else if s.actor.is_some() {
        "calls made as an instance (session → instance)".into()
    } else {
        "other entity facts".into()
    }
}

/// Looks through a state. `origin` names where it was read from.
pub fn inspect(state: &State, origin: &str) -> Inspection {
    let mut parts = Vec::new();

    let mut cp_detail = Vec::new();
    for (source, cp) in &state.checkpoints {
        let mut words = vec![format!("{} records read", cp.records)];
        if let Some(n) = cp.newest {
            words.push(format!("newest event {}", format_rfc3339(n)));
        }
        if let Some(c) = cp.cursor {
            words.push(format!("resumes at {}", format_rfc3339(c)));
        }
        // Any collection the checkpoint keeps, whatever its version calls it, is counted: it
        // is what grows.
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(cp) {
            for (name, value) in fields {
                let n = match value {
                    serde_json::Value::Array(a) => a.len(),
                    serde_json::Value::Object(o) => o.len(),
                    _ => continue,
                };
                words.push(format!("{n} {}", name.replace('_', " ")));
            }
        }
        words.push(format!("{} bytes", encoded_len(cp)));
        cp_detail.push((source.clone(), words.join(", ")));
    }
    parts.push(Part {
        name: "checkpoints",
        holds: "where each source resumes",
        items: state.checkpoints.len(),
        bytes: encoded_len(&state.checkpoints),
        detail: cp_detail,
    });

    let mut detail = tally(state.signals.iter().map(|s| signal_kind(s)), "signal");
    detail.extend(span(state.signals.iter().map(|s| s.time)));
    parts.push(Part {
        name: "signals",
        holds: "selected signals that began at or after the horizon, matched again by the next run",
        items: state.signals.len(),
        bytes: encoded_len(&state.signals),
        detail,
    });

    let mut detail = tally(state.graph.iter().map(|s| statement_kind(s)), "statement");
    detail.extend(span(state.graph.iter().map(|s| s.time)));
    parts.push(Part {
        name: "graph",
        holds: "what earlier records told the entity graph, one copy per distinct statement",
        items: state.graph.len(),
        bytes: encoded_len(&state.graph),
        detail,
    });

    let findings_bytes: usize = state
        .sequences
        .iter()
        .filter_map(|s| s.finding.as_ref())
        .map(encoded_len)
        .sum();
    let mut detail = tally(
        state.sequences.iter().map(|s| {
            format!(
                "{} ({})",
                s.rule,
                match s.status {
                    SequenceStatus::Open => "open",
                    SequenceStatus::Closed => "closed",
                }
            )
        }),
        "sequence",
    );
    if findings_bytes > 0 {
        detail.push((
            "findings kept".into(),
            format!("{findings_bytes} bytes of the part"),
        ));
    }
    parts.push(Part {
        name: "sequences",
        holds: "sequences written as findings that may still grow or closed recently",
        items: state.sequences.len(),
        bytes: encoded_len(&state.sequences),
        detail,
    });

    if let Some(c) = &state.carried {
        let (groups, _, signals) = c.counts();
        let mut detail: Vec<(String, String)> = c
            .per_rule()
            .into_iter()
            .map(|(rule, groups, open, closed)| {
                (
                    rule.to_string(),
                    format!(
                        "{}, {} open and {} closed sequences",
                        count(groups, "group"),
                        open,
                        closed
                    ),
                )
            })
            .collect();
        detail.push(("signals held".into(), count(signals, "signal")));
        parts.push(Part {
            name: "carried",
            holds: "the windows and sequences at the horizon, which the next run goes on from",
            items: groups,
            bytes: encoded_len(c),
            detail,
        });
    }

    let accounts = &state.baselines.accounts;
    let sum = |f: &dyn Fn(&crate::baseline::AccountBaseline) -> usize| -> usize {
        accounts.values().map(f).sum()
    };
    let mut detail = vec![
        ("regions".into(), format!("{}", sum(&|a| a.regions.len()))),
        ("AMIs".into(), format!("{}", sum(&|a| a.amis.len()))),
        (
            "instance types".into(),
            format!("{}", sum(&|a| a.instance_types.len())),
        ),
        (
            "principals".into(),
            format!("{}", sum(&|a| a.principals.len())),
        ),
        (
            "launch rates".into(),
            format!("{} launchers", sum(&|a| a.launch_rates.len())),
        ),
    ];
    detail.retain(|(_, v)| !v.starts_with('0'));
    parts.push(Part {
        name: "baselines",
        holds: "per account, what launches were seen with, and how fast",
        items: accounts.len(),
        bytes: encoded_len(&state.baselines),
        detail,
    });

    parts.push(Part {
        name: "unsent",
        holds: "findings the sink refused, sent again by the next run",
        items: state.unsent.len(),
        bytes: encoded_len(&state.unsent),
        detail: Vec::new(),
    });

    if let Some(lease) = &state.lease {
        parts.push(Part {
            name: "lease",
            holds: "the run that holds the state",
            items: 1,
            bytes: encoded_len(lease),
            detail: vec![(
                lease.holder.clone(),
                format!("until {}", format_rfc3339(lease.expires)),
            )],
        });
    }

    Inspection {
        origin: origin.to_string(),
        version: state.version,
        written_by: state.written_by.clone(),
        bytes: state.encode().len(),
        document_bytes: state.to_json().len(),
        newest: time_text(state.newest),
        horizon: time_text(state.horizon),
        parts,
    }
}

/// A size for a person: bytes, KB or MB (powers of ten, as file listings show them).
pub fn size_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

impl Inspection {
    /// The text `state inspect` prints.
    pub fn text(&self) -> String {
        let mut out = format!(
            "state {}: version {}, written by {}, {} saved ({} of JSON compressed)\n",
            self.origin,
            self.version,
            self.written_by,
            size_text(self.bytes),
            size_text(self.document_bytes)
        );
        match (&self.newest, &self.horizon) {
            (Some(n), Some(h)) => out.push_str(&format!(
                "  newest event {n}; the next run matches again from {h}\n"
            )),
            (Some(n), None) => out.push_str(&format!("  newest event {n}\n")),
            _ => out.push_str("  nothing read yet\n"),
        }
        for p in &self.parts {
            let share = if self.document_bytes == 0 {
                0.0
            } else {
                100.0 * p.bytes as f64 / self.document_bytes as f64
            };
            out.push_str(&format!(
                "  {:<12}{:>9} {:>10} {:>6.1} %  {}\n",
                p.name,
                p.items,
                size_text(p.bytes),
                share,
                p.holds
            ));
            for (what, count) in &p.detail {
                out.push_str(&format!("      {what}: {count}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_keeps_the_largest_and_sums_the_rest() {
        let keys = (0..12).flat_map(|i| std::iter::repeat_n(format!("k{i:02}"), i + 1));
        let t = tally(keys, "x");
        assert_eq!(t.len(), DETAIL_LINES + 1);
        assert_eq!(t[0], ("k11".to_string(), "12 xs".to_string()));
        // k00..k03 are left: 1 + 2 + 3 + 4.
        assert_eq!(t[DETAIL_LINES], ("4 more".to_string(), "10 xs".to_string()));
    }

    #[test]
    fn an_empty_state_has_its_parts_and_nothing_in_them() {
        let state = State::new();
        let i = inspect(&state, "s.json");
        assert_eq!(i.bytes, state.encode().len());
        assert_eq!(i.document_bytes, state.to_json().len());
        assert!(i.parts.iter().all(|p| p.items == 0), "{i:?}");
        assert!(i.text().contains("nothing read yet"), "{}", i.text());
    }
}
