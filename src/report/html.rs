//! The report page: one HTML file with its styles and script inline (`report.css`,
//! `report.js`, written for this page) that loads nothing, so it opens from disk with no
//! network; its Content-Security-Policy forbids every load as well.
//!
//! Per sequence: a header (severity, rule, group, account, region, time span, remediation),
//! the neighbourhood drawn as SVG, and a timeline with one entry (`li.signal`) per signal;
//! the details of a signal or an entity sit in a `template` the script shows on hover, focus
//! or click. Runs of three or more alike signals fold behind their first. An index lists the
//! sequences when there are several.
//!
//! Every text from the input (ids, kinds, titles, ARNs, domains, error codes) goes through
//! [`esc`]: a role session name or a domain can hold markup.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};

use super::layout::{self, Layout};
use super::{Report, key_node, record_key, seeds, signal_entities, signal_node, svg};
use crate::graph::EdgeKind;
use crate::graph::export::{ExportGraph, Neighbourhoods};
use crate::matcher::{SeqSignal, Sequence};
use crate::rules::Rule;
use crate::signal::{EntityId, EntityKind, RecordRef, Source};
use crate::sinks::asff::{confidence, finding_id};
use crate::time::{format_duration, format_rfc3339};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Signals alike in a row that fold behind the first.
const FOLD_RUN: usize = 3;

/// Text for HTML and SVG, in content and in quoted attribute values: the markup characters
/// become references; control characters other than tab and newline (invalid in XML, never
/// meant for display) become U+FFFD.
pub fn esc(s: &str) -> Cow<'_, str> {
    let special = |c: char| {
        matches!(c, '&' | '<' | '>' | '"' | '\'') || (c.is_control() && c != '\n' && c != '\t')
    };
    if !s.chars().any(special) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(c),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    Cow::Owned(o)
}

/// The CSS class of a GuardDuty-scale severity (0–10).
pub fn severity_class(severity: f64) -> &'static str {
    match severity {
        s if s >= 9.0 => "sev-critical",
        s if s >= 7.0 => "sev-high",
        s if s >= 4.0 => "sev-medium",
        s if s >= 1.0 => "sev-low",
        _ => "sev-info",
    }
}

fn label_class(label: &str) -> &'static str {
    match label {
        "CRITICAL" => "sev-critical",
        "HIGH" => "sev-high",
        "MEDIUM" => "sev-medium",
        "LOW" => "sev-low",
        _ => "sev-info",
    }
}

/// A link when `url` is a web address, else the text.
fn link(url: &str, text: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{}\" rel=\"noreferrer noopener\" target=\"_blank\">{}</a>",
            esc(url),
            esc(text)
        )
    } else {
        esc(text).into_owned()
    }
}

/// `2025-05-02 09:01:27`
fn when(t: i64) -> String {
    format_rfc3339(t)[..19].replace('T', " ")
}

pub(super) fn write(r: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(64 * 1024);
    let title = match r.sequences.as_slice() {
        [one] => format!("{} – {}", rule_title(r, one), one.key),
        seqs => format!("{} attack sequence{}", seqs.len(), plural(seqs.len())),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; \
         form-action 'none'\" />\n\
         <meta name=\"generator\" content=\"finding-correlator {version}\" />\n\
         <title>Investigation report: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(&title),
        version = env!("CARGO_PKG_VERSION"),
    );
    let span = r
        .sequences
        .iter()
        .map(|s| s.first_seen)
        .min()
        .zip(r.sequences.iter().map(|s| s.last_seen).max());
    let _ = write!(
        page,
        "<header class=\"page\"><div class=\"brand\">finding-correlator</div>\
         <h1>Attack sequence investigation</h1><p class=\"sub\">{} attack sequence{}{} · \
         times in UTC</p></header>\n<main>\n",
        r.sequences.len(),
        plural(r.sequences.len()),
        span.map_or(String::new(), |(a, b)| format!(
            " · signals from {} to {}",
            when(a),
            when(b)
        )),
    );
    if r.sequences.is_empty() {
        page.push_str("<p class=\"empty\">No attack sequence in this input.</p>\n");
    }
    if r.sequences.len() > 1 {
        index(&mut page, r);
    }
    // The graph is indexed once for all the sequences' neighbourhoods.
    let parts = Neighbourhoods::new(r.graph);
    for (i, seq) in r.sequences.iter().enumerate() {
        section(&mut page, r, &parts, i + 1, seq);
    }
    let _ = write!(
        page,
        "</main>\n<footer>Written by finding-correlator {} from local files. This page \
         loads nothing: styles and script are inline.</footer>\n<script>\n{JS}</script>\n\
         </body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out.write_all(page.as_bytes())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn rule_title<'a>(r: &'a Report<'_>, seq: &'a Sequence) -> &'a str {
    r.rules
        .get(&seq.rule_id)
        .map_or(seq.rule_id.as_str(), |rule| rule.title.as_str())
}

fn severity_label(rule: Option<&Rule>) -> &'static str {
    rule.map_or("UNKNOWN", |r| r.severity.as_str())
}

fn index(page: &mut String, r: &Report<'_>) {
    page.push_str(
        "<nav class=\"index\" aria-label=\"attack sequences\"><h2>Attack sequences</h2>\
         <table><thead><tr><th>Severity</th><th>Sequence</th><th>Group</th><th>Account</th>\
         <th>Region</th><th>First seen</th><th>Lasted</th><th>Signals</th></tr></thead><tbody>",
    );
    for (i, seq) in r.sequences.iter().enumerate() {
        let label = severity_label(r.rules.get(&seq.rule_id));
        let _ = write!(
            page,
            "<tr><td><span class=\"sev {}\">{}</span></td><td><a href=\"#seq-{}\">{}</a>\
             <div class=\"mono muted\">{}</div></td><td class=\"mono\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            label_class(label),
            label,
            i + 1,
            esc(rule_title(r, seq)),
            esc(&seq.rule_id),
            esc(&seq.key.to_string()),
            esc(seq.account.as_deref().unwrap_or("–")),
            esc(seq.region.as_deref().unwrap_or("–")),
            when(seq.first_seen),
            format_duration(seq.last_seen - seq.first_seen),
            seq.total_signals,
        );
    }
    page.push_str("</tbody></table></nav>\n");
}

/// What one sequence's section shows, computed before writing.
struct View<'g> {
    sub: ExportGraph<'g>,
    layout: Layout,
    /// Per signal: the drawn nodes it names.
    drawn: Vec<Vec<usize>>,
}

fn view<'g>(parts: &Neighbourhoods<'g>, seq: &Sequence) -> View<'g> {
    let sub = parts.around(&seeds(seq));
    let in_sub: HashSet<&str> = sub.nodes.iter().map(|n| n.id.as_str()).collect();
    let mut observed_on: HashMap<&str, Vec<&str>> = HashMap::new();
    for (s, t, k) in &sub.edges {
        if *k == EdgeKind::ObservedOn {
            observed_on.entry(s.as_ref()).or_default().push(t.as_ref());
        }
    }
    // The entities each signal names: what the graph says (its node's `observed_on` edges)
    // and what the sequence kept of it.
    let named_by: Vec<Vec<String>> = seq
        .signals
        .iter()
        .map(|s| {
            let mut ids = signal_entities(s);
            if let Some(v) = observed_on.get(signal_node(s).as_str()) {
                ids.extend(v.iter().map(|t| t.to_string()));
            }
            ids.sort();
            ids.dedup();
            ids.retain(|i| in_sub.contains(i.as_str()));
            ids
        })
        .collect();
    let mut named: HashMap<String, usize> = HashMap::new();
    let mut observed: Vec<(String, String)> = Vec::new();
    for (s, ids) in seq.signals.iter().zip(&named_by) {
        for id in ids {
            *named.entry(id.clone()).or_default() += 1;
        }
        // Whom the signal is about: its actor, else the first instance it names.
        let subject = s
            .actor
            .as_ref()
            .and_then(|a| a.principal())
            .map(|p| p.to_string())
            .filter(|p| in_sub.contains(p.as_str()))
            .or_else(|| {
                s.instances
                    .iter()
                    .map(|i| EntityId::new(EntityKind::Instance, i.clone()).to_string())
                    .find(|i| in_sub.contains(i.as_str()))
            });
        if let Some(subject) = subject {
            for id in ids
                .iter()
                .filter(|i| i.starts_with("ip:") || i.starts_with("domain:"))
            {
                observed.push((subject.clone(), id.clone()));
            }
        }
    }
    let members: Vec<String> = seq
        .members
        .iter()
        .map(|m| EntityId::new(EntityKind::Instance, m.clone()).to_string())
        .collect();
    let focus = key_node(&seq.key);
    let layout = layout::layout(&layout::Input {
        graph: &sub,
        focus: &focus,
        members: &members,
        named: &named,
        observed: &observed,
    });
    let node_of: HashMap<&str, usize> = layout
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let drawn = named_by
        .iter()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| node_of.get(id.as_str()).copied())
                .collect()
        })
        .collect();
    View { sub, layout, drawn }
}

fn section(
    page: &mut String,
    r: &Report<'_>,
    parts: &Neighbourhoods<'_>,
    n: usize,
    seq: &Sequence,
) {
    let rule = r.rules.get(&seq.rule_id);
    let v = view(parts, seq);
    let label = severity_label(rule);
    let _ = writeln!(
        page,
        "<section class=\"sequence\" id=\"seq-{n}\" data-signals=\"{}\" \
         data-total-signals=\"{}\" data-entities=\"{}\">",
        seq.signals.len(),
        seq.total_signals,
        v.layout.entities,
    );
    header(page, seq, rule, label);
    let prefix = format!("s{n}");
    let _ = write!(
        page,
        "<div class=\"graph-panel\"><h3>Entities <span class=\"muted\">{} in the \
         neighbourhood{}; point at a signal to see what it names, click an entity for its \
         signals</span></h3><div class=\"graph-scroll\">",
        v.layout.entities,
        if v.layout.hidden > 0 {
            format!(", {} drawn", v.layout.nodes.len())
        } else {
            String::new()
        }
    );
    svg::graph(page, &v.layout, &prefix);
    page.push_str(
        "</div><p class=\"legend\"><span class=\"lg k-principal\">actor</span>\
         <span class=\"lg k-instance\">instance</span><span class=\"lg k-ip\">endpoint</span>\
         <span class=\"lg k-vpc\">infrastructure</span><span class=\"lg-badge\">n</span> \
         signals naming it · <span class=\"lg-dash\"></span> endpoint seen in a signal</p>\
         </div>\n",
    );
    let _ = write!(
        page,
        "<div class=\"lower\"><div class=\"timeline-panel\"><h3>Timeline <span class=\"muted\">\
         {} signal{}{}</span></h3>",
        seq.signals.len(),
        plural(seq.signals.len()),
        if seq.total_signals > seq.signals.len() {
            format!(
                " (the first kept of {}; the rest were counted only)",
                seq.total_signals
            )
        } else {
            String::new()
        }
    );
    svg::strip(page, &seq.signals);
    timeline(page, seq, &v, &prefix);
    page.push_str(
        "</div><aside class=\"details\" aria-live=\"polite\"><p class=\"hint\">Point at or \
         click a signal, or click an entity, to see its details here.</p></aside></div>\n\
         <div class=\"templates\" hidden=\"hidden\">",
    );
    for (i, s) in seq.signals.iter().enumerate() {
        signal_details(page, &prefix, i, s);
    }
    for (i, p) in v.layout.nodes.iter().enumerate() {
        entity_details(page, &prefix, i, p, &v.sub);
    }
    page.push_str("</div>\n</section>\n");
}

fn header(page: &mut String, seq: &Sequence, rule: Option<&Rule>, label: &str) {
    let title = rule.map_or(seq.rule_id.as_str(), |r| r.title.as_str());
    let findings = seq
        .signals
        .iter()
        .filter(|s| s.source != Source::CloudTrail)
        .count();
    let calls = seq.signals.len() - findings;
    let _ = write!(
        page,
        "<header class=\"seq-head\"><div class=\"summary\"><div class=\"title-row\">\
         <span class=\"sev {}\">{}</span><h2>{}</h2></div><p class=\"rule\">rule <code>{}</code>{}\
         </p><p class=\"fid\">Finding Id <code class=\"select\">{}</code></p><dl class=\"facts\">",
        label_class(label),
        label,
        esc(title),
        esc(&seq.rule_id),
        rule.map_or(String::new(), |r| format!(
            " · confidence {}",
            confidence(r, seq)
        )),
        esc(&finding_id(seq)),
    );
    let mut fact = |name: &str, html: String| {
        let _ = write!(page, "<div><dt>{name}</dt><dd>{html}</dd></div>");
    };
    let mut group = format!("<code>{}</code>", esc(&seq.key.to_string()));
    let _ = write!(
        group,
        "<br /><span class=\"muted\">{} member{}",
        seq.members.len(),
        plural(seq.members.len())
    );
    if !seq.launched.is_empty() {
        let _ = write!(group, " · {} launched", seq.launched.len());
    }
    group.push_str("</span>");
    let key_name = match seq.key {
        crate::matcher::GroupKey::Group(_) => "Group",
        _ => "Keyed by",
    };
    fact(key_name, group);
    fact(
        "Account",
        esc(seq.account.as_deref().unwrap_or("unknown")).into_owned(),
    );
    fact(
        "Region",
        esc(seq.region.as_deref().unwrap_or("unknown")).into_owned(),
    );
    fact(
        "Time span",
        format!(
            "{} → {}<br /><span class=\"muted\">{} UTC, {}</span>",
            &format_rfc3339(seq.first_seen)[11..19],
            &format_rfc3339(seq.last_seen)[11..19],
            &format_rfc3339(seq.first_seen)[..10],
            format_duration(seq.last_seen - seq.first_seen)
        ),
    );
    fact(
        "Signals",
        format!(
            "{}<br /><span class=\"muted\">{findings} finding{}, {calls} API call{}, {} weak\
             </span>",
            seq.total_signals,
            plural(findings),
            plural(calls),
            seq.weak_count()
        ),
    );
    let stages: String = seq
        .stages()
        .iter()
        .map(|s| format!("<span class=\"chip\">{}</span>", esc(s)))
        .collect();
    fact("Stages", stages);
    if let Some(r) = &seq.rollup {
        // One attack: the sequences of other rules this finding absorbed, as its stages.
        let list: String = r
            .absorbed
            .iter()
            .map(|a| {
                format!(
                    "<span class=\"chip absorbed\" title=\"{}\">{} {} · {} signal{}</span>",
                    esc(&a.id),
                    a.severity.as_str(),
                    esc(&a.rule_id),
                    a.signals,
                    plural(a.signals)
                )
            })
            .collect();
        fact("Rolled up", list);
    }
    page.push_str("</dl></div>");
    let Some(rule) = rule else {
        page.push_str("</header>\n");
        return;
    };
    let _ = write!(
        page,
        "<div class=\"remediation\"><h3>Remediation</h3><p>{}</p>",
        esc(rule.runbook.trim())
    );
    if let Some(url) = &rule.runbook_url {
        let _ = write!(page, "<p class=\"runbook\">Runbook: {}</p>", link(url, url));
    }
    let _ = write!(
        page,
        "<details class=\"about\"><summary>About this rule</summary><p>{}</p>",
        esc(rule.description.trim())
    );
    let attack: String = rule
        .tactics
        .iter()
        .map(|t| format!("<span class=\"chip tactic\">{}</span>", esc(t)))
        .chain(
            rule.techniques
                .iter()
                .map(|t| format!("<span class=\"chip\">{}</span>", esc(t))),
        )
        .collect();
    if !attack.is_empty() {
        let _ = write!(page, "<p>ATT&amp;CK: {attack}</p>");
    }
    if !rule.references.is_empty() {
        page.push_str("<ul>");
        for r in &rule.references {
            let _ = write!(page, "<li>{}</li>", link(r, r));
        }
        page.push_str("</ul>");
    }
    page.push_str("</details></div>");
    page.push_str("</header>\n");
}

/// What tells signals apart in the timeline: alike ones in a row fold.
fn likeness(s: &SeqSignal) -> (String, &str, bool, &'static str) {
    (s.describe(), s.stage.as_str(), s.weak, source_name(s))
}

/// Who produced the signal: a rule (a weak signal about another record), else the product
/// of its record.
fn source_name(s: &SeqSignal) -> &'static str {
    match &s.reference {
        RecordRef::RuleMatch(_) => "Rule",
        _ => product(s),
    }
}

/// The product of a signal's record. A GuardDuty finding is GuardDuty's whether it was read
/// directly or through Security Hub (which copy a sequence keeps depends on reading order).
fn product(s: &SeqSignal) -> &'static str {
    match &s.reference {
        RecordRef::FindingArn(_) if s.guardduty_arn().is_some() => "GuardDuty",
        RecordRef::AsffFinding { .. } => "Security Hub",
        _ => match s.source {
            Source::GuardDuty => "GuardDuty",
            Source::SecurityHub => "Security Hub",
            Source::CloudTrail => "CloudTrail",
        },
    }
}

fn timeline(page: &mut String, seq: &Sequence, v: &View<'_>, prefix: &str) {
    page.push_str("<ol class=\"timeline\">");
    let signals = &seq.signals;
    let mut day = String::new();
    let mut i = 0;
    let mut run_id = 0;
    while i < signals.len() {
        // A run of alike signals from `i`.
        let mut end = i + 1;
        while end < signals.len() && likeness(&signals[end]) == likeness(&signals[i]) {
            end += 1;
        }
        let folds = end - i >= FOLD_RUN;
        for j in i..end {
            let s = &signals[j];
            let d = &format_rfc3339(s.time)[..10];
            if d != day {
                day = d.to_string();
                let _ = write!(page, "<li class=\"day\">{}</li>", esc(d));
            }
            let folded = folds && j > i;
            let also = crate::rollup::absorbed_with(seq, s);
            entry(
                page,
                prefix,
                j,
                s,
                &v.drawn[j],
                folded.then_some(run_id),
                &also,
            );
            if folds && j == i {
                let n = end - i - 1;
                let _ = write!(
                    page,
                    "<li class=\"fold\" data-run=\"{run_id}\" tabindex=\"0\" role=\"button\" \
                     aria-expanded=\"false\">{n} more alike, to {}</li>",
                    esc(&format_rfc3339(signals[end - 1].began())[11..19])
                );
            }
        }
        if folds {
            run_id += 1;
        }
        i = end;
    }
    page.push_str("</ol>");
}

fn entry(
    page: &mut String,
    prefix: &str,
    i: usize,
    s: &SeqSignal,
    nodes: &[usize],
    run: Option<usize>,
    absorbed: &[&crate::rollup::Absorbed],
) {
    let finding = s.source != Source::CloudTrail;
    let mut class = String::from("signal");
    class.push_str(if finding { " finding " } else { " call " });
    class.push_str(if finding {
        severity_class(s.severity)
    } else {
        "sev-none"
    });
    if s.weak {
        class.push_str(" weak");
    }
    if run.is_some() {
        class.push_str(" repeat folded");
    }
    let nodes: Vec<String> = nodes.iter().map(usize::to_string).collect();
    let _ = write!(
        page,
        "<li class=\"{class}\" tabindex=\"0\" data-i=\"{i}\" data-tpl=\"{prefix}-sig-{i}\" \
         data-nodes=\"{}\"{}><time datetime=\"{}\">{}</time><span class=\"src\">{}</span>\
         <span class=\"what\">{}</span><span class=\"stage\">{}</span>{}{}{}</li>",
        nodes.join(" "),
        run.map_or(String::new(), |r| format!(" data-run=\"{r}\"")),
        esc(&format_rfc3339(s.began())),
        esc(&format_rfc3339(s.began())[11..19]),
        source_name(s),
        esc(&s.describe()),
        esc(&s.stage),
        if s.weak {
            "<span class=\"weak-tag\">weak</span>"
        } else {
            ""
        },
        if finding {
            format!("<span class=\"sevnum\">{:.1}</span>", s.severity)
        } else {
            String::new()
        },
        // A stage of a sequence this one absorbed (roll-up).
        absorbed
            .iter()
            .map(|a| format!(
                "<span class=\"stage absorbed\" title=\"{}\">{}</span>",
                esc(&a.id),
                esc(&a.rule_id)
            ))
            .collect::<String>(),
    );
}

/// Rows of a details list, skipping empty values; `values` are raw text.
fn rows(page: &mut String, rows: &[(&str, Option<String>)]) {
    page.push_str("<dl>");
    for (name, value) in rows {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(v));
        }
    }
    page.push_str("</dl>");
}

fn signal_details(page: &mut String, prefix: &str, i: usize, s: &SeqSignal) {
    let (record, what) = match &s.reference {
        RecordRef::FindingArn(_) => (s.reference.key(), "finding ARN"),
        RecordRef::AsffFinding { .. } => (s.reference.key(), "ASFF ProductArn/Id"),
        RecordRef::EventId(_) => (s.reference.key(), "CloudTrail eventID"),
        RecordRef::Hash(_) => (s.reference.key(), "hash of the record (it has no id)"),
        RecordRef::RuleMatch(_) => (record_key(&s.reference), "the record the rule matched"),
    };
    let actor = s.actor.as_ref().map(|a| {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(
            a.arn
                .as_ref()
                .or(a.principal_id.as_ref())
                .map(|x| x.to_string()),
        );
        parts.extend(a.principal_type.as_ref().map(|x| format!("type {x}")));
        parts.extend(a.access_key_id.as_ref().map(|x| format!("key {x}")));
        parts.extend(a.invoked_by.as_ref().map(|x| format!("invoked by {x}")));
        parts.join(" · ")
    });
    let list = |v: Vec<String>| (!v.is_empty()).then(|| v.join(", "));
    // A rule's weak signal: its reference, and the rule.
    let via = match &s.reference {
        RecordRef::RuleMatch(k) => Some(format!(
            "{k} (a weak signal of rule {})",
            k.strip_prefix("rule:")
                .and_then(|r| r.split('/').next())
                .unwrap_or(k)
        )),
        _ => None,
    };
    let _ = write!(
        page,
        "<template id=\"{prefix}-sig-{i}\"><h4>{}</h4>",
        esc(&s.describe())
    );
    rows(
        page,
        &[
            ("Kind", Some(s.kind.to_string())),
            ("Time", Some(format_rfc3339(s.time))),
            (
                "Seen",
                (s.count > 1 || s.first_seen != s.last_seen).then(|| {
                    format!(
                        "{} times, {} → {}",
                        s.count,
                        format_rfc3339(s.first_seen),
                        format_rfc3339(s.last_seen)
                    )
                }),
            ),
            (
                "Source",
                Some(format!(
                    "{} {}",
                    product(s),
                    if s.source == Source::CloudTrail {
                        "API call"
                    } else {
                        "finding"
                    }
                )),
            ),
            ("Via", via),
            ("Stage", Some(s.stage.clone())),
            ("Weak", Some(if s.weak { "yes" } else { "no" }.to_string())),
            ("Severity", Some(format!("{:.1}", s.severity))),
            ("Record", Some(format!("{record} ({what})"))),
            ("Title", s.title.as_ref().map(|t| t.to_string())),
            ("Actor", actor),
            (
                "API",
                s.api
                    .as_ref()
                    .map(|a| format!("{a}{}", if s.high_risk_api { " (high-risk)" } else { "" })),
            ),
            ("Error code", s.error_code.as_ref().map(|e| e.to_string())),
            ("Account", s.account.as_ref().map(|a| a.to_string())),
            ("Region", s.region.as_ref().map(|r| r.to_string())),
            (
                "Instances",
                list(s.instances.iter().map(|i| i.to_string()).collect()),
            ),
            (
                "Launched",
                list(
                    s.launched
                        .iter()
                        .map(|(i, t)| match t {
                            Some(t) => format!("{i} ({t})"),
                            None => i.to_string(),
                        })
                        .collect(),
                ),
            ),
            (
                "Bought",
                s.launch.as_ref().map(|l| {
                    let mut d = l.describe(None);
                    for (what, v) in [
                        ("vCPUs", l.vcpus),
                        ("GPUs", l.gpus),
                        ("accelerators", l.accelerators),
                    ] {
                        if let Some(v) = v {
                            d.push_str(&format!(", {v} {what}"));
                        }
                    }
                    d
                }),
            ),
            (
                "Endpoints",
                list(
                    s.endpoints
                        .iter()
                        .map(|e| match e {
                            crate::signal::Endpoint::Ip(x) | crate::signal::Endpoint::Domain(x) => {
                                x.to_string()
                            }
                        })
                        .collect(),
                ),
            ),
        ],
    );
    page.push_str("</template>");
}

fn entity_details(
    page: &mut String,
    prefix: &str,
    i: usize,
    p: &layout::Placed,
    sub: &ExportGraph<'_>,
) {
    let _ = write!(
        page,
        "<template id=\"{prefix}-n-{i}\"><h4>{}</h4>",
        esc(&p.label)
    );
    let mut list: Vec<(&str, Option<String>)> = vec![
        ("Kind", Some(p.kind.replace('_', " "))),
        ("Id", Some(p.id.clone())),
        (
            "Signals",
            Some(format!(
                "named by {} signal{} of this sequence",
                p.named,
                plural(p.named)
            )),
        ),
    ];
    if let Ok(k) = sub.nodes.binary_search_by(|n| n.id.as_str().cmp(&p.id)) {
        for (name, value) in sub.nodes[k].props.iter() {
            list.push((name, Some(value.to_string())));
        }
    }
    rows(page, &list);
    page.push_str("</template>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_svg() {
        for (input, want) in [
            ("plain i-0abc", "plain i-0abc"),
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            ("a & b", "a &amp; b"),
            ("&amp;", "&amp;amp;"),
            ("\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"),
            ("line\nbreak\ttab", "line\nbreak\ttab"),
            ("nul\u{0}bell\u{7}cr\r", "nul\u{fffd}bell\u{fffd}cr\u{fffd}"),
            ("C&CActivity", "C&amp;CActivity"),
        ] {
            assert_eq!(esc(input), want, "{input:?}");
        }
        assert!(matches!(esc("nothing special"), Cow::Borrowed(_)));
    }

    #[test]
    fn only_web_addresses_become_links() {
        for (url, linked) in [
            ("https://docs.aws.amazon.com/x", true),
            ("HTTP://example.com/", true),
            ("javascript:alert(1)", false),
            (" javascript:alert(1)", false),
            ("data:text/html,<b>x</b>", false),
            ("//example.com/x", false),
        ] {
            let html = link(url, url);
            assert_eq!(html.starts_with("<a href="), linked, "{url}: {html}");
            assert!(!html.contains("<b>"), "{url}: {html}");
        }
    }

    #[test]
    fn the_inline_style_and_script_stay_inside_their_elements_and_load_nothing() {
        for (name, text) in [("report.css", CSS), ("report.js", JS)] {
            assert!(!text.contains("</"), "{name} would close its element early");
            assert!(!text.contains("http"), "{name} names a web address");
            assert!(!text.contains("url("), "{name} loads something");
            assert!(!text.contains("@import"), "{name} imports something");
        }
        // The script shows details by cloning the page's own templates, never by writing
        // markup.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!JS.contains(sink), "report.js uses {sink}");
        }
    }

    #[test]
    fn severities_map_to_classes() {
        for (severity, class) in [
            (9.0, "sev-critical"),
            (8.0, "sev-high"),
            (5.0, "sev-medium"),
            (2.0, "sev-low"),
            (0.0, "sev-info"),
        ] {
            assert_eq!(severity_class(severity), class, "{severity}");
        }
    }
}
