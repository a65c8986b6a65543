//! The `correlator` binary: what goes to stdout and stderr, formats, and exit codes
//! (0 success, 1 something skipped, 2 usage or config error, 3 could not run).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{correlator, fixture};

/// The binary, run from the repository root, with no configuration from the environment.
const MAIN_SCENARIO: [&str; 3] = ["fixtures/asff", "fixtures/cloudtrail", "fixtures/guardduty"];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary. The argument `fixtures/` stands for the main scenario: the input-shape
/// fixtures (not the per-rule scenarios of `fixtures/scenarios/`).
fn run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut expanded: Vec<&OsStr> = Vec::new();
    for a in args {
        if a.as_ref() == OsStr::new("fixtures/") {
            for d in MAIN_SCENARIO {
                expanded.push(OsStr::new(d));
            }
        } else {
            expanded.push(a.as_ref());
        }
    }
    let out = correlator().args(&expanded).output().unwrap();
    Run {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Parses the whole of stdout as one JSON document (nothing else may be on it).
fn graph_json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{}", r.stdout))
}

fn node_ids(doc: &Value) -> Vec<&str> {
    doc["elements"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["data"]["id"].as_str().unwrap())
        .collect()
}

fn count_kind(doc: &Value, what: &str, kind: &str) -> usize {
    doc["elements"][what]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["data"]["kind"] == kind)
        .count()
}

fn tmp_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn graph_of_the_fixtures_writes_json_to_stdout_and_the_summary_to_stderr() {
    let r = run(&["graph", "fixtures/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = graph_json(&r);
    let ids = node_ids(&doc);
    for id in [
        "instance:i-0aaaaaaaaaaaaaaa1",
        "instance:i-0bbbbbbbbbbbbbbb6",
        "principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1",
    ] {
        assert!(ids.contains(&id), "{id} missing");
    }
    assert_eq!(count_kind(&doc, "nodes", "signal"), 28);
    assert_eq!(count_kind(&doc, "nodes", "instance_group"), 4);
    // The summary: files read, records per kind, groups.
    for line in [
        "read 15 file(s) (2 gzip), ",
        " 30 record(s) decoded",
        "  asff: 3\n",
        "  cloudtrail: 16\n",
        "  cloudtrail (EventBridge): 1\n",
        "  cloudtrail (LookupEvents): 2\n",
        "  guardduty: 7\n",
        "  guardduty (EventBridge): 1\n",
        "signals: 28 distinct",
        "skipped: 0\n",
        "4 instance group(s)\n",
        "  auto_scaling_group/web-asg (3 member(s)): i-0aaaaaaaaaaaaaaa1, i-0aaaaaaaaaaaaaaa2, i-0aaaaaaaaaaaaaaa3\n",
        "  auto_scaling_group/batch-asg (2 member(s)): i-0ccccccccccccccc1, i-0ccccccccccccccc2\n",
        "  ami/ami-0c0ffee0c0ffee000 (6 member(s)): ",
        "  ami/ami-0d1d2d3d4d5d6d7d8 (1 member(s)): i-0ddddddddddddddd1\n",
    ] {
        assert!(
            r.stderr.contains(line),
            "{line:?} not in stderr:\n{}",
            r.stderr
        );
    }
    assert!(!r.stdout.contains("read 15 file(s)"));
}

#[test]
fn format_dot_writes_graphviz() {
    let r = run(&["graph", "--format", "dot", "fixtures/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("digraph entities {\n"), "{}", r.stdout);
    assert!(r.stdout.ends_with("}\n"));
    assert!(r.stdout.contains("subgraph cluster_"));
    assert!(r.stdout.contains(
        "\"principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1\" -> \"instance:i-0aaaaaaaaaaaaaaa1\""
    ));
    assert!(serde_json::from_str::<Value>(&r.stdout).is_err());
}

#[test]
fn output_file_format_follows_its_extension_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("graph.dot");
    let json = dir.path().join("graph.json");
    let other = dir.path().join("graph.out");
    let forced = dir.path().join("forced.dot");
    for (path, extra) in [
        (&dot, None),
        (&json, None),
        (&other, None),
        (&forced, Some("json")),
    ] {
        let mut args: Vec<&OsStr> = vec![OsStr::new("graph"), OsStr::new("--output")];
        args.push(path.as_os_str());
        if let Some(f) = extra {
            args.extend([OsStr::new("--format"), OsStr::new(f)]);
        }
        args.push(OsStr::new("fixtures/"));
        let r = run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
        assert!(r.stderr.contains("4 instance group(s)"), "{}", r.stderr);
    }
    assert!(
        fs::read_to_string(&dot)
            .unwrap()
            .starts_with("digraph entities {")
    );
    for p in [&json, &other, &forced] {
        let text = fs::read_to_string(p).unwrap();
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
        assert!(doc["elements"]["nodes"].is_array(), "{}", p.display());
    }
}

#[test]
fn no_signals_leaves_out_signal_nodes() {
    let r = run(&["graph", "--no-signals", "fixtures/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = graph_json(&r);
    assert_eq!(count_kind(&doc, "nodes", "signal"), 0);
    assert_eq!(count_kind(&doc, "edges", "observed_on"), 0);
    assert_eq!(count_kind(&doc, "nodes", "instance_group"), 4);
    assert!(count_kind(&doc, "edges", "launched_by") >= 12);
    // Signals are still counted.
    assert!(r.stderr.contains("signals: 28 distinct"), "{}", r.stderr);
}

#[test]
fn log_format_json_writes_log_lines_as_json_objects() {
    // The whole fixtures folder (per-rule scenarios included), whose README is noted.
    let r = run(&["--log-format", "json", "graph", "fixtures"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let logs: Vec<Value> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(logs.len() >= 2, "{}", r.stderr);
    for l in &logs {
        assert!(l.is_object() && l.get("level").is_some(), "{l}");
    }
    // The README in the folder is noted, with the file as a field.
    assert!(
        logs.iter()
            .any(|l| l["fields"]["file"] == "fixtures/README.md"),
        "{}",
        r.stderr
    );
    // The text log format has no JSON lines; the summary is text either way.
    assert!(r.stderr.contains(" instance group(s)"));
    let text = run(&["graph", "fixtures/"]);
    assert!(
        !text.stderr.lines().any(|l| l.starts_with('{')),
        "{}",
        text.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["graph", "--bogus", "fixtures/"],
        vec!["graph"],
        vec![],
        vec!["frobnicate", "fixtures/"],
        vec!["graph", "--format", "svg", "fixtures/"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
    let r = run(&["graph"]);
    assert!(r.stderr.contains("<PATH>"), "{}", r.stderr);
    let r = run(&["graph", "--bogus", "fixtures/"]);
    assert!(r.stderr.contains("--bogus"), "{}", r.stderr);
}

#[test]
fn a_bad_config_file_exits_2_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = tmp_file(dir.path(), "unknown.toml", "[graph]\ngroup_by = \"asg\"\n");
    let r = run(&[
        OsStr::new("--config"),
        unknown.as_os_str(),
        OsStr::new("graph"),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("unknown field `group_by`") && r.stderr.contains("line 2"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown.toml"), "{}", r.stderr);
    // Valid TOML, invalid setting.
    let invalid = tmp_file(
        dir.path(),
        "invalid.toml",
        "[graph]\ngroup_key_precedence = [\"asg\"]\n",
    );
    let r = run(&[
        OsStr::new("--config"),
        invalid.as_os_str(),
        OsStr::new("graph"),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown key `asg`"), "{}", r.stderr);
    // A config file that does not exist.
    let r = run(&[
        OsStr::new("--config"),
        dir.path().join("missing.toml").as_os_str(),
        OsStr::new("graph"),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("missing.toml"), "{}", r.stderr);
    // The same through the environment.
    let out = correlator()
        .env("CORRELATOR_CONFIG", &unknown)
        .args(["graph", "fixtures/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_config_file_changes_the_grouping() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tmp_file(
        dir.path(),
        "c.toml",
        "[input]\nthreads = 1\n[graph]\ngroup_key_precedence = [\"instance_profile\", \"vpc\"]\n",
    );
    let r = run(&[
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("graph"),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "  instance_profile/web-instance-profile (3 member(s)): i-0aaaaaaaaaaaaaaa1, i-0aaaaaaaaaaaaaaa2, i-0aaaaaaaaaaaaaaa3\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bad_file_among_the_inputs_exits_1_and_the_good_records_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = tmp_file(
        dir.path(),
        "bad.jsonl",
        "{\"eventVersion\":\"1.10\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"RunInstances\"}\n",
    );
    let good = fixture("cloudtrail/records.jsonl");
    let r = run(&[OsStr::new("graph"), bad.as_os_str(), good.as_os_str()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = graph_json(&r);
    let ids = node_ids(&doc);
    for id in [
        "instance:i-0ccccccccccccccc1",
        "instance:i-0ccccccccccccccc2",
        "instance:i-0ddddddddddddddd1",
    ] {
        assert!(ids.contains(&id), "{id} missing");
    }
    assert!(
        r.stderr.contains("missing field `eventTime`") && r.stderr.contains("bad.jsonl"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("skipped: 1\n"), "{}", r.stderr);
    assert!(r.stderr.contains("  cloudtrail: 4\n"), "{}", r.stderr);
}

#[test]
fn an_output_file_that_cannot_be_created_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-dir").join("graph.json");
    let r = run(&[
        OsStr::new("graph"),
        OsStr::new("--output"),
        out.as_os_str(),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains(&out.display().to_string()),
        "the message names the file: {}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn a_nonexistent_input_path_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("trail.json");
    let good = fixture("cloudtrail/records.jsonl");
    let r = run(&[OsStr::new("graph"), missing.as_os_str(), good.as_os_str()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&missing.display().to_string()),
        "{}",
        r.stderr
    );
    // The other input is still read.
    assert!(node_ids(&graph_json(&r)).contains(&"instance:i-0ddddddddddddddd1"));
}

#[test]
fn version() {
    let r = run(&["--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("correlator {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------------------------
// correlate and rules.

#[test]
fn correlate_writes_findings_to_stdout_and_a_json_summary_as_the_last_stderr_line() {
    let r = run(&["correlate", "--asff", "-", "--summary", "json", "fixtures/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("stdout is one JSON document");
    let findings = doc["Findings"].as_array().expect("{\"Findings\":[…]}");
    let ids: Vec<&str> = findings.iter().map(|f| f["Id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        // One attack, one finding (issue 14): the launch sequence is rolled into it.
        vec![
            "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:01:27.000Z",
        ]
    );
    for f in findings {
        assert_eq!(f["AwsAccountId"], "111122223333");
        assert_eq!(f["Resources"][0]["Type"], "AwsAutoScalingAutoScalingGroup");
        assert_eq!(f["Resources"][0]["Id"], "web-asg");
    }
    let last = r.stderr.lines().last().unwrap();
    let summary: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    let seqs = summary["correlate"]["sequences"].as_array().unwrap();
    assert_eq!(seqs.len(), 1);
    assert_eq!(
        seqs[0]["absorbed"][0]["rule"],
        "instance-credentials-launch-compute"
    );
    let rollup = &summary["correlate"]["rollup"];
    assert_eq!(rollup["findings_out"], 1, "{rollup}");
    assert_eq!(rollup["sequences_absorbed"], 1, "{rollup}");
    assert!(rollup["signals_in"].as_u64().unwrap() >= 13, "{rollup}");
    assert!(
        summary["correlate"]["weak_signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["rule"] == "failed-compute-launch"
                && w["group"] == "principal/AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1"),
        "{last}"
    );
    assert_eq!(summary["read"]["skipped"], 0);
}

#[test]
fn correlate_account_names_the_writer_and_the_text_summary_lists_sequences() {
    let r = run(&[
        "correlate",
        "--asff",
        "-",
        "--account",
        "999988887777",
        "fixtures/",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    for f in doc["Findings"].as_array().unwrap() {
        assert_eq!(f["AwsAccountId"], "999988887777");
        assert!(
            f["ProductArn"]
                .as_str()
                .unwrap()
                .ends_with(":999988887777:product/999988887777/default")
        );
        assert_eq!(
            f["ProductFields"]["finding-correlator/affected-account"],
            "111122223333"
        );
    }
    assert!(r.stderr.contains("attack sequences: 1\n"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "\n    absorbed HIGH     instance-credentials-launch-compute  auto_scaling_group/web-asg  5 signal(s)\none finding per attack: "
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(" 1 finding(s) out, 1 sequence(s) absorbed\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("  CRITICAL compromised-instance-group  auto_scaling_group/web-asg  3 member(s), 6 launched"),
        "{}",
        r.stderr
    );
    let bad = run(&["correlate", "--account", "12345", "fixtures/"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("expected a 12-digit AWS account id"),
        "{}",
        bad.stderr
    );
}

#[test]
fn correlate_with_a_broken_rules_folder_exits_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "id: broken\ntitle: t\ndescription: d\nseverity: HIGH\ntypes: [\"TTPs\"]\nrunbook: r\nstages:\n  - name: s\n    select: {events: [RunInstances]}\ngroup_by: principal\nwindow: 1 hour\ncondition: {require: [s]}\n",
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let r = run(&["correlate", "--rules", rules, "fixtures/"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("broken.yaml:11:9: window: expected a duration like"),
        "{}",
        r.stderr
    );
    let check = run(&["rules", "check", "--rules", rules]);
    assert_eq!(check.code, 2);
    let good = run(&["rules", "check"]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert!(good.stderr.contains("7 rule(s) valid"), "{}", good.stderr);
    let tests = run(&["rules", "test"]);
    assert_eq!(tests.code, 0, "{}", tests.stderr);
    assert!(
        tests.stderr.contains(" passed, 0 failed"),
        "{}",
        tests.stderr
    );
}

#[test]
fn correlate_graph_and_asff_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let asff = dir.path().join("findings.json");
    let graph = dir.path().join("graph.dot");
    let r = run(&[
        OsStr::new("correlate"),
        OsStr::new("--asff"),
        asff.as_os_str(),
        OsStr::new("--graph"),
        graph.as_os_str(),
        OsStr::new("fixtures/"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "stdout stays free: {}", r.stdout);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&asff).unwrap()).unwrap();
    assert_eq!(doc["Findings"].as_array().unwrap().len(), 1);
    let dot = std::fs::read_to_string(&graph).unwrap();
    assert!(dot.starts_with("digraph"), "{}", &dot[..40.min(dot.len())]);
    assert!(
        dot.contains("signal:"),
        "correlate --graph keeps signal nodes"
    );
}

// ---------------------------------------------------------------------------------------------
// issue 12: validate, partitions, leftovers.

#[test]
fn issue_12_no_environment_variable_outside_the_configuration_drops_signals() {
    // `XX_MODE=drop` once made every signal vanish with exit 0.
    let out = correlator()
        .env("XX_MODE", "drop")
        .args(["correlate", "--asff", "-"])
        .args(MAIN_SCENARIO)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The main scenario's one attack, rolled up into one finding.
    assert_eq!(doc["Findings"].as_array().unwrap().len(), 1);
}

#[test]
fn issue_12_validate_checks_region_names_and_locations_without_aws() {
    let validate = |vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = correlator();
        // Any AWS call would fail: nothing listens there.
        cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("CORRELATOR_STATE");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Not a region: an error naming the variable and the key.
    let (code, err) = validate(
        &[("CORRELATOR_AWS_REGIONS", "us-east-1,eu-west1")],
        &["validate"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("CORRELATOR_AWS_REGIONS: aws.regions: \"eu-west1\" is not a region name"),
        "{err}"
    );
    // In a file: the file and the key.
    let dir = tempfile::tempdir().unwrap();
    let config = tmp_file(dir.path(), "c.toml", "[aws]\nregions = [\"Europe\"]\n");
    let (code, err) = validate(&[], &["--config", config.to_str().unwrap(), "validate"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("`{}`: aws.regions: \"Europe\"", config.display())),
        "{err}"
    );
    // Plausible but newer than this build: valid, with a warning.
    let (code, err) = validate(
        &[("CORRELATOR_AWS_REGIONS", "ap-southeast-9")],
        &["validate"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("configuration valid with 1 warning(s)"),
        "{err}"
    );
    assert!(
        err.contains("\"ap-southeast-9\" is not a region this build knows"),
        "{err}"
    );
    assert!(err.contains("partition: aws\n"), "{err}");
    // The partition follows from the names.
    let (code, err) = validate(
        &[("CORRELATOR_AWS_REGIONS", "cn-north-1,cn-northwest-1")],
        &["validate"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("partition: aws-cn\n"), "{err}");
    let (code, err) = validate(
        &[("CORRELATOR_AWS_REGIONS", "us-gov-west-1,us-east-1")],
        &["validate"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("regions of several partitions"), "{err}");
    // Near-misses of s3:// are errors, not local paths.
    for bad in [
        "s3:/bucket/state.json",
        "S3://bucket/state.json",
        "s3//bucket/state.json",
    ] {
        let (code, err) = validate(&[("CORRELATOR_AWS_STATE", bad)], &["validate"]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains("CORRELATOR_AWS_STATE: aws.state:"),
            "{bad}: {err}"
        );
        if cfg!(feature = "aws") {
            let (code, err) = validate(&[], &["run", "--dry-run", "--state", bad]);
            assert_eq!(code, 2, "{bad}: {err}");
            assert!(err.contains("--state (CORRELATOR_STATE)"), "{bad}: {err}");
            assert!(!err.contains("could not send"), "no AWS call: {err}");
        }
    }
    let state = dir.path().join("s3:");
    let (code, err) = validate(
        &[],
        &[
            "correlate",
            "--state",
            "s3:/bucket/state.json",
            "fixtures/guardduty",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(!state.exists());
}

#[test]
fn issue_12_findings_are_in_the_partition_of_their_region() {
    let dir = tempfile::tempdir().unwrap();
    let cn = crate::common::edited_scenario(dir.path(), "compromised-instance-group", &|t| {
        t.replace("us-east-1", "cn-north-1")
            .replace("arn:aws:", "arn:aws-cn:")
            .replace("\"partition\": \"aws\"", "\"partition\": \"aws-cn\"")
    });
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(&cn)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["Findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{stderr}");
    let f = &findings[0];
    assert!(
        f["ProductArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws-cn:securityhub:cn-north-1:111122223333:product/"),
        "{}",
        f["ProductArn"]
    );
    let text = f.to_string();
    assert!(
        !text.contains("arn:aws:"),
        "no ARN of the aws partition: {text}"
    );
    for r in f["Resources"].as_array().unwrap() {
        assert_eq!(r["Partition"], "aws-cn", "{r}");
        assert_eq!(r["Region"], "cn-north-1", "{r}");
    }
    assert!(
        text.contains("arn:aws-cn:ec2:cn-north-1:111122223333:instance/"),
        "{text}"
    );
}

#[test]
fn issue_12_regions_newer_than_the_build_are_kept_and_noted() {
    let dir = tempfile::tempdir().unwrap();
    let new = crate::common::edited_scenario(dir.path(), "compromised-instance-group", &|t| {
        t.replace("us-east-1", "ap-southeast-9")
    });
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(&new)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &doc["Findings"][0];
    assert!(
        f["Id"].as_str().unwrap().contains("/ap-southeast-9/"),
        "{}",
        f["Id"]
    );
    assert_eq!(f["Resources"][0]["Region"], "ap-southeast-9");
    assert!(
        stderr.contains("regions not in this build's list, kept as given: ap-southeast-9 ("),
        "{stderr}"
    );
    let out = correlator()
        .args(["correlate", "--summary", "json"])
        .arg(&new)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert!(
        summary["read"]["unknown_regions"]["ap-southeast-9"]
            .as_u64()
            .unwrap()
            > 0,
        "{summary}"
    );
}

#[test]
fn issue_12_a_record_with_no_account_is_reported_and_skipped_never_written_as_000000000000() {
    let dir = tempfile::tempdir().unwrap();
    // The GuardDuty findings lose their account (ARN and field): the sequence they open
    // cannot name its account.
    let bare = crate::common::edited_scenario(dir.path(), "compromised-instance-group", &|t| {
        if t.contains("\"findings\"") {
            t.replace("\"accountId\": \"111122223333\",", "")
                .replace(":111122223333:detector", "::detector")
        } else {
            t.to_string()
        }
    });
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(&bare)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "records were skipped: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("000000000000"));
    assert!(stderr.contains("no account id"), "{stderr}");
}

#[test]
fn issue_12_the_text_summary_shows_a_few_group_members_and_the_json_all() {
    // Twelve instances of one Auto Scaling group, each with a GuardDuty finding.
    let template: Value = serde_json::from_str(
        &fs::read_to_string(fixture("guardduty/finding-single.json")).unwrap(),
    )
    .unwrap();
    let findings: Vec<String> = (0..12)
        .map(|i| {
            let mut f = template.clone();
            f["id"] = Value::from(format!("f{i:031}"));
            f["arn"] = Value::from(format!(
                "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f{i:031}"
            ));
            f["resource"]["instanceDetails"]["instanceId"] = Value::from(format!("i-0{i:016x}"));
            f.to_string()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = tmp_file(dir.path(), "many.jsonl", &findings.join("\n"));
    let r = run(&[
        OsStr::new("graph"),
        OsStr::new("-o"),
        dir.path().join("g.json").as_os_str(),
        input.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("web-asg (12 member(s))"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(line.ends_with(", … and 7 more"), "{line}");
    assert_eq!(line.matches("i-0").count(), 5, "{line}");
    let r = run(&[
        OsStr::new("correlate"),
        OsStr::new("--summary"),
        OsStr::new("json"),
        input.as_os_str(),
    ]);
    let summary: Value = serde_json::from_str(r.stderr.lines().last().unwrap()).unwrap();
    let groups = summary["read"]["groups"].as_array().unwrap();
    let asg = groups
        .iter()
        .find(|g| g["group"].as_str().unwrap().contains("web-asg"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(asg["members"].as_array().unwrap().len(), 12);
}

#[test]
fn issue_12_only_the_command_line_depends_on_clap() {
    // The library's types (export formats among them) are usable without the command line.
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = crate::common::repo().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let users: Vec<String> = files
        .iter()
        .filter(|p| !p.ends_with("src/cli.rs") && !p.ends_with("src/main.rs"))
        .filter(|p| fs::read_to_string(p).unwrap().contains("clap"))
        .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(
        users.is_empty(),
        "clap outside cli.rs and main.rs: {users:?}"
    );
    // `graph --format` still takes every format.
    for (name, start) in [
        ("json", "{"),
        ("dot", "digraph"),
        ("graphml", "<?xml"),
        ("cypher", "//"),
    ] {
        let r = run(&["graph", "--format", name, "fixtures/guardduty"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(
            r.stdout.trim_start().starts_with(start),
            "{name}: {}",
            &r.stdout[..40.min(r.stdout.len())]
        );
    }
}

#[test]
fn issue_14_the_readme_quick_start_summary_is_what_correlate_prints() {
    // The README's first command over all of fixtures/ (not only the main scenario): every
    // line of its abridged summary that is not cut short ("…") is printed as written.
    let readme = fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let from = readme
        .find("```\nattack sequences:")
        .expect("the quick start summary")
        + 4;
    let block = &readme[from..from + readme[from..].find("```").unwrap()];
    let out = correlator()
        .args(["correlate", "fixtures/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut checked = 0;
    for line in block.lines().filter(|l| !l.contains('…')) {
        assert!(
            stderr.lines().any(|l| l == line),
            "README line not printed: {line:?}\n{stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} line(s) checked");
    // Every abridged line starts as printed.
    for line in block.lines().filter(|l| l.contains('…') && l.trim() != "…") {
        let head = line.split('…').next().unwrap();
        assert!(
            stderr.lines().any(|l| l.starts_with(head)),
            "README line not printed: {line:?}"
        );
    }
}
