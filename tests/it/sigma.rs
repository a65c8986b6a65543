//! Sigma rules as signals (issue 17, item 4): the example rules of `correlation-rules/sigma/`
//! against counts derived without a Sigma engine (`tests/gen_sigma_counts.py`), the reading
//! shortcut, a sequence rule selecting Sigma signals, and damaged Sigma files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use finding_correlator::normalize::{self, CallFilter, DecodeOptions, Decoded, cloudtrail};
use finding_correlator::sigma::SigmaSet;
use serde_json::Value;

use crate::common::{correlator, repo, shared};

/// `tests/sigma/…`: the records and the rule folder of the Sigma cases (kept out of
/// `fixtures/`, which the main scenario reads whole).
fn sigma_case(rel: &str) -> PathBuf {
    repo().join("tests/sigma").join(rel)
}

fn example_rules() -> PathBuf {
    repo().join("correlation-rules/sigma")
}

fn load_examples() -> SigmaSet {
    SigmaSet::load_dir(&example_rules()).unwrap_or_else(|e| panic!("{e:#?}"))
}

const REALDATA: [&str; 2] = [
    "realdata/stratus-red-team/all-detonations.jsonl",
    "realdata/panther-test-events/cloudtrail-test-events.jsonl",
];

/// Matches per Sigma rule id when the files are decoded with the rules (and `calls`).
fn decoded_counts(set: &Arc<SigmaSet>, calls: Option<Arc<CallFilter>>) -> BTreeMap<String, u64> {
    let opts = DecodeOptions {
        sigma: Some(set.clone()),
        calls,
        ..DecodeOptions::default()
    };
    let mut counts: BTreeMap<String, u64> = set.rules.iter().map(|r| (r.id.clone(), 0)).collect();
    for f in REALDATA {
        let bytes = std::fs::read(shared(f)).unwrap();
        normalize::decode_reader(bytes.as_slice(), &opts, &mut |d| {
            if let Decoded::Sigma(_, s) = d {
                let id = s.kind.strip_prefix("sigma:").expect("a sigma: kind");
                *counts.get_mut(id).expect("a loaded rule") += 1;
            }
        });
    }
    counts
}

fn committed_counts() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(repo().join("tests/sigma_counts.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (id, n) = l.split_once('\t').expect("id<TAB>count");
            (id.to_string(), n.parse().expect("a count"))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn sigma_rules_match_the_independent_counts() {
    let set = Arc::new(load_examples());
    assert!(set.len() >= 11, "{} example rules", set.len());
    assert!(
        !set.every_record(),
        "every example rule names its calls: the reading shortcut holds"
    );
    let want = committed_counts();
    let got = decoded_counts(&set, None);
    assert_eq!(
        got, want,
        "engine counts (left) vs tests/sigma_counts.tsv (right)"
    );
    for (id, n) in &got {
        assert!(
            *n > 0,
            "{id} matches nothing in the real data: it tests nothing"
        );
    }
    // The seed's rule: the Panther RunInstances (10) and Stratus' failed one.
    assert_eq!(got["cloudsigma-t1496-compute-resource-creation"], 11);
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn the_reading_shortcut_loses_no_match() {
    let set = Arc::new(load_examples());
    // Every record line handed to the engine, no shortcut: the same matches.
    let mut every: BTreeMap<String, u64> = set.rules.iter().map(|r| (r.id.clone(), 0)).collect();
    let mut evaluated = 0;
    let mut shortcut = 0;
    for f in REALDATA {
        for line in std::fs::read_to_string(shared(f)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            // Records the decoder rejects (no readable eventTime, no eventSource) yield no signal.
            let time_ok = v["eventTime"]
                .as_str()
                .is_some_and(|t| t.len() >= 16 && t.as_bytes()[..4].iter().all(u8::is_ascii_digit));
            if !time_ok || !v["eventSource"].is_string() {
                continue;
            }
            evaluated += 1;
            let (src, name) = (
                v["eventSource"].as_str().unwrap(),
                v["eventName"].as_str().unwrap_or(""),
            );
            let hits = set.evaluate_every_rule(line);
            // With and without the keys the decoder's parse found.
            let mut de = serde_json::Deserializer::from_str(line);
            let first = cloudtrail::parse_top_level(&mut de, true).unwrap().unwrap();
            let keys = first.keys.as_deref();
            assert!(keys.is_some(), "{line}");
            assert_eq!(set.evaluate(src, name, line, keys), hits, "{src}:{name}");
            assert_eq!(set.evaluate(src, name, line, None), hits, "{src}:{name}");
            if set.may_match(src, name) {
                shortcut += 1;
            } else {
                assert!(
                    hits.is_empty(),
                    "the shortcut skips {src}:{name}, which matches"
                );
            }
            for i in hits {
                *every.get_mut(&set.rules[i].id).unwrap() += 1;
            }
        }
    }
    assert_eq!(evaluated, 310 + 436);
    assert!(
        shortcut * 3 < evaluated,
        "the shortcut hands {shortcut} of {evaluated} records to the engine"
    );
    assert_eq!(decoded_counts(&set, None), every);
    // Records the rules rule out are still matched by Sigma (the call filter counts the others
    // without building their signals).
    let nothing = Arc::new(CallFilter::default());
    assert_eq!(decoded_counts(&set, Some(nothing)), every);
}

/// `correlator correlate` with the fixture rule folder and the example Sigma rules.
fn correlate(input: &Path, sigma: Option<&Path>) -> std::process::Output {
    let mut cmd = correlator();
    cmd.args(["correlate", "--asff", "-", "--rules"])
        .arg(sigma_case("rules"));
    if let Some(dir) = sigma {
        cmd.arg("--sigma").arg(dir);
    }
    cmd.arg(input).output().unwrap()
}

#[test]
fn a_sequence_rule_selecting_sigma_signals_fires_on_real_shaped_records() {
    let out = correlate(&sigma_case("positive.jsonl"), Some(&example_rules()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["Findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(f["Severity"]["Label"], "HIGH");
    assert_eq!(
        f["Id"],
        "finding-correlator/instance-credentials-evasion/111122223333/us-east-1/instance/i-0aaaaaaaaaaaaaaa1/2025-05-02T09:40:05.000Z"
    );
    let seq = &f["Detection"]["Sequence"];
    let signals = seq["Signals"].as_array().unwrap();
    // Two secret reads and the flow-log deletion, each as its Sigma rule's signal.
    let titles: Vec<&str> = signals
        .iter()
        .map(|s| s["Title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Secrets Manager Secret Values Read by a Person or Workload",
            "Secrets Manager Secret Values Read by a Person or Workload",
            "VPC Flow Logs Deleted"
        ]
    );
    let ids: Vec<&str> = signals.iter().map(|s| s["Id"].as_str().unwrap()).collect();
    assert_eq!(
        ids[2],
        "sigma:vpc-flow-logs-deleted/a0000000-0000-4000-8000-000000000003"
    );
    // Level high -> severity 8 (GuardDuty's scale); low -> 2.
    assert_eq!(signals[2]["Severity"], 8.0);
    assert_eq!(signals[0]["Severity"], 2.0);
    let indicators = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["Key"] == key)
            .flat_map(|i| i["Values"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        indicators(&signals[2]["SignalIndicators"], "ATTACK_TECHNIQUE"),
        ["T1562.008"]
    );
    assert_eq!(
        indicators(&signals[2]["SignalIndicators"], "ATTACK_TACTIC"),
        ["Defense Evasion"]
    );
    let tactics = indicators(&seq["SequenceIndicators"], "ATTACK_TACTIC");
    assert_eq!(tactics, ["Credential Access", "Defense Evasion"]);
    let techniques = indicators(&seq["SequenceIndicators"], "ATTACK_TECHNIQUE");
    assert_eq!(
        techniques,
        ["T1555.006 - Cloud Secrets Management Stores", "T1562.008"]
    );
    // The records are counted once, not once more per match.
    assert!(
        stderr.contains("3 record(s) decoded"),
        "the summary counts records, not matches: {stderr}"
    );
}

#[test]
fn sigma_signals_group_like_the_calls_they_match() {
    // The secrets read by another instance and by Secrets Manager itself (filtered by the Sigma
    // rule's `and not filter_service`), the flow logs deleted by the first: no sequence.
    let out = correlate(&sigma_case("negative.jsonl"), Some(&example_rules()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["Findings"].as_array().unwrap().len(), 0, "{doc:#}");
}

#[test]
fn rules_naming_sigma_rules_need_them_loaded() {
    let out = correlate(&sigma_case("positive.jsonl"), None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("instance-credentials-evasion.yaml:")
            && stderr
                .contains("sigma.ids: Sigma rule \"secrets-manager-secret-read\" is not loaded"),
        "{stderr}"
    );
}

#[test]
fn rules_check_and_test_take_sigma_rules() {
    let out = correlator()
        .args(["rules", "check", "--sigma"])
        .arg(example_rules())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let n = std::fs::read_dir(example_rules()).unwrap().count();
    assert!(
        stderr.contains(&format!("{n} Sigma rule(s) valid")),
        "{stderr}"
    );
    // The inline tests of a rule selecting Sigma signals run with the Sigma rules.
    let out = correlator()
        .args(["rules", "test", "--rules"])
        .arg(sigma_case("rules"))
        .arg("--sigma")
        .arg(example_rules())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("2 passed, 0 failed"), "{stderr}");
}

/// A copy of the example rules with `file` replaced by `text`.
fn damaged(dir: &Path, file: &str, text: &str) -> PathBuf {
    let out = dir.join("sigma");
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(example_rules()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(out.join(file), text).unwrap();
    out
}

#[test]
fn a_damaged_sigma_file_is_a_clear_error_naming_it() {
    let original =
        std::fs::read_to_string(example_rules().join("vpc-flow-logs-deleted.yml")).unwrap();
    for (case, text, reason) in [
        (
            "broken YAML",
            original.replace("  condition: selection", "  condition: [selection"),
            "not a valid Sigma",
        ),
        (
            "a condition naming no detection",
            original.replace(
                "condition: selection",
                "condition: selection and not filter",
            ),
            "vpc-flow-logs-deleted",
        ),
        (
            "not CloudTrail",
            original.replace("service: cloudtrail", "service: s3"),
            "logsource must be `product: aws` and `service: cloudtrail`",
        ),
        (
            "a correlation rule",
            format!(
                "{original}---\ntitle: Many deletions\nid: many-deletions\ncorrelation:\n  type: event_count\n  rules: [vpc-flow-logs-deleted]\n  group-by: [recipientAccountId]\n  timespan: 1h\n  condition:\n    gte: 3\nlevel: high\n"
            ),
            "correlation rules are not supported",
        ),
        (
            "an id used twice",
            original.replace("id: vpc-flow-logs-deleted", "id: dns-query-logging-deleted"),
            "is used by",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = damaged(tmp.path(), "vpc-flow-logs-deleted.yml", &text);
        let out = correlator()
            .args(["rules", "check", "--sigma"])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("{case}: no error saying {reason:?}: {stderr}"));
        assert!(
            line.contains("vpc-flow-logs-deleted.yml:"),
            "{case}: the error names the file: {line}"
        );
    }
}

#[test]
fn a_bad_sigma_selector_is_an_error_at_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sigma_case("rules/instance-credentials-evasion.yaml"))
        .unwrap()
        .replace("level_at_least: high", "level_at_least: severe");
    std::fs::write(tmp.path().join("instance-credentials-evasion.yaml"), text).unwrap();
    let out = correlator()
        .args(["rules", "check", "--rules"])
        .arg(tmp.path())
        .arg("--sigma")
        .arg(example_rules())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("instance-credentials-evasion.yaml:27:25: sigma.level_at_least \"severe\": expected informational, low, medium, high or critical"),
        "{stderr}"
    );
}

#[test]
fn sigma_signals_carry_over_split_runs_with_a_state() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sigma_case("positive.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = (tmp.path().join("1.jsonl"), tmp.path().join("2.jsonl"));
    // The secrets read in one run, the flow logs deleted in the next.
    std::fs::write(&first, lines[..2].join("\n") + "\n").unwrap();
    std::fs::write(&second, lines[2].to_string() + "\n").unwrap();
    let state = tmp.path().join("state.json");
    let run = |input: &Path| {
        crate::common::findings_on_stdout(
            correlator()
                .args(["correlate", "--asff", "-", "--rules"])
                .arg(sigma_case("rules"))
                .arg("--sigma")
                .arg(example_rules())
                .arg("--state")
                .arg(&state)
                .arg(input),
        )
    };
    assert!(run(&first).is_empty());
    let findings = run(&second);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0]["Id"],
        "finding-correlator/instance-credentials-evasion/111122223333/us-east-1/instance/i-0aaaaaaaaaaaaaaa1/2025-05-02T09:40:05.000Z"
    );
    assert_eq!(
        findings[0]["Detection"]["Sequence"]["Signals"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// A GuardDuty finding of `type` on the instance whose credentials the Sigma cases use.
fn finding_on_the_instance(n: u32, ty: &str, at: &str) -> Value {
    let id = format!("c{n:031}");
    serde_json::json!({
        "schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1", "id": id,
        "arn": format!("arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{id}"),
        "type": ty, "severity": 8, "createdAt": at, "updatedAt": at,
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0aaaaaaaaaaaaaaa1"}},
        "service": {"eventFirstSeen": at, "eventLastSeen": at, "count": 1,
            "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.example.net"}}}
    })
}

/// The shipped rules' findings on the Sigma cases' records plus `findings`.
fn shipped_rules_findings(findings: &[Value], sigma: bool) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(sigma_case("positive.jsonl"), dir.path().join("calls.jsonl")).unwrap();
    let lines: Vec<String> = findings.iter().map(Value::to_string).collect();
    std::fs::write(dir.path().join("findings.jsonl"), lines.join("\n")).unwrap();
    let mut cmd = correlator();
    cmd.args(["correlate", "--asff", "-"]);
    if sigma {
        cmd.arg("--sigma").arg(example_rules());
    }
    crate::common::findings_on_stdout(cmd.arg(dir.path()))
}

#[test]
fn the_shipped_group_rule_takes_sigma_matches_by_the_groups_credentials_as_evidence() {
    let findings = [
        finding_on_the_instance(
            1,
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            "2025-05-02T09:30:00.000Z",
        ),
        finding_on_the_instance(
            2,
            "Backdoor:EC2/C&CActivity.B!DNS",
            "2025-05-02T09:35:00.000Z",
        ),
    ];
    let signal_ids = |f: &Value| -> Vec<String> {
        f["Detection"]["Sequence"]["Signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Id"].as_str().unwrap().to_string())
            .collect()
    };
    let without = shipped_rules_findings(&findings, false);
    let with = shipped_rules_findings(&findings, true);
    assert_eq!(without.len(), 1, "{without:#?}");
    assert_eq!(with.len(), 1, "{with:#?}");
    assert_eq!(
        with[0]["Id"], without[0]["Id"],
        "the same attack, the same finding"
    );
    assert_eq!(with[0]["GeneratorId"], "compromised-instance-group");
    // The flow-log deletion (level high) joins; the secret reads (level low) do not.
    let extra: Vec<String> = signal_ids(&with[0])
        .into_iter()
        .filter(|id| !signal_ids(&without[0]).contains(id))
        .collect();
    assert_eq!(
        extra,
        ["sigma:vpc-flow-logs-deleted/a0000000-0000-4000-8000-000000000003"]
    );
    // A finding with Sigma signals in it is one Security Hub takes.
    if let Some(why) = crate::common::security_hub_model_rejects(&with) {
        panic!("asff_validate.py rejected the finding:\n{why}");
    }
    assert!(
        with[0]["Confidence"].as_u64() > without[0]["Confidence"].as_u64(),
        "a weak signal raises the confidence: {} vs {}",
        with[0]["Confidence"],
        without[0]["Confidence"]
    );
    // Weak: a Sigma match is never a kind of suspicious signal of its own. With one GuardDuty
    // finding, the flow-log deletion (a high-risk API called with the group's credentials)
    // is the second kind with or without Sigma, and the Sigma match only joins.
    let one = shipped_rules_findings(&findings[..1], false);
    let one_with = shipped_rules_findings(&findings[..1], true);
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!(one_with.len(), 1, "{one_with:#?}");
    assert_eq!(
        one_with[0]["Detection"]["Sequence"]["Signals"]
            .as_array()
            .unwrap()
            .len(),
        one[0]["Detection"]["Sequence"]["Signals"]
            .as_array()
            .unwrap()
            .len()
            + 1
    );
}

/// The README: Sigma matches "never make a finding on their own". Every example rule's
/// matches on the positive records (calls made with an instance's credentials among them),
/// with no GuardDuty finding at all: the shipped rules write nothing more than they write
/// without Sigma.
#[test]
fn sigma_matches_alone_make_no_finding() {
    let without = shipped_rules_findings(&[], false);
    let with = shipped_rules_findings(&[], true);
    let ids = |fs: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = fs.iter().map(|f| f["Id"].to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&with), ids(&without), "{with:#?}");
}

/// The README: only records whose event name or source a rule names literally are handed to
/// the Sigma engine, and a rule that names none is evaluated on every record. Rules of the
/// shapes that name no call (a name by prefix, a selection on the caller's address alone in
/// an `or`, a list of values that names no source) lose no match to that shortcut on the
/// Sigma cases' records.
#[test]
fn rules_that_name_no_call_literally_lose_no_match_to_the_reading_shortcut() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str, detection: &str| {
        format!(
            "title: {id}\nid: {id}\nstatus: experimental\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n{detection}\nlevel: medium\n"
        )
    };
    let rules = [
        (
            "by-prefix",
            "  selection:\n    eventName|startswith: Get\n  condition: selection",
        ),
        (
            "address-or-call",
            "  sel1:\n    eventName: DeleteFlowLogs\n  sel2:\n    sourceIPAddress: 203.0.113.77\n  condition: sel1 or sel2",
        ),
        (
            "names-by-list",
            "  selection:\n    eventName:\n      - GetSecretValue\n      - DeleteTrail\n  condition: selection",
        ),
    ];
    for (id, detection) in rules {
        std::fs::write(dir.path().join(format!("{id}.yml")), rule(id, detection)).unwrap();
    }
    let set = SigmaSet::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    let mut matched = 0;
    for path in [sigma_case("positive.jsonl"), sigma_case("negative.jsonl")] {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let (src, name) = (
                v["eventSource"].as_str().unwrap_or(""),
                v["eventName"].as_str().unwrap_or(""),
            );
            let hits = set.evaluate_every_rule(line);
            matched += hits.len();
            assert_eq!(set.evaluate(src, name, line, None), hits, "{src}:{name}");
            assert!(
                hits.is_empty() || set.may_match(src, name),
                "the shortcut skips {src}:{name}, which matches {hits:?}"
            );
        }
    }
    assert!(
        matched >= 3,
        "{matched} matches: the rules match the records"
    );
}
