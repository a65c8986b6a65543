//! `aws.shard = "i/n"`: each shard correlates its accounts only, with a state of its own, and
//! the shards together find what one unsharded run finds.

use std::path::Path;

use serde_json::Value;

use finding_correlator::shard::shard_of;

use crate::common::{correlator, fixture};

/// `correlate --state` over the fixtures as shard `shard` (None: unsharded): its findings.
fn run(shard: Option<&str>, state: &Path) -> Vec<Value> {
    let asff = state.with_extension(format!("{}.asff", shard.unwrap_or("all").replace('/', "-")));
    let mut cmd = correlator();
    if let Some(s) = shard {
        cmd.env("CORRELATOR_AWS_SHARD", s);
    }
    let out = cmd
        .args(["correlate", "--state"])
        .arg(state)
        .arg("--asff")
        .arg(&asff)
        .arg(fixture(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&asff).unwrap()).unwrap();
    doc["Findings"].as_array().unwrap().clone()
}

/// A finding without the times of the run that wrote it.
fn comparable(f: &Value) -> Value {
    let mut f = f.clone();
    for k in ["CreatedAt", "UpdatedAt"] {
        f.as_object_mut().unwrap().remove(k);
    }
    f
}

fn by_id(findings: &[Value]) -> std::collections::BTreeMap<String, Value> {
    findings
        .iter()
        .map(|f| (f["Id"].as_str().unwrap().to_string(), comparable(f)))
        .collect()
}

#[test]
fn the_shards_together_find_what_one_run_finds_each_with_its_own_state() {
    let dir = tempfile::tempdir().unwrap();
    let all = by_id(&run(None, &dir.path().join("all.json")));
    // The fixtures' findings are about three accounts: both splits put them in more than one
    // shard.
    assert!(all.len() >= 10, "{}", all.len());
    for n in [2u32, 3] {
        let mut union = std::collections::BTreeMap::new();
        for i in 1..=n {
            let state = dir.path().join(format!("state-{n}.json"));
            let found = run(Some(&format!("{i}/{n}")), &state);
            assert!(
                dir.path()
                    .join(format!("state-{n}.json.shard-{i}-of-{n}"))
                    .is_file(),
                "shard {i}/{n} saved no state of its own"
            );
            for f in &found {
                let account = f["AwsAccountId"].as_str().unwrap();
                assert_eq!(
                    shard_of(account, n),
                    i,
                    "{account} written by shard {i}/{n}"
                );
            }
            let found = by_id(&found);
            let before = union.len();
            union.extend(found.clone());
            assert_eq!(
                union.len(),
                before + found.len(),
                "two shards wrote one finding"
            );
        }
        assert!(!dir.path().join(format!("state-{n}.json")).exists());
        assert_eq!(union, all, "{n} shards");
    }
}

#[test]
fn a_shard_out_of_range_is_a_configuration_error_naming_the_key() {
    for bad in ["5/4", "0/2", "two"] {
        let out = correlator()
            .env("CORRELATOR_AWS_SHARD", bad)
            .args(["correlate"])
            .arg(fixture("cloudtrail"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("CORRELATOR_AWS_SHARD: aws.shard:"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn state_inspect_of_a_shard_reads_that_shard_s_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    run(Some("2/2"), &state);
    let out = correlator()
        .env("CORRELATOR_AWS_SHARD", "2/2")
        .args(["state", "inspect", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state.json.shard-2-of-2"), "{text}");
}
