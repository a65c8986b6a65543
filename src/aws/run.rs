//! `correlator run`: one scheduled pass of AWS mode.
//!
//! 1. Take the state: a local file under its lock, or the S3 object, claimed by a lease written
//!    with a conditional request (a second task that overlaps stops here, having read and
//!    written nothing, unless the lease's holder is known to be gone: see [`super::lease`]).
//!    The lease is renewed while the run works.
//!
//! Then the one run loop of `correlate --state` ([`crate::run_loop::run_once`]) with this
//! mode's components:
//!
//! 2. `AwsSources`: every source of `aws.sources` ([`SourceConfig`]) polled in every region
//!    from its checkpoint (minus the overlap), or from the look-back on a first run.
//! 3. The responses correlated with the state, as `correlate --state` does with files.
//! 4. `AwsSink`: the new and changed findings written to the sink of `aws.sink`
//!    ([`SinkConfig`]: Security Hub, a file, or stdout).
//! 5. The state saved (conditional write), with the checkpoints moved forward and only the
//!    findings the sink acknowledged recorded as written; a finding that failed is sent again
//!    by the next run. `StopsLease` stops renewing the lease before that save.
//!
//! `--dry-run` polls and correlates, sends nothing to Security Hub, and saves no state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::lease::{self, Identity};
use super::sink;
use super::sources::{self, Polled, RateLimit};
use super::store::{S3Location, S3Store};
use crate::config::Settings;
use crate::graph::Detail;
use crate::pipeline::{CorrelateRun, Input};
use crate::rules::RuleSet;
use crate::run_loop;
use crate::sinks::asff::{PROVIDER, Writer};
use crate::sinks::{Deliver, SinkConfig};
use crate::sources::SourceConfig;
use crate::state::{FileStore, StateError, StateStore};
use crate::time::{Millis, format_rfc3339};

/// What the command line adds to the settings.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides `aws.state`.
    pub state: Option<String>,
    pub dry_run: bool,
    /// Also write the findings sent to this file (`-` for stdout).
    pub asff: Option<std::path::PathBuf>,
    /// Wall-clock now (tests set it); None means the clock.
    pub now: Option<Millis>,
}

/// What one run did, for the summary and the exit code.
#[derive(Debug, Default, serde::Serialize)]
pub struct RunReport {
    pub sources: Vec<SourceLine>,
    pub findings: FindingsLine,
    pub state: StateLine,
    /// The trail source (`cloudtrail_s3`): its folders and objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail: Option<TrailLine>,
    /// The queue source (`sqs`): its messages and the objects they announce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueLine>,
    /// Records or findings that were lost (decode problems, findings Security Hub refused).
    pub partial: bool,
    /// Regions of records that this build does not know (kept as given), with their signals.
    pub unknown_regions: BTreeMap<String, u64>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SourceLine {
    pub source: String,
    pub region: String,
    pub calls: u64,
    pub records: u64,
    /// CloudTrail `LookupEvents`: events that arrived later than the delivery delay.
    pub late: u64,
    pub since: String,
    pub millis: u128,
}

/// What the trail source did, and what it left pending.
#[derive(Debug, Default, serde::Serialize)]
pub struct TrailLine {
    /// Account and region folders found.
    pub folders: usize,
    /// Account folders left to other shards (`aws.shard`): not listed, not read.
    pub other_shards: usize,
    /// Objects read this run (pending ones read at last included).
    pub objects: usize,
    /// Objects that could not be read this run, after retries.
    pub failed: usize,
    /// Objects pending in the state after this run (read again by the next run), in every
    /// folder of the trail.
    pub pending: usize,
    /// Pending objects that no longer exist: their records are lost.
    pub gone: usize,
    /// Folders whose listing failed (their cursors stay), and whether the trail's folders
    /// could not be found at all.
    pub listing_errors: usize,
    pub trail_error: bool,
}

impl TrailLine {
    /// Whether something of the trail was not read.
    pub fn partial(&self) -> bool {
        self.failed > 0
            || self.pending > 0
            || self.gone > 0
            || self.listing_errors > 0
            || self.trail_error
    }
}

/// What the queue source did with the messages it received.
#[derive(Debug, Default, serde::Serialize)]
pub struct QueueLine {
    /// Messages received.
    pub messages: usize,
    /// Messages deleted: everything they announce was read, the findings written and the
    /// state saved.
    pub deleted: usize,
    /// Messages left in the queue for a later run (not read whole, the run saved nothing, or
    /// their deletion failed).
    pub kept: usize,
    /// Trail objects read.
    pub objects: usize,
    /// Announcements of an object announced before in the same run (S3 notifies at least
    /// once): read once, the messages' fates its fetch's.
    pub repeated: usize,
    /// EventBridge events read (findings, calls).
    pub events: usize,
    /// Objects that could not be read after retries: their messages stay in the queue.
    pub failed: usize,
    /// Objects that no longer exist: their records are lost.
    pub gone: usize,
    /// Objects announced that are not the trail's (`aws.trail`, `aws.trail_regions`, digest
    /// files): passed over.
    pub skipped: usize,
    /// Messages of no known shape: they stay, and the queue's redrive policy moves them to
    /// its dead-letter queue in the end.
    pub unreadable: usize,
    /// Messages whose deletion failed: read again by a later run (their records merge).
    pub delete_errors: usize,
    /// A receive failed after retries: the reading stopped there.
    pub receive_error: bool,
    /// SQS and S3 calls in all, the deletions and visibility changes at the end included
    /// (the source's line counts those made while reading).
    pub calls: u64,
}

impl QueueLine {
    /// Whether something the queue announced was not read.
    pub fn partial(&self) -> bool {
        self.failed > 0 || self.gone > 0 || self.unreadable > 0 || self.receive_error
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct FindingsLine {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub superseded: usize,
    /// Earlier findings withdrawn: they held a GuardDuty finding archived since.
    pub withdrawn: usize,
    pub sink: String,
    /// New and changed findings: what the run sends (or, in a dry run, would send).
    pub to_send: usize,
    /// Findings sent to the sink: none in a dry run.
    pub sent: usize,
    pub imported: usize,
    pub failed: Vec<(String, String, String)>,
    pub calls: u64,
    pub millis: u128,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct StateLine {
    pub location: String,
    pub saved: bool,
    pub signals: usize,
    pub statements: usize,
    pub horizon: Option<String>,
    /// Selected records older than the state's horizon, left out (see the warning the run
    /// logs): in AWS mode, records that arrived too late to be matched.
    pub before_horizon: u64,
}

pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// The checkpoint key of a polled source.
fn key(source: &str, region: &str) -> String {
    format!("aws/{source}/{region}")
}

use crate::sources::needed_event_names;

/// Runs one pass. Returns the report; the caller maps it to an exit code.
///
/// # Errors
/// An unusable or busy state (exit 3 for the caller), a source or sink that failed after
/// retries (nothing saved: the next run starts from the same checkpoints).
pub fn run(
    settings: &Settings,
    rules: Arc<RuleSet>,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let aws = &settings.aws;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The SDK's deserializers of deeply nested findings recurse deeply.
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let now = opts.now.unwrap_or_else(now_millis);
    let regions: Vec<Option<String>> = if aws.regions.is_empty() {
        vec![None]
    } else {
        aws.regions.iter().cloned().map(Some).collect()
    };
    let base = runtime.block_on(super::sdk_config(regions[0].as_deref(), &aws.retry));
    let record = super::RecordCalls::new(aws.record_calls.as_deref());
    let location = opts.state.clone().unwrap_or_else(|| aws.state.clone());

    // 1. The state.
    let mut _lock = None;
    let store: Box<dyn StateStore + Sync> = if location.starts_with("s3://") {
        let loc: S3Location = location
            .parse()
            .map_err(|e: String| anyhow::anyhow!("state: {e}"))?;
        let s3 = super::clients::s3(&base, &record);
        Box::new(S3Store::new(s3, loc, runtime.handle().clone()))
    } else {
        let fs = FileStore::new(&location);
        if !opts.dry_run {
            _lock = Some(fs.lock()?);
        }
        Box::new(fs)
    };
    let is_s3 = location.starts_with("s3://");
    let mut prior = store.load()?.unwrap_or_default();
    let me = if is_s3 {
        Identity::here(&aws.host)
    } else {
        // A local file is guarded by its lock, not a lease: no need to ask ECS who runs.
        Identity::here(&crate::config::HostEnvironment {
            ecs_metadata_uri: None,
            ..aws.host.clone()
        })
    };
    if let Some(l) = &prior.lease
        && l.expires > now
        && l.holder != me.holder
    {
        match runtime.block_on(lease::holder_gone(l, &me, &aws.retry, &record)) {
            Some(why) => tracing::warn!(
                state = %store.describe(),
                holder = %l.holder,
                since = %format_rfc3339(l.since),
                "taking the state over from a run that is gone: {why}"
            ),
            None => {
                return Err(StateError::Leased {
                    origin: store.describe(),
                    holder: l.holder.clone(),
                    since: format_rfc3339(l.since),
                    expires: format_rfc3339(l.expires),
                }
                .into());
            }
        }
    }
    // A local file is guarded by its lock; the S3 object is claimed with a lease, written
    // conditionally: the loser of a race stops here.
    let claimed = is_s3 && !opts.dry_run;
    prior.lease = None;
    if claimed {
        let mut claim = prior.clone();
        claim.lease = Some(me.lease(now, aws.lease));
        store.save(&claim)?;
        tracing::info!(state = %store.describe(), holder = %me.holder, "state claimed");
    }
    let keeper = claimed.then(|| lease::Keeper::new(store.as_ref(), prior.clone(), &me, aws.lease));
    std::thread::scope(|scope| {
        if let Some(k) = &keeper {
            std::thread::Builder::new()
                .name("lease".into())
                .spawn_scoped(scope, || k.run())
                .context("starting the thread that renews the state's lease")?;
        }
        let result = run_claimed(
            settings,
            &rules,
            opts,
            &runtime,
            &base,
            &regions,
            now,
            &prior,
            store.as_ref(),
            keeper.as_ref(),
        );
        if let Some(k) = &keeper {
            k.stop();
        }
        if result.is_err() && claimed {
            // Release the claim: the state is what it was before this run.
            if let Err(e) = store.save(&prior) {
                tracing::warn!("could not release the state's lease ({e}); it expires by itself");
            }
        }
        result
    })
}

/// `correlator state release`: frees the lease of the state at `location` when `holder`
/// names its holder (see [`lease::release`]). A local state has no lease: its lock is freed
/// when the process holding it ends.
///
/// # Errors
/// The state cannot be read or written.
pub fn release(
    settings: &Settings,
    location: &str,
    holder: Option<&str>,
) -> anyhow::Result<lease::Released> {
    if !location.starts_with("s3://") {
        return Ok(lease::Released::Nothing(format!(
            "state `{location}` is a local file: it has no lease, and its lock (`{location}.lock`) is freed when the run holding it ends; nothing to release"
        )));
    }
    let (store, _runtime) = s3_store(settings, location)?;
    Ok(lease::release(&store, holder)?)
}

/// Reads the S3 state at `location` without taking its lease (`correlator state inspect`).
///
/// # Errors
/// The state cannot be read or is not a usable state.
pub fn load_state(
    settings: &Settings,
    location: &str,
) -> anyhow::Result<Option<crate::state::State>> {
    let (store, _runtime) = s3_store(settings, location)?;
    Ok(store.load()?)
}

/// The S3 state store at `location`, outside a run, with the runtime its calls run on.
fn s3_store(
    settings: &Settings,
    location: &str,
) -> anyhow::Result<(S3Store, tokio::runtime::Runtime)> {
    let loc: S3Location = location
        .parse()
        .map_err(|e: String| anyhow::anyhow!("state: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let aws = &settings.aws;
    let base = runtime.block_on(super::sdk_config(
        aws.regions.first().map(String::as_str),
        &aws.retry,
    ));
    let record = super::RecordCalls::new(aws.record_calls.as_deref());
    let store = S3Store::new(
        super::clients::s3(&base, &record),
        loc,
        runtime.handle().clone(),
    );
    Ok((store, runtime))
}

/// The run after the state is held: [`run_loop::run_once`] with AWS mode's sources and sink.
#[allow(clippy::too_many_arguments)]
fn run_claimed(
    settings: &Settings,
    rules: &Arc<RuleSet>,
    opts: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    base: &aws_config::SdkConfig,
    regions: &[Option<String>],
    now: Millis,
    prior: &crate::state::State,
    store: &dyn StateStore,
    keeper: Option<&lease::Keeper<'_>>,
) -> anyhow::Result<RunReport> {
    let aws = &settings.aws;
    let record = super::RecordCalls::new(aws.record_calls.as_deref());
    let sdk_region = base.region().map(|r| r.to_string()).unwrap_or_default();
    let mut sources = AwsSources {
        settings,
        runtime,
        base,
        record: &record,
        regions,
        sdk_region: &sdk_region,
        now,
        names: needed_event_names(rules, settings),
        stream: Stream::default(),
        reads: Vec::new(),
        trail: None,
        cursors: BTreeMap::new(),
        recent: BTreeMap::new(),
        lines: Vec::new(),
        trail_line: None,
        queue: None,
        queue_line: None,
    };
    let mut sink = AwsSink {
        settings,
        rules,
        asff: opts.asff.as_deref(),
        runtime,
        base,
        record: &record,
        region: aws
            .securityhub_region
            .clone()
            .or_else(|| aws.regions.first().cloned())
            .unwrap_or_else(|| sdk_region.clone()),
        partition: String::new(),
        line: FindingsLine::default(),
    };
    let store = StopsLease { store, keeper };
    let outcome = run_loop::run_once(
        Some(run_loop::Taken {
            store: &store,
            prior,
        }),
        &mut sources,
        &mut sink,
        settings,
        rules,
        run_loop::Options {
            dry_run: opts.dry_run,
        },
    );
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // Nothing saved: the queue's messages go back for the next run.
            run_loop::Source::finish(&mut sources, false);
            return Err(e);
        }
    };
    let trail_partial = sources.trail_line.as_ref().is_some_and(TrailLine::partial);
    let queue_partial = sources.queue_line.as_ref().is_some_and(QueueLine::partial);
    let mut report = RunReport {
        sources: sources.lines,
        findings: sink.line,
        trail: sources.trail_line,
        queue: sources.queue_line,
        ..RunReport::default()
    };
    report.partial = outcome.run.summary.lost_anything()
        || !report.findings.failed.is_empty()
        || trail_partial
        || queue_partial;
    report.unknown_regions = outcome.run.summary.unknown_regions.clone();
    if let Some(changes) = &outcome.changes {
        report.findings.new = changes.new;
        report.findings.updated = changes.updated;
        report.findings.unchanged = changes.unchanged;
        report.findings.superseded = changes.superseded;
        report.findings.withdrawn = changes.withdrawn;
        report.findings.to_send = changes.write.len();
        if !opts.dry_run {
            report.findings.sent = changes.write.len();
        }
    }
    if let Some(next) = &outcome.next {
        report.state = StateLine {
            location: store.describe(),
            saved: outcome.saved.is_some(),
            signals: next.signals.len(),
            statements: next.graph.len(),
            horizon: next.horizon.map(format_rfc3339),
            before_horizon: outcome.run.before_horizon,
        };
    }
    Ok(report)
}

/// The state store of a run, which stops renewing the run's lease before it saves: the save
/// releases the lease, and no renewal may race it.
struct StopsLease<'a> {
    store: &'a dyn StateStore,
    keeper: Option<&'a lease::Keeper<'a>>,
}

impl StateStore for StopsLease<'_> {
    fn load(&self) -> Result<Option<crate::state::State>, StateError> {
        self.store.load()
    }

    fn save(&self, state: &crate::state::State) -> Result<(), StateError> {
        if let Some(k) = self.keeper {
            k.stop();
        }
        self.store.save(state)
    }

    fn describe(&self) -> String {
        self.store.describe()
    }
}

/// AWS mode's sources ([`crate::sources::SourceConfig`], from `aws.sources`), polled in every
/// region (the trail once) from their checkpoints.
struct AwsSources<'a> {
    settings: &'a Settings,
    runtime: &'a tokio::runtime::Runtime,
    base: &'a aws_config::SdkConfig,
    record: &'a super::RecordCalls,
    regions: &'a [Option<String>],
    /// The SDK's region, for a run with no `aws.regions`.
    sdk_region: &'a str,
    now: Millis,
    /// The CloudTrail event names the rules need (None: every management event).
    names: Option<Vec<String>>,
    /// What the decoders take: the API responses read, then the trail's objects as they come.
    stream: Stream,
    reads: Vec<SourceRead>,
    /// The trail's poll while it runs, when the trail is a source.
    trail: Option<TrailRun>,
    cursors: BTreeMap<String, Millis>,
    recent: BTreeMap<String, std::collections::BTreeSet<String>>,
    lines: Vec<SourceLine>,
    trail_line: Option<TrailLine>,
    /// The queue's reading while it runs and until its messages are acknowledged, when the
    /// queue is a source.
    queue: Option<QueueRun>,
    queue_line: Option<QueueLine>,
}

/// The queue's reading: started before the API sources are polled, read by the decoders
/// while it receives and fetches; its messages are held (kept hidden) until the run ends.
struct QueueRun {
    poll: Arc<super::queue::QueuePoll>,
    outcome: Arc<std::sync::Mutex<super::queue::QueueOutcome>>,
    stop: Arc<tokio::sync::Notify>,
    hidden: tokio::task::JoinHandle<()>,
    started: Instant,
}

/// The trail's poll: started before the API sources are polled, read by the decoders while
/// it lists and fetches.
struct TrailRun {
    trail: String,
    bucket: String,
    overlap: Millis,
    from: Millis,
    started: Instant,
    outcome: Arc<std::sync::Mutex<sources::TrailOutcome>>,
}

/// The bodies a run decodes: the API responses (read before decoding starts), then the trail
/// objects from the channel its fetches send to, until every fetch is done. At most
/// `aws.trail_concurrency` objects are being fetched and as many wait in the channel.
#[derive(Default)]
struct Stream {
    first: std::sync::Mutex<std::collections::VecDeque<sources::Body>>,
    rest: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<sources::Body>>>,
}

impl crate::sources::file::Bodies for Stream {
    fn next_body(&self) -> Option<sources::Body> {
        if let Some(b) = self
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
        {
            return Some(b);
        }
        let mut rest = self.rest.lock().unwrap_or_else(|e| e.into_inner());
        let got = rest.as_mut()?.blocking_recv();
        if got.is_none() {
            *rest = None;
        }
        got
    }
}

impl AwsSources<'_> {
    /// Polls one per-region source in `region` from `from`.
    async fn poll(
        &self,
        source: &SourceConfig,
        conf: &aws_config::SdkConfig,
        region: &str,
        from: Millis,
    ) -> anyhow::Result<Polled> {
        Ok(match source {
            SourceConfig::GuardDuty => {
                let client = super::clients::guardduty(conf, self.record);
                sources::guardduty(&client, region, from).await?
            }
            SourceConfig::SecurityHub => {
                let client = super::clients::securityhub(conf, self.record);
                sources::securityhub(&client, region, from, self.now, PROVIDER).await?
            }
            SourceConfig::CloudTrailLookup {
                calls_per_second, ..
            } => {
                let client = super::clients::cloudtrail(conf, self.record);
                let rate = RateLimit::new(*calls_per_second);
                sources::cloudtrail(
                    &client,
                    region,
                    from,
                    self.now,
                    self.names.as_deref(),
                    &rate,
                )
                .await?
            }
            SourceConfig::CloudTrailS3 { .. } | SourceConfig::Sqs(_) => {
                anyhow::bail!("the trail is not polled per region")
            }
        })
    }

    /// Starts reading the trail's objects in S3 not read yet, on the runtime: the decoders
    /// take them from [`Stream`] as they arrive.
    fn start_trail(
        &mut self,
        trail: &str,
        regions: &[String],
        concurrency: usize,
        overlap: Millis,
        prior: &crate::state::State,
    ) -> anyhow::Result<()> {
        let aws = &self.settings.aws;
        let (bucket, prefix) = trail
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| anyhow::anyhow!("aws.trail: not an s3:// location"))?;
        let folders = prior
            .checkpoints
            .iter()
            .filter_map(|(k, c)| {
                k.strip_prefix(crate::sources::trail::CHECKPOINT_PREFIX)
                    .map(|f| (f.to_string(), c.clone()))
            })
            .collect();
        let from = self.now.saturating_sub(aws.lookback);
        let poll = Arc::new(sources::TrailPoll {
            client: super::BucketClient::new(super::clients::s3(self.base, self.record)),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            // Every region folder the trail holds (or those of `aws.trail_regions`), whatever
            // `aws.regions` says: launches in a region nobody uses are what the trail must show.
            allow: regions.to_vec(),
            shard: self.settings.shard,
            folders,
            since: from,
            concurrency,
            attempts: aws.retry.max_attempts,
            max_object_bytes: self.settings.read.max_object_bytes,
        });
        let (tx, rx) = tokio::sync::mpsc::channel(concurrency.max(1));
        *self.stream.rest.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        let outcome = Arc::new(std::sync::Mutex::new(sources::TrailOutcome::default()));
        self.runtime
            .spawn(sources::cloudtrail_s3(poll, tx, outcome.clone()));
        self.trail = Some(TrailRun {
            trail: trail.to_string(),
            bucket: bucket.to_string(),
            overlap,
            from,
            started: Instant::now(),
            outcome,
        });
        Ok(())
    }

    /// Logs what the trail's poll did, once every object it fetched has been decoded.
    fn trail_decoded(&mut self, run: &CorrelateRun) {
        let Some(t) = &self.trail else {
            return;
        };
        let out = t.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let names = format!("s3://{}/", t.bucket);
        let stats: Vec<&crate::sources::file::FileStats> = run
            .inputs
            .iter()
            .filter(|(n, _)| n.to_str().is_some_and(|n| n.starts_with(&names)))
            .map(|(_, st)| st)
            .collect();
        let records: u64 = stats.iter().map(|st| st.signals).sum();
        if let Some(c) = stats.iter().filter_map(|st| st.newest).max() {
            self.cursors.insert("aws/cloudtrail_s3".into(), c);
        }
        let folders: Vec<String> = out
            .folders
            .keys()
            .filter_map(|f| crate::sources::trail::account_region(f))
            .map(|(a, r)| format!("{a}/{r}"))
            .collect();
        if let Some(e) = &out.error {
            tracing::error!(trail = %t.trail, error = %e, "the trail's folders could not be listed: nothing of the trail was read (the next run tries again)");
        } else {
            tracing::info!(
                trail = %t.trail,
                folders = folders.len(),
                regions = %trail_regions_text(&folders),
                other_shards_accounts = out.other_shards,
                "trail folders listed"
            );
        }
        for (folder, f) in &out.folders {
            if let Some(e) = &f.listing_error {
                tracing::error!(folder = %folder, error = %e, "a trail folder could not be listed: its cursor stays, the next run lists it again");
            }
        }
        let millis = t.started.elapsed().as_millis();
        tracing::info!(
            source = "cloudtrail_s3",
            region = %t.trail,
            calls = out.calls,
            objects = out.folders.values().map(|f| f.read.len()).sum::<usize>(),
            records,
            millis = millis as u64,
            "source read"
        );
        self.lines.push(SourceLine {
            source: "cloudtrail_s3".into(),
            region: t.trail.clone(),
            calls: out.calls,
            records,
            late: 0,
            since: format_rfc3339(t.from),
            millis,
        });
    }
}

impl AwsSources<'_> {
    /// Starts receiving the queue's messages and reading what they announce, on the runtime,
    /// and keeping the messages hidden while the run works.
    fn start_queue(&mut self, source: &crate::sources::QueueConfig) {
        let crate::sources::QueueConfig {
            queue,
            trail,
            regions,
            concurrency,
            max_messages,
            visibility,
            wait,
        } = source;
        let aws = &self.settings.aws;
        // The queue's URL names its region; the SDK's is used when it does not (a local
        // endpoint).
        let conf = match crate::sources::queue::queue_region(queue) {
            Some(r) if Some(r) != self.base.region().map(|x| x.as_ref()) => self
                .runtime
                .block_on(super::sdk_config(Some(r), &aws.retry)),
            _ => self.base.clone(),
        };
        let poll = Arc::new(super::queue::QueuePoll {
            sqs: super::clients::sqs(&conf, self.record),
            s3: super::BucketClient::new(super::clients::s3(self.base, self.record)),
            url: queue.clone(),
            trail: trail.clone(),
            regions: regions.clone(),
            concurrency: *concurrency,
            max_messages: *max_messages,
            visibility: (visibility / 1000).clamp(1, 43_200) as i32,
            wait: (wait / 1000).clamp(0, 20) as i32,
            attempts: aws.retry.max_attempts,
            max_object_bytes: self.settings.read.max_object_bytes,
        });
        let (tx, rx) = tokio::sync::mpsc::channel((*concurrency).max(1));
        *self.stream.rest.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        let outcome = Arc::new(std::sync::Mutex::new(super::queue::QueueOutcome::default()));
        let stop = Arc::new(tokio::sync::Notify::new());
        self.runtime
            .spawn(super::queue::receive(poll.clone(), tx, outcome.clone()));
        let hidden = self.runtime.spawn(super::queue::keep_hidden(
            poll.clone(),
            outcome.clone(),
            stop.clone(),
        ));
        self.queue = Some(QueueRun {
            poll,
            outcome,
            stop,
            hidden,
            started: Instant::now(),
        });
    }

    /// Logs what the queue's reading did, once everything it handed on has been decoded.
    fn queue_decoded(&mut self, run: &CorrelateRun) {
        let Some(q) = &self.queue else {
            return;
        };
        let out = super::queue::lock(&q.outcome);
        let names = out.read_names();
        let stats: Vec<&crate::sources::file::FileStats> = run
            .inputs
            .iter()
            .filter(|(n, _)| n.to_str().is_some_and(|n| names.contains(n)))
            .map(|(_, st)| st)
            .collect();
        let records: u64 = stats.iter().map(|st| st.signals).sum();
        if let Some(c) = stats.iter().filter_map(|st| st.newest).max() {
            self.cursors.insert("aws/sqs".into(), c);
        }
        if let Some(e) = &out.receive_error {
            tracing::error!(queue = %q.poll.url, error = %e, "the queue could not be read (further): its messages wait for the next run");
        }
        let millis = q.started.elapsed().as_millis();
        tracing::info!(
            source = "sqs",
            queue = %q.poll.url,
            calls = out.calls,
            messages = out.messages.len(),
            records,
            millis = millis as u64,
            "source read"
        );
        self.lines.push(SourceLine {
            source: "sqs".into(),
            region: q.poll.url.clone(),
            calls: out.calls,
            records,
            late: 0,
            since: String::new(),
            millis,
        });
    }

    /// The end of the queue's part of the run: the renewals stop; with the state saved, the
    /// messages read whole are deleted; every other message is made visible again for the
    /// next run.
    fn finish_queue(&mut self, saved: bool) {
        use super::queue::{Fate, held_receipts};
        let Some(q) = self.queue.take() else {
            return;
        };
        q.stop.notify_one();
        let _ = self.runtime.block_on(q.hidden);
        let mut line = QueueLine::default();
        let (deleted, delete_failed) = if saved {
            let done = held_receipts(&q.outcome, super::queue::Held::done);
            let (calls, deleted, failed) =
                self.runtime.block_on(super::queue::delete(&q.poll, &done));
            super::queue::lock(&q.outcome).calls += calls;
            (deleted, failed)
        } else {
            (Vec::new(), Vec::new())
        };
        {
            let deleted: std::collections::HashSet<&str> =
                deleted.iter().map(String::as_str).collect();
            let mut out = super::queue::lock(&q.outcome);
            for m in &mut out.messages {
                m.deleted = deleted.contains(m.id.as_str());
            }
        }
        let back = held_receipts(&q.outcome, |_| true);
        let (calls, release_failed) = self
            .runtime
            .block_on(super::queue::change_visibility(&q.poll, &back, 0));
        let mut out = super::queue::lock(&q.outcome);
        out.calls += calls;
        let url = &q.poll.url;
        for (id, reason) in &delete_failed {
            tracing::warn!(queue = %url, message = %id, %reason, "a message read whole could not be deleted: a later run reads it again (its records merge by eventID)");
        }
        for (id, reason) in &release_failed {
            tracing::debug!(queue = %url, message = %id, %reason, "a message could not be made visible again: it comes back after its visibility timeout");
        }
        line.messages = out.messages.len();
        line.calls = out.calls;
        line.delete_errors = delete_failed.len();
        line.receive_error = out.receive_error.is_some();
        let mut skipped_example = None;
        // An object announced again is counted, and reported, with its first announcement.
        let again: std::collections::HashSet<(usize, usize)> = out
            .announced
            .values()
            .flat_map(|seen| seen.iter().skip(1).copied())
            .collect();
        line.repeated = again.len();
        for (i, m) in out.messages.iter().enumerate() {
            line.deleted += usize::from(m.deleted);
            line.kept += usize::from(!m.deleted);
            line.events += usize::from(m.event.is_some());
            line.skipped += m.skipped.len();
            if skipped_example.is_none() {
                skipped_example = m.skipped.first();
            }
            if let Some(why) = &m.nothing {
                tracing::debug!(queue = %url, message = %m.id, reason = %why, "a message announces nothing to read");
            }
            if let Some(reason) = &m.unreadable {
                line.unreadable += 1;
                tracing::error!(queue = %url, message = %m.id, receives = m.receives, %reason, "a message cannot be read: it stays in the queue (its redrive policy moves it to the dead-letter queue in the end)");
            }
            for (j, (name, fate)) in m.objects.iter().enumerate() {
                if again.contains(&(i, j)) {
                    continue;
                }
                match fate {
                    Fate::Read => line.objects += 1,
                    Fate::Failed(reason) => {
                        line.failed += 1;
                        tracing::error!(object = %name, message = %m.id, receives = m.receives, %reason, "a trail object could not be read: its message stays in the queue, tried again by the next run");
                    }
                    Fate::Gone(reason) => {
                        line.gone += 1;
                        tracing::error!(object = %name, message = %m.id, %reason, "a trail object announced by the queue no longer exists: its records are lost");
                    }
                    Fate::Fetching => {
                        line.failed += 1;
                        tracing::error!(object = %name, message = %m.id, "a trail object's fetch did not finish: its message stays in the queue");
                    }
                }
            }
        }
        if let Some((name, why)) = skipped_example {
            tracing::info!(queue = %url, objects = line.skipped, example = %name, reason = %why, "objects announced that are not the trail's log objects were passed over");
        }
        if !saved && line.messages > 0 {
            tracing::info!(queue = %url, messages = line.messages, "the state was not saved: no message is deleted, every one goes back to the queue");
        }
        self.queue_line = Some(line);
    }
}

impl run_loop::Source for AwsSources<'_> {
    fn read(&mut self, prior: Option<&crate::state::State>) -> anyhow::Result<()> {
        let none = crate::state::State::default();
        let prior = prior.unwrap_or(&none);
        let settings = self.settings;
        let aws = &settings.aws;
        // The trail first: its listings and fetches run while the APIs are polled.
        for source in &aws.sources {
            if let SourceConfig::CloudTrailS3 {
                trail,
                regions,
                concurrency,
                overlap,
            } = source
            {
                self.start_trail(trail, regions, *concurrency, *overlap, prior)?;
            }
            if let SourceConfig::Sqs(queue) = source {
                self.start_queue(queue);
            }
        }
        let mut bodies = Vec::new();
        for region in self.regions {
            let conf = match region {
                Some(r) if Some(r.as_str()) != self.base.region().map(|x| x.as_ref()) => self
                    .runtime
                    .block_on(super::sdk_config(Some(r), &aws.retry)),
                _ => self.base.clone(),
            };
            let region_name = region
                .clone()
                .unwrap_or_else(|| self.sdk_region.to_string());
            for source in aws.sources.iter().filter(|s| s.per_region()) {
                let name = source.name();
                let from = prior
                    .checkpoints
                    .get(&key(name, &region_name))
                    .and_then(|c| c.cursor)
                    .map_or(self.now.saturating_sub(aws.lookback), |c| {
                        c.saturating_sub(aws.overlap)
                    });
                let started = Instant::now();
                let p = self
                    .runtime
                    .block_on(self.poll(source, &conf, &region_name, from))?;
                let millis = started.elapsed().as_millis();
                self.reads.push(SourceRead {
                    source: name,
                    region: region_name.clone(),
                    checkpoint: key(name, &region_name),
                    from,
                    calls: p.calls,
                    millis,
                    bodies: p.bodies.iter().map(|(n, _)| n.clone()).collect(),
                    events: p.events,
                });
                bodies.extend(p.bodies);
            }
        }
        self.stream
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(bodies);
        Ok(())
    }

    fn input(&self) -> Input<'_> {
        Input::Stream(&self.stream)
    }

    /// What each source read, and where it resumes, from the one decoding of its responses
    /// (one input each, named as read).
    fn decoded(&mut self, run: &CorrelateRun, prior: Option<&crate::state::State>) {
        let aws = &self.settings.aws;
        let delay = aws.sources.iter().find_map(|s| match s {
            SourceConfig::CloudTrailLookup { delivery_delay, .. } => Some(*delivery_delay),
            _ => None,
        });
        let by_name: std::collections::HashMap<&std::path::Path, &crate::sources::file::FileStats> =
            run.inputs.iter().map(|(n, st)| (&**n, st)).collect();
        for r in &self.reads {
            let stats: Vec<(&String, &crate::sources::file::FileStats)> = r
                .bodies
                .iter()
                .filter_map(|n| Some((n, *by_name.get(std::path::Path::new(n.as_str()))?)))
                .collect();
            let records: u64 = stats.iter().map(|(_, st)| st.signals).sum();
            let mut late = 0;
            if let (Some(delay), "cloudtrail") = (delay, r.source) {
                let p = lookup_progress(
                    &r.events,
                    prior.and_then(|p| p.checkpoints.get(&r.checkpoint)),
                    self.now,
                    delay,
                    aws.overlap,
                );
                late = p.late.len() as u64;
                if let Some((id, t)) = p.late.first() {
                    tracing::warn!(
                        region = %r.region,
                        events = late,
                        oldest = %format_rfc3339(*t),
                        example = %id,
                        delay = %crate::time::format_duration(delay),
                        "CloudTrail events arrived later than the delivery delay (read now; \
                         later than the delay plus the overlap would be missed: raise \
                         aws.cloudtrail_delivery_delay)"
                    );
                }
                self.cursors.insert(r.checkpoint.clone(), p.cursor);
                self.recent.insert(r.checkpoint.clone(), p.recent);
            } else if let Some(c) = stats.iter().filter_map(|(_, st)| st.newest).max() {
                self.cursors.insert(r.checkpoint.clone(), c);
            }
            tracing::info!(
                source = r.source,
                region = %r.region,
                calls = r.calls,
                records,
                late,
                since = %format_rfc3339(r.from),
                millis = r.millis as u64,
                "source read"
            );
            self.lines.push(SourceLine {
                source: r.source.to_string(),
                region: r.region.clone(),
                calls: r.calls,
                records,
                late,
                since: format_rfc3339(r.from),
                millis: r.millis,
            });
        }
        self.trail_decoded(run);
        self.queue_decoded(run);
    }

    fn checkpoint(&mut self, next: &mut crate::state::State) {
        for (k, c) in std::mem::take(&mut self.cursors) {
            let cp = next.checkpoints.entry(k).or_default();
            cp.cursor = cp.cursor.max(Some(c));
        }
        for (k, ids) in std::mem::take(&mut self.recent) {
            next.checkpoints.entry(k).or_default().recent_events = ids;
        }
        if let Some(t) = self.trail.take() {
            let out = t.outcome.lock().unwrap_or_else(|e| e.into_inner());
            let line = advance_trail(next, &out, t.overlap, self.now);
            self.trail_line = Some(line);
        }
    }

    fn finish(&mut self, saved: bool) {
        self.finish_queue(saved);
    }
}

/// AWS mode's sink: the findings' reports in S3 (`aws.reports`), the `--asff` copy, then the
/// sink of `aws.sink` ([`SinkConfig`]). The findings are written by the caller's account and
/// partition (STS).
struct AwsSink<'a> {
    settings: &'a Settings,
    rules: &'a Arc<RuleSet>,
    asff: Option<&'a std::path::Path>,
    runtime: &'a tokio::runtime::Runtime,
    base: &'a aws_config::SdkConfig,
    record: &'a super::RecordCalls,
    /// The region findings are written for.
    region: String,
    /// The caller's partition, once asked.
    partition: String,
    line: FindingsLine,
}

impl AwsSink<'_> {
    /// The sink `aws.sink` names, built.
    fn build(&self) -> Box<dyn Deliver> {
        let aws = &self.settings.aws;
        match &aws.sink {
            SinkConfig::SecurityHub {
                calls_per_second, ..
            } => {
                let conf = self
                    .runtime
                    .block_on(super::sdk_config(Some(&self.region), &aws.retry));
                Box::new(sink::SecurityHubSink {
                    client: super::clients::securityhub(&conf, self.record),
                    rate: RateLimit::new(*calls_per_second),
                    resend_attempts: aws.retry.max_attempts,
                    resend_backoff: aws.retry.initial_backoff,
                    runtime: self.runtime.handle().clone(),
                })
            }
            local => match local.build_local() {
                Some(d) => d,
                None => unreachable!("every sink but Security Hub is local"),
            },
        }
    }
}

impl run_loop::Sink for AwsSink<'_> {
    fn graph_detail(&self) -> Detail {
        // Reports draw each sequence's neighbourhood and signals.
        if self.settings.aws.reports.is_some() {
            Detail::Signals
        } else {
            Detail::Matching
        }
    }

    fn reads_graph(&self) -> bool {
        // Reports draw each sequence's neighbourhood.
        self.settings.aws.reports.is_some()
    }

    fn writer(&mut self, _run: &CorrelateRun) -> anyhow::Result<Writer> {
        // The caller writes the findings: its account and partition (`arn:aws-cn:…` in
        // China) name the product. Without them no finding can be imported, so a failure
        // stops the run.
        let (account, partition) =
            caller(self.runtime, &super::clients::sts(self.base, self.record))?;
        if let Some(configured) = &self.settings.aws.partition
            && configured != &partition
        {
            anyhow::bail!(
                "the credentials are of partition {partition:?} (STS), but the configuration's regions or aws.partition say {configured:?}"
            );
        }
        self.partition = partition.clone();
        Ok(Writer {
            account: Some(account),
            region: Some(self.region.clone()),
            partition: Some(partition),
        })
    }

    fn write(
        &mut self,
        findings: &mut Vec<crate::state::KeptFinding>,
        run: &CorrelateRun,
        dry_run: bool,
    ) -> anyhow::Result<Vec<String>> {
        let aws = &self.settings.aws;
        // Reports first: the findings link them.
        if let Some(reports) = &aws.reports
            && !dry_run
        {
            let started = Instant::now();
            let n = self.runtime.block_on(write_reports(
                &super::BucketClient::new(super::clients::s3(self.base, self.record)),
                reports,
                &self.region,
                &self.partition,
                run,
                self.rules,
                findings,
            ))?;
            tracing::info!(
                reports = n,
                millis = started.elapsed().as_millis() as u64,
                "reports written"
            );
        }
        if let Some(path) = self.asff {
            if path.as_os_str() == "-" {
                crate::sinks::write_document(std::io::stdout().lock(), findings)
                    .context("writing to stdout")?;
            } else {
                std::fs::File::create(path)
                    .and_then(|file| crate::sinks::write_document(file, findings))
                    .with_context(|| format!("writing `{}`", path.display()))?;
            }
        }
        let started = Instant::now();
        let name = aws.sink.name();
        self.line.sink = if dry_run {
            format!("{name} (dry run: nothing sent)")
        } else {
            name.to_string()
        };
        let mut not_written = Vec::new();
        if !dry_run {
            let delivered = self.build().deliver(findings)?;
            self.line.calls = delivered.calls;
            self.line.imported = delivered.imported;
            not_written.extend(delivered.failed.iter().map(|(id, _, _)| id.clone()));
            self.line.failed = delivered.failed;
        }
        self.line.millis = started.elapsed().as_millis();
        Ok(not_written)
    }
}

/// The caller's account and partition (STS `GetCallerIdentity`).
///
/// # Errors
/// The call failed (after retries), or its answer has no account or ARN.
fn caller(
    runtime: &tokio::runtime::Runtime,
    sts: &aws_sdk_sts::Client,
) -> anyhow::Result<(String, String)> {
    let out = runtime
        .block_on(sts.get_caller_identity().send())
        .map_err(|e| {
            anyhow::anyhow!(
                "STS GetCallerIdentity (the account and partition that write the findings): {}",
                super::describe_error(&e)
            )
        })?;
    let account = out
        .account()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| anyhow::anyhow!("STS GetCallerIdentity answered no account"))?;
    let partition = out
        .arn()
        .and_then(crate::regions::partition_of_arn)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "STS GetCallerIdentity answered no ARN with a partition ({:?})",
                out.arn()
            )
        })?;
    Ok((account.to_string(), partition.to_string()))
}

/// The S3 console's address in a partition, where one is known.
fn s3_console(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("https://s3.console.aws.amazon.com/s3/object/"),
        "aws-cn" => Some("https://console.amazonaws.cn/s3/object/"),
        "aws-us-gov" => Some("https://console.amazonaws-us-gov.com/s3/object/"),
        _ => None,
    }
}

/// The S3 key folder of a finding's report: its `Id` with every character a key or a console
/// URL would need to escape replaced.
fn report_folder(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes the HTML report and the JSON graph of each finding's sequence under `location`
/// (`s3://bucket/prefix/`) and links them from the finding: `SourceUrl` is the object's S3
/// console page, `ProductFields` has the `s3://` locations. Returns the reports written.
async fn write_reports(
    s3: &super::BucketClient,
    location: &str,
    region: &str,
    partition: &str,
    run: &crate::pipeline::CorrelateRun,
    rules: &RuleSet,
    findings: &mut [crate::state::KeptFinding],
) -> anyhow::Result<usize> {
    let (bucket, prefix) = location
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(|| anyhow::anyhow!("aws.reports: not an s3:// location"))?;
    let mut written = 0;
    for kept in findings.iter_mut() {
        let Some(id) = kept.id() else {
            continue;
        };
        let Some(seq) = run
            .sequences
            .iter()
            .find(|s| crate::sinks::asff::finding_id(s) == id)
        else {
            continue;
        };
        let folder = format!("{prefix}{}/", report_folder(&id));
        let page = crate::report::Report {
            graph: &run.graph,
            rules,
            sequences: vec![seq],
        };
        let mut html = Vec::new();
        crate::report::write_html(&page, &mut html)?;
        let mut graph = Vec::new();
        crate::graph::export::write_model(
            &crate::report::neighbourhood(&run.graph, seq),
            crate::graph::export::Format::Json,
            &mut graph,
        )?;
        for (name, body, kind) in [
            ("report.html", html, "text/html; charset=utf-8"),
            ("graph.json", graph, "application/json"),
        ] {
            let key = format!("{folder}{name}");
            let body = aws_smithy_types::body::SdkBody::from(body);
            let asked = s3.get(bucket);
            let put = |c: &aws_sdk_s3::Client, body| {
                c.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .content_type(kind)
                    .body(aws_sdk_s3::primitives::ByteStream::new(body))
                    .send()
            };
            let first = body.try_clone().expect("a body held in memory clones");
            let mut sent = put(&asked, first).await;
            if let Err(e) = &sent
                && s3.moved(e, bucket, &asked)
            {
                sent = put(&s3.get(bucket), body).await;
            }
            sent.map_err(|e| {
                anyhow::anyhow!(
                    "writing the report s3://{bucket}/{folder}{name}: {}",
                    super::describe_error(&e)
                )
            })?;
        }
        let key = format!("{folder}report.html");
        let mut f = kept.value();
        // A partition with no known console (the isolated ones) gets the s3:// links only.
        if let Some(console) = s3_console(partition) {
            f["SourceUrl"] =
                serde_json::Value::from(format!("{console}{bucket}?region={region}&prefix={key}"));
        }
        if let Some(pf) = f["ProductFields"].as_object_mut() {
            pf.insert(
                "finding-correlator/report".into(),
                serde_json::Value::from(format!("s3://{bucket}/{key}")),
            );
            pf.insert(
                "finding-correlator/graph".into(),
                serde_json::Value::from(format!("s3://{bucket}/{folder}graph.json")),
            );
        }
        *kept = crate::state::KeptFinding::of(&f);
        written += 1;
    }
    Ok(written)
}

/// One source's poll, before its responses are decoded.
struct SourceRead {
    source: &'static str,
    region: String,
    checkpoint: String,
    from: Millis,
    calls: u64,
    millis: u128,
    /// Its responses' names among the run's inputs.
    bodies: Vec<String>,
    /// `LookupEvents`: each event's id and time.
    events: Vec<(String, Millis)>,
}

/// Where a `LookupEvents` poll at `now` resumes, and what it found late.
#[derive(Debug, PartialEq)]
struct LookupProgress {
    /// `now` minus the delivery delay: events older than this are taken to be visible.
    cursor: Millis,
    /// The ids to remember: those of the events in the overlap before the cursor.
    recent: std::collections::BTreeSet<String>,
    /// Events older than the previous cursor that the previous poll did not see.
    late: Vec<(String, Millis)>,
}

/// The cursor of a `LookupEvents` poll is its own start time minus the delivery delay, not
/// the newest event read: CloudTrail makes events visible minutes after they happen, in no
/// order, so an event older than the newest one read may still come. Each poll reads again
/// from the previous cursor minus the overlap; what it finds there that the previous poll
/// did not (`previous.recent_events`) came later than the delay.
fn lookup_progress(
    events: &[(String, Millis)],
    previous: Option<&crate::state::Checkpoint>,
    now: Millis,
    delay: Millis,
    overlap: Millis,
) -> LookupProgress {
    let cursor = now.saturating_sub(delay);
    let before = previous.and_then(|c| c.cursor);
    let mut late: Vec<(String, Millis)> = events
        .iter()
        .filter(|(id, t)| {
            before.is_some_and(|b| *t < b)
                && !previous.is_some_and(|c| c.recent_events.contains(id))
        })
        .cloned()
        .collect();
    late.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    late.dedup();
    let recent = events
        .iter()
        .filter(|(_, t)| *t < cursor && *t >= cursor.saturating_sub(overlap))
        .map(|(id, _)| id.clone())
        .collect();
    LookupProgress {
        cursor,
        recent,
        late,
    }
}

/// The distinct regions of `ACCOUNT/REGION` folders, comma-separated.
fn trail_regions_text(folders: &[String]) -> String {
    let mut regions: Vec<&str> = folders
        .iter()
        .filter_map(|f| f.split_once('/').map(|(_, r)| r))
        .collect();
    regions.sort_unstable();
    regions.dedup();
    regions.join(",")
}

/// Moves each trail folder's cursor of `next` past what the poll listed, and keeps what it
/// could not read pending (logged, with its key and reason, each run it stays). Returns the
/// trail's line of the summary.
fn advance_trail(
    next: &mut crate::state::State,
    out: &sources::TrailOutcome,
    overlap: Millis,
    now: Millis,
) -> TrailLine {
    use crate::sources::trail;
    let mut line = TrailLine {
        folders: out.folders.len(),
        other_shards: out.other_shards,
        trail_error: out.error.is_some(),
        ..TrailLine::default()
    };
    for (folder, f) in &out.folders {
        let cp = next
            .checkpoints
            .entry(trail::checkpoint_key(folder))
            .or_default();
        let (after, seen) = trail::advance(
            folder,
            cp.after.as_deref(),
            &cp.seen,
            &f.read,
            &f.listed,
            overlap,
        );
        cp.after = after;
        cp.seen = seen;
        line.objects += f.read.len();
        line.listing_errors += usize::from(f.listing_error.is_some());
        let mut pending: Vec<crate::state::PendingObject> = Vec::new();
        let before = |key: &str| cp.pending.iter().find(|p| p.key == key).cloned();
        // Listed, but neither read nor failed (its fetch never finished): pending too.
        let unfinished = f.listed.iter().filter(|k| {
            !f.read.contains(k)
                && !f.failed.iter().any(|(x, _)| x == *k)
                && !f.gone.iter().any(|(x, _)| x == *k)
        });
        let failed = f
            .failed
            .iter()
            .map(|(k, r)| (k, r.as_str()))
            .chain(unfinished.map(|k| (k, "its fetch did not finish")));
        for (key, reason) in failed {
            let mut p = before(key).unwrap_or(crate::state::PendingObject {
                key: key.clone(),
                since: now,
                ..Default::default()
            });
            p.attempts += 1;
            p.reason = reason.to_string();
            if p.attempts > 1 {
                tracing::error!(key = %p.key, reason = %p.reason, attempts = p.attempts, since = %format_rfc3339(p.since), "a trail object still cannot be read: it stays pending, tried again by the next run");
            } else {
                tracing::warn!(key = %p.key, reason = %p.reason, "a trail object could not be read: pending, tried again by the next run");
            }
            line.failed += 1;
            pending.push(p);
        }
        for (key, reason) in &f.gone {
            tracing::error!(key = %key, reason = %reason, "a pending trail object no longer exists: its records are lost");
            line.gone += 1;
        }
        // Pending ones this run did not go for (its listing failed first) stay as they were.
        for p in &cp.pending {
            if !f.listed.contains(&p.key) && !pending.iter().any(|q| q.key == p.key) {
                tracing::warn!(key = %p.key, reason = %p.reason, attempts = p.attempts, "a trail object is still pending");
                pending.push(p.clone());
            }
        }
        pending.sort_by(|a, b| a.key.cmp(&b.key));
        cp.pending = pending;
    }
    // Folders this run did not reach keep their pending objects: counted, and named.
    for (k, cp) in &next.checkpoints {
        if let Some(folder) = k.strip_prefix(trail::CHECKPOINT_PREFIX)
            && !out.folders.contains_key(folder)
        {
            for p in &cp.pending {
                tracing::warn!(key = %p.key, reason = %p.reason, attempts = p.attempts, "a trail object of a folder not listed this run is still pending");
            }
        }
    }
    line.pending = next
        .checkpoints
        .iter()
        .filter(|(k, _)| k.starts_with(trail::CHECKPOINT_PREFIX))
        .map(|(_, c)| c.pending.len())
        .sum();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_events_resume_from_the_poll_time_minus_the_delay_and_count_late_events() {
        const M: Millis = 60_000;
        let now = 1_000 * M;
        let ev = |id: &str, t: Millis| (id.to_string(), t);
        let previous = crate::state::Checkpoint {
            // The previous poll, 15 minutes ago, with a 15-minute delay.
            cursor: Some(now - 30 * M),
            recent_events: ["seen".to_string()].into(),
            ..Default::default()
        };
        let events = [
            ev("seen", now - 35 * M),
            ev("late", now - 32 * M),
            ev("in-time", now - 20 * M),
            ev("newest", now - M),
        ];
        let p = lookup_progress(&events, Some(&previous), now, 15 * M, 10 * M);
        assert_eq!(p.cursor, now - 15 * M, "the poll time minus the delay");
        assert_eq!(p.late, vec![ev("late", now - 32 * M)]);
        // The ids of the overlap before the new cursor, which the next poll reads again.
        assert_eq!(p.recent, ["in-time".to_string()].into());
        // A first poll: nothing is late.
        let first = lookup_progress(&events, None, now, 15 * M, 10 * M);
        assert!(first.late.is_empty());
        assert_eq!(first.cursor, now - 15 * M);
    }
}
