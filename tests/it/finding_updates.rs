//! A GuardDuty finding updated again and again (issue 12, item 1): the sequence it belongs to
//! keeps one `Id` and `CreatedAt`, stays one ACTIVE finding, and its `UpdatedAt` moves
//! forward, in one run and in consecutive runs with a state.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{self, correlator};

/// When the cryptomining finding was first seen (`eventFirstSeen` in every version).
pub const FIRST_SEEN: &str = "2025-05-03T07:52:10.000Z";

/// The finding `Id` every run must give the sequence: it opens at the first sighting.
pub const SEQUENCE_ID: &str = "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/shop-asg/2025-05-03T07:52:10.000Z";

/// The scenario's two GuardDuty findings on shop-asg members: cryptomining, then C&C traffic.
fn scenario_findings() -> (Value, Value) {
    let path = common::fixture("scenarios/compromised-instance-group/positive")
        .join("guardduty-get-findings.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let find = |prefix: &str| {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["type"].as_str().unwrap().starts_with(prefix))
            .cloned()
            .unwrap()
    };
    (find("CryptoCurrency:"), find("Backdoor:"))
}

fn at(base: &str, minutes: i64) -> String {
    let t = finding_correlator::time::parse_timestamp(base).unwrap();
    finding_correlator::time::format_rfc3339(t + minutes * 60_000)
}

/// Version `k` (1 to 5) of the cryptomining finding, as GuardDuty updates it over a day:
/// `service.count` is `k`, `eventLastSeen` 5 hours later each time, `updatedAt` just after.
pub fn version(k: i64) -> Value {
    let (mut f, _) = scenario_findings();
    let last = at(FIRST_SEEN, (k - 1) * 300);
    f["service"]["count"] = json!(k);
    f["service"]["eventFirstSeen"] = json!(FIRST_SEEN);
    f["service"]["eventLastSeen"] = json!(last);
    f["updatedAt"] = json!(at(&last, 2));
    f
}

/// The C&C finding on another member of the group, seen once, an hour after the mining began.
pub fn command_and_control() -> Value {
    scenario_findings().1
}

fn write_findings(path: &Path, findings: &[Value]) {
    std::fs::write(path, json!({ "findings": findings }).to_string()).unwrap();
}

fn findings_of(path: &Path) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["Findings"].as_array().cloned().unwrap_or_default()
}

/// `correlate` over `input` (with a state when given); the findings it writes.
fn correlate(input: &Path, state: Option<&Path>, out: &Path) -> Vec<Value> {
    let mut cmd = correlator();
    cmd.arg("correlate").arg("--asff").arg(out);
    if let Some(s) = state {
        cmd.arg("--state").arg(s);
    }
    let run = cmd.arg(input).output().unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    findings_of(out)
}

fn text<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key].as_str().unwrap_or_default()
}

#[test]
fn issue_12_a_finding_updated_five_times_in_one_run_is_one_finding_opened_at_its_first_sighting() {
    let tmp = tempfile::tempdir().unwrap();
    let mut all: Vec<Value> = (1..=5).map(version).collect();
    all.push(command_and_control());
    write_findings(&tmp.path().join("gd.json"), &all);
    let written = correlate(tmp.path(), None, &tmp.path().join("out.json"));
    assert_eq!(written.len(), 1, "{written:#?}");
    let f = &written[0];
    assert_eq!(text(f, "Id"), SEQUENCE_ID);
    assert_eq!(f["Detection"]["Sequence"]["Uid"], SEQUENCE_ID);
    assert_eq!(text(f, "RecordState"), "ACTIVE");
    assert_eq!(text(f, "CreatedAt"), FIRST_SEEN);
    assert_eq!(text(f, "FirstObservedAt"), FIRST_SEEN);
    // The newest version is the evidence: its last sighting, its count.
    let last = text(&version(5)["service"], "eventLastSeen").to_string();
    assert_eq!(text(f, "UpdatedAt"), last);
    assert_eq!(text(f, "LastObservedAt"), last);
    let signals = f["Detection"]["Sequence"]["Signals"].as_array().unwrap();
    assert_eq!(signals.len(), 2, "one signal per finding: {signals:#?}");
    assert!(
        signals.iter().any(|s| s["Count"] == 5),
        "the newest count: {signals:#?}"
    );
}

#[test]
fn issue_12_a_finding_updated_five_times_over_split_runs_keeps_one_id_and_moves_updated_at() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let mut written: Vec<Value> = Vec::new();
    for k in 1..=5 {
        let dir = tmp.path().join(format!("run{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut input = vec![version(k)];
        if k == 1 {
            input.push(command_and_control());
        }
        write_findings(&dir.join("gd.json"), &input);
        let out = correlate(&dir, Some(&state), &tmp.path().join(format!("out{k}.json")));
        assert_eq!(out.len(), 1, "run {k} writes the one finding: {out:#?}");
        written.extend(out);
    }
    for (k, f) in written.iter().enumerate() {
        assert_eq!(text(f, "Id"), SEQUENCE_ID, "run {}", k + 1);
        assert_eq!(text(f, "RecordState"), "ACTIVE", "run {}", k + 1);
        assert_eq!(text(f, "CreatedAt"), FIRST_SEEN, "run {}", k + 1);
    }
    for w in written.windows(2) {
        assert!(
            text(&w[1], "UpdatedAt") > text(&w[0], "UpdatedAt"),
            "UpdatedAt moves forward: {} then {}",
            w[0]["UpdatedAt"],
            w[1]["UpdatedAt"]
        );
        assert!(text(&w[1], "LastObservedAt") > text(&w[0], "LastObservedAt"));
    }

    // The last version written is what one run over every version writes.
    let whole = tmp.path().join("whole");
    std::fs::create_dir_all(&whole).unwrap();
    let mut all: Vec<Value> = (1..=5).map(version).collect();
    all.push(command_and_control());
    write_findings(&whole.join("gd.json"), &all);
    let one = correlate(&whole, None, &tmp.path().join("whole.json"));
    assert_eq!(written.last(), one.first());

    // A sixth run with nothing new writes nothing.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    write_findings(&empty.join("gd.json"), &[version(5)]);
    assert!(correlate(&empty, Some(&state), &tmp.path().join("again.json")).is_empty());
}

/// Version `k` of the cryptomining finding as Security Hub imports it: its `Id` is the
/// finding ARN; `FirstObservedAt` is left out, as some integrations do.
fn security_hub_copy(k: i64) -> Value {
    let gd = version(k);
    let details = &gd["resource"]["instanceDetails"];
    let tags: serde_json::Map<String, Value> = details["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (text(t, "key").to_string(), t["value"].clone()))
        .collect();
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": gd["arn"],
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0",
        "AwsAccountId": "111122223333",
        "Region": "us-east-1",
        "Types": ["TTPs/Command and Control/CryptoCurrency:EC2-BitcoinTool.B!DNS"],
        "ProductFields": {"aws/guardduty/service/count": k.to_string()},
        "LastObservedAt": gd["service"]["eventLastSeen"],
        "CreatedAt": gd["createdAt"],
        "UpdatedAt": gd["updatedAt"],
        "Severity": {"Label": "HIGH", "Normalized": 80},
        "Title": gd["title"],
        "Description": gd["description"],
        "Resources": [{
            "Type": "AwsEc2Instance",
            "Id": format!("arn:aws:ec2:us-east-1:111122223333:instance/{}", text(details, "instanceId")),
            "Region": "us-east-1",
            "Tags": tags,
            "Details": {"AwsEc2Instance": {"Type": details["instanceType"], "ImageId": details["imageId"]}}
        }],
        "RecordState": "ACTIVE"
    })
}

#[test]
fn issue_12_the_same_finding_through_security_hub_with_other_timestamps_keeps_the_id() {
    // Run 1 reads GuardDuty; run 2 reads the updated finding from Security Hub, whose copy
    // tells no first sighting: the sequence it goes on with keeps its Id and CreatedAt.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run1 = tmp.path().join("run1");
    let run2 = tmp.path().join("run2");
    std::fs::create_dir_all(&run1).unwrap();
    std::fs::create_dir_all(&run2).unwrap();
    write_findings(&run1.join("gd.json"), &[version(1), command_and_control()]);
    std::fs::write(
        run2.join("sh.json"),
        json!({ "Findings": [security_hub_copy(3)] }).to_string(),
    )
    .unwrap();
    let first = correlate(&run1, Some(&state), &tmp.path().join("out1.json"));
    let second = correlate(&run2, Some(&state), &tmp.path().join("out2.json"));
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(second.len(), 1, "{second:#?}");
    let (a, b) = (&first[0], &second[0]);
    assert_eq!(text(a, "Id"), SEQUENCE_ID);
    assert_eq!(text(b, "Id"), SEQUENCE_ID, "not superseded");
    assert_eq!(b["Detection"]["Sequence"]["Uid"], SEQUENCE_ID);
    assert_eq!(text(b, "RecordState"), "ACTIVE");
    assert_eq!(text(b, "CreatedAt"), FIRST_SEEN);
    assert!(text(b, "UpdatedAt") > text(a, "UpdatedAt"));
    assert_eq!(
        text(b, "LastObservedAt"),
        text(&version(3)["service"], "eventLastSeen")
    );
}

#[test]
fn issue_12_a_finding_first_seen_long_ago_and_still_active_counts_in_today_s_window() {
    // The mining finding was first seen 30 days before the C&C finding and is still active:
    // matched at its last sighting, it joins today's C&C finding; the sequence's evidence
    // begins at its first sighting.
    let tmp = tempfile::tempdir().unwrap();
    let mut old = version(1);
    let c2 = command_and_control();
    let c2_last = text(&c2["service"], "eventLastSeen").to_string();
    let long_ago = at(FIRST_SEEN, -30 * 24 * 60);
    old["service"]["eventFirstSeen"] = json!(long_ago);
    old["service"]["eventLastSeen"] = json!(at(&c2_last, 30));
    old["service"]["count"] = json!(4000);
    old["updatedAt"] = json!(at(&c2_last, 32));
    write_findings(&tmp.path().join("gd.json"), &[old, c2]);
    let written = correlate(tmp.path(), None, &tmp.path().join("out.json"));
    assert_eq!(written.len(), 1, "{written:#?}");
    let f = &written[0];
    assert_eq!(text(f, "CreatedAt"), long_ago);
    assert!(
        text(f, "Id").ends_with(&format!("/shop-asg/{long_ago}")),
        "{f:#}"
    );
}

#[test]
fn issue_12_an_update_past_the_window_of_the_other_signals_does_not_archive_the_finding() {
    // Run 1 writes the sequence of the mining and C&C findings. Run 2 reads the mining
    // finding last seen two days later, beyond the rule's 24-hour window from the C&C one. A
    // finding is evidence over its whole span, so the mining went on through the C&C traffic:
    // the same finding is updated in place (same Id, ACTIVE, observed until the new last
    // sighting), and nothing is archived.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run1 = tmp.path().join("run1");
    let run2 = tmp.path().join("run2");
    std::fs::create_dir_all(&run1).unwrap();
    std::fs::create_dir_all(&run2).unwrap();
    write_findings(&run1.join("gd.json"), &[version(1), command_and_control()]);
    let mut late = version(5);
    late["service"]["eventLastSeen"] = json!(at(FIRST_SEEN, 48 * 60));
    late["updatedAt"] = json!(at(FIRST_SEEN, 48 * 60 + 2));
    write_findings(&run2.join("gd.json"), &[late]);
    let first = correlate(&run1, Some(&state), &tmp.path().join("out1.json"));
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(text(&first[0], "Id"), SEQUENCE_ID);
    let second = correlate(&run2, Some(&state), &tmp.path().join("out2.json"));
    assert_eq!(second.len(), 1, "one update: {second:#?}");
    assert_eq!(text(&second[0], "Id"), SEQUENCE_ID);
    assert_eq!(text(&second[0], "RecordState"), "ACTIVE");
    assert_eq!(text(&second[0], "CreatedAt"), text(&first[0], "CreatedAt"));
    assert_eq!(text(&second[0], "LastObservedAt"), at(FIRST_SEEN, 48 * 60));

    // Run 3: new C&C traffic from the group near the mining finding's last sighting: the
    // sequence forms again, under the Id it was written with.
    let run3 = tmp.path().join("run3");
    std::fs::create_dir_all(&run3).unwrap();
    let mut c2 = command_and_control();
    let id = "0123456789abcdef0123456789abcdef";
    let arn = text(&c2, "arn").rsplit_once('/').unwrap().0.to_string();
    c2["id"] = json!(id);
    c2["arn"] = json!(format!("{arn}/{id}"));
    c2["service"]["eventFirstSeen"] = json!(at(FIRST_SEEN, 47 * 60));
    c2["service"]["eventLastSeen"] = json!(at(FIRST_SEEN, 47 * 60));
    c2["updatedAt"] = json!(at(FIRST_SEEN, 47 * 60 + 2));
    write_findings(&run3.join("gd.json"), &[c2]);
    let third = correlate(&run3, Some(&state), &tmp.path().join("out3.json"));
    assert_eq!(third.len(), 1, "{third:#?}");
    assert_eq!(text(&third[0], "Id"), SEQUENCE_ID);
    assert_eq!(text(&third[0], "RecordState"), "ACTIVE");
    assert!(text(&third[0], "UpdatedAt") > text(&second[0], "UpdatedAt"));
}

/// Runs `correlate` with a state over `runs` (the records of each run) through the library;
/// every finding each run writes, in order.
fn split_runs(tmp: &Path, runs: &[Vec<Value>]) -> Vec<Value> {
    use finding_correlator::config::Config;
    use finding_correlator::state::State;
    use finding_correlator::{incremental, pipeline, rules::RuleSet, sinks::asff::Writer};
    let settings = Config::default().validate().unwrap();
    let rules = std::sync::Arc::new(RuleSet::builtin().unwrap());
    // The first run starts from an empty state, as `correlate --state` does.
    let mut state: Option<State> = Some(State::new());
    let mut written = Vec::new();
    for (i, records) in runs.iter().enumerate() {
        let dir = tmp.join(format!("run{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_findings(&dir.join("gd.json"), records);
        let run = pipeline::correlate(&[dir], &settings, rules.clone(), false, state.as_ref());
        let (next, changes) =
            incremental::advance(state.as_ref(), &run, &rules, &settings, &Writer::default());
        written.extend(
            changes
                .write
                .iter()
                .map(finding_correlator::state::KeptFinding::value),
        );
        let text = String::from_utf8(next.to_json()).unwrap();
        state = Some(State::from_json(&text, "test").unwrap());
    }
    written
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// However the five versions and the C&C finding are spread over runs (an older version
    /// read again after a newer one, several versions in one run), every finding written is
    /// the one sequence, ACTIVE, with `UpdatedAt` moving forward, and the last one written is
    /// what one run over everything writes.
    #[test]
    fn issue_12_versions_spread_over_runs_in_any_order_write_one_finding(
        runs_of in proptest::collection::vec(0usize..4, 6),
    ) {
        let records: Vec<Value> = (1..=5).map(version).chain([command_and_control()]).collect();
        let mut runs = vec![Vec::new(); 4];
        for (r, v) in runs_of.iter().zip(&records) {
            runs[*r].push(v.clone());
        }
        let tmp = tempfile::tempdir().unwrap();
        let written = split_runs(&tmp.path().join("split"), &runs);
        let whole = split_runs(&tmp.path().join("whole"), &[records]);
        proptest::prop_assert_eq!(whole.len(), 1);
        proptest::prop_assert!(!written.is_empty());
        for f in &written {
            proptest::prop_assert_eq!(text(f, "Id"), SEQUENCE_ID);
            proptest::prop_assert_eq!(text(f, "RecordState"), "ACTIVE");
            proptest::prop_assert_eq!(text(f, "CreatedAt"), FIRST_SEEN);
        }
        for w in written.windows(2) {
            proptest::prop_assert!(text(&w[1], "UpdatedAt") > text(&w[0], "UpdatedAt"));
        }
        proptest::prop_assert_eq!(written.last(), whole.first());
    }
}

/// A malicious-execution finding on the C&C member, seen once, half an hour after the C&C.
fn execution() -> Value {
    let mut f = command_and_control();
    let id = "fedcba9876543210fedcba9876543210";
    let arn = text(&f, "arn").rsplit_once('/').unwrap().0.to_string();
    f["id"] = json!(id);
    f["arn"] = json!(format!("{arn}/{id}"));
    f["type"] = json!("Execution:Runtime/NewBinaryExecuted");
    let c2_last = text(&f["service"], "eventLastSeen").to_string();
    f["service"]["eventFirstSeen"] = json!(at(&c2_last, 30));
    f["service"]["eventLastSeen"] = json!(at(&c2_last, 30));
    f["updatedAt"] = json!(at(&c2_last, 32));
    f
}

#[test]
fn issue_13_one_run_over_the_newest_version_opens_where_runs_that_read_the_first_did() {
    // The C&C and execution findings form a sequence on their own; the mining finding, first
    // seen an hour before them, was read by the first of two runs in its first version and is
    // in one run only in its fifth (last seen 20 hours on). A finding counts from its first
    // sighting whichever version is read, so one run and the two runs both open the sequence
    // at the mining's first sighting: one Id, one ACTIVE finding. (Before, one run placed the
    // mining finding at its last sighting, opened at the C&C and wrote another Id.)
    let tmp = tempfile::tempdir().unwrap();
    let one_dir = tmp.path().join("one");
    std::fs::create_dir_all(&one_dir).unwrap();
    write_findings(
        &one_dir.join("gd.json"),
        &[version(5), command_and_control(), execution()],
    );
    let one = correlate(&one_dir, None, &tmp.path().join("one.json"));
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!(text(&one[0], "Id"), SEQUENCE_ID);
    assert_eq!(text(&one[0], "CreatedAt"), FIRST_SEEN);

    let split = split_runs(
        tmp.path(),
        &[
            vec![version(1), command_and_control(), execution()],
            vec![version(5)],
        ],
    );
    let active: Vec<&str> = split
        .iter()
        .filter(|f| text(f, "RecordState") == "ACTIVE")
        .map(|f| text(f, "Id"))
        .collect();
    assert!(
        active.iter().all(|id| *id == SEQUENCE_ID),
        "only the one run's Id is written: {split:#?}"
    );
    assert!(split.iter().all(|f| text(f, "RecordState") == "ACTIVE"));
    let last = split.last().unwrap();
    assert_eq!(
        text(last, "LastObservedAt"),
        text(&one[0], "LastObservedAt")
    );
}
