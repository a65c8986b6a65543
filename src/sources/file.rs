//! Local files and folders as a source: walk, decode in parallel, hand signals on in order of
//! arrival on the calling thread.
//!
//! Each worker thread decodes whole files, or parts of a large JSON Lines file (decoding is
//! CPU-bound, so one large file keeps every core busy too), and sends signals in batches over
//! a bounded channel, so memory stays bounded however large the input. Problems are reported
//! with the file they came from.

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
    /// A JSON Lines file larger than this is decoded in parts of about this size on several
    /// threads (see [`read_files`]).
    pub part_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            decode: DecodeOptions::default(),
            threads: 0,
            progress: false,
            max_object_bytes: crate::config::InputConfig::default().max_object_mib << 20,
            part_bytes: PART_BYTES,
        }
    }
}

/// Default [`ReadOptions::part_bytes`]: large enough that a part's start costs nothing
/// beside its decoding, small enough that a file of a few hundred megabytes keeps two cores
/// busy.
pub const PART_BYTES: u64 = 64 << 20;

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
    let decoding = decode_stream(&name, reader, false, opts, classify, send, &mut |_| {});
    finish(&name, explicit, decoding, send)
}

/// What decoding one stream (a whole input, or a part of a file) leaves for the input's end.
#[derive(Debug, Default)]
struct Decoding {
    stats: FileStats,
    /// "Not a record" problems held because no record had come yet (at most [`HOLD`]).
    held: Vec<Problem>,
    /// A problem other than a held one was reported.
    other_problems: bool,
    /// Top-level values met.
    values: u64,
    /// The input is not JSON: how it starts.
    not_json: Option<String>,
}

impl Decoding {
    /// Adds what the next part of the same file left.
    fn merge(&mut self, next: Decoding) {
        let (s, n) = (&mut self.stats, next.stats);
        s.bytes += n.bytes;
        s.gzip |= n.gzip;
        s.signals += n.signals;
        s.counted_only += n.counted_only;
        s.newest = s.newest.max(n.newest);
        self.held.extend(next.held);
        self.other_problems |= next.other_problems;
        self.values += next.values;
        self.not_json = self.not_json.take().or(next.not_json);
    }
}

/// Decodes one stream, sending signals in batches and problems (each through `place`, which
/// may correct where it says the record is) through `send`. `json_lines`: the stream is a
/// part of a file cut at a line start, after lines of JSON Lines.
fn decode_stream(
    name: &Arc<Path>,
    reader: impl std::io::Read,
    json_lines: bool,
    opts: &DecodeOptions,
    classify: Classify<'_>,
    send: &mut dyn FnMut(Event),
    place: &mut dyn FnMut(&mut Problem),
) -> Decoding {
    let mut stats = FileStats::default();
    let mut batch: Vec<(RecordKind, Box<Signal>, Keep)> = Vec::with_capacity(BATCH);
    let mut dropped: Vec<(RecordKind, u64)> = Vec::new();
    // "Not a record" problems are held until the file shows a record: if it never does, the
    // file is not a record file (labels or metadata beside the data), reported once.
    let mut held: Vec<Problem> = Vec::new();
    let mut other_problems = false;
    let rs = normalize::decode_reader_from(reader, opts, json_lines, &mut |d| {
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
            Decoded::Problem(mut problem) => {
                place(&mut problem);
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
    if !batch.is_empty() {
        send(Event::Signals(batch));
    }
    if !dropped.is_empty() {
        send(Event::Dropped(dropped));
    }
    stats.bytes = rs.bytes;
    stats.gzip = rs.gzip;
    Decoding {
        stats,
        held,
        other_problems,
        values: rs.values,
        not_json: rs.not_json,
    }
}

/// Reports what only the whole input can tell (no record in it at all, not JSON, empty) and
/// returns its totals.
fn finish(
    name: &Arc<Path>,
    explicit: bool,
    decoding: Decoding,
    send: &mut dyn FnMut(Event),
) -> FileStats {
    let Decoding {
        mut stats,
        mut held,
        other_problems,
        values,
        not_json,
    } = decoding;
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
    if explicit && values == 0 && not_json.is_none() && !other_problems {
        send(Event::Problem(FileProblem {
            file: name.clone(),
            problem: Problem {
                location: None,
                reason: if stats.bytes == 0 {
                    "no records: the file is empty".into()
                } else {
                    "no records: the file holds only white space or a byte order mark".into()
                },
                severity: Severity::Skipped,
            },
        }));
    }
    if let Some(start) = not_json {
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
///
/// A file larger than [`ReadOptions::part_bytes`] whose first line is one whole JSON object
/// (JSON Lines) is cut into parts of about that size at line starts, one after a line ending
/// in `}` and starting with `{` (in valid JSON that is only ever between two top-level
/// values), and its parts are decoded on the reader threads: one large file keeps every core
/// busy. Where the cuts fall depends on the file alone, not on the number of threads, and a
/// single thread reads the same parts one after the other, so what comes out does not depend
/// on the machine. A part starts framing in JSON Lines mode, as the rest of the file is
/// framed, each line on its own; damage that reading the file whole would carry past the
/// cut (a line opening `{"Records":[` whose array never closes swallows the lines after it
/// as its elements) stops at it. A problem in a part names its line in the whole file (the
/// line breaks of the parts before are counted, each part once, when a problem first needs
/// them), and what only the whole file can tell (no record at all) is decided once its last
/// part is done. Each file's [`Event::FileDone`] comes once.
pub fn read_files(
    files: &[InputFile],
    opts: &ReadOptions,
    classify: Classify<'_>,
    on_event: &mut dyn FnMut(Event),
) {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let (work, cuts) = plan(files, opts);
    let mut assembly = Assembly::new(&cuts);
    // Decodes one piece of work; a part's results are for the assembly.
    let decode = |w: &Work, send: &mut dyn FnMut(Event)| -> Option<(usize, usize, Decoding)> {
        let f = &files[w.file];
        match (w.part, &cuts[w.file]) {
            (Some(index), Some(cut)) => {
                let decoding = decode_part(f, cut, index, &opts.decode, classify, send);
                Some((w.file, index, decoding))
            }
            _ => {
                let stats = decode_file(f, &opts.decode, classify, send);
                send(Event::FileDone(Arc::from(f.path.as_path()), stats));
                None
            }
        }
    };
    let threads = threads.min(work.len());
    if threads <= 1 {
        for w in &work {
            if let Some((file, index, decoding)) = decode(w, on_event) {
                assembly.part_done(&files[file], file, index, decoding, on_event);
            }
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<Message>(threads * 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, work, decode) = (&next, &work, &decode);
            // Named, so profiles and logs tell the readers from the consumer.
            let reader = std::thread::Builder::new().name("decode".into());
            let spawned = reader.spawn_scoped(scope, move || {
                let mut send = |e: Event| {
                    // The receiver lives until every worker is done.
                    let _ = tx.send(Message::Event(e));
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(w) = work.get(i) else { break };
                    if let Some((file, index, decoding)) = decode(w, &mut send) {
                        let _ = tx.send(Message::PartDone {
                            file,
                            index,
                            decoding,
                        });
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a reader thread");
            }
        }
        drop(tx);
        for m in rx {
            match m {
                Message::Event(e) => on_event(e),
                Message::PartDone {
                    file,
                    index,
                    decoding,
                } => assembly.part_done(&files[file], file, index, decoding, on_event),
            }
        }
    });
}

/// What reader threads send to the thread that consumes.
enum Message {
    Event(Event),
    /// A part of a file is decoded; its file is done when all of its parts are.
    PartDone {
        file: usize,
        index: usize,
        decoding: Decoding,
    },
}

/// What the parts of each file cut into parts left, until its last part is done.
struct Assembly {
    /// Per file, per part (empty for a file read whole).
    slots: Vec<Vec<Option<Decoding>>>,
}

impl Assembly {
    fn new(cuts: &[Option<Cut>]) -> Assembly {
        Assembly {
            slots: cuts
                .iter()
                .map(|c| {
                    c.as_ref()
                        .map_or_else(Vec::new, |c| c.parts.iter().map(|_| None).collect())
                })
                .collect(),
        }
    }

    /// Keeps what part `index` of file `file` left; when it was the file's last part, reports
    /// what only the whole file tells, then the file's totals.
    fn part_done(
        &mut self,
        f: &InputFile,
        file: usize,
        index: usize,
        decoding: Decoding,
        on_event: &mut dyn FnMut(Event),
    ) {
        let slots = &mut self.slots[file];
        slots[index] = Some(decoding);
        if slots.iter().all(Option::is_some) {
            let mut whole = Decoding::default();
            for d in slots.drain(..).flatten() {
                whole.merge(d);
            }
            let name: Arc<Path> = Arc::from(f.path.as_path());
            let stats = finish(&name, f.explicit, whole, on_event);
            on_event(Event::FileDone(name, stats));
        }
    }
}

/// One piece of work for a reader thread: a whole file, or a part of one (its index in the
/// file's [`Cut`]).
struct Work {
    file: usize,
    part: Option<usize>,
}

/// Bytes `start..end` of a file (to its end when `end` is None: a file that grows while it is
/// read is read as it would be whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    start: u64,
    end: Option<u64>,
}

/// How a file is cut into parts, and the line breaks in each part, counted when a problem of
/// a later part first needs them (each part's once, whichever thread asks first).
struct Cut {
    parts: Vec<Part>,
    line_breaks: Vec<std::sync::OnceLock<Option<u64>>>,
}

impl Cut {
    fn new(cuts: &[u64]) -> Cut {
        let starts = std::iter::once(0).chain(cuts.iter().copied());
        let ends = cuts.iter().copied().map(Some).chain(std::iter::once(None));
        let parts: Vec<Part> = starts
            .zip(ends)
            .map(|(start, end)| Part { start, end })
            .collect();
        Cut {
            line_breaks: parts.iter().map(|_| std::sync::OnceLock::new()).collect(),
            parts,
        }
    }

    /// The line breaks before part `index` of the file at `path`; None when they cannot be
    /// counted (the file cannot be read again).
    fn lines_before(&self, path: &Path, index: usize) -> Option<u64> {
        self.parts[..index]
            .iter()
            .zip(&self.line_breaks)
            .map(|(p, n)| {
                *n.get_or_init(|| line_breaks(path, p.start, p.end.unwrap_or(p.start)).ok())
            })
            .sum()
    }
}

/// The work for the readers: every file whole, except the large JSON Lines files, in parts.
fn plan(files: &[InputFile], opts: &ReadOptions) -> (Vec<Work>, Vec<Option<Cut>>) {
    let mut work = Vec::with_capacity(files.len());
    let mut plans = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let offsets = cuts(
            &f.path,
            opts.part_bytes.max(1),
            opts.decode.max_record_bytes,
        );
        if offsets.is_empty() {
            work.push(Work {
                file: i,
                part: None,
            });
            plans.push(None);
            continue;
        }
        tracing::debug!(file = %f.path.display(), parts = offsets.len() + 1, "decoding in parts");
        let cut = Cut::new(&offsets);
        work.extend((0..cut.parts.len()).map(|index| Work {
            file: i,
            part: Some(index),
        }));
        plans.push(Some(cut));
    }
    (work, plans)
}

/// Longest first line looked at when deciding whether a file is JSON Lines.
const FIRST_LINE_MAX: usize = 1 << 20;

/// Where to cut the file at `path` into parts of about `part_bytes`: the offsets of the
/// lines that start the second and later parts, in order. Empty when the file is not cut:
/// small, not JSON Lines (compressed, one document, pretty-printed, or a first line that is
/// not one whole JSON object of at most 1 MiB), or unreadable (its reader reports why).
fn cuts(path: &Path, part_bytes: u64, max_record: usize) -> Vec<u64> {
    // Most files are small: a `stat`, no opening, decides for them.
    let small = |size: u64| size.div_ceil(part_bytes) < 2;
    if std::fs::metadata(path).is_ok_and(|m| small(m.len())) {
        return Vec::new();
    }
    let Ok(mut f) = crate::local_file::open_regular(path) else {
        return Vec::new();
    };
    let Ok(size) = f.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    if small(size) {
        return Vec::new();
    }
    let parts = size.div_ceil(part_bytes);
    // The first line: one whole JSON object, so the file is framed as JSON Lines from its
    // second line on.
    let mut head = Vec::new();
    {
        use std::io::{BufRead, Read};
        let limit = FIRST_LINE_MAX.min(max_record) as u64 + 2;
        let mut r = std::io::BufReader::new((&mut f).take(limit));
        if r.read_until(b'\n', &mut head).is_err() || head.last() != Some(&b'\n') {
            return Vec::new();
        }
    }
    let line = head.trim_ascii_end();
    if !line.starts_with(b"{") || serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err() {
        return Vec::new();
    }
    let mut out: Vec<u64> = Vec::new();
    for k in 1..parts {
        let from = (part_bytes * k).max(out.last().map_or(0, |c| c + 1));
        match next_cut(&mut f, from, max_record as u64) {
            Some(c) if c < size => out.push(c),
            _ => break,
        }
    }
    out
}

/// Bytes searched per read when looking for a cut.
const CUT_WINDOW: usize = 1 << 20;

/// The first offset at or after `from` (within `limit` bytes of it) that starts a line
/// beginning with `{` after a line ending with `}` (a `\r` before the line break allowed).
fn next_cut(f: &mut std::fs::File, from: u64, limit: u64) -> Option<u64> {
    // The three bytes before `from` (`}\r\n`) belong to the pattern of a line starting at
    // `from`.
    let mut at = from.saturating_sub(3);
    while at <= from.saturating_add(limit) {
        let window = read_at(f, at, CUT_WINDOW + 3).ok()?;
        for i in memchr::memchr_iter(b'\n', &window) {
            let start = at + i as u64 + 1;
            if start < from || window.get(i + 1) != Some(&b'{') {
                continue;
            }
            if start > from.saturating_add(limit) {
                return None;
            }
            if ends_a_record(&window[..i]) {
                return Some(start);
            }
        }
        if window.len() < CUT_WINDOW + 3 {
            return None;
        }
        at += CUT_WINDOW as u64;
    }
    None
}

/// Whether `before` (what precedes a line break) ends with `}`, a `\r` between allowed.
fn ends_a_record(before: &[u8]) -> bool {
    let before = before.strip_suffix(b"\r").unwrap_or(before);
    before.last() == Some(&b'}')
}

/// Up to `len` bytes of `f` from `offset` (fewer at its end).
fn read_at(f: &mut std::fs::File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len.min(CUT_WINDOW + 3));
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Decodes part `index` of a file cut as `cut` says; what only the whole file can tell is
/// left to [`finish`].
fn decode_part(
    file: &InputFile,
    cut: &Cut,
    index: usize,
    opts: &DecodeOptions,
    classify: Classify<'_>,
    send: &mut dyn FnMut(Event),
) -> Decoding {
    use std::io::{Read, Seek, SeekFrom};
    let part = cut.parts[index];
    let name: Arc<Path> = Arc::from(file.path.as_path());
    let mut f = match crate::local_file::open_regular(&file.path) {
        Ok(f) => f,
        Err(e) => {
            send(Event::Problem(file_problem(
                &file.path,
                format!("cannot open (the part from byte {}): {e}", part.start),
            )));
            return Decoding {
                other_problems: true,
                ..Decoding::default()
            };
        }
    };
    // The cut was planned on what the file held then: a file written to since may no longer
    // have a record start there. Said, then read on (the next lines are framed as usual).
    let mut changed = false;
    if index > 0 {
        let from = part.start.saturating_sub(3);
        let at = (part.start - from) as usize;
        let still = read_at(&mut f, from, at + 1).is_ok_and(|w| {
            at >= 2
                && w.get(at) == Some(&b'{')
                && w[..at].last() == Some(&b'\n')
                && ends_a_record(&w[..at - 1])
        });
        if !still {
            changed = true;
            send(Event::Problem(file_problem(
                &file.path,
                format!(
                    "the file changed while it was read: byte {} no longer starts a record after one (it did when the file was cut into parts); reading on from there",
                    part.start
                ),
            )));
        }
    }
    if let Err(e) = f.seek(SeekFrom::Start(part.start)) {
        send(Event::Problem(file_problem(
            &file.path,
            format!("cannot read from byte {}: {e}", part.start),
        )));
        return Decoding {
            other_problems: true,
            ..Decoding::default()
        };
    }
    // Lines before the part, counted when a problem of the part first needs them.
    let mut before: Option<Option<u64>> = None;
    let mut place = |p: &mut Problem| {
        let Some(at) = p.location.as_mut() else {
            return;
        };
        if index == 0 {
            return;
        }
        match before.get_or_insert_with(|| cut.lines_before(&file.path, index)) {
            Some(n) => at.line += *n,
            None => {
                p.reason = format!(
                    "{} (the line is counted from byte {} of the file: counting the lines before it failed)",
                    p.reason, part.start
                );
            }
        }
    };
    let json_lines = index > 0;
    let mut decoding = match part.end {
        Some(end) => decode_stream(
            &name,
            f.take(end - part.start),
            json_lines,
            opts,
            classify,
            send,
            &mut place,
        ),
        None => decode_stream(&name, f, json_lines, opts, classify, send, &mut place),
    };
    decoding.other_problems |= changed;
    decoding
}

/// Line breaks in bytes `start..end` of the file at `path`.
fn line_breaks(path: &Path, start: u64, end: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = crate::local_file::open_regular(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut f = f.take(end.saturating_sub(start));
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Unique records from the shipped fixtures, one per line, with damage between them: a
    /// truncated record, a value that is not a record, a line of garbage, a line opening an
    /// array, blank lines, a record with a CRLF line end and one pretty-printed over lines.
    fn damaged_json_lines(records: usize) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let base: Vec<serde_json::Value> = ["cloudtrail/records.jsonl", "guardduty/findings.jsonl"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(dir.join(f))
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut out = String::new();
        for i in 0..records {
            let mut v = base[i % base.len()].clone();
            let id = format!("0000{i:08}-part-test");
            if v.get("eventID").is_some() {
                v["eventID"] = id.into();
            } else {
                v["id"] = id.into();
            }
            let line = serde_json::to_string(&v).unwrap();
            match i % 37 {
                5 => out.push_str(&line[..line.len() / 2]),
                9 => out.push_str(r#"{"schemaVersion":"2.0","labels":[1,2]}"#),
                13 => out.push_str("garbage that is not JSON"),
                17 => out.push_str("[1, {\"a\": }"),
                21 => out.push('\n'),
                25 => {
                    out.push_str(&line);
                    out.push('\r');
                }
                29 => out.push_str(&serde_json::to_string_pretty(&v).unwrap()),
                _ => out.push_str(&line),
            }
            out.push('\n');
        }
        out
    }

    /// Everything reading yields, in an order that does not depend on the threads.
    #[derive(Debug, PartialEq)]
    struct Read {
        signals: Vec<String>,
        problems: Vec<String>,
        done: Vec<String>,
    }

    /// A part size no file here reaches: read whole.
    const WHOLE: u64 = u64::MAX;

    fn read(path: &Path, threads: usize, part_bytes: u64) -> Read {
        let opts = ReadOptions {
            threads,
            part_bytes,
            ..ReadOptions::default()
        };
        let files = [InputFile {
            path: path.to_path_buf(),
            explicit: true,
        }];
        let mut r = Read {
            signals: Vec::new(),
            problems: Vec::new(),
            done: Vec::new(),
        };
        read_files(&files, &opts, &keep_all, &mut |e| match e {
            Event::Signals(b) => r.signals.extend(
                b.into_iter()
                    .map(|(k, s, _)| format!("{k:?} {:?} {}", s.reference, s.time)),
            ),
            Event::Dropped(_) => {}
            Event::Problem(p) => r.problems.push(format!(
                "{} {:?} {} {:?}",
                p.file.display(),
                p.problem.location,
                p.problem.reason,
                p.problem.severity
            )),
            Event::FileDone(name, s) => r.done.push(format!("{} {s:?}", name.display())),
        });
        r.signals.sort();
        r.problems.sort();
        r
    }

    fn written(bytes: impl AsRef<[u8]>) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes.as_ref()).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn a_large_json_lines_file_read_in_parts_yields_what_it_yields_whole() {
        let text = damaged_json_lines(600);
        let f = written(&text);
        let part = 8 << 10;
        let cut = cuts(f.path(), part, 64 << 20);
        assert!(cut.len() >= 8, "cut into {} parts", cut.len() + 1);
        for c in &cut {
            let c = *c as usize;
            assert_eq!(text.as_bytes()[c], b'{');
            assert!(text[..c].trim_end().ends_with('}'));
        }
        let whole = read(f.path(), 1, WHOLE);
        assert!(whole.signals.len() > 500, "{} signals", whole.signals.len());
        assert!(
            whole.problems.len() >= 4 * 16,
            "{:#?}",
            &whole.problems[..whole.problems.len().min(20)]
        );
        assert_eq!(whole.done.len(), 1);
        for threads in [1, 2, 3, 5] {
            assert_eq!(read(f.path(), threads, part), whole, "{threads} threads");
        }
        // A part size the file is far below: read whole, the same.
        assert!(cuts(f.path(), 1 << 30, 64 << 20).is_empty());
        assert_eq!(read(f.path(), 3, 1 << 30), whole);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 24,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random damage anywhere (bytes dropped, line breaks and braces put in, a line cut
        /// short) changes nothing between reading a file whole and in parts: the cuts fall
        /// where they may, among damaged lines too.
        #[test]
        fn damage_anywhere_reads_the_same_in_parts_as_whole(
            edits in proptest::collection::vec((0.0f64..1.0, 0u8..5), 1..40),
            part in 1_500u64..6_000,
        ) {
            let mut bytes = damaged_json_lines(120).into_bytes();
            for (at, what) in edits {
                let i = ((bytes.len() - 1) as f64 * at) as usize;
                match what {
                    0 => {
                        bytes.remove(i);
                    }
                    1 => bytes.insert(i, b'\n'),
                    2 => bytes.splice(i..i, b"}\n{".iter().copied()).for_each(drop),
                    3 => {
                        let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                        bytes.drain(i..end);
                    }
                    _ => bytes.splice(i..i, b"\"\n".iter().copied()).for_each(drop),
                }
            }
            let f = written(&bytes);
            let whole = read(f.path(), 1, WHOLE);
            proptest::prop_assert_eq!(read(f.path(), 3, part), whole);
        }
    }

    /// Damage right at the cuts: the line before a cut cut short (so it no longer ends in
    /// `}`, and the cut moves), the line after it cut short, a line break inside the line
    /// after it, and a value that is no record starting it.
    #[test]
    fn damage_next_to_the_cuts_reads_the_same_in_parts_as_whole() {
        let text = damaged_json_lines(300);
        let part = 8 << 10;
        let plain = written(&text);
        let cut: Vec<usize> = cuts(plain.path(), part, 64 << 20)
            .into_iter()
            .map(|c| c as usize)
            .collect();
        assert!(cut.len() >= 8);
        for kind in 0..4 {
            let mut bytes = text.clone().into_bytes();
            // From the last cut back, so that earlier offsets still hold.
            for &c in cut.iter().rev() {
                let next_end = c + memchr::memchr(b'\n', &bytes[c..]).unwrap();
                match kind {
                    0 => {
                        // The line before: its last 20 bytes dropped.
                        bytes.drain(c - 21..c - 1);
                    }
                    1 => {
                        bytes.drain(c + (next_end - c) / 2..next_end);
                    }
                    2 => bytes.insert(c + (next_end - c) / 3, b'\n'),
                    _ => bytes
                        .splice(c..c, br#"{"labels":["x"]}"#.iter().copied())
                        .for_each(drop),
                }
            }
            let f = written(&bytes);
            let whole = read(f.path(), 1, WHOLE);
            assert!(!whole.problems.is_empty());
            assert_eq!(read(f.path(), 3, part), whole, "damage of kind {kind}");
        }
    }

    /// A line opening `{"Records":[` whose array never closes: read whole, the lines after
    /// it are taken as its elements and lost; in parts, that damage stops at the next cut.
    /// What comes out depends on the file and the part size, never on the thread count.
    #[test]
    fn an_unclosed_wrapper_line_before_a_cut_reads_the_same_on_any_number_of_threads() {
        let text = damaged_json_lines(300);
        let part = 8 << 10;
        let plain = written(&text);
        let cut = cuts(plain.path(), part, 64 << 20);
        assert!(cut.len() >= 8);
        let mut bytes = text.into_bytes();
        for &c in cut.iter().rev() {
            // The line before the cut becomes a log file's object whose array is not closed
            // (its one record whole), still ending in `}`.
            let c = c as usize;
            let line_start = memchr::memrchr(b'\n', &bytes[..c - 1]).map_or(0, |n| n + 1);
            bytes
                .splice(line_start..line_start, br#"{"Records":["#.iter().copied())
                .for_each(drop);
        }
        let f = written(&bytes);
        let first = read(f.path(), 1, part);
        for threads in [2, 3, 5] {
            assert_eq!(read(f.path(), threads, part), first, "{threads} threads");
        }
        let whole = read(f.path(), 1, WHOLE);
        assert!(
            first.signals.len() > whole.signals.len(),
            "in parts {}, whole {}",
            first.signals.len(),
            whole.signals.len()
        );
    }

    #[test]
    fn a_large_file_of_values_that_are_not_records_is_one_problem_in_parts_as_whole() {
        let line =
            r#"{"schemaVersion":"2.0","labels":["a","b","c"],"note":"metadata beside the data"}"#;
        let text = format!("{line}\n").repeat(2_000);
        let f = written(&text);
        assert!(cuts(f.path(), 16 << 10, 64 << 20).len() >= 4);
        let whole = read(f.path(), 1, WHOLE);
        assert_eq!(whole.problems.len(), 1, "{:?}", whole.problems);
        assert!(whole.problems[0].contains("not a record file: none of its 2000"));
        assert_eq!(read(f.path(), 2, 16 << 10), whole);
        assert_eq!(read(f.path(), 1, 16 << 10), whole);
    }

    #[test]
    fn files_that_are_not_json_lines_are_not_cut() {
        let text = damaged_json_lines(300);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
        // One document (an array of records), a pretty-printed first record, a first line
        // that is damaged, and gzip.
        let array = format!("[{}]\n", lines.join(",\n"));
        let pretty = format!(
            "{}\n{}\n",
            serde_json::to_string_pretty(
                &serde_json::from_str::<serde_json::Value>(lines[0]).unwrap()
            )
            .unwrap(),
            lines[1..].join("\n")
        );
        let damaged = format!("{{\"eventVersion\": \n{text}");
        for (what, body) in [("array", array), ("pretty", pretty), ("damaged", damaged)] {
            let f = written(&body);
            assert!(cuts(f.path(), 4 << 10, 64 << 20).is_empty(), "{what}");
            assert_eq!(
                read(f.path(), 3, 4 << 10),
                read(f.path(), 1, WHOLE),
                "{what}"
            );
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let f = written(gz.finish().unwrap());
        assert!(cuts(f.path(), 1 << 10, 64 << 20).is_empty(), "gzip");
    }

    #[test]
    fn a_part_whose_start_changed_since_the_cut_says_so_and_reads_on() {
        let text = damaged_json_lines(200);
        let f = written(&text);
        let cut = cuts(f.path(), 8 << 10, 64 << 20);
        assert!(cut.len() > 2);
        // Written to since: two bytes more at the start move every line.
        std::fs::write(f.path(), format!("\n\n{text}")).unwrap();
        let file = InputFile {
            path: f.path().to_path_buf(),
            explicit: true,
        };
        let start = cut[0];
        let cut = Cut::new(&cut);
        let (mut problems, mut signals) = (Vec::new(), 0);
        let d = decode_part(
            &file,
            &cut,
            1,
            &DecodeOptions::default(),
            &keep_all,
            &mut |e| match e {
                Event::Problem(p) => problems.push(p.problem.reason),
                Event::Signals(b) => signals += b.len(),
                _ => {}
            },
        );
        assert!(d.other_problems);
        assert!(
            problems[0].starts_with(&format!(
                "the file changed while it was read: byte {start} no longer starts a record"
            )),
            "{problems:?}"
        );
        // Read from the planned byte on: what is there now (the end of a line, `}`) is a
        // damaged line of its own, and the lines after it are read as usual.
        assert!(problems.len() >= 2, "{problems:?}");
        assert!(signals > 0 && d.stats.signals > 0, "{problems:?}");
        // Unchanged, a part starts as planned: no such problem.
        std::fs::write(f.path(), &text).unwrap();
        let mut problems = Vec::new();
        decode_part(
            &file,
            &cut,
            1,
            &DecodeOptions::default(),
            &keep_all,
            &mut |e| {
                if let Event::Problem(p) = e {
                    problems.push(p.problem.reason);
                }
            },
        );
        assert!(
            problems.iter().all(|p| !p.contains("changed")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_cut_is_found_only_between_a_closing_and_an_opening_brace_at_a_line_start() {
        let text = "{\"a\":1}\n{\"b\":\n2}\n  {\"c\":3}\n{\"d\":4}\r\n{\"e\":5}\n";
        let f = written(text);
        let mut file = std::fs::File::open(f.path()).unwrap();
        let at = |s: &str| text.find(s).unwrap() as u64;
        assert_eq!(next_cut(&mut file, 1, 100), Some(at("{\"b\"")));
        // After `{"b":` the next line starts with `2`, then one with spaces: the next is `d`'s
        // line, and after the CRLF `e`'s.
        assert_eq!(
            next_cut(&mut file, at("{\"b\"") + 1, 100),
            Some(at("{\"d\""))
        );
        assert_eq!(
            next_cut(&mut file, at("{\"d\"") + 1, 100),
            Some(at("{\"e\""))
        );
        assert_eq!(next_cut(&mut file, at("{\"e\"") + 1, 100), None);
        // Not further than the limit.
        assert_eq!(next_cut(&mut file, at("{\"b\"") + 1, 3), None);
        // A cut right where the search starts, after a CRLF.
        let crlf = written("{\"a\":1}\r\n{\"b\":2}\r\n{\"c\":3}\n");
        let mut file = std::fs::File::open(crlf.path()).unwrap();
        assert_eq!(next_cut(&mut file, 9, 100), Some(9));
    }
}
