//! What the messages of an SQS queue announce (the `sqs` source; AWS mode receives them:
//! `crate::aws::queue`).
//!
//! A queue receives a trail's object-created notifications in one of four shapes, and may also
//! receive events to decode as they are:
//! - an S3 event notification (`{"Records":[{"eventSource":"aws:s3","s3":{…}}]}`), sent by the
//!   bucket to the queue; its keys are URL-encoded (`+` for a space);
//! - the same inside an SNS notification (`{"Type":"Notification","Message":"…"}`), when the
//!   bucket notifies a topic the queue subscribes to (without raw message delivery);
//! - an EventBridge `Object Created` event (`detail.bucket.name`, `detail.object.key`, the key
//!   as it is), when the bucket sends its events to EventBridge and a rule targets the queue;
//! - CloudTrail's own notification (`{"s3Bucket":…,"s3ObjectKey":[…]}`) through the trail's
//!   SNS topic;
//! - an EventBridge event of a GuardDuty finding or a CloudTrail call: the decoders read it as
//!   a record (near-real-time findings, an EventBridge rule → SQS).
//!
//! S3's test event (sent when a notification is configured) and other S3 events announce
//! nothing to read. Sources: Amazon S3 User Guide, "Event message structure" and "Using
//! EventBridge"; Amazon SNS Developer Guide, "Amazon SNS message and JSON formats"; AWS
//! CloudTrail User Guide, "Configuring Amazon SNS notifications for CloudTrail".

use serde_json::Value;

/// An object a notification announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub bucket: String,
    pub key: String,
}

impl Announced {
    /// `s3://bucket/key`: how the object is named in logs and problems.
    pub fn name(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What a message's body holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// Objects created.
    Objects(Vec<Announced>),
    /// An event the decoders read as it is (an EventBridge event of a finding or a call).
    Event,
    /// Nothing to read, and why.
    Nothing(String),
}

/// The EventBridge event kinds the decoders read (their `detail-type`). Security Hub's
/// (`Security Hub Findings - Imported`) are not among them: they would bring this tool's own
/// findings back as signals; the `securityhub` source reads the others' and leaves its own out.
const EVENTS: [&str; 2] = ["GuardDuty Finding", "AWS API Call via CloudTrail"];

/// What a message body announces, or why it cannot be read.
///
/// # Errors
/// The body is not JSON, or not one of the shapes above (the message is left in the queue,
/// whose redrive policy moves it to the dead-letter queue in the end).
pub fn notice(body: &str) -> Result<Notice, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    notice_of(&v, true)
}

fn notice_of(v: &Value, outer: bool) -> Result<Notice, String> {
    let Some(o) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    let text = |k: &str| o.get(k).and_then(Value::as_str);
    // SNS wraps the notification once, as a string.
    if outer && text("Type") == Some("Notification") {
        let message = text("Message").ok_or("an SNS notification without a `Message` text")?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| format!("an SNS notification whose `Message` is not JSON: {e}"))?;
        return notice_of(&inner, false);
    }
    if text("Event") == Some("s3:TestEvent") {
        return Ok(Notice::Nothing("S3's test event".into()));
    }
    if let Some(records) = o.get("Records") {
        return s3_records(records);
    }
    if let Some(bucket) = text("s3Bucket") {
        let keys = o
            .get("s3ObjectKey")
            .and_then(Value::as_array)
            .ok_or("a CloudTrail notification without an `s3ObjectKey` list")?;
        let objects = keys
            .iter()
            .map(|k| {
                k.as_str()
                    .map(|key| Announced {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                    })
                    .ok_or_else(|| "a CloudTrail notification with a key that is not text".into())
            })
            .collect::<Result<Vec<_>, String>>()?;
        return Ok(Notice::Objects(objects));
    }
    if let Some(kind) = text("detail-type") {
        if EVENTS.contains(&kind) {
            return Ok(Notice::Event);
        }
        if kind == "Object Created" && text("source") == Some("aws.s3") {
            let detail = &o["detail"];
            let bucket = detail["bucket"]["name"].as_str();
            let key = detail["object"]["key"].as_str();
            return match (bucket, key) {
                (Some(bucket), Some(key)) => Ok(Notice::Objects(vec![Announced {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }])),
                _ => Err(
                    "an EventBridge `Object Created` event without `detail.bucket.name` and `detail.object.key`"
                        .into(),
                ),
            };
        }
        return Ok(Notice::Nothing(format!(
            "an EventBridge event of another kind ({kind:?})"
        )));
    }
    Err(
        "not an S3 event notification (`Records`), an SNS notification of one, an EventBridge \
         event, or CloudTrail's notification (`s3Bucket`, `s3ObjectKey`)"
            .into(),
    )
}

/// The objects an S3 event notification's records create.
fn s3_records(records: &Value) -> Result<Notice, String> {
    let records = records
        .as_array()
        .ok_or("an S3 event notification whose `Records` is not a list")?;
    let mut objects = Vec::new();
    let mut other = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r["eventSource"].as_str() != Some("aws:s3") {
            return Err(format!(
                "record {i} of `Records` is not an S3 event (`eventSource` is not \"aws:s3\")"
            ));
        }
        let name = r["eventName"].as_str().unwrap_or_default();
        if !name.starts_with("ObjectCreated:") {
            other.push(name.to_string());
            continue;
        }
        let bucket = r["s3"]["bucket"]["name"].as_str();
        let key = r["s3"]["object"]["key"].as_str();
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(format!(
                "record {i} of `Records` has no `s3.bucket.name` and `s3.object.key`"
            ));
        };
        objects.push(Announced {
            bucket: bucket.to_string(),
            key: url_decoded(key).map_err(|e| format!("record {i}: the key {key:?}: {e}"))?,
        });
    }
    if objects.is_empty() {
        return Ok(Notice::Nothing(format!(
            "S3 events other than object creation ({})",
            other.join(", ")
        )));
    }
    Ok(Notice::Objects(objects))
}

/// A key as S3 event notifications write it: URL-encoded, a space as `+`.
fn url_decoded(key: &str) -> Result<String, String> {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("`%` at byte {i} is not followed by two hex digits"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".into())
}

/// Why an announced object is not read, or None when it is one of the trail's log objects:
/// a key of the trail layout (`…/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…`, not a digest or
/// Insights file), under `trail` (bucket and folder) when one is set, in one of `regions` when
/// any are named.
pub fn not_read(o: &Announced, trail: Option<(&str, &str)>, regions: &[String]) -> Option<String> {
    use crate::sources::trail;
    if let Some((bucket, prefix)) = trail
        && (o.bucket != bucket || !o.key.starts_with(prefix))
    {
        return Some(format!("not under aws.trail (s3://{bucket}/{prefix})"));
    }
    let Some(folder) = trail::folder_of(&o.key) else {
        return Some("not a CloudTrail log object (no `/CloudTrail/REGION/` folder)".into());
    };
    if trail::day_of(&o.key).is_none() {
        return Some("not a CloudTrail log object (no `YYYY/MM/DD/` folder)".into());
    }
    let (_, region) = trail::account_region(folder)?;
    if !regions.is_empty() && !regions.iter().any(|r| r == region) {
        return Some(format!("region {region} is not one of aws.trail_regions"));
    }
    None
}

/// The queue's name (the last part of its URL), for naming the bodies it gives.
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// The region of a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`, or the legacy
/// `https://REGION.queue.amazonaws.com/…`), if it names one.
pub fn queue_region(url: &str) -> Option<&str> {
    let host = url.split_once("://")?.1.split('/').next()?;
    if let Some(rest) = host.strip_prefix("sqs.") {
        return rest.split('.').next().filter(|r| !r.is_empty());
    }
    let (region, rest) = host.split_once('.')?;
    rest.starts_with("queue.amazonaws.com").then_some(region)
}

/// Whether `url` looks like a queue URL: `http(s)://HOST/ACCOUNT/NAME`.
pub fn check_queue_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{url:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
        })?;
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [host, account, name] if !host.is_empty() && !account.is_empty() && !name.is_empty() => {
            Ok(())
        }
        _ => Err(format!(
            "{url:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/ap-south-1/2025/05/05/111122223333_CloudTrail_ap-south-1_20250505T1230Z_8RVMICUclUxJQsPT.json.gz";

    fn objects(n: Notice) -> Vec<Announced> {
        match n {
            Notice::Objects(o) => o,
            other => panic!("{other:?}"),
        }
    }

    fn s3_event(key: &str) -> Value {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2025-05-05T12:35:01.123Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "trail",
                   "bucket": {"name": "trail-bucket", "arn": "arn:aws:s3:::trail-bucket"},
                   "object": {"key": key, "size": 1234, "eTag": "9dd4e461268c8034f5c8564e155c67a6"}}
        }]})
    }

    #[test]
    fn s3_notifications_give_their_keys_decoded_directly_and_through_sns() {
        // S3 encodes the key (moto encodes `/` too; S3 leaves it): both decode alike.
        for written in [
            "AWSLogs/o-exampleorg1/111122223333/CloudTrail/ap-south-1/2025/05/05/111122223333_CloudTrail_ap-south-1_20250505T1230Z_8RVMICUclUxJQsPT.json.gz",
            "AWSLogs%2Fo-exampleorg1%2F111122223333%2FCloudTrail%2Fap-south-1%2F2025%2F05%2F05%2F111122223333_CloudTrail_ap-south-1_20250505T1230Z_8RVMICUclUxJQsPT.json.gz",
        ] {
            let direct = s3_event(written);
            let want = vec![Announced {
                bucket: "trail-bucket".into(),
                key: KEY.into(),
            }];
            assert_eq!(objects(notice(&direct.to_string()).unwrap()), want);
            let sns = serde_json::json!({
                "Type": "Notification", "MessageId": "918a0ef6-e204-4eaa-afa3-68a774beb8db",
                "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Subject": "Amazon S3 Notification",
                "Message": direct.to_string(), "Timestamp": "2025-05-05T12:35:01.806Z",
                "SignatureVersion": "1", "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"
            });
            assert_eq!(objects(notice(&sns.to_string()).unwrap()), want);
        }
        let odd = s3_event("a+b%2Fc%3Ad%2Be%3Df%26g%25h~%C3%A9.json");
        assert_eq!(
            objects(notice(&odd.to_string()).unwrap())[0].key,
            "a b/c:d+e=f&g%h~é.json"
        );
        for bad in ["a%2", "a%zz", "%ff%fe"] {
            let e = notice(&s3_event(bad).to_string()).unwrap_err();
            assert!(e.contains("record 0"), "{e}");
        }
    }

    #[test]
    fn eventbridge_and_cloudtrail_notifications_give_their_keys_as_written() {
        let eb = serde_json::json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
            "time": "2025-05-05T12:35:01Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::trail-bucket"],
            "detail": {"version": "0", "bucket": {"name": "trail-bucket"},
                       "object": {"key": "a b+c.json.gz", "size": 3}, "reason": "PutObject"}
        });
        assert_eq!(
            objects(notice(&eb.to_string()).unwrap()),
            vec![Announced {
                bucket: "trail-bucket".into(),
                key: "a b+c.json.gz".into()
            }]
        );
        let ct = serde_json::json!({"s3Bucket": "trail-bucket", "s3ObjectKey": [KEY, "b.json.gz"]});
        let sns = serde_json::json!({"Type": "Notification", "Message": ct.to_string()});
        assert_eq!(objects(notice(&sns.to_string()).unwrap()).len(), 2);
    }

    #[test]
    fn findings_and_calls_from_eventbridge_are_read_as_events_and_the_rest_as_nothing() {
        let finding = serde_json::json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {}});
        assert_eq!(notice(&finding.to_string()).unwrap(), Notice::Event);
        let test = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2025-05-05T12:35:01.000Z", "Bucket": "trail-bucket"});
        assert!(matches!(
            notice(&test.to_string()).unwrap(),
            Notice::Nothing(_)
        ));
        let mut removed = s3_event(KEY);
        removed["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
        assert!(
            matches!(notice(&removed.to_string()).unwrap(), Notice::Nothing(why) if why.contains("ObjectRemoved:Delete"))
        );
        // Security Hub's would bring this tool's own findings back.
        for kind in [
            "EC2 Instance State-change Notification",
            "Security Hub Findings - Imported",
        ] {
            let other = serde_json::json!({"detail-type": kind, "source": "aws.other"});
            assert!(matches!(
                notice(&other.to_string()).unwrap(),
                Notice::Nothing(_)
            ));
        }
    }

    #[test]
    fn bodies_of_no_known_shape_are_refused_with_the_reason() {
        for (body, why) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            ("{\"a\":1}", "not an S3 event notification"),
            (
                "{\"Type\":\"Notification\",\"Message\":\"{\"}",
                "`Message` is not JSON",
            ),
            (
                "{\"Records\":[{\"eventSource\":\"aws:ec2\"}]}",
                "not an S3 event",
            ),
            (
                "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\"}]}",
                "no `s3.bucket.name`",
            ),
            ("{\"s3Bucket\":\"b\"}", "`s3ObjectKey`"),
        ] {
            let e = notice(body).unwrap_err();
            assert!(e.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn only_the_trails_log_objects_are_read() {
        let at = |bucket: &str, key: &str| Announced {
            bucket: bucket.into(),
            key: key.into(),
        };
        let regions = vec!["ap-south-1".to_string()];
        assert_eq!(not_read(&at("trail-bucket", KEY), None, &[]), None);
        assert_eq!(
            not_read(
                &at("trail-bucket", KEY),
                Some(("trail-bucket", "AWSLogs/")),
                &regions
            ),
            None
        );
        for (o, trail, why) in [
            (at("other", KEY), Some(("trail-bucket", "")), "aws.trail"),
            (
                at("trail-bucket", KEY),
                Some(("trail-bucket", "logs/")),
                "aws.trail",
            ),
            (
                at(
                    "trail-bucket",
                    "AWSLogs/111122223333/CloudTrail-Digest/ap-south-1/2025/05/05/x.json.gz",
                ),
                None,
                "not a CloudTrail log object",
            ),
            (
                at(
                    "trail-bucket",
                    "AWSLogs/111122223333/CloudTrail/ap-south-1/x.json.gz",
                ),
                None,
                "YYYY/MM/DD",
            ),
            (
                at("trail-bucket", &KEY.replace("ap-south-1", "eu-west-1")),
                None,
                "aws.trail_regions",
            ),
        ] {
            let got = not_read(&o, trail, &regions).unwrap_or_default();
            assert!(got.contains(why), "{o:?}: {got}");
        }
    }

    #[test]
    fn queue_urls_give_their_name_and_region() {
        let url = "https://sqs.eu-west-1.amazonaws.com/111122223333/trail-objects";
        assert_eq!(queue_name(url), "trail-objects");
        assert_eq!(queue_region(url), Some("eu-west-1"));
        assert_eq!(
            queue_region("https://ap-south-1.queue.amazonaws.com/111122223333/q"),
            Some("ap-south-1")
        );
        assert_eq!(
            queue_region("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q"),
            Some("cn-north-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/123456789012/q"), None);
        assert!(check_queue_url(url).is_ok());
        assert!(check_queue_url("http://127.0.0.1:5000/123456789012/q").is_ok());
        for bad in [
            "",
            "sqs://x/y/z",
            "https://sqs.eu-west-1.amazonaws.com/q",
            "https://h//q",
        ] {
            assert!(check_queue_url(bad).is_err(), "{bad}");
        }
    }
}
