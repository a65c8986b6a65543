//! AWS mode (`correlator run`) over real HTTP on loopback: moto server for Security Hub, S3 and
//! STS (started by `tests/run.sh`, its address in `CORRELATOR_TEST_MOTO`), and the mock of
//! `aws_mock.rs` for GuardDuty and CloudTrail `LookupEvents`, which moto lacks, and for faults.
//! Each test uses a region of its own, so that tests sharing one moto server do not see each
//! other's findings.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::aws_mock::{Fault, Mock};
use crate::common::{self, correlator};

/// moto's address. `tests/run.sh` starts moto (from the venv) and sets it.
pub(crate) fn moto() -> String {
    std::env::var("CORRELATOR_TEST_MOTO").unwrap_or_else(|_| {
        panic!(
            "CORRELATOR_TEST_MOTO is not set: run the tests with `bash tests/run.sh`, which \
             starts moto server on loopback (or start `.venv/bin/moto_server -H 127.0.0.1 -p PORT` \
             and set CORRELATOR_TEST_MOTO=http://127.0.0.1:PORT)"
        )
    })
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) async fn sdk(region: &str, endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

pub(crate) fn s3_client(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    )
}

/// A bucket of its own in moto, and Security Hub enabled in the region.
pub(crate) fn prepare(region: &str, bucket: &str) {
    let rt = runtime();
    rt.block_on(async {
        let conf = sdk(region, &moto()).await;
        let s3 = s3_client(&conf);
        let mut create = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        let _ = create.send().await;
        let sh = aws_sdk_securityhub::Client::new(&conf);
        let _ = sh.enable_security_hub().send().await;
    });
}

/// The wall clock, in milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A mock serving the group scenario's GuardDuty findings and CloudTrail events, with
/// `bucket` made in `region` (and Security Hub on there).
fn scenario_mock(region: &str, bucket: &str) -> Mock {
    prepare(region, bucket);
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    mock
}

/// Every finding moto's Security Hub holds in the region. (On a thread with a large stack: the
/// SDK's deserializer of deeply nested findings recurses more than a test thread allows in
/// debug builds.)
fn security_hub_findings(region: &str) -> Vec<Value> {
    let region = region.to_string();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || security_hub_findings_here(&region))
        .unwrap()
        .join()
        .unwrap()
}

fn security_hub_findings_here(region: &str) -> Vec<Value> {
    let rt = runtime();
    rt.block_on(async {
        let conf = sdk(region, &moto()).await;
        let sh = aws_sdk_securityhub::Client::new(&conf);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let capture = finding_correlator::aws::Capture::default();
            let page = sh
                .get_findings()
                .max_results(100)
                .set_next_token(token)
                .customize()
                .interceptor(capture.clone())
                .send()
                .await
                .expect("moto GetFindings");
            for body in capture.take() {
                let v: Value = serde_json::from_slice(&body).unwrap();
                out.extend(v["Findings"].as_array().cloned().unwrap_or_default());
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out
    })
}

/// A key no earlier test run used (moto may outlive a run when started by hand).
pub(crate) fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}/state.json", std::process::id())
}

/// An object of moto's S3, if there is one.
fn get_object(region: &str, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let rt = runtime();
    rt.block_on(async {
        let conf = sdk(region, &moto()).await;
        let out = s3_client(&conf)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    })
}

/// Writes an object into moto's S3.
pub(crate) fn put_object(region: &str, bucket: &str, key: &str, body: Vec<u8>) {
    let rt = runtime();
    rt.block_on(async {
        let conf = sdk(region, &moto()).await;
        s3_client(&conf)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    });
}

/// Reads every record of a scenario folder: GuardDuty findings (API camelCase) and CloudTrail
/// records.
fn scenario(dir: &Path) -> (Vec<Value>, Vec<Value>) {
    let mut findings = Vec::new();
    let mut events = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let values: Vec<Value> = if f.extension().is_some_and(|e| e == "jsonl") {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            vec![serde_json::from_str(&text).unwrap()]
        };
        for v in values {
            if let Some(fs) = v["findings"].as_array() {
                findings.extend(fs.iter().cloned());
            } else if let Some(rs) = v["Records"].as_array() {
                events.extend(rs.iter().cloned());
            } else if v.get("eventID").is_some() {
                events.push(v);
            } else if v.get("schemaVersion").is_some() {
                findings.push(v);
            }
        }
    }
    (findings, events)
}

/// `correlator run` against moto and `mock`, with the test's region and bucket.
pub(crate) fn run_cmd(mock: &Mock, region: &str, state: &str) -> assert_cmd::Command {
    let mut cmd = correlator();
    for (k, v) in aws_env(mock, region, state) {
        cmd.env(k, v);
    }
    cmd.env_remove("AWS_PROFILE")
        .args(["run", "--summary", "json"]);
    cmd
}

/// The environment of [`run_cmd`].
fn aws_env(mock: &Mock, region: &str, state: &str) -> Vec<(&'static str, String)> {
    [
        ("AWS_ENDPOINT_URL", moto()),
        ("AWS_ENDPOINT_URL_GUARDDUTY", mock.url.clone()),
        ("AWS_ENDPOINT_URL_CLOUDTRAIL", mock.url.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", region.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("CORRELATOR_AWS_REGIONS", region.into()),
        ("CORRELATOR_AWS_LOOKBACK", "1000d".into()),
        ("CORRELATOR_AWS_INITIAL_BACKOFF", "20ms".into()),
        ("CORRELATOR_AWS_CLOUDTRAIL_CALLS_PER_SECOND", "50".into()),
        ("CORRELATOR_STATE", state.into()),
    ]
    .to_vec()
}

/// [`run_cmd`] as a child process of its own, to kill.
pub(crate) fn spawn_run(
    mock: &Mock,
    region: &str,
    state: &str,
    extra: &[(&str, &str)],
) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("correlator"));
    cmd.current_dir(common::repo())
        .env_remove("CORRELATOR_CONFIG")
        .env_remove("CORRELATOR_LOG_FORMAT")
        .env_remove("CORRELATOR_LOG")
        .env_remove("RUST_LOG")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in aws_env(mock, region, state) {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.args(["run", "--summary", "json"]).spawn().unwrap()
}

/// `correlator run` with `mock` also standing in for Security Hub; its output.
pub(crate) fn run_on_mock(
    mock: &Mock,
    region: &str,
    state: &Path,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = run_cmd(mock, region, state.to_str().unwrap());
    cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts the run's exit code, showing its log when it differs.
pub(crate) fn exits(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn summary(out: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

/// The ids `correlate` gives offline for the same records.
pub(crate) fn offline_ids(dir: &Path) -> Vec<String> {
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(dir)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<String> = doc["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

pub(crate) fn ids(findings: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .map(|f| f["Id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn end_to_end_the_attack_comes_out_in_security_hub_once_and_is_updated_in_place() {
    let (region, bucket) = ("eu-west-1", "e2e-state");
    prepare(region, bucket);
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    assert!(!findings.is_empty() && !events.is_empty());
    let mock = Mock::start();
    mock.add_findings(findings.clone());
    mock.add_events(events);
    let key = unique("e2e");
    let state = format!("s3://{bucket}/{key}");

    // First run: the sequence is written to Security Hub with the offline id.
    let out = run_cmd(&mock, region, &state).output().unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["new"], 1, "{s}");
    assert_eq!(s["findings"]["imported"], 1, "{s}");
    assert_eq!(s["state"]["saved"], true);
    let written = security_hub_findings(region);
    assert_eq!(ids(&written), offline_ids(&dir));
    let first = written[0].clone();
    assert_eq!(
        first["AwsAccountId"], "123456789012",
        "the caller's account writes"
    );
    assert!(
        first["ProductArn"].as_str().unwrap().starts_with(&format!(
            "arn:aws:securityhub:{region}:123456789012:product/"
        )),
        "{}",
        first["ProductArn"]
    );
    // The requests the SDK sent: an updatedAt criterion (archived findings too: an
    // analyst's archive must reach the run), and GetFindings for the listed ids.
    let seen = mock.seen();
    let list = seen.iter().find(|r| r.operation == "ListFindings").unwrap();
    assert!(
        list.body["findingCriteria"]["criterion"]["updatedAt"]["greaterThanOrEqual"].is_number(),
        "{}",
        list.body
    );
    assert!(
        list.body["findingCriteria"]["criterion"]
            .get("service.archived")
            .is_none(),
        "{}",
        list.body
    );
    assert!(seen.iter().any(|r| r.operation == "GetFindings"));
    assert!(seen.iter().any(|r| r.operation == "LookupEvents"));
    let saved = get_object(region, bucket, &key).unwrap();
    assert!(
        saved.starts_with(&[0x50, 0x2a, 0x4d, 0x18]),
        "the S3 state is saved compressed, its header frame first"
    );
    let state_v: Value = common::state_value(&saved);
    assert_eq!(state_v["version"], finding_correlator::state::VERSION);
    assert!(state_v.get("lease").is_none(), "the lease is released");
    assert!(state_v["checkpoints"]["aws/guardduty/eu-west-1"]["cursor"].is_string());

    // Second run, nothing new: nothing is written, the finding is unchanged.
    let out = run_cmd(&mock, region, &state).output().unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["sent"], 0, "{s}");
    assert_eq!(s["findings"]["unchanged"], 1, "{s}");
    let again = security_hub_findings(region);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["UpdatedAt"], first["UpdatedAt"]);

    // Third run: a new finding on the group within the window extends the same sequence.
    let mut later = findings
        .iter()
        .find(|f| {
            f["type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("CryptoCurrency")
        })
        .cloned()
        .unwrap_or_else(|| findings[0].clone());
    let new_id = "0123456789abcdef0123456789abcdef";
    later["id"] = json!(new_id);
    later["arn"] = json!(
        later["arn"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0
            .to_string()
            + "/"
            + new_id
    );
    later["type"] = json!("Backdoor:EC2/C&CActivity.B!DNS");
    later["updatedAt"] = json!("2025-05-03T10:05:00.000Z");
    later["service"]["eventLastSeen"] = json!("2025-05-03T10:04:00.000Z");
    mock.add_findings([later]);
    let out = run_cmd(&mock, region, &state).output().unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["updated"], 1, "{s}");
    assert_eq!(s["findings"]["new"], 0, "{s}");
    let updated = security_hub_findings(region);
    assert_eq!(
        ids(&updated),
        ids(&written),
        "the same Id, not a second finding"
    );
    assert!(
        updated[0]["UpdatedAt"].as_str() > first["UpdatedAt"].as_str(),
        "{} then {}",
        first["UpdatedAt"],
        updated[0]["UpdatedAt"]
    );
    let n = |f: &Value| {
        f["Detection"]["Sequence"]["Signals"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(n(&updated[0]), n(&first) + 1);
}

#[test]
fn s3_state_conditional_writes_refuse_the_loser_of_a_race() {
    use finding_correlator::aws::store::S3Store;
    use finding_correlator::state::{State, StateStore};
    let (region, bucket) = ("ap-south-1", "race-state");
    prepare(region, bucket);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let conf = rt.block_on(sdk(region, &moto()));
    let loc: finding_correlator::aws::store::S3Location =
        format!("s3://{bucket}/{}", unique("race")).parse().unwrap();
    let a = S3Store::new(s3_client(&conf), loc.clone(), rt.handle().clone());
    let b = S3Store::new(s3_client(&conf), loc.clone(), rt.handle().clone());
    // Both find nothing; the first creates, the second's create loses.
    assert!(a.load().unwrap().is_none());
    assert!(b.load().unwrap().is_none());
    let mut s = State::new();
    s.newest = Some(1);
    a.save(&s).unwrap();
    let e = b.save(&State::new()).unwrap_err().to_string();
    assert!(e.contains("written by another run"), "{e}");
    // Both read the same version; the first write wins, the second is refused.
    assert_eq!(b.load().unwrap().unwrap().newest, Some(1));
    s.newest = Some(2);
    a.save(&s).unwrap();
    s.newest = Some(3);
    let e = b.save(&s).unwrap_err().to_string();
    assert!(e.contains("written by another run"), "{e}");
    assert_eq!(
        a.load().unwrap().unwrap().newest,
        Some(2),
        "the winner's state stands"
    );
    // A store keeps writing after its own writes (it follows its ETag).
    s.newest = Some(4);
    a.save(&s).unwrap();
    s.newest = Some(5);
    a.save(&s).unwrap();
    assert_eq!(b.load().unwrap().unwrap().newest, Some(5));
}

#[test]
fn a_run_that_finds_the_state_held_by_another_stops_before_reading_anything() {
    let (region, bucket) = ("ca-central-1", "lease-state");
    prepare(region, bucket);
    let mock = Mock::start();
    let mut held = finding_correlator::state::State::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    held.lease = Some(finding_correlator::state::Lease {
        holder: "task/other:1".into(),
        since: now - 60_000,
        expires: now + 3_600_000,
        ..Default::default()
    });
    let bytes = held.to_json();
    let key = unique("lease");
    put_object(region, bucket, &key, bytes.clone());
    let out = run_cmd(&mock, region, &format!("s3://{bucket}/{key}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by another run (task/other:1"),
        "{stderr}"
    );
    assert!(mock.seen().is_empty(), "no source was read");
    assert_eq!(get_object(region, bucket, &key).unwrap(), bytes);
}

#[test]
fn throttling_and_server_errors_are_retried_and_a_run_that_fails_saves_nothing() {
    let region = "us-west-1";
    prepare(region, "unused-faults");
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let throttle = Fault {
        status: 429,
        body: json!({"__type": "TooManyRequestsException", "message": "Rate exceeded"}).to_string(),
        delay_ms: 0,
    };
    let boom = Fault {
        status: 500,
        body: json!({"__type": "InternalServerErrorException", "message": "boom"}).to_string(),
        delay_ms: 0,
    };
    mock.fail("ListFindings", [throttle.clone(), throttle.clone()]);
    mock.fail("GetFindings", [boom.clone()]);
    mock.fail(
        "LookupEvents",
        [Fault {
            status: 400,
            body: json!({"__type": "ThrottlingException", "message": "Rate exceeded"}).to_string(),
            delay_ms: 0,
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = run_cmd(&mock, region, state.to_str().unwrap())
        .output()
        .unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["imported"], 1, "{s}");
    let count = |op: &str| mock.seen().iter().filter(|r| r.operation == op).count();
    assert_eq!(count("ListFindings"), 3, "two throttles, then the answer");
    assert_eq!(count("GetFindings"), 2, "a 500, then the answer");
    let saved = std::fs::read(&state).unwrap();

    // A source that keeps failing: the run stops (exit 3) and the state stays as it was.
    mock.fail("GetFindings", std::iter::repeat_n(boom, 10));
    mock.add_findings([json!({"id": "ffffffffffffffffffffffffffffffff", "schemaVersion": "2.0"})]);
    let out = run_cmd(&mock, region, state.to_str().unwrap())
        .output()
        .unwrap();
    exits(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GetFindings failed"), "{stderr}");
    assert_eq!(std::fs::read(&state).unwrap(), saved);
}

#[test]
fn findings_security_hub_fails_are_sent_again_or_reported_and_never_lost() {
    let region = "eu-north-1";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let id = offline_ids(&dir).remove(0);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || run_on_mock(&mock, region, &state, &[]);
    // A transient failure of the finding: sent again within the run.
    mock.fail_import_once(&id, "ThrottlingException");
    let out = run();
    exits(&out, 0);
    assert_eq!(mock.imported().len(), 1);
    let calls = mock
        .seen()
        .iter()
        .filter(|r| r.operation == "BatchImportFindings")
        .count();
    assert_eq!(calls, 2);

    // A permanent failure: reported (exit 1), not recorded as written, so the next run sends
    // it again.
    let tmp2 = tempfile::tempdir().unwrap();
    let state2 = tmp2.path().join("state.json");
    let run2 = || run_on_mock(&mock, region, &state2, &[]);
    mock.fail_import_once(&id, "InvalidInput");
    let out = run2();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(s["findings"]["failed"][0][1], "InvalidInput", "{s}");
    let before = mock.imported().len();
    let out = run2();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["imported"], 1);
    assert_eq!(mock.imported().len(), before + 1);
    // And once written, it is not sent again.
    let out = run2();
    assert_eq!(summary(&out)["findings"]["sent"], 0);
}

/// The README: the Security Hub sink sends "batches of at most 100 findings and 6 MB, at
/// most 10 calls a second". 1,150 instance groups, each with a mining and a
/// command-and-control finding of its own: 1,150 findings in 12 calls of at most 100; from
/// the second call on (the first also opens the connection), any 11 calls span at least a
/// second as the mock sees them arrive (less 50 ms for when each reaches it; without the
/// limit, 11 took 0.75 s here), so no second holds more than 10.
#[test]
fn security_hub_gets_batches_of_at_most_100_findings_at_most_10_calls_a_second() {
    let region = "ap-southeast-4";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, _) = scenario(&dir);
    let pair: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["type"] == "CryptoCurrency:EC2/BitcoinTool.B!DNS"
                || f["type"] == "Backdoor:EC2/C&CActivity.B!DNS"
        })
        .collect();
    assert_eq!(pair.len(), 2);
    let mut many = Vec::new();
    for g in 0..1150u32 {
        for (k, f) in pair.iter().enumerate() {
            let mut f = (*f).clone();
            let id = format!("{g:08x}{k:024x}");
            let arn = f["arn"]
                .as_str()
                .unwrap()
                .rsplit_once('/')
                .unwrap()
                .0
                .to_string();
            f["id"] = json!(id);
            f["arn"] = json!(format!("{arn}/{id}"));
            let details = &mut f["resource"]["instanceDetails"];
            details["instanceId"] = json!(format!("i-{g:08x}{k:09x}"));
            for t in details["tags"].as_array_mut().unwrap() {
                let value = match t["key"].as_str().unwrap() {
                    "aws:autoscaling:groupName" => format!("asg-{g}"),
                    "aws:ec2launchtemplate:id" => format!("lt-{g:017x}"),
                    "aws:cloudformation:stack-name" => format!("stack-{g}"),
                    _ => continue,
                };
                t["value"] = json!(value);
            }
            many.push(f);
        }
    }
    let mock = Mock::start();
    mock.add_findings(many);
    let tmp = tempfile::tempdir().unwrap();
    let out = run_on_mock(
        &mock,
        region,
        &tmp.path().join("state.json"),
        &[("CORRELATOR_AWS_SOURCES", "guardduty")],
    );
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["new"], 1150);
    let calls: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|r| r.operation == "BatchImportFindings")
        .collect();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.body["Findings"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 50]
    );
    assert_eq!(mock.imported().len(), 1150);
    let at: Vec<std::time::Instant> = calls.iter().map(|c| c.at).collect();
    assert_at_most(&at[1..], 10, 950, "BatchImportFindings");
}

/// Asserts that no `n + 1` consecutive calls of `at` fall within `ms` milliseconds: a rate
/// limit, with some slack for the clock.
fn assert_at_most(at: &[std::time::Instant], n: usize, ms: u64, what: &str) {
    for w in at.windows(n + 1) {
        let span = w[n] - w[0];
        assert!(
            span >= std::time::Duration::from_millis(ms),
            "{} {what} calls in {span:?}",
            n + 1
        );
    }
}

/// The README: an analyst's archive reaches a scheduled run. `ListFindings` asks for archived
/// findings too (the mock leaves them out when asked to, as GuardDuty does): the group
/// case's finding is written; its mining finding, archived since, is read by the next run,
/// and the finding is written again, under its `Id`, without it.
#[test]
fn a_guardduty_finding_archived_between_runs_reaches_the_next_run() {
    let (region, bucket) = ("eu-west-3", "archived-between");
    let mock = scenario_mock(region, bucket);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = run_on_mock(&mock, region, &state, &[]);
    exits(&out, 0);
    let first = mock.imported();
    assert_eq!(first.len(), 1);
    let holds_mining = |f: &Value| f["Description"].as_str().unwrap().contains("BitcoinTool");
    assert!(holds_mining(&first[0]));
    let (_, _, mut archived) = common::group_case_mining();
    archived["updatedAt"] = json!(finding_correlator::time::format_rfc3339(now_ms()));
    mock.update_finding(archived);
    let out = run_on_mock(&mock, region, &state, &[]);
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["updated"], 1);
    let imported = mock.imported();
    let again = imported.last().unwrap();
    assert_eq!(again["Id"], first[0]["Id"]);
    assert_ne!(again["RecordState"], "ARCHIVED");
    assert!(!holds_mining(again), "{}", again["Description"]);
}

/// `n` copies of a GuardDuty finding of the scenario, each with an id of its own.
fn many_findings(template: &Value, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut f = template.clone();
            let id = format!("{i:032x}");
            f["id"] = json!(id);
            let arn = f["arn"]
                .as_str()
                .unwrap()
                .rsplit_once('/')
                .unwrap()
                .0
                .to_string();
            f["arn"] = json!(format!("{arn}/{id}"));
            f
        })
        .collect()
}

#[test]
fn sources_page_through_every_result_and_get_findings_in_batches_of_50() {
    let region = "sa-east-1";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    let mut all = findings.clone();
    all.extend(many_findings(&findings[0], 118));
    mock.add_findings(all);
    // Over 100 CloudTrail events: three pages of LookupEvents.
    let template = events[0].clone();
    let mut many_events = events.clone();
    for i in 0..128 {
        let mut e = template.clone();
        e["eventID"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
        many_events.push(e);
    }
    let n_events = many_events.len();
    assert!((101..=150).contains(&n_events));
    mock.add_events(many_events);
    let tmp = tempfile::tempdir().unwrap();
    let out = run_on_mock(&mock, region, &tmp.path().join("s.json"), &[]);
    exits(&out, 0);
    let s = summary(&out);
    let seen = mock.seen();
    let lists: Vec<_> = seen
        .iter()
        .filter(|r| r.operation == "ListFindings")
        .collect();
    assert_eq!(lists.len(), 3, "120 ids in pages of 50");
    assert!(lists[0].body.get("nextToken").is_none());
    assert_eq!(lists[1].body["nextToken"], "50");
    assert_eq!(lists[2].body["nextToken"], "100");
    let gets: Vec<usize> = seen
        .iter()
        .filter(|r| r.operation == "GetFindings")
        .map(|r| r.body["findingIds"].as_array().unwrap().len())
        .collect();
    assert_eq!(gets, vec![50, 50, 20]);
    let lookups: Vec<_> = seen
        .iter()
        .filter(|r| r.operation == "LookupEvents")
        .collect();
    assert_eq!(lookups.len(), 3, "{n_events} events in pages of 50");
    assert_eq!(lookups[1].body["NextToken"], "50");
    let gd = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["source"] == "guardduty")
        .unwrap();
    assert_eq!(gd["records"], 120, "{s}");
    let ct = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["source"] == "cloudtrail")
        .unwrap();
    assert_eq!(ct["records"], n_events, "{s}");
}

#[test]
fn a_slow_answer_is_abandoned_and_retried() {
    let region = "eu-south-1";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    mock.fail(
        "GetFindings",
        [Fault {
            status: 200,
            body: "{\"findings\":[]}".into(),
            delay_ms: 3_000,
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = run_on_mock(
        &mock,
        region,
        &tmp.path().join("s.json"),
        &[("CORRELATOR_AWS_ATTEMPT_TIMEOUT", "500ms")],
    );
    exits(&out, 0);
    // The slow attempt was cut off (not waited out) and the retry read the findings.
    assert!(started.elapsed() < std::time::Duration::from_millis(2_900));
    assert_eq!(summary(&out)["findings"]["imported"], 1);
    let gets = mock
        .seen()
        .iter()
        .filter(|r| r.operation == "GetFindings")
        .count();
    assert_eq!(gets, 2);
}

#[test]
fn a_run_whose_sink_fails_mid_way_leaves_security_hub_as_one_clean_run_once_re_run() {
    let region = "ap-northeast-3";
    // Both scenarios: two findings, so that a batch size of one gives two calls.
    let mut findings = Vec::new();
    let mut events = Vec::new();
    for d in [
        "scenarios/compromised-instance-group/positive",
        "scenarios/instance-credentials-launch-compute/positive",
    ] {
        let (f, e) = scenario(&common::fixture(d));
        findings.extend(f);
        events.extend(e);
    }
    let clean = Mock::start();
    clean.add_findings(findings.clone());
    clean.add_events(events.clone());
    let tmp = tempfile::tempdir().unwrap();
    let out = run_cmd(
        &clean,
        region,
        tmp.path().join("clean.json").to_str().unwrap(),
    )
    .env("AWS_ENDPOINT_URL_SECURITYHUB", &clean.url)
    .output()
    .unwrap();
    exits(&out, 0);
    let want = ids(&clean.imported());
    assert!(want.len() >= 2, "{want:?}");

    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let boom = Fault {
        status: 500,
        body: json!({"__type": "InternalException", "Message": "boom"}).to_string(),
        delay_ms: 0,
    };
    // The import fails on every attempt: the run stops, saving nothing.
    mock.fail("BatchImportFindings", std::iter::repeat_n(boom, 5));
    let state = tmp.path().join("state.json");
    let out = run_on_mock(&mock, region, &state, &[]);
    exits(&out, 3);
    assert!(!state.exists(), "nothing saved");
    // The re-run writes everything, once.
    let out = run_on_mock(&mock, region, &state, &[]);
    exits(&out, 0);
    assert_eq!(ids(&mock.imported()), want);
    let again = run_on_mock(&mock, region, &state, &[]);
    assert_eq!(summary(&again)["findings"]["sent"], 0);
    assert_eq!(ids(&mock.imported()), want);
}

#[test]
fn a_trail_s_log_files_in_s3_are_read_once_each() {
    let (region, bucket) = ("me-central-1", "trail-logs");
    prepare(region, bucket);
    let root = common::fixture("cloudtrail");
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                out.push(p);
            }
        }
    }
    walk(&root.join("AWSLogs"), &mut files);
    assert_eq!(files.len(), 2);
    let top = unique("trail").replace("/state.json", "");
    let put = |key: String, body: Vec<u8>| put_object(region, bucket, &key, body);
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        put(format!("{top}/{rel}"), std::fs::read(f).unwrap());
    }
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        run_cmd(&mock, region, state.to_str().unwrap())
            .env("CORRELATOR_AWS_SOURCES", "cloudtrail_s3")
            .env(
                "CORRELATOR_AWS_TRAIL",
                format!("s3://{bucket}/{top}/AWSLogs/"),
            )
            .env("CORRELATOR_AWS_REGIONS", "us-east-1,ap-southeast-3")
            .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
            .output()
            .unwrap()
    };
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    let src = &s["sources"][0];
    assert_eq!(src["source"], "cloudtrail_s3");
    assert_eq!(src["records"], 5, "{s}");
    let offline = offline_ids(&root.join("AWSLogs"));
    assert!(!offline.is_empty());
    assert_eq!(ids(&mock.imported()), offline);
    // Again: every object was read already.
    let out = run();
    let s = summary(&out);
    assert_eq!(s["sources"][0]["records"], 0, "{s}");
    assert_eq!(s["findings"]["sent"], 0, "{s}");
    // A new log file of the next day: only it is read.
    let mut record: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("cloudtrail/single-record.json")).unwrap(),
    )
    .unwrap();
    record["eventTime"] = json!("2025-05-03T01:00:00Z");
    record["awsRegion"] = json!("us-east-1");
    record["eventID"] = json!("00000000-0000-4000-8000-00000000abcd");
    put(
        format!(
            "{top}/AWSLogs/111122223333/CloudTrail/us-east-1/2025/05/03/111122223333_CloudTrail_us-east-1_20250503T0100Z_new.json"
        ),
        json!({ "Records": [record] }).to_string().into_bytes(),
    );
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["sources"][0]["records"], 1, "{s}");
    // A cursor per account and region folder, not a list of every key read.
    let st: Value = crate::common::state_value(&std::fs::read(&state).unwrap());
    let folders: Vec<&String> = st["checkpoints"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("aws/cloudtrail_s3/"))
        .collect();
    assert_eq!(folders.len(), 2, "{st}");
    assert!(
        st["checkpoints"]["aws/cloudtrail_s3"]
            .get("objects")
            .is_none()
    );
}

/// A state whose lease an ECS task of cluster `correlator` took a minute ago, for an hour.
fn stopped_task_lease(task: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut held = finding_correlator::state::State::new();
    held.lease = Some(finding_correlator::state::Lease {
        holder: format!("{}:1", task.rsplit('/').next().unwrap()),
        since: now - 60_000,
        expires: now + 3_600_000,
        ecs_cluster: Some(
            task.replace(":task/", ":cluster/")
                .rsplit_once('/')
                .unwrap()
                .0
                .to_string(),
        ),
        ecs_task: Some(task.to_string()),
        ..Default::default()
    });
    held.to_json()
}

/// Runs every source and the Security Hub sink with an S3 state and returns the calls the
/// tool recorded (`CORRELATOR_RECORD_CALLS`), as `Service:Operation`, sorted and unique.
pub fn record_every_call() -> Vec<String> {
    let (region, bucket) = ("af-south-1", "record-calls");
    prepare(region, bucket);
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events.clone());
    // A trail object, so that the S3 trail source lists and reads.
    let top = unique("record").replace("/state.json", "");
    put_object(
        region,
        bucket,
        &format!("{top}/AWSLogs/111122223333/CloudTrail/{region}/2025/05/03/log.json"),
        json!({ "Records": events }).to_string().into_bytes(),
    );
    // The state is held by an ECS task that has stopped: the run asks ECS, then takes it over.
    let state_key = unique("record-state");
    let task =
        "arn:aws:ecs:af-south-1:123456789012:task/correlator/0123456789abcdef0123456789abcdef";
    put_object(region, bucket, &state_key, stopped_task_lease(task));
    mock.set_task(task, "STOPPED");
    let tmp = tempfile::tempdir().unwrap();
    let calls = tmp.path().join("calls.txt");
    let out = run_cmd(&mock, region, &format!("s3://{bucket}/{state_key}"))
        .env("AWS_ENDPOINT_URL_ECS", &mock.url)
        .env(
            "CORRELATOR_AWS_SOURCES",
            "guardduty,securityhub,cloudtrail,cloudtrail_s3",
        )
        .env(
            "CORRELATOR_AWS_TRAIL",
            format!("s3://{bucket}/{top}/AWSLogs/"),
        )
        .env("CORRELATOR_RECORD_CALLS", &calls)
        .output()
        .unwrap();
    exits(&out, 0);
    recorded_calls(&calls, &out)
}

/// What [`record_s3_requests`] ran with, and the S3 requests it saw.
pub struct S3Requests {
    pub bucket: String,
    pub state_key: String,
    /// The trail's folder (`…/AWSLogs/`), and the reports' (`…/reports/`).
    pub trail_prefix: String,
    pub reports_prefix: String,
    /// Method, path (`/bucket/key`, as sent) and query of each S3 request.
    pub requests: Vec<(String, String, String)>,
}

/// A first run (no state yet) with the S3 trail source and reports on, its S3 requests
/// passed through the mock on to moto: the bucket, keys and prefixes it was given, and every
/// S3 request it made.
pub(crate) fn record_s3_requests() -> S3Requests {
    let (region, bucket) = ("af-south-1", "record-s3");
    let mock = scenario_mock(region, bucket);
    mock.proxy(&moto());
    let top = unique("record-s3").replace("/state.json", "");
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (_, events) = scenario(&dir);
    put_object(
        region,
        bucket,
        &format!("{top}/AWSLogs/111122223333/CloudTrail/{region}/2025/05/03/log.json"),
        json!({ "Records": events }).to_string().into_bytes(),
    );
    let state_key = format!("{top}/state");
    let trail_prefix = format!("{top}/AWSLogs/");
    let reports_prefix = format!("{top}/reports/");
    let out = run_cmd(&mock, region, &format!("s3://{bucket}/{state_key}"))
        .env("AWS_ENDPOINT_URL_S3", &mock.url)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .env("CORRELATOR_AWS_SOURCES", "guardduty,cloudtrail_s3")
        .env(
            "CORRELATOR_AWS_TRAIL",
            format!("s3://{bucket}/{trail_prefix}"),
        )
        .env(
            "CORRELATOR_AWS_REPORTS",
            format!("s3://{bucket}/{reports_prefix}"),
        )
        .output()
        .unwrap();
    exits(&out, 0);
    assert_eq!(
        summary(&out)["findings"]["new"],
        1,
        "a finding, so a report"
    );
    let requests = mock
        .seen()
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/{bucket}")))
        .map(|r| (r.method, r.path, r.query))
        .collect();
    S3Requests {
        bucket: bucket.to_string(),
        state_key,
        trail_prefix,
        reports_prefix,
        requests,
    }
}

/// The calls a run recorded in `calls` (`CORRELATOR_RECORD_CALLS`), sorted and unique.
pub(crate) fn recorded_calls(calls: &Path, out: &std::process::Output) -> Vec<String> {
    let mut seen: Vec<String> = std::fs::read_to_string(calls)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn every_call_the_tool_makes_is_recorded() {
    assert_eq!(
        record_every_call(),
        [
            "CloudTrail:LookupEvents",
            "ECS:DescribeTasks",
            "GuardDuty:GetFindings",
            "GuardDuty:ListDetectors",
            "GuardDuty:ListFindings",
            "S3:GetObject",
            "S3:ListObjectsV2",
            "S3:PutObject",
            "STS:GetCallerIdentity",
            "SecurityHub:BatchImportFindings",
            "SecurityHub:GetFindings",
        ]
    );
}

#[test]
fn validate_checks_the_configuration_and_rules_without_aws() {
    let out = correlator()
        .env("CORRELATOR_AWS_SOURCES", "guardduty,cloudtrail_s3")
        .env("CORRELATOR_AWS_TRAIL", "s3://trail-bucket/AWSLogs/")
        .env("CORRELATOR_AWS_REGIONS", "us-east-1,eu-west-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .arg("validate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("configuration valid; 7 rule(s) valid"),
        "{stderr}"
    );
    assert!(stderr.contains("regions: us-east-1, eu-west-1"), "{stderr}");
    assert!(stderr.contains("sources: guardduty"), "{stderr}");
    // A bad value names the variable it came from.
    let out = correlator()
        .env("CORRELATOR_AWS_SOURCES", "cloudtrail_s3")
        .env("CORRELATOR_AWS_TRAIL", "trail-bucket")
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("aws.trail: \"trail-bucket\" is not an s3://bucket/folder/"),
        "{stderr}"
    );
    let out = correlator()
        .env("CORRELATOR_AWS_MAX_ATTEMPTS", "many")
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CORRELATOR_AWS_MAX_ATTEMPTS"), "{stderr}");
}

#[test]
fn each_written_finding_links_its_report_and_graph_in_s3() {
    let (region, bucket) = ("il-central-1", "correlator-reports");
    let mock = scenario_mock(region, bucket);
    let prefix = unique("reports").replace("/state.json", "/");
    let tmp = tempfile::tempdir().unwrap();
    let location = format!("s3://{bucket}/{prefix}");
    let out = run_on_mock(
        &mock,
        region,
        &tmp.path().join("state.json"),
        &[("CORRELATOR_AWS_REPORTS", location.as_str())],
    );
    exits(&out, 0);
    let imported = mock.imported();
    assert_eq!(imported.len(), 1);
    let f = &imported[0];
    let report = f["ProductFields"]["finding-correlator/report"]
        .as_str()
        .unwrap();
    let graph = f["ProductFields"]["finding-correlator/graph"]
        .as_str()
        .unwrap();
    assert!(
        report.starts_with(&location) && report.ends_with("/report.html"),
        "{report}"
    );
    let key = report.strip_prefix(&format!("s3://{bucket}/")).unwrap();
    assert_eq!(
        f["SourceUrl"],
        format!(
            "https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={key}"
        )
    );
    let get = |key: &str| String::from_utf8(get_object(region, bucket, key).unwrap()).unwrap();
    let html = get(key);
    assert!(
        html.contains("<svg") && html.contains(f["Id"].as_str().unwrap()),
        "{}",
        &html[..200.min(html.len())]
    );
    let g: Value = serde_json::from_str(&get(graph
        .strip_prefix(&format!("s3://{bucket}/"))
        .unwrap()))
    .unwrap();
    assert!(
        g.to_string().contains("shop-asg"),
        "the group is in the graph"
    );
}

/// Issue 12, item 2: the trail source reads every region folder the trail holds (and those of
/// an organization trail beside it), not only `aws.regions`; `aws.trail_regions` narrows it.
#[test]
fn issue_12_the_trail_source_reads_every_region_the_trail_holds() {
    let (region, bucket) = ("eu-central-2", "trail-every-region");
    prepare(region, bucket);
    let dir = common::fixture("scenarios/instance-credentials-launch-compute/positive");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let launches: Value = serde_json::from_str(&read(
        "111122223333_CloudTrail_ap-south-1_20250505T1230Z_8RVMICUclUxJQsPT.json",
    ))
    .unwrap();
    let mut launches = launches["Records"].as_array().unwrap().clone();
    assert_eq!(launches.len(), 3);
    // The attacker's launches, logged only in two regions nobody configured; the Auto Scaling
    // launches that tell the instance's group, in us-east-1.
    for (i, l) in launches.iter_mut().enumerate() {
        l["awsRegion"] = json!(if i < 2 {
            "ap-southeast-3"
        } else {
            "eu-north-1"
        });
    }
    let group: Vec<Value> = read("cloudtrail-autoscaling.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let top = unique("every-region").replace("/state.json", "");
    let files = [
        (
            "AWSLogs/111122223333/CloudTrail/us-east-1/2025/05/05/111122223333_CloudTrail_us-east-1_20250505T0405Z_a.json",
            group,
        ),
        (
            "AWSLogs/111122223333/CloudTrail/ap-southeast-3/2025/05/05/111122223333_CloudTrail_ap-southeast-3_20250505T1220Z_b.json",
            launches[..2].to_vec(),
        ),
        // An organization trail's folder beside the account's.
        (
            "AWSLogs/o-exampleorg1/111122223333/CloudTrail/eu-north-1/2025/05/05/111122223333_CloudTrail_eu-north-1_20250505T1225Z_c.json",
            launches[2..].to_vec(),
        ),
    ];
    let offline = tempfile::tempdir().unwrap();
    for (i, (key, records)) in files.iter().enumerate() {
        let body = json!({ "Records": records }).to_string().into_bytes();
        std::fs::write(offline.path().join(format!("{i}.json")), &body).unwrap();
        put_object(region, bucket, &format!("{top}/{key}"), body);
    }
    let want = offline_ids(offline.path());
    assert_eq!(
        want.len(),
        1,
        "the credential→launch finding offline: {want:?}"
    );
    assert!(
        want[0].starts_with("finding-correlator/instance-credentials-launch-compute/"),
        "{want:?}"
    );
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let run = |state: &str, allow: &str| {
        let mut cmd = run_cmd(&mock, region, state);
        cmd.env("CORRELATOR_AWS_SOURCES", "cloudtrail_s3")
            .env(
                "CORRELATOR_AWS_TRAIL",
                format!("s3://{bucket}/{top}/AWSLogs/"),
            )
            .env("CORRELATOR_AWS_REGIONS", "us-east-1")
            .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url);
        if !allow.is_empty() {
            cmd.env("CORRELATOR_AWS_TRAIL_REGIONS", allow);
        }
        cmd.output().unwrap()
    };
    let state = tmp.path().join("all.json");
    let out = run(state.to_str().unwrap(), "");
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["sources"][0]["records"], 5, "{s}");
    assert_eq!(ids(&mock.imported()), want);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ap-southeast-3,eu-north-1,us-east-1"),
        "the regions found are logged: {stderr}"
    );

    // `aws.trail_regions` narrows the trail to the regions listed.
    let state = tmp.path().join("narrow.json");
    let out = run(state.to_str().unwrap(), "eu-north-1");
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["sources"][0]["records"], 1, "{s}");
    assert_eq!(s["findings"]["sent"], 0, "{s}");
}

/// What a finding in Security Hub says, without what depends on the clock or on the region
/// it was written to.
fn comparable(findings: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "Id": f["Id"],
                "RecordState": f["RecordState"],
                "Title": f["Title"],
                "Severity": f["Severity"]["Label"],
                "Resources": f["Resources"].as_array().map(|r| r.iter().map(|x| x["Id"].clone()).collect::<Vec<_>>()),
                "Signals": f["Detection"]["Sequence"]["Signals"].as_array().map_or(0, Vec::len),
                "CreatedAt": f["CreatedAt"],
            })
        })
        .collect();
    out.sort_by_key(|v| v["Id"].to_string());
    out
}

/// Both scenarios' findings and events.
fn two_scenarios() -> (Vec<Value>, Vec<Value>) {
    let mut findings = Vec::new();
    let mut events = Vec::new();
    for d in [
        "scenarios/compromised-instance-group/positive",
        "scenarios/instance-credentials-launch-compute/positive",
    ] {
        let (f, e) = scenario(&common::fixture(d));
        findings.extend(f);
        events.extend(e);
    }
    (findings, events)
}

/// The lease in the state object, if any.
fn lease_of(region: &str, bucket: &str, key: &str) -> Option<Value> {
    let bytes = get_object(region, bucket, key)?;
    let v: Value = common::try_state_value(&bytes)?;
    v.get("lease").cloned()
}

/// Waits until `f` holds, at most 60 s.
pub(crate) fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            start.elapsed().as_secs() < 60,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A slow `LookupEvents` answer: the run that gets it is still polling a minute later.
fn slow_lookup() -> Fault {
    Fault {
        status: 200,
        body: json!({"Events": []}).to_string(),
        delay_ms: 60_000,
    }
}

/// Issue 12, item 3: a run killed (`kill -9`) after it claimed the S3 state leaves its lease
/// there; the next run, started at once on the same host, sees that the holder's process is
/// gone, takes the state over, and leaves Security Hub exactly as a clean run does.
#[test]
fn issue_12_a_run_killed_holding_the_lease_does_not_block_the_next() {
    let (findings, events) = two_scenarios();
    // The clean run, in a Security Hub region of its own.
    let clean_region = "us-west-2";
    prepare(clean_region, "killed-run-clean");
    let clean = Mock::start();
    clean.add_findings(findings.clone());
    clean.add_events(events.clone());
    let tmp = tempfile::tempdir().unwrap();
    let out = run_cmd(
        &clean,
        clean_region,
        tmp.path().join("clean.json").to_str().unwrap(),
    )
    .output()
    .unwrap();
    exits(&out, 0);
    let want = comparable(&security_hub_findings(clean_region));
    assert!(want.len() >= 2, "{want:?}");

    let (region, bucket) = ("eu-west-3", "killed-run");
    prepare(region, bucket);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    mock.fail("LookupEvents", [slow_lookup()]);
    let key = unique("killed");
    let state = format!("s3://{bucket}/{key}");
    let mut child = spawn_run(&mock, region, &state, &[]);
    let lease = wait_for("the run's lease in S3", || lease_of(region, bucket, &key));
    assert_eq!(lease["pid"], child.id(), "{lease}");
    wait_for("the run to poll CloudTrail", || {
        mock.seen()
            .iter()
            .any(|r| r.operation == "LookupEvents")
            .then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        lease_of(region, bucket, &key).is_some(),
        "the killed run's lease is left in the state"
    );

    // The next run, at once: it takes the state over and completes.
    let out = run_cmd(&mock, region, &state).output().unwrap();
    exits(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("taking the state over from a run that is gone")
            && stderr.contains(&format!("its process {} on this host", lease["pid"])),
        "{stderr}"
    );
    assert!(lease_of(region, bucket, &key).is_none(), "released");
    assert_eq!(comparable(&security_hub_findings(region)), want);
    // And the run after it has nothing more to write.
    let out = run_cmd(&mock, region, &state).output().unwrap();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["sent"], 0);
    assert_eq!(comparable(&security_hub_findings(region)), want);
}

/// Issue 12, item 3: on ECS, a lease whose task is still RUNNING blocks the next run; once
/// ECS says the task is STOPPED, the next run takes the state over, and its own lease names
/// its task (from the task metadata endpoint).
#[test]
fn issue_12_a_lease_held_by_a_stopped_ecs_task_is_taken_over() {
    let (region, bucket) = ("eu-south-2", "ecs-lease");
    prepare(region, bucket);
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let held =
        "arn:aws:ecs:eu-south-2:123456789012:task/correlator/11111111111111111111111111111111";
    let mine =
        "arn:aws:ecs:eu-south-2:123456789012:task/correlator/22222222222222222222222222222222";
    mock.serve_task_metadata(
        "arn:aws:ecs:eu-south-2:123456789012:cluster/correlator",
        mine,
    );
    let key = unique("ecs-lease");
    let bytes = stopped_task_lease(held);
    put_object(region, bucket, &key, bytes.clone());
    let metadata = format!("{}/v4/2222-container", mock.url);
    let run = || {
        run_cmd(&mock, region, &format!("s3://{bucket}/{key}"))
            .env("AWS_ENDPOINT_URL_ECS", &mock.url)
            .env("ECS_CONTAINER_METADATA_URI_V4", &metadata)
            .output()
            .unwrap()
    };
    let polled = |seen: &[crate::aws_mock::Seen]| {
        seen.iter()
            .any(|r| r.operation == "ListDetectors" || r.operation == "LookupEvents")
    };

    mock.set_task(held, "RUNNING");
    let out = run();
    exits(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by another run (11111111111111111111111111111111:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("correlator state release --holder"),
        "{stderr}"
    );
    let seen = mock.seen();
    let asked = seen
        .iter()
        .find(|r| r.operation == "DescribeTasks")
        .unwrap();
    assert_eq!(
        asked.body["cluster"],
        "arn:aws:ecs:eu-south-2:123456789012:cluster/correlator"
    );
    assert_eq!(asked.body["tasks"], json!([held]));
    assert!(!polled(&seen), "no source was read");
    assert_eq!(get_object(region, bucket, &key).unwrap(), bytes);

    mock.set_task(held, "STOPPED");
    let out = run();
    exits(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("its ECS task"), "{stderr}");
    assert!(stderr.contains("is STOPPED (OutOfMemoryError"), "{stderr}");
    assert!(
        stderr.contains("holder=22222222222222222222222222222222:")
            || stderr.contains("holder: 22222222222222222222222222222222:"),
        "this run's lease names its task: {stderr}"
    );
    assert_eq!(summary(&out)["findings"]["new"], 1);
    assert!(lease_of(region, bucket, &key).is_none());
}

/// The README: a first run looks back `aws.lookback`, and a later one asks GuardDuty's
/// `ListFindings` for findings updated since its checkpoint less `aws.overlap` (10 minutes),
/// so a finding updated while the last run read is read again, not missed. The criterion
/// the SDK sent is checked, run after run.
#[test]
fn listfindings_asks_from_the_lookback_then_from_the_checkpoint_less_the_overlap() {
    let (region, bucket) = ("eu-west-3", "gd-criterion");
    let mock = scenario_mock(region, bucket);
    let key = unique("gd-criterion");
    let state = format!("s3://{bucket}/{key}");
    let now = now_ms;
    let asked = |mock: &Mock| -> Vec<i64> {
        mock.seen()
            .iter()
            .filter(|r| r.operation == "ListFindings")
            .map(|r| {
                r.body["findingCriteria"]["criterion"]["updatedAt"]["greaterThanOrEqual"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("{}", r.body))
            })
            .collect()
    };
    let before = now();
    let out = run_cmd(&mock, region, &state)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .env("CORRELATOR_AWS_LOOKBACK", "24h")
        .output()
        .unwrap();
    let after = now();
    exits(&out, 0);
    let day = 86_400_000;
    let first = asked(&mock);
    assert!(!first.is_empty());
    for from in &first {
        assert!(
            (before - day..=after - day).contains(from),
            "{from} is not 24 hours before the run ({before}..{after})"
        );
    }
    // The checkpoint the run saved: the newest `updatedAt` it read.
    let saved = common::state_value(&get_object(region, bucket, &key).unwrap());
    let cursor = saved["checkpoints"][format!("aws/guardduty/{region}")]["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", saved["checkpoints"]));
    let cursor = finding_correlator::time::parse_timestamp(cursor).unwrap();
    let seen_before = first.len();
    let out = run_cmd(&mock, region, &state)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .env("CORRELATOR_AWS_LOOKBACK", "24h")
        .output()
        .unwrap();
    exits(&out, 0);
    let second = &asked(&mock)[seen_before..];
    assert!(!second.is_empty());
    for from in second {
        assert_eq!(*from, cursor - 600_000, "the checkpoint less the overlap");
    }
}

/// The README: when every event the loaded rules select is named exactly, `LookupEvents`
/// asks only for those names (it is limited to 2 calls a second); with the shipped rules,
/// which select some by pattern, it asks for everything. Narrowed, it still reads the
/// launches that tell the graph which group an instance belongs to: a rule on a group (mining
/// on one member, an access key created with another member's credentials, a member whose
/// group only its Auto Scaling launch says) finds what an unrestricted run finds.
#[test]
fn lookupevents_narrowed_to_the_rules_event_names_still_reads_the_launches_the_graph_needs() {
    let region = "us-east-2";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    // Mining on member 1; a key created with member 3's credentials (its group only in the
    // Auto Scaling launch of member 3).
    let findings: Vec<Value> = findings
        .into_iter()
        .filter(|f| f["type"] == "CryptoCurrency:EC2/BitcoinTool.B!DNS")
        .collect();
    let events: Vec<Value> = events
        .into_iter()
        .filter(|e| e["eventName"] == "RunInstances" || e["eventName"] == "CreateAccessKey")
        .map(|e| {
            serde_json::from_str(
                &e.to_string()
                    .replace(":i-0a15ce00000000001\"", ":i-0a15ce00000000003\"")
                    .replace("/i-0a15ce00000000001\"", "/i-0a15ce00000000003\""),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(events.len(), 4, "three launches and the key");
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("group-mining-and-key.yaml"),
        r#"id: group-mining-and-key
title: Mining on an instance group and an access key created with its credentials
description: A rule that names every event it selects exactly.
severity: HIGH
types: ["TTPs/Impact/Resource Hijacking"]
runbook: Isolate the group and revoke the key.
emit: finding
stages:
  - name: cryptomining
    select:
      finding_types: ["CryptoCurrency:*"]
  - name: access_key
    select:
      events: ["iam.amazonaws.com:CreateAccessKey"]
      where:
        - field: actor.instance_id
          exists: true
group_by: instance_group
window: 24h
condition:
  distinct_stages: 2
"#,
    )
    .unwrap();
    let asked = |mock: &Mock| -> Vec<Option<String>> {
        let mut names: Vec<Option<String>> = mock
            .seen()
            .iter()
            .filter(|r| r.operation == "LookupEvents")
            .map(|r| {
                r.body["LookupAttributes"][0]["AttributeValue"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let run = |with_rules: bool| {
        let mock = Mock::start();
        mock.add_findings(findings.clone());
        mock.add_events(events.clone());
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state.json");
        let mut cmd = run_cmd(&mock, region, state.to_str().unwrap());
        cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url);
        if with_rules {
            cmd.arg("--rules").arg(rules.path());
        }
        let out = cmd.output().unwrap();
        exits(&out, 0);
        (asked(&mock), ids(&mock.imported()))
    };
    // The shipped rules: every event.
    let (names, _) = run(false);
    assert_eq!(names, [None], "no event name asked for");
    // The rule's: its names, and the launches.
    let (names, written) = run(true);
    let names: Vec<String> = names.into_iter().map(|n| n.expect("a name")).collect();
    assert!(names.contains(&"CreateAccessKey".to_string()), "{names:?}");
    assert!(names.contains(&"RunInstances".to_string()), "{names:?}");
    assert!(
        !names.contains(&"AuthorizeSecurityGroupIngress".to_string()),
        "{names:?}"
    );
    assert_eq!(written.len(), 1, "the group's finding: {written:?}");
    assert!(written[0].contains("/group-mining-and-key/"), "{written:?}");
    assert!(
        written[0].contains("/auto_scaling_group/shop-asg/"),
        "{written:?}"
    );
}

/// The README: an S3 state that is damaged, not a state, or written by a newer version
/// stops `run` (exit 3) before it reads anything, and is left as it is; a sound state is
/// saved `Content-Type: application/zstd`.
#[test]
fn a_damaged_or_newer_s3_state_stops_the_run_and_is_left_alone() {
    let (region, bucket) = ("eu-north-1", "bad-state");
    let mock = scenario_mock(region, bucket);
    let mut newer = common::state_value(&finding_correlator::state::State::new().to_json());
    newer["version"] = json!(finding_correlator::state::VERSION + 1);
    let sound = finding_correlator::state::State::new().encode();
    let mut flipped = sound.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    for (what, bytes) in [
        ("not a state", b"<html>not a state</html>".to_vec()),
        ("a changed byte", flipped),
        ("cut short", sound[..sound.len() / 2].to_vec()),
        ("a newer version", newer.to_string().into_bytes()),
    ] {
        let key = unique("bad-state");
        put_object(region, bucket, &key, bytes.clone());
        let out = run_cmd(&mock, region, &format!("s3://{bucket}/{key}"))
            .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
            .output()
            .unwrap();
        exits(&out, 3);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&key),
            "{what}: the error names the state: {stderr}"
        );
        assert_eq!(get_object(region, bucket, &key).unwrap(), bytes, "{what}");
        assert!(mock.imported().is_empty(), "{what}");
    }
    // A sound one is saved as zstd.
    let key = unique("good-state");
    let out = run_cmd(&mock, region, &format!("s3://{bucket}/{key}"))
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .output()
        .unwrap();
    exits(&out, 0);
    let rt = runtime();
    let head = rt.block_on(async {
        let conf = sdk(region, &moto()).await;
        aws_sdk_s3::Client::new(&conf)
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(head.content_type(), Some("application/zstd"));
}

/// The README: the state's bucket (and the reports', here the same as in the deployed stack)
/// may be in another region than the first of `aws.regions`. S3 refuses a call signed for
/// the wrong region and names the bucket's (the mock answers as S3 does a path-style request:
/// 301 and `x-amz-bucket-region`); the run goes on there: it claims, reads and saves the
/// state and writes the reports, and the next run continues from the state.
#[test]
fn an_s3_state_and_reports_in_another_region_than_the_first_are_reached_there() {
    let (first, home, bucket) = ("ap-northeast-3", "eu-west-3", "state-elsewhere");
    let mock = scenario_mock(first, bucket);
    mock.proxy(&moto());
    mock.bucket_in(bucket, home);
    let key = unique("elsewhere");
    let state = format!("s3://{bucket}/{key}");
    let reports = format!("s3://{bucket}/{}", key.replace("/state.json", "/reports/"));
    let run = || {
        run_cmd(&mock, first, &state)
            .env("AWS_ENDPOINT_URL_S3", &mock.url)
            .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
            .env("CORRELATOR_AWS_REPORTS", &reports)
            .output()
            .unwrap()
    };
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["new"], 1);
    assert_eq!(
        mock.redirected(),
        2,
        "the state's first call and the first report's, signed for {first}"
    );
    let saved = get_object(home, bucket, &key).expect("the state is saved");
    finding_correlator::state::State::decode(&saved[..], &state).expect("a sound state");
    let imported = mock.imported();
    let report = imported[0]["ProductFields"]["finding-correlator/report"]
        .as_str()
        .unwrap();
    let report_key = report.strip_prefix(&format!("s3://{bucket}/")).unwrap();
    assert!(get_object(home, bucket, report_key).is_some(), "{report}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(home),
        "the log names the bucket's region"
    );
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        (&s["findings"]["new"], &s["findings"]["to_send"]),
        (&json!(0), &json!(0)),
        "the second run went on from the saved state: {s}"
    );
    assert_eq!(
        mock.redirected(),
        3,
        "the state's first call only (no report to write), then calls in {home}"
    );
}

/// The README: with the `securityhub` source, this tool's own findings are never read back
/// (filtered by product name in the request, and again on the client): the finding a run
/// wrote to Security Hub is not a signal of the next run, which writes nothing.
#[test]
fn the_securityhub_source_never_reads_this_tools_own_findings_back() {
    let (region, bucket) = ("eu-south-1", "own-findings");
    let mock = scenario_mock(region, bucket);
    let key = unique("own-findings");
    let state = format!("s3://{bucket}/{key}");
    let run = || {
        run_cmd(&mock, region, &state)
            .env("CORRELATOR_AWS_SOURCES", "guardduty,securityhub,cloudtrail")
            .output()
            .unwrap()
    };
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["new"], 1, "{s}");
    let written = security_hub_findings(region);
    let own: Vec<&Value> = written
        .iter()
        .filter(|f| f["ProductName"] == "finding-correlator")
        .collect();
    assert!(!own.is_empty(), "the finding is in Security Hub");
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        (
            &s["findings"]["new"],
            &s["findings"]["updated"],
            &s["findings"]["to_send"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{s}"
    );
    let sh_records: u64 = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source"] == "securityhub")
        .map(|l| l["records"].as_u64().unwrap())
        .sum();
    assert_eq!(sh_records, 0, "its own finding was read back: {s}");
}

/// The README: `LookupEvents` is called at most 2 times a second per region (CloudTrail's
/// quota; a run that outran it would be throttled past its retries). 150 events, three
/// pages: consecutive calls at least half a second apart.
#[test]
fn lookupevents_is_called_at_most_twice_a_second() {
    let region = "ap-south-2";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let base = &events[0];
    let many: Vec<Value> = (0..150)
        .map(|i| {
            let mut e = base.clone();
            e["eventID"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            e["eventTime"] = json!(format!("2025-05-03T06:{:02}:{:02}Z", i / 60, i % 60));
            e
        })
        .collect();
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(many);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = run_cmd(&mock, region, state.to_str().unwrap())
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .env("CORRELATOR_AWS_CLOUDTRAIL_CALLS_PER_SECOND", "2")
        .output()
        .unwrap();
    exits(&out, 0);
    let calls: Vec<std::time::Instant> = mock
        .seen()
        .iter()
        .filter(|r| r.operation == "LookupEvents")
        .map(|r| r.at)
        .collect();
    assert!(calls.len() >= 3, "{} calls", calls.len());
    assert_at_most(&calls, 1, 450, "LookupEvents");
}

/// The README: "a dead holder the run cannot check blocks for at most 5 minutes". A lease held
/// by a run on another host (its process cannot be looked up, it is no ECS task) blocks until
/// it expires, and an expired one is taken over.
#[test]
fn a_lease_of_another_host_blocks_until_it_expires_and_is_then_taken_over() {
    let (region, bucket) = ("eu-central-2", "expired-lease");
    let mock = scenario_mock(region, bucket);
    let key = unique("expired-lease");
    let now = now_ms();
    let lease = |expires: i64| {
        let mut held = finding_correlator::state::State::new();
        held.lease = Some(finding_correlator::state::Lease {
            holder: "elsewhere:4242".to_string(),
            since: now - 600_000,
            expires,
            host: Some("a-host-that-is-not-this-one".to_string()),
            pid: Some(4242),
            ..Default::default()
        });
        held.to_json()
    };
    let run = || {
        run_cmd(&mock, region, &format!("s3://{bucket}/{key}"))
            .output()
            .unwrap()
    };
    // Held, and not expired: the run stops before reading anything and leaves the state.
    let live = lease(now + 3_600_000);
    put_object(region, bucket, &key, live.clone());
    let out = run();
    exits(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by another run (elsewhere:4242"),
        "{stderr}"
    );
    assert_eq!(get_object(region, bucket, &key).unwrap(), live);
    // Expired a second ago: taken over, the run completes and releases it.
    put_object(region, bucket, &key, lease(now - 1_000));
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["new"], 1);
    assert!(lease_of(region, bucket, &key).is_none());
    // A run's lease lasts 5 minutes unless configured (renewed while it works).
    let defaults = finding_correlator::config::Config::parse("")
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(defaults.aws.lease, 300_000);
}

/// Issue 12, item 3: a lease is short and renewed while the run works, so a run elsewhere
/// (another host: it cannot tell whether the holder runs) still finds it held after the
/// first lease would have expired.
#[test]
fn issue_12_a_working_run_renews_its_short_lease() {
    let (region, bucket) = ("ap-southeast-4", "renewed-lease");
    let mock = scenario_mock(region, bucket);
    mock.fail(
        "LookupEvents",
        [Fault {
            delay_ms: 8_000,
            ..slow_lookup()
        }],
    );
    let key = unique("renewed");
    let state = format!("s3://{bucket}/{key}");
    // Renewed every second: two seconds of slack for a loaded machine.
    let lease = [("CORRELATOR_AWS_LEASE", "3s"), ("HOSTNAME", "host-a")];
    let mut first = spawn_run(&mock, region, &state, &lease);
    let taken = wait_for("the run's lease in S3", || lease_of(region, bucket, &key));
    assert_eq!(taken["host"], "host-a");
    // Past the first lease's end, the run still holds the state, under a renewed lease.
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    let renewed = lease_of(region, bucket, &key).expect("still held");
    assert!(
        renewed["expires"].as_str() > taken["expires"].as_str(),
        "{taken} then {renewed}"
    );
    let out = run_cmd(&mock, region, &state)
        .env("HOSTNAME", "host-b")
        .output()
        .unwrap();
    exits(&out, 3);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("held by another run (host-a:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = first.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        lease_of(region, bucket, &key).is_none(),
        "released at the end"
    );
}

/// `correlator state release` on `state` (with `CORRELATOR_AWS_SHARD` when given a shard,
/// and `--holder` when given a holder).
fn state_release(
    mock: &Mock,
    region: &str,
    state: &str,
    shard: Option<&str>,
    holder: Option<&str>,
) -> std::process::Output {
    let mut cmd = correlator();
    for (k, v) in aws_env(mock, region, state) {
        cmd.env(k, v);
    }
    if let Some(shard) = shard {
        cmd.env("CORRELATOR_AWS_SHARD", shard);
    }
    cmd.args(["state", "release"]);
    if let Some(h) = holder {
        cmd.args(["--holder", h]);
    }
    cmd.output().unwrap()
}

/// Issue 12, item 3: `correlator state release` shows who holds the state, and frees the
/// lease only when told whose it is.
#[test]
fn issue_12_state_release_frees_a_lease_only_when_its_holder_is_named() {
    let (region, bucket) = ("ca-west-1", "release-lease");
    prepare(region, bucket);
    let mock = Mock::start();
    let key = unique("release");
    let state = format!("s3://{bucket}/{key}");
    let task =
        "arn:aws:ecs:ca-west-1:123456789012:task/correlator/33333333333333333333333333333333";
    let bytes = stopped_task_lease(task);
    put_object(region, bucket, &key, bytes.clone());
    let release = |holder: Option<&str>| state_release(&mock, region, &state, None, holder);
    let holder = "33333333333333333333333333333333:1";
    let out = release(None);
    exits(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the lease of {holder} on state {state}"))
            && stderr.contains(&format!("--holder '{holder}'")),
        "{stderr}"
    );
    let out = release(Some("someone-else:7"));
    exits(&out, 2);
    assert_eq!(
        get_object(region, bucket, &key).unwrap(),
        bytes,
        "unchanged"
    );
    let out = release(Some(holder));
    exits(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("released the lease of {holder}")),
        "{stderr}"
    );
    assert!(lease_of(region, bucket, &key).is_none());
    let out = release(Some(holder));
    exits(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no lease: nothing to release"));
    // A local state has no lease.
    let out = correlator()
        .args(["state", "release", "--state", "local-state.json"])
        .output()
        .unwrap();
    exits(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a local file"));
}

/// The README: "`state inspect` and `state release` with the same `aws.shard` find it". A
/// shard's lease is on `KEY.shard-I-of-N`: `state release` with that shard shows and frees
/// it there, and leaves the other shards' states and the unsharded key alone.
#[test]
fn state_release_with_a_shard_finds_that_shard_s_state() {
    let (region, bucket) = ("ca-west-1", "release-shard");
    prepare(region, bucket);
    let mock = Mock::start();
    let key = unique("release-shard");
    let state = format!("s3://{bucket}/{key}");
    let task =
        "arn:aws:ecs:ca-west-1:123456789012:task/correlator/44444444444444444444444444444444";
    let held = stopped_task_lease(task);
    let other = stopped_task_lease(
        "arn:aws:ecs:ca-west-1:123456789012:task/correlator/55555555555555555555555555555555",
    );
    put_object(region, bucket, &format!("{key}.shard-2-of-3"), held.clone());
    put_object(
        region,
        bucket,
        &format!("{key}.shard-1-of-3"),
        other.clone(),
    );
    let release = |shard: &str, holder: Option<&str>| {
        state_release(&mock, region, &state, Some(shard), holder)
    };
    let holder = "44444444444444444444444444444444:1";
    let out = release("2/3", None);
    exits(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the lease of {holder} on state {state}.shard-2-of-3"
        )),
        "{stderr}"
    );
    let out = release("2/3", Some(holder));
    exits(&out, 0);
    assert!(lease_of(region, bucket, &format!("{key}.shard-2-of-3")).is_none());
    assert_eq!(
        get_object(region, bucket, &format!("{key}.shard-1-of-3")).unwrap(),
        other,
        "another shard's state is left alone"
    );
    assert!(
        get_object(region, bucket, &key).is_none(),
        "nothing is written at the unsharded key"
    );
    // Shard 1's holder is not shard 3's: nothing there to release.
    let out = release("3/3", None);
    exits(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shard-3-of-3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 12, item 6: a CloudTrail event that `LookupEvents` shows only at the second poll,
/// with an event time before the first poll (and well before the newest event that poll
/// read), is read, and counted as late.
#[test]
fn issue_12_a_cloudtrail_event_visible_only_at_the_second_poll_is_read() {
    let region = "me-south-1";
    let dir = common::fixture("scenarios/instance-credentials-launch-compute/positive");
    let (_, events) = scenario(&dir);
    let launch = events
        .iter()
        .find(|e| {
            e["eventName"] == "RunInstances"
                && e["userIdentity"]["arn"].as_str().unwrap().contains("/i-")
        })
        .unwrap()
        .clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = |minutes_ago: i64, id: &str| {
        let mut e = launch.clone();
        e["eventTime"] = json!(
            finding_correlator::time::format_rfc3339(now - minutes_ago * 60_000)
                .replace(".000Z", "Z")
        );
        e["eventID"] = json!(id);
        e["awsRegion"] = json!(region);
        e
    };
    let mock = Mock::start();
    mock.add_events([at(1, "00000000-0000-4000-8000-00000000000a")]);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        let out = run_on_mock(
            &mock,
            region,
            &state,
            &[("CORRELATOR_AWS_SOURCES", "cloudtrail")],
        );
        exits(&out, 0);
        summary(&out)["sources"][0].clone()
    };
    let first = run();
    assert_eq!(first["records"], 1, "{first}");
    assert_eq!(first["late"], 0, "{first}");
    // Delivered late: it happened 20 minutes ago, before the first poll.
    mock.add_events([at(20, "00000000-0000-4000-8000-00000000000b")]);
    let second = run();
    assert_eq!(second["late"], 1, "{second}");
    assert_eq!(
        second["records"], 2,
        "read again with the event before it: {second}"
    );
    // Read once: the poll after it reads it again but does not count it late again.
    let third = run();
    assert_eq!(third["late"], 0, "{third}");
}

#[test]
fn issue_12_a_finding_guardduty_updates_five_times_stays_one_active_finding_in_security_hub() {
    use crate::finding_updates::{FIRST_SEEN, SEQUENCE_ID, command_and_control, version};
    let (region, bucket) = ("ap-east-1", "updates-state");
    prepare(region, bucket);
    let mock = Mock::start();
    mock.add_findings([version(1), command_and_control()]);
    let state = format!("s3://{bucket}/{}", unique("updates"));
    let mut updated_at: Vec<String> = Vec::new();
    for k in 1..=5 {
        if k > 1 {
            mock.update_finding(version(k));
        }
        let out = run_cmd(&mock, region, &state).output().unwrap();
        exits(&out, 0);
        let s = summary(&out);
        let (new, updated) = if k == 1 { (1, 0) } else { (0, 1) };
        assert_eq!(s["findings"]["new"], new, "run {k}: {s}");
        assert_eq!(s["findings"]["updated"], updated, "run {k}: {s}");
        assert_eq!(s["findings"]["superseded"], 0, "run {k}: {s}");
        let found = security_hub_findings(region);
        assert_eq!(ids(&found), vec![SEQUENCE_ID.to_string()], "run {k}");
        let f = &found[0];
        assert_eq!(f["RecordState"], "ACTIVE", "run {k}");
        assert_eq!(f["CreatedAt"], FIRST_SEEN, "run {k}");
        // The newest sighting: the C&C finding's until the mining finding's moves past it.
        let newest = [version(k), command_and_control()]
            .map(|g| g["service"]["eventLastSeen"].as_str().unwrap().to_string())
            .into_iter()
            .max();
        assert_eq!(f["LastObservedAt"].as_str(), newest.as_deref(), "run {k}");
        updated_at.push(f["UpdatedAt"].as_str().unwrap().to_string());
    }
    assert!(
        updated_at.windows(2).all(|w| w[1] > w[0]),
        "UpdatedAt moves forward: {updated_at:?}"
    );
}

#[test]
fn issue_12_sts_failure_stops_the_run_with_the_error_chain() {
    let region = "ap-southeast-1";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    // Nothing listens on port 9: STS cannot be reached.
    let out = run_on_mock(
        &mock,
        region,
        &state,
        &[
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"),
            ("CORRELATOR_AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    exits(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STS GetCallerIdentity"), "{stderr}");
    assert!(
        stderr.contains("could not send the request: ") && stderr.contains("onnect"),
        "the error chain names the connection: {stderr}"
    );
    assert!(
        !stderr.contains("DispatchFailure") && !stderr.contains("{ "),
        "no debug structs: {stderr}"
    );
    assert!(!state.exists(), "nothing saved");
    assert!(mock.imported().is_empty(), "nothing written");
}

#[test]
fn issue_12_the_partition_comes_from_the_caller_and_the_records() {
    // moto answers GetCallerIdentity in cn-north-1 with an `arn:aws-cn:` ARN.
    let (region, bucket) = ("cn-north-1", "partition-cn");
    prepare(region, bucket);
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    let to_cn = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|r| {
                serde_json::from_str(
                    &r.to_string()
                        .replace("us-east-1", region)
                        .replace("arn:aws:", "arn:aws-cn:"),
                )
                .unwrap()
            })
            .collect()
    };
    let mock = Mock::start();
    mock.add_findings(to_cn(findings));
    mock.add_events(to_cn(events));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = run_cmd(&mock, region, state.to_str().unwrap())
        .output()
        .unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["imported"], 1, "{s}");
    let written = security_hub_findings(region);
    assert_eq!(written.len(), 1);
    let f = &written[0];
    assert_eq!(
        f["ProductArn"],
        format!("arn:aws-cn:securityhub:{region}:123456789012:product/123456789012/default")
    );
    for r in f["Resources"].as_array().unwrap() {
        assert_eq!(r["Partition"], "aws-cn", "{r}");
    }
    assert!(!f.to_string().contains("arn:aws:"), "{f}");

    // A configured partition that the credentials do not match stops the run.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    // No regions configured: the SDK's region (us-east-1) is used, and moto answers in the
    // aws partition.
    let out = run_cmd(&mock, "us-east-1", state.to_str().unwrap())
        .env_remove("CORRELATOR_AWS_REGIONS")
        .env("CORRELATOR_AWS_PARTITION", "aws-cn")
        .output()
        .unwrap();
    exits(&out, 3);
    assert!(!state.exists(), "nothing saved");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the credentials are of partition \"aws\""),
        "{stderr}"
    );
}

#[test]
fn issue_12_a_dry_run_says_what_would_be_sent_and_names_new_regions() {
    let region = "ap-northeast-2";
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let (findings, events) = scenario(&dir);
    // The records are of a region newer than this build: read and kept as given.
    let newer = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|r| {
                serde_json::from_str(&r.to_string().replace("us-east-1", "ap-southeast-9")).unwrap()
            })
            .collect()
    };
    let mock = Mock::start();
    mock.add_findings(newer(findings));
    mock.add_events(newer(events));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let mut cmd = correlator();
    cmd.env("AWS_ENDPOINT_URL", moto())
        .env("AWS_ENDPOINT_URL_GUARDDUTY", &mock.url)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &mock.url)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", region)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env("CORRELATOR_AWS_REGIONS", region)
        .env("CORRELATOR_AWS_LOOKBACK", "1000d")
        .env("CORRELATOR_STATE", &state)
        .args(["run", "--dry-run"]);
    let out = cmd.output().unwrap();
    exits(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("sink "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.ends_with("; 1 would be sent"), "{line}");
    assert!(!line.contains(" sent,"), "{line}");
    assert!(
        stderr.contains("regions not in this build's list, kept as given: ap-southeast-9 ("),
        "{stderr}"
    );
    assert!(mock.imported().is_empty());
    let out = cmd.args(["--summary", "json"]).output().unwrap();
    let s = summary(&out);
    assert_eq!(s["findings"]["to_send"], 1, "{s}");
    assert_eq!(s["findings"]["sent"], 0, "{s}");
    assert!(
        s["unknown_regions"]["ap-southeast-9"].as_u64().unwrap() > 0,
        "{s}"
    );
}

/// `correlate --state` over files and `run` with the file sink over the same records go
/// through one run loop: they write the same findings, a second run of each writes none, and
/// each saves a state that replays the same sequences.
#[test]
fn issue_15_correlate_with_a_state_and_run_with_the_file_sink_write_the_same_findings() {
    let (region, bucket) = ("ap-southeast-2", "one-loop");
    prepare(region, bucket);
    let (findings, events) = two_scenarios();
    let mock = Mock::start();
    mock.add_findings(findings);
    mock.add_events(events);
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [
        common::fixture("scenarios/compromised-instance-group/positive"),
        common::fixture("scenarios/instance-credentials-launch-compute/positive"),
    ];
    let sink_file = tmp.path().join("sink.json");
    let sink = sink_file.to_str().unwrap();
    let aws_state = tmp.path().join("aws-state.json");
    let files_state = tmp.path().join("files-state.json");
    let read = |p: &Path| -> Vec<Value> {
        let doc: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        doc["Findings"].as_array().unwrap().clone()
    };
    let sequences = |p: &Path| -> Vec<String> {
        let doc: Value = common::state_value(&std::fs::read(p).unwrap());
        let mut ids: Vec<String> = doc["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut written = Vec::new();
    for pass in 0..2 {
        let out = run_on_mock(
            &mock,
            region,
            &aws_state,
            &[
                ("CORRELATOR_AWS_SINK", "file"),
                ("CORRELATOR_AWS_SINK_FILE", sink),
            ],
        );
        exits(&out, 0);
        let s = summary(&out);
        assert_eq!(s["findings"]["sink"], "file", "{s}");
        assert_eq!(s["state"]["saved"], true, "{s}");
        let aws = read(&sink_file);
        let asff = tmp.path().join(format!("files-{pass}.json"));
        let out = correlator()
            .args(["correlate", "--state"])
            .arg(&files_state)
            .arg("--asff")
            .arg(&asff)
            .args(&dirs)
            .output()
            .unwrap();
        exits(&out, 0);
        let files = read(&asff);
        assert_eq!(
            comparable(&aws),
            comparable(&files),
            "pass {pass}: the same findings through both commands"
        );
        assert_eq!(s["findings"]["imported"], files.len(), "pass {pass}: {s}");
        written.push(files.len());
    }
    assert_eq!(written, [2, 0], "each finding once, then nothing new");
    assert_eq!(sequences(&aws_state), sequences(&files_state));
}

/// A gzip body, as CloudTrail writes its log objects.
pub(crate) fn gz(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// The key of a log object of `account` in `region` under `top`, named at `stamp`
/// (`YYYYMMDDTHHmmZ`), in the day folder of that stamp.
pub(crate) fn trail_key(
    top: &str,
    account: &str,
    region: &str,
    stamp: &str,
    unique: &str,
) -> String {
    format!(
        "{top}/AWSLogs/o-exampleorg1/{account}/CloudTrail/{region}/{}/{}/{}/{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8]
    )
}

/// The records of the credential→launch scenario as `account`'s: the Auto Scaling group's
/// launches (us-east-1) and the instance credentials' launches (ap-south-1).
pub(crate) fn launch_scenario(account: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = common::fixture("scenarios/instance-credentials-launch-compute/positive");
    // Another account's instances and events have ids of their own.
    let own = |mut r: Value| {
        let id = r["eventID"].as_str().unwrap().to_string();
        r["eventID"] = json!(format!("{}{}", &account[..8], &id[8..]));
        r
    };
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .replace("111122223333", account)
            .replace("i-0b15ce", &format!("i-0{}", &account[..5]))
    };
    let group: Vec<Value> = read("cloudtrail-autoscaling.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| own(serde_json::from_str(l).unwrap()))
        .collect();
    let group = json!({ "Records": group }).to_string().into_bytes();
    let launches: Value = serde_json::from_str(&read(
        "111122223333_CloudTrail_ap-south-1_20250505T1230Z_8RVMICUclUxJQsPT.json",
    ))
    .unwrap();
    let launches: Vec<Value> = launches["Records"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(own)
        .collect();
    let launches = json!({ "Records": launches }).to_string().into_bytes();
    (group, launches)
}

/// `correlator run` over the organization trail under `top` (with `mock` as Security Hub).
fn trail_run(
    mock: &Mock,
    region: &str,
    bucket: &str,
    top: &str,
    state: &Path,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let trail = format!("s3://{bucket}/{top}/AWSLogs/");
    let mut all = vec![
        ("CORRELATOR_AWS_SOURCES", "cloudtrail_s3"),
        ("CORRELATOR_AWS_TRAIL", trail.as_str()),
    ];
    all.extend_from_slice(extra);
    run_on_mock(mock, region, state, &all)
}

pub(crate) fn state_doc(state: &Path) -> Value {
    crate::common::state_value(&std::fs::read(state).unwrap())
}

/// The trail folders' checkpoints of a saved state.
fn folder_checkpoints(state: &Path) -> serde_json::Map<String, Value> {
    state_doc(state)["checkpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("aws/cloudtrail_s3/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The finding ids one offline run gives for a group's records and its launches.
pub(crate) fn scenario_ids(group: &[u8], launches: &[u8]) -> Vec<String> {
    let offline = tempfile::tempdir().unwrap();
    std::fs::write(offline.path().join("g.json"), group).unwrap();
    std::fs::write(offline.path().join("l.json"), launches).unwrap();
    offline_ids(offline.path())
}

/// The README: the trail's bucket may be in another region than the first of `aws.regions`.
/// The poll's first listing, signed for the first region, is refused naming the bucket's
/// (as S3 answers, from the mock); the poll goes on there: every later listing and object is
/// read in the bucket's region at once, and the finding is written.
#[test]
fn a_trail_bucket_in_another_region_than_the_first_is_read_there() {
    let (first, home, bucket) = ("ca-central-1", "sa-east-1", "trail-elsewhere");
    prepare(first, bucket);
    let top = unique("trail-elsewhere").replace("/state.json", "");
    let (group, launches) = launch_scenario("111122223333");
    let want = scenario_ids(&group, &launches);
    for (region, at, name, body) in [
        ("us-east-1", "20250505T0405Z", "a", &group),
        ("ap-south-1", "20250505T1230Z", "b", &launches),
    ] {
        let key = trail_key(&top, "111122223333", region, at, name);
        put_object(first, bucket, &key, gz(body));
    }
    let mock = Mock::start();
    mock.proxy(&moto());
    mock.bucket_in(bucket, home);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = trail_run(
        &mock,
        first,
        bucket,
        &top,
        &state,
        &[("AWS_ENDPOINT_URL_S3", mock.url.as_str())],
    );
    exits(&out, 0);
    assert_eq!(ids(&mock.imported()), want);
    let records = |body: &[u8]| {
        serde_json::from_slice::<Value>(body).unwrap()["Records"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        summary(&out)["sources"][0]["records"],
        records(&group) + records(&launches),
        "every record of both objects"
    );
    assert_eq!(
        mock.redirected(),
        1,
        "the first call only; the others in {home}"
    );
}

#[test]
fn issue_15_a_damaged_trail_object_is_pending_and_its_finding_written_once_when_read() {
    let (region, bucket) = ("us-east-2", "trail-pending");
    prepare(region, bucket);
    let top = unique("pending").replace("/state.json", "");
    let (a_group, a_launches) = launch_scenario("111122223333");
    let (b_group, b_launches) = launch_scenario("444455556666");
    let launches_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b");
    let mut whole = Vec::new();
    for (account, group, launches) in [
        ("111122223333", a_group, a_launches.clone()),
        ("444455556666", b_group, b_launches),
    ] {
        whole.push(scenario_ids(&group, &launches));
        put_object(
            region,
            bucket,
            &trail_key(&top, account, "us-east-1", "20250505T0405Z", "a"),
            gz(&group),
        );
        if account == "444455556666" {
            put_object(
                region,
                bucket,
                &trail_key(&top, account, "ap-south-1", "20250505T1230Z", "b"),
                gz(&launches),
            );
        }
    }
    let (want_a, want_b) = (whole[0].clone(), whole[1].clone());
    assert_eq!((want_a.len(), want_b.len()), (1, 1), "{whole:?}");
    // Account 111122223333's launches: a gzip body cut short.
    let good = gz(&a_launches);
    put_object(
        region,
        bucket,
        &launches_key,
        good[..good.len() / 2].to_vec(),
    );
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || trail_run(&mock, region, bucket, &top, &state, &[]);

    let out = run();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(
        ids(&mock.imported()),
        want_b,
        "the other finding is written: {s}"
    );
    assert_eq!(s["trail"]["failed"], 1, "{s}");
    assert_eq!(s["trail"]["pending"], 1, "{s}");
    assert_eq!(s["trail"]["objects"], 3, "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let key_tail = launches_key.rsplit('/').next().unwrap();
    assert!(
        stderr.contains(key_tail) && stderr.contains("damaged gzip"),
        "the object is named with its reason: {stderr}"
    );
    let folder = format!(
        "aws/cloudtrail_s3/{}",
        &launches_key[..launches_key.find("2025/").unwrap()]
    );
    let pending = &folder_checkpoints(&state)[&folder]["pending"];
    assert_eq!(pending[0]["key"], launches_key.as_str(), "{pending}");
    assert_eq!(pending[0]["attempts"], 1, "{pending}");

    // Still damaged: still pending, named again, counted; a newer object of the same folder is
    // read all the same (the pending one does not hold the cursor back).
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "ap-south-1", "20250505T1235Z", "c"),
        record_at(1_501, "2025-05-05T12:31:00Z"),
    );
    let out = run();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(s["trail"]["pending"], 1, "{s}");
    assert_eq!(s["trail"]["objects"], 1, "the newer object: {s}");
    assert_eq!(s["sources"][0]["records"], 1, "{s}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(key_tail));
    let pending = &folder_checkpoints(&state)[&folder]["pending"];
    assert_eq!(pending[0]["attempts"], 2, "{pending}");
    assert_eq!(ids(&mock.imported()), want_b, "nothing new is sent");

    // Repaired: read, and the finding it completes written once.
    put_object(region, bucket, &launches_key, good);
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["trail"]["pending"], 0, "{s}");
    assert_eq!(s["findings"]["sent"], 1, "{s}");
    let mut all = [want_a.clone(), want_b.clone()].concat();
    all.sort();
    assert_eq!(ids(&mock.imported()), all);
    assert!(folder_checkpoints(&state)[&folder].get("pending").is_none());
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["sent"], 0);
    assert_eq!(summary(&out)["sources"][0]["records"], 0);
    assert_eq!(ids(&mock.imported()), all, "written once");
}

#[test]
fn issue_15_a_trail_object_too_large_once_decompressed_is_pending_not_read() {
    // A small gzip body that expands beyond `input.max_object_mib` (1 MiB here): the shape of
    // a decompression bomb, or of something that is no trail log. It is not read (the run's
    // memory stays bounded), named with the limit, kept pending and named again by the next
    // run; the other objects are read; raising the limit reads it.
    let (region, bucket) = ("us-east-2", "trail-too-large");
    prepare(region, bucket);
    let top = unique("too-large").replace("/state.json", "");
    let (group, launches) = launch_scenario("111122223333");
    let want = scenario_ids(&group, &launches);
    assert_eq!(want.len(), 1, "{want:?}");
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "us-east-1", "20250505T0405Z", "a"),
        gz(&group),
    );
    // The launches, padded with blanks to 2 MiB: valid JSON, too large at 1 MiB.
    let mut padded = launches.clone();
    padded.resize(2 << 20, b' ');
    let big_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b");
    let body = gz(&padded);
    assert!(body.len() < 64 << 10, "{} bytes compressed", body.len());
    put_object(region, bucket, &big_key, body);
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = |limit: &str| {
        trail_run(
            &mock,
            region,
            bucket,
            &top,
            &state,
            &[("CORRELATOR_INPUT_MAX_OBJECT_MIB", limit)],
        )
    };
    for attempt in 1..=2 {
        let out = run("1");
        exits(&out, 1);
        let s = summary(&out);
        assert_eq!(s["trail"]["pending"], 1, "{s}");
        assert!(mock.imported().is_empty(), "the launches were not read");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(big_key.rsplit('/').next().unwrap())
                && stderr.contains("larger than 1 MiB once decompressed")
                && stderr.contains("input.max_object_mib"),
            "the object is named with the limit: {stderr}"
        );
        let folder = format!(
            "aws/cloudtrail_s3/{}",
            &big_key[..big_key.find("2025/").unwrap()]
        );
        let pending = &folder_checkpoints(&state)[&folder]["pending"];
        assert_eq!(pending[0]["attempts"], attempt, "{pending}");
    }
    let out = run("4");
    exits(&out, 0);
    assert_eq!(summary(&out)["trail"]["pending"], 0);
    assert_eq!(ids(&mock.imported()), want, "read once the limit allows it");

    // Stored larger than the limit (here uncompressed): not downloaded, pending all the same.
    let raw_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1240Z", "c");
    put_object(region, bucket, &raw_key, padded);
    let out = run("1");
    exits(&out, 1);
    assert_eq!(summary(&out)["trail"]["pending"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(raw_key.rsplit('/').next().unwrap())
            && stderr.contains("larger than 1 MiB"),
        "{stderr}"
    );
}

/// A record of `single-record.json` with its own id and time.
pub(crate) fn record_at(id: u32, time: &str) -> Vec<u8> {
    let mut r: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("cloudtrail/single-record.json")).unwrap(),
    )
    .unwrap();
    r["eventID"] = json!(format!("00000000-0000-4000-8000-{id:012}"));
    r["eventTime"] = json!(time);
    gz(json!({ "Records": [r] }).to_string().as_bytes())
}

#[test]
fn issue_15_a_late_object_behind_the_cursor_within_the_overlap_is_read_once_across_days() {
    let (region, bucket) = ("eu-central-1", "trail-late");
    prepare(region, bucket);
    let top = unique("late").replace("/state.json", "");
    let put = |stamp: &str, n: u32| {
        put_object(
            region,
            bucket,
            &trail_key(&top, "111122223333", "us-east-1", stamp, &format!("u{n}")),
            record_at(n, "2025-05-05T23:40:00Z"),
        );
    };
    put("20250505T2345Z", 1);
    put("20250506T0000Z", 2);
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        let out = trail_run(&mock, region, bucket, &top, &state, &[]);
        exits(&out, 0);
        summary(&out)["sources"][0]["records"].as_u64().unwrap()
    };
    assert_eq!(run(), 2);
    // Delivered late, behind the newest key read and on the day before: within the overlap
    // (15 minutes), read. One of the next day too. One later than the overlap is not.
    put("20250505T2350Z", 3);
    put("20250506T0010Z", 4);
    put("20250505T2340Z", 5);
    assert_eq!(run(), 2, "the late object and the new one");
    assert_eq!(run(), 0, "each read once");
    let cps = folder_checkpoints(&state);
    assert_eq!(cps.len(), 1);
    let cp = cps.values().next().unwrap();
    // The cursor: 15 minutes before 00:10, on the day before; the overlap's keys after it.
    assert!(
        cp["after"]
            .as_str()
            .unwrap()
            .ends_with("/2025/05/05/111122223333_CloudTrail_us-east-1_20250505T2355Z"),
        "{cp}"
    );
    assert_eq!(
        cp["seen"].as_array().unwrap().len(),
        2,
        "00:00 and 00:10: {cp}"
    );
}

/// One trail object of one record per account and region folder of `top`'s organization
/// trail; returns how many were written.
fn put_org_trail(
    region: &str,
    bucket: &str,
    top: &str,
    accounts: &[String],
    regions: &[&str],
) -> u32 {
    let mut n = 0;
    for a in accounts {
        for r in regions {
            n += 1;
            put_object(
                region,
                bucket,
                &trail_key(top, a, r, "20250505T1200Z", "x"),
                record_at(n, "2025-05-05T11:58:00Z"),
            );
        }
    }
    n
}

#[test]
fn issue_15_an_organization_trail_of_many_accounts_and_regions_is_listed_once_each() {
    let (region, bucket) = ("ap-northeast-1", "trail-many");
    prepare(region, bucket);
    let top = unique("many").replace("/state.json", "");
    let regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"];
    let accounts: Vec<String> = (0..10).map(|i| format!("1000000000{i:02}")).collect();
    put_org_trail(region, bucket, &top, &accounts, &regions);
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        let out = trail_run(
            &mock,
            region,
            bucket,
            &top,
            &state,
            &[("CORRELATOR_AWS_TRAIL_CONCURRENCY", "4")],
        );
        exits(&out, 0);
        summary(&out)
    };
    let s = run();
    assert_eq!(s["sources"][0]["records"], 40, "{s}");
    assert_eq!(s["trail"]["folders"], 40, "{s}");
    // Listing: the trail folder, the organization's, each account's regions, each folder
    // once; then each object once.
    assert_eq!(s["sources"][0]["calls"], 1 + 1 + 10 + 40 + 40, "{s}");
    assert_eq!(folder_checkpoints(&state).len(), 40);
    let s = run();
    assert_eq!(s["sources"][0]["records"], 0, "{s}");
    assert_eq!(
        s["sources"][0]["calls"],
        1 + 1 + 10 + 40,
        "listings only: {s}"
    );
}

#[test]
fn issue_15_each_shard_lists_and_reads_only_its_accounts_trail_folders() {
    use finding_correlator::shard::shard_of;
    let (region, bucket) = ("ap-southeast-2", "trail-shards");
    prepare(region, bucket);
    let top = unique("shards").replace("/state.json", "");
    let regions = ["us-east-1", "eu-west-1"];
    let accounts: Vec<String> = (0..9).map(|i| format!("2000000000{i:02}")).collect();
    let n = put_org_trail(region, bucket, &top, &accounts, &regions);
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let mut records = 0;
    let mut folders = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let owned = accounts.iter().filter(|a| shard_of(a, 3) == k).count();
        assert!(owned > 0 && owned < accounts.len(), "{shard}: {owned}");
        let out = trail_run(
            &mock,
            region,
            bucket,
            &top,
            &state,
            &[("CORRELATOR_AWS_SHARD", shard.as_str())],
        );
        exits(&out, 0);
        let s = summary(&out);
        assert_eq!(s["trail"]["folders"], owned * regions.len(), "{shard}: {s}");
        assert_eq!(
            s["trail"]["other_shards"],
            accounts.len() - owned,
            "{shard}: {s}"
        );
        assert_eq!(
            s["sources"][0]["records"],
            owned * regions.len(),
            "{shard}: {s}"
        );
        // The trail folder, the organization's, the shard's accounts' regions, each of their
        // folders, each of their objects: the other shards' folders are never listed or read.
        assert_eq!(
            s["sources"][0]["calls"],
            1 + 1 + owned + 2 * owned * regions.len(),
            "{shard}: {s}"
        );
        records += s["sources"][0]["records"].as_u64().unwrap();
        let own_state = tmp.path().join(format!("state.json.shard-{k}-of-3"));
        for key in folder_checkpoints(&own_state).keys() {
            let account = key.split('/').find(|p| p.len() == 12).unwrap();
            assert_eq!(shard_of(account, 3), k, "{key} in shard {k}'s state");
            folders.push(key.clone());
        }
    }
    assert!(!state.exists(), "an unsharded state was written");
    assert_eq!(
        records,
        u64::from(n),
        "every object read by exactly one shard"
    );
    folders.sort();
    folders.dedup();
    assert_eq!(folders.len(), accounts.len() * regions.len());
}

#[test]
fn issue_15_a_version_5_state_continues_without_reading_an_object_twice() {
    let (region, bucket) = ("eu-west-2", "trail-v5");
    prepare(region, bucket);
    let top = unique("v5").replace("/state.json", "");
    let keys: Vec<String> = ["20250505T1200Z", "20250505T1205Z"]
        .iter()
        .enumerate()
        .map(|(i, stamp)| {
            let k = trail_key(&top, "111122223333", "us-east-1", stamp, "o");
            put_object(
                region,
                bucket,
                &k,
                record_at(i as u32 + 1, "2025-05-05T11:58:00Z"),
            );
            k
        })
        .collect();
    // What a version 5 run that read both wrote: the keys, relative to the bucket.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let v5 = json!({
        "format": "finding-correlator-state", "version": 5,
        "written_by": "finding-correlator 0.1.0", "baselines": {"accounts": {}},
        "checkpoints": {"aws/cloudtrail_s3": {
            "records": 2, "cursor": "2025-05-05T11:58:00.000Z", "objects": keys
        }}
    });
    std::fs::write(&state, v5.to_string()).unwrap();
    let mock = Mock::start();
    let run = || {
        let out = trail_run(&mock, region, bucket, &top, &state, &[]);
        exits(&out, 0);
        summary(&out)["sources"][0]["records"].as_u64().unwrap()
    };
    assert_eq!(run(), 0, "both were read by the version 5 run");
    let doc = state_doc(&state);
    assert_eq!(doc["version"], finding_correlator::state::VERSION);
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "us-east-1", "20250505T1210Z", "o"),
        record_at(3, "2025-05-05T12:08:00Z"),
    );
    assert_eq!(run(), 1, "only the new one");
}

#[test]
fn issue_15_a_get_object_failing_with_5xx_is_pending_and_read_by_the_next_run() {
    let (region, bucket) = ("ap-south-2", "trail-5xx");
    prepare(region, bucket);
    let top = unique("5xx").replace("/state.json", "");
    let (a_group, a_launches) = launch_scenario("111122223333");
    let (b_group, b_launches) = launch_scenario("444455556666");
    let launches_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b");
    let offline = tempfile::tempdir().unwrap();
    for (account, group, launches) in [
        ("111122223333", &a_group, &a_launches),
        ("444455556666", &b_group, &b_launches),
    ] {
        std::fs::write(offline.path().join(format!("{account}-g.json")), group).unwrap();
        std::fs::write(offline.path().join(format!("{account}-l.json")), launches).unwrap();
        put_object(
            region,
            bucket,
            &trail_key(&top, account, "us-east-1", "20250505T0405Z", "a"),
            gz(group),
        );
        put_object(
            region,
            bucket,
            &trail_key(&top, account, "ap-south-1", "20250505T1230Z", "b"),
            gz(launches),
        );
    }
    let all = offline_ids(offline.path());
    assert_eq!(all.len(), 2, "{all:?}");
    let want_b: Vec<String> = all
        .iter()
        .filter(|id| id.contains("/444455556666/"))
        .cloned()
        .collect();
    // S3 through the mock, which passes every call on to moto but fails each attempt of one
    // object's GetObject (the SDK makes 5).
    let mock = Mock::start();
    mock.proxy(&moto());
    let internal = || Fault {
        status: 500,
        body: "<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>"
            .into(),
        delay_ms: 0,
    };
    mock.fail(
        &format!("GET /{bucket}/{launches_key}"),
        (0..5).map(|_| internal()),
    );
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        trail_run(
            &mock,
            region,
            bucket,
            &top,
            &state,
            &[("AWS_ENDPOINT_URL_S3", mock.url.as_str())],
        )
    };
    let out = run();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(
        ids(&mock.imported()),
        want_b,
        "the other finding is written: {s}"
    );
    assert_eq!(
        (&s["trail"]["failed"], &s["trail"]["pending"]),
        (&json!(1), &json!(1)),
        "{s}"
    );
    let gets = mock
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&launches_key))
        .count();
    assert_eq!(gets, 5, "the SDK's attempts");
    let cps = folder_checkpoints(&state);
    let pending: Vec<&Value> = cps.values().filter_map(|c| c.get("pending")).collect();
    assert_eq!(pending.len(), 1, "{cps:?}");
    assert_eq!(pending[0][0]["key"], launches_key.as_str());
    assert!(
        pending[0][0]["reason"]
            .as_str()
            .unwrap()
            .contains("InternalError"),
        "{pending:?}"
    );
    // S3 answers again: the object is read and the finding it completes written once.
    let out = run();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["findings"]["sent"], 1, "{s}");
    assert_eq!(s["sources"][0]["records"], 3, "only that object: {s}");
    assert_eq!(ids(&mock.imported()), all);
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["findings"]["sent"], 0);
    assert_eq!(ids(&mock.imported()), all, "written once");
}

#[test]
fn issue_15_a_pending_object_deleted_meanwhile_is_reported_lost_and_forgotten() {
    let (region, bucket) = ("eu-west-2", "trail-gone");
    prepare(region, bucket);
    let top = unique("gone").replace("/state.json", "");
    let key = trail_key(&top, "111122223333", "us-east-1", "20250505T1200Z", "d");
    let whole = record_at(1, "2025-05-05T11:58:00Z");
    put_object(region, bucket, &key, whole[..whole.len() - 8].to_vec());
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || trail_run(&mock, region, bucket, &top, &state, &[]);
    let out = run();
    exits(&out, 1);
    assert_eq!(summary(&out)["trail"]["pending"], 1);
    runtime().block_on(async {
        let conf = sdk(region, &moto()).await;
        s3_client(&conf)
            .delete_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    });
    let out = run();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(
        (&s["trail"]["gone"], &s["trail"]["pending"]),
        (&json!(1), &json!(0)),
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no longer exists") && stderr.contains(key.rsplit('/').next().unwrap()),
        "{stderr}"
    );
    exits(&run(), 0);
}

#[test]
fn issue_15_a_folder_whose_listing_fails_keeps_its_cursor_and_the_others_are_read() {
    let (region, bucket) = ("eu-central-1", "trail-listing");
    prepare(region, bucket);
    let top = unique("listing").replace("/state.json", "");
    for (i, account) in ["111122223333", "444455556666"].iter().enumerate() {
        put_object(
            region,
            bucket,
            &trail_key(&top, account, "us-east-1", "20250505T1200Z", "l"),
            record_at(i as u32 + 1, "2025-05-05T11:58:00Z"),
        );
    }
    let mock = Mock::start();
    mock.proxy(&moto());
    // Every attempt of the listing of 444455556666's us-east-1 folder fails.
    mock.fail_query(
        &format!("GET /{bucket}/"),
        "444455556666%2FCloudTrail%2Fus-east-1",
        (0..5).map(|_| Fault {
            status: 503,
            body: "<Error><Code>SlowDown</Code><Message>injected</Message></Error>".into(),
            delay_ms: 0,
        }),
    );
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let run = || {
        trail_run(
            &mock,
            region,
            bucket,
            &top,
            &state,
            &[("AWS_ENDPOINT_URL_S3", mock.url.as_str())],
        )
    };
    let out = run();
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(s["trail"]["listing_errors"], 1, "{s}");
    assert_eq!(
        s["sources"][0]["records"], 1,
        "the other folder's object: {s}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be listed"));
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["sources"][0]["records"], 1, "read now");
    let out = run();
    exits(&out, 0);
    assert_eq!(summary(&out)["sources"][0]["records"], 0);
}

#[test]
fn issue_15_folders_are_listed_and_objects_fetched_trail_concurrency_at_a_time() {
    let (region, bucket) = ("ap-south-2", "trail-bounded");
    prepare(region, bucket);
    let top = unique("bounded").replace("/state.json", "");
    // 4 accounts, each with one region folder of 3 objects.
    for a in 0..4u32 {
        for i in 0..3u32 {
            put_object(
                region,
                bucket,
                &trail_key(
                    &top,
                    &format!("1000000000{a:02}"),
                    "us-east-1",
                    &format!("20250505T12{i:02}Z"),
                    "c",
                ),
                record_at(a * 10 + i + 1, "2025-05-05T11:58:00Z"),
            );
        }
    }
    let mock = Mock::start();
    mock.proxy(&moto());
    mock.delay_proxied(150);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = trail_run(
        &mock,
        region,
        bucket,
        &top,
        &state,
        &[
            ("AWS_ENDPOINT_URL_S3", mock.url.as_str()),
            ("CORRELATOR_AWS_TRAIL_CONCURRENCY", "3"),
        ],
    );
    exits(&out, 0);
    assert_eq!(summary(&out)["sources"][0]["records"], 12);
    // The accounts' region folders, then the folders themselves, are listed 3 at a time, and
    // the objects fetched 3 at a time.
    assert_eq!(mock.most_proxied_at_once("list"), 3);
    assert_eq!(mock.most_proxied_at_once("get"), 3);
}

#[test]
fn issue_15_a_run_killed_between_the_security_hub_write_and_the_state_save_loses_and_duplicates_nothing()
 {
    let (region, bucket) = ("ap-northeast-1", "trail-killed");
    prepare(region, bucket);
    let top = unique("killed").replace("/state.json", "");
    let (group, launches) = launch_scenario("111122223333");
    let want = scenario_ids(&group, &launches);
    assert_eq!(want.len(), 1);
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "us-east-1", "20250505T0405Z", "a"),
        gz(&group),
    );
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b"),
        gz(&launches),
    );
    let mock = Mock::start();
    // Security Hub takes the finding, and the run is killed before it hears so: before the
    // state is saved.
    mock.answer_late("BatchImportFindings", 60_000);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let trail = format!("s3://{bucket}/{top}/AWSLogs/");
    let mut child = spawn_run(
        &mock,
        region,
        state.to_str().unwrap(),
        &[
            ("CORRELATOR_AWS_SOURCES", "cloudtrail_s3"),
            ("CORRELATOR_AWS_TRAIL", &trail),
            ("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url),
        ],
    );
    wait_for("the finding in Security Hub", || {
        (!mock.imported().is_empty()).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!state.exists(), "killed before the state was saved");
    assert_eq!(ids(&mock.imported()), want);

    // The next run reads the trail again from the same cursors and writes the finding again
    // under the same Id (Security Hub updates it in place): nothing lost, nothing added.
    let out = trail_run(&mock, region, bucket, &top, &state, &[]);
    exits(&out, 0);
    let mut distinct = ids(&mock.imported());
    distinct.dedup();
    assert_eq!(distinct, want);
    let out = trail_run(&mock, region, bucket, &top, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        (&s["findings"]["sent"], &s["sources"][0]["records"]),
        (&json!(0), &json!(0)),
        "{s}"
    );
}
