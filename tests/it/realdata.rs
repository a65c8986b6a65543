//! The decoders against real records published by others (`../shared/realdata/`, described in
//! its README) and the sample files (`../shared/samples/`): Stratus Red Team detonation logs,
//! Panther's CloudTrail and GuardDuty rule-test events, and the hand-collected samples.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use finding_correlator::normalize::{RecordKind, Severity};
use finding_correlator::signal::{EntityId, EntityKind, RecordRef, Signal, Source};
use finding_correlator::time::parse_timestamp;
use serde_json::Value;

use crate::common::{Decodes, decode_bytes, decode_file, shared};

const STRATUS_EVENTS: usize = 310;
const STRATUS_TECHNIQUES: usize = 35;

fn stratus(rel: &str) -> PathBuf {
    shared(&format!("realdata/stratus-red-team/{rel}"))
}

fn panther(rel: &str) -> PathBuf {
    shared(&format!("realdata/panther-test-events/{rel}"))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn event_id(s: &Signal) -> &str {
    match &s.reference {
        RecordRef::EventId(id) => id,
        other => panic!("expected an eventID reference, got {other:?}"),
    }
}

/// The problems of a decode, as text, for assertion messages.
fn problem_texts(d: &Decodes) -> Vec<String> {
    d.problems
        .iter()
        .map(|p| format!("{p} [{:?}]", p.severity))
        .collect()
}

/// The signals of all-detonations.jsonl, keyed by eventID (asserting there are no repeats).
fn stratus_signals_by_id() -> BTreeMap<String, Signal> {
    let d = decode_file(&stratus("all-detonations.jsonl"));
    assert!(d.problems.is_empty(), "{:#?}", problem_texts(&d));
    let mut by_id = BTreeMap::new();
    for s in d.only_signals() {
        let old = by_id.insert(event_id(s).to_string(), s.clone());
        assert!(old.is_none(), "eventID {} decoded twice", event_id(s));
    }
    by_id
}

/// The raw records of all-detonations.jsonl, keyed by eventID.
fn stratus_records_by_id() -> BTreeMap<String, Value> {
    read_text(&stratus("all-detonations.jsonl"))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("all-detonations.jsonl line is JSON");
            (v["eventID"].as_str().expect("eventID").to_string(), v)
        })
        .collect()
}

/// The 35 per-technique files, sorted.
fn technique_files() -> Vec<PathBuf> {
    let dir = shared("realdata/stratus-red-team");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("aws.") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    files
}

struct LabelRow {
    technique: String,
    event_id: String,
    event_source: String,
    event_name: String,
    event_time: String,
    error_code: Option<String>,
}

/// `labels.csv`, parsed by hand: no field is quoted or holds a comma (checked).
fn stratus_labels() -> Vec<LabelRow> {
    let text = read_text(&stratus("labels.csv"));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("technique,eventID,eventSource,eventName,eventTime,errorCode")
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 6, "labels.csv row {l:?}");
            assert!(!l.contains('"'), "quoted labels.csv row {l:?}");
            LabelRow {
                technique: f[0].to_string(),
                event_id: f[1].to_string(),
                event_source: f[2].to_string(),
                event_name: f[3].to_string(),
                event_time: f[4].to_string(),
                error_code: Some(f[5].to_string()).filter(|s| !s.is_empty()),
            }
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_all_detonations_decode_without_problems() {
    let d = decode_file(&stratus("all-detonations.jsonl"));
    assert!(d.not_json.is_none());
    assert!(d.problems.is_empty(), "{:#?}", problem_texts(&d));
    assert_eq!(d.signals.len(), STRATUS_EVENTS);
    for (kind, s) in &d.signals {
        assert_eq!(*kind, RecordKind::CloudTrail);
        assert_eq!(s.source, Source::CloudTrail);
        assert_eq!(s.severity, 0.0);
        assert!(!s.is_finding());
        let (src, name) = (
            s.fields.event_source.as_deref().unwrap(),
            s.fields.event_name.as_deref().unwrap(),
        );
        assert_eq!(s.kind, format!("{src}:{name}"));
    }
    // One signal per eventID, in file order (the file is sorted by eventTime).
    assert_eq!(stratus_signals_by_id().len(), STRATUS_EVENTS);
    let times: Vec<_> = d.signals.iter().map(|(_, s)| s.time).collect();
    assert!(
        times.is_sorted(),
        "all-detonations.jsonl is sorted by eventTime"
    );
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_labels_match_the_decoded_signals() {
    let labels = stratus_labels();
    assert_eq!(labels.len(), STRATUS_EVENTS);
    let d = decode_file(&stratus("all-detonations.jsonl"));
    assert!(d.problems.is_empty(), "{:#?}", problem_texts(&d));
    for row in &labels {
        let matching: Vec<&Signal> = d
            .only_signals()
            .into_iter()
            .filter(|s| s.reference == RecordRef::EventId(row.event_id.clone().into()))
            .collect();
        assert_eq!(matching.len(), 1, "signals for eventID {}", row.event_id);
        let s = matching[0];
        let ctx = format!("{} {}", row.technique, row.event_id);
        assert_eq!(s.source, Source::CloudTrail, "{ctx}");
        assert_eq!(
            s.fields.event_source.as_deref(),
            Some(row.event_source.as_str()),
            "{ctx}"
        );
        assert_eq!(
            s.fields.event_name.as_deref(),
            Some(row.event_name.as_str()),
            "{ctx}"
        );
        let want_time = parse_timestamp(&row.event_time)
            .unwrap_or_else(|| panic!("labels.csv eventTime {:?}", row.event_time));
        assert_eq!(s.time, want_time, "{ctx}");
        assert_eq!(
            s.fields.error_code.as_deref(),
            row.error_code.as_deref(),
            "{ctx}"
        );
    }
    let failed = labels.iter().filter(|r| r.error_code.is_some()).count();
    assert_eq!(failed, 52, "rows of labels.csv with an errorCode");
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_technique_files_hold_the_same_events() {
    let files = technique_files();
    assert_eq!(files.len(), STRATUS_TECHNIQUES);
    let all = stratus_signals_by_id();
    let technique_of: BTreeMap<String, String> = stratus_labels()
        .into_iter()
        .map(|r| (r.event_id, r.technique))
        .collect();
    let mut seen = BTreeSet::new();
    for file in &files {
        let technique = file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".json")
            .unwrap()
            .to_string();
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(&b'['),
            "{technique}: a JSON array"
        );
        let d = decode_bytes(&bytes);
        assert!(d.not_json.is_none());
        assert!(
            d.problems.is_empty(),
            "{technique}: {:#?}",
            problem_texts(&d)
        );
        assert!(!d.signals.is_empty(), "{technique}: no signals");
        for s in d.only_signals() {
            let id = event_id(s);
            assert!(seen.insert(id.to_string()), "{id} in two technique files");
            assert_eq!(
                technique_of.get(id),
                Some(&technique),
                "labels.csv technique of {id}"
            );
            // Same record, same signal, whichever file it was read from.
            assert_eq!(all.get(id), Some(s), "{technique} {id}");
        }
    }
    assert_eq!(seen.len(), STRATUS_EVENTS);
    assert_eq!(seen, all.keys().cloned().collect::<BTreeSet<_>>());
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_stolen_instance_credentials_name_the_instance() {
    let d = decode_file(&stratus(
        "aws.credential-access.ec2-steal-instance-credentials.json",
    ));
    assert!(d.problems.is_empty(), "{:#?}", problem_texts(&d));
    let records: Vec<Value> = serde_json::from_slice(
        &std::fs::read(stratus(
            "aws.credential-access.ec2-steal-instance-credentials.json",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(records.len(), d.signals.len());
    let mut from_instance = 0;
    for (rec, s) in records.iter().zip(d.only_signals()) {
        assert_eq!(Some(event_id(s)), rec["eventID"].as_str());
        let arn = rec["userIdentity"]["arn"].as_str().unwrap();
        let actor = s.actor.as_ref().expect("every record has a userIdentity");
        assert_eq!(actor.arn.as_deref(), Some(arn));
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/i-…
        let session = arn
            .split_once(":assumed-role/")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(_, session)| session)
            .filter(|session| session.starts_with("i-"));
        match session {
            Some(instance) => {
                from_instance += 1;
                assert_eq!(instance, "i-786a3A8B5C0d92eF4");
                assert_eq!(actor.instance_id.as_deref(), Some(instance), "{arn}");
                assert_eq!(actor.session_name.as_deref(), Some(instance));
                assert_eq!(actor.principal_type.as_deref(), Some("AssumedRole"));
                assert_eq!(
                    actor.role_arn.as_deref(),
                    Some(
                        "arn:aws:iam::017622104382:role/stratus-red-team-ec2-steal-credentials-role"
                    )
                );
                assert_eq!(actor.access_key_id.as_deref(), Some("ASIAP5CT9NN8EYVU1FXV"));
                assert!(
                    s.entities()
                        .contains(&EntityId::new(EntityKind::Instance, instance)),
                    "{:?}",
                    s.entities()
                );
            }
            None => {
                assert_eq!(actor.instance_id, None, "{arn}");
                assert_eq!(actor.principal_type.as_deref(), Some("IAMUser"));
            }
        }
    }
    // GetCallerIdentity and DescribeInstances with the stolen credentials.
    assert_eq!(from_instance, 2);
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_unusual_instances_launch_is_a_failed_p2_request() {
    let d = decode_file(&stratus("aws.execution.ec2-launch-unusual-instances.json"));
    assert!(d.problems.is_empty(), "{:#?}", problem_texts(&d));
    let runs: Vec<&Signal> = d
        .only_signals()
        .into_iter()
        .filter(|s| s.fields.event_name.as_deref() == Some("RunInstances"))
        .collect();
    assert_eq!(runs.len(), 1);
    let s = runs[0];
    assert_eq!(event_id(s), "1a4debbb-12e9-4bde-b8c7-ea29002bb2a7");
    assert_eq!(s.kind, "ec2.amazonaws.com:RunInstances");
    assert_eq!(
        s.fields.error_code.as_deref(),
        Some("Client.UnauthorizedOperation")
    );
    assert_eq!(
        s.fields.requested_instance_type.as_deref(),
        Some("p2.xlarge")
    );
    assert_eq!(s.fields.requested_count, Some(10));
    assert_eq!(
        s.fields.requested_vcpus,
        Some(40),
        "10 × p2.xlarge (4 vCPUs)"
    );
    // `responseElements: null`: nothing was launched.
    assert!(s.instances.is_empty(), "{:?}", s.instances);
    assert_eq!(s.fields.launched_count, None);
    assert_eq!(s.fields.launched_vcpus, None);
    assert_eq!(s.time, parse_timestamp("2024-08-01T11:30:23Z").unwrap());
    assert_eq!(s.account.as_deref(), Some("900138736586"));
    assert_eq!(s.region.as_deref(), Some("ca-south-3r"));
    let actor = s.actor.as_ref().unwrap();
    assert_eq!(
        actor.session_name.as_deref(),
        Some("aws-go-sdk-1722511821294449000")
    );
    assert_eq!(actor.instance_id, None, "an SDK session, not an instance");
    assert_eq!(
        actor.role_arn.as_deref(),
        Some("arn:aws:iam::900138736586:role/stratus-red-team-ec2lui-role-idtzskbvtd")
    );
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn stratus_anonymised_regions_and_ips_are_kept_as_given() {
    let signals = stratus_signals_by_id();
    let records = stratus_records_by_id();
    assert_eq!(signals.len(), records.len());
    for (id, rec) in &records {
        let s = &signals[id];
        assert_eq!(s.region.as_deref(), rec["awsRegion"].as_str(), "{id}");
        assert_eq!(
            s.fields.source_ip.as_deref(),
            rec["sourceIPAddress"].as_str(),
            "{id}"
        );
        assert_eq!(
            s.fields.user_agent.as_deref(),
            rec["userAgent"].as_str(),
            "{id}"
        );
        assert_eq!(
            s.account.as_deref(),
            rec["recipientAccountId"].as_str(),
            "{id}"
        );
    }
    // Regions that do not exist and IP strings with leading zeros, exactly as published.
    let regions: BTreeSet<&str> = signals
        .values()
        .filter_map(|s| s.region.as_deref())
        .collect();
    for r in [
        "sagov-westsouth-1r",
        "us-north-2r",
        "apiso-northsouth-3r",
        "cniso-east-3r",
    ] {
        assert!(regions.contains(r), "region {r} missing from {regions:?}");
    }
    for ip in [
        "255.090.254.5",
        "035.249.253.232",
        "06.237.252.245",
        "225.01.00.16",
    ] {
        let with_ip: Vec<&Signal> = signals
            .values()
            .filter(|s| s.fields.source_ip.as_deref() == Some(ip))
            .collect();
        assert!(!with_ip.is_empty(), "no signal with source IP {ip}");
        for s in with_ip {
            assert!(
                s.entities().contains(&EntityId::new(EntityKind::Ip, ip)),
                "{ip} not kept as an IP entity: {:?}",
                s.entities()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Panther

/// CloudTrail test events: how many decode, and why the others are skipped.
const PANTHER_CT_LINES: usize = 453;
const PANTHER_CT_DECODED: usize = 436;
const REASON_MISSING_EVENT_TIME: &str = "missing field `eventTime`";
const REASON_REDACTED_TIME: &str = "field `eventTime` is not a timestamp: \"redacted\" (expected ISO-8601 like \"2025-05-02T09:20:00Z\")";
const REASON_DOTS_TIME: &str = "field `eventTime` is not a timestamp: \"...\" (expected ISO-8601 like \"2025-05-02T09:20:00Z\")";
const REASON_NO_EVENT_SOURCE: &str = "CloudTrail record without `eventSource`";

/// (reason, the lines it applies to), from inspecting the file.
fn panther_ct_expected_skips() -> Vec<(&'static str, Vec<u64>)> {
    vec![
        (
            REASON_MISSING_EVENT_TIME,
            vec![32, 33, 34, 35, 75, 92, 387, 388, 389, 390, 391, 444, 450],
        ),
        (REASON_REDACTED_TIME, vec![320]),
        (REASON_DOTS_TIME, vec![453]),
        // `eventName` but no `eventSource` (and no `eventTime` either).
        (REASON_NO_EVENT_SOURCE, vec![326, 327]),
    ]
}

/// Decodes each line of a JSON Lines file on its own.
fn decode_lines(text: &str) -> Vec<Decodes> {
    text.lines().map(|l| decode_bytes(l.as_bytes())).collect()
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_cloudtrail_lines_are_each_one_signal_or_one_precise_problem() {
    let path = panther("cloudtrail-test-events.jsonl");
    let text = read_text(&path);
    let per_line = decode_lines(&text);
    assert_eq!(per_line.len(), PANTHER_CT_LINES);
    let whole = decode_file(&path);
    assert!(whole.not_json.is_none());

    // Line by line: exactly one signal or exactly one problem.
    let mut from_lines = Vec::new();
    for (i, d) in per_line.iter().enumerate() {
        assert_eq!(
            d.signals.len() + d.problems.len(),
            1,
            "line {}: {} signals, {:?}",
            i + 1,
            d.signals.len(),
            problem_texts(d)
        );
        from_lines.extend(d.only_signals().into_iter().cloned());
    }
    // The whole file: the same signals in the same order, problems located on their line.
    let whole_signals: Vec<Signal> = whole.only_signals().into_iter().cloned().collect();
    assert_eq!(whole_signals, from_lines);

    let mut by_reason: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for p in &whole.problems {
        let loc = p
            .location
            .as_ref()
            .expect("a problem of a line has a location");
        assert_eq!(loc.element, None, "{p}");
        assert_eq!(p.severity, Severity::Skipped, "{p}");
        let one = &per_line[loc.line as usize - 1].problems;
        assert_eq!(one.len(), 1, "{p}");
        assert_eq!(
            one[0].reason, p.reason,
            "line {} alone and in the file",
            loc.line
        );
        by_reason
            .entry(p.reason.as_str())
            .or_default()
            .push(loc.line);
    }

    let skipped: usize = by_reason.values().map(Vec::len).sum();
    eprintln!(
        "panther cloudtrail-test-events.jsonl: {} lines, {} decoded, {} skipped",
        per_line.len(),
        whole.signals.len(),
        skipped
    );
    for (reason, lines) in &by_reason {
        eprintln!("  skipped {:>2} × {reason} (lines {lines:?})", lines.len());
    }

    let expected: BTreeMap<&str, Vec<u64>> = panther_ct_expected_skips().into_iter().collect();
    assert_eq!(by_reason, expected);
    assert_eq!(whole.signals.len(), PANTHER_CT_DECODED);
    assert_eq!(PANTHER_CT_DECODED + skipped, PANTHER_CT_LINES);
    assert!(
        whole
            .signals
            .iter()
            .all(|(k, s)| { *k == RecordKind::CloudTrail && s.source == Source::CloudTrail })
    );
}

/// Line `n` (1-based) of the Panther CloudTrail events, decoded alone, and its raw record.
fn panther_ct_line(n: usize) -> (Signal, Value) {
    let text = read_text(&panther("cloudtrail-test-events.jsonl"));
    let line = text.lines().nth(n - 1).unwrap();
    let d = decode_bytes(line.as_bytes());
    assert!(d.problems.is_empty(), "line {n}: {:?}", problem_texts(&d));
    assert_eq!(d.signals.len(), 1);
    (d.signals[0].1.clone(), serde_json::from_str(line).unwrap())
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_terminations_end_the_instance_they_name() {
    // Lines 216 and 217: the same `TerminateInstances`, by a role and by Auto Scaling's
    // service-linked role (a group scaling in). The state lets go of what it knows of the
    // instance `terminated_retention` after either.
    for n in [216, 217] {
        let (s, rec) = panther_ct_line(n);
        assert_eq!(rec["eventName"], "TerminateInstances");
        assert!(s.ends_its_instances(), "line {n}");
        let ids: Vec<&str> = s.instances.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(ids, ["i-0d9853f67e40ab80b"], "line {n}");
    }
    let (by_asg, _) = panther_ct_line(217);
    assert_eq!(
        by_asg.actor.as_ref().and_then(|a| a.arn.as_deref()),
        Some("arn:aws:sts::111222333444:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling")
    );
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_run_instances_with_instance_type_as_object() {
    // Line 99: `"instanceType": {"value": "p2.xlarge"}`; line 97 is the same event with a
    // plain string. Both decode to the same signal.
    let (s, rec) = panther_ct_line(99);
    assert_eq!(
        rec["requestParameters"]["instanceType"],
        serde_json::json!({"value": "p2.xlarge"})
    );
    assert_eq!(
        s.fields.requested_instance_type.as_deref(),
        Some("p2.xlarge")
    );
    assert_eq!(s.fields.requested_count, Some(1));
    assert_eq!(s.fields.requested_vcpus, Some(4));
    let (plain, rec97) = panther_ct_line(97);
    assert_eq!(rec97["requestParameters"]["instanceType"], "p2.xlarge");
    assert_eq!(plain, s);
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_auto_scaling_run_instances_names_the_instance_group() {
    let (s, rec) = panther_ct_line(97);
    assert_eq!(event_id(&s), "41fab871-150b-43ad-b42a-39fff3f2ca4e");
    // Panther's `YYYY-MM-DD HH:MM:SS.fffffffff`, cross-checked with the record's own epoch
    // milliseconds `launchTime`.
    assert_eq!(rec["eventTime"], "2024-12-16 18:41:07.000000000");
    assert_eq!(
        rec["responseElements"]["instancesSet"]["items"][0]["launchTime"],
        1_734_374_467_000u64
    );
    assert_eq!(s.time, 1_734_374_467_000);
    assert_eq!(s.account.as_deref(), Some("111122223333"));
    assert_eq!(s.region.as_deref(), Some("us-west-2"));
    assert_eq!(
        s.fields.source_ip.as_deref(),
        Some("autoscaling.amazonaws.com")
    );

    let actor = s.actor.as_ref().unwrap();
    assert!(actor.is_service());
    assert_eq!(
        actor.invoked_by.as_deref(),
        Some("autoscaling.amazonaws.com")
    );
    assert_eq!(actor.session_name.as_deref(), Some("AutoScaling"));
    assert_eq!(actor.instance_id, None);
    assert_eq!(
        actor.role_arn.as_deref(),
        Some(
            "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        )
    );

    assert_eq!(s.instances.len(), 1);
    let i = &s.instances[0];
    assert_eq!(i.instance_id, "i-07d06021b0da55115");
    assert!(i.launched);
    assert_eq!(
        i.auto_scaling_group.as_deref(),
        Some("eks-ng-0ca246e9-cac9e862-bfd9-a821-c9fd-9916df5654eb")
    );
    assert_eq!(i.launch_template.as_deref(), Some("lt-07a0b5cea4ece8ffd"));
    assert_eq!(i.launch_template_version.as_deref(), Some("1"));
    assert_eq!(
        i.instance_profile.as_deref(),
        Some("arn:aws:iam::111122223333:instance-profile/profile-id")
    );
    assert_eq!(i.ami.as_deref(), Some("ami-013e7d3a6659f358d"));
    assert_eq!(i.vpc.as_deref(), Some("vpc-0330bfd33da75b36e"));
    assert_eq!(i.subnet.as_deref(), Some("subnet-083e5906ef2809ac2"));
    assert_eq!(i.instance_type.as_deref(), Some("p2.xlarge"));
    // cpuOptions 2 cores × 1 thread wins over the size table (p2.xlarge = 4).
    assert_eq!(i.vcpus, Some(2));
    assert_eq!(i.cloudformation_stack, None);
    assert_eq!(s.fields.launched_count, Some(1));
    assert_eq!(s.fields.launched_vcpus, Some(2));
    assert!(s.resources.contains(&EntityId::new(
        EntityKind::LaunchTemplate,
        "lt-07a0b5cea4ece8ffd"
    )));
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_run_instances_with_two_launched_instances() {
    // Line 142: maxCount 2, two response items, each 1 core × 2 threads.
    let (s, _) = panther_ct_line(142);
    assert_eq!(s.fields.requested_count, Some(2));
    assert_eq!(
        s.fields.requested_instance_type.as_deref(),
        Some("t3a.nano")
    );
    assert_eq!(s.fields.launched_count, Some(2));
    assert_eq!(s.fields.launched_vcpus, Some(4));
    let ids: Vec<&str> = s.instances.iter().map(|i| i.instance_id.as_str()).collect();
    assert_eq!(ids, ["i-00000000000000000", "i-00000000000000001"]);
    let amis: Vec<_> = s.instances.iter().map(|i| i.ami.as_deref()).collect();
    assert_eq!(
        amis,
        [Some("ami-092e3b17e435e5e58"), Some("ami-020a359780bc6f835")]
    );
    assert!(s.instances.iter().all(|i| i.launched && i.vcpus == Some(2)));
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_timestamps_parse() {
    // Every `YYYY-MM-DD HH:MM:SS[.fraction]` eventTime gives the same time as its ISO-8601
    // spelling (all fractions in this file are zero).
    let text = read_text(&panther("cloudtrail-test-events.jsonl"));
    let mut panther_form = 0;
    for (i, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let Some(t) = rec.get("eventTime").and_then(Value::as_str) else {
            continue;
        };
        let b = t.as_bytes();
        if b.len() < 19 || b[10] != b' ' {
            continue;
        }
        panther_form += 1;
        let iso = format!("{}T{}Z", &t[..10], &t[11..19]);
        let d = decode_bytes(line.as_bytes());
        assert_eq!(
            d.signals.len(),
            1,
            "line {}: {:?}",
            i + 1,
            problem_texts(&d)
        );
        assert_eq!(
            Some(d.signals[0].1.time),
            parse_timestamp(&iso),
            "line {}: {t:?}",
            i + 1
        );
    }
    // 56 with nine fraction digits, 9 with three, 55 without a fraction.
    assert_eq!(panther_form, 120);
}

/// What each line of guardduty-test-findings.jsonl should give.
#[derive(Clone, Copy, Debug, PartialEq)]
enum GdExpect {
    Signal,
    /// An Ignored problem: a sample finding.
    Sample,
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_guardduty_lines_are_signals_or_ignored_samples() {
    // Lines 3–8 are Panther test findings without `resource` (trimmed by the publisher); they
    // carry a GuardDuty ARN, `schemaVersion`, a valid finding type and `service`, so they are
    // GuardDuty findings all the same. The even lines are sample findings
    // (`service.additionalInfo.sample: true`), which are Ignored by design, never Skipped.
    use GdExpect::{Sample, Signal as Sig};
    let expect = [Sig, Sample, Sig, Sample, Sig, Sample, Sig, Sample];
    const GD_DECODED: usize = 4;
    const GD_IGNORED_SAMPLES: usize = 4;

    let path = panther("guardduty-test-findings.jsonl");
    let text = read_text(&path);
    let whole = decode_file(&path);
    let per_line = decode_lines(&text);
    assert_eq!(per_line.len(), expect.len());

    let mut reasons: BTreeMap<(String, Severity), Vec<u64>> = BTreeMap::new();
    for p in &whole.problems {
        let line = p.location.as_ref().map_or(0, |l| l.line);
        reasons
            .entry((p.reason.clone(), p.severity))
            .or_default()
            .push(line);
    }
    eprintln!(
        "panther guardduty-test-findings.jsonl: {} lines, {} decoded, {} problems",
        per_line.len(),
        whole.signals.len(),
        whole.problems.len()
    );
    for ((reason, severity), lines) in &reasons {
        eprintln!(
            "  {severity:?} {} × {reason} (lines {lines:?})",
            lines.len()
        );
    }

    // Every line alone: one signal or one problem, and the one expected.
    let mut wrong = Vec::new();
    let mut from_lines = Vec::new();
    for (i, (d, want)) in per_line.iter().zip(expect).enumerate() {
        let n = i + 1;
        if d.signals.len() + d.problems.len() != 1 {
            wrong.push(format!(
                "line {n}: {} signals, {:?}",
                d.signals.len(),
                problem_texts(d)
            ));
            continue;
        }
        match (want, d.signals.first(), d.problems.first()) {
            (Sig, Some((kind, s)), _) => {
                assert_eq!(*kind, RecordKind::GuardDuty);
                assert_eq!(s.source, Source::GuardDuty);
                assert!(s.is_finding());
                from_lines.push(s.clone());
            }
            (Sample, _, Some(p))
                if p.severity == Severity::Ignored
                    && p.reason.starts_with("GuardDuty sample finding ")
                    && p.reason
                        .ends_with(" (service.additionalInfo.sample = true)") => {}
            _ => wrong.push(format!(
                "line {n}: expected {want:?}, got {} signals, {:?}",
                d.signals.len(),
                problem_texts(d)
            )),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // The whole file: the same signals, and each problem on its line.
    let whole_signals: Vec<Signal> = whole.only_signals().into_iter().cloned().collect();
    assert_eq!(whole_signals, from_lines);
    for p in &whole.problems {
        let n = p.location.as_ref().expect("located").line as usize;
        assert_eq!(expect[n - 1], Sample, "{p}");
        assert_eq!(per_line[n - 1].problems[0].reason, p.reason);
    }
    assert_eq!(whole.signals.len(), GD_DECODED);
    assert_eq!(whole.problems.len(), GD_IGNORED_SAMPLES);

    // Lines 3, 5 and 7: one finding (PutRolePolicy through CloudFormation) at the high, low
    // and medium severities of Panther's three rules.
    let severities: Vec<f64> = whole_signals[1..].iter().map(|s| s.severity).collect();
    assert_eq!(severities, [8.0, 1.0, 5.0]);
    for s in &whole_signals[1..] {
        assert_eq!(
            s.kind,
            "PrivilegeEscalation:IAMUser/AdministrativePermissions"
        );
        assert_eq!(
            s.reference,
            RecordRef::FindingArn(
                "arn:aws:guardduty:us-west-2:123456789012:detector/111111bbbbbbbbbb5555555551111111/finding/90b82273685661b9318f078d0851fe9a".into()
            )
        );
        assert_eq!(s.time, parse_timestamp("2020-02-14T17:59:17Z").unwrap());
        assert_eq!(
            s.updated_at,
            Some(parse_timestamp("2020-02-14T18:12:22.316Z").unwrap())
        );
        assert_eq!(s.account.as_deref(), Some("123456789012"));
        // The record's `region`, not the ARN's.
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.fields.api.as_deref(), Some("PutRolePolicy"));
        assert_eq!(s.fields.event_source.as_deref(), Some("iam.amazonaws.com"));
        assert!(s.instances.is_empty() && s.actor.is_none());
    }
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn panther_guardduty_attack_sequence_finding() {
    // Line 1, the one finding of the file with a `resource`.
    let text = read_text(&panther("guardduty-test-findings.jsonl"));
    let d = decode_bytes(text.lines().next().unwrap().as_bytes());
    assert_eq!(d.signals.len(), 1, "{:?}", problem_texts(&d));
    let s = &d.signals[0].1;
    assert_eq!(s.kind, "AttackSequence:IAM/CompromisedCredentials");
    assert_eq!(
        s.fields.finding_type.as_deref(),
        Some("AttackSequence:IAM/CompromisedCredentials")
    );
    assert_eq!(
        s.reference,
        RecordRef::FindingArn(
            "arn:aws:guardduty:us-east-1:123456789012:detector/111111bbbbbbbbbb5555555551111111/finding/8c258d654378414b9bc26f61a93eb816".into()
        )
    );
    assert_eq!(s.account.as_deref(), Some("123456789012"));
    // Panther timestamps: `eventLastSeen` "2025-02-25 20:40:06.000000000" is the time,
    // `updatedAt` "2025-02-25 20:40:06.721" the version.
    assert_eq!(s.time, parse_timestamp("2025-02-25T20:40:06Z").unwrap());
    assert_eq!(
        s.updated_at,
        Some(parse_timestamp("2025-02-25T20:40:06.721Z").unwrap())
    );
}

// ---------------------------------------------------------------------------------------------
// samples/

/// Sample files that yield no signal, and why.
const SAMPLES_WITHOUT_SIGNALS: [(&str, Severity, &str); 5] = [
    (
        "asff/BatchImportFindings_response.reconstructed.json",
        Severity::Skipped,
        // An API response ({FailedCount, SuccessCount, FailedFindings[{Id, ErrorCode…}]}),
        // not a finding.
        "not a recognised record: ",
    ),
    (
        "asff/Detection_Sequence.fragment.awsdocs.json",
        Severity::Skipped,
        // Only the `Detection` attribute of an ASFF finding, as the docs print it.
        "not a recognised record: ",
    ),
    // AWS sample findings (`service.additionalInfo.sample: true`): Ignored by design.
    (
        "guardduty/AttackSequence_S3_CompromisedData.sample.panther.json",
        Severity::Ignored,
        "GuardDuty sample finding AttackSequence:S3/CompromisedData",
    ),
    (
        "guardduty/Trojan_EC2_BlackholeTraffic_DNS.sample.elastic.json",
        Severity::Ignored,
        "GuardDuty sample finding Trojan:EC2/BlackholeTraffic!DNS",
    ),
    (
        "guardduty/Trojan_EC2_DGADomainRequest.B.sample.panther-go.json",
        Severity::Ignored,
        "GuardDuty sample finding Trojan:EC2/DGADomainRequest.B",
    ),
];

/// Sample files that hold more than one record.
const SAMPLES_WITH_SEVERAL: [(&str, usize); 2] = [
    ("cloudtrail/S3_logfile_Records.reconstructed.json", 4),
    ("guardduty/GetFindings_response_wire.reconstructed.json", 2),
];

fn sample_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in ["cloudtrail", "guardduty", "asff"] {
        for e in std::fs::read_dir(shared(&format!("samples/{dir}"))).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            out.push((format!("{dir}/{name}"), path));
        }
    }
    out.sort();
    out
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn every_sample_file_decodes() {
    let files = sample_files();
    assert!(files.len() >= 50, "{} sample files", files.len());
    let no_signals: BTreeMap<&str, (Severity, &str)> = SAMPLES_WITHOUT_SIGNALS
        .iter()
        .map(|(f, sev, reason)| (*f, (*sev, *reason)))
        .collect();
    let several: BTreeMap<&str, usize> = SAMPLES_WITH_SEVERAL.into_iter().collect();
    let mut failures = Vec::new();
    for (rel, path) in &files {
        let d = match std::panic::catch_unwind(|| decode_file(path)) {
            Ok(d) => d,
            Err(_) => {
                failures.push(format!("{rel}: decoding panicked"));
                continue;
            }
        };
        if d.not_json.is_some() {
            failures.push(format!("{rel}: not JSON ({:?})", d.not_json));
            continue;
        }
        match no_signals.get(rel.as_str()) {
            Some((severity, reason)) => {
                let ok = d.signals.is_empty()
                    && d.problems.len() == 1
                    && d.problems[0].severity == *severity
                    && d.problems[0].reason.starts_with(reason);
                if !ok {
                    failures.push(format!(
                        "{rel}: expected no signal and one {severity:?} problem {reason:?}, got {} signals, {:?}",
                        d.signals.len(),
                        problem_texts(&d)
                    ));
                }
            }
            None => {
                let want = several.get(rel.as_str()).copied().unwrap_or(1);
                if d.signals.len() != want || !d.problems.is_empty() {
                    failures.push(format!(
                        "{rel}: expected {want} signals and no problem, got {} signals, {:?}",
                        d.signals.len(),
                        problem_texts(&d)
                    ));
                }
            }
        }
    }
    for rel in no_signals.keys().chain(several.keys()) {
        assert!(
            files.iter().any(|(f, _)| f == rel),
            "{rel} is listed but missing"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn sample_records_keep_their_family() {
    // The recognised family of each sample, through whatever container it comes in.
    let mut kinds: BTreeMap<RecordKind, usize> = BTreeMap::new();
    for (rel, path) in sample_files() {
        let d = decode_file(&path);
        for (kind, s) in &d.signals {
            *kinds.entry(*kind).or_default() += 1;
            let want = match kind {
                RecordKind::GuardDuty | RecordKind::GuardDutyEventBridge => Source::GuardDuty,
                RecordKind::Asff | RecordKind::AsffEventBridge => Source::SecurityHub,
                _ => Source::CloudTrail,
            };
            assert_eq!(s.source, want, "{rel}");
            assert!(rel.starts_with(match want {
                Source::GuardDuty => "guardduty/",
                Source::SecurityHub => "asff/",
                Source::CloudTrail => "cloudtrail/",
            }));
        }
    }
    for kind in [
        RecordKind::CloudTrail,
        RecordKind::CloudTrailLookupEvents,
        RecordKind::CloudTrailEventBridge,
        RecordKind::GuardDuty,
        RecordKind::GuardDutyEventBridge,
        RecordKind::Asff,
    ] {
        assert!(
            kinds.contains_key(&kind),
            "no sample decodes as {kind:?}: {kinds:?}"
        );
    }
}
