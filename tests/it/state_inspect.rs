//! `correlator state inspect`: what a saved state holds, by part, read without a lock.

use serde_json::Value;

use crate::common::{correlator, fixture};

/// A state saved by `correlate --state` over the shipped fixtures, and the run's stderr.
fn saved_state(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let state = dir.join("state.json");
    let out = correlator()
        .args(["correlate", "--state"])
        .arg(&state)
        .arg(fixture(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (state, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn inspect_json(state: &std::path::Path) -> Value {
    let out = correlator()
        .args(["state", "inspect", "--format", "json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn part<'a>(found: &'a Value, name: &str) -> &'a Value {
    found["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no part {name} in {found}"))
}

#[test]
fn inspect_counts_what_the_run_saved_and_the_parts_add_up_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (state, stderr) = saved_state(dir.path());
    let found = inspect_json(&state);

    let doc: Value = crate::common::state_value(&std::fs::read(&state).unwrap());
    assert_eq!(found["bytes"], std::fs::metadata(&state).unwrap().len());
    for (name, key) in [
        ("signals", "signals"),
        ("graph", "graph"),
        ("sequences", "sequences"),
        ("checkpoints", "checkpoints"),
    ] {
        let items = doc[key]
            .as_array()
            .map(Vec::len)
            .or_else(|| doc[key].as_object().map(serde_json::Map::len))
            .unwrap();
        assert_eq!(part(&found, name)["items"], items, "{name}");
        // Each part weighs what its own encoding takes in the file.
        assert_eq!(
            part(&found, name)["bytes"],
            serde_json::to_vec(&doc[key]).unwrap().len(),
            "{name}"
        );
    }
    // The same counts the run's summary gave.
    let graph = part(&found, "graph")["items"].as_u64().unwrap();
    assert!(
        stderr.contains(&format!("{graph} graph statement(s)")),
        "{stderr}"
    );
    // The parts are the whole document but for its header fields.
    let sum: u64 = found["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bytes"].as_u64().unwrap())
        .sum();
    let total = found["document_bytes"].as_u64().unwrap();
    assert_eq!(total, serde_json::to_vec(&doc).unwrap().len() as u64 + 1);
    assert!(sum < total && total - sum < 400, "parts {sum} of {total}");
    // Saved compressed: the file is a fraction of its document.
    assert!(
        found["bytes"].as_u64().unwrap() * 3 < total,
        "{} saved for a document of {total}",
        found["bytes"]
    );
}

#[test]
fn inspect_text_names_each_part_and_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = saved_state(dir.path());
    let out = correlator()
        .args(["state", "inspect", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let version = format!("version {}", finding_correlator::state::VERSION);
    for want in [
        version.as_str(),
        "signals",
        "ec2.amazonaws.com:RunInstances",
        "launches (who launched which instance into which group)",
        "compromised-instance-group (open): 1 sequence",
        "baselines",
        "cloudtrail: 295 records read",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
}

#[test]
fn inspect_names_terminations_among_the_graph_statements() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ct.jsonl");
    let record = serde_json::json!({
        "eventVersion": "1.10",
        "eventTime": "2025-05-01T06:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "TerminateInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": "777788880023",
        "eventID": "23000000-0000-4000-8000-000000000001",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEASGSLR0023:AutoScaling",
            "arn": "arn:aws:sts::777788880023:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
            "accountId": "777788880023",
            "invokedBy": "autoscaling.amazonaws.com"
        },
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0230000000000000a"}]}}
    });
    std::fs::write(&input, format!("{record}\n")).unwrap();
    let state = dir.path().join("state.json");
    correlator()
        .args(["correlate", "--state"])
        .arg(&state)
        .arg(&input)
        .assert()
        .success();
    let out = correlator()
        .args(["state", "inspect", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("terminations (instances ended, let go `terminated_retention` after): 1"),
        "{text}"
    );
}

#[test]
fn inspect_takes_no_lock_so_it_reads_a_state_a_run_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = saved_state(dir.path());
    // A run holds the lock: it is taken with the same call runs use.
    let store = finding_correlator::state::FileStore::new(&state);
    let _held = store.lock().unwrap();
    let found = inspect_json(&state);
    assert!(part(&found, "graph")["items"].as_u64().unwrap() > 0);
}

#[test]
fn a_missing_or_damaged_state_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let out = correlator()
        .args(["state", "inspect", "--state"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none.json") && err.contains("there is none"),
        "{err}"
    );

    let damaged = dir.path().join("damaged.json");
    std::fs::write(
        &damaged,
        br#"{"format":"finding-correlator-state","version":6,"#,
    )
    .unwrap();
    let out = correlator()
        .args(["state", "inspect", "--state"])
        .arg(&damaged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged.json"), "{err}");
}

/// The README's figures for the shipped fixtures' state, as `state inspect` gives them: the
/// graph statements 78 % of the document (252 launches), the carried windows 5 % (11 groups,
/// 16 signals), 34.0 kB saved for a 380 kB document. If the fixtures change, so must the
/// README.
#[test]
fn the_readme_figures_of_the_fixtures_state_are_what_inspect_says() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = saved_state(dir.path());
    let found = inspect_json(&state);
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let share = |name: &str| {
        let p = part(&found, name);
        (100.0 * p["bytes"].as_f64().unwrap() / found["document_bytes"].as_f64().unwrap()).round()
    };
    let detail = |name: &str, what: &str| -> String {
        part(&found, name)["detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d[0].as_str().unwrap().starts_with(what))
            .map(|d| d[1].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {what} in {name}"))
    };
    let launches = detail("graph", "launches");
    let carried = part(&found, "carried");
    let held = detail("carried", "signals held");
    let saved = format!("{:.1} kB", found["bytes"].as_f64().unwrap() / 1000.0);
    let document = format!(
        "{:.0} kB",
        found["document_bytes"].as_f64().unwrap() / 1000.0
    );
    let said = format!(
        "statements are {} % of the document ({} launches), the carried windows {} % ({} groups, {} signals), and the state is {saved} saved for a {document} document",
        share("graph"),
        launches.trim_end_matches(" statements"),
        share("carried"),
        carried["items"],
        held.trim_end_matches(" signals"),
    );
    // Compared with its lines joined, however the README wraps them.
    let joined = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(joined.contains(&said), "the README should say:\n{said}");
}
