//! A small HTTP/1.1 server on loopback that answers the AWS APIs moto does not implement
//! (GuardDuty `ListDetectors`/`ListFindings`/`GetFindings`, CloudTrail `LookupEvents`) from
//! fixture records, and `BatchImportFindings` when a test needs faults moto cannot make.
//! It records every request, and can be told to fail the next calls of an operation. Given an
//! upstream ([`Mock::proxy`]), it passes the calls it has no answer for (S3's) on to it, so
//! that faults can be put in front of moto.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub operation: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// A canned fault: status and body, sent instead of the real answer.
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub body: String,
    /// Seconds to wait before answering.
    pub delay_ms: u64,
}

#[derive(Default)]
struct Inner {
    findings: Vec<Value>,
    events: Vec<Value>,
    seen: Vec<Seen>,
    faults: BTreeMap<String, VecDeque<Fault>>,
    /// BatchImportFindings: ids to fail once each with this code.
    fail_import_once: BTreeMap<String, String>,
    imported: Vec<Value>,
    /// ECS `DescribeTasks`: the last status of each task ARN known.
    ecs_tasks: BTreeMap<String, String>,
    /// The ECS task metadata endpoint's `GET <uri>/task` answer.
    task_metadata: Option<Value>,
    /// Where calls with no answer here go (`host:port`).
    upstream: Option<String>,
    /// Faults for calls of an operation whose query holds a text.
    query_faults: Vec<(String, String, VecDeque<Fault>)>,
    /// Operations whose next answer is made (and recorded) at once but sent this late.
    late_answers: BTreeMap<String, VecDeque<u64>>,
    /// Calls passed on: how long each waits first, how many are under way, and the most
    /// that ever were at once.
    proxy_delay_ms: u64,
    /// Per kind (`list`: ListObjectsV2, `get`: GetObject, `other`): under way, most at once.
    proxied: BTreeMap<&'static str, (usize, usize)>,
    /// Buckets and the region each is in: an S3 call signed for another region is answered
    /// as S3 answers it (see [`Mock::bucket_in`]).
    bucket_regions: BTreeMap<String, String>,
    /// S3 calls answered with a redirect to the bucket's region.
    redirected: usize,
}

/// The server; dropped with the test (its thread ends with the process).
#[derive(Clone)]
pub struct Mock {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Mock {
    pub fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = inner.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Mock { url, inner }
    }

    /// GuardDuty findings (API camelCase) the mock serves.
    pub fn add_findings(&self, findings: impl IntoIterator<Item = Value>) {
        self.inner.lock().unwrap().findings.extend(findings);
    }

    /// A later version of a finding the mock serves: replaces the one with its `id`, as
    /// GuardDuty updates a finding in place.
    pub fn update_finding(&self, finding: Value) {
        let mut inner = self.inner.lock().unwrap();
        inner.findings.retain(|f| f["id"] != finding["id"]);
        inner.findings.push(finding);
    }

    /// CloudTrail records the mock serves through `LookupEvents`.
    pub fn add_events(&self, records: impl IntoIterator<Item = Value>) {
        self.inner.lock().unwrap().events.extend(records);
    }

    /// The next calls of `operation` get these faults, in order.
    pub fn fail(&self, operation: &str, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .lock()
            .unwrap()
            .faults
            .entry(operation.to_string())
            .or_default()
            .extend(faults);
    }

    /// `BatchImportFindings` reports this finding failed, once, with `code`.
    pub fn fail_import_once(&self, id: &str, code: &str) {
        self.inner
            .lock()
            .unwrap()
            .fail_import_once
            .insert(id.to_string(), code.to_string());
    }

    /// ECS `DescribeTasks` answers this status for this task ARN (others are MISSING).
    pub fn set_task(&self, arn: &str, status: &str) {
        self.inner
            .lock()
            .unwrap()
            .ecs_tasks
            .insert(arn.to_string(), status.to_string());
    }

    /// Serves the ECS task metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4` is
    /// `<url>/v4/<anything>`) for a task of `cluster`.
    pub fn serve_task_metadata(&self, cluster: &str, task: &str) {
        self.inner.lock().unwrap().task_metadata =
            Some(json!({"Cluster": cluster, "TaskARN": task, "Family": "correlator"}));
    }

    /// Passes the calls the mock has no answer for (`METHOD /path` operations: S3's; and
    /// SQS's) on to `url` (`http://host:port`), unless a fault is queued for them.
    pub fn proxy(&self, url: &str) {
        self.inner.lock().unwrap().upstream = Some(
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
        );
    }

    /// `bucket` is in `region`: an S3 call for it signed for another region is answered as S3
    /// answers a path-style request sent to the wrong region (301 `PermanentRedirect`, the
    /// bucket's region in `x-amz-bucket-region`), not passed on.
    pub fn bucket_in(&self, bucket: &str, region: &str) {
        self.inner
            .lock()
            .unwrap()
            .bucket_regions
            .insert(bucket.to_string(), region.to_string());
    }

    /// How many S3 calls were answered with a redirect to their bucket's region.
    pub fn redirected(&self) -> usize {
        self.inner.lock().unwrap().redirected
    }

    /// The next call of `operation` is answered as usual (what it does is done and recorded at
    /// once), but the answer is sent `ms` later: a run can be killed in between.
    pub fn answer_late(&self, operation: &str, ms: u64) {
        self.inner
            .lock()
            .unwrap()
            .late_answers
            .entry(operation.to_string())
            .or_default()
            .push_back(ms);
    }

    /// Each call passed on waits this long first (so that calls overlap).
    pub fn delay_proxied(&self, ms: u64) {
        self.inner.lock().unwrap().proxy_delay_ms = ms;
    }

    /// The most calls passed on of `kind` (`list`: ListObjectsV2, `get`: GetObject) that were
    /// under way at once.
    pub fn most_proxied_at_once(&self, kind: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .proxied
            .get(kind)
            .map_or(0, |(_, most)| *most)
    }

    /// The next calls of `operation` whose query holds `query` get these faults, in order.
    pub fn fail_query(
        &self,
        operation: &str,
        query: &str,
        faults: impl IntoIterator<Item = Fault>,
    ) {
        self.inner.lock().unwrap().query_faults.push((
            operation.to_string(),
            query.to_string(),
            faults.into_iter().collect(),
        ));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn imported(&self) -> Vec<Value> {
        self.inner.lock().unwrap().imported.clone()
    }
}

fn lock_inner(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap()
}

fn serve(stream: TcpStream, inner: &Mutex<Inner>) {
    let inner_ref = inner;
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = target.split('?').next().unwrap_or("").to_string();
        let query = target.split_once('?').map(|(_, q)| q.to_string());
        let raw = body;
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let operation = operation(&method, &path, headers.get("x-amz-target"));
        let (status, answer, delay) = {
            let mut inner = inner.lock().unwrap();
            inner.seen.push(Seen {
                operation: operation.clone(),
                method: method.clone(),
                path: path.clone(),
                query: query.clone().unwrap_or_default(),
                body: body.clone(),
                at: std::time::Instant::now(),
            });
            // The region the call was signed for: `Credential=KEY/DATE/REGION/SERVICE/...`.
            let signed_for = headers
                .get("authorization")
                .and_then(|a| a.split("Credential=").nth(1))
                .and_then(|c| c.split('/').nth(2))
                .unwrap_or("")
                .to_string();
            let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("");
            if operation.contains(' ')
                && let Some(home) = inner.bucket_regions.get(bucket)
                && *home != signed_for
            {
                let home = home.clone();
                inner.redirected += 1;
                drop(inner);
                let body = format!(
                    "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Bucket>{bucket}</Bucket></Error>"
                );
                let head = format!(
                    "HTTP/1.1 301 Moved Permanently\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nx-amz-bucket-region: {home}\r\n\r\n",
                    if method == "HEAD" { 0 } else { body.len() }
                );
                if writer.write_all(head.as_bytes()).is_err()
                    || (method != "HEAD" && writer.write_all(body.as_bytes()).is_err())
                {
                    return;
                }
                continue;
            }
            let q = query.clone().unwrap_or_default();
            let fault = inner
                .query_faults
                .iter_mut()
                .find(|(op, text, f)| {
                    *op == operation && q.contains(text.as_str()) && !f.is_empty()
                })
                .and_then(|(_, _, f)| f.pop_front())
                .or_else(|| {
                    inner
                        .faults
                        .get_mut(&operation)
                        .and_then(VecDeque::pop_front)
                });
            let upstream = inner.upstream.clone();
            match fault {
                None if upstream.is_some()
                    && (operation.contains(' ')
                        || headers
                            .get("x-amz-target")
                            .is_some_and(|t| t.starts_with("AmazonSQS."))) =>
                {
                    let kind = if q.contains("list-type=") {
                        "list"
                    } else if q.contains("x-id=GetObject") {
                        "get"
                    } else {
                        "other"
                    };
                    let (now, most) = inner.proxied.entry(kind).or_default();
                    *now += 1;
                    *most = (*most).max(*now);
                    let delay = inner.proxy_delay_ms;
                    drop(inner);
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    let upstream = upstream.unwrap_or_default();
                    let answer = forward(&upstream, &method, &target, &headers, &raw);
                    if let Some((now, _)) = lock_inner(inner_ref).proxied.get_mut(kind) {
                        *now -= 1;
                    }
                    // The upstream's answer as it is; the connection ends with it.
                    if let Some(answer) = answer {
                        let _ = writer.write_all(&answer);
                    }
                    return;
                }
                Some(f) => (f.status, f.body, f.delay_ms),
                None => {
                    let (s, b) = answer(&mut inner, &operation, &path, query.as_deref(), &body);
                    let late = inner
                        .late_answers
                        .get_mut(&operation)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or(0);
                    (s, b, late)
                }
            }
        };
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let content_type = if operation == "LookupEvents" || operation == "DescribeTasks" {
            "application/x-amz-json-1.1"
        } else {
            "application/json"
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-amzn-requestid: 00000000-0000-4000-8000-000000000000\r\n\r\n",
            answer.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// A request passed on to `upstream` as it came (`connection: close`), and its whole answer.
fn forward(
    upstream: &str,
    method: &str,
    target: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).ok()?;
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| *k != "connection") {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    Some(answer)
}

fn operation(method: &str, path: &str, target: Option<&String>) -> String {
    if let Some(t) = target {
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    match (method, path) {
        ("GET", "/detector") => "ListDetectors".into(),
        ("POST", p) if p.starts_with("/detector/") && p.ends_with("/findings/get") => {
            "GetFindings".into()
        }
        ("POST", p) if p.starts_with("/detector/") && p.ends_with("/findings") => {
            "ListFindings".into()
        }
        ("POST", "/findings/import") => "BatchImportFindings".into(),
        ("GET", p) if p.starts_with("/v4/") && p.ends_with("/task") => "TaskMetadata".into(),
        _ => format!("{method} {path}"),
    }
}

fn page<T: Clone>(items: &[T], token: Option<&str>, size: usize) -> (Vec<T>, Option<String>) {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    (items[start.min(end)..end].to_vec(), next)
}

fn epoch_seconds(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn answer(
    inner: &mut Inner,
    operation: &str,
    _path: &str,
    query: Option<&str>,
    body: &Value,
) -> (u16, String) {
    match operation {
        "ListDetectors" => (
            200,
            json!({"detectorIds": ["12abc34d567e8fa901bc2d34e56789f0"]}).to_string(),
        ),
        "ListFindings" => {
            // As GuardDuty does, a `service.archived` criterion leaves the others out.
            let archived = body["findingCriteria"]["criterion"]["service.archived"]["equals"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|v| v == "true");
            let ids: Vec<String> = inner
                .findings
                .iter()
                .filter(|f| {
                    archived
                        .is_none_or(|a| f["service"]["archived"].as_bool().unwrap_or(false) == a)
                })
                .map(|f| f["id"].as_str().unwrap_or_default().to_string())
                .collect();
            let max = body["maxResults"].as_u64().unwrap_or(50) as usize;
            let (ids, next) = page(&ids, body["nextToken"].as_str(), max);
            let mut out = json!({ "findingIds": ids });
            if let Some(n) = next {
                out["nextToken"] = json!(n);
            }
            (200, out.to_string())
        }
        "GetFindings" => {
            let want: Vec<&str> = body["findingIds"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let found: Vec<&Value> = inner
                .findings
                .iter()
                .filter(|f| want.contains(&f["id"].as_str().unwrap_or_default()))
                .collect();
            (200, json!({ "findings": found }).to_string())
        }
        "LookupEvents" => {
            let start = epoch_seconds(&body["StartTime"]).unwrap_or(f64::MIN);
            let end = epoch_seconds(&body["EndTime"]).unwrap_or(f64::MAX);
            let name = body["LookupAttributes"]
                .as_array()
                .and_then(|a| a.first())
                .filter(|a| a["AttributeKey"] == "EventName")
                .and_then(|a| a["AttributeValue"].as_str())
                .map(str::to_string);
            let mut events: Vec<Value> = inner
                .events
                .iter()
                .filter(|r| {
                    let t = finding_correlator::time::parse_timestamp(
                        r["eventTime"].as_str().unwrap_or_default(),
                    )
                    .unwrap_or(0) as f64
                        / 1000.0;
                    t >= start && t <= end && name.as_deref().is_none_or(|n| r["eventName"] == n)
                })
                .map(|r| {
                    let t = finding_correlator::time::parse_timestamp(
                        r["eventTime"].as_str().unwrap_or_default(),
                    )
                    .unwrap_or(0) as f64
                        / 1000.0;
                    json!({
                        "EventId": r["eventID"],
                        "EventName": r["eventName"],
                        "ReadOnly": r["readOnly"].as_bool().unwrap_or(false).to_string(),
                        "EventTime": t,
                        "EventSource": r["eventSource"],
                        "Username": r["userIdentity"]["userName"],
                        "CloudTrailEvent": r.to_string(),
                    })
                })
                .collect();
            // Newest first, as CloudTrail answers.
            events.sort_by(|a, b| {
                b["EventTime"]
                    .as_f64()
                    .partial_cmp(&a["EventTime"].as_f64())
                    .unwrap()
            });
            let max = body["MaxResults"].as_u64().unwrap_or(50) as usize;
            let (events, next) = page(&events, body["NextToken"].as_str(), max);
            let mut out = json!({ "Events": events });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            (200, out.to_string())
        }
        "TaskMetadata" => match &inner.task_metadata {
            Some(m) => (200, m.to_string()),
            None => (404, "no task metadata".into()),
        },
        "DescribeTasks" => {
            let cluster = body["cluster"].as_str().unwrap_or("default");
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            for arn in body["tasks"].as_array().into_iter().flatten() {
                let arn = arn.as_str().unwrap_or_default();
                match inner.ecs_tasks.get(arn) {
                    Some(status) => tasks.push(json!({
                        "taskArn": arn,
                        "clusterArn": cluster,
                        "lastStatus": status,
                        "desiredStatus": "STOPPED",
                        "stoppedReason": if status == "STOPPED" { "OutOfMemoryError: Container killed due to memory usage" } else { "" },
                    })),
                    None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                }
            }
            (
                200,
                json!({"tasks": tasks, "failures": failures}).to_string(),
            )
        }
        "BatchImportFindings" => {
            let findings = body["Findings"].as_array().cloned().unwrap_or_default();
            let mut failed = Vec::new();
            for f in findings {
                let id = f["Id"].as_str().unwrap_or_default().to_string();
                match inner.fail_import_once.remove(&id) {
                    Some(code) => failed.push(json!({
                        "Id": id,
                        "ErrorCode": code,
                        "ErrorMessage": "injected by the test",
                    })),
                    None => inner.imported.push(f),
                }
            }
            let ok = inner.imported.len();
            (
                200,
                json!({"FailedCount": failed.len(), "SuccessCount": ok, "FailedFindings": failed})
                    .to_string(),
            )
        }
        _ => {
            let _ = query;
            (
                404,
                json!({"message": format!("no mock for {operation}")}).to_string(),
            )
        }
    }
}
