//! Local files and folders as a source: walk, decode in parallel, hand signals on in order of
//! arrival on the calling thread.
//!
//! Each worker thread decodes whole files (decoding is CPU-bound; with several files every
//! core is busy) and sends signals in batches over a bounded channel, so memory stays bounded
//! however large the input. Problems are reported with the file they came from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use crate::normalize::{self, DecodeOptions, Decoded, Problem, RecordKind, Severity};
use crate::signal::Signal;

/// One input file and whether it was named on the command line (rather than found in a
/// folder).
#[derive(Clone, Debug)]
pub struct InputFile {
    pub path: PathBuf,
    pub explicit: bool,
}

/// A problem with the file it belongs to.
#[derive(Clone, Debug)]
pub struct FileProblem {
    pub file: Arc<Path>,
    pub problem: Problem,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

/// Settings for reading files.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub decode: DecodeOptions,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Show progress on stderr (a terminal) during long reads.
    pub progress: bool,
    /// Largest object fetched from S3 that is read, decompressed, in bytes (a body is held
    /// whole while it is decoded; files on disk stream and need no such bound).
    pub max_object_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            decode: DecodeOptions::default(),
            threads: 0,
            progress: false,
            max_object_bytes: crate::config::InputConfig::default().max_object_mib << 20,
        }
    }
}

/// What one file yielded.
#[derive(Clone, Debug, Default)]
pub struct FileStats {
    pub bytes: u64,
    pub gzip: bool,
    pub signals: u64,
    /// Of `signals`, the records counted without building a signal (see
    /// [`DecodeOptions::calls`](crate::normalize::DecodeOptions::calls)).
    pub counted_only: u64,
    pub not_json: bool,
    /// The newest `updatedAt` (findings) or event time (others) among its records: where a
    /// poll of an API resumes.
    pub newest: Option<crate::time::Millis>,
}

/// What a caller needs of a signal, decided on the worker thread so that signals nobody
/// needs never cross to the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Counted, then dropped.
    Drop,
    /// Needed for the graph only (it describes instances or who acted as one).
    Graph,
    /// Needed for the graph and for matching.
    Match,
}

/// Decides [`Keep`] for each signal; runs on the worker threads.
pub type Classify<'a> = &'a (dyn Fn(&Signal) -> Keep + Sync);

/// Keeps everything for matching.
pub fn keep_all(_: &Signal) -> Keep {
    Keep::Match
}

/// What reading yields, in arrival order.
pub enum Event {
    Signals(Vec<(RecordKind, Box<Signal>, Keep)>),
    /// Records decoded but dropped by the classifier, per kind.
    Dropped(Vec<(RecordKind, u64)>),
    Problem(FileProblem),
    FileDone(Arc<Path>, FileStats),
}

/// Expands folders (recursively, sorted, hidden entries skipped) into files.
///
/// A path that cannot be read is returned as a problem, not an error: the other inputs are
/// still read. Only regular files are read: a FIFO, socket or device named on the command
/// line is refused (one met in a folder is noted and passed over). Each folder is read once,
/// however many symbolic links lead to it, so a link loop costs nothing.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<InputFile>, Vec<FileProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut seen, &mut files, &mut problems),
            Ok(m) => match crate::local_file::check_regular(&m) {
                Ok(()) => files.push(InputFile {
                    path: p.clone(),
                    explicit: true,
                }),
                Err(e) => problems.push(file_problem(p, format!("refused: {e}"))),
            },
            Err(e) => problems.push(file_problem(p, format!("cannot read: {e}"))),
        }
    }
    (files, problems)
}

fn file_problem(p: &Path, reason: String) -> FileProblem {
    FileProblem {
        file: Arc::from(p),
        problem: Problem {
            location: None,
            reason,
            severity: Severity::Skipped,
        },
    }
}

/// Folders already walked, by their real path, with the path they were first read as.
type Seen = std::collections::HashMap<PathBuf, PathBuf>;

fn walk(dir: &Path, seen: &mut Seen, files: &mut Vec<InputFile>, problems: &mut Vec<FileProblem>) {
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if let Some(first) = seen.get(&real) {
                problems.push(FileProblem {
                    problem: Problem {
                        location: None,
                        reason: format!(
                            "folder already read as {} (a symbolic link leads back to it): passed over",
                            first.display()
                        ),
                        severity: Severity::Ignored,
                    },
                    ..file_problem(dir, String::new())
                });
                return;
            }
            seen.insert(real, dir.to_path_buf());
        }
        Err(e) => {
            problems.push(file_problem(dir, format!("cannot read: {e}")));
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(file_problem(dir, format!("cannot list folder: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, seen, files, problems),
            Ok(m) => match crate::local_file::check_regular(&m) {
                Ok(()) => files.push(InputFile {
                    path: p,
                    explicit: false,
                }),
                Err(e) => problems.push(FileProblem {
                    problem: Problem {
                        location: None,
                        reason: format!("passed over: {e}"),
                        severity: Severity::Ignored,
                    },
                    ..file_problem(&p, String::new())
                }),
            },
            Err(e) => problems.push(file_problem(&p, format!("cannot read: {e}"))),
        }
    }
}

/// Decodes one file, sending signals in batches through `send`.
pub fn decode_file(
    file: &InputFile,
    opts: &DecodeOptions,
    classify: Classify<'_>,
    send: &mut dyn FnMut(Event),
) -> FileStats {
    let name: Arc<Path> = Arc::from(file.path.as_path());
    let reader = match crate::local_file::open_regular(&file.path) {
        Ok(f) => f,
        Err(e) => {
            send(Event::Problem(file_problem(
                &file.path,
                format!("cannot open: {e}"),
            )));
            return FileStats::default();
        }
    };
    decode_named(name, reader, file.explicit, opts, classify, send)
}

/// Decodes what `reader` holds (a file, or the body of an API response), naming it `name` in
/// problems. `explicit`: the input was asked for by name, so a non-record input is a loss.
pub fn decode_named(
    name: Arc<Path>,
    reader: impl std::io::Read,
    explicit: bool,
    opts: &DecodeOptions,
    classify: Classify<'_>,
    send: &mut dyn FnMut(Event),
) -> FileStats {
    let mut stats = FileStats::default();
    let mut batch: Vec<(RecordKind, Box<Signal>, Keep)> = Vec::with_capacity(BATCH);
    let mut dropped: Vec<(RecordKind, u64)> = Vec::new();
    // "Not a record" problems are held until the file shows a record: if it never does, the
    // file is not a record file (labels or metadata beside the data), reported once.
    let mut held: Vec<Problem> = Vec::new();
    let mut other_problems = false;
    let rs = normalize::decode_reader(reader, opts, &mut |d| {
        let (kind, signal, time) = match d {
            Decoded::Signal(kind, s) => {
                let time = s.updated_at.unwrap_or(s.time);
                (kind, Some(s), time)
            }
            Decoded::Unneeded(kind, time) => (kind, None, time),
            // A Sigma rule's match on the record just handed on: no record of its own.
            Decoded::Sigma(kind, s) => {
                let keep = classify(&s);
                if keep != Keep::Drop {
                    batch.push((kind, s, keep));
                    if batch.len() == BATCH {
                        send(Event::Signals(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(BATCH),
                        )));
                    }
                }
                return;
            }
            Decoded::Problem(problem) => {
                if stats.signals == 0
                    && problem.reason == normalize::NOT_A_RECORD
                    && held.len() < HOLD
                {
                    held.push(problem);
                    return;
                }
                other_problems = true;
                send(Event::Problem(FileProblem {
                    file: name.clone(),
                    problem,
                }));
                return;
            }
        };
        if stats.signals == 0 {
            for problem in held.drain(..) {
                send(Event::Problem(FileProblem {
                    file: name.clone(),
                    problem,
                }));
            }
        }
        stats.signals += 1;
        stats.newest = stats.newest.max(Some(time));
        stats.counted_only += u64::from(signal.is_none());
        match signal.map(|s| (classify(&s), s)) {
            Some((keep, s)) if keep != Keep::Drop => {
                batch.push((kind, s, keep));
                if batch.len() == BATCH {
                    send(Event::Signals(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(BATCH),
                    )));
                }
            }
            _ => match dropped.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => dropped.push((kind, 1)),
            },
        }
    });
    if stats.signals == 0 && !held.is_empty() && !other_problems && held.len() < HOLD {
        stats.not_json = true;
        send(Event::Problem(FileProblem {
            file: name.clone(),
            problem: Problem {
                location: None,
                reason: format!(
                    "not a record file: none of its {} JSON value(s) is a CloudTrail record, a GuardDuty finding or an ASFF finding",
                    held.len()
                ),
                severity: if explicit {
                    Severity::Skipped
                } else {
                    Severity::Ignored
                },
            },
        }));
        held.clear();
    }
    for problem in held {
        send(Event::Problem(FileProblem {
            file: name.clone(),
            problem,
        }));
    }
    if !batch.is_empty() {
        send(Event::Signals(batch));
    }
    if !dropped.is_empty() {
        send(Event::Dropped(dropped));
    }
    stats.bytes = rs.bytes;
    stats.gzip = rs.gzip;
    if explicit && rs.values == 0 && rs.not_json.is_none() && !other_problems {
        send(Event::Problem(FileProblem {
            file: name.clone(),
            problem: Problem {
                location: None,
                reason: if rs.bytes == 0 {
                    "no records: the file is empty".into()
                } else {
                    "no records: the file holds only white space or a byte order mark".into()
                },
                severity: Severity::Skipped,
            },
        }));
    }
    if let Some(start) = rs.not_json {
        stats.not_json = true;
        send(Event::Problem(FileProblem {
            file: name.clone(),
            problem: Problem {
                location: None,
                reason: format!("not a record file: content is not JSON (starts with {start:?})"),
                // A file named on the command line was meant as input: its loss counts. One
                // met in a folder (a README, a labels CSV) is only noted.
                severity: if explicit {
                    Severity::Skipped
                } else {
                    Severity::Ignored
                },
            },
        }));
    }
    stats
}

const BATCH: usize = 1024;

/// "Not a record" problems held back per file before they are reported one by one.
const HOLD: usize = 10_000;

/// Reads `files` on worker threads and calls `on_event` on this thread for everything they
/// yield. Returns when every file is done.
pub fn read_files(
    files: &[InputFile],
    opts: &ReadOptions,
    classify: Classify<'_>,
    on_event: &mut dyn FnMut(Event),
) {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(files.len().max(1));
    if threads <= 1 {
        for f in files {
            let stats = decode_file(f, &opts.decode, classify, on_event);
            on_event(Event::FileDone(Arc::from(f.path.as_path()), stats));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<Event>(threads * 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            // Named, so profiles and logs tell the readers from the consumer.
            let reader = std::thread::Builder::new().name("decode".into());
            let spawned = reader.spawn_scoped(scope, move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let mut send = |e: Event| {
                        // The receiver lives until every worker is done.
                        let _ = tx.send(e);
                    };
                    let stats = decode_file(f, &opts.decode, classify, &mut send);
                    send(Event::FileDone(Arc::from(f.path.as_path()), stats));
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a reader thread");
            }
        }
        drop(tx);
        for e in rx {
            on_event(e);
        }
    });
}

/// Bodies that arrive while a run decodes them (AWS mode's responses and trail objects): each
/// decoder thread takes the next one when it is free.
pub trait Bodies: Sync {
    /// The next body and its name, waiting for one to arrive; None when no more will.
    fn next_body(&self) -> Option<(String, Vec<u8>)>;
}

/// Decodes `bodies` as they arrive, on worker threads as [`read_files`] decodes files, and
/// calls `on_event` on this thread for everything they yield. Returns when no more will come.
pub fn read_bodies(
    bodies: &dyn Bodies,
    opts: &ReadOptions,
    classify: Classify<'_>,
    on_event: &mut dyn FnMut(Event),
) {
    let decode = |(name, body): (String, Vec<u8>), send: &mut dyn FnMut(Event)| {
        let name: Arc<Path> = Arc::from(Path::new(name.as_str()));
        let stats = decode_named(
            name.clone(),
            body.as_slice(),
            true,
            &opts.decode,
            classify,
            send,
        );
        send(Event::FileDone(name, stats));
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    if threads <= 1 {
        while let Some(b) = bodies.next_body() {
            decode(b, on_event);
        }
        return;
    }
    let (tx, rx) = mpsc::sync_channel::<Event>(threads * 4);
    std::thread::scope(|scope| {
        let mut started = 0;
        for _ in 0..threads {
            let tx = tx.clone();
            let decode = &decode;
            let reader = std::thread::Builder::new().name("decode".into());
            let spawned = reader.spawn_scoped(scope, move || {
                let mut send = |e: Event| {
                    // The receiver lives until every worker is done.
                    let _ = tx.send(e);
                };
                while let Some(b) = bodies.next_body() {
                    decode(b, &mut send);
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a reader thread"),
            }
        }
        drop(tx);
        if started == 0 {
            // No thread: decode here, so that no body is left behind.
            while let Some(b) = bodies.next_body() {
                decode(b, on_event);
            }
        }
        for e in rx {
            on_event(e);
        }
    });
}
