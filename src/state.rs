//! Persistent state between runs: one versioned JSON document, saved compressed (see
//! [`encoding`]), behind a small load/save trait.
//!
//! A scheduled task sees the world in slices. The state carries what the next slice needs to
//! continue exactly where this one stopped:
//!
//! - per-source **checkpoints** (newest event time read, records read, runs);
//! - the **horizon**: signals older than it are never matched again, and the selected
//!   **signals** at or after it, which the next run replays together with its new input so
//!   that open windows and sequences continue as if both runs were one;
//! - **graph** statements: what earlier records said about instances and sessions (their
//!   groups, who launched what), so later signals group the same way;
//! - the **sequences** already written as findings (id, status, fingerprint of the last
//!   version written), so a re-run writes nothing new and a continued sequence is updated
//!   under the same `Id`.
//!
//! Writes are atomic (temporary file in the same folder, fsync, rename, fsync of the folder).
//! A file that is not a state document, is damaged, or was written by a newer version is an
//! error, never silently replaced; an older version is migrated on load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::baseline::Baselines;
use crate::matcher::Carried;
use crate::signal::Signal;
use crate::time::Millis;

/// The `format` field of every state document.
pub const FORMAT: &str = "finding-correlator-state";

/// The version this build writes. Older versions are migrated on load.
///
/// - 1: checkpoints, horizon, signals, graph statements, sequences.
/// - 2: adds `baselines` (first-seen values and launch rates per account). A version 1 state
///   has none: its accounts start learning at their next launch.
/// - 3: adds the AWS mode's `lease` and the checkpoints' `cursor` (both absent before).
/// - 4: adds the lease's holder (`host`, `pid` and `pid_space`, or `ecs_cluster` and
///   `ecs_task`) and the
///   checkpoints' `recent_events` (all absent before): a build that reads only up to 3 says
///   the state is newer instead of calling it damaged.
/// - 5: adds `unsent`, the findings the sink did not take (absent before: none).
/// - 6: the trail source (`cloudtrail_s3`) keeps a cursor per account and region folder
///   (`after`, `seen`, `pending`) instead of the set of every object key read in about two
///   days (`objects`); a version 5 state's objects become those cursors (see [`migrate`]).
/// - 7: the same document, saved gzip-compressed with its format and version in the gzip
///   header, and read by streaming (see [`encoding`]). Versions up to 6 were plain JSON; they
///   load as before, and so does a version 7 document decompressed by hand.
/// - 8: a signal's instances that share facts (a launch's instances share their group,
///   template, profile, image, network, type and tags) are written as the facts they share
///   and each one's own ([`crate::signal::instance_list`]): a third of the text of a launch's
///   instances. The plain list of earlier versions is still read, so a version 7 document is
///   read as it is, by streaming.
/// - 9: adds `carried`, the matcher's windows and sequences at the horizon
///   ([`crate::matcher::Carried`]): the next run goes on from them and replays only the
///   signals from the horizon on. A version 7 or 8 document has none: its next run replays
///   its signals as before, and saves the picture.
/// - 10: the same document, saved zstd-compressed after a zstd skippable frame holding its
///   format and version, where versions 7 to 9 were gzip (see [`encoding`]): half the size,
///   and faster to write and read. Versions 7 to 9 are read as they are.
pub const VERSION: u32 = 10;

pub mod encoding;

/// The state document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub version: u32,
    /// The tool version that wrote it.
    pub written_by: String,
    /// Per source (`cloudtrail`, `guardduty`, `securityhub`): what has been read.
    #[serde(default)]
    pub checkpoints: BTreeMap<String, Checkpoint>,
    /// The newest event time of any signal matched so far.
    #[serde(default, with = "opt_time")]
    pub newest: Option<Millis>,
    /// Signals older than this are not matched again (they are before every window, sequence
    /// and allowed lag that is still open).
    #[serde(default, with = "opt_time")]
    pub horizon: Option<Millis>,
    /// Selected signals at or after the horizon, replayed by the next run (shared with the
    /// run that replays them and the state it leaves: one copy in memory, not three).
    #[serde(default)]
    pub signals: Vec<Arc<Signal>>,
    /// What earlier records told the entity graph, one copy per distinct statement (shared
    /// with the run that reads them and the state it leaves, as the signals are).
    #[serde(default)]
    pub graph: Vec<Arc<Signal>>,
    /// Sequences written as findings that a later run may still continue, or closed recently.
    #[serde(default)]
    pub sequences: Vec<SequenceRecord>,
    /// What the baselines learned from launches before the horizon (later ones are learned
    /// again when the next run replays them).
    pub baselines: Baselines,
    /// The matcher's windows and sequences at the horizon: the next run goes on from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Carried>,
    /// The run that holds the state (AWS mode), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Findings the sink did not take (Security Hub refused them), as they were to be written:
    /// the next run sends them again, also when their sequence is behind its horizon by then
    /// and no run will match it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent: Vec<KeptFinding>,
}

/// A run's claim on the state: another run that finds an unexpired lease stops before
/// reading anything, unless the holder is known to be gone (see `aws::lease`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// Who runs (host and process, or the ECS task), for people.
    pub holder: String,
    /// Wall-clock times.
    #[serde(with = "time_text")]
    pub since: Millis,
    #[serde(with = "time_text")]
    pub expires: Millis,
    /// The holder's host and process id (not on ECS): a run on the same host takes the
    /// lease over when that process no longer exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Where that process id means something: the host's boot and the process's pid
    /// namespace (containers sharing a host name may not share process ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
    /// The holder's ECS cluster and task ARN: a run takes the lease over when that task is
    /// STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_task: Option<String>,
}

/// What has been read of one source.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Newest event time read from this source.
    #[serde(default, with = "opt_time")]
    pub newest: Option<Millis>,
    /// Records of this source read over all runs.
    pub records: u64,
    /// Where polling resumes (AWS mode): the newest `updatedAt` of findings read, or the
    /// newest event time of CloudTrail events read.
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Millis>,
    /// Trail folder (`aws/cloudtrail_s3/<folder>`): the next listing starts after this key,
    /// the newest key read moved back by `aws.trail_overlap`, so that an object delivered
    /// late with a key behind the newest one read is still listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Trail folder: the keys after `after` already read (those of the overlap), so that the
    /// next listing reads only the others.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub seen: std::collections::BTreeSet<String>,
    /// Trail folder: objects that could not be read (after the SDK's retries) or were
    /// damaged; each run tries them again, logs them while they fail, and counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingObject>,
    /// CloudTrail `LookupEvents`: the `eventID`s read with an event time in the overlap just
    /// before the cursor. The next poll reads that overlap again; an event it finds there that
    /// is not among these arrived later than the delivery delay.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub recent_events: std::collections::BTreeSet<String>,
}

/// A trail object a run could not read: tried again by every run until it is read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PendingObject {
    pub key: String,
    /// Why the last attempt failed.
    pub reason: String,
    /// Runs that tried it.
    pub attempts: u32,
    /// When it first failed (wall clock).
    #[serde(with = "time_text")]
    pub since: Millis,
}

/// Whether a sequence can still grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceStatus {
    /// Its window is still open: a later signal extends it (same finding `Id`).
    Open,
    /// Its window passed with no new signal: its finding stays ACTIVE and is not updated
    /// again; a later signal for the group opens a new sequence.
    Closed,
}

/// A sequence written as a finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SequenceRecord {
    /// The finding `Id`.
    pub id: String,
    pub rule: String,
    pub group: String,
    #[serde(with = "time_text")]
    pub start: Millis,
    #[serde(with = "time_text")]
    pub last_seen: Millis,
    pub status: SequenceStatus,
    /// When the window closes if nothing new arrives (open sequences).
    #[serde(with = "time_text")]
    pub closes_at: Millis,
    /// Signals the sequence matched.
    pub signals: usize,
    /// Hash of the last version written; a run writes the finding again only when it changes.
    pub fingerprint: String,
    /// `UpdatedAt` of the last version written (it only moves forward).
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
    /// The last version written, kept while the sequence's signals are replayed (open or
    /// closed) so that a run that finds they now belong to another sequence can archive it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<KeptFinding>,
    /// `CreatedAt` of the finding (absent in states written before it was kept: `start`).
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub created: Option<Millis>,
    /// The references of its signals (finding ARNs, `eventID`s), sorted: a later run tells by
    /// them whether a sequence continues this one or its signals were regrouped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
}

/// A finding as written, kept as its JSON text from the moment it is made: a run's findings
/// go to the sink as text, and a state's are read again only when the finding is archived
/// (rarely), so findings cost their text in memory, not a tree of maps each (some 125 kB for
/// a finding of 37 kB of text), and are loaded and saved without being parsed or rebuilt. In
/// the document it is the finding itself (the same JSON as a parsed value would write).
/// Shared: the findings a run writes are the texts its state keeps, not copies.
#[derive(Clone, Debug)]
pub struct KeptFinding(Arc<serde_json::value::RawValue>);

impl Serialize for KeptFinding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeptFinding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeptFinding, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(|text| KeptFinding(Arc::from(text)))
    }
}

impl KeptFinding {
    /// The finding's text, as it is written.
    pub fn of(finding: &serde_json::Value) -> KeptFinding {
        KeptFinding(Arc::from(
            serde_json::value::to_raw_value(finding)
                .expect("a JSON value always writes as JSON text"),
        ))
    }

    /// The finding's JSON text (compact, as `serde_json::to_string` writes it).
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The finding, parsed (its text was JSON when it was kept or loaded).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).expect("kept finding text is JSON")
    }

    /// Its `Id` (None when it has no text `Id`), read without building the rest.
    pub fn id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct IdOnly {
            #[serde(rename = "Id")]
            id: Option<String>,
        }
        serde_json::from_str::<IdOnly>(self.0.get())
            .ok()
            .and_then(|f| f.id)
    }
}

impl PartialEq for KeptFinding {
    fn eq(&self, other: &KeptFinding) -> bool {
        self.0.get() == other.0.get()
    }
}

impl State {
    /// An empty state of this version.
    pub fn new() -> State {
        State {
            format: FORMAT.to_string(),
            version: VERSION,
            written_by: concat!("finding-correlator ", env!("CARGO_PKG_VERSION")).to_string(),
            checkpoints: BTreeMap::new(),
            newest: None,
            horizon: None,
            signals: Vec::new(),
            graph: Vec::new(),
            sequences: Vec::new(),
            baselines: Baselines::default(),
            carried: None,
            lease: None,
            unsent: Vec::new(),
        }
    }

    /// The state, if its parts hold together (what parsing cannot check).
    pub(crate) fn checked(self, origin: &str) -> Result<State, StateError> {
        if let Some(c) = &self.carried {
            c.check().map_err(|message| StateError::Corrupt {
                origin: origin.to_string(),
                message,
            })?;
        }
        Ok(self)
    }

    /// Parses a state document, migrating older versions.
    ///
    /// # Errors
    /// [`StateError::NotState`], [`StateError::Newer`] or [`StateError::Corrupt`].
    pub fn from_json(text: &str, origin: &str) -> Result<State, StateError> {
        let corrupt = |e: serde_json::Error| StateError::Corrupt {
            origin: origin.to_string(),
            message: e.to_string(),
        };
        let doc: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
        if doc.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(StateError::NotState {
                origin: origin.to_string(),
            });
        }
        let version = doc.get("version").and_then(serde_json::Value::as_u64);
        let version = match version {
            Some(v) if v > u64::from(VERSION) => {
                return Err(StateError::Newer {
                    origin: origin.to_string(),
                    found: v,
                });
            }
            Some(v) if v >= 1 => v as u32,
            _ => {
                return Err(StateError::Corrupt {
                    origin: origin.to_string(),
                    message: "`version` is missing or not a positive whole number".into(),
                });
            }
        };
        let doc = migrate(doc, version);
        serde_json::from_value::<State>(doc)
            .map_err(corrupt)?
            .checked(origin)
    }

    /// Forgets that the findings of `given` with these ids were written (the sink did not
    /// take them), and keeps them as they were to be written in [`State::unsent`]: the next run
    /// writes them again, whether or not it matches their sequences again.
    pub fn forget_written(&mut self, ids: &[String], given: &[KeptFinding]) {
        self.unsent.clear();
        if ids.is_empty() {
            return;
        }
        self.unsent = given
            .iter()
            .filter(|f| f.id().is_some_and(|id| ids.contains(&id)))
            .cloned()
            .collect();
        self.sequences.retain(|r| !ids.contains(&r.id));
    }

    /// The findings an earlier run could not write and this one has no newer version of
    /// (`write`: the findings this run writes).
    pub fn still_unsent(&self, write: &[KeptFinding]) -> Vec<KeptFinding> {
        if self.unsent.is_empty() {
            return Vec::new();
        }
        let written: std::collections::HashSet<Option<String>> =
            write.iter().map(KeptFinding::id).collect();
        self.unsent
            .iter()
            .filter(|f| !written.contains(&f.id()))
            .cloned()
            .collect()
    }

    /// The document as plain JSON (what [`State::encode`] compresses).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("state serializes");
        out.push(b'\n');
        out
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Brings a document of `from` up to [`VERSION`], one version at a time.
fn migrate(mut doc: serde_json::Value, from: u32) -> serde_json::Value {
    if from < 2 {
        // 1 → 2: baselines start empty.
        doc["baselines"] = serde_json::json!({ "accounts": {} });
        tracing::info!("state of version 1 migrated to 2: baselines start learning from this run");
    }
    if from < 6 {
        trail_objects_to_cursors(&mut doc);
    }
    doc["version"] = serde_json::Value::from(VERSION);
    doc
}

/// 5 → 6: the trail objects a state remembered (`checkpoints."aws/cloudtrail_s3".objects`,
/// every key read in about two days) become one cursor per account and region folder: its
/// listing starts after the folder's first day among them (the days the old listing still
/// covered), and its keys are `seen`, so the next run reads exactly what a version 5 run
/// would have read. That run moves each cursor forward and keeps only the overlap's keys.
fn trail_objects_to_cursors(doc: &mut serde_json::Value) {
    let Some(checkpoints) = doc.get_mut("checkpoints").and_then(|c| c.as_object_mut()) else {
        return;
    };
    let Some(objects) = checkpoints
        .get_mut("aws/cloudtrail_s3")
        .and_then(|c| c.as_object_mut())
        .and_then(|c| c.remove("objects"))
    else {
        return;
    };
    let mut folders: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut other = 0usize;
    for key in objects
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
    {
        match crate::sources::trail::folder_of(key) {
            Some(folder) => {
                folders
                    .entry(folder.to_string())
                    .or_default()
                    .insert(key.to_string());
            }
            None => other += 1,
        }
    }
    let n = folders.len();
    for (folder, keys) in folders {
        // The first day of the folder's keys: the old listing started at a day folder.
        let first = keys
            .iter()
            .next()
            .and_then(|k| crate::sources::trail::day_of(k));
        let after = first.map_or_else(|| folder.clone(), |d| format!("{folder}{d}/"));
        let seen: Vec<&String> = keys.iter().collect();
        checkpoints.insert(
            crate::sources::trail::checkpoint_key(&folder),
            serde_json::json!({ "records": 0, "after": after, "seen": seen }),
        );
    }
    tracing::info!(
        folders = n,
        keys_not_in_a_trail_folder = other,
        "state of version 5 migrated to 6: the trail objects read become a cursor per account and region folder"
    );
}

/// A state that cannot be used. The file is left as it is.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state `{origin}`: {source}")]
    Io {
        origin: String,
        source: std::io::Error,
    },
    #[error(
        "state `{origin}` is damaged ({message}); it was left as it is: restore a backup, or remove it to start over (earlier findings may then be written again under the same ids)"
    )]
    Corrupt { origin: String, message: String },
    #[error(
        "`{origin}` is not a finding-correlator state file (no header or \"format\" naming \"{FORMAT}\")"
    )]
    NotState { origin: String },
    #[error(
        "state `{origin}` is version {found}, written by a newer finding-correlator; this one reads versions 1 to {VERSION}"
    )]
    Newer { origin: String, found: u64 },
    #[error(
        "state `{origin}` is in use by another run (its lock `{lock}` is held); runs that share a state must not overlap"
    )]
    Busy { origin: String, lock: String },
    #[error(
        "state `{origin}` was written by another run since this one read it: this run stops and saves nothing (the other run's state stands)"
    )]
    Conflict { origin: String },
    #[error(
        "state `{origin}` is held by another run ({holder}, since {since}, until {expires}); this run stops before reading anything (if that run is gone, `correlator state release --holder '{holder}'` frees the state)"
    )]
    Leased {
        origin: String,
        holder: String,
        since: String,
        expires: String,
    },
}

/// Where state lives.
pub trait StateStore {
    /// The saved state, or None when there is none yet.
    ///
    /// # Errors
    /// A [`StateError`] when the state exists but cannot be used.
    fn load(&self) -> Result<Option<State>, StateError>;

    /// Replaces the saved state, atomically: after a crash either the old or the new state
    /// is there, whole.
    ///
    /// # Errors
    /// [`StateError::Io`]; the old state is then unchanged.
    fn save(&self, state: &State) -> Result<(), StateError>;

    /// For logs and errors.
    fn describe(&self) -> String;
}

/// `s3://bucket/key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl std::str::FromStr for S3Location {
    type Err = String;

    fn from_str(s: &str) -> Result<S3Location, String> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{s:?} is not an s3://bucket/key location"))?;
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') => {
                Ok(S3Location {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            _ => Err(format!(
                "{s:?} is not an s3://bucket/key location (a bucket and an object key are needed)"
            )),
        }
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A state file on a local disk.
#[derive(Clone, Debug)]
pub struct FileStore {
    pub path: PathBuf,
}

/// Held while a run uses a state: a second run on the same state fails instead of losing
/// one run's update. Released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    /// `<state>.lock` beside the state file.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the state's lock, or fails at once when another run holds it.
    ///
    /// # Errors
    /// [`StateError::Busy`] or [`StateError::Io`].
    pub fn lock(&self) -> Result<StateLock, StateError> {
        let lock = self.lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| self.io(e))?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Busy {
                origin: self.describe(),
                lock: lock.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(self.io(e)),
        }
    }

    /// Temporary files of saves that never finished (a run killed mid-save).
    fn stale_temporaries(&self, dir: &Path, name: &str) -> Vec<PathBuf> {
        let prefix = format!(".{name}.tmp-");
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            origin: self.describe(),
            source,
        }
    }
}

impl StateStore for FileStore {
    fn load(&self) -> Result<Option<State>, StateError> {
        let file = match crate::local_file::open_limited(&self.path, crate::local_file::STATE_MAX) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        State::decode(
            std::io::BufReader::with_capacity(1 << 16, file),
            &self.describe(),
        )
        .map(Some)
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let f = std::fs::File::create(&tmp)?;
            let f = state
                .encode_to(std::io::BufWriter::with_capacity(1 << 16, f))?
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            sync_dir(&dir)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })?;
        // Saves of runs killed before their rename left their temporary files behind; the
        // lock says no other run is saving now.
        for stale in self.stale_temporaries(&dir, &name) {
            tracing::info!(file = %stale.display(), "removing the temporary file of an interrupted save");
            let _ = std::fs::remove_file(stale);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Makes a rename durable: the folder's entry is flushed too (Unix; a no-op elsewhere).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Event times as RFC 3339 text, so a person can read the state.
pub mod time_text {
    use crate::time::{Millis, format_rfc3339, parse_timestamp};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}")))
    }
}

mod opt_time {
    use crate::time::{Millis, format_rfc3339, parse_timestamp};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            // Earlier builds wrote the earliest time there is for a source whose records were
            // read but none kept ("newest of nothing"); it means none.
            Some(s) if s == format_rfc3339(Millis::MIN) => Ok(None),
            Some(s) => parse_timestamp(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path().join("state.json"));
        (dir, s)
    }

    #[test]
    fn missing_is_none_and_round_trips() {
        let (_d, s) = store();
        assert!(s.load().unwrap().is_none());
        let mut st = State::new();
        st.newest = Some(1_746_177_600_123);
        st.horizon = Some(1_746_000_000_000);
        st.checkpoints.insert(
            "cloudtrail".into(),
            Checkpoint {
                newest: Some(1_746_177_600_123),
                records: 7,
                cursor: None,
                after: None,
                seen: Default::default(),
                pending: vec![PendingObject {
                    key: "AWSLogs/1/CloudTrail/us-east-1/2025/05/02/x.json.gz".into(),
                    reason: "GetObject: InternalError".into(),
                    attempts: 2,
                    since: 1_746_177_600_000,
                }],
                recent_events: Default::default(),
            },
        );
        st.sequences.push(SequenceRecord {
            id: "finding-correlator/r/1/us-east-1/g/2025-05-02T09:20:00.000Z".into(),
            rule: "r".into(),
            group: "g".into(),
            start: 1_746_177_600_000,
            last_seen: 1_746_177_600_123,
            status: SequenceStatus::Open,
            closes_at: 1_746_181_200_123,
            signals: 3,
            fingerprint: "abc".into(),
            updated_at: Some(1_746_177_600_123),
            finding: None,
            created: Some(1_746_177_000_000),
            refs: vec!["evt-1".into(), "evt-2".into()],
        });
        s.save(&st).unwrap();
        let back = s.load().unwrap().unwrap();
        assert_eq!(back.newest, st.newest);
        assert_eq!(back.horizon, st.horizon);
        assert_eq!(back.checkpoints, st.checkpoints);
        assert_eq!(back.sequences, st.sequences);
        let text = String::from_utf8(
            zstd::stream::decode_all(std::fs::File::open(&s.path).unwrap()).unwrap(),
        )
        .unwrap();
        assert!(text.contains("\"2025-05-02T09:20:00.123Z\""), "{text}");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(s.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn damaged_newer_and_foreign_files_are_errors_and_left_alone() {
        let (_d, s) = store();
        for (text, want) in [
            ("{\"format\":\"finding-correlator-state\",\"vers", "damaged"),
            ("", "damaged"),
            (
                "{\"format\":\"finding-correlator-state\",\"version\":99}",
                "version 99, written by a newer",
            ),
            ("{\"Records\":[]}", "not a finding-correlator state file"),
            (
                "{\"format\":\"finding-correlator-state\",\"version\":2,\"written_by\":\"x\",\"baselines\":{\"accounts\":{}},\"signals\":[{\"time\":\"soon\"}]}",
                "damaged",
            ),
            (
                "{\"format\":\"finding-correlator-state\",\"version\":2,\"written_by\":\"x\",\"baselines\":{\"accounts\":{}},\"extra\":1}",
                "unknown field `extra`",
            ),
            (
                "{\"format\":\"finding-correlator-state\",\"version\":2,\"written_by\":\"x\"}",
                "missing field `baselines`",
            ),
        ] {
            std::fs::write(&s.path, text).unwrap();
            let e = s.load().unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("state.json"), "{e}");
            assert_eq!(std::fs::read_to_string(&s.path).unwrap(), text);
        }
    }

    #[test]
    fn version_1_is_migrated() {
        // A state as version 1 wrote it: no baselines.
        let v1 = r#"{"format":"finding-correlator-state","version":1,"written_by":"finding-correlator 0.1.0","checkpoints":{"cloudtrail":{"newest":"2025-05-09T11:02:33.000Z","records":138}},"newest":"2025-05-09T11:40:12.000Z","horizon":"2025-05-07T10:02:18.000Z","signals":[],"graph":[],"sequences":[]}"#;
        let st = State::from_json(v1, "v1.json").unwrap();
        assert_eq!(st.version, VERSION);
        assert_eq!(st.baselines, Baselines::default());
        assert_eq!(st.checkpoints["cloudtrail"].records, 138);
        assert_eq!(
            st.horizon.map(crate::time::format_rfc3339).as_deref(),
            Some("2025-05-07T10:02:18.000Z")
        );
    }

    #[test]
    fn a_kept_finding_is_its_text_through_a_migration_and_a_save() {
        // A plain JSON state of version 6 (migrated on load) with a finding kept as written.
        let mut doc = serde_json::to_value(State::new()).unwrap();
        doc["version"] = 6.into();
        doc["sequences"] = serde_json::json!([{"id": "f-1", "rule": "r", "group": "g",
            "start": "2025-05-09T11:02:33.000Z", "last_seen": "2025-05-09T11:02:33.000Z",
            "status": "open", "closes_at": "2025-05-09T12:02:33.000Z", "signals": 1,
            "fingerprint": "x",
            "finding": {"Id": "f-1", "Title": "café ✓", "Resources": [{"Id": "i-1"}]}}]);
        let v6 = doc.to_string();
        let st = State::from_json(&v6, "v6.json").unwrap();
        let kept = st.sequences[0].finding.as_ref().expect("kept");
        let want =
            serde_json::json!({"Id": "f-1", "Title": "café ✓", "Resources": [{"Id": "i-1"}]});
        assert_eq!(kept.value(), want);
        // In the document the finding is the object itself, as a parsed value wrote it.
        let doc: serde_json::Value = serde_json::from_slice(&st.to_json()).unwrap();
        assert_eq!(doc["sequences"][0]["finding"], want);
        // Saved and loaded (the compressed current version): the same text and value.
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("s.state"));
        store.save(&st).unwrap();
        let back = store.load().unwrap().unwrap();
        let again = back.sequences[0].finding.as_ref().unwrap();
        assert_eq!(again, kept);
        assert_eq!(again.value(), want);
        assert_eq!(KeptFinding::of(&want).value(), want);
        // Its text is the bytes `Value::to_string` writes: the fingerprints of findings in
        // states saved before it was hashed are the hashes of those bytes, so a finding written
        // then is not taken for a changed one now.
        assert_eq!(kept.text(), want.to_string());
        let escapes =
            serde_json::json!({"Title": "a \"quoted\" <tag> é\u{1}\n", "N": [1.5, -0.0, 1e300]});
        assert_eq!(KeptFinding::of(&escapes).text(), escapes.to_string());
    }

    #[test]
    fn issue_15_version_5_trail_objects_become_a_cursor_per_folder() {
        // A version 5 state of a run that read an organization trail's objects of two days in
        // two folders, and one key outside any trail folder.
        let f1 = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/";
        let f2 = "AWSLogs/o-exampleorg1/444455556666/CloudTrail/eu-north-1/";
        let k1 = [
            format!("{f1}2025/05/01/111122223333_CloudTrail_us-east-1_20250501T2355Z_a.json.gz"),
            format!("{f1}2025/05/02/111122223333_CloudTrail_us-east-1_20250502T0005Z_b.json.gz"),
        ];
        let k2 =
            format!("{f2}2025/05/02/444455556666_CloudTrail_eu-north-1_20250502T0920Z_c.json.gz");
        let v5 = serde_json::json!({
            "format": FORMAT, "version": 5, "written_by": "finding-correlator 0.1.0",
            "baselines": {"accounts": {}},
            "checkpoints": {
                "aws/cloudtrail_s3": {
                    "newest": "2025-05-02T09:18:00.000Z", "records": 40,
                    "cursor": "2025-05-02T09:18:00.000Z",
                    "objects": [k1[0], k1[1], k2, "elsewhere/x.json"]
                },
                "aws/guardduty/us-east-1": {"records": 3, "cursor": "2025-05-02T09:00:00.000Z"}
            }
        });
        let st = State::from_json(&v5.to_string(), "v5.json").unwrap();
        assert_eq!(st.version, VERSION);
        let c1 = &st.checkpoints[&crate::sources::trail::checkpoint_key(f1)];
        assert_eq!(c1.after.as_deref(), Some(&*format!("{f1}2025/05/01/")));
        assert_eq!(c1.seen, k1.iter().cloned().collect());
        let c2 = &st.checkpoints[&crate::sources::trail::checkpoint_key(f2)];
        assert_eq!(c2.after.as_deref(), Some(&*format!("{f2}2025/05/02/")));
        assert_eq!(c2.seen, [k2.clone()].into());
        // Every old key is after its folder's cursor and seen: none is listed as new again.
        for k in k1.iter().chain([&k2]) {
            let c = &st.checkpoints[&crate::sources::trail::checkpoint_key(
                crate::sources::trail::folder_of(k).unwrap(),
            )];
            assert!(
                k.as_str() > c.after.as_deref().unwrap() && c.seen.contains(k),
                "{k}"
            );
        }
        let trail = &st.checkpoints["aws/cloudtrail_s3"];
        assert_eq!(trail.records, 40);
        assert!(trail.seen.is_empty() && trail.after.is_none());
        assert_eq!(st.checkpoints["aws/guardduty/us-east-1"].records, 3);
        // Saved as the current version, it loads again the same, without `objects`.
        let text = String::from_utf8(st.to_json()).unwrap();
        assert!(!text.contains("\"objects\""), "{text}");
        let back = State::from_json(&text, "v6.json").unwrap();
        assert_eq!(back.checkpoints, st.checkpoints);
        // A current document with the old field is damaged, not silently read.
        let bad = text.replace("\"records\":40", "\"records\":40,\"objects\":[]");
        let e = State::from_json(&bad, "bad.json").unwrap_err().to_string();
        assert!(e.contains("unknown field `objects`"), "{e}");
    }

    #[test]
    fn a_second_run_on_the_same_state_is_refused_while_the_first_holds_the_lock() {
        let (_d, s) = store();
        let held = s.lock().unwrap();
        let e = s.lock().unwrap_err().to_string();
        assert!(e.contains("in use by another run"), "{e}");
        assert!(e.contains("state.json.lock"), "{e}");
        drop(held);
        s.lock().expect("free again once released");
    }

    #[test]
    fn a_save_removes_temporaries_of_interrupted_saves() {
        let (d, s) = store();
        let stale = d.path().join(".state.json.tmp-999999");
        std::fs::write(&stale, "{\"partial").unwrap();
        s.save(&State::new()).unwrap();
        assert!(!stale.exists());
        assert!(s.load().unwrap().is_some());
    }

    #[test]
    fn a_failed_save_keeps_the_old_state() {
        let (d, s) = store();
        let mut st = State::new();
        st.newest = Some(1);
        s.save(&st).unwrap();
        let before = std::fs::read(&s.path).unwrap();
        // A store whose folder does not exist cannot write.
        let bad = FileStore::new(d.path().join("missing").join("state.json"));
        assert!(bad.save(&st).is_err());
        assert_eq!(std::fs::read(&s.path).unwrap(), before);
    }
}
