//! Issue 7 part 3: the HTML investigation report. Its structure (one timeline entry per
//! signal, one SVG node per entity of the neighbourhood, each count checked against what
//! another output says), well-formed markup, escaping of hostile values, and a readable page
//! at 200 signals. `tests/report_browser.py` renders it in Chromium.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{WEB_ASG_SEQUENCE, correlator, repo};

const MAIN: [&str; 3] = ["fixtures/cloudtrail", "fixtures/guardduty", "fixtures/asff"];

// ---------------------------------------------------------------------------------------------
// A well-formedness check: every element closed in order (void ones written `<x />`), every
// attribute quoted, no stray `<` or `&` in text or values. Script and style are raw text.

fn check_well_formed(html: &str) {
    let body = html
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("starts with the doctype");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut offset = html.len() - body.len();
    let at = |off: usize| html[off..].chars().take(80).collect::<String>();
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt], offset);
        let tag_start = offset + lt;
        rest = &rest[lt..];
        let gt = rest
            .find('>')
            .unwrap_or_else(|| panic!("unclosed tag at {}", at(tag_start)));
        let tag = &rest[1..gt];
        let consumed;
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing at {}", at(tag_start)));
            assert_eq!(open, name, "</{name}> closes <{open}> at {}", at(tag_start));
            consumed = gt + 1;
        } else {
            let (name, attrs, selfclosed) = parse_tag(tag, &at(tag_start));
            let void = ["meta", "br", "img", "input", "link", "hr"].contains(&name.as_str());
            assert_eq!(
                void,
                selfclosed,
                "<{name}> void or not at {}",
                at(tag_start)
            );
            check_attrs(attrs, &at(tag_start));
            if name == "script" || name == "style" {
                let close = format!("</{name}>");
                let end = rest[gt..]
                    .find(&close)
                    .unwrap_or_else(|| panic!("<{name}> not closed"));
                consumed = gt + end + close.len();
            } else {
                if !selfclosed {
                    stack.push(name);
                }
                consumed = gt + 1;
            }
        }
        rest = &rest[consumed..];
        offset = tag_start + consumed;
    }
    check_text(rest, offset);
    assert!(stack.is_empty(), "left open: {stack:?}");
}

fn parse_tag<'t>(tag: &'t str, at: &str) -> (String, &'t str, bool) {
    let (tag, selfclosed) = match tag.strip_suffix(" /") {
        Some(t) => (t, true),
        None => (tag, false),
    };
    let name_end = tag.find(' ').unwrap_or(tag.len());
    let name = &tag[..name_end];
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()),
        "tag name {name:?} at {at}"
    );
    (name.to_string(), &tag[name_end..], selfclosed)
}

fn check_attrs(mut attrs: &str, at: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let eq = attrs
            .find("=\"")
            .unwrap_or_else(|| panic!("unquoted attribute {attrs:?} at {at}"));
        let name = &attrs[..eq];
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':'),
            "attribute name {name:?} at {at}"
        );
        let value_end = attrs[eq + 2..]
            .find('"')
            .unwrap_or_else(|| panic!("unterminated value at {at}"));
        check_text(&attrs[eq + 2..eq + 2 + value_end], 0);
        attrs = &attrs[eq + 2 + value_end + 1..];
    }
}

fn check_text(text: &str, offset: usize) {
    assert!(!text.contains('<'), "raw < at {offset}");
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let semi = after.find(';').unwrap_or(usize::MAX);
        let name = after.get(..semi).unwrap_or("");
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "#39")
            || (name.starts_with('#') && name[1..].bytes().all(|b| b.is_ascii_digit()));
        assert!(
            ok,
            "raw & near {:?} at {offset}",
            &after[..after.len().min(20)]
        );
        rest = &after[semi + 1..];
    }
}

#[test]
fn the_well_formedness_check_finds_broken_markup() {
    for broken in [
        "<!DOCTYPE html>\n<p><b>x</p></b>",
        "<!DOCTYPE html>\n<p>a < b</p>",
        "<!DOCTYPE html>\n<p>fish & chips</p>",
        "<!DOCTYPE html>\n<p class=x>y</p>",
        "<!DOCTYPE html>\n<div>",
        "<!DOCTYPE html>\n<p title=\"<script>\">y</p>",
        "<!DOCTYPE html>\n<meta charset=\"utf-8\">",
    ] {
        let caught = std::panic::catch_unwind(|| check_well_formed(broken)).is_err();
        assert!(caught, "not caught: {broken:?}");
    }
    check_well_formed(
        "<!DOCTYPE html>\n<p title=\"a &amp; &lt;b&gt;\">x &#39; &lt;<br /></p>\
         <script>if (a < b && c) {}</script>",
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn report(args: &[&str], paths: &[&str]) -> String {
    let out = correlator()
        .args(["report", "--output", "-"])
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The page split into its sequences' sections.
fn sections(html: &str) -> Vec<&str> {
    html.split("<section class=\"sequence\"").skip(1).collect()
}

/// The value of `data-NAME="…"` at its first occurrence.
fn data(section: &str, name: &str) -> usize {
    let key = format!("data-{name}=\"");
    let from = section.find(&key).unwrap_or_else(|| panic!("no {key}")) + key.len();
    let to = section[from..].find('"').unwrap() + from;
    section[from..to].parse().unwrap()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Finding Id → number of signals, from `correlate --asff`.
fn asff_signals(paths: &[&str]) -> BTreeMap<String, usize> {
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .args(paths)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["Id"].as_str().unwrap().to_string(),
                f["Detection"]["Sequence"]["Signals"]
                    .as_array()
                    .unwrap()
                    .len(),
            )
        })
        .collect()
}

/// Entities of a sequence's neighbourhood, from `graph --sequence --no-signals`.
fn subgraph_entities(id: &str, paths: &[&str]) -> usize {
    let out = correlator()
        .args(["graph", "--no-signals", "--sequence", id])
        .args(paths)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["elements"]["nodes"].as_array().unwrap().len()
}

/// The finding Id a section shows.
fn section_id(section: &str) -> String {
    let key = "Finding Id <code class=\"select\">";
    let from = section.find(key).unwrap() + key.len();
    let to = section[from..].find('<').unwrap() + from;
    section[from..to].to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn issue_7_report_has_one_timeline_entry_per_signal_and_one_node_per_entity() {
    let paths = ["fixtures/"];
    let html = report(&[], &paths);
    check_well_formed(&html);
    let signals = asff_signals(&paths);
    let secs = sections(&html);
    assert_eq!(secs.len(), signals.len(), "one section per finding");
    // Every rule's positive case, the roll-up cases, and the main attack (rolled up).
    assert_eq!(secs.len(), 12);
    // The index links every section.
    for i in 1..=secs.len() {
        assert!(html.contains(&format!("<a href=\"#seq-{i}\">")), "{i}");
    }
    for sec in &secs {
        let id = section_id(sec);
        let want_signals = signals[&id];
        assert_eq!(count(sec, "<li class=\"signal "), want_signals, "{id}");
        assert_eq!(data(sec, "signals"), want_signals, "{id}");
        assert_eq!(
            count(sec, "<template id=\"s"),
            want_signals + count(sec, "<g class=\"node ")
        );
        let entities = subgraph_entities(&id, &paths);
        assert_eq!(data(sec, "entities"), entities, "{id}");
        // Small neighbourhoods are drawn whole; in larger ones (a 20-member group) the
        // "+N more" boxes account for every entity not drawn.
        let hidden: usize = sec
            .split("<g class=\"more\" data-count=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(count(sec, "<g class=\"node "), entities - hidden, "{id}");
        if entities <= 20 {
            assert_eq!(hidden, 0, "{id}");
        }
    }
    // Most severe first, as the summary sorts them.
    assert_eq!(section_id(secs[0]), WEB_ASG_SEQUENCE);
}

#[test]
fn issue_7_report_of_one_sequence_has_the_header_an_investigator_needs() {
    let html = report(&["--sequence", WEB_ASG_SEQUENCE], &MAIN);
    check_well_formed(&html);
    let secs = sections(&html);
    assert_eq!(secs.len(), 1);
    assert!(
        !html.contains("<nav class=\"index\""),
        "no index for one sequence"
    );
    let sec = secs[0];
    for want in [
        "<span class=\"sev sev-critical\">CRITICAL</span>",
        "<h2>Potential compromise of an EC2 instance group</h2>",
        "<code>compromised-instance-group</code>",
        "<code>auto_scaling_group/web-asg</code>",
        "3 members · 6 launched",
        "<dt>Account</dt><dd>111122223333</dd>",
        "<dt>Region</dt><dd>us-east-1</dd>",
        "09:01:27 → 09:44:10",
        "2025-05-02 UTC, 42m43s",
        "<h3>Remediation</h3><p>Isolate the group",
        "<a href=\"https://docs.aws.amazon.com/guardduty/latest/ug/compromised-ec2.html\"",
    ] {
        assert!(sec.contains(want), "missing {want:?}");
    }
    // The timeline: findings and API calls in the order their activity began (a finding at its
    // first sighting); weak signals marked.
    assert_eq!(count(sec, "<li class=\"signal "), 13);
    assert_eq!(count(sec, "<li class=\"signal finding "), 7);
    assert_eq!(count(sec, "<li class=\"signal call "), 6);
    let times: Vec<&str> = sec
        .split("<time datetime=\"")
        .skip(1)
        .map(|t| &t[..24])
        .collect();
    assert_eq!(times.len(), 13);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // The raw record reference of a signal is in its details.
    assert!(
        sec.contains("d01e90ef-fcf7-43ad-a4b7-0a47ce66ae30 (the record the rule matched)"),
        "the dry run's eventID"
    );
    // Every timeline entry names drawn nodes, and the victim instance is one of them.
    let nodes = data(sec, "drawn");
    for entry in sec.split("<li class=\"signal ").skip(1) {
        let from = entry.find("data-nodes=\"").unwrap() + 12;
        let list = &entry[from..from + entry[from..].find('"').unwrap()];
        assert!(!list.is_empty(), "a signal naming no drawn node");
        for n in list.split(' ') {
            assert!(n.parse::<usize>().unwrap() < nodes);
        }
    }
    // The launch sequence rolled into this one (issue 14): listed in the header, its five
    // records tagged with its rule in the one timeline; its own Id opens the same page.
    assert!(
        sec.contains("<dt>Rolled up</dt><dd><span class=\"chip absorbed\""),
        "no Rolled up fact"
    );
    assert_eq!(
        count(
            sec,
            "<span class=\"stage absorbed\" title=\"finding-correlator/instance-credentials-launch-compute/"
        ),
        5
    );
    let html = report(
        &[
            "--sequence",
            "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:19:41.000Z",
        ],
        &MAIN,
    );
    assert_eq!(count(&html, "<li class=\"signal "), 13);
    // A sequence with weak signals marks them.
    let html = report(
        &[
            "--sequence",
            "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/auto_scaling_group/api-asg/2025-05-05T12:10:14.000Z",
        ],
        &["fixtures/scenarios/instance-credentials-launch-compute/positive"],
    );
    assert_eq!(count(&html, "<span class=\"weak-tag\">weak</span>"), 1);
    assert_eq!(count(&html, "<li class=\"signal "), 3);
}

#[test]
fn issue_7_report_loads_nothing_from_the_network() {
    let html = report(&[], &["fixtures/"]);
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';")
    );
    for attr in [
        "src=\"",
        "srcset=\"",
        "xlink:href=\"",
        "@import",
        "url(http",
        "url(//",
    ] {
        assert!(!html.contains(attr), "{attr}");
    }
    // The only web addresses are in `<a href>` links (the rules' runbooks and references).
    let addresses = html
        .match_indices("http://")
        .chain(html.match_indices("https://"));
    for (i, _) in addresses {
        let before = &html[i.saturating_sub(7)..i];
        let in_link = before.ends_with("href=\"");
        let in_text = html[..i].rfind('<') < html[..i].rfind('>');
        assert!(
            in_link || in_text,
            "a web address outside a link: {}",
            html[i - 20..].chars().take(60).collect::<String>()
        );
    }
    assert_eq!(count(&html, "<script"), 1, "one script, inline");
    assert_eq!(count(&html, "<style"), 1, "one style sheet, inline");
}

/// A value an attacker controls in a record (a role session name, an instance type, an error
/// code, a DNS domain in a finding) that would run script if written as markup.
const HOSTILE: &str = "</title></script><script>document.title='PWNED'</script><img src=x onerror=alert(1)>\"'&amp;\u{1}";

/// A rule over both records, itself with markup in its texts and a `javascript:` runbook.
const HOSTILE_RULE: &str = r#"id: hostile-test
title: "Rule <b>title</b> & co"
description: "Description <i>with</i> markup"
severity: HIGH
types: ["TTPs/Impact"]
runbook: "Runbook <script>alert(2)</script>"
runbook_url: "javascript:alert(3)"
references: ["javascript:alert(4)"]
stages:
  - name: dns
    select:
      finding_types: ["Impact:*"]
  - name: launch
    select:
      events: [RunInstances]
group_by: account
window: 2h
condition:
  require: [dns, launch]
"#;

fn hostile_input(dir: &Path) -> std::path::PathBuf {
    let mut finding: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/guardduty/eventbridge-guardduty.json"))
            .unwrap(),
    )
    .unwrap();
    let d = &mut finding["detail"];
    d["service"]["action"]["dnsRequestAction"]["domain"] = HOSTILE.into();
    d["title"] = HOSTILE.into();
    let launch = json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLEHOSTILE01:{HOSTILE}"),
            "arn": format!("arn:aws:sts::111122223333:assumed-role/hostile/{HOSTILE}"),
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLEHOSTILE01",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/hostile"}}
        },
        "eventTime": "2025-05-02T09:10:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.66",
        "userAgent": HOSTILE,
        "errorCode": HOSTILE,
        "requestParameters": {"instanceType": HOSTILE},
        "responseElements": null,
        "eventID": "99999999-0000-4000-8000-000000000001",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    });
    std::fs::write(dir.join("finding.json"), finding.to_string()).unwrap();
    std::fs::write(
        dir.join("trail.json"),
        json!({ "Records": [launch] }).to_string(),
    )
    .unwrap();
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/hostile-test.yaml"), HOSTILE_RULE).unwrap();
    dir.to_path_buf()
}

#[test]
fn issue_7_markup_in_records_and_rules_is_text_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = hostile_input(dir.path());
    let out = correlator()
        .arg("report")
        .arg("--rules")
        .arg(input.join("rules"))
        .arg("--output")
        .arg(input.join("report.html"))
        .arg(input.join("finding.json"))
        .arg(input.join("trail.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(input.join("report.html")).unwrap();
    check_well_formed(&html);
    assert_eq!(sections(&html).len(), 1, "the hostile rule matched");
    // The value is shown (in the domain, the title, the session, the error code), as text.
    let escaped = "&lt;/title&gt;&lt;/script&gt;&lt;script&gt;document.title=&#39;PWNED&#39;\
                   &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;amp;\u{fffd}";
    assert!(count(&html, escaped) >= 4, "{}", count(&html, escaped));
    assert_eq!(count(&html, "<script"), 1, "only the page's own script");
    for raw in ["<img", "<b>", "<i>", "\u{1}", "href=\"javascript:"] {
        assert!(!html.contains(raw), "{raw:?} in the page");
    }
    assert!(html.contains("Rule &lt;b&gt;title&lt;/b&gt; &amp; co"));
    assert!(html.contains("Runbook &lt;script&gt;alert(2)&lt;/script&gt;"));
}

/// 200 RunInstances calls by one principal, each launching one instance from its own AMI
/// (so 200 groups) at a different source address; every tenth fails.
fn busy_input(dir: &Path) -> std::path::PathBuf {
    let records: Vec<Value> = (0..200)
        .map(|i| {
            let mut r = json!({
                "eventVersion": "1.10",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLEBUSY0001",
                    "arn": "arn:aws:iam::111122223333:user/busy",
                    "accountId": "111122223333",
                    "accessKeyId": "AKIAEXAMPLEBUSY0001",
                    "userName": "busy"
                },
                "eventTime": format!("2025-05-02T10:{:02}:{:02}Z", i / 4, (i % 4) * 15),
                "eventSource": "ec2.amazonaws.com",
                "eventName": "RunInstances",
                "awsRegion": "us-east-1",
                "sourceIPAddress": format!("198.51.100.{}", i % 250),
                "requestParameters": {"instanceType": "c5.large"},
                "responseElements": {"instancesSet": {"items": [{
                    "instanceId": format!("i-0{i:016x}"),
                    "imageId": format!("ami-0{i:016x}"),
                    "instanceType": "c5.large",
                    "subnetId": format!("subnet-0{i:016x}"),
                    "vpcId": "vpc-0aaaaaaaaaaaaaaa1"
                }]}},
                "eventID": format!("00000000-0000-4000-8000-{i:012}"),
                "eventType": "AwsApiCall",
                "recipientAccountId": "111122223333"
            });
            if i % 10 == 9 {
                r["errorCode"] = "Client.InstanceLimitExceeded".into();
                r["responseElements"] = Value::Null;
            }
            r
        })
        .collect();
    std::fs::write(
        dir.join("busy.json"),
        json!({ "Records": records }).to_string(),
    )
    .unwrap();
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/busy.yaml"),
        "id: busy\ntitle: Busy launcher\ndescription: Every launch.\nseverity: MEDIUM\n\
         types: [\"TTPs/Impact\"]\nrunbook: Look.\nstages:\n  - name: launch\n    select:\n\
         \x20     events: [RunInstances]\ngroup_by: principal\nwindow: 2h\ncondition:\n\
         \x20 require: [launch]\n",
    )
    .unwrap();
    dir.to_path_buf()
}

#[test]
fn issue_7_a_200_signal_sequence_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let input = busy_input(dir.path());
    let out = correlator()
        .arg("report")
        .arg("--rules")
        .arg(input.join("rules"))
        .args(["--output", "-"])
        .arg(input.join("busy.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8(out.stdout).unwrap();
    check_well_formed(&html);
    let secs = sections(&html);
    assert_eq!(secs.len(), 1);
    let sec = secs[0];
    // One entry per signal, in a scrolling list; runs of alike calls fold behind their first.
    assert_eq!(count(sec, "<li class=\"signal "), 200);
    assert_eq!(data(sec, "signals"), 200);
    let folded = count(sec, " repeat folded\"");
    assert_eq!(
        count(sec, "<li class=\"fold\""),
        20,
        "a run between failures"
    );
    assert_eq!(folded, 20 * 8, "each run of 9 shows its first");
    // The neighbourhood (200 instances in 200 groups, 180 AMIs and subnets, 200 addresses)
    // is drawn capped: a bounded number of nodes, the rest counted in "+N more" boxes.
    let entities = data(sec, "entities");
    let drawn = data(sec, "drawn");
    let hidden = data(sec, "hidden");
    assert!(entities > 600, "{entities}");
    assert!(drawn <= 80, "{drawn} drawn");
    assert_eq!(count(sec, "<g class=\"node "), drawn);
    assert_eq!(drawn + hidden, entities);
    let more: usize = sec
        .split("<g class=\"more\" data-count=\"")
        .skip(1)
        .map(|m| m[..m.find('"').unwrap()].parse::<usize>().unwrap())
        .sum();
    assert_eq!(more, hidden, "the +N more boxes add up");
    // The drawing keeps a size one can look at.
    let svg = &sec[sec.find("<svg class=\"graph\"").unwrap()..];
    let height: f64 = {
        let from = svg.find("height=\"").unwrap() + 8;
        svg[from..from + svg[from..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    assert!(height < 1200.0, "{height}");
}

#[test]
fn issue_7_correlate_report_writes_the_report_command_s_page() {
    let dir = tempfile::tempdir().unwrap();
    for sequence in [None, Some(WEB_ASG_SEQUENCE)] {
        let path = dir.path().join("report.html");
        let mut cmd = correlator();
        cmd.args(["correlate", "--asff", "-", "--report"])
            .arg(&path);
        let mut args: Vec<&str> = Vec::new();
        if let Some(id) = sequence {
            cmd.args(["--sequence", id]);
            args = vec!["--sequence", id];
        }
        let out = cmd.args(MAIN).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // --sequence narrows the report and the graph, not the findings.
        let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(findings["Findings"].as_array().unwrap().len(), 1);
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written == report(&args, &MAIN),
            "correlate --report differs from report ({sequence:?})"
        );
        assert_eq!(sections(&written).len(), 1, "one attack, one section");
    }
}

#[test]
fn issue_7_the_same_input_gives_the_same_report() {
    // Files are read in parallel; a finding read both from GuardDuty and through Security Hub
    // arrives in either order. The page must not depend on it.
    let first = report(&[], &MAIN);
    for _ in 0..7 {
        assert!(report(&[], &MAIN) == first, "two runs gave different pages");
    }
}
