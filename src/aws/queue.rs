//! The `sqs` source: a trail's log objects announced by their S3 notifications in an SQS
//! queue (what the messages may hold: [`crate::sources::queue`]), the way Vector's `aws_s3`
//! source and the Splunk and Elastic AWS inputs read trails at scale: no listing, and no state
//! per object, since the queue holds what is still to read.
//!
//! A run receives up to `aws.queue_max_messages` messages, 10 a call, until a receive that
//! waited `aws.queue_wait` gets none. Each announced trail object is fetched
//! (`aws.trail_concurrency` at a time, into the same decoders as the listing's) and each
//! EventBridge event of a finding or a call goes to the decoders as it is. While the run works,
//! the messages it holds stay hidden from other receivers: their visibility timeout is renewed
//! every half of `aws.queue_visibility_timeout`.
//!
//! A message is deleted only after the run has written its findings and saved its state, and
//! only when everything it announces was read (at least once: a message received again, or an
//! object announced twice, is read again, and its records merge by `eventID`). A message whose
//! object could not be read, or whose body is of no known shape, is made visible again at the
//! end of the run: the next run tries again, and the queue's redrive policy moves it to the
//! dead-letter queue after its `maxReceiveCount`. A run that stops before its save deletes
//! nothing: its messages come back after their visibility timeout.

use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};

use super::sources::{Body, Failure, object_body};
use crate::sources::queue::{Notice, not_read, notice, queue_name};

/// What the queue's reading starts from.
pub struct QueuePoll {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: super::BucketClient,
    /// The queue's URL.
    pub url: String,
    /// `aws.trail`, when set: only objects under it are read (bucket, folder).
    pub trail: Option<(String, String)>,
    /// `aws.trail_regions`: when not empty, the only regions whose objects are read.
    pub regions: Vec<String>,
    /// Objects fetched at a time.
    pub concurrency: usize,
    pub max_messages: usize,
    /// The visibility timeout, in seconds.
    pub visibility: i32,
    /// How long a receive waits for messages, in seconds.
    pub wait: i32,
    /// Attempts of an object whose body breaks off or does not decompress.
    pub attempts: u32,
    /// `input.max_object_mib`, in bytes.
    pub max_object_bytes: usize,
}

/// What became of an announced object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Fetching,
    /// Read and handed to the decoders.
    Read,
    /// Could not be read (after retries): its message stays in the queue.
    Failed(String),
    /// It does not exist (any more): its records are lost.
    Gone(String),
}

/// A message received and held by the run.
#[derive(Debug)]
pub struct Held {
    pub id: String,
    pub receipt: String,
    /// How many times the queue has delivered it (this time included).
    pub receives: u32,
    /// Why its body cannot be read: it stays in the queue.
    pub unreadable: Option<String>,
    /// The trail objects it announces (`s3://bucket/key`) and what became of them.
    pub objects: Vec<(String, Fate)>,
    /// Objects it announces that are not the trail's (`aws.trail`, `aws.trail_regions`,
    /// digest files), and why.
    pub skipped: Vec<(String, String)>,
    /// Its body went to the decoders as an event (its name).
    pub event: Option<String>,
    /// Why it announces nothing to read (S3's test event, objects removed).
    pub nothing: Option<String>,
    pub deleted: bool,
}

impl Held {
    /// Whether everything it announces is read (or gone for good): it can be deleted.
    pub fn done(&self) -> bool {
        self.unreadable.is_none()
            && self
                .objects
                .iter()
                .all(|(_, f)| matches!(f, Fate::Read | Fate::Gone(_)))
    }
}

/// What the reading did, filled in while it runs.
#[derive(Debug, Default)]
pub struct QueueOutcome {
    /// API calls made (SQS and S3).
    pub calls: u64,
    /// Why a receive failed (after the SDK's retries): the reading stopped there.
    pub receive_error: Option<String>,
    pub messages: Vec<Held>,
    /// Every object announced in this run, by name: the announcements of it (message and
    /// object index), the first the one whose fetch reads it for all. S3 notifies at least
    /// once, and one object can be announced in two shapes (S3's event and CloudTrail's).
    pub announced: std::collections::HashMap<String, Vec<(usize, usize)>>,
}

impl QueueOutcome {
    /// The names of the bodies handed to the decoders.
    pub fn read_names(&self) -> std::collections::HashSet<&str> {
        self.messages
            .iter()
            .flat_map(|m| {
                m.objects
                    .iter()
                    .filter(|(_, f)| *f == Fate::Read)
                    .map(|(n, _)| n.as_str())
                    .chain(m.event.as_deref())
            })
            .collect()
    }
}

pub fn lock(out: &Mutex<QueueOutcome>) -> MutexGuard<'_, QueueOutcome> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

/// Receives the queue's messages into `out` and hands what they announce to `tx` as it is
/// read. Every fetch has finished (and recorded its fate) when this returns.
pub async fn receive(
    poll: Arc<QueuePoll>,
    tx: tokio::sync::mpsc::Sender<Body>,
    out: Arc<Mutex<QueueOutcome>>,
) {
    let fetches = Arc::new(tokio::sync::Semaphore::new(poll.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let name = queue_name(&poll.url).to_string();
    let trail = poll.trail.as_ref().map(|(b, p)| (b.as_str(), p.as_str()));
    let mut received = 0;
    while received < poll.max_messages {
        let want = (poll.max_messages - received).min(10) as i32;
        let got = poll
            .sqs
            .receive_message()
            .queue_url(&poll.url)
            .max_number_of_messages(want)
            .wait_time_seconds(poll.wait)
            .visibility_timeout(poll.visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        lock(&out).calls += 1;
        let page = match got {
            Ok(p) => p,
            Err(e) => {
                lock(&out).receive_error = Some(format!(
                    "ReceiveMessage from {}: {}",
                    poll.url,
                    super::describe_error(&e)
                ));
                break;
            }
        };
        if page.messages().is_empty() {
            break;
        }
        for m in page.messages() {
            received += 1;
            let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                tracing::warn!(queue = %poll.url, "a message came without its id or receipt handle: passed over");
                continue;
            };
            let receives = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let body = m.body().unwrap_or_default();
            let mut held = Held {
                id: id.to_string(),
                receipt: receipt.to_string(),
                receives,
                unreadable: None,
                objects: Vec::new(),
                skipped: Vec::new(),
                event: None,
                nothing: None,
                deleted: false,
            };
            let mut fetch = Vec::new();
            match notice(body) {
                Err(reason) => held.unreadable = Some(reason),
                Ok(Notice::Nothing(why)) => held.nothing = Some(why),
                Ok(Notice::Event) => held.event = Some(format!("sqs://{name}/{id}")),
                Ok(Notice::Objects(list)) => {
                    for o in list {
                        match not_read(&o, trail, &poll.regions) {
                            Some(why) => held.skipped.push((o.name(), why)),
                            None => {
                                held.objects.push((o.name(), Fate::Fetching));
                                fetch.push(o);
                            }
                        }
                    }
                }
            }
            let event = held.event.clone();
            let index = {
                let mut o = lock(&out);
                o.messages.push(held);
                o.messages.len() - 1
            };
            if let Some(event) = event
                && tx.send((event, body.as_bytes().to_vec())).await.is_err()
            {
                let mut o = lock(&out);
                o.messages[index].event = None;
                o.messages[index].unreadable =
                    Some("the run stopped before its event was decoded".into());
            }
            for (j, o) in fetch.into_iter().enumerate() {
                let name = o.name();
                {
                    let mut out = lock(&out);
                    let seen = out.announced.entry(name.clone()).or_default();
                    seen.push((index, j));
                    // Announced before: read once. Its fate so far (the fetch, when it ends,
                    // gives its fate to every announcement).
                    if let [(i0, j0), _, ..] = seen[..] {
                        let fate = out.messages[i0].objects[j0].1.clone();
                        out.messages[index].objects[j].1 = fate;
                        continue;
                    }
                }
                let Ok(permit) = fetches.clone().acquire_owned().await else {
                    return;
                };
                let (poll, tx, out) = (poll.clone(), tx.clone(), out.clone());
                tasks.spawn(async move {
                    let mut calls = 0;
                    let got = object_body(
                        &poll.s3,
                        &o.bucket,
                        &o.key,
                        poll.attempts,
                        poll.max_object_bytes,
                        &mut calls,
                    )
                    .await;
                    let fate = match got {
                        // Sent before the slot is freed: bodies in memory are bounded by the
                        // slots and the channel.
                        Ok(body) => match tx.send((name.clone(), body)).await {
                            Ok(()) => Fate::Read,
                            Err(_) => Fate::Failed("the run stopped before it was decoded".into()),
                        },
                        Err(Failure { reason, gone: true }) => Fate::Gone(reason),
                        Err(Failure { reason, .. }) => Fate::Failed(reason),
                    };
                    let mut out = lock(&out);
                    out.calls += calls;
                    let seen = out.announced.get(&name).cloned().unwrap_or_default();
                    for (i, j) in seen {
                        out.messages[i].objects[j].1 = fate.clone();
                    }
                    drop(permit);
                });
            }
            while tasks.try_join_next().is_some() {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Renews the visibility timeout of the messages `out` holds (not deleted) every half of it,
/// until `stop` is notified.
pub async fn keep_hidden(
    poll: Arc<QueuePoll>,
    out: Arc<Mutex<QueueOutcome>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let every = std::time::Duration::from_millis(u64::from(poll.visibility.max(2) as u32) * 500);
    loop {
        if tokio::time::timeout(every, stop.notified()).await.is_ok() {
            return;
        }
        let held = held_receipts(&out, |_| true);
        let (calls, failed) = change_visibility(&poll, &held, poll.visibility).await;
        lock(&out).calls += calls;
        for (id, reason) in failed {
            tracing::warn!(queue = %poll.url, message = %id, %reason, "a message's visibility timeout could not be renewed: another receiver may read it too (its records merge by eventID)");
        }
    }
}

/// The (id, receipt handle) of the messages held and not deleted that `keep` takes.
pub fn held_receipts(
    out: &Mutex<QueueOutcome>,
    keep: impl Fn(&Held) -> bool,
) -> Vec<(String, String)> {
    lock(out)
        .messages
        .iter()
        .filter(|m| !m.deleted && keep(m))
        .map(|m| (m.id.clone(), m.receipt.clone()))
        .collect()
}

/// Sets the visibility timeout of `messages` to `seconds` (0: visible again now), 10 a call.
/// Returns the calls made and the messages it failed for, with the reason.
pub async fn change_visibility(
    poll: &QueuePoll,
    messages: &[(String, String)],
    seconds: i32,
) -> (u64, Vec<(String, String)>) {
    let mut calls = 0;
    let mut failed = Vec::new();
    for batch in messages.chunks(10) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(seconds)
                    .build()
                    .ok()
            })
            .collect();
        let got = poll
            .sqs
            .change_message_visibility_batch()
            .queue_url(&poll.url)
            .set_entries(Some(entries))
            .send()
            .await;
        calls += 1;
        match got {
            Ok(r) => failed.extend(failures(batch, r.failed())),
            Err(e) => failed.extend(all_failed(
                batch,
                &format!(
                    "ChangeMessageVisibilityBatch: {}",
                    super::describe_error(&e)
                ),
            )),
        }
    }
    (calls, failed)
}

/// Deletes `messages` from the queue, 10 a call. Returns the calls made, the ids deleted and
/// the messages it failed for, with the reason.
pub async fn delete(
    poll: &QueuePoll,
    messages: &[(String, String)],
) -> (u64, Vec<String>, Vec<(String, String)>) {
    let mut calls = 0;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for batch in messages.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        let got = poll
            .sqs
            .delete_message_batch()
            .queue_url(&poll.url)
            .set_entries(Some(entries))
            .send()
            .await;
        calls += 1;
        match got {
            Ok(r) => {
                deleted.extend(r.successful().iter().map(|s| by_entry(batch, s.id())));
                failed.extend(failures(batch, r.failed()));
            }
            Err(e) => failed.extend(all_failed(
                batch,
                &format!("DeleteMessageBatch: {}", super::describe_error(&e)),
            )),
        }
    }
    (calls, deleted, failed)
}

/// The messages of a batch call's failed entries, with the reason SQS gave.
fn failures<'b>(
    batch: &'b [(String, String)],
    failed: &'b [aws_sdk_sqs::types::BatchResultErrorEntry],
) -> impl Iterator<Item = (String, String)> + 'b {
    failed.iter().map(|f| {
        (
            by_entry(batch, f.id()),
            format!("{}: {}", f.code(), f.message().unwrap_or_default()),
        )
    })
}

/// Every message of a batch whose call failed, with the reason.
fn all_failed<'b>(
    batch: &'b [(String, String)],
    reason: &'b str,
) -> impl Iterator<Item = (String, String)> + 'b {
    batch
        .iter()
        .map(move |(id, _)| (id.clone(), reason.to_string()))
}

/// The message id of a batch entry's id (its index in the batch).
fn by_entry(batch: &[(String, String)], entry: &str) -> String {
    entry
        .parse::<usize>()
        .ok()
        .and_then(|i| batch.get(i))
        .map_or_else(|| entry.to_string(), |(id, _)| id.clone())
}
