//! The run summary: what was read, what was skipped and why, what the graph holds.
//!
//! Printed on stderr at the end of every run (stdout stays for data), as text for a person or
//! JSON for a machine. Problems are also logged one by one as they happen, capped per file so
//! a broken 1 GB file cannot flood the terminal; the summary counts all of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::graph::{Added, EntityGraph};
use crate::normalize::{RecordKind, Severity};
use crate::sources::file::{FileProblem, FileStats};

/// Problems logged per file before the rest are only counted.
pub const LOG_PER_FILE: usize = 20;

/// Counts of one run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: u64,
    pub gzip_files: u64,
    pub files_not_json: u64,
    pub bytes: u64,
    /// Records decoded into signals, per input kind.
    pub records: BTreeMap<&'static str, u64>,
    /// Signals after merging copies and versions of the same record.
    pub distinct_signals: u64,
    pub duplicates_merged: u64,
    /// Records no rule and not the graph needed (`correlate` drops them as it reads).
    pub not_needed: u64,
    /// Records of accounts in other shards (`aws.shard`), dropped as they are read (those no
    /// rule or graph needed are counted in `not_needed`).
    #[serde(skip_serializing_if = "is_zero")]
    pub other_shards: u64,
    pub findings_updated: u64,
    /// Records or files lost, by reason (file-specific parts of reasons kept).
    pub skipped: u64,
    pub ignored: u64,
    pub skipped_reasons: BTreeMap<String, u64>,
    pub ignored_reasons: BTreeMap<String, u64>,
    pub entities: u64,
    pub edges: u64,
    pub groups: Vec<GroupSummary>,
    /// Regions of records that are not in this build's list (`data/partitions.json`), with
    /// their signals: newer than the list, or made up. They are kept as given.
    pub unknown_regions: BTreeMap<String, u64>,
    /// Instance types of records that are not in this build's table
    /// (`data/instance_types.tsv`), with their signals: no vCPUs, GPUs or accelerators are
    /// counted for them.
    pub unknown_instance_types: BTreeMap<String, u64>,
    #[serde(skip)]
    logged_per_file: BTreeMap<Arc<Path>, usize>,
    #[serde(skip)]
    known_regions: std::collections::HashSet<String>,
}

#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub members: Vec<String>,
}

impl Summary {
    pub fn record(&mut self, kind: RecordKind) {
        *self.records.entry(kind.as_str()).or_default() += 1;
    }

    /// Records decoded but needed neither by a rule nor by the graph (dropped as read).
    pub fn not_needed(&mut self, kind: RecordKind, n: u64) {
        *self.records.entry(kind.as_str()).or_default() += n;
        self.not_needed += n;
    }

    /// Of the records counted as not needed, `n` were of other shards' accounts.
    pub fn other_shards(&mut self, n: u64) {
        self.other_shards += n;
        self.not_needed = self.not_needed.saturating_sub(n);
    }

    /// A signal a rule would take that names no account: skipped (exit 1), since no finding
    /// can name the affected account. The first few are logged.
    pub fn no_account(&mut self, record: &str) {
        const REASON: &str = "no account id (`accountId`, `recipientAccountId` or `AwsAccountId`): no finding can name the affected account";
        self.skipped += 1;
        let n = self.skipped_reasons.entry(REASON.to_string()).or_default();
        *n += 1;
        if *n as usize <= LOG_PER_FILE {
            tracing::warn!(record = %record, "skipped: {REASON}");
        }
    }

    /// Notes a signal's region, when it is not a known one.
    pub fn region(&mut self, region: Option<&str>) {
        let Some(r) = region else { return };
        if self.known_regions.contains(r) {
            return;
        }
        if matches!(
            crate::regions::classify(r),
            crate::regions::Region::Known(_)
        ) {
            self.known_regions.insert(r.to_string());
        } else {
            *self.unknown_regions.entry(r.to_string()).or_default() += 1;
        }
    }

    /// Notes the instance types a signal names (requested or launched) that the instance-type
    /// table does not hold; each signal counts once per type.
    pub fn instance_types(&mut self, signal: &crate::signal::Signal) {
        let requested = signal.fields.requested_instance_type.as_deref();
        let launched = signal
            .instances
            .iter()
            .filter_map(|i| i.instance_type.as_deref());
        let mut seen: Vec<&str> = Vec::new();
        for t in requested.into_iter().chain(launched) {
            if seen.contains(&t) || crate::instance_types::lookup(t).is_some() {
                continue;
            }
            seen.push(t);
            *self
                .unknown_instance_types
                .entry(t.to_string())
                .or_default() += 1;
        }
    }

    /// One warning for the run naming every unknown instance type and its signals.
    pub fn warn_unknown_instance_types(&self) {
        if let Some(list) = self.unknown_instance_types_text() {
            tracing::warn!(
                types = self.unknown_instance_types.len(),
                "instance types not in this build's table ({} types, data/instance_types.tsv), no vCPUs, GPUs or accelerators counted: {list}",
                crate::instance_types::known_types()
            );
        }
    }

    fn unknown_instance_types_text(&self) -> Option<String> {
        (!self.unknown_instance_types.is_empty()).then(|| {
            self.unknown_instance_types
                .iter()
                .map(|(t, n)| format!("{t} ({n} signal(s))"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    pub fn added(&mut self, a: Added) {
        match a {
            Added::New => self.distinct_signals += 1,
            Added::Updated => self.findings_updated += 1,
            Added::Duplicate => self.duplicates_merged += 1,
        }
    }

    pub fn file_done(&mut self, stats: &FileStats) {
        self.files += 1;
        self.bytes += stats.bytes;
        self.gzip_files += u64::from(stats.gzip);
        self.files_not_json += u64::from(stats.not_json);
    }

    /// Counts a problem and logs it, unless its file already logged [`LOG_PER_FILE`].
    pub fn problem(&mut self, p: &FileProblem) {
        let reason = generalise(&p.problem.reason);
        match p.problem.severity {
            Severity::Skipped => {
                self.skipped += 1;
                *self.skipped_reasons.entry(reason).or_default() += 1;
            }
            Severity::Ignored => {
                self.ignored += 1;
                *self.ignored_reasons.entry(reason).or_default() += 1;
            }
        }
        let n = self.logged_per_file.entry(p.file.clone()).or_default();
        *n += 1;
        let loc = p
            .problem
            .location
            .as_ref()
            .map(|l| l.to_string())
            .unwrap_or_default();
        if *n <= LOG_PER_FILE {
            match p.problem.severity {
                Severity::Skipped => tracing::warn!(
                    file = %p.file.display(),
                    record = %loc,
                    "skipped: {}",
                    p.problem.reason
                ),
                Severity::Ignored => tracing::info!(
                    file = %p.file.display(),
                    record = %loc,
                    "ignored: {}",
                    p.problem.reason
                ),
            }
        } else if *n == LOG_PER_FILE + 1 {
            tracing::warn!(
                file = %p.file.display(),
                "more problems in this file are counted in the summary but not logged"
            );
        }
    }

    pub fn graph(&mut self, g: &EntityGraph) {
        // Which of two versions arrived first says whether the later arrival "updated" a
        // finding or was a "duplicate": the graph counts versions the same in any order.
        let merged = self.findings_updated + self.duplicates_merged;
        self.findings_updated = g.older_versions().min(merged);
        self.duplicates_merged = merged - self.findings_updated;
        self.entities = g.entity_count() as u64;
        self.edges = g.edge_count() as u64;
        // Most specific kind of key first, then by name.
        let mut groups: Vec<_> = g.groups().collect();
        groups.sort_by_key(|(id, _)| (id.key.kind, id.to_string()));
        self.groups = groups
            .into_iter()
            .map(|(id, members)| GroupSummary {
                group: id.to_string(),
                members: members.iter().map(|m| m.to_string()).collect(),
            })
            .collect();
    }

    /// Whether anything was lost (exit code 1).
    pub fn lost_anything(&self) -> bool {
        self.skipped > 0
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let records: u64 = self.records.values().sum();
        let _ = writeln!(
            s,
            "read {} file(s) ({} gzip), {} bytes, {} record(s) decoded",
            self.files, self.gzip_files, self.bytes, records
        );
        for (kind, n) in &self.records {
            let _ = writeln!(s, "  {kind}: {n}");
        }
        let _ = writeln!(
            s,
            "signals: {} distinct ({} duplicate copies merged, {} findings updated to a newer version){}",
            self.distinct_signals,
            self.duplicates_merged,
            self.findings_updated,
            if self.not_needed > 0 {
                format!(
                    "; {} more needed by no rule and not by the graph",
                    self.not_needed
                )
            } else {
                String::new()
            }
        );
        if self.other_shards > 0 {
            let _ = writeln!(
                s,
                "other shards: {} record(s) of accounts in other shards left to them",
                self.other_shards
            );
        }
        let _ = writeln!(s, "skipped: {}", self.skipped);
        for (reason, n) in &self.skipped_reasons {
            let _ = writeln!(s, "  {n} × {reason}");
        }
        if self.ignored > 0 {
            let _ = writeln!(s, "ignored: {}", self.ignored);
            for (reason, n) in &self.ignored_reasons {
                let _ = writeln!(s, "  {n} × {reason}");
            }
        }
        let _ = writeln!(
            s,
            "graph: {} entities, {} edges, {} instance group(s)",
            self.entities,
            self.edges,
            self.groups.len()
        );
        // A group may have hundreds of members: a few examples here, all in the JSON.
        const EXAMPLES: usize = 5;
        for g in &self.groups {
            let more = g.members.len().saturating_sub(EXAMPLES);
            let _ = writeln!(
                s,
                "  {} ({} member(s)): {}{}",
                g.group,
                g.members.len(),
                g.members
                    .iter()
                    .take(EXAMPLES)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(", … and {more} more")
                } else {
                    String::new()
                }
            );
        }
        if !self.unknown_regions.is_empty() {
            let list: Vec<String> = self
                .unknown_regions
                .iter()
                .map(|(r, n)| format!("{r} ({n} signal(s))"))
                .collect();
            let _ = writeln!(
                s,
                "regions not in this build's list, kept as given: {}",
                list.join(", ")
            );
        }
        if let Some(list) = self.unknown_instance_types_text() {
            let _ = writeln!(
                s,
                "instance types not in this build's table, no vCPUs counted: {list}"
            );
        }
        s
    }
}

/// Drops quoted values and positions from a reason so equal problems count together.
fn generalise(reason: &str) -> String {
    // serde_json positions: "… at line 1 column 345".
    let r = match reason.find(" at line ") {
        Some(i) => &reason[..i],
        None => reason,
    };
    let mut out = String::with_capacity(r.len());
    let mut in_quote = false;
    for c in r.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…\"");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_generalise() {
        assert_eq!(
            generalise("field `eventTime` is not a timestamp: \"redacted\" (expected x)"),
            "field `eventTime` is not a timestamp: \"…\" (expected x)"
        );
        assert_eq!(
            generalise("record is not valid JSON: expected value at line 1 column 3"),
            "record is not valid JSON: expected value"
        );
    }
}

/// One line of the sequence summary.
#[derive(Debug, Serialize)]
pub struct SequenceLine {
    pub severity: &'static str,
    pub rule: String,
    pub group: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub members: Vec<String>,
    pub launched: usize,
    pub signals: usize,
    pub stages: Vec<String>,
    pub weak_signals: usize,
    pub first_seen: String,
    pub last_seen: String,
    /// The ASFF finding `Id` (findings only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
    /// Sequences of other rules rolled into this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<AbsorbedLine>,
}

/// A sequence rolled into another, as the summary lists it.
#[derive(Debug, Serialize)]
pub struct AbsorbedLine {
    pub severity: &'static str,
    pub rule: String,
    pub group: String,
    pub signals: usize,
    /// The finding `Id` it would have had on its own.
    pub finding_id: String,
}

/// One finding per attack: how many signals went in, findings came out, sequences were
/// absorbed.
#[derive(Debug, Default, Serialize)]
pub struct RollupCounts {
    /// Signals selected by some rule's stage (matched).
    pub signals_in: u64,
    /// Finding sequences after roll-up: the findings written.
    pub findings_out: usize,
    /// Sequences absorbed into a finding of another rule.
    pub sequences_absorbed: usize,
}

/// What `correlate` reports besides the reading summary.
#[derive(Debug, Default, Serialize)]
pub struct CorrelateSummary {
    pub sequences: Vec<SequenceLine>,
    pub weak_signals: Vec<SequenceLine>,
    pub matching: crate::matcher::MatchStats,
    pub rollup: RollupCounts,
}

impl CorrelateSummary {
    pub fn new(
        seqs: &[crate::matcher::Sequence],
        rules: &crate::rules::RuleSet,
        matching: crate::matcher::MatchStats,
    ) -> CorrelateSummary {
        let mut out = CorrelateSummary {
            matching,
            ..CorrelateSummary::default()
        };
        for s in seqs {
            let Some(rule) = rules.get(&s.rule_id) else {
                continue;
            };
            let finding = s.emit == crate::rules::Emit::Finding;
            let line = SequenceLine {
                severity: rule.severity.as_str(),
                rule: s.rule_id.clone(),
                group: s.key.to_string(),
                account: s.account.as_ref().map(|a| a.to_string()),
                region: s.region.as_ref().map(|r| r.to_string()),
                members: s.members.iter().map(|m| m.to_string()).collect(),
                launched: s.launched.len(),
                signals: s.total_signals,
                stages: s.stages().into_iter().map(str::to_string).collect(),
                weak_signals: s.weak_count(),
                first_seen: crate::time::format_rfc3339(s.first_seen),
                last_seen: crate::time::format_rfc3339(s.last_seen),
                finding_id: finding.then(|| crate::sinks::asff::finding_id(s)),
                absorbed: s
                    .rollup
                    .iter()
                    .flat_map(|r| r.absorbed.iter())
                    .map(|a| AbsorbedLine {
                        severity: a.severity.as_str(),
                        rule: a.rule_id.clone(),
                        group: a.key.to_string(),
                        signals: a.signals,
                        finding_id: a.id.clone(),
                    })
                    .collect(),
            };
            if finding {
                out.sequences.push(line);
            } else {
                out.weak_signals.push(line);
            }
        }
        out.rollup = RollupCounts {
            signals_in: out.matching.candidates,
            findings_out: out.sequences.len(),
            sequences_absorbed: crate::rollup::absorbed_count(seqs),
        };
        out
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "attack sequences: {}", self.sequences.len());
        let mut order: Vec<&SequenceLine> = self.sequences.iter().collect();
        // Most severe first, then by time.
        order.sort_by(|a, b| {
            severity_rank(b.severity)
                .cmp(&severity_rank(a.severity))
                .then_with(|| a.first_seen.cmp(&b.first_seen))
        });
        for l in order {
            let _ = writeln!(
                s,
                "  {:<8} {}  {}  {} member(s){}  {} signal(s) [{}]{}  {} .. {}",
                l.severity,
                l.rule,
                l.group,
                l.members.len(),
                if l.launched > 0 {
                    format!(", {} launched", l.launched)
                } else {
                    String::new()
                },
                l.signals,
                l.stages.join(", "),
                if l.weak_signals > 0 {
                    format!(" +{} weak", l.weak_signals)
                } else {
                    String::new()
                },
                l.first_seen,
                l.last_seen
            );
            for a in &l.absorbed {
                let _ = writeln!(
                    s,
                    "    absorbed {:<8} {}  {}  {} signal(s)",
                    a.severity, a.rule, a.group, a.signals
                );
            }
        }
        let r = &self.rollup;
        let _ = writeln!(
            s,
            "one finding per attack: {} signal(s) in, {} finding(s) out, {} sequence(s) absorbed",
            r.signals_in, r.findings_out, r.sequences_absorbed
        );
        let _ = writeln!(
            s,
            "weak signals: {}",
            self.weak_signals.iter().map(|l| l.signals).sum::<usize>()
        );
        const SHOWN: usize = 20;
        for l in self.weak_signals.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "  {}  {}  {} signal(s)  {} .. {}",
                l.rule, l.group, l.signals, l.first_seen, l.last_seen
            );
        }
        if self.weak_signals.len() > SHOWN {
            let _ = writeln!(
                s,
                "  … and {} more (--summary json lists them all)",
                self.weak_signals.len() - SHOWN
            );
        }
        for (rule, n) in &self.matching.allowlisted {
            let _ = writeln!(s, "allowlisted by {rule}: {n}");
        }
        if self.matching.late > 0 {
            let _ = writeln!(
                s,
                "late signals (arrived more than the configured lag behind newer ones): {}",
                self.matching.late
            );
        }
        s
    }
}

fn severity_rank(label: &str) -> u8 {
    match label {
        "CRITICAL" => 4,
        "HIGH" => 3,
        "MEDIUM" => 2,
        "LOW" => 1,
        _ => 0,
    }
}
