//! The `sqs` source (issue 15, item 4) end to end against moto: trail objects announced by S3
//! notifications (directly, through SNS, through EventBridge) in an SQS queue, fetched from
//! moto's S3, their findings written to the mock's Security Hub; messages deleted only after
//! the state is saved. Queues and topics are set up by `tests/queue_setup.py` (boto3).

use std::path::Path;

use serde_json::{Value, json};

use crate::aws::{
    exits, gz, ids, launch_scenario, moto, prepare, put_object, record_at, run_on_mock,
    scenario_ids, sdk, spawn_run, summary, trail_key, unique, wait_for,
};
use crate::aws_mock::{Fault, Mock};
use crate::common;

/// A queue named `name` in `region` receiving the notifications of `buckets` (`bucket:via`),
/// with a dead-letter queue after `max_receives` receives: (queue URL, dead-letter queue URL).
fn queue(region: &str, name: &str, max_receives: u32, buckets: &[&str]) -> (String, String) {
    let out = std::process::Command::new(common::python())
        .arg(common::repo().join("tests/queue_setup.py"))
        .args([&moto(), region, name, &max_receives.to_string()])
        .args(buckets)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "queue_setup.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["queue"].as_str().unwrap().to_string(),
        v["dlq"].as_str().unwrap().to_string(),
    )
}

/// A bucket of its own in moto and a queue of its own for a test: the folder the test writes
/// under, and the queue's URL. `via`: how the bucket notifies the queue (None: it does not,
/// the test sends the messages).
fn bucket_and_queue(region: &str, bucket: &str, name: &str, via: Option<&str>) -> (String, String) {
    prepare(region, bucket);
    let top = unique(name).replace("/state.json", "");
    let notifies: Vec<String> = via.map(|v| format!("{bucket}:{v}")).into_iter().collect();
    let notifies: Vec<&str> = notifies.iter().map(String::as_str).collect();
    let (url, _) = queue(region, &top.replace('/', "-"), 5, &notifies);
    (top, url)
}

fn sqs_client(region: &str) -> (tokio::runtime::Runtime, aws_sdk_sqs::Client) {
    let rt = crate::aws::runtime();
    let conf = rt.block_on(sdk(region, &moto()));
    (rt, aws_sdk_sqs::Client::new(&conf))
}

/// Messages in the queue: (visible, in flight).
fn waiting(region: &str, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let (rt, sqs) = sqs_client(region);
    let got = rt
        .block_on(
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .send(),
        )
        .unwrap();
    let n = |a: A| {
        got.attributes()
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

fn send(region: &str, url: &str, body: &str) {
    let (rt, sqs) = sqs_client(region);
    rt.block_on(sqs.send_message().queue_url(url).message_body(body).send())
        .unwrap();
}

/// The summary's values at `paths` (`queue.objects`), to compare at once.
fn counts(s: &Value, paths: &[&str]) -> Vec<Value> {
    paths
        .iter()
        .map(|p| {
            p.split('.')
                .fold(s, |v, k| match k.parse::<usize>() {
                    Ok(i) => &v[i],
                    Err(_) => &v[k],
                })
                .clone()
        })
        .collect()
}

/// The environment of a run reading `url`.
fn queue_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CORRELATOR_AWS_SOURCES", "sqs".into()),
        ("CORRELATOR_AWS_QUEUE", url.into()),
        ("CORRELATOR_AWS_QUEUE_WAIT", "1s".into()),
        ("CORRELATOR_AWS_QUEUE_VISIBILITY_TIMEOUT", "5s".into()),
    ]
}

fn queue_run(
    mock: &Mock,
    region: &str,
    url: &str,
    state: &Path,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let env = queue_env(url);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    run_on_mock(mock, region, state, &all)
}

/// S3's own event notification of an object created at `key` in `bucket`.
fn s3_created(region: &str, bucket: &str, key: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }]})
    .to_string()
}

/// A run of the queue source that must exit with `code`: the summary's values at `paths`
/// (and the summary, for messages).
fn queue_counts(
    mock: &Mock,
    region: &str,
    url: &str,
    state: &Path,
    extra: &[(&str, &str)],
    code: i32,
    paths: &[&str],
) -> (Vec<Value>, Value) {
    let out = queue_run(mock, region, url, state, extra);
    exits(&out, code);
    let s = summary(&out);
    (counts(&s, paths), s)
}

/// The keys of the two objects [`put_scenario`] writes for `account` under `top`: the group's
/// and the launches'.
fn scenario_keys(top: &str, account: &str) -> (String, String) {
    (
        trail_key(top, account, "us-east-1", "20250505T0405Z", "a"),
        trail_key(top, account, "ap-south-1", "20250505T1230Z", "b"),
    )
}

/// The log objects of `account`'s credential→launch scenario in `bucket` (under `top`).
fn put_scenario(region: &str, bucket: &str, top: &str, account: &str) -> Vec<String> {
    let (group, launches) = launch_scenario(account);
    let want = scenario_ids(&group, &launches);
    put_object(
        region,
        bucket,
        &trail_key(top, account, "us-east-1", "20250505T0405Z", "a"),
        gz(&group),
    );
    put_object(
        region,
        bucket,
        &trail_key(top, account, "ap-south-1", "20250505T1230Z", "b"),
        gz(&launches),
    );
    want
}

#[test]
fn issue_15_the_sqs_source_reads_what_notifications_announce_directly_through_sns_and_eventbridge()
{
    let region = "eu-north-1";
    let top = unique("sqs").replace("/state.json", "");
    let buckets = ["sqs-direct", "sqs-sns", "sqs-eventbridge"];
    for b in buckets {
        prepare(region, b);
    }
    let name = top.replace('/', "-");
    let (url, dlq) = queue(
        region,
        &name,
        2,
        &[
            "sqs-direct:direct",
            "sqs-sns:sns",
            "sqs-eventbridge:eventbridge",
        ],
    );
    let mut want = Vec::new();
    for (bucket, account) in buckets
        .iter()
        .zip(["111122223333", "444455556666", "777788889999"])
    {
        let ids = put_scenario(region, bucket, &top, account);
        assert_eq!(ids.len(), 1);
        want.extend(ids);
    }
    want.sort();
    // Not a log object: passed over.
    put_object(
        region,
        "sqs-direct",
        &format!(
            "{top}/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2025/05/05/digest.json.gz"
        ),
        gz(b"{}"),
    );
    // A message of no known shape, a GuardDuty finding through EventBridge, and CloudTrail's
    // notification of an object that no longer exists.
    send(region, &url, "{\"hello\": \"world\"}");
    let missing = trail_key(&top, "111122223333", "eu-west-1", "20250505T0410Z", "gone");
    send(
        region,
        &url,
        &json!({"s3Bucket": "sqs-direct", "s3ObjectKey": [missing]}).to_string(),
    );
    let finding =
        std::fs::read_to_string(common::fixture("guardduty/eventbridge-guardduty.json")).unwrap();
    send(region, &url, &finding);

    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(ids(&mock.imported()), want, "{s}");
    let q = &s["queue"];
    assert_eq!(q["objects"], 6, "{s}");
    assert_eq!(q["events"], 1, "{s}");
    assert_eq!(q["skipped"], 1, "{s}");
    assert_eq!(q["unreadable"], 1, "{s}");
    assert_eq!(q["kept"], 1, "{s}");
    assert_eq!(q["failed"], 0, "{s}");
    assert_eq!(q["gone"], 1, "{s}");
    // Reading (its source line) and, at the end, deleting and releasing.
    assert!(
        q["calls"].as_u64().unwrap() > s["sources"][0]["calls"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(
        q["deleted"].as_u64().unwrap() + 1,
        q["messages"].as_u64().unwrap(),
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a message cannot be read")
            && stderr.contains("not an S3 event notification"),
        "{stderr}"
    );
    assert!(stderr.contains("digest.json.gz"), "{stderr}");
    assert!(
        stderr.contains("no longer exists") && stderr.contains("_gone.json.gz"),
        "{stderr}"
    );
    assert_eq!(
        waiting(region, &url),
        (1, 0),
        "only the unreadable message is left, visible"
    );

    // Received a second time: still unreadable, nothing else read or sent.
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(
        counts(&s, &["queue.messages", "queue.unreadable", "findings.sent"]),
        [json!(1), json!(1), json!(0)],
        "{s}"
    );
    // Past its maxReceiveCount the queue moves it to the dead-letter queue.
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["queue"]["messages"], 0, "{s}");
    assert_eq!(waiting(region, &url), (0, 0));
    assert_eq!(waiting(region, &dlq).0, 1);
    assert_eq!(ids(&mock.imported()), want, "each finding written once");
}

#[test]
fn issue_15_a_run_killed_between_the_security_hub_write_and_the_message_deletion_loses_and_duplicates_nothing()
 {
    let region = "sa-east-1";
    let bucket = "sqs-killed";
    let (top, url) = bucket_and_queue(region, bucket, "sqs-killed", Some("direct"));
    let want = put_scenario(region, bucket, &top, "111122223333");
    let mock = Mock::start();
    // Security Hub takes the finding, and the run is killed before it hears so: before the
    // state is saved and the messages deleted.
    mock.answer_late("BatchImportFindings", 60_000);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let mut extra = queue_env(&url);
    extra.push(("AWS_ENDPOINT_URL_SECURITYHUB", mock.url.clone()));
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = std::time::Instant::now();
    let mut child = spawn_run(&mock, region, state.to_str().unwrap(), &extra);
    wait_for("the finding in Security Hub", || {
        (!mock.imported().is_empty()).then_some(())
    });
    // While the run works, it keeps its messages hidden past their 5-second visibility
    // timeout (renewed every 2.5 seconds): no other receiver gets them.
    std::thread::sleep(std::time::Duration::from_secs(8).saturating_sub(started.elapsed()));
    assert_eq!(waiting(region, &url), (0, 3), "held by the working run");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!state.exists(), "killed before the state was saved");
    assert_eq!(ids(&mock.imported()), want);
    // The messages (S3's test event and the two objects') are still in the queue, hidden
    // until their visibility timeout ends.
    let (visible, hidden) = waiting(region, &url);
    assert_eq!(visible + hidden, 3, "nothing deleted");
    wait_for("the messages visible again", || {
        (waiting(region, &url) == (3, 0)).then_some(())
    });

    // The next run reads the objects again and writes the finding again under the same Id
    // (Security Hub updates it in place): nothing lost, nothing added.
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(s["queue"]["deleted"], 3, "{s}");
    let mut distinct = ids(&mock.imported());
    distinct.dedup();
    assert_eq!(distinct, want);
    assert_eq!(waiting(region, &url), (0, 0));

    // Killed after the state is saved and before the deletion: here, a deletion that fails
    // (SQS through the mock, which fails DeleteMessageBatch after its retries). The message
    // goes back to the queue; the next run reads its records again and sends nothing new.
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "ap-south-1", "20250505T1235Z", "c"),
        record_at(1_502, "2025-05-05T12:31:00Z"),
    );
    mock.proxy(&moto());
    let server_error = Fault {
        status: 500,
        body: json!({"__type": "InternalError", "message": "We encountered an internal error."})
            .to_string(),
        delay_ms: 0,
    };
    mock.fail("DeleteMessageBatch", vec![server_error; 5]);
    let out = queue_run(
        &mock,
        region,
        &url,
        &state,
        &[("AWS_ENDPOINT_URL_SQS", &mock.url)],
    );
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(
            &s,
            &[
                "queue.objects",
                "queue.delete_errors",
                "queue.kept",
                "state.saved"
            ]
        ),
        [json!(1), json!(1), json!(1), json!(true)],
        "{s}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be deleted"),
        "the failed deletion is reported"
    );
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(
            &s,
            &[
                "queue.objects",
                "queue.deleted",
                "sources.0.records",
                "findings.sent"
            ]
        ),
        [json!(1), json!(1), json!(1), json!(0)],
        "read again, merged, nothing sent: {s}"
    );
    let mut distinct = ids(&mock.imported());
    distinct.dedup();
    assert_eq!(distinct, want);
}

#[test]
fn issue_15_an_object_that_cannot_be_read_keeps_its_message_until_it_can() {
    let region = "us-west-1";
    let bucket = "sqs-damaged";
    // The bucket does not notify the queue: this test's message is sent by hand (CloudTrail's
    // own notification, through SNS).
    let (top, url) = bucket_and_queue(region, bucket, "sqs-damaged", None);
    let (group, launches) = launch_scenario("111122223333");
    let want = scenario_ids(&group, &launches);
    let launches_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b");
    // The launches' object damaged at first.
    put_object(
        region,
        bucket,
        &trail_key(&top, "111122223333", "us-east-1", "20250505T0405Z", "a"),
        gz(&group),
    );
    let good = gz(&launches);
    put_object(
        region,
        bucket,
        &launches_key,
        good[..good.len() / 2].to_vec(),
    );
    let notification = json!({
        "s3Bucket": bucket,
        "s3ObjectKey": [
            trail_key(&top, "111122223333", "us-east-1", "20250505T0405Z", "a"),
            launches_key,
        ],
    });
    let sns = json!({
        "Type": "Notification",
        "MessageId": "0f8a7c3e-9d4b-4c1a-8e2f-5b6d7a8c9e0f",
        "TopicArn": "arn:aws:sns:us-west-1:111122223333:trail",
        "Message": notification.to_string(),
    });
    send(region, &url, &sns.to_string());
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");

    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 1);
    let s = summary(&out);
    assert_eq!(
        counts(&s, &["queue.objects", "queue.failed", "queue.kept"]),
        [json!(1), json!(1), json!(1)],
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("damaged gzip")
            && stderr.contains(launches_key.rsplit('/').next().unwrap()),
        "{stderr}"
    );
    assert!(mock.imported().is_empty(), "the launches are not read yet");
    assert_eq!(
        waiting(region, &url),
        (1, 0),
        "the message is back for the next run"
    );

    // Repaired: the next run reads both objects (the first again: its records merge), writes
    // the finding once, and deletes the message.
    put_object(region, bucket, &launches_key, good);
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(&s, &["queue.objects", "queue.deleted", "findings.sent"]),
        [json!(2), json!(1), json!(1)],
        "{s}"
    );
    assert_eq!(ids(&mock.imported()), want);
    assert_eq!(waiting(region, &url), (0, 0));
}

#[test]
fn issue_15_an_object_announced_again_in_one_run_is_fetched_once() {
    let region = "us-west-1";
    let bucket = "sqs-repeated";
    // The messages are sent by hand: the same two objects announced three ways.
    let (top, url) = bucket_and_queue(region, bucket, "sqs-repeated", None);
    let want = put_scenario(region, bucket, &top, "111122223333");
    let group_key = trail_key(&top, "111122223333", "us-east-1", "20250505T0405Z", "a");
    let launches_key = trail_key(&top, "111122223333", "ap-south-1", "20250505T1230Z", "b");
    // CloudTrail's notification of both, delivered twice (SNS delivers at least once: raw,
    // then in its envelope), and S3's own event for the second.
    let notification = json!({"s3Bucket": bucket, "s3ObjectKey": [&group_key, &launches_key]});
    send(region, &url, &notification.to_string());
    let sns = json!({
        "Type": "Notification",
        "MessageId": "5c1d9e2a-7b3f-4e8d-9a6c-2f4b8d0e1a3c",
        "TopicArn": "arn:aws:sns:us-west-1:111122223333:trail",
        "Message": notification.to_string(),
    });
    send(region, &url, &sns.to_string());
    send(region, &url, &s3_created(region, bucket, &launches_key));
    // S3 through the mock, which passes every call on to moto and counts them.
    let mock = Mock::start();
    mock.proxy(&moto());
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let out = queue_run(
        &mock,
        region,
        &url,
        &state,
        &[("AWS_ENDPOINT_URL_S3", &mock.url)],
    );
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(
            &s,
            &[
                "queue.messages",
                "queue.objects",
                "queue.repeated",
                "queue.deleted",
                "queue.kept",
                "findings.sent",
            ]
        ),
        [json!(3), json!(2), json!(3), json!(3), json!(0), json!(1)],
        "{s}"
    );
    let gets = |key: &str| {
        mock.seen()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(key))
            .count()
    };
    assert_eq!(
        (gets(&group_key), gets(&launches_key)),
        (1, 1),
        "each object fetched once"
    );
    assert_eq!(ids(&mock.imported()), want);
    assert_eq!(waiting(region, &url), (0, 0), "every message deleted");
}

/// Runs the `sqs` source with an S3 state, a message it reads and one it cannot, and returns
/// the calls the tool recorded (`CORRELATOR_RECORD_CALLS`), sorted and unique.
pub fn record_queue_calls() -> Vec<String> {
    let region = "us-west-2";
    let bucket = "sqs-record";
    let (top, url) = bucket_and_queue(region, bucket, "sqs-record", Some("direct"));
    put_scenario(region, bucket, &top, "111122223333");
    send(region, &url, "not json");
    let mock = Mock::start();
    let finding: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("guardduty/finding-single.json")).unwrap(),
    )
    .unwrap();
    mock.add_findings([finding]);
    let tmp = tempfile::tempdir().unwrap();
    let calls = tmp.path().join("calls.txt");
    let state = format!("s3://{bucket}/{}", unique("sqs-record-state"));
    let mut cmd = crate::aws::run_cmd(&mock, region, &state);
    for (k, v) in queue_env(&url) {
        cmd.env(k, v);
    }
    let out = cmd
        .env("CORRELATOR_AWS_SOURCES", "guardduty,sqs")
        .env("CORRELATOR_RECORD_CALLS", &calls)
        .output()
        .unwrap();
    exits(&out, 1);
    crate::aws::recorded_calls(&calls, &out)
}

/// The README: the objects a queue announces may be in a bucket of another region than the
/// first of `aws.regions`: S3 refuses the first fetch naming the bucket's region (the mock
/// answers as S3 does), and the objects are read there; the message is deleted once read.
/// A second bucket, in the first region, announced by the same queue, is read there all
/// along: each bucket has its own region.
#[test]
fn objects_announced_in_a_bucket_of_another_region_are_read_there() {
    let (first, home, bucket) = ("eu-central-2", "me-central-1", "sqs-elsewhere");
    let (top, url) = bucket_and_queue(first, bucket, "sqs-elsewhere", None);
    let mut want = put_scenario(first, bucket, &top, "111122223333");
    let (group_key, launches_key) = scenario_keys(&top, "111122223333");
    let here = "sqs-here";
    prepare(first, here);
    want.extend(put_scenario(first, here, &top, "444455556666"));
    want.sort();
    let (here_group, here_launches) = scenario_keys(&top, "444455556666");
    for (b, keys) in [
        (bucket, [&group_key, &launches_key]),
        (here, [&here_group, &here_launches]),
    ] {
        send(
            first,
            &url,
            &json!({"s3Bucket": b, "s3ObjectKey": keys}).to_string(),
        );
    }
    let mock = Mock::start();
    mock.proxy(&moto());
    mock.bucket_in(bucket, home);
    mock.bucket_in(here, first);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let (got, s) = queue_counts(
        &mock,
        first,
        &url,
        &state,
        // One object at a time, the other region's bucket first: each bucket keeps its own
        // region (one client moved for all would send the second bucket's calls there).
        &[
            ("AWS_ENDPOINT_URL_S3", mock.url.as_str()),
            ("CORRELATOR_AWS_TRAIL_CONCURRENCY", "1"),
        ],
        0,
        &["queue.objects", "queue.failed", "queue.deleted"],
    );
    assert_eq!(got, [json!(4), json!(0), json!(2)], "{s}");
    let mut imported = ids(&mock.imported());
    imported.sort();
    assert_eq!(imported, want);
    assert_eq!(mock.redirected(), 1, "the first fetch only");
    assert_eq!(waiting(first, &url), (0, 0));
}

/// `--dry-run` on the queue: what would be sent is said, nothing is sent, no state is saved,
/// and no message is deleted (the README: "nothing sent or saved"), so the next real run
/// reads the same messages and writes the finding.
#[test]
fn a_dry_run_on_the_queue_deletes_no_message_and_the_next_run_reads_them() {
    let region = "eu-north-1";
    let bucket = "sqs-dry-run";
    let (top, url) = bucket_and_queue(region, bucket, "sqs-dry-run", None);
    let want = put_scenario(region, bucket, &top, "111122223333");
    let (group_key, launches_key) = scenario_keys(&top, "111122223333");
    send(
        region,
        &url,
        &json!({"s3Bucket": bucket, "s3ObjectKey": [&group_key, &launches_key]}).to_string(),
    );
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let mut cmd = crate::aws::run_cmd(&mock, region, state.to_str().unwrap());
    cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", &mock.url);
    for (k, v) in queue_env(&url) {
        cmd.env(k, v);
    }
    let out = cmd.arg("--dry-run").output().unwrap();
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(
            &s,
            &[
                "queue.messages",
                "queue.objects",
                "queue.deleted",
                "findings.sent"
            ]
        ),
        [json!(1), json!(2), json!(0), json!(0)],
        "{s}"
    );
    assert_eq!(s["findings"]["to_send"], 1, "{s}");
    assert!(mock.imported().is_empty(), "nothing sent");
    assert!(!state.exists(), "no state saved");
    let (visible, in_flight) = waiting(region, &url);
    assert_eq!(visible + in_flight, 1, "the message is still in the queue");
    if in_flight > 0 {
        // Back after its visibility timeout (5 s here).
        std::thread::sleep(std::time::Duration::from_secs(6));
    }
    let out = queue_run(&mock, region, &url, &state, &[]);
    exits(&out, 0);
    let s = summary(&out);
    assert_eq!(
        counts(&s, &["queue.messages", "queue.deleted", "findings.sent"]),
        [json!(1), json!(1), json!(1)],
        "{s}"
    );
    assert_eq!(ids(&mock.imported()), want);
    assert_eq!(waiting(region, &url), (0, 0), "deleted once the run saved");
}

/// The README: a run receives up to `aws.queue_max_messages` messages; the rest wait in the
/// queue for the next run, which reads them. 25 messages (each announcing the scenario's
/// objects again) with a cap of 12: 12 then 13, each deleted once its run saved, and the
/// finding written once.
#[test]
fn a_run_receives_at_most_queue_max_messages_and_the_next_run_reads_the_rest() {
    let region = "ca-west-1";
    let bucket = "sqs-capped";
    let (top, url) = bucket_and_queue(region, bucket, "sqs-capped", None);
    let want = put_scenario(region, bucket, &top, "111122223333");
    let (group_key, launches_key) = scenario_keys(&top, "111122223333");
    let notification = json!({"s3Bucket": bucket, "s3ObjectKey": [&group_key, &launches_key]});
    for _ in 0..25 {
        send(region, &url, &notification.to_string());
    }
    let mock = Mock::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let capped = [("CORRELATOR_AWS_QUEUE_MAX_MESSAGES", "12")];
    let paths = [
        "queue.messages",
        "queue.deleted",
        "queue.kept",
        "findings.sent",
    ];
    let run = || queue_counts(&mock, region, &url, &state, &capped, 0, &paths);
    let (got, s) = run();
    assert_eq!(got, [json!(12), json!(12), json!(0), json!(1)], "{s}");
    assert_eq!(
        waiting(region, &url),
        (13, 0),
        "the rest wait for the next run"
    );
    let (got, s) = run();
    assert_eq!(got, [json!(12), json!(12), json!(0), json!(0)], "{s}");
    let (got, s) = run();
    assert_eq!(got, [json!(1), json!(1), json!(0), json!(0)], "{s}");
    assert_eq!(waiting(region, &url), (0, 0));
    assert_eq!(ids(&mock.imported()), want, "the finding, written once");
}

/// The README: an object announced twice takes both messages to its fate. Damaged, both
/// messages stay for the next run; repaired, it is fetched once and both are deleted.
#[test]
fn a_damaged_object_announced_twice_keeps_both_messages_until_it_is_read() {
    let region = "us-east-2";
    let bucket = "sqs-damaged-twice";
    let (top, url) = bucket_and_queue(region, bucket, "sqs-damaged-twice", None);
    let want = put_scenario(region, bucket, &top, "111122223333");
    let (group_key, launches_key) = scenario_keys(&top, "111122223333");
    let (_, launches) = launch_scenario("111122223333");
    let good = gz(&launches);
    put_object(
        region,
        bucket,
        &launches_key,
        good[..good.len() / 2].to_vec(),
    );
    // CloudTrail's notification of both objects, and S3's own event of the damaged one.
    send(
        region,
        &url,
        &json!({"s3Bucket": bucket, "s3ObjectKey": [&group_key, &launches_key]}).to_string(),
    );
    send(region, &url, &s3_created(region, bucket, &launches_key));
    let mock = Mock::start();
    mock.proxy(&moto());
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let s3 = [("AWS_ENDPOINT_URL_S3", mock.url.as_str())];
    let paths = [
        "queue.messages",
        "queue.failed",
        "queue.kept",
        "queue.deleted",
        "findings.sent",
    ];
    let (got, s) = queue_counts(&mock, region, &url, &state, &s3, 1, &paths);
    assert_eq!(
        got,
        [json!(2), json!(1), json!(2), json!(0), json!(0)],
        "{s}"
    );
    assert_eq!(waiting(region, &url), (2, 0), "both messages are back");
    assert!(mock.imported().is_empty());
    // Repaired: fetched once in the run, both messages deleted, the finding written once.
    put_object(region, bucket, &launches_key, good);
    let before = mock
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&launches_key))
        .count();
    let (got, s) = queue_counts(&mock, region, &url, &state, &s3, 0, &paths);
    assert_eq!(
        got,
        [json!(2), json!(0), json!(0), json!(2), json!(1)],
        "{s}"
    );
    let fetched = mock
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&launches_key))
        .count()
        - before;
    assert_eq!(fetched, 1, "fetched once for both messages");
    assert_eq!(ids(&mock.imported()), want);
    assert_eq!(waiting(region, &url), (0, 0));
}
