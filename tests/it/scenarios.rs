//! One positive and one negative scenario per shipped rule, in `fixtures/scenarios/<rule>/`.
//!
//! Each case folder holds realistic inputs (CloudTrail, GuardDuty) and an `expected.yaml`
//! naming exactly the ASFF findings `correlate` writes for that folder alone (ids included)
//! and the weak-signal sequences the summary lists. Negative cases hold records that the
//! vendors' own rules fire on (Auto Scaling scale-outs, CI roles launching instances, a
//! single low-severity finding) and expect no finding at all.
//!
//! The properties: every shipped rule has both cases; every case gives exactly what its
//! `expected.yaml` says; the findings are valid for Security Hub; and the order in which
//! records arrive, and how they are split across files, changes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use finding_correlator::config::{Config, Settings};
use finding_correlator::matcher::{Matcher, Sequence};
use finding_correlator::pipeline::{self, CorrelateRun};
use finding_correlator::rules::{Emit, RuleSet};
use finding_correlator::sinks::asff::{self, Writer};
use finding_correlator::summary::CorrelateSummary;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::repo;

const ACCOUNT: &str = "111122223333";
const KINDS: [&str; 2] = ["positive", "negative"];
/// Scenarios of the roll-up (issue 14), in `fixtures/scenarios/roll-up/<case>/`: several
/// rules' sequences at once, and how many findings they must stay.
const ROLLUP: &str = "roll-up";
const ROLLUP_CASES: [&str; 2] = ["two-attacks", "ci-launches-overlap"];

// ---------------------------------------------------------------------------------------------
// expected.yaml

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    description: String,
    findings: Vec<ExpectedFinding>,
    weak_signals: Vec<ExpectedWeak>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectedFinding {
    id: String,
    rule: String,
    severity: String,
    group: String,
    signals: usize,
    stages: Vec<String>,
    resources: Vec<String>,
    related_findings: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectedWeak {
    rule: String,
    group: String,
    signals: usize,
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn scenarios_dir() -> PathBuf {
    repo().join("fixtures").join("scenarios")
}

fn case_dir(rule: &str, kind: &str) -> PathBuf {
    scenarios_dir().join(rule).join(kind)
}

/// The rule ids shipped in `correlation-rules/` (file stems), sorted.
fn shipped_rule_ids() -> Vec<String> {
    let dir = repo().join("correlation-rules");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// Every (rule, kind) case, in a fixed order.
fn all_cases() -> Vec<(String, &'static str)> {
    shipped_rule_ids()
        .into_iter()
        .flat_map(|r| KINDS.map(|k| (r.clone(), k)))
        .chain(ROLLUP_CASES.map(|c| (ROLLUP.to_string(), c)))
        .collect()
}

/// The cases that must give findings: every rule's positive case and the roll-up cases.
fn finding_cases() -> Vec<(String, &'static str)> {
    all_cases()
        .into_iter()
        .filter(|(_, k)| *k != "negative")
        .collect()
}

fn settings() -> Settings {
    Config::default()
        .validate()
        .expect("default settings are valid")
}

fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| Arc::new(RuleSet::builtin().expect("the shipped rules load")))
        .clone()
}

fn load_expected(dir: &Path) -> Expected {
    let path = dir.join("expected.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `correlate` gives for some paths: the run, its ASFF findings and its summary.
struct Outcome {
    run: CorrelateRun,
    findings: Vec<Value>,
    summary: CorrelateSummary,
}

fn correlate(paths: &[PathBuf]) -> Outcome {
    let rules = rules();
    let run = pipeline::correlate(paths, &settings(), rules.clone(), false, None);
    let findings = asff::findings(&run.sequences, &rules, &Writer::default());
    let summary = CorrelateSummary::new(&run.sequences, &rules, run.matching.clone());
    Outcome {
        run,
        findings,
        summary,
    }
}

fn run_case(rule: &str, kind: &str) -> Outcome {
    correlate(&[case_dir(rule, kind)])
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn product_field(f: &Value, name: &str) -> String {
    text(&f["ProductFields"][format!("finding-correlator/{name}")])
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().map(|x| text(&x["Id"])).collect())
        .unwrap_or_default()
}

fn signals(f: &Value) -> &Vec<Value> {
    f["Detection"]["Sequence"]["Signals"]
        .as_array()
        .expect("Detection.Sequence.Signals is a list")
}

fn signal_ids(f: &Value) -> Vec<String> {
    signals(f).iter().map(|s| text(&s["Id"])).collect()
}

/// The expectation a written finding fulfils.
fn as_expected(f: &Value) -> ExpectedFinding {
    let stages = product_field(f, "stages");
    ExpectedFinding {
        id: text(&f["Id"]),
        rule: text(&f["GeneratorId"]),
        severity: text(&f["Severity"]["Label"]),
        group: product_field(f, "group-key"),
        signals: signals(f).len(),
        stages: if stages.is_empty() {
            Vec::new()
        } else {
            stages.split(',').map(str::to_string).collect()
        },
        resources: ids(&f["Resources"]),
        related_findings: ids(&f["RelatedFindings"]),
    }
}

fn instance_arn(region: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{ACCOUNT}:instance/{id}")
}

fn finding_of<'a>(o: &'a Outcome, rule: &str) -> &'a Value {
    let mine: Vec<&Value> = o
        .findings
        .iter()
        .filter(|f| f["GeneratorId"] == rule)
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "expected one {rule} finding, found {}",
        mine.len()
    );
    mine[0]
}

fn sequence_of<'a>(o: &'a Outcome, rule: &str) -> &'a Sequence {
    let mine: Vec<&Sequence> = o
        .run
        .sequences
        .iter()
        .filter(|s| s.rule_id == rule)
        .collect();
    assert_eq!(mine.len(), 1, "expected one {rule} sequence");
    mine[0]
}

/// Compares one case with its `expected.yaml`; returns every difference.
fn check_case(rule: &str, kind: &str) -> Vec<String> {
    let dir = case_dir(rule, kind);
    let name = format!("{rule}/{kind}");
    let mut problems = Vec::new();
    let mut fail = |m: String| problems.push(format!("{name}: {m}"));
    let expected = load_expected(&dir);
    if expected.description.trim().is_empty() {
        fail("expected.yaml: empty description".into());
    }
    let o = run_case(rule, kind);
    let s = &o.run.summary;
    if s.skipped > 0 {
        fail(format!(
            "{} record(s) or file(s) skipped: {:?}",
            s.skipped, s.skipped_reasons
        ));
    }
    if s.records.values().sum::<u64>() == 0 {
        fail("no record decoded".into());
    }

    // Findings, in the order correlate writes them.
    let actual: Vec<ExpectedFinding> = o.findings.iter().map(as_expected).collect();
    if actual.len() != expected.findings.len() {
        fail(format!(
            "expected {} finding(s), found {}: {:?}",
            expected.findings.len(),
            actual.len(),
            actual.iter().map(|f| &f.id).collect::<Vec<_>>()
        ));
    }
    for (i, (a, e)) in actual.iter().zip(&expected.findings).enumerate() {
        let mut field = |what: &str, a: &dyn std::fmt::Debug, e: &dyn std::fmt::Debug| {
            let (a, e) = (format!("{a:?}"), format!("{e:?}"));
            if a != e {
                fail(format!("finding {i} {what}: expected {e}, found {a}"));
            }
        };
        field("id", &a.id, &e.id);
        field("rule", &a.rule, &e.rule);
        field("severity", &a.severity, &e.severity);
        field("group", &a.group, &e.group);
        field("signals", &a.signals, &e.signals);
        field("stages", &a.stages, &e.stages);
        field("resources", &a.resources, &e.resources);
        field("related_findings", &a.related_findings, &e.related_findings);
    }
    // The finding agrees with itself and with the summary.
    for (i, f) in o.findings.iter().enumerate() {
        if product_field(f, "rule-id") != text(&f["GeneratorId"]) {
            fail(format!("finding {i}: rule-id and GeneratorId differ"));
        }
        if product_field(f, "signal-count") != signals(f).len().to_string() {
            fail(format!("finding {i}: signal-count and Signals differ"));
        }
        if f["Detection"]["Sequence"]["Uid"] != f["Id"] {
            fail(format!("finding {i}: Detection.Sequence.Uid is not the Id"));
        }
        let line = o.summary.sequences.get(i);
        if line.and_then(|l| l.finding_id.as_deref()) != f["Id"].as_str() {
            fail(format!(
                "finding {i}: the summary's line {:?} does not name it",
                line.map(|l| &l.finding_id)
            ));
        }
    }
    if o.summary.sequences.len() != o.findings.len() {
        fail(format!(
            "{} sequence line(s) for {} finding(s)",
            o.summary.sequences.len(),
            o.findings.len()
        ));
    }

    // Weak signals, as the summary lists them.
    let weak: Vec<ExpectedWeak> = o
        .summary
        .weak_signals
        .iter()
        .map(|l| ExpectedWeak {
            rule: l.rule.clone(),
            group: l.group.clone(),
            signals: l.signals,
        })
        .collect();
    if weak != expected.weak_signals {
        fail(format!(
            "weak signals: expected {:?}, found {:?}",
            expected.weak_signals, weak
        ));
    }

    // A weak-signal rule's positive case: its signal is in the summary and inside a finding
    // it feeds, in a stage of that finding's rule that selects it.
    let is_weak_rule = rules()
        .get(rule)
        .is_some_and(|r| r.emit == Emit::WeakSignal);
    if is_weak_rule && kind == "positive" {
        if !o.summary.weak_signals.iter().any(|l| l.rule == rule) {
            fail(format!("no {rule} weak signal in the summary"));
        }
        let prefix = format!("rule:{rule}/");
        let fed = o
            .findings
            .iter()
            .any(|f| signal_ids(f).iter().any(|id| id.starts_with(&prefix)));
        if !fed {
            fail(format!("no finding holds a signal `{prefix}…`"));
        }
        let all_rules = rules();
        for seq in &o.run.sequences {
            let Some(consumer) = all_rules.get(&seq.rule_id) else {
                continue;
            };
            for s in seq
                .signals
                .iter()
                .filter(|s| s.kind == format!("rule:{rule}"))
            {
                let selects = consumer
                    .stages
                    .iter()
                    .find(|st| st.name == s.stage)
                    .is_some_and(|st| st.selector.rules.iter().any(|r| r == rule));
                if !selects {
                    fail(format!(
                        "a {rule} signal is in stage {} of {}, which does not select it",
                        s.stage, seq.rule_id
                    ));
                }
            }
        }
    }
    if kind == "negative" && !o.findings.is_empty() {
        fail(format!(
            "a negative case wrote {} finding(s)",
            o.findings.len()
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Every rule has its cases, and every case gives what it expects.

#[test]
fn every_shipped_rule_has_a_positive_and_a_negative_scenario() {
    let rules = shipped_rule_ids();
    assert!(!rules.is_empty(), "no rule in correlation-rules/");
    let mut missing = Vec::new();
    for rule in &rules {
        for kind in KINDS {
            let dir = case_dir(rule, kind);
            if !dir.join("expected.yaml").is_file() {
                missing.push(format!("{rule}: {kind}/expected.yaml is missing"));
                continue;
            }
            let inputs = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file() && e.file_name() != "expected.yaml")
                        .count()
                })
                .unwrap_or(0);
            if inputs == 0 {
                missing.push(format!("{rule}: {kind}/ has no input file"));
            }
        }
    }
    // No scenario for a rule that is not shipped (renamed or removed).
    let shipped: BTreeSet<&str> = rules.iter().map(String::as_str).collect();
    if let Ok(rd) = std::fs::read_dir(scenarios_dir()) {
        for e in rd.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
            let name = e.file_name().to_string_lossy().to_string();
            if !shipped.contains(name.as_str()) && name != ROLLUP {
                missing.push(format!("fixtures/scenarios/{name}/ names no shipped rule"));
            }
        }
    }
    // The built-in rule set is the folder's.
    let builtin: BTreeSet<String> = self::rules().rules.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        builtin,
        rules.iter().cloned().collect::<BTreeSet<_>>(),
        "the built-in rules differ from correlation-rules/"
    );
    assert!(
        missing.is_empty(),
        "scenarios missing:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_scenario_gives_exactly_its_expected_findings_and_weak_signals() {
    let mut problems = Vec::new();
    for (rule, kind) in all_cases() {
        if case_dir(&rule, kind).join("expected.yaml").is_file() {
            problems.extend(check_case(&rule, kind));
        }
    }
    assert!(
        problems.is_empty(),
        "{} mismatch(es):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Without a state, a launch no rule can report (Auto Scaling's, another service's) is kept for
/// matching as what the baselines learn of it (`Matcher::learn_only`), not as its signal; with
/// one, whole, for the state. On every case both give the same findings, sequences and
/// matching counts (the allowlists' included), and the launches kept short are those.
#[test]
fn launches_kept_only_for_the_baselines_match_as_their_signals_would() {
    let rules = rules();
    let settings = settings();
    let empty = finding_correlator::state::State::new();
    let mut learned_only = 0;
    let mut allowlisted = 0;
    for (rule, kind) in all_cases() {
        let dir = case_dir(&rule, kind);
        let short = pipeline::correlate(
            std::slice::from_ref(&dir),
            &settings,
            rules.clone(),
            false,
            None,
        );
        let whole = pipeline::correlate(&[dir], &settings, rules.clone(), false, Some(&empty));
        let case = format!("{rule}/{kind}");
        let m = Matcher::new(rules.clone(), settings.matching.clone());
        let short_ones = whole
            .selected
            .iter()
            .filter(|s| m.learn_only(s).is_some())
            .count();
        // Only the signals matched as signals come back from matching.
        assert_eq!(
            whole.selected.len() - short.selected.len(),
            short_ones,
            "{case}"
        );
        learned_only += short_ones;
        if short_ones > 0 {
            allowlisted += short.matching.allowlisted.values().sum::<u64>();
        }
        assert_eq!(
            asff::findings(&short.sequences, &rules, &Writer::default()),
            asff::findings(&whole.sequences, &rules, &Writer::default()),
            "{case}"
        );
        assert_eq!(
            serde_json::to_value(&short.matching).unwrap(),
            serde_json::to_value(&whole.matching).unwrap(),
            "{case}"
        );
        assert_eq!(
            serde_json::to_value(CorrelateSummary::new(
                &short.sequences,
                &rules,
                short.matching
            ))
            .unwrap(),
            serde_json::to_value(CorrelateSummary::new(
                &whole.sequences,
                &rules,
                whole.matching
            ))
            .unwrap(),
            "{case}"
        );
    }
    assert!(
        learned_only > 0,
        "no case has a launch only the baselines learn"
    );
    assert!(
        allowlisted > 0,
        "no case counts an allowlisted launch kept short"
    );
}

#[test]
fn negative_scenarios_write_no_finding() {
    for rule in shipped_rule_ids() {
        let o = run_case(&rule, "negative");
        assert!(
            o.findings.is_empty(),
            "{rule}/negative wrote {:?}",
            o.findings.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
        );
        assert!(
            o.summary.sequences.is_empty(),
            "{rule}/negative: {:?}",
            o.summary.sequences
        );
        // Auto Scaling never makes a weak signal either.
        for l in &o.summary.weak_signals {
            assert!(
                !l.group.contains("AutoScaling"),
                "{rule}/negative: weak signal of Auto Scaling: {l:?}"
            );
        }
    }
    // Failures without an attacker's signature are not failed-compute-launch signals.
    let o = run_case("failed-compute-launch", "negative");
    assert!(
        o.summary
            .weak_signals
            .iter()
            .all(|l| l.rule != "failed-compute-launch"),
        "{:?}",
        o.summary.weak_signals
    );
    assert_eq!(
        o.summary.matching.weak_signals.get("failed-compute-launch"),
        None
    );
    // The nightly CI launches are weak signals (Sigma's rule fires on each), nothing more.
    let o = run_case("compute-resource-creation", "negative");
    assert_eq!(
        o.summary
            .matching
            .weak_signals
            .get("compute-resource-creation"),
        Some(&5)
    );
}

// ---------------------------------------------------------------------------------------------
// The positive cases, stated in Rust.

#[test]
fn compromised_instance_group_positive() {
    let o = run_case("compromised-instance-group", "positive");
    assert_eq!(o.findings.len(), 1);
    let f = finding_of(&o, "compromised-instance-group");
    assert_eq!(
        f["Id"],
        "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/shop-asg/2025-05-03T07:52:10.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "CRITICAL");
    assert_eq!(f["FindingProviderFields"]["Severity"]["Label"], "CRITICAL");
    // 60, plus 10 for each stage beyond the first.
    assert_eq!(f["Confidence"], 80);
    assert_eq!(f["AwsAccountId"], ACCOUNT);
    // The mining finding opened the sequence: it began at its first sighting.
    assert_eq!(f["CreatedAt"], "2025-05-03T07:52:10.000Z");
    assert_eq!(f["FirstObservedAt"], "2025-05-03T07:52:10.000Z");
    assert_eq!(f["LastObservedAt"], "2025-05-03T09:18:02.000Z");
    assert_eq!(f["Resources"][0]["Type"], "AwsAutoScalingAutoScalingGroup");
    assert_eq!(f["Resources"][0]["Id"], "shop-asg");
    assert_eq!(f["Resources"][0]["Region"], "us-east-1");
    let members = [
        "i-0a15ce00000000001",
        "i-0a15ce00000000002",
        "i-0a15ce00000000003",
    ];
    let resources = ids(&f["Resources"]);
    for m in members {
        assert!(resources.contains(&instance_arn("us-east-1", m)), "{m}");
    }
    // The bitcoin finding, the two calls of member 1's role session, the C&C finding.
    assert_eq!(
        signal_ids(f),
        [
            "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/41322384ac30a459dcaf66db5c456dde",
            "0a147eab-2e7b-4ca1-8144-a1be0ed5f0d9",
            "9f5eb51c-2c08-406f-9b27-7f1db74324b6",
            "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/399ba2a3abb3f94eed2e2b9d204ba804",
        ]
    );
    let s = signals(f);
    assert_eq!(s[1]["Type"], "CLOUD_TRAIL");
    assert_eq!(s[1]["Name"], "iam:CreateAccessKey");
    assert_eq!(s[2]["Name"], "ec2:AuthorizeSecurityGroupIngress");
    let indicators = &f["Detection"]["Sequence"]["SequenceIndicators"];
    assert!(
        indicators
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["Key"] == "HIGH_RISK_API"
                && i["Values"]
                    == json!(["iam:CreateAccessKey", "ec2:AuthorizeSecurityGroupIngress"])),
        "{indicators}"
    );
    assert!(
        indicators
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["Key"] == "CRYPTOMINING_DOMAIN"
                && i["Values"] == json!(["pool.supportxmr.com"])),
        "{indicators}"
    );
    let actors = &f["Detection"]["Sequence"]["Actors"];
    assert_eq!(
        actors[0]["User"]["Uid"],
        "AROAEXAMPLESHOPROLE01:i-0a15ce00000000001"
    );
    assert_eq!(actors[0]["User"]["CredentialUid"], "ASIAEXAMPLESHOPKEY01");
    assert_eq!(
        ids(&f["RelatedFindings"]).len(),
        2,
        "both GuardDuty findings are related"
    );
    assert!(o.summary.weak_signals.is_empty());
    let seq = sequence_of(&o, "compromised-instance-group");
    assert_eq!(
        seq.stages(),
        ["cryptomining", "high_risk_api", "command_and_control"]
    );
    assert_eq!(seq.members.len(), 3);
}

#[test]
fn instance_credentials_launch_compute_positive() {
    let o = run_case("instance-credentials-launch-compute", "positive");
    assert_eq!(o.findings.len(), 1, "only this rule fires");
    let f = finding_of(&o, "instance-credentials-launch-compute");
    assert_eq!(
        f["Id"],
        "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/auto_scaling_group/api-asg/2025-05-05T12:10:14.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "HIGH");
    // 70, plus 5 for the failed launch.
    assert_eq!(f["Confidence"], 75);
    assert_eq!(f["Resources"][0]["Type"], "AwsAutoScalingAutoScalingGroup");
    assert_eq!(f["Resources"][0]["Id"], "api-asg");
    let resources = ids(&f["Resources"]);
    // The member whose credentials were used comes first, then the other member.
    assert_eq!(
        resources[1],
        instance_arn("us-east-1", "i-0b15ce00000000001")
    );
    assert_eq!(
        resources[2],
        instance_arn("us-east-1", "i-0b15ce00000000002")
    );
    // Every GPU instance launched, in the region it was launched in.
    for gpu in [
        "i-0b15ce0000000000b",
        "i-0b15ce0000000000c",
        "i-0b15ce0000000000d",
        "i-0b15ce0000000000e",
    ] {
        assert!(
            resources.contains(&instance_arn("ap-south-1", gpu)),
            "{gpu}"
        );
    }
    assert_eq!(product_field(f, "launched-instances"), "4");
    assert_eq!(product_field(f, "stages"), "launch");
    assert_eq!(
        signal_ids(f),
        [
            "902e75b6-19ff-413f-b6c0-d48d53d21210",
            "e8664eba-c791-4f7e-a668-c31399ed14f8",
            "a5cf86b0-a2f7-49a4-9ec7-e34ee7064a13",
        ]
    );
    assert_eq!(
        signals(f)[2]["Name"],
        "ec2:RunInstances (Client.VcpuLimitExceeded)"
    );
    assert!(f.get("RelatedFindings").is_none());
    let seq = sequence_of(&o, "instance-credentials-launch-compute");
    assert_eq!(seq.weak_count(), 1);
    assert_eq!(seq.launched.len(), 4);
    assert!(
        seq.launched
            .iter()
            .all(|(_, t)| matches!(t.as_deref(), Some("p3.8xlarge" | "g5.12xlarge")))
    );
    // The launches and the failure are weak signals of their own rules too, which alone do
    // not make a compromised-instance-group sequence (one stage only).
    let weak: Vec<(&str, usize)> = o
        .summary
        .weak_signals
        .iter()
        .map(|l| (l.rule.as_str(), l.signals))
        .collect();
    assert_eq!(
        weak,
        [
            ("compute-resource-creation", 2),
            ("failed-compute-launch", 1)
        ]
    );
}

#[test]
fn mass_compute_deployment_positive() {
    let o = run_case("mass-compute-deployment", "positive");
    assert_eq!(o.findings.len(), 1);
    let f = finding_of(&o, "mass-compute-deployment");
    assert_eq!(
        f["Id"],
        "finding-correlator/mass-compute-deployment/111122223333/us-east-1/principal/AIDAEXAMPLEREPORTING1/2025-05-07T10:02:18.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "HIGH");
    assert_eq!(f["Confidence"], 60);
    assert_eq!(f["Resources"][0]["Type"], "Other");
    assert_eq!(f["Resources"][0]["Id"], "principal/AIDAEXAMPLEREPORTING1");
    let resources = ids(&f["Resources"]);
    assert_eq!(
        resources.len(),
        1 + 9,
        "the principal and the nine instances"
    );
    for (region, n) in [
        ("us-east-1", 1..=4),
        ("us-west-2", 5..=7),
        ("eu-west-1", 8..=9),
    ] {
        for i in n {
            let id = format!("i-0c15ce{i:011x}");
            assert!(resources.contains(&instance_arn(region, &id)), "{id}");
        }
    }
    // One identity, three source IPs and user agents: one sequence, not three.
    assert_eq!(
        signal_ids(f),
        [
            "a71e4481-d0c4-4a21-b37b-648fcf306b5c",
            "0173aee9-cb51-47d3-ac0f-ba41367f633a",
            "f64dfae1-7bd1-4429-836f-bd3dbb066425",
        ]
    );
    let seq = sequence_of(&o, "mass-compute-deployment");
    assert_eq!(seq.launched.len(), 9);
    let vcpus: u32 = seq
        .launched
        .iter()
        .map(|(id, _)| o.run.graph.instance_info(id).and_then(|i| i.vcpus).unwrap())
        .sum();
    assert_eq!(vcpus, 864);
    let actors = f["Detection"]["Sequence"]["Actors"].as_array().unwrap();
    assert_eq!(actors.len(), 1);
    assert_eq!(actors[0]["User"]["Uid"], "AIDAEXAMPLEREPORTING1");
}

#[test]
fn compute_resource_creation_positive_feeds_the_group_sequence() {
    let o = run_case("compute-resource-creation", "positive");
    // The weak signal, in the summary.
    assert_eq!(o.summary.weak_signals.len(), 1);
    let w = &o.summary.weak_signals[0];
    assert_eq!(w.rule, "compute-resource-creation");
    assert_eq!(
        w.group,
        "principal/AROAEXAMPLEWORKERRL01:i-0d15ce00000000001"
    );
    assert_eq!(w.signals, 1);
    // … and inside the compromised-instance-group finding it feeds.
    assert_eq!(o.findings.len(), 1);
    let f = finding_of(&o, "compromised-instance-group");
    assert_eq!(
        f["Id"],
        "finding-correlator/compromised-instance-group/111122223333/eu-west-1/auto_scaling_group/worker-asg/2025-05-09T11:02:33.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "CRITICAL");
    assert_eq!(f["Confidence"], 70);
    assert_eq!(
        product_field(f, "stages"),
        "suspicious_compute,malicious_execution"
    );
    assert_eq!(f["Resources"][0]["Id"], "worker-asg");
    assert_eq!(f["Resources"][0]["Region"], "eu-west-1");
    let resources = ids(&f["Resources"]);
    assert!(resources.contains(&instance_arn("eu-west-1", "i-0d15ce00000000001")));
    assert!(resources.contains(&instance_arn("eu-west-1", "i-0d15ce0000000000b")));
    assert_eq!(
        signal_ids(f),
        [
            "rule:compute-resource-creation/0d0295b9-b473-4bc5-804e-5f0292c2f958",
            "arn:aws:guardduty:eu-west-1:111122223333:detector/374d4f1c04e69bc2683f4726bc09b070/finding/ce1b524a176e0ee1041c08cd229300e3",
        ]
    );
    let weak = &signals(f)[0];
    assert_eq!(weak["Type"], "FINDING");
    assert_eq!(
        weak["Title"],
        "Compute resources created by a person or workload"
    );
    let seq = sequence_of(&o, "compromised-instance-group");
    assert_eq!(seq.signals[0].stage, "suspicious_compute");
    assert_eq!(seq.signals[0].kind, "rule:compute-resource-creation");
}

#[test]
fn failed_compute_launch_positive_feeds_the_group_sequence() {
    let o = run_case("failed-compute-launch", "positive");
    assert_eq!(o.summary.weak_signals.len(), 1);
    let w = &o.summary.weak_signals[0];
    assert_eq!(w.rule, "failed-compute-launch");
    assert_eq!(
        w.group,
        "principal/AROAEXAMPLEETLROLE001:i-0e15ce00000000001"
    );
    assert_eq!(w.signals, 2);
    assert_eq!(o.findings.len(), 1);
    let f = finding_of(&o, "compromised-instance-group");
    assert_eq!(
        f["Id"],
        "finding-correlator/compromised-instance-group/111122223333/us-east-2/auto_scaling_group/etl-asg/2025-05-06T16:14:30.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "CRITICAL");
    assert_eq!(
        product_field(f, "stages"),
        "credential_exfiltration,suspicious_compute"
    );
    assert_eq!(f["Resources"][0]["Id"], "etl-asg");
    assert_eq!(
        ids(&f["Resources"])[1],
        instance_arn("us-east-2", "i-0e15ce00000000001")
    );
    assert_eq!(
        signal_ids(f),
        [
            // First seen at 16:14:30 (the `Id`'s start), last at 16:24:05: told first.
            "arn:aws:guardduty:us-east-2:111122223333:detector/4d0f1facb336622bc59c38fb20f26a9d/finding/e7f9053499c3fd5f484cf7fbcbbe19ae",
            "rule:failed-compute-launch/e883d775-02b0-4a98-8db9-593b215c5625",
            "rule:failed-compute-launch/edd9c97c-2a50-4986-b6b9-4e98a4c2e3fc",
        ]
    );
    assert_eq!(
        ids(&f["RelatedFindings"]),
        [
            "arn:aws:guardduty:us-east-2:111122223333:detector/4d0f1facb336622bc59c38fb20f26a9d/finding/e7f9053499c3fd5f484cf7fbcbbe19ae"
        ]
    );
    // The exfiltration finding and the failed calls name the same session and key.
    let actors = f["Detection"]["Sequence"]["Actors"].as_array().unwrap();
    assert_eq!(actors.len(), 1, "{actors:?}");
    assert_eq!(actors[0]["User"]["CredentialUid"], "ASIAEXAMPLEETLKEY001");
    let seq = sequence_of(&o, "compromised-instance-group");
    let staged: Vec<(&str, &str)> = seq
        .signals
        .iter()
        .map(|s| (s.kind.as_str(), s.stage.as_str()))
        .collect();
    assert_eq!(
        staged,
        [
            (
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                "credential_exfiltration"
            ),
            ("rule:failed-compute-launch", "suspicious_compute"),
            ("rule:failed-compute-launch", "suspicious_compute"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Security Hub accepts the findings.

#[test]
fn findings_pass_the_security_hub_model() {
    let mut all: Vec<Value> = Vec::new();
    for (rule, kind) in finding_cases() {
        all.extend(run_case(&rule, kind).findings);
    }
    let positives = all.len();
    all.extend(correlate(&[repo().join("fixtures")]).findings);
    assert!(
        positives >= 5,
        "{positives} finding(s) from the positive cases"
    );
    if let Some(why) = crate::common::security_hub_model_rejects(&all) {
        panic!("asff_validate.py rejected the findings:\n{why}");
    }
}

/// The shapes the fixtures never make, checked against the Security Hub model too: a finding
/// trimmed to Security Hub's size limit, one whose group key is hashed into its `Id`, one
/// with more GuardDuty findings than `RelatedFindings` holds, one of a 200-member group, and
/// one of many regions and actors.
#[test]
fn unusual_finding_shapes_pass_the_security_hub_model() {
    use finding_correlator::matcher::{GroupKey, SeqSignal, Sequence};
    use finding_correlator::signal::{Actor, RecordRef, Source, Str};
    let rules = rules();
    let start = 1_746_177_600_000i64;
    let call = |i: usize, launched: usize| SeqSignal {
        reference: RecordRef::EventId(Str::from(format!("00000000-0000-4000-8000-{i:012}"))),
        time: start + i as i64 * 1000,
        source: Source::CloudTrail,
        kind: Str::from("ec2.amazonaws.com:RunInstances"),
        severity: 0.0,
        stage: "launch".into(),
        weak: false,
        title: None,
        account: Some(Str::from("111122223333")),
        region: Some(Str::from(
            ["us-east-1", "ap-southeast-3", "sa-east-1"][i % 3],
        )),
        actor: Some(Box::new(Actor {
            arn: Some(Str::from(format!(
                "arn:aws:sts::111122223333:assumed-role/role-{}/i-0{i:016x}",
                i % 13
            ))),
            principal_id: Some(Str::from(format!("AROAEXAMPLE{:08}:i-0{i:016x}", i % 13))),
            account: Some(Str::from("111122223333")),
            access_key_id: Some(Str::from(format!("ASIAEXAMPLE{i:09}"))),
            instance_id: Some(Str::from(format!("i-0{i:016x}"))),
            ..Actor::default()
        })),
        instances: vec![],
        launched: (0..launched)
            .map(|j| {
                (
                    Str::from(format!("i-0{:016x}", i * 1000 + j)),
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
        first_seen: start + i as i64 * 1000,
        last_seen: start + i as i64 * 1000,
        updated_at: None,
        notes: Vec::new(),
        launch: None,
        tactics: Vec::new(),
        techniques: Vec::new(),
    };
    let finding = |i: usize| SeqSignal {
        reference: RecordRef::FindingArn(Str::from(format!(
            "arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/{i:032x}"
        ))),
        source: Source::GuardDuty,
        kind: Str::from("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        severity: 8.0,
        stage: "cryptomining".into(),
        api: None,
        actor: None,
        instances: vec![Str::from(format!("i-0{i:016x}"))],
        launched: vec![],
        mining_domains: vec![Str::from("xmr.pool.example")],
        updated_at: Some(start + i as i64 * 1000 + 500),
        ..call(i, 0)
    };
    let rule = rules.get("compromised-instance-group").unwrap().clone();
    let sequence = |key: GroupKey, signals: Vec<SeqSignal>| {
        let mut seq = Sequence::new(&rule, key, start);
        for s in signals {
            seq.add(std::sync::Arc::new(s), 1000);
        }
        seq.account = Some(Str::from("111122223333"));
        seq.region = Some(Str::from("us-east-1"));
        seq
    };
    let group = |name: &str| {
        GroupKey::Group(finding_correlator::graph::GroupId {
            account: Some(Str::from("111122223333")),
            key: finding_correlator::signal::EntityId::new(
                finding_correlator::signal::EntityKind::AutoScalingGroup,
                format!("111122223333/us-east-1/{name}"),
            ),
        })
    };
    let mut seqs = vec![
        // Trimmed: 150 calls launching 100 instances each, far over 240 KB.
        sequence(group("big"), (0..150).map(|i| call(i, 100)).collect()),
        // A group key too long for the `Id`: hashed.
        sequence(
            GroupKey::Principal(Str::from("p".repeat(600).as_str())),
            vec![call(1, 1)],
        ),
        // 25 GuardDuty findings (RelatedFindings holds 10) and calls.
        sequence(
            group("many-findings"),
            (0..25)
                .map(finding)
                .chain((0..5).map(|i| call(100 + i, 2)))
                .collect(),
        ),
    ];
    // A group of 200 members.
    let mut wide = sequence(group("wide"), vec![finding(1), call(2, 3)]);
    wide.members = (0..200)
        .map(|n| Str::from(format!("i-0member{n:09}")))
        .collect();
    seqs.push(wide);
    let findings = finding_correlator::sinks::asff::findings(&seqs, &rules, &Writer::default());
    assert_eq!(findings.len(), seqs.len());
    let pf = |f: &Value, k: &str| f["ProductFields"][format!("finding-correlator/{k}")].clone();
    assert!(
        pf(&findings[0], "signals-trimmed").is_string(),
        "the first is trimmed"
    );
    assert!(text(&findings[1]["Id"]).contains("/principal/h-"));
    assert_eq!(findings[2]["RelatedFindings"].as_array().unwrap().len(), 10);
    assert!(findings[3]["Resources"].as_array().unwrap().len() <= 32);
    if let Some(why) = crate::common::security_hub_model_rejects(&findings) {
        panic!("asff_validate.py rejected the findings:\n{why}");
    }
}

// ---------------------------------------------------------------------------------------------
// Order of arrival and splitting across files do not matter.

/// Every record of a case's input files, one JSON value each.
fn records_of(dir: &Path) -> Vec<Value> {
    fn split(v: Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => out.extend(items),
            Value::Object(mut m) => {
                for key in ["Records", "findings", "Findings"] {
                    if let Some(Value::Array(items)) = m.remove(key) {
                        out.extend(items);
                        return;
                    }
                }
                out.push(Value::Object(m));
            }
            other => panic!("not a record: {other}"),
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "expected.yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => split(v, &mut out),
            Err(_) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    split(serde_json::from_str(line).unwrap(), &mut out);
                }
            }
        }
    }
    out
}

/// What must not change: the serialized findings and the weak-signal lines.
fn fingerprint(o: &Outcome) -> (String, Vec<String>) {
    (
        serde_json::to_string(&o.findings).unwrap(),
        o.summary
            .weak_signals
            .iter()
            .map(|l| format!("{} {} {} {}", l.rule, l.group, l.signals, l.first_seen))
            .collect(),
    )
}

#[test]
fn shuffled_and_split_records_give_identical_findings() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    for (rule, kind) in finding_cases() {
        let dir = case_dir(&rule, kind);
        let records = records_of(&dir);
        let n = records.len();
        assert!(n > 1, "{rule}/{kind}: {n} record(s)");
        let baseline = run_case(&rule, kind);
        assert!(!baseline.findings.is_empty(), "{rule}/{kind}: no finding");
        let want = fingerprint(&baseline);
        let strategy = (
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            proptest::collection::vec(0usize..4, n),
            1usize..=4,
        );
        let result = runner.run(&strategy, |(order, buckets, files)| {
            let tmp = tempfile::tempdir().unwrap();
            let mut texts = vec![String::new(); files];
            for (pos, &i) in order.iter().enumerate() {
                let t = &mut texts[buckets[pos] % files];
                t.push_str(&serde_json::to_string(&records[i]).unwrap());
                t.push('\n');
            }
            for (k, t) in texts.iter().enumerate().filter(|(_, t)| !t.is_empty()) {
                std::fs::write(tmp.path().join(format!("part-{k}.jsonl")), t).unwrap();
            }
            let got = correlate(&[tmp.path().to_path_buf()]);
            prop_assert_eq!(got.run.summary.skipped, 0);
            let got = fingerprint(&got);
            prop_assert_eq!(&got.0, &want.0, "findings differ");
            prop_assert_eq!(&got.1, &want.1, "weak signals differ");
            Ok(())
        });
        if let Err(e) = result {
            panic!("{rule}/{kind}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One attack, one finding (issue 14).

#[test]
fn issue_14_the_main_scenario_is_one_finding_that_carries_every_signal() {
    let main = ["cloudtrail", "guardduty", "asff"].map(|d| repo().join("fixtures").join(d));
    let o = correlate(&main);
    // Before the roll-up: compromised-instance-group and instance-credentials-launch-compute,
    // both on web-asg.
    assert_eq!(
        o.findings.len(),
        1,
        "{:?}",
        o.findings.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
    );
    let f = &o.findings[0];
    assert_eq!(
        f["Id"],
        "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:01:27.000Z"
    );
    assert_eq!(f["Severity"]["Label"], "CRITICAL");
    assert_eq!(f["RecordState"], "ACTIVE");
    assert_eq!(product_field(f, "absorbed-count"), "1");
    assert!(
        product_field(f, "absorbed-rules")
            .starts_with("instance-credentials-launch-compute (HIGH): ")
    );
    assert_eq!(
        product_field(f, "absorbed-ids"),
        "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:19:41.000Z"
    );
    // Every record of the launch sequence is in the finding, once (the launches and failed
    // launches are the group's suspicious_compute stage already).
    let rules = rules();
    let alone = rules.subset(&[
        "instance-credentials-launch-compute".to_string(),
        "compute-resource-creation".to_string(),
        "failed-compute-launch".to_string(),
        "first-seen-launch".to_string(),
    ]);
    let launch = pipeline::correlate(&main, &settings(), Arc::new(alone), false, None);
    let launch_seq = launch
        .sequences
        .iter()
        .find(|s| s.rule_id == "instance-credentials-launch-compute")
        .expect("the launch sequence, matched alone");
    let held: Vec<String> = signal_ids(f)
        .iter()
        .map(|id| id.rsplit('/').next().unwrap_or(id).to_string())
        .collect();
    for s in &launch_seq.signals {
        let key = s.reference.key();
        let record = key.rsplit('/').next().unwrap_or(&key).to_string();
        assert!(held.contains(&record), "{key} is not in the finding");
    }
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "a record twice: {held:?}");
    // The six GPU instances are resources, in ap-southeast-3.
    let launched: Vec<String> = ids(&f["Resources"])
        .into_iter()
        .filter(|r| r.contains(":ap-southeast-3:"))
        .collect();
    assert_eq!(launched.len(), 6, "{launched:?}");
    // The techniques of both rules.
    let indicators = f["Detection"]["Sequence"]["SequenceIndicators"].to_string();
    assert!(indicators.contains("T1078.004"), "{indicators}");
    // One story: what came first, what the credentials did, what was bought, where.
    let title = text(&f["Title"]);
    assert_eq!(
        title,
        "Potential compromise of an EC2 instance group: auto_scaling_group/web-asg, 6 instance(s) launched in ap-southeast-3"
    );
    let d = text(&f["Description"]);
    assert!(d.starts_with("First, at 2025-05-02T09:01:27.000Z, Execution:Runtime/NewBinaryExecuted on i-0aaaaaaaaaaaaaaa1. The role credentials of i-0aaaaaaaaaaaaaaa1 were flagged by UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS and called "), "{d}");
    assert!(
        d.contains(
            "6 instance(s) were launched (4 × p3.16xlarge, 2 × g5.12xlarge) in ap-southeast-3."
        ),
        "{d}"
    );
    assert!(
        d.contains("HIGH instance-credentials-launch-compute"),
        "{d}"
    );
    // The summary counts it.
    let r = &o.summary.rollup;
    assert_eq!((r.findings_out, r.sequences_absorbed), (1, 1));
    assert!(r.signals_in >= 13, "{}", r.signals_in);
    assert_eq!(o.summary.sequences[0].absorbed.len(), 1);
}

/// A finding's story opens with what happened first, and its signals are told in the order
/// their activity began: a GuardDuty finding seen again later (its `eventLastSeen` moved on)
/// still opens the story at its first sighting, where it was told at its last.
#[test]
fn the_story_opens_with_the_first_sighting_whatever_a_finding_was_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["cloudtrail", "asff"] {
        crate::common::copy_dir(&repo().join("fixtures").join(d), &dir.path().join(d));
    }
    let gd = dir.path().join("guardduty");
    crate::common::copy_dir(&repo().join("fixtures/guardduty"), &gd);
    // The opener, NewBinaryExecuted first seen at 09:01:27, seen again at 12:30 (after every
    // call of the attack).
    let single = gd.join("finding-single.json");
    let text_of = std::fs::read_to_string(&single).unwrap();
    let seen_again = text_of
        .replace(
            "\"eventLastSeen\": \"2025-05-02T09:01:27.000Z\"",
            "\"eventLastSeen\": \"2025-05-02T12:30:00.000Z\"",
        )
        .replace(
            "\"updatedAt\": \"2025-05-02T09:03:55.907Z\"",
            "\"updatedAt\": \"2025-05-02T12:31:00.000Z\"",
        );
    assert_ne!(seen_again, text_of, "the fixture changed");
    std::fs::write(&single, seen_again).unwrap();
    let o = correlate(&["cloudtrail", "guardduty", "asff"].map(|d| dir.path().join(d)));
    assert_eq!(o.findings.len(), 1);
    let f = &o.findings[0];
    let d = text(&f["Description"]);
    assert!(
        d.starts_with(
            "First, at 2025-05-02T09:01:27.000Z, Execution:Runtime/NewBinaryExecuted on i-0aaaaaaaaaaaaaaa1."
        ),
        "{d}"
    );
    let signals = f["Detection"]["Sequence"]["Signals"].as_array().unwrap();
    assert!(signals.len() >= 13, "{}", signals.len());
    let began: Vec<i64> = signals
        .iter()
        .map(|s| s["FirstSeenAt"].as_i64().unwrap())
        .collect();
    assert!(
        began.windows(2).all(|w| w[0] <= w[1]),
        "signals not in the order their activity began: {began:?}"
    );
    assert_eq!(
        signals[0]["Name"], "Execution:Runtime/NewBinaryExecuted",
        "{}",
        signals[0]
    );
    assert_eq!(
        signals[0]["LastSeenAt"].as_i64(),
        Some(1_746_189_000_000),
        "the finding's latest sighting is kept"
    );
}

/// A CloudTrail record without `eventID` is one signal however it is laid out: read from a
/// JSON Lines file and again from a `{"Records": [...]}` document with its members in another
/// order, dana's three launches (700 vCPUs, under what mass-compute-deployment counts) stay
/// three, not six that add up to a false HIGH finding.
#[test]
fn a_record_without_an_event_id_read_twice_in_other_layouts_is_one_signal() {
    let src = case_dir("mass-compute-deployment", "negative").join("cloudtrail-dana.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let mut records: Vec<Value> = std::fs::read_to_string(&src)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    let mut lines = String::new();
    for r in &mut records {
        r.as_object_mut().unwrap().remove("eventID");
        lines.push_str(&r.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.path().join("dana.jsonl"), lines).unwrap();
    // The same records, members in reverse order at every level, pretty-printed.
    fn reversed(v: &Value) -> String {
        match v {
            Value::Object(m) => format!(
                "{{{}}}",
                m.iter()
                    .rev()
                    .map(|(k, v)| format!("\n  {}: {}", Value::from(k.as_str()), reversed(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Value::Array(a) => format!(
                "[{}]",
                a.iter().map(reversed).collect::<Vec<_>>().join(", ")
            ),
            other => other.to_string(),
        }
    }
    let doc = format!(
        "{{\"Records\": [\n{}\n]}}",
        records.iter().map(reversed).collect::<Vec<_>>().join(",\n")
    );
    let parsed: Value = serde_json::from_str(&doc).expect("the reordered copy is JSON");
    assert_eq!(parsed["Records"].as_array().unwrap().len(), 3);
    assert!(
        doc.find("\"eventVersion\"").unwrap() > doc.find("\"userIdentity\"").unwrap(),
        "the copy's members are in another order"
    );
    std::fs::write(dir.path().join("copy.json"), &doc).unwrap();
    let o = correlate(&[dir.path().to_path_buf()]);
    assert!(
        o.findings.is_empty(),
        "{:?}",
        o.findings.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
    );
    let weak: Vec<usize> = o
        .run
        .sequences
        .iter()
        .filter(|s| s.rule_id == "compute-resource-creation")
        .map(|s| s.total_signals)
        .collect();
    assert_eq!(weak, [3], "one signal per record");
}

/// The launch-rate-outlier case's records, with `edit` applied to the burst (deploy-bot's
/// twelve instances at 2025-05-05T03:12:40Z) and only the records `keep` takes, run with
/// `config` (TOML): its findings.
fn launch_rate_case(
    edit: impl Fn(&mut Value),
    keep: impl Fn(&Value) -> bool,
    config: &str,
) -> Vec<Value> {
    launch_rate_case_with(edit, keep, config, rules())
}

/// [`launch_rate_case`] with `rules`.
fn launch_rate_case_with(
    edit: impl Fn(&mut Value),
    keep: impl Fn(&Value) -> bool,
    config: &str,
    rules: Arc<RuleSet>,
) -> Vec<Value> {
    let src = case_dir("launch-rate-outlier", "positive").join("cloudtrail-launches.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for line in std::fs::read_to_string(&src).unwrap().lines() {
        let mut r: Value = serde_json::from_str(line).unwrap();
        if r["eventTime"] == "2025-05-05T03:12:40Z" {
            edit(&mut r);
        }
        if keep(&r) {
            lines.push_str(&r.to_string());
            lines.push('\n');
        }
    }
    std::fs::write(dir.path().join("calls.jsonl"), lines).unwrap();
    findings_with(dir.path(), config, rules)
}

/// The findings of one run over `dir` with the configuration `config` (TOML) and `rules`.
fn findings_with(dir: &Path, config: &str, rules: Arc<RuleSet>) -> Vec<Value> {
    let settings = Config::parse(config).unwrap().validate().unwrap();
    let run = pipeline::correlate(&[dir.to_path_buf()], &settings, rules.clone(), false, None);
    asff::findings(&run.sequences, &rules, &Writer::default())
}

fn rate_findings(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| f["GeneratorId"] == "launch-rate-outlier")
        .collect()
}

/// The README's *Baselines*: `StartInstances` counts as a launch (its instances, by their
/// launcher's own rate); an account still learning reports nothing; and the tuning settings
/// take effect.
#[test]
fn launch_rates_count_started_instances_stay_quiet_while_learning_and_follow_their_settings() {
    let all = |_: &Value| true;
    let same = |_: &mut Value| {};
    // As shipped: the burst is a finding.
    assert_eq!(rate_findings(&launch_rate_case(same, all, "")).len(), 1);
    // The same twelve instances started again (stopped ones): a burst_start finding.
    let start = |r: &mut Value| {
        let ids: Vec<Value> = r["responseElements"]["instancesSet"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["instanceId"].clone())
            .collect();
        r["eventName"] = json!("StartInstances");
        r["requestParameters"] = json!({"instancesSet": {"items": ids
            .iter()
            .map(|id| json!({"instanceId": id}))
            .collect::<Vec<_>>()}});
        r["responseElements"] = json!({"requestId": "5f0c1f0e-0000-4000-8000-000000000001",
            "instancesSet": {"items": ids
            .iter()
            .map(|id| json!({"instanceId": id,
                "currentState": {"code": 0, "name": "pending"},
                "previousState": {"code": 80, "name": "stopped"}}))
            .collect::<Vec<_>>()}});
    };
    let started = launch_rate_case(start, all, "");
    let rate = rate_findings(&started);
    assert_eq!(
        rate.len(),
        1,
        "{:?}",
        started.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
    );
    assert_eq!(
        rate[0]["ProductFields"]["finding-correlator/stages"], "burst_start",
        "{}",
        rate[0]["ProductFields"]
    );
    // Learning: only the last four days of history, so the account's first launch seen is
    // within its 14 days of learning: nothing; with a learning period of a day, the finding.
    let from = finding_correlator::time::parse_timestamp("2025-05-01T03:00:00Z").unwrap();
    let recent = |r: &Value| {
        finding_correlator::time::parse_timestamp(r["eventTime"].as_str().unwrap()).unwrap() >= from
    };
    let learning = launch_rate_case(same, recent, "");
    assert!(learning.is_empty(), "{learning:#?}");
    let learned = launch_rate_case(same, recent, "[baselines]\nlearning_period = \"1d\"\n");
    assert_eq!(rate_findings(&learned).len(), 1);
    // Tuning: twelve instances are under a minimum of 50, and under mean + 40·σ.
    for config in [
        "[baselines]\nlaunch_rate_min_instances = 50\n",
        "[baselines]\nlaunch_rate_k = 40.0\n",
    ] {
        let tuned = launch_rate_case(same, all, config);
        assert!(rate_findings(&tuned).is_empty(), "{config}: {tuned:#?}");
    }
    // The same, from the rule's own `baseline:` section (over the configuration's defaults).
    let with_baseline = |section: &str| {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(repo().join("correlation-rules")).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
            }
        }
        for sub in ["lists", "launches"] {
            crate::common::copy_dir(
                &repo().join("correlation-rules").join(sub),
                &dir.path().join(sub),
            );
        }
        let path = dir.path().join("launch-rate-outlier.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\nbaseline:\n{section}")).unwrap();
        Arc::new(RuleSet::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e:?}")))
    };
    for section in ["  min_instances: 50\n", "  k: 40\n"] {
        let tuned = launch_rate_case_with(same, all, "", with_baseline(section));
        assert!(rate_findings(&tuned).is_empty(), "{section}: {tuned:#?}");
    }
    let learned = launch_rate_case_with(same, recent, "", with_baseline("  learning_period: 1d\n"));
    assert_eq!(
        rate_findings(&learned).len(),
        1,
        "the rule's learning period"
    );
}

/// The rules README: `include_archived_findings` (false) keeps archived GuardDuty findings
/// from feeding rules. A finding whose newest version is archived (an analyst closed it) feeds
/// none, whatever its earlier versions said: the mining finding of the group case, read
/// active and then archived, with the group's high-risk calls, makes no finding; with the
/// setting on, it does.
#[test]
fn a_finding_whose_newest_version_is_archived_feeds_no_rule() {
    let case = case_dir("compromised-instance-group", "positive");
    let dir = tempfile::tempdir().unwrap();
    let calls = "cloudtrail-session-calls.jsonl";
    std::fs::copy(case.join(calls), dir.path().join(calls)).unwrap();
    let (_, mining, archived) = crate::common::group_case_mining();
    std::fs::write(
        dir.path().join("active.json"),
        json!({ "findings": [mining] }).to_string(),
    )
    .unwrap();
    let findings = |config: &str| findings_with(dir.path(), config, rules());
    assert_eq!(
        findings("").len(),
        1,
        "mining and the group's high-risk calls: a finding"
    );
    std::fs::write(
        dir.path().join("archived.json"),
        json!({ "findings": [archived] }).to_string(),
    )
    .unwrap();
    let closed = findings("");
    assert!(
        closed.is_empty(),
        "{:?}",
        closed.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
    );
    assert_eq!(
        findings("[rules]\ninclude_archived_findings = true\n").len(),
        1
    );
}

/// fixtures/README.md: reading all of `fixtures/` at once gives the union of the cases: the
/// main scenario's one finding plus every case's expected findings (one per positive case,
/// two per roll-up case), with their own ids.
#[test]
fn all_of_fixtures_at_once_is_the_main_finding_and_every_cases_findings() {
    let o = correlate(&[repo().join("fixtures")]);
    let mut got: Vec<String> = o.findings.iter().map(|f| text(&f["Id"])).collect();
    got.sort();
    let mut want = vec![
        "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:01:27.000Z".to_string(),
    ];
    let root = repo().join("fixtures/scenarios");
    let mut cases = 0;
    for rule in std::fs::read_dir(&root).unwrap() {
        for case in std::fs::read_dir(rule.unwrap().path()).unwrap() {
            let dir = case.unwrap().path();
            let expected = load_expected(&dir);
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let per_case = expected.findings.len();
            match name.as_str() {
                "negative" => assert_eq!(per_case, 0, "{}", dir.display()),
                "positive" => assert_eq!(per_case, 1, "{}", dir.display()),
                _ => assert_eq!(per_case, 2, "a roll-up case: {}", dir.display()),
            }
            want.extend(expected.findings.into_iter().map(|f| f.id));
            cases += 1;
        }
    }
    want.sort();
    assert!(cases >= 16, "{cases} cases");
    assert_eq!(got, want);
}

#[test]
fn issue_14_two_attacks_and_a_ci_fleet_stay_apart() {
    for case in ROLLUP_CASES {
        let o = run_case(ROLLUP, case);
        assert_eq!(o.findings.len(), 2, "{case}");
        assert_eq!(o.summary.rollup.sequences_absorbed, 0, "{case}");
        assert!(
            o.findings.iter().all(|f| f["ProductFields"]
                .get("finding-correlator/absorbed-count")
                .is_none()),
            "{case}"
        );
        // The two findings' time spans overlap: only the relation keeps them apart.
        let span = |f: &Value| (text(&f["FirstObservedAt"]), text(&f["LastObservedAt"]));
        let (a, b) = (span(&o.findings[0]), span(&o.findings[1]));
        assert!(a.0 <= b.1 && b.0 <= a.1, "{case}: {a:?} {b:?}");
    }
}
