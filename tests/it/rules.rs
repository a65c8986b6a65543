//! Rules: loading, the errors a rule writer sees, inline tests, and the matcher's window
//! semantics on small hand-made inputs.

use std::sync::Arc;

use finding_correlator::config::Config;
use finding_correlator::pipeline;
use finding_correlator::rules::fields::Field;
use finding_correlator::rules::{RuleError, RuleSet};

use crate::common;

fn settings() -> finding_correlator::config::Settings {
    Config::default()
        .validate()
        .expect("default config is valid")
}

/// Compiles rule files given as (stem, text).
fn load(files: &[(&str, &str)]) -> Result<RuleSet, Vec<RuleError>> {
    RuleSet::from_texts(
        files
            .iter()
            .map(|(stem, text)| (format!("{stem}.yaml"), stem.to_string(), text.to_string())),
    )
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    load(files)
        .expect_err("the rules should not load")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const MINIMAL: &str = r#"id: minimal
title: Minimal rule
description: Any RunInstances by a user.
severity: MEDIUM
types: ["TTPs/Impact"]
runbook: Look at it.
stages:
  - name: launch
    select:
      events: [RunInstances]
group_by: principal
window: 1h
condition:
  require: [launch]
"#;

#[test]
fn the_shipped_rules_load_and_their_inline_tests_pass() {
    let set = RuleSet::builtin().expect("shipped rules load");
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "compromised-instance-group",
        "instance-credentials-launch-compute",
        "mass-compute-deployment",
        "compute-resource-creation",
        "failed-compute-launch",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // Weak-signal rules come before the rule that selects their signals.
    let pos = |id: &str| ids.iter().position(|x| *x == id).unwrap();
    assert!(pos("compute-resource-creation") < pos("compromised-instance-group"));
    assert!(pos("failed-compute-launch") < pos("compromised-instance-group"));
    let results = pipeline::test_rules(&set, &settings());
    assert!(results.len() >= 10, "{results:?}");
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn the_shipped_rules_are_the_files_of_correlation_rules() {
    let mut on_disk: Vec<String> = std::fs::read_dir(common::repo().join("correlation-rules"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
        .collect();
    on_disk.sort();
    let from_dir = RuleSet::load_dir(&common::repo().join("correlation-rules")).unwrap();
    let mut built_in: Vec<String> = RuleSet::builtin()
        .unwrap()
        .rules
        .iter()
        .map(|r| r.id.clone())
        .collect();
    built_in.sort();
    let mut loaded: Vec<String> = from_dir.rules.iter().map(|r| r.id.clone()).collect();
    loaded.sort();
    assert_eq!(built_in, on_disk);
    assert_eq!(loaded, on_disk);
}

#[test]
fn a_failing_inline_test_is_reported() {
    let text = format!(
        "{MINIMAL}tests:\n  - name: expects too much\n    records:\n      - eventVersion: \"1.10\"\n        eventTime: \"2025-05-02T10:00:00Z\"\n        eventSource: ec2.amazonaws.com\n        eventName: RunInstances\n        eventID: 00000000-0000-4000-8000-0000000000aa\n        userIdentity: {{type: IAMUser, principalId: AIDAEXAMPLE1, arn: \"arn:aws:iam::111122223333:user/bob\"}}\n    expect:\n      sequences: 2\n"
    );
    let set = load(&[("minimal", &text)]).unwrap();
    let results = pipeline::test_rules(&set, &settings());
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].failure.as_deref(),
        Some("expected 2 sequence(s), found 1 (principal/AIDAEXAMPLE1 with 1 signal(s))")
    );
}

#[test]
fn errors_point_at_the_line_and_column_and_say_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "window: 1h",
            "window: 1 hour",
            "minimal.yaml:12:9: window: expected a duration like \"15m\", \"8h\" or \"1d\", found \"1 hour\"",
        ),
        (
            "  require: [launch]",
            "  require: [lanch]",
            "minimal.yaml:14:13: unknown stage \"lanch\" (stages: launch)",
        ),
        (
            "severity: MEDIUM",
            "severity: SEVERE",
            "minimal.yaml:4:11: severity \"SEVERE\": expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL",
        ),
        (
            "group_by: principal",
            "group_by: team",
            "minimal.yaml:11:11: group_by \"team\": expected instance_group, principal, account, access_key or a field (source, kind",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      where:\n        - field: lauched_count\n          gte: 1",
            "minimal.yaml:12:18: unknown field \"lauched_count\"",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      where:\n        - field: user_agent\n          regex: \"(unclosed\"",
            "minimal.yaml:13:18: regex \"(unclosed\" does not compile: unclosed group",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      where:\n        - field: user_agent\n          prefix: a\n          suffix: b",
            "minimal.yaml:12:18: condition on \"user_agent\": expected exactly one operator",
        ),
        (
            "runbook: Look at it.",
            "runbook: Look at it.\nrunbok: typo",
            "minimal.yaml:7:1: unknown field `runbok`, expected one of",
        ),
        (
            "types: [\"TTPs/Impact\"]",
            "types: [\"Threats/Impact\"]",
            "minimal.yaml:5:9: type \"Threats/Impact\": the namespace must be one of",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      first_seen: [region, country]",
            "minimal.yaml:11:28: first_seen \"country\": expected region, ami, instance_type or principal",
        ),
        (
            "condition:",
            "baseline:\n  k: 3\ncondition:",
            "minimal.yaml:1:1: baseline: no stage uses `first_seen` or `launch_rate_outlier`",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      launch_rate_outlier: true\nbaseline:\n  learning_period: soon",
            "minimal.yaml:13:20: baseline.learning_period: expected a duration",
        ),
        (
            "      events: [RunInstances]",
            "      events: [RunInstances]\n      launch_rate_outlier: true\nbaseline:\n  k: -1",
            "minimal.yaml:13:6: baseline.k: expected a number above zero",
        ),
    ];
    for (from, to, want) in cases {
        assert!(MINIMAL.contains(from), "{from}");
        let text = MINIMAL.replace(from, to);
        let errs = errors(&[("minimal", &text)]);
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "replacing {from:?} by {to:?}: expected an error starting with {want:?}, got {errs:#?}"
        );
    }
}

#[test]
fn every_problem_of_every_file_is_reported_at_once() {
    let bad1 = MINIMAL.replace("window: 1h", "window: soon");
    let bad2 = MINIMAL
        .replace("id: minimal", "id: second")
        .replace("severity: MEDIUM", "severity: x");
    let errs = errors(&[("minimal", &bad1), ("second-file", &bad2)]);
    assert!(errs.iter().any(|e| e.contains("window")), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("must equal the file name \"second-file\"")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("severity \"x\"")),
        "{errs:#?}"
    );
}

#[test]
fn references_between_rules_must_resolve_and_not_cycle() {
    // Weak-signal rules (a rule writing findings makes no signal to select).
    let feeds = |id: &str, dep: &str| {
        MINIMAL
            .replace("id: minimal", &format!("id: {id}"))
            .replace("events: [RunInstances]", &format!("rules: [{dep}]"))
            .replace("stages:", "emit: weak_signal\nstages:")
    };
    let errs = errors(&[("a", &feeds("a", "b")), ("b", &feeds("b", "a"))]);
    assert!(
        errs.iter()
            .any(|e| e.contains("rules select each other's signals in a cycle: a, b")),
        "{errs:#?}"
    );
    let errs = errors(&[("a", &feeds("a", "missing"))]);
    assert_eq!(
        errs,
        vec!["a.yaml:1:1: selects signals of rule \"missing\", which is not loaded"]
    );
    let dup = errors(&[("minimal", MINIMAL), ("minimal", MINIMAL)]);
    assert!(
        dup.iter()
            .any(|e| e.contains("is used by another file too")),
        "{dup:#?}"
    );
}

#[test]
fn the_rule_reference_documents_every_field() {
    let readme =
        std::fs::read_to_string(common::repo().join("correlation-rules/README.md")).unwrap();
    for (_, name, _) in Field::ALL {
        assert!(
            readme.contains(&format!("`{name}`")),
            "field {name} is not in correlation-rules/README.md"
        );
    }
}

/// A CloudTrail RunInstances record by `principal` at `time`, launching `n` instances of
/// `itype` with `vcpus` each.
fn run_instances(id: u32, time: &str, principal: &str, itype: &str, n: u32, vcpus: u32) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"instanceId":"i-0{:016x}","instanceType":"{itype}","cpuOptions":{{"coreCount":{},"threadsPerCore":2}}}}"#,
                u64::from(id) * 1000 + u64::from(i),
                vcpus / 2
            )
        })
        .collect();
    format!(
        r#"{{"eventVersion":"1.10","eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventID":"00000000-0000-4000-8000-{id:012}","userIdentity":{{"type":"IAMUser","principalId":"{principal}","arn":"arn:aws:iam::111122223333:user/{principal}","accountId":"111122223333"}},"responseElements":{{"instancesSet":{{"items":[{}]}}}}}}"#,
        items.join(",")
    )
}

/// Correlates JSON Lines with one rule file; returns (group key, start, signals) per sequence.
fn sequences(rule: &str, lines: &[String]) -> Vec<(String, String, usize)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), lines.join("\n")).unwrap();
    let set = Arc::new(load(&[("r", rule)]).unwrap());
    let run = pipeline::correlate(&[dir.path().to_path_buf()], &settings(), set, false, None);
    run.sequences
        .iter()
        .map(|s| {
            (
                s.key.to_string(),
                finding_correlator::time::format_rfc3339(s.start),
                s.total_signals,
            )
        })
        .collect()
}

fn counting_rule(window: &str, suppress: Option<&str>, at_least: u32) -> String {
    let mut r = MINIMAL
        .replace("id: minimal", "id: r")
        .replace("window: 1h", &format!("window: {window}"))
        .replace(
            "  require: [launch]\n",
            &format!("  thresholds:\n    - count: true\n      at_least: {at_least}\n"),
        );
    if let Some(s) = suppress {
        r.push_str(&format!("suppress: {s}\n"));
    }
    r
}

#[test]
fn an_ongoing_sequence_is_extended_not_duplicated() {
    // Three launches 20 minutes apart: the condition (2 launches) holds at the second, and
    // the third, within the window of the last, extends the same sequence.
    let lines = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(2, "2025-05-02T10:20:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(3, "2025-05-02T10:40:00Z", "AIDAA", "t3.micro", 1, 2),
    ];
    assert_eq!(
        sequences(&counting_rule("30m", None, 2), &lines),
        vec![(
            "principal/AIDAA".into(),
            "2025-05-02T10:00:00.000Z".into(),
            3
        )]
    );
}

#[test]
fn after_a_quiet_window_a_new_sequence_opens_unless_suppressed() {
    let lines = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(2, "2025-05-02T10:10:00Z", "AIDAA", "t3.micro", 1, 2),
        // 3 hours later: the 30-minute window has long passed.
        run_instances(3, "2025-05-02T13:10:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(4, "2025-05-02T13:20:00Z", "AIDAA", "t3.micro", 1, 2),
    ];
    assert_eq!(
        sequences(&counting_rule("30m", None, 2), &lines),
        vec![
            (
                "principal/AIDAA".into(),
                "2025-05-02T10:00:00.000Z".into(),
                2
            ),
            (
                "principal/AIDAA".into(),
                "2025-05-02T13:10:00.000Z".into(),
                2
            ),
        ]
    );
    // With suppress 24h, the later burst extends the first sequence (same start, same Id).
    assert_eq!(
        sequences(&counting_rule("30m", Some("24h"), 2), &lines),
        vec![(
            "principal/AIDAA".into(),
            "2025-05-02T10:00:00.000Z".into(),
            4
        )]
    );
}

#[test]
fn windows_slide_and_groups_stay_apart() {
    // Two launches 40 minutes apart never share a 30-minute window; another principal's
    // launch in between does not count for the first.
    let lines = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(2, "2025-05-02T10:20:00Z", "AIDAB", "t3.micro", 1, 2),
        run_instances(3, "2025-05-02T10:40:00Z", "AIDAA", "t3.micro", 1, 2),
    ];
    assert_eq!(sequences(&counting_rule("30m", None, 2), &lines), vec![]);
}

#[test]
fn sums_count_every_launched_instance() {
    let rule = MINIMAL.replace("id: minimal", "id: r").replace(
        "  require: [launch]\n",
        "  thresholds:\n    - sum: launched_vcpus\n      at_least: 800\n",
    );
    // One call launching 9 instances of 96 vCPUs: Sentinel's rule reads only the first item.
    let hit = vec![run_instances(
        1,
        "2025-05-02T10:00:00Z",
        "AIDAA",
        "c5.24xlarge",
        9,
        96,
    )];
    assert_eq!(sequences(&rule, &hit).len(), 1);
    let miss = vec![run_instances(
        1,
        "2025-05-02T10:00:00Z",
        "AIDAA",
        "c5.24xlarge",
        8,
        96,
    )];
    assert_eq!(sequences(&rule, &miss), vec![]);
}

#[test]
fn allowlists_leave_signals_out() {
    let rule = counting_rule("1h", None, 1) + "allowlist:\n  principals: [\"AIDAA*\"]\n";
    let lines = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAALLOWED", "t3.micro", 1, 2),
        run_instances(2, "2025-05-02T10:00:00Z", "AIDABOTHER", "t3.micro", 1, 2),
    ];
    assert_eq!(
        sequences(&rule, &lines),
        vec![(
            "principal/AIDABOTHER".into(),
            "2025-05-02T10:00:00.000Z".into(),
            1
        )]
    );
}

/// The README's other allowlist keys: `accounts`, and `tags` of the instances a signal is
/// about (a value may be a pattern).
#[test]
fn allowlists_by_account_and_by_instance_tag_leave_signals_out() {
    let other_account = run_instances(2, "2025-05-02T10:00:00Z", "AIDAOTHER", "t3.micro", 1, 2)
        .replace("111122223333", "444455556666");
    let tagged = run_instances(3, "2025-05-02T10:00:00Z", "AIDATAGGED", "t3.micro", 1, 2).replace(
        r#""instanceType":"t3.micro""#,
        r#""instanceType":"t3.micro","tagSet":{"items":[{"key":"team","value":"capacity-tests"}]}"#,
    );
    let plain = run_instances(1, "2025-05-02T10:00:00Z", "AIDAPLAIN", "t3.micro", 1, 2);
    let lines = vec![plain, other_account, tagged];
    let groups = |allowlist: &str| -> Vec<String> {
        let rule = counting_rule("1h", None, 1) + allowlist;
        let mut g: Vec<String> = sequences(&rule, &lines).into_iter().map(|s| s.0).collect();
        g.sort();
        g
    };
    assert_eq!(groups("").len(), 3);
    assert_eq!(
        groups("allowlist:\n  accounts: [\"444455556666\"]\n"),
        ["principal/AIDAPLAIN", "principal/AIDATAGGED"]
    );
    for tags in ["{team: capacity-tests}", "{team: \"capacity-*\"}"] {
        assert_eq!(
            groups(&format!("allowlist:\n  tags: {tags}\n")),
            ["principal/AIDAOTHER", "principal/AIDAPLAIN"],
            "{tags}"
        );
    }
}

#[test]
fn ordered_stages_must_come_in_order() {
    let rule = MINIMAL
        .replace("id: minimal", "id: r")
        .replace(
            "  - name: launch\n    select:\n      events: [RunInstances]\n",
            "  - name: small\n    select:\n      events: [RunInstances]\n      where:\n        - {field: launched_vcpus, lt: 10}\n  - name: big\n    select:\n      events: [RunInstances]\n      where:\n        - {field: launched_vcpus, gte: 10}\n",
        )
        .replace("  require: [launch]\n", "  ordered: [small, big]\n");
    let small_then_big = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAA", "t3.micro", 1, 2),
        run_instances(2, "2025-05-02T10:05:00Z", "AIDAA", "c5.4xlarge", 1, 16),
    ];
    assert_eq!(sequences(&rule, &small_then_big).len(), 1);
    let big_then_small = vec![
        run_instances(1, "2025-05-02T10:00:00Z", "AIDAA", "c5.4xlarge", 1, 16),
        run_instances(2, "2025-05-02T10:05:00Z", "AIDAA", "t3.micro", 1, 2),
    ];
    assert_eq!(sequences(&rule, &big_then_small), vec![]);
}

/// Streaming input (AWS mode) arrives out of order; within the configured lag the matcher's
/// reorder buffer must give exactly what sorted input gives.
#[test]
fn out_of_order_arrival_within_the_lag_changes_nothing() {
    use finding_correlator::graph::{Added, EntityGraph};
    use finding_correlator::matcher::Matcher;
    let settings = settings();
    let mut signals = Vec::new();
    for dir in ["asff", "cloudtrail", "guardduty"] {
        let (files, _) = finding_correlator::sources::file::collect_files(&[common::fixture(dir)]);
        for f in files {
            let d = common::decode_file(&f.path);
            signals.extend(d.signals.into_iter().map(|(_, s)| s));
        }
    }
    let rules = Arc::new(RuleSet::builtin().unwrap());
    let mut graph = EntityGraph::new(settings.group_precedence.clone(), false);
    let mut kept = Vec::new();
    for s in signals {
        if graph.add_signal(&s) != Added::Duplicate {
            kept.push(Arc::new(s));
        }
    }
    let describe = |seqs: &[finding_correlator::matcher::Sequence]| -> Vec<String> {
        seqs.iter()
            .map(|s| {
                let refs: Vec<String> = s.signals.iter().map(|x| x.reference.key()).collect();
                format!("{} {} {} {:?}", s.rule_id, s.key, s.start, refs)
            })
            .collect()
    };
    let mut ordered = Matcher::new(rules.clone(), settings.matching.clone());
    ordered.push_ordered(kept.clone(), &graph);
    let (want, _) = ordered.finish(&graph);
    assert!(want.len() >= 4, "{:?}", describe(&want));

    // Arrival order: by time, but every run of signals within 30 minutes reversed.
    kept.sort_by_key(|s| (s.time, s.reference.key()));
    let mut arrival = Vec::new();
    let mut chunk: Vec<Arc<finding_correlator::signal::Signal>> = Vec::new();
    for s in kept {
        if chunk
            .first()
            .is_some_and(|c| s.time - c.time >= 30 * 60 * 1000)
        {
            arrival.extend(chunk.drain(..).rev());
        }
        chunk.push(s);
    }
    arrival.extend(chunk.drain(..).rev());
    let mut streaming = Matcher::new(rules, settings.matching.clone());
    for s in arrival {
        streaming.push(s, &graph);
    }
    let (got, stats) = streaming.finish(&graph);
    assert_eq!(stats.late, 0);
    assert_eq!(describe(&got), describe(&want));
}

/// Memory follows live windows: after many groups have gone quiet, the matcher holds only the
/// groups whose windows are still open.
#[test]
fn group_states_are_forgotten_once_their_window_has_passed() {
    use finding_correlator::graph::EntityGraph;
    use finding_correlator::matcher::Matcher;
    let settings = settings();
    let rule = counting_rule("1h", None, 1);
    let rules = Arc::new(load(&[("r", &rule)]).unwrap());
    // 10,000 launches by 10,000 different principals, one a minute over a week.
    let start = finding_correlator::time::parse_timestamp("2025-05-01T00:00:00Z").unwrap();
    let signals: Vec<Arc<finding_correlator::signal::Signal>> = (0..10_000u32)
        .map(|i| {
            let t = finding_correlator::time::format_rfc3339(start + i64::from(i) * 60_000);
            let line = run_instances(i, &t, &format!("AIDA{i:08}"), "t3.micro", 1, 2);
            let d = common::decode_bytes(line.as_bytes());
            Arc::new(d.signals.into_iter().next().expect("decodes").1)
        })
        .collect();
    let graph = EntityGraph::new(settings.group_precedence.clone(), false);
    let mut m = Matcher::new(rules, settings.matching.clone());
    m.push_ordered(signals, &graph);
    // Only the principals of the last hour (and those since the last sweep) can be live.
    assert!(
        m.live_states() < 4096 + 60,
        "{} live group states",
        m.live_states()
    );
    let (seqs, _) = m.finish(&graph);
    assert_eq!(
        seqs.len(),
        10_000,
        "every group's sequence is still reported"
    );
}

#[test]
fn issue_14_rollup_absorbs_is_declared_checked_and_defaults_to_every_rule() {
    let set = load(&[("minimal", MINIMAL)]).expect("loads");
    let r = set.get("minimal").unwrap();
    assert!(r.may_absorb("any-rule"), "default: every rule");
    let with = |list: &str| format!("{MINIMAL}rollup:\n  absorbs: {list}\n");
    let set = load(&[("minimal", &with("[\"mass-*\", minimal]"))]).expect("loads");
    let r = set.get("minimal").unwrap();
    assert!(r.may_absorb("mass-compute-deployment") && r.may_absorb("minimal"));
    assert!(!r.may_absorb("instance-credentials-launch-compute"));
    let set = load(&[("minimal", &with("[]"))]).expect("loads");
    assert!(
        !set.get("minimal").unwrap().may_absorb("minimal"),
        "[] absorbs nothing"
    );
    // A rule that is not loaded, a name that is no rule id, an unknown key, a weak-signal rule.
    assert_eq!(
        errors(&[("minimal", &with("[missing-rule]"))]),
        vec!["minimal.yaml:1:1: rollup.absorbs names rule \"missing-rule\", which is not loaded"]
    );
    let errs = errors(&[("minimal", &with("[\"Bad Name\"]"))]);
    assert!(
        errs.iter().any(|e| e.starts_with("minimal.yaml:16:13: ")
            && e.contains("rollup.absorbs \"Bad Name\": expected a rule id")),
        "{errs:#?}"
    );
    let errs = errors(&[("minimal", &format!("{MINIMAL}rollup:\n  absorb: [\"*\"]\n"))]);
    assert!(errs.iter().any(|e| e.contains("absorb")), "{errs:#?}");
    let weak = with("[\"*\"]").replace("severity: MEDIUM", "severity: MEDIUM\nemit: weak_signal");
    let errs = errors(&[("minimal", &weak)]);
    assert!(
        errs.iter()
            .any(|e| e.contains("rollup: a weak_signal rule writes no finding")),
        "{errs:#?}"
    );
}

/// MINIMAL's lines before its stages, with the id `r`.
fn rule_head() -> String {
    let head = MINIMAL.replace("id: minimal", "id: r");
    head.split("stages:").next().unwrap().to_string()
}

/// MINIMAL with its stages, group_by and condition replaced.
fn language_rule(stages: &str, group_by: &str, condition: &str) -> String {
    let head = rule_head();
    format!("{head}stages:\n{stages}group_by: {group_by}\nwindow: 1h\ncondition:\n{condition}")
}

#[test]
fn issue_17_group_by_takes_any_normalized_field() {
    let count2 = "  thresholds:\n    - count: true\n      at_least: 2\n";
    let launches = "  - name: launch\n    select:\n      events: [RunInstances]\n";
    let lines = [
        run_instances(1, "2025-05-02T09:00:00Z", "alice", "p3.16xlarge", 1, 64),
        run_instances(2, "2025-05-02T09:05:00Z", "bob", "p3.16xlarge", 1, 64),
        run_instances(3, "2025-05-02T09:10:00Z", "alice", "t3.micro", 1, 2),
    ];
    // By the acting identity's ARN: alice's two calls.
    assert_eq!(
        sequences(&language_rule(launches, "actor.arn", count2), &lines),
        [(
            "actor.arn/arn:aws:iam::111122223333:user/alice".to_string(),
            "2025-05-02T09:00:00.000Z".to_string(),
            2
        )]
    );
    // By a list field, one group per element: the two p3 launches of two people.
    assert_eq!(
        sequences(&language_rule(launches, "instance_types", count2), &lines),
        [(
            "instance_types/p3.16xlarge".to_string(),
            "2025-05-02T09:00:00.000Z".to_string(),
            2
        )]
    );
    // A signal without the field is in no group.
    assert!(sequences(&language_rule(launches, "error_code", count2), &lines).is_empty());
    let errs = errors(&[("r", &language_rule(launches, "actor.role", count2))]);
    assert!(
        errs.iter().any(|e| e.starts_with("r.yaml:11:11: group_by \"actor.role\": expected instance_group, principal, account, access_key or a field (")
            && e.contains("actor.role_arn")),
        "{errs:?}"
    );
}

#[test]
fn issue_17_where_takes_any_all_and_not() {
    let stages = r#"  - name: launch
    select:
      events: [RunInstances]
      where:
        - field: launched_count
          gte: 1
        - any:
            - field: instance_types
              prefix: "p"
            - all:
                - field: launched_vcpus
                  gte: 96
                - not:
                    field: actor.arn
                    suffix: "/ci"
"#;
    let rule = language_rule(stages, "principal", "  require: [launch]\n");
    let got = |line: String| sequences(&rule, &[line]).len();
    // A GPU type: the first branch.
    assert_eq!(
        got(run_instances(
            1,
            "2025-05-02T09:00:00Z",
            "alice",
            "p3.2xlarge",
            1,
            8
        )),
        1
    );
    // Many vCPUs of another type, not by the CI user: the second.
    assert_eq!(
        got(run_instances(
            2,
            "2025-05-02T09:00:00Z",
            "alice",
            "c5.24xlarge",
            1,
            96
        )),
        1
    );
    // The same by the CI user: `not` rules it out.
    assert_eq!(
        got(run_instances(
            3,
            "2025-05-02T09:00:00Z",
            "ci",
            "c5.24xlarge",
            1,
            96
        )),
        0
    );
    // Few vCPUs of another type: neither branch.
    assert_eq!(
        got(run_instances(
            4,
            "2025-05-02T09:00:00Z",
            "alice",
            "c5.large",
            1,
            2
        )),
        0
    );
    // Errors at their place.
    let bad = |group: &str| {
        language_rule(
            &format!(
                "  - name: launch\n    select:\n      events: [RunInstances]\n      where:\n{group}"
            ),
            "principal",
            "  require: [launch]\n",
        )
    };
    let errs = errors(&[
        (
            "r",
            &bad(
                "        - field: region\n          any:\n            - field: region\n              equals: x\n",
            ),
        ),
        ("s", &bad("        - any: []\n").replace("id: r", "id: s")),
        (
            "t",
            &bad("        - not:\n            field: regin\n            equals: x\n")
                .replace("id: r", "id: t"),
        ),
    ]);
    for want in [
        "r.yaml:14:13: a condition group: expected exactly one of `any`, `all` or `not`, with no `field` beside it",
        "s.yaml:12:16: any: expected at least one condition",
        "t.yaml:13:20: unknown field \"regin\"",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want}\n{errs:#?}"
        );
    }
}

#[test]
fn issue_17_an_absent_stage_keeps_a_sequence_from_opening() {
    let stages = r#"  - name: launch
    select:
      events: [RunInstances]
      where:
        - field: actor.arn
          suffix: "/alice"
  - name: scaling
    absent: true
    select:
      events: [RunInstances]
      where:
        - field: actor.arn
          suffix: "/autoscaler"
"#;
    let rule = language_rule(stages, "account", "  require: [launch]\n");
    let alice = run_instances(1, "2025-05-02T09:00:00Z", "alice", "p3.2xlarge", 1, 8);
    assert_eq!(sequences(&rule, std::slice::from_ref(&alice)).len(), 1);
    // The scaling launch 10 minutes before, in the window: no sequence.
    let scaling = run_instances(2, "2025-05-02T08:50:00Z", "autoscaler", "p3.2xlarge", 1, 8);
    assert!(sequences(&rule, &[scaling, alice.clone()]).is_empty());
    // Two hours before, out of the window: a sequence, without the scaling launch in it.
    let earlier = run_instances(3, "2025-05-02T07:00:00Z", "autoscaler", "p3.2xlarge", 1, 8);
    assert_eq!(
        sequences(&rule, &[earlier, alice]),
        [(
            "account/111122223333".to_string(),
            "2025-05-02T09:00:00.000Z".to_string(),
            1
        )]
    );
    let errs = errors(&[(
        "r",
        &language_rule(
            &stages.replace("    absent: true\n", "    absent: true\n    weak: true\n"),
            "account",
            "  require: [launch, scaling]\n",
        ),
    )]);
    for want in [
        "r.yaml:15:13: stage \"scaling\": a stage is weak (joins) or absent (must not occur), not both",
        "r.yaml:25:21: stage \"scaling\" is absent",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want}\n{errs:#?}"
        );
    }
}

/// The first YAML block of `correlation-rules/README.md` after the text `after`.
fn reference_block(after: &str) -> String {
    let text = std::fs::read_to_string(common::repo().join("correlation-rules/README.md")).unwrap();
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in the reference"));
    let rest = &text[from..];
    let start = rest.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
    let end = rest[start..].find("```").expect("the block's end");
    rest[start..start + end].to_string()
}

#[test]
fn issue_17_the_references_examples_of_groups_and_absent_stages_do_what_it_says() {
    let head = rule_head();
    // Absent: a person's GPU launch, and Auto Scaling's launch in the hour before.
    let rule = format!(
        "{head}{}",
        reference_block("A stage can also be **absent**")
    );
    let person = run_instances(1, "2025-05-02T09:00:00Z", "alice", "p3.2xlarge", 1, 8);
    let scaling = run_instances(2, "2025-05-02T08:40:00Z", "x", "p3.2xlarge", 1, 8).replace(
        r#""userIdentity":{"type":"IAMUser","principalId":"x","arn":"arn:aws:iam::111122223333:user/x","accountId":"111122223333"}"#,
        r#""userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEAUTOSCALE:AutoScaling","arn":"arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling","accountId":"111122223333","invokedBy":"autoscaling.amazonaws.com"}"#,
    );
    assert!(scaling.contains("invokedBy"), "{scaling}");
    assert_eq!(sequences(&rule, std::slice::from_ref(&person)).len(), 1);
    assert!(sequences(&rule, &[scaling.clone(), person.clone()]).is_empty());
    // Auto Scaling's own launch alone is no sequence either.
    assert!(sequences(&rule, std::slice::from_ref(&scaling)).is_empty());
    // Split runs with a state: the scale-out read by one run keeps the next run's launch
    // from opening a sequence, as in one run.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("r.yaml"), &rule).unwrap();
    let state = dir.path().join("state");
    for (n, line, want) in [(1, &scaling, 0), (2, &person, 0)] {
        let input = dir.path().join(format!("part{n}.jsonl"));
        std::fs::write(&input, line).unwrap();
        let findings = common::findings_on_stdout(
            common::correlator()
                .args(["correlate", "--asff", "-", "--rules"])
                .arg(&rules)
                .arg("--state")
                .arg(&state)
                .arg(&input),
        );
        assert_eq!(findings.len(), want, "run {n}: {findings:#?}");
    }

    // Groups: the `where` of the example on a launch stage.
    let block = reference_block("The entries of `where` must all hold");
    let stages = format!(
        "stages:\n  - name: launch\n    select:\n      events: [RunInstances]\n{}",
        block
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    let rule =
        format!("{head}{stages}group_by: principal\nwindow: 1h\ncondition:\n  require: [launch]\n");
    let role = |id: u32, role: &str, itype: &str, vcpus: u32| {
        run_instances(id, "2025-05-02T09:00:00Z", "x", itype, 1, vcpus).replace(
            r#""userIdentity":{"type":"IAMUser","principalId":"x","arn":"arn:aws:iam::111122223333:user/x","accountId":"111122223333"}"#,
            &format!(r#""userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE{id:08}:s","arn":"arn:aws:sts::111122223333:assumed-role/{role}/s","accountId":"111122223333","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE{id:08}","arn":"arn:aws:iam::111122223333:role/{role}","accountId":"111122223333","userName":"{role}"}}}}}}"#),
        )
    };
    for (line, want) in [
        (role(1, "web", "p3.2xlarge", 8), 1),
        (role(2, "web", "c5.24xlarge", 96), 1),
        (role(3, "ci-deployer", "c5.24xlarge", 96), 0),
        (role(4, "ci-deployer", "p3.2xlarge", 8), 1),
        (role(5, "web", "c5.large", 2), 0),
    ] {
        assert_eq!(
            sequences(&rule, std::slice::from_ref(&line)).len(),
            want,
            "{line}"
        );
    }
}

/// A GuardDuty finding of `kind` about `instance` (of the Auto Scaling group `ordered-asg`),
/// its activity seen from `first` to `last`, as one JSON line.
fn finding_line(name: &str, kind: &str, instance: &str, (first, last): (&str, &str)) -> String {
    let mut f: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("guardduty/finding-single.json")).unwrap(),
    )
    .unwrap();
    f["id"] = name.into();
    f["arn"] = format!("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{name}").into();
    f["type"] = kind.into();
    f["severity"] = 8.into();
    f["createdAt"] = first.into();
    f["updatedAt"] = last.into();
    f["service"]["eventFirstSeen"] = first.into();
    f["service"]["eventLastSeen"] = last.into();
    f["resource"]["instanceDetails"]["instanceId"] = instance.into();
    f["resource"]["instanceDetails"]["tags"] =
        serde_json::json!([{"key": "aws:autoscaling:groupName", "value": "ordered-asg"}]);
    f.to_string()
}

#[test]
fn a_finding_that_leaves_the_window_takes_its_own_time_out_of_its_stage() {
    // `ordered: [recon, mining]` asks that the group's first recon signal in the window began
    // before its first mining one. Recon A began at 10:00 and goes on until 12:00; mining M
    // began at 10:15; recon B began at 10:30 and ended at 10:40; exfiltration E, which the
    // rule requires, comes at 11:30, when B has left the 30-minute window. The window then
    // holds A, M and E: recon began first, so the sequence opens. (Findings leave in the
    // order their activity ended: B's leaving must take out B's start, not A's, the earliest.)
    let rule = r#"id: r
title: Ordered findings
description: Recon before mining, then exfiltration.
severity: HIGH
types: ["TTPs/Impact"]
runbook: Look at it.
stages:
  - name: recon
    select:
      finding_types: ["Recon:*"]
  - name: mining
    select:
      finding_types: ["CryptoCurrency:*"]
  - name: exfil
    select:
      finding_types: ["UnauthorizedAccess:*"]
group_by: instance_group
window: 30m
condition:
  ordered: [recon, mining]
  require: [exfil]
"#;
    let t = |hm: &str| format!("2025-05-02T{hm}:00.000Z");
    let lines = |with_b: bool| {
        let mut l = vec![
            finding_line(
                "a",
                "Recon:EC2/Portscan",
                "i-0aaaaaaaaaaaaaaa1",
                (&t("10:00"), &t("12:00")),
            ),
            finding_line(
                "m",
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                "i-0aaaaaaaaaaaaaaa2",
                (&t("10:15"), &t("12:00")),
            ),
            finding_line(
                "e",
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                "i-0aaaaaaaaaaaaaaa3",
                (&t("11:30"), &t("11:30")),
            ),
        ];
        if with_b {
            l.push(finding_line(
                "b",
                "Recon:EC2/PortProbeUnprotectedPort",
                "i-0aaaaaaaaaaaaaaa4",
                (&t("10:30"), &t("10:40")),
            ));
        }
        l
    };
    let without_b = sequences(rule, &lines(false));
    assert_eq!(without_b.len(), 1, "A, M and E open it: {without_b:?}");
    assert_eq!(sequences(rule, &lines(true)), without_b);
}

/// The rule language: a weak stage joins a sequence and never counts toward the condition, so
/// a condition that names one (`require`, `ordered`, a threshold's `stage`) could never hold:
/// an error at its place, not a rule that loads and never fires. And a selector of another
/// rule's weak signals that names a rule writing findings (which makes none) is an error.
#[test]
fn a_condition_naming_a_weak_stage_and_a_selector_of_a_finding_rule_are_errors() {
    let stages = r#"  - name: launch
    select:
      events: [RunInstances]
  - name: big
    weak: true
    select:
      events: [RunInstances]
      where:
        - field: launched_vcpus
          gte: 64
"#;
    for (condition, at) in [
        ("  require: [launch, big]\n", "r.yaml:21:21"),
        ("  ordered: [big, launch]\n", "r.yaml:21:13"),
        (
            "  thresholds:\n    - count: true\n      stage: big\n      at_least: 2\n",
            "r.yaml:23:14",
        ),
    ] {
        let errs = errors(&[("r", &language_rule(stages, "principal", condition))]);
        let want = format!(
            "{at}: stage \"big\" is weak: it joins a sequence but never counts toward the condition"
        );
        assert!(
            errs.iter().any(|e| e.starts_with(&want)),
            "{condition}: {want}\n{errs:#?}"
        );
    }
    // A rule writing findings selected as if it made weak signals.
    let finding_rule = language_rule(
        "  - name: launch\n    select:\n      events: [RunInstances]\n",
        "principal",
        "  require: [launch]\n",
    )
    .replace("id: r", "id: fin");
    let selector = language_rule(
        "  - name: joined\n    select:\n      rules: [fin]\n",
        "principal",
        "  require: [joined]\n",
    );
    let errs = errors(&[("fin", &finding_rule), ("r", &selector)]);
    assert!(
        errs.iter().any(|e| e.contains(
            "selects the weak signals of rule \"fin\", which writes findings and makes no weak signal"
        )),
        "{errs:#?}"
    );
}
