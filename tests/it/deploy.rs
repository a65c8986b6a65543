//! The deploy (issue 6): the task role of `deploy/correlator.yaml` grants exactly the calls
//! `correlator run` makes, and the task's environment is a configuration the tool accepts.
//!
//! The template is rendered for given parameters by `tests/deploy_policy.py` (conditions
//! evaluated, intrinsic functions resolved, as CloudFormation would), with the venv's Python.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{self, correlator};

/// The IAM action a recorded `Service:Operation` needs; None when it needs none.
#[cfg(feature = "aws")]
fn action(call: &str) -> Option<&'static str> {
    Some(match call {
        "GuardDuty:ListDetectors" => "guardduty:ListDetectors",
        "GuardDuty:ListFindings" => "guardduty:ListFindings",
        "GuardDuty:GetFindings" => "guardduty:GetFindings",
        "SecurityHub:GetFindings" => "securityhub:GetFindings",
        "SecurityHub:BatchImportFindings" => "securityhub:BatchImportFindings",
        "CloudTrail:LookupEvents" => "cloudtrail:LookupEvents",
        // Whether the task holding the state's lease has stopped.
        "ECS:DescribeTasks" => "ecs:DescribeTasks",
        "S3:GetObject" => "s3:GetObject",
        "S3:PutObject" => "s3:PutObject",
        // ListObjectsV2 is authorized as s3:ListBucket.
        "S3:ListObjectsV2" => "s3:ListBucket",
        // The batch calls are authorized as the single ones.
        "SQS:ReceiveMessage" => "sqs:ReceiveMessage",
        "SQS:DeleteMessageBatch" => "sqs:DeleteMessage",
        "SQS:ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility",
        // GetCallerIdentity needs no permission: IAM does not even let a policy deny it.
        "STS:GetCallerIdentity" => return None,
        other => panic!(
            "no IAM action is known for the call {other}: add it here and grant it in \
             deploy/correlator.yaml"
        ),
    })
}

/// The template rendered with these parameters (the others at their defaults).
fn render(params: &[(&str, &str)]) -> Value {
    let mut cmd = std::process::Command::new(common::python());
    cmd.arg(common::repo().join("tests/deploy_policy.py"))
        .arg(common::repo().join("deploy/correlator.yaml"));
    for (k, v) in params {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("running tests/deploy_policy.py");
    assert!(
        out.status.success(),
        "tests/deploy_policy.py {params:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("deploy_policy.py prints JSON")
}

/// A field that is a string or a list of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// The Allow statements of the task role's policies.
fn task_statements(rendered: &Value) -> Vec<Value> {
    let policies = rendered["Roles"]["TaskRole"]
        .as_object()
        .expect("the template has a TaskRole with inline policies");
    let mut out = Vec::new();
    for doc in policies.values() {
        for st in doc["Statement"].as_array().expect("Statement is a list") {
            assert_eq!(st["Effect"], "Allow", "{st}");
            assert!(st.get("NotAction").is_none(), "no NotAction: {st}");
            out.push(st.clone());
        }
    }
    out
}

fn granted(rendered: &Value) -> BTreeSet<String> {
    task_statements(rendered)
        .iter()
        .flat_map(|st| strings(&st["Action"]))
        .collect()
}

/// Every source and the trail's key on.
const EVERY_SOURCE: &[(&str, &str)] = &[
    ("SecurityHubSource", "true"),
    ("CloudTrailApiSource", "true"),
    ("TrailBucket", "example-trail"),
    (
        "TrailKmsKeyArn",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
];

/// The end-to-end run with every source and the Security Hub sink on (against moto and the
/// mock) calls exactly what the task role grants: a call added without its permission, or a
/// permission nothing uses, fails here.
#[cfg(feature = "aws")]
#[test]
fn issue_6_task_role_grants_exactly_the_calls_made() {
    let called: BTreeSet<String> = crate::aws::record_every_call()
        .iter()
        .filter_map(|c| action(c))
        .map(String::from)
        .collect();
    let mut granted = granted(&render(EVERY_SOURCE));
    // Permissions that no API call names: reading the trail's SSE-KMS objects makes S3 call
    // KMS on the caller's behalf (moto's trail bucket is not encrypted).
    assert!(granted.remove("kms:Decrypt"), "{granted:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "called without a permission in the task role: {missing:?}; granted but never called: \
         {unused:?}"
    );
}

/// `text` matches the IAM pattern `pattern` (`*`: any run of characters, `?`: one).
#[cfg(feature = "aws")]
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Positions in the pattern reachable after each character of the text.
    let mut at = vec![false; p.len() + 1];
    at[0] = true;
    let close = |at: &mut Vec<bool>| {
        for i in 0..p.len() {
            if at[i] && p[i] == '*' {
                at[i + 1] = true;
            }
        }
    };
    close(&mut at);
    for c in t {
        let mut next = vec![false; p.len() + 1];
        for i in 0..p.len() {
            if at[i] {
                match p[i] {
                    '*' => next[i] = true,
                    '?' => next[i + 1] = true,
                    x if x == c => next[i + 1] = true,
                    _ => {}
                }
            }
        }
        close(&mut next);
        at = next;
    }
    at[p.len()]
}

/// Whether one of `statements` allows `action` on `resource`, with the request's `s3:prefix`
/// (None: the request has none, as a `GetObject`). The S3 statements' conditions are on
/// `s3:prefix` only (`StringEquals`, `StringLike`); any other condition fails the test.
#[cfg(feature = "aws")]
fn allows(statements: &[Value], action: &str, resource: &str, prefix: Option<&str>) -> bool {
    statements.iter().any(|st| {
        strings(&st["Action"]).iter().any(|a| glob(a, action))
            && strings(&st["Resource"]).iter().any(|r| glob(r, resource))
            && st["Condition"].as_object().is_none_or(|conditions| {
                conditions.iter().all(|(op, keys)| {
                    keys.as_object().unwrap().iter().all(|(key, want)| {
                        assert_eq!(key, "s3:prefix", "an unexpected condition: {st}");
                        let Some(prefix) = prefix else {
                            return false;
                        };
                        strings(want).iter().any(|w| match op.as_str() {
                            "StringEquals" => w == prefix,
                            "StringLike" => glob(w, prefix),
                            other => panic!("an unexpected condition operator {other}: {st}"),
                        })
                    })
                })
            })
    })
}

/// `%XX` escapes decoded (S3 paths and queries as the SDK sends them).
#[cfg(feature = "aws")]
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Least privilege, resource by resource: every S3 request of a first run with the trail,
/// the reports and an S3 state is allowed by the task role rendered for those bucket, keys
/// and prefixes, on that object or that listing prefix; and the role allows nothing beside
/// them (no other key written, the trail never written, no object read outside the trail
/// and the state, no listing of the whole bucket). Action names alone (the tests above) would
/// pass a role that grants `s3:PutObject` on the whole bucket.
#[cfg(feature = "aws")]
#[test]
fn the_task_role_grants_each_s3_request_on_its_own_object_or_prefix_and_no_other() {
    let r = crate::aws::record_s3_requests();
    let rendered = render(&[
        ("StateBucket", r.bucket.as_str()),
        ("StateKey", r.state_key.as_str()),
        ("TrailBucket", r.bucket.as_str()),
        ("TrailPrefix", r.trail_prefix.as_str()),
        ("ReportsPrefix", r.reports_prefix.as_str()),
    ]);
    let statements = task_statements(&rendered);
    let bucket_arn = format!("arn:aws:s3:::{}", r.bucket);
    let mut seen = BTreeSet::new();
    for (method, path, query) in &r.requests {
        let key = path
            .strip_prefix(&format!("/{}", r.bucket))
            .map(|k| unescape(k.strip_prefix('/').unwrap_or(k)))
            .unwrap();
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape(v)))
            .collect();
        let listing = params.iter().any(|(k, _)| k == "list-type");
        let (action, resource, prefix) = match (method.as_str(), listing) {
            ("GET", true) => (
                "s3:ListBucket",
                bucket_arn.clone(),
                Some(
                    params
                        .iter()
                        .find(|(k, _)| k == "prefix")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                ),
            ),
            ("GET", false) => ("s3:GetObject", format!("{bucket_arn}/{key}"), None),
            ("PUT", false) => ("s3:PutObject", format!("{bucket_arn}/{key}"), None),
            other => panic!("an S3 request this test does not know: {other:?} {path}?{query}"),
        };
        assert!(
            allows(&statements, action, &resource, prefix.as_deref()),
            "{action} on {resource} (prefix {prefix:?}) is not allowed by the task role"
        );
        seen.insert(action);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["s3:GetObject", "s3:ListBucket", "s3:PutObject"]),
        "the run read, listed and wrote"
    );
    let trail_object = format!(
        "{bucket_arn}/{}111122223333/CloudTrail/x.json",
        r.trail_prefix
    );
    for (action, resource, prefix) in [
        ("s3:PutObject", format!("{bucket_arn}/another-key"), None),
        (
            "s3:PutObject",
            format!("{bucket_arn}/{}.old", r.state_key),
            None,
        ),
        ("s3:PutObject", trail_object.clone(), None),
        (
            "s3:GetObject",
            format!("{bucket_arn}/elsewhere/AWSLogs/x.json"),
            None,
        ),
        (
            "s3:GetObject",
            format!("{bucket_arn}/{}x.html", r.reports_prefix),
            None,
        ),
        (
            "s3:DeleteObject",
            format!("{bucket_arn}/{}", r.state_key),
            None,
        ),
        ("s3:ListBucket", bucket_arn.clone(), Some("")),
        ("s3:ListBucket", bucket_arn.clone(), None),
        ("s3:ListBucket", bucket_arn.clone(), Some("elsewhere/")),
    ] {
        assert!(
            !allows(&statements, action, &resource, prefix),
            "{action} on {resource} (prefix {prefix:?}) is allowed, beyond what the run needs"
        );
    }
    // The matcher is not trivially true: the trail's object may be read.
    assert!(allows(&statements, "s3:GetObject", &trail_object, None));
}

/// The `sqs` source's run calls exactly what the task role grants when the template makes
/// the queue, on the queue it makes; the trail is then only read, never listed.
#[cfg(feature = "aws")]
#[test]
fn issue_15_the_queue_variant_grants_exactly_the_calls_the_sqs_source_makes() {
    let called: BTreeSet<String> = crate::queue::record_queue_calls()
        .iter()
        .filter_map(|c| action(c))
        .map(String::from)
        .collect();
    let rendered = render(&[
        ("CloudTrailApiSource", "false"),
        ("TrailBucket", "example-trail"),
        ("TrailQueue", "true"),
    ]);
    let mut granted = granted(&rendered);
    // The state's own listing (a first run's missing state is answered 404) is granted; the
    // recorded run's state exists after its claim, so it is not called.
    granted.remove("s3:ListBucket");
    // DescribeTasks is called only when another task holds the lease.
    granted.remove("ecs:DescribeTasks");
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "called without a permission: {missing:?}; granted but never called: {unused:?}"
    );
    let queue = task_statements(&rendered)
        .into_iter()
        .find(|st| st["Sid"] == "TrailQueue")
        .expect("the queue's statement");
    let url = rendered["Environment"]["CORRELATOR_AWS_QUEUE"]
        .as_str()
        .unwrap();
    let name = url.rsplit('/').next().unwrap();
    assert!(
        queue["Resource"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{name}")),
        "the queue's calls are granted on the queue the task reads: {queue} vs {url}"
    );
    assert!(
        !task_statements(&rendered)
            .iter()
            .any(|st| st["Sid"] == "TrailList"),
        "the trail is not listed"
    );
    // One queue, one task: shards are refused.
    let mut cmd = std::process::Command::new(common::python());
    cmd.arg(common::repo().join("tests/deploy_policy.py"))
        .arg(common::repo().join("deploy/correlator.yaml"))
        .args([
            "--set",
            "TrailBucket=t",
            "--set",
            "TrailQueue=true",
            "--set",
            "Shards=2",
        ]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set Shards to 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Actions without a resource type in IAM: the only ones granted on "*".
const NO_RESOURCE_TYPE: [&str; 4] = [
    "guardduty:ListDetectors",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "cloudtrail:LookupEvents",
];

/// Each source's permissions come with it and go with it; the sink's and the state's are
/// always there; the container's environment names the same sources and passes
/// `correlator validate`.
#[test]
fn issue_6_task_role_follows_the_sources() {
    let always = [
        "guardduty:ListDetectors",
        "guardduty:ListFindings",
        "guardduty:GetFindings",
        "securityhub:BatchImportFindings",
        "s3:GetObject",
        "s3:PutObject",
        // A first run's GetObject of the missing state must be answered 404.
        "s3:ListBucket",
        // Whether the task holding the state's lease has stopped (issue 12).
        "ecs:DescribeTasks",
    ];
    // (parameters, actions granted beyond `always`, CORRELATOR_AWS_SOURCES)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (&[], &["cloudtrail:LookupEvents"], "guardduty,cloudtrail"),
        (&[("CloudTrailApiSource", "false")], &[], "guardduty"),
        (
            &[
                ("CloudTrailApiSource", "false"),
                ("SecurityHubSource", "true"),
            ],
            &["securityhub:GetFindings"],
            "guardduty,securityhub",
        ),
        (
            &[("CloudTrailApiSource", "false"), ("TrailBucket", "t")],
            &[],
            "guardduty,cloudtrail_s3",
        ),
        (
            EVERY_SOURCE,
            &[
                "cloudtrail:LookupEvents",
                "securityhub:GetFindings",
                "kms:Decrypt",
            ],
            "guardduty,securityhub,cloudtrail,cloudtrail_s3",
        ),
        // The queue instead of the listing: no s3:ListBucket on the trail (the state's own
        // listing stays), the queue's calls instead.
        (
            &[
                ("CloudTrailApiSource", "false"),
                ("TrailBucket", "t"),
                ("TrailQueue", "true"),
            ],
            &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
            ],
            "guardduty,sqs",
        ),
        // Without a trail bucket the queue is not made.
        (
            &[("CloudTrailApiSource", "false"), ("TrailQueue", "true")],
            &[],
            "guardduty",
        ),
    ];
    for (params, extra, sources) in cases {
        let rendered = render(params);
        let expected: BTreeSet<String> = always
            .iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(granted(&rendered), expected, "{params:?}");
        for st in task_statements(&rendered) {
            let actions = strings(&st["Action"]);
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "{params:?}: a wildcard action: {st}"
            );
            if strings(&st["Resource"]).iter().any(|r| r == "*") {
                assert!(
                    actions
                        .iter()
                        .all(|a| NO_RESOURCE_TYPE.contains(&a.as_str())),
                    "{params:?}: \"*\" for actions that can be scoped: {st}"
                );
                assert!(
                    st["Condition"]["StringEquals"]["aws:RequestedRegion"].is_array(),
                    "{params:?}: \"*\" without the regions condition: {st}"
                );
            }
        }
        let env = rendered["Environment"].as_object().expect("an environment");
        assert_eq!(env["CORRELATOR_AWS_SOURCES"], *sources, "{params:?}");
        let mut cmd = correlator();
        cmd.arg("validate");
        for (k, v) in env {
            cmd.env(k, v.as_str().expect("string values"));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{params:?}: correlator validate with the task's environment {env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The state is only read and written as its one object; listing is limited to that key.
#[test]
fn issue_6_state_permissions_name_the_state_object() {
    for (params, bucket) in [
        (
            &[][..],
            // The example name tests/deploy_policy.py gives the bucket the stack creates.
            "correlator-statebucketresource-example",
        ),
        (&[("StateBucket", "shared-bucket")][..], "shared-bucket"),
    ] {
        let mut params = params.to_vec();
        params.push(("StateKey", "prod/correlator.json"));
        let rendered = render(&params);
        let state = task_statements(&rendered)
            .into_iter()
            .filter(|st| st["Sid"] == "StateReadWrite" || st["Sid"] == "StateMissing")
            .collect::<Vec<_>>();
        assert_eq!(state.len(), 2, "{params:?}");
        assert_eq!(
            state[0]["Resource"],
            format!("arn:aws:s3:::{bucket}/prod/correlator.json")
        );
        assert_eq!(state[1]["Resource"], format!("arn:aws:s3:::{bucket}"));
        assert_eq!(
            state[1]["Condition"]["StringEquals"]["s3:prefix"],
            "prod/correlator.json"
        );
        assert_eq!(
            rendered["Environment"]["CORRELATOR_AWS_STATE"],
            format!("s3://{bucket}/prod/correlator.json")
        );
    }
}

/// Whether `text` matches an IAM pattern where `*` is any text.
fn iam_like(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().unwrap();
    let Some(mut left) = text.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        if i == rest.len() - 1 {
            return left.ends_with(part);
        }
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.is_empty()
}

#[test]
fn issue_15_shards_deploy_a_schedule_per_shard_each_allowed_only_its_states() {
    use finding_correlator::shard::Shard;
    for n in 1..=8u32 {
        let count = n.to_string();
        let rendered = render(&[("Shards", &count), ("StateKey", "prod/correlator.json")]);
        let schedules = rendered["Schedules"].as_object().unwrap();
        assert_eq!(schedules.len(), n as usize, "{n} shards: {schedules:?}");
        let state = task_statements(&rendered)
            .into_iter()
            .filter(|st| st["Sid"] == "StateReadWrite" || st["Sid"] == "StateMissing")
            .collect::<Vec<_>>();
        let object = state[0]["Resource"].as_str().unwrap();
        let listing = &state[1]["Condition"];
        let location = rendered["Environment"]["CORRELATOR_AWS_STATE"]
            .as_str()
            .unwrap();
        let key_of = |loc: &str| {
            loc.split_once("//")
                .unwrap()
                .1
                .split_once('/')
                .unwrap()
                .1
                .to_string()
        };
        let mut shards = Vec::new();
        for (name, s) in schedules {
            if n == 1 {
                // One task reads every account, with the state as named.
                assert!(s["Input"].is_null(), "{name}: {s}");
                assert!(object.ends_with("/prod/correlator.json"), "{object}");
                assert_eq!(listing["StringEquals"]["s3:prefix"], "prod/correlator.json");
                continue;
            }
            let over = &s["Input"]["containerOverrides"][0];
            assert_eq!(over["name"], rendered["Containers"][0], "{name}");
            let env = over["environment"].as_array().unwrap();
            assert_eq!(env.len(), 1, "{name}");
            assert_eq!(env[0]["name"], "CORRELATOR_AWS_SHARD");
            let shard: Shard = env[0]["value"].as_str().unwrap().parse().unwrap();
            assert_eq!(shard.count, n);
            // The shard's state, as the task names it, is what its role may read and write
            // and list, and another deployment's (other count) is not.
            let mine = shard.state_location(location);
            let key = key_of(&mine);
            assert!(
                iam_like(
                    object,
                    &format!("arn:aws:s3:::{}", mine.trim_start_matches("s3://"))
                ),
                "{object} vs {mine}"
            );
            assert!(
                iam_like(listing["StringLike"]["s3:prefix"].as_str().unwrap(), &key),
                "{listing} vs {key}"
            );
            let other = Shard {
                index: 1,
                count: n + 1,
            }
            .state_location(location);
            assert!(
                !iam_like(
                    object,
                    &format!("arn:aws:s3:::{}", other.trim_start_matches("s3://"))
                ),
                "{object} allows {other}"
            );
            assert!(
                !iam_like(
                    object,
                    &format!("arn:aws:s3:::{}", location.trim_start_matches("s3://"))
                ),
                "{object} allows the unsharded state"
            );
            shards.push(shard.index);
        }
        if n > 1 {
            shards.sort_unstable();
            assert_eq!(shards, (1..=n).collect::<Vec<_>>(), "{n} shards");
        }
    }
}

/// A run that ends without saving puts the queue's messages back, and each such receive
/// counts toward the dead-letter queue: the template's `maxReceiveCount` must outlast a day
/// of failing runs at the default schedule, or good notifications end in the dead-letter
/// queue after an hour of Security Hub or state failures (deploy/README.md). The dead-letter
/// queue keeps them for SQS's longest, 14 days.
#[test]
fn the_queue_sends_a_message_to_the_dead_letter_queue_only_after_a_day_of_runs() {
    let text = std::fs::read_to_string(common::repo().join("deploy/correlator.yaml")).unwrap();
    let template: Value = serde_saphyr::from_str(&text).unwrap();
    let queue = &template["Resources"]["TrailQueueResource"]["Properties"];
    let receives = queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap();
    let schedule = template["Parameters"]["ScheduleExpression"]["Default"]
        .as_str()
        .unwrap();
    assert_eq!(schedule, "rate(15 minutes)");
    assert!(
        receives * 15 >= 24 * 60,
        "{receives} receives of 15-minute runs are less than a day"
    );
    let dlq = &template["Resources"]["TrailQueueDeadLetter"]["Properties"];
    assert_eq!(dlq["MessageRetentionPeriod"].as_u64(), Some(1_209_600));
}

/// deploy/README.md: each schedule starts one task with the flexible window off and no
/// retries (a retry would only risk two runs close together; the next run reads from the
/// same checkpoints). Every one of the eight schedules (one per shard) is checked, as they
/// are written out one by one in the template.
#[test]
fn every_schedule_starts_one_task_on_time_without_retries() {
    let text = std::fs::read_to_string(common::repo().join("deploy/correlator.yaml")).unwrap();
    let template: Value = serde_saphyr::from_str(&text).unwrap();
    let schedules: Vec<(&String, &Value)> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Scheduler::Schedule")
        .collect();
    assert_eq!(schedules.len(), 8, "one per shard, up to 8");
    for (name, s) in schedules {
        let p = &s["Properties"];
        assert_eq!(p["FlexibleTimeWindow"]["Mode"], "OFF", "{name}");
        assert_eq!(p["State"], "ENABLED", "{name}");
        assert_eq!(
            p["ScheduleExpression"]["Ref"], "ScheduleExpression",
            "{name}"
        );
        let target = &p["Target"];
        assert_eq!(target["RetryPolicy"]["MaximumRetryAttempts"], 0, "{name}");
        assert_eq!(target["EcsParameters"]["TaskCount"], 1, "{name}");
        assert_eq!(target["EcsParameters"]["LaunchType"], "FARGATE", "{name}");
        assert_eq!(
            target["RoleArn"]["Fn::GetAtt"][0], "SchedulerRole",
            "{name}"
        );
    }
}

/// deploy/README.md: the execution role may pull this one repository and write to this one
/// log group; the scheduler role may run this task definition on this cluster and pass the
/// two task roles to ECS only; each role is assumed only by its service, for this account.
/// The statements as written in the template, so a wider resource fails here.
#[test]
fn the_execution_and_scheduler_roles_name_their_one_resource_each() {
    let text = std::fs::read_to_string(common::repo().join("deploy/correlator.yaml")).unwrap();
    let template: Value = serde_saphyr::from_str(&text).unwrap();
    let role = |name: &str| template["Resources"][name]["Properties"].clone();
    let statements = |role: &Value| -> Vec<Value> {
        role["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
            .collect()
    };
    for (name, service) in [
        ("ExecutionRole", "ecs-tasks.amazonaws.com"),
        ("SchedulerRole", "scheduler.amazonaws.com"),
        ("TaskRole", "ecs-tasks.amazonaws.com"),
    ] {
        let trust = &role(name)["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(trust.as_array().unwrap().len(), 1, "{name}");
        assert_eq!(trust[0]["Principal"]["Service"], service, "{name}");
        assert_eq!(
            trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"]["Ref"], "AWS::AccountId",
            "{name}"
        );
    }
    let execution = statements(&role("ExecutionRole"));
    assert_eq!(execution.len(), 3);
    for st in &execution {
        let resource = &st["Resource"];
        match st["Sid"].as_str().unwrap() {
            // No resource type: only "*".
            "EcrLogin" => {
                assert_eq!(st["Action"], "ecr:GetAuthorizationToken");
                assert_eq!(resource, "*");
            }
            "PullImage" => assert_eq!(
                resource["Fn::Sub"],
                "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ImageRepository}"
            ),
            "WriteLogs" => assert_eq!(
                resource["Fn::Sub"],
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}:log-stream:*"
            ),
            other => panic!("an execution role statement more: {other}"),
        }
    }
    let scheduler = statements(&role("SchedulerRole"));
    assert_eq!(scheduler.len(), 2);
    for st in &scheduler {
        match st["Sid"].as_str().unwrap() {
            "RunTask" => {
                assert_eq!(st["Action"], "ecs:RunTask");
                assert_eq!(st["Resource"]["Ref"], "TaskDefinition");
                assert_eq!(
                    st["Condition"]["ArnEquals"]["ecs:cluster"]["Fn::GetAtt"][0],
                    "Cluster"
                );
            }
            "PassTaskRoles" => {
                assert_eq!(st["Action"], "iam:PassRole");
                let passed: Vec<&str> = st["Resource"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["Fn::GetAtt"][0].as_str().unwrap())
                    .collect();
                assert_eq!(passed, ["ExecutionRole", "TaskRole"]);
                assert_eq!(
                    st["Condition"]["StringEquals"]["iam:PassedToService"],
                    "ecs-tasks.amazonaws.com"
                );
            }
            other => panic!("a scheduler role statement more: {other}"),
        }
    }
}
