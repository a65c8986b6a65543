//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use finding_correlator::normalize::{self, DecodeOptions, Decoded, Problem, RecordKind};
use finding_correlator::signal::Signal;

/// The finding `Id` of the main scenario's critical sequence (compromised-instance-group on
/// web-asg), also its `Detection.Sequence.Uid`.
pub const WEB_ASG_SEQUENCE: &str = "finding-correlator/compromised-instance-group/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:01:27.000Z";

/// A copy of a scenario's positive case in `dir` with `edit` applied to the text of each record
/// file.
pub fn edited_scenario(dir: &Path, scenario: &str, edit: &dyn Fn(&str) -> String) -> PathBuf {
    let src = fixture(&format!("scenarios/{scenario}/positive"));
    let out = dir.join(scenario);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(out.join(p.file_name().unwrap()), edit(&text)).unwrap();
        }
    }
    out
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/…`
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// `../shared/…` (beside the repository, as on every developer machine and in CI).
pub fn shared(rel: &str) -> PathBuf {
    let p = repo().join("..").join("shared").join(rel);
    assert!(
        p.exists(),
        "{} is missing: the tests need the shared/ folder beside the repository",
        p.display()
    );
    p
}

/// Everything one reader decodes to.
#[derive(Debug, Default)]
pub struct Decodes {
    pub signals: Vec<(RecordKind, Signal)>,
    pub problems: Vec<Problem>,
    pub not_json: Option<String>,
}

impl Decodes {
    pub fn only_signals(&self) -> Vec<&Signal> {
        self.signals.iter().map(|(_, s)| s).collect()
    }
}

/// Decodes bytes with default options.
pub fn decode_bytes(bytes: &[u8]) -> Decodes {
    let mut out = Decodes::default();
    let stats = normalize::decode_reader(bytes, &DecodeOptions::default(), &mut |d| match d {
        Decoded::Signal(k, s) => out.signals.push((k, *s)),
        Decoded::Unneeded(..) => panic!("no call filter was set"),
        Decoded::Sigma(..) => panic!("no Sigma rules were set"),
        Decoded::Problem(p) => out.problems.push(p),
    });
    out.not_json = stats.not_json;
    out
}

/// Decodes a file with default options.
pub fn decode_file(path: &Path) -> Decodes {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    decode_bytes(&bytes)
}

/// `dot -Tsvg` accepts the text without a warning; false when Graphviz is not installed.
pub fn graphviz_accepts(dot: &str) -> bool {
    use std::io::Write;
    let child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("graphviz `dot` not runnable ({e}); skipping the dot -Tsvg check");
            return false;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dot -Tsvg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "dot -Tsvg warned: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    true
}

/// The `correlator` binary, run from the repository root, with no configuration or log
/// settings taken from the environment.
pub fn correlator() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("correlator").expect("the binary is built");
    cmd.current_dir(repo())
        .env_remove("CORRELATOR_CONFIG")
        .env_remove("CORRELATOR_LOG_FORMAT")
        .env_remove("CORRELATOR_LOG")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a `correlator correlate --asff - …` command, which must succeed, and returns the
/// findings it wrote to stdout.
pub fn findings_on_stdout(cmd: &mut assert_cmd::Command) -> Vec<serde_json::Value> {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["Findings"].as_array().expect("a Findings list").clone()
}

/// The Python interpreter with the packages of `tests/requirements.txt`:
/// `CORRELATOR_TEST_PYTHON` (set by `tests/run.sh`), else the repository's `.venv`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("CORRELATOR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv").join("bin").join("python"));
    assert!(
        p.exists(),
        "{} is missing: run `bash tests/run.sh` once (it creates the venv with \
         tests/requirements.txt), or set CORRELATOR_TEST_PYTHON",
        p.display()
    );
    p
}

/// A saved state's document as a JSON value: compressed as saved (zstd after a skippable
/// header frame from version 10, gzip for 7 to 9), or plain JSON.
pub fn state_value(bytes: &[u8]) -> serde_json::Value {
    try_state_value(bytes).expect("a state is compressed JSON or JSON")
}

/// [`state_value`], or None when the bytes are no state document.
pub fn try_state_value(bytes: &[u8]) -> Option<serde_json::Value> {
    use std::io::Read;
    if bytes.starts_with(&[0x50, 0x2a, 0x4d, 0x18]) {
        // As `zstd -dc` reads it: over the header frame.
        serde_json::from_slice(&zstd::stream::decode_all(bytes).ok()?).ok()
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut text)
            .ok()?;
        serde_json::from_slice(&text).ok()
    } else {
        serde_json::from_slice(bytes).ok()
    }
}

/// One scheduled run over `dir` from `state`, as `correlate --state` makes it (without the
/// sink): what it correlated, the state it leaves and what it writes.
pub fn run_with_state(
    dir: &Path,
    state: &finding_correlator::state::State,
    rules: &std::sync::Arc<finding_correlator::rules::RuleSet>,
    settings: &finding_correlator::config::Settings,
) -> (
    finding_correlator::pipeline::CorrelateRun,
    finding_correlator::state::State,
    finding_correlator::incremental::Changes,
) {
    use finding_correlator::{incremental, pipeline, sinks::asff::Writer};
    let run = pipeline::correlate(
        std::slice::from_ref(&dir.to_path_buf()),
        settings,
        rules.clone(),
        false,
        Some(state),
    );
    let (next, changes) =
        incremental::advance(Some(state), &run, rules, settings, &Writer::default());
    (run, next, changes)
}

/// Runs `tests/asff_validate.py` (botocore's Security Hub model) over `findings`; its output
/// when it rejects them.
pub fn security_hub_model_rejects(findings: &[serde_json::Value]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("findings.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&serde_json::json!({ "Findings": findings })).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(python())
        .arg(repo().join("tests").join("asff_validate.py"))
        .arg(&file)
        .current_dir(repo())
        .output()
        .expect("running tests/asff_validate.py");
    (out.status.code() != Some(0)).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The group case's GuardDuty findings (`guardduty-get-findings.json`, as `GetFindings`
/// answers).
pub fn group_case_findings() -> serde_json::Value {
    let case = fixture("scenarios/compromised-instance-group/positive");
    serde_json::from_str(
        &std::fs::read_to_string(case.join("guardduty-get-findings.json")).unwrap(),
    )
    .unwrap()
}

/// The group case's GuardDuty finding of type `kind`.
pub fn group_case_finding(kind: &str) -> serde_json::Value {
    group_case_findings()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in the group case"))
        .clone()
}

/// The group case's GuardDuty findings, its mining finding, and that finding archived by an
/// analyst (a later `updatedAt`, `service.archived`).
pub fn group_case_mining() -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let mining = group_case_finding("CryptoCurrency:EC2/BitcoinTool.B!DNS");
    let mut archived = mining.clone();
    archived["updatedAt"] = serde_json::json!("2025-05-03T10:00:00.000Z");
    archived["service"]["archived"] = serde_json::json!(true);
    (group_case_findings(), mining, archived)
}

/// Copies a folder of fixtures, recursively.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
