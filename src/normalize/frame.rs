//! Splits a byte stream into JSON record slices without parsing it into values.
//!
//! Inputs are JSON Lines, single documents, bare arrays, or wrapper documents
//! (`{"Records":[…]}`, `{"Events":[…]}`, `{"findings":[…]}`, `{"Findings":[…]}`), possibly
//! pretty-printed, possibly huge. The framer reads the stream in chunks and hands each record's
//! bytes to a callback, so memory is bounded by the largest record, never by the file. Array
//! elements of a wrapper are framed one by one: a 1 GB `{"Records":[…]}` document never sits in
//! memory as a whole.
//!
//! JSON Lines take a fast path: a line is offered as a record as it is (a `memchr` for the
//! newline, no structural scan); only when the callback says the line was not one complete
//! value does the framer fall back to scanning the structure.
//!
//! One damaged record costs that record: after a broken line the framer goes on at the next
//! line; after a broken array element (or a broken record among records concatenated without
//! separators, as Firehose writes them) it goes on at the next element that opens with the
//! same first key as the array's records (`,{"eventVersion"`). Every byte is examined a
//! bounded number of times, whatever the layout: [`FrameStats::examined`] counts them.

use std::fmt;
use std::io::{self, Read};

/// Top-level keys whose array value holds the records.
pub const WRAPPER_KEYS: [&str; 4] = ["Records", "Events", "findings", "Findings"];

const CHUNK: usize = 1 << 20;

/// Where a record sits in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// For array elements: the wrapper key (empty for a bare array) and the 0-based index.
    pub element: Option<(String, u64)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.element {
            Some((key, i)) => write!(f, "{key}[{i}] (line {})", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

/// What the record callback says about a slice it was offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The slice was handled (decoded, or reported as a bad record).
    Done,
    /// Only for `line_hint` slices: the line is not exactly one complete JSON value (a
    /// pretty-printed record, or two values on a line); frame it by structure instead.
    Rescan,
    /// The slice is not valid JSON; the sink has reported it. For a record framed across
    /// lines of what may be JSON Lines, the framer starts again at the next line, so one
    /// damaged line costs that line only.
    Invalid,
}

/// A problem that stops framing part or all of a file; records before it were delivered.
#[derive(Debug)]
pub enum FrameError {
    /// The content does not start like JSON at all (CSV, text, binary…).
    NotJson { start: String },
    /// Invalid JSON structure; what follows `at` in the same document is lost.
    Invalid { at: Location, reason: String },
    /// Reading failed (I/O error, truncated or corrupt gzip).
    Read { at: Location, error: io::Error },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NotJson { start } => {
                write!(
                    f,
                    "not a record file: content is not JSON (starts with {start:?})"
                )
            }
            FrameError::Invalid { at, reason } => write!(f, "{at}: invalid JSON: {reason}"),
            FrameError::Read { at, error } => {
                write!(
                    f,
                    "{at}: reading failed: {error} (input truncated or corrupt)"
                )
            }
        }
    }
}

/// Receives what the framer finds.
pub trait FrameSink {
    /// One record's bytes. `line_hint` is true when the slice is a whole line offered on the
    /// JSON Lines fast path: the sink answers [`Verdict::Rescan`] if it is not one complete
    /// value.
    fn record(&mut self, bytes: &[u8], location: &Location, line_hint: bool) -> Verdict;
    /// A recoverable framing problem: reported, then framing goes on at the next line.
    fn problem(&mut self, location: Location, reason: String);
}

/// What framing one stream took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Bytes read.
    pub bytes: u64,
    /// Bytes looked at: searched, scanned, moved within the buffer, or offered to the sink.
    /// Framing is linear: this stays within a small multiple of `bytes` whatever the layout
    /// or the damage (tests and the fuzz harness check it).
    pub examined: u64,
    /// Top-level values met (records, documents, damaged lines); 0 for a stream of only
    /// white space and byte order marks.
    pub values: u64,
}

/// Frames `reader` and hands every record to `sink`.
///
/// A top-level value that is not a JSON object or array (garbage in a JSON Lines file) is
/// reported to the sink and skipped to the next line.
///
/// # Errors
/// With the stats, [`FrameError`] when the stream is not JSON at all, when a document's
/// structure breaks beyond repair (the rest of that document cannot be framed), or when
/// reading fails.
pub fn frame<R: Read>(
    reader: R,
    max_record: usize,
    sink: &mut dyn FrameSink,
) -> (FrameStats, Result<(), FrameError>) {
    frame_from(reader, max_record, false, sink)
}

/// [`frame`], told whether the input is already known to be JSON Lines: a part of a file
/// that starts at a line after one whole value (see [`crate::sources::file`]) is framed as
/// the rest of the file would have been, each line on its own.
pub fn frame_from<R: Read>(
    reader: R,
    max_record: usize,
    json_lines: bool,
    sink: &mut dyn FrameSink,
) -> (FrameStats, Result<(), FrameError>) {
    let mut f = Framer {
        reader,
        buf: Vec::new(),
        end: 0,
        pending_error: None,
        json_lines,
        pos: 0,
        eof: false,
        line: 1,
        total: 0,
        max_record,
        examined: 0,
        values: 0,
        last_end_line: 0,
        resynced: false,
        record_key: None,
    };
    let result = f.run(sink);
    let stats = FrameStats {
        bytes: f.total,
        examined: f.examined,
        values: f.values,
    };
    (stats, result)
}

/// Longest first key looked for when resynchronising.
const MAX_KEY: usize = 64;

struct Framer<R> {
    reader: R,
    /// Bytes `pos..end` are read and not yet consumed; the rest is spare room.
    buf: Vec<u8>,
    end: usize,
    /// A read error met after some bytes of the same read were delivered; returned by the
    /// next `fill`, so the records before a cut are still framed.
    pending_error: Option<io::Error>,
    /// Set once a record was framed as one whole line: the input is JSON Lines.
    json_lines: bool,
    pos: usize,
    eof: bool,
    line: u64,
    total: u64,
    max_record: usize,
    examined: u64,
    values: u64,
    /// The line on which the last record framed by its structure ended (0: none yet). A
    /// record starting on that line is not a line of JSON Lines.
    last_end_line: u64,
    /// Framing went on at a record found by its first key after a damaged one: a guess,
    /// since the key may also open an object inside the damaged record.
    resynced: bool,
    /// The first key of the first top-level record framed by its structure: where records
    /// concatenated without separators are picked up again after a damaged one.
    record_key: Option<Vec<u8>>,
}

enum Scan {
    /// Exclusive end offset, relative to the value start.
    End(usize),
    NeedMore,
    Invalid(String),
}

/// Resumable structural scan of one JSON value.
#[derive(Default)]
struct ScanState {
    stack: Vec<u8>,
    in_string: bool,
    scanned: usize,
    started: bool,
}

impl ScanState {
    fn scan(&mut self, v: &[u8]) -> Scan {
        let mut i = self.scanned;
        if !self.started {
            self.started = true;
            match v.first() {
                Some(b'{') => self.stack.push(b'}'),
                Some(b'[') => self.stack.push(b']'),
                Some(b'"') => self.in_string = true,
                Some(_) => return self.scan_scalar(v),
                None => return Scan::NeedMore,
            }
            i = 1;
        }
        loop {
            if self.in_string {
                // A raw line break cannot be inside a JSON string: the value was cut.
                match memchr::memchr3(b'"', b'\\', b'\n', &v[i..]) {
                    None => {
                        self.scanned = v.len();
                        return Scan::NeedMore;
                    }
                    Some(off) => {
                        let at = i + off;
                        if v[at] == b'\n' {
                            return Scan::Invalid(
                                "line break inside a string (the value is cut short)".into(),
                            );
                        }
                        if v[at] == b'\\' {
                            if at + 1 >= v.len() {
                                self.scanned = at;
                                return Scan::NeedMore;
                            }
                            i = at + 2;
                            continue;
                        }
                        self.in_string = false;
                        i = at + 1;
                        if self.stack.is_empty() {
                            return Scan::End(i);
                        }
                    }
                }
            }
            while i < v.len() {
                let c = v[i];
                i += 1;
                match c {
                    b'"' => {
                        self.in_string = true;
                        break;
                    }
                    b'{' => self.stack.push(b'}'),
                    b'[' => self.stack.push(b']'),
                    b'}' | b']' => {
                        if self.stack.pop() != Some(c) {
                            return Scan::Invalid(format!(
                                "unexpected `{}` at byte {}",
                                c as char,
                                i - 1
                            ));
                        }
                        if self.stack.is_empty() {
                            return Scan::End(i);
                        }
                    }
                    _ => {}
                }
            }
            if !self.in_string {
                self.scanned = i;
                return Scan::NeedMore;
            }
        }
    }

    fn scan_scalar(&mut self, v: &[u8]) -> Scan {
        match v
            .iter()
            .position(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}'))
        {
            Some(end) => Scan::End(end),
            None => Scan::NeedMore,
        }
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl<R: Read> Framer<R> {
    fn loc(&self, element: Option<(&str, u64)>) -> Location {
        Location {
            line: self.line,
            element: element.map(|(k, i)| (k.to_string(), i)),
        }
    }

    /// Reads more input; keeps `self.buf[self.pos..self.end]`. Returns false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.examined += (self.end - self.pos) as u64;
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let len = self.end;
        // Small inputs (a rule test, one EventBridge event) need no 1 MiB buffer.
        let want = if self.total == 0 {
            64 << 10
        } else {
            CHUNK.max(len)
        };
        if self.end < len + want {
            // Zeroed once when the buffer grows, not on every read.
            self.buf.resize(len + want, 0);
        }
        let mut filled = len;
        // Read until the chunk is reasonably full so small reads (gzip) do not cause
        // many rescans.
        while filled < len + want {
            match self.reader.read(&mut self.buf[filled..len + want]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    if filled - len >= CHUNK / 2 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end = filled;
                    if filled > len {
                        self.total += (filled - len) as u64;
                        self.pending_error = Some(e);
                        return Ok(true);
                    }
                    return Err(e);
                }
            }
        }
        self.end = filled;
        self.total += (filled - len) as u64;
        Ok(filled > len)
    }

    fn read_err(&self, element: Option<(&str, u64)>, error: io::Error) -> FrameError {
        FrameError::Read {
            at: self.loc(element),
            error,
        }
    }

    /// Skips white space, counting lines. Returns the next byte, or None at end of input.
    fn skip_ws(&mut self, element: Option<(&str, u64)>) -> Result<Option<u8>, FrameError> {
        loop {
            while self.pos < self.end {
                let c = self.buf[self.pos];
                if !is_ws(c) {
                    return Ok(Some(c));
                }
                if c == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
                self.examined += 1;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(self.read_err(element, e)),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.examined += n as u64;
        let end = self.pos + n;
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.pos..end]).count() as u64;
        self.pos = end;
    }

    /// Frames one value starting at `self.pos`; returns its length.
    fn take_value(&mut self, element: Option<(&str, u64)>) -> Result<usize, FrameError> {
        let mut st = ScanState::default();
        loop {
            let before = st.scanned;
            let scan = st.scan(&self.buf[self.pos..self.end]);
            self.examined += match scan {
                Scan::End(n) => n.saturating_sub(before),
                _ => (self.end - self.pos).saturating_sub(before),
            } as u64;
            match scan {
                Scan::End(n) => return Ok(n),
                Scan::Invalid(reason) => {
                    return Err(FrameError::Invalid {
                        at: self.loc(element),
                        reason,
                    });
                }
                Scan::NeedMore => {
                    if self.end - self.pos > self.max_record {
                        return Err(FrameError::Invalid {
                            at: self.loc(element),
                            reason: format!(
                                "record larger than {} MiB",
                                self.max_record / (1 << 20)
                            ),
                        });
                    }
                    match self.fill() {
                        Ok(true) => {}
                        Ok(false) => {
                            return Err(FrameError::Invalid {
                                at: self.loc(element),
                                reason: "unexpected end of input inside a value".into(),
                            });
                        }
                        Err(e) => return Err(self.read_err(element, e)),
                    }
                }
            }
        }
    }

    /// Skips to the start of the next line (used to resynchronise after a bad line).
    fn skip_line(&mut self) -> Result<(), FrameError> {
        loop {
            if let Some(off) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                self.examined += off as u64 + 1;
                self.pos += off + 1;
                self.line += 1;
                return Ok(());
            }
            self.examined += (self.end - self.pos) as u64;
            self.pos = self.end;
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.read_err(None, e)),
            }
        }
    }

    /// Buffers at least `n` bytes after `pos` if it can: fewer when the input ends or fails
    /// first. A peek: a read error is kept for the next read that needs the bytes, so what
    /// is buffered (a record whose line ended before a cut) is still framed first.
    fn lookahead(&mut self, n: usize) -> Result<(), FrameError> {
        while self.end - self.pos < n {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.pending_error = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }

    /// The length of the line at `pos + from` (without its newline), buffering it whole
    /// unless it is longer than a record may be; None when nothing is left.
    fn line_len(&mut self, from: usize) -> Result<Option<usize>, FrameError> {
        let mut searched = 0;
        loop {
            let start = self.pos + from;
            if start >= self.end && self.eof {
                return Ok(None);
            }
            if start < self.end
                && let Some(off) = memchr::memchr(b'\n', &self.buf[start + searched..self.end])
            {
                self.examined += off as u64 + 1;
                return Ok(Some(searched + off));
            }
            searched = self.end.saturating_sub(start);
            self.examined += searched as u64;
            if self.eof || searched > self.max_record {
                return Ok(Some(searched));
            }
            if let Err(e) = self.fill() {
                return Err(self.read_err(None, e));
            }
        }
    }

    /// Whether the line at `pos` is one complete JSON value.
    fn line_is_json(&mut self) -> Result<bool, FrameError> {
        let n = self.line_len(0)?.unwrap_or(0);
        self.examined += n as u64;
        let line = &self.buf[self.pos..self.pos + n];
        Ok(serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok())
    }

    /// Whether one of the next few lines after the current one (the current one too, unless
    /// `skip_current`) is a complete JSON object on its own, however long: then content that
    /// does not start like JSON is JSON Lines with a damaged first line, not some other kind
    /// of file. With `at_margin`, the object must start at the line's first column, as JSON
    /// Lines records do (and the indented elements of a pretty-printed array do not).
    fn json_lines_follow(
        &mut self,
        skip_current: bool,
        at_margin: bool,
    ) -> Result<bool, FrameError> {
        const LINES: usize = 8;
        let mut from = 0;
        if skip_current {
            match self.line_len(0)? {
                Some(n) => from = n + 1,
                None => return Ok(false),
            }
        }
        for _ in 0..LINES {
            if from > self.max_record {
                break;
            }
            let Some(n) = self.line_len(from)? else {
                break;
            };
            let line = &self.buf[self.pos + from..self.pos + from + n];
            let t = if at_margin { line } else { line.trim_ascii() };
            self.examined += n as u64;
            if t.starts_with(b"{") && serde_json::from_slice::<serde::de::IgnoredAny>(t).is_ok() {
                return Ok(true);
            }
            from += n + 1;
        }
        Ok(false)
    }

    /// The first key of the object at `pos` (at most [`MAX_KEY`] bytes, looked for within
    /// the buffered bytes).
    fn object_key(&self) -> Option<&[u8]> {
        let b = &self.buf[self.pos..self.end.min(self.pos + 2 * MAX_KEY)];
        if b.first() != Some(&b'{') {
            return None;
        }
        let q = 1 + b[1..].iter().position(|&c| !is_ws(c))?;
        if b[q] != b'"' {
            return None;
        }
        let len = memchr::memchr2(b'"', b'\\', &b[q + 1..])?;
        (b[q + 1 + len] == b'"' && len <= MAX_KEY).then(|| &b[q + 1..q + 1 + len])
    }

    /// Skips the damaged value at `pos` to the next `{` that follows `sep` (white space
    /// between; any byte when None) and opens with the first key `key` (any key when None), or
    /// between records (`sep` None or `}`) to the next `{` that starts a line:
    /// the next element of an array (`,`) or the next of records concatenated without
    /// separators (after a record cut short, any byte). Returns
    /// false when the input ends first. Bytes passed over are dropped as the search goes, so
    /// a damaged stretch of any length needs no more memory than a chunk.
    fn resync(&mut self, sep: Option<u8>, key: Option<&[u8]>) -> Result<bool, FrameError> {
        // Bytes kept before the search point, so the separator before a `{` is still seen.
        const KEEP: usize = 256;
        let mut from = self.pos + 1;
        loop {
            if from < self.end
                && let Some(off) = memchr::memchr(b'{', &self.buf[from..self.end])
            {
                let q = from + off;
                self.examined += off as u64 + 1;
                let mut k = q;
                while sep.is_some() && k > self.pos && is_ws(self.buf[k - 1]) {
                    k -= 1;
                    self.examined += 1;
                }
                // Between records (no separator, or `}`), an object at the start of a line
                // starts the next record whatever its first key: a line of JSON Lines after
                // the damage (nested objects of pretty-printed records are indented).
                let at_margin = sep.is_none_or(|sep| sep == b'}') && self.buf[q - 1] == b'\n';
                let after_sep =
                    at_margin || sep.is_none_or(|sep| k > self.pos && self.buf[k - 1] == sep);
                self.advance_uncounted(q - self.pos);
                if after_sep {
                    self.lookahead(2 * MAX_KEY)?;
                    let found = match (self.object_key(), key) {
                        (Some(k), Some(want)) => k == want || at_margin,
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if found {
                        return Ok(true);
                    }
                }
                from = self.pos + 1;
                continue;
            }
            self.examined += self.end.saturating_sub(from) as u64;
            let keep_from = self.end.saturating_sub(KEEP).max(self.pos);
            self.advance_uncounted(keep_from - self.pos);
            from = self.end.max(self.pos + 1);
            let rel = from - self.pos;
            match self.fill() {
                Ok(true) => from = self.pos + rel,
                Ok(false) => {
                    self.advance_uncounted(self.end - self.pos);
                    return Ok(false);
                }
                Err(e) => return Err(self.read_err(None, e)),
            }
        }
    }

    /// Moves `pos` over bytes already counted as examined, counting lines.
    fn advance_uncounted(&mut self, n: usize) {
        let end = self.pos + n;
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.pos..end]).count() as u64;
        self.pos = end;
    }

    /// If the object at `pos` opens with a wrapper key whose value is an array, returns the
    /// key and the offset of the `[`.
    fn wrapper_at(&self) -> Option<(&'static str, usize)> {
        let b = &self.buf[self.pos..self.end];
        let mut i = 1;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        let key_start = i + 1;
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end =
            key_start + memchr::memchr(b'"', b.get(key_start..b.len().min(key_start + MAX_KEY))?)?;
        let key = WRAPPER_KEYS
            .into_iter()
            .find(|k| k.as_bytes() == &b[key_start..key_end])?;
        let mut j = key_end + 1;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        if b.get(j) != Some(&b':') {
            return None;
        }
        j += 1;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        (b.get(j) == Some(&b'[')).then_some((key, j))
    }

    fn run(&mut self, sink: &mut dyn FrameSink) -> Result<(), FrameError> {
        let mut first = true;
        // The line on which a top-level array just ended.
        let mut array_end: Option<u64> = None;
        loop {
            let Some(c) = self.skip_ws(None)? else {
                return Ok(());
            };
            if first {
                first = false;
                // A UTF-8 byte order mark.
                if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                    first = true;
                    continue;
                }
                if c != b'{' && c != b'[' && self.json_lines_follow(true, false)? {
                    // JSON Lines whose first line is damaged: that line is the problem.
                    self.values += 1;
                    let at = self.loc(None);
                    sink.problem(
                        at,
                        "not a JSON object or array (expected one record per line)".into(),
                    );
                    self.skip_line()?;
                    continue;
                }
                if c != b'{' && c != b'[' {
                    self.lookahead(40)?;
                    let end = (self.pos + 40).min(self.end);
                    let start = String::from_utf8_lossy(&self.buf[self.pos..end])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    return Err(FrameError::NotJson { start });
                }
            }
            self.values += 1;
            match c {
                b'[' if self.json_lines && !self.line_is_json()? => {
                    // In JSON Lines, a damaged line that happens to start with `[` is that
                    // line's problem, not the start of an array running to the end of file.
                    let at = self.loc(None);
                    sink.problem(
                        at,
                        "line is not valid JSON (expected one record per line)".into(),
                    );
                    self.skip_line()?;
                }
                b'[' if self.line == self.last_end_line
                    && self.json_lines_follow(true, true)? =>
                {
                    // `[` after a value on the same line, with records on lines of their own
                    // after it: a damaged line of JSON Lines (`{}[`), not an array document
                    // running to the end of the file.
                    let at = self.loc(None);
                    sink.problem(
                        at,
                        "line is not valid JSON (expected one record per line)".into(),
                    );
                    self.skip_line()?;
                    self.json_lines = true;
                }
                b'[' => {
                    // The first line of what may be JSON Lines: an array that breaks on it
                    // may be a damaged line before lines of records.
                    let lines_fallback = (self.values == 1).then_some(self.line);
                    let at = self.loc(None);
                    self.advance(1);
                    if self.values > 1 && self.skip_ws(None)? == Some(b']') {
                        // `[]` among records (a damaged line of JSON Lines): no record, said.
                        sink.problem(at, "an empty array among records: no record".into());
                    }
                    self.elements("", lines_fallback, sink)?;
                    array_end = Some(self.line);
                    continue;
                }
                b',' if array_end == Some(self.line) => {
                    // Damage to an element (a lost `[`) closed the array early: what follows
                    // are its next elements.
                    let at = self.loc(None);
                    sink.problem(
                        at,
                        "`,` after the end of the array: a damaged element closed it early; reading on as its elements".into(),
                    );
                    self.advance(1);
                    self.elements("", None, sink)?;
                    continue;
                }
                b'{' => {
                    self.lookahead(256)?;
                    if let Some((key, open)) = self.wrapper_at() {
                        self.advance(open + 1);
                        self.elements(key, None, sink)?;
                        self.rest_of_wrapper(key, sink)?;
                    } else {
                        self.top_record(sink)?;
                    }
                }
                _ => {
                    let at = self.loc(None);
                    sink.problem(
                        at,
                        "not a JSON object or array (expected one record per line)".into(),
                    );
                    let line_ends = memchr::memchr(b'\n', &self.buf[self.pos..self.end]).is_some();
                    let mid_line = self.line == self.last_end_line || array_end == Some(self.line);
                    if mid_line && self.record_key.is_some() && !line_ends {
                        // Among records concatenated on one line (or after an array that damage
                        // closed early), the rest of the line is the next records: go on at
                        // the next one.
                        let key = self.record_key.clone();
                        self.resync(None, key.as_deref())?;
                        self.last_end_line = self.line;
                    } else {
                        self.skip_line()?;
                    }
                }
            }
        }
    }

    /// A top-level object that is a record: try the line fast path, then the structure.
    fn top_record(&mut self, sink: &mut dyn FrameSink) -> Result<(), FrameError> {
        let loc = self.loc(None);
        // A record starting on the line where the previous one ended (records concatenated
        // without separators, as Firehose writes them) is no line of JSON Lines: looking for
        // the end of that line at every record would make framing quadratic.
        let mid_line = self.line == self.last_end_line;
        let mut first_line_len = 0;
        // Whether the record's first line runs to the end of what could be buffered.
        let mut no_newline = mid_line;
        // Bytes after `pos` known to hold no newline: each byte is searched once.
        let mut searched = 0;
        loop {
            if mid_line {
                break;
            }
            if let Some(off) = memchr::memchr(b'\n', &self.buf[self.pos + searched..self.end]) {
                let off = searched + off;
                self.examined += (off - searched + 1 + off) as u64;
                let slice = &self.buf[self.pos..self.pos + off];
                match sink.record(slice, &loc, !self.json_lines) {
                    Verdict::Rescan => {
                        first_line_len = off;
                        break;
                    }
                    // In JSON Lines a line that is not one value is that line's problem
                    // (the sink reported it); the next line is the next record.
                    Verdict::Done | Verdict::Invalid => {
                        self.json_lines = true;
                        self.pos += off + 1;
                        self.line += 1;
                        return Ok(());
                    }
                }
            }
            self.examined += (self.end - self.pos - searched) as u64;
            searched = self.end - self.pos;
            if self.eof {
                // The last line of a file without a trailing newline: framed by its
                // structure, since it may hold records concatenated without separators, a
                // damaged one among them. (After a read error the partial line is the cut
                // record: `fill` reports the error instead.)
                first_line_len = self.end - self.pos;
                no_newline = true;
                break;
            }
            if self.end - self.pos > self.max_record {
                first_line_len = self.end - self.pos;
                no_newline = true;
                break;
            }
            if let Err(e) = self.fill() {
                return Err(self.read_err(None, e));
            }
        }
        // Not one value on one line: a pretty-printed record, a cut one, or one of records
        // concatenated on one line. Frame it by its structure; if that fails, report it and
        // go on at the next line (or, on one long line, at the next record).
        let start_line = self.line;
        let key = self.object_key().map(<[u8]>::to_vec);
        // On one long line (records concatenated without separators), the next record is
        // found by its first key, not at the next line; so it is when no line after the
        // damage starts a value (the damage was a line break inside one of such records).
        let by_key =
            |f: &Self| no_newline || f.next_line_start(first_line_len, start_line).is_none();
        match self.take_value(None) {
            Ok(n) => {
                self.examined += n as u64;
                let verdict = sink.record(&self.buf[self.pos..self.pos + n], &loc, false);
                if verdict == Verdict::Invalid && !by_key(self) && n > first_line_len {
                    self.resync_after(first_line_len, start_line);
                } else if verdict == Verdict::Invalid && by_key(self) && !self.is_one_value(n) {
                    // Its brackets balance but it is not JSON (a lost quote turns strings
                    // inside out): its end is not to be trusted, the next record is.
                    let key = self.record_key.clone().or(key);
                    let sep = if key.is_some() { None } else { Some(b'}') };
                    self.resync(sep, key.as_deref())?;
                    self.last_end_line = self.line;
                } else {
                    self.advance(n);
                    self.last_end_line = self.line;
                    self.resynced = false;
                    if self.record_key.is_none() {
                        self.record_key = key;
                    }
                }
                Ok(())
            }
            Err(FrameError::Invalid { reason, .. }) if by_key(self) => {
                let key = self.record_key.clone().or(key);
                // A record cut short may run straight into the next one: with a key to
                // recognise records by, any byte may come before it.
                let sep = if key.is_some() { None } else { Some(b'}') };
                let found = self.resync(sep, key.as_deref())?;
                // What a guessed record start leads to, when it is cut short with nothing after
                // it, is the rest of the damaged record already reported (the key opened an
                // object inside it), not a second problem.
                if found || !self.resynced {
                    sink.problem(
                        loc,
                        format!(
                            "record is cut short or not valid JSON: {reason}; {}",
                            if found {
                                "going on at the next record"
                            } else {
                                "no record follows it"
                            }
                        ),
                    );
                }
                self.resynced = found;
                self.last_end_line = self.line;
                Ok(())
            }
            Err(FrameError::Invalid { reason, .. }) => {
                sink.problem(
                    loc,
                    format!(
                        "record is cut short or not valid JSON: {reason}; going on at the next line"
                    ),
                );
                self.resync_after(first_line_len, start_line);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Continues after the first line of the broken record at `pos`, at the next line that
    /// starts an object at its first column: the next record of JSON Lines. Lines
    /// in between (the indented rest of a cut pretty-printed record) are part of the broken
    /// record, already reported.
    fn resync_after(&mut self, first_line_len: usize, start_line: u64) {
        let (at, line) = self
            .next_line_start(first_line_len, start_line)
            .unwrap_or((self.end, start_line + 1));
        self.examined += (at - self.pos) as u64;
        self.pos = at;
        self.line = line;
    }

    /// Where [`Self::resync_after`] goes on, and that line's number, if that is within the
    /// buffered bytes.
    fn next_line_start(&self, first_line_len: usize, start_line: u64) -> Option<(usize, u64)> {
        let mut at = (self.pos + first_line_len + 1).min(self.end);
        let mut line = start_line + 1;
        while at < self.end && self.buf[at] != b'{' {
            let off = memchr::memchr(b'\n', &self.buf[at..self.end])?;
            at += off + 1;
            line += 1;
        }
        (at < self.end).then_some((at, line))
    }

    /// Whether the `n` bytes at `pos` are one valid JSON value: a record the sink could not
    /// read for another reason (its shape, its text) whose end is then to be trusted, so
    /// framing goes on right after it instead of searching for the next record. Only asked of
    /// records the sink refused, so it costs nothing on good input.
    fn is_one_value(&self, n: usize) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.buf[self.pos..self.pos + n]).is_ok()
    }

    /// Frames the elements of an array whose `[` was just consumed, through the closing `]`.
    ///
    /// A damaged element is reported and framing goes on at the next element that opens with
    /// the same first key as the array's records. `lines_fallback`: the line of a top-level
    /// `[` that may be the damaged first line of JSON Lines; when the array breaks on that
    /// line and complete records follow on lines of their own, the line is reported and the
    /// rest is read as JSON Lines.
    fn elements(
        &mut self,
        key: &str,
        lines_fallback: Option<u64>,
        sink: &mut dyn FrameSink,
    ) -> Result<(), FrameError> {
        let mut index = 0u64;
        // The first key of the array's records, from the first element framed whole.
        let mut first_key: Option<Vec<u8>> = None;
        // The line the last element started on.
        let mut last_start;
        loop {
            let el = Some((key, index));
            match self.skip_ws(el)? {
                None => {
                    return Err(FrameError::Invalid {
                        at: self.loc(el),
                        reason: "unexpected end of input inside an array".into(),
                    });
                }
                Some(b']') if index == 0 => {
                    self.advance(1);
                    return Ok(());
                }
                Some(_) => {}
            }
            let loc = self.loc(el);
            last_start = loc.line;
            let own_key = self.object_key().map(<[u8]>::to_vec);
            let n = match self.take_value(el) {
                Ok(n) => n,
                Err(FrameError::Invalid { at, reason }) => {
                    if self.lines_instead(lines_fallback, last_start, sink)? {
                        return Ok(());
                    }
                    let want = first_key.clone().or(own_key);
                    if !self.resync(Some(b','), want.as_deref())? {
                        return Err(FrameError::Invalid { at, reason });
                    }
                    sink.problem(
                        at,
                        format!("invalid JSON: {reason}; going on at the next element"),
                    );
                    index += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.examined += n as u64;
            let verdict = sink.record(&self.buf[self.pos..self.pos + n], &loc, false);
            if verdict == Verdict::Invalid && !self.is_one_value(n) {
                // Its brackets balance but it is not JSON (a lost quote turns strings inside
                // out, and the brackets counted may be the next element's): its end is not to
                // be trusted, the next element is. The sink reported it.
                let want = first_key.clone().or(own_key);
                if !self.resync(Some(b','), want.as_deref())? {
                    return Err(FrameError::Invalid {
                        at: loc,
                        reason: "no element follows the damaged one".into(),
                    });
                }
                index += 1;
                continue;
            }
            if first_key.is_none() && verdict != Verdict::Invalid {
                first_key = own_key;
                if self.record_key.is_none() {
                    self.record_key.clone_from(&first_key);
                }
            }
            self.advance(n);
            index += 1;
            let el = Some((key, index - 1));
            match self.skip_ws(el)? {
                Some(b',') => self.advance(1),
                Some(b']') => {
                    self.advance(1);
                    return Ok(());
                }
                Some(c) => {
                    if self.lines_instead(lines_fallback, last_start, sink)? {
                        return Ok(());
                    }
                    let at = self.loc(el);
                    let reason = format!(
                        "expected `,` or `]` after an element, found `{}`",
                        c as char
                    );
                    // A missing `,` between two records: the next one is still whole.
                    if c == b'{'
                        && first_key.is_some()
                        && self.object_key().map(<[u8]>::to_vec) == first_key
                    {
                        sink.problem(at, format!("invalid JSON: {reason}"));
                        continue;
                    }
                    if !self.resync(Some(b','), first_key.as_deref())? {
                        return Err(FrameError::Invalid { at, reason });
                    }
                    sink.problem(
                        at,
                        format!("invalid JSON: {reason}; going on at the next element"),
                    );
                }
                None => {
                    return Err(FrameError::Invalid {
                        at: self.loc(el),
                        reason: "unexpected end of input inside an array".into(),
                    });
                }
            }
        }
    }

    /// For an array that broke while it had not framed an element past its first line (see
    /// `lines_fallback` of [`Self::elements`]): when complete records follow on lines of their
    /// own, reports the first line and goes on reading JSON Lines at the next line.
    fn lines_instead(
        &mut self,
        lines_fallback: Option<u64>,
        last_start: u64,
        sink: &mut dyn FrameSink,
    ) -> Result<bool, FrameError> {
        let Some(first) = lines_fallback else {
            return Ok(false);
        };
        let on_first_line = self.line == first;
        if last_start != first || !self.json_lines_follow(on_first_line, true)? {
            return Ok(false);
        }
        sink.problem(
            Location {
                line: first,
                element: None,
            },
            "line is not valid JSON (expected one record per line)".into(),
        );
        if on_first_line {
            self.skip_line()?;
        }
        self.json_lines = true;
        Ok(true)
    }

    /// After a wrapper array: the other members of the wrapper object (`NextToken`…), which
    /// may hold further wrapper arrays, through the closing `}`.
    fn rest_of_wrapper(
        &mut self,
        mut key: &'static str,
        sink: &mut dyn FrameSink,
    ) -> Result<(), FrameError> {
        loop {
            match self.skip_ws(None)? {
                Some(b'}') => {
                    self.advance(1);
                    return Ok(());
                }
                Some(b',') => self.advance(1),
                Some(c) => {
                    return Err(FrameError::Invalid {
                        at: self.loc(None),
                        reason: format!(
                            "expected `,` or `}}` in the wrapper object, found `{}`",
                            c as char
                        ),
                    });
                }
                None => {
                    return Err(FrameError::Invalid {
                        at: self.loc(None),
                        reason: "unexpected end of input inside the wrapper object".into(),
                    });
                }
            }
            let next = self.skip_ws(None)?;
            if next == Some(b'{') {
                // Damage to an element (a lost `[`) closed the records' array early: what
                // follows are its next elements.
                let at = self.loc(None);
                sink.problem(
                    at,
                    format!("an object where a member name was expected: a damaged element closed `{key}` early; reading on as its elements"),
                );
                self.elements(key, None, sink)?;
                continue;
            }
            if next != Some(b'"') {
                return Err(FrameError::Invalid {
                    at: self.loc(None),
                    reason: "expected a member name in the wrapper object".into(),
                });
            }
            let n = self.take_value(None)?;
            let name =
                String::from_utf8_lossy(&self.buf[self.pos + 1..self.pos + n - 1]).into_owned();
            self.advance(n);
            if self.skip_ws(None)? != Some(b':') {
                return Err(FrameError::Invalid {
                    at: self.loc(None),
                    reason: format!("expected `:` after member `{name}`"),
                });
            }
            self.advance(1);
            let next = self.skip_ws(None)?;
            if next == Some(b'[')
                && let Some(k) = WRAPPER_KEYS.into_iter().find(|k| *k == name)
            {
                self.advance(1);
                self.elements(k, None, sink)?;
                key = k;
                continue;
            }
            let n = self.take_value(None)?;
            self.advance(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` and returns (record text, location) pairs, problems, and the error.
    fn run(input: &[u8]) -> (Vec<(String, String)>, Vec<String>, Option<String>) {
        run_chunked(input, usize::MAX)
    }

    /// A reader that returns at most `n` bytes per read, to exercise refills mid-record.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(out.len()).min(self.1);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn run_chunked(
        input: &[u8],
        chunk: usize,
    ) -> (Vec<(String, String)>, Vec<String>, Option<String>) {
        #[derive(Default)]
        struct Collect(Vec<(String, String)>, Vec<String>);
        impl FrameSink for Collect {
            fn record(&mut self, b: &[u8], loc: &Location, hint: bool) -> Verdict {
                if hint && serde_json::from_slice::<serde_json::Value>(b).is_err() {
                    return Verdict::Rescan;
                }
                self.0
                    .push((String::from_utf8_lossy(b).to_string(), loc.to_string()));
                Verdict::Done
            }
            fn problem(&mut self, loc: Location, msg: String) {
                self.1.push(format!("{loc}: {msg}"));
            }
        }
        let mut c = Collect::default();
        let (_, res) = frame(Trickle(input, chunk), 1 << 20, &mut c);
        (c.0, c.1, res.err().map(|e| e.to_string()))
    }

    #[test]
    fn json_lines() {
        let (r, p, e) = run(b"{\"a\":1}\n{\"b\":\"x}\\\"\"}\n\n{\"c\":[1,{}]}");
        assert_eq!(
            r,
            vec![
                ("{\"a\":1}".into(), "line 1".into()),
                ("{\"b\":\"x}\\\"\"}".into(), "line 2".into()),
                ("{\"c\":[1,{}]}".into(), "line 4".into()),
            ]
        );
        assert!(p.is_empty() && e.is_none());
    }

    #[test]
    fn wrapper_documents_pretty_and_compact() {
        let doc = b"{\n  \"Records\": [\n    {\"a\": 1},\n    {\"b\": [2]}\n  ],\n  \"NextToken\": \"x\"\n}\n";
        let (r, p, e) = run(doc);
        assert_eq!(
            r,
            vec![
                ("{\"a\": 1}".into(), "Records[0] (line 3)".into()),
                ("{\"b\": [2]}".into(), "Records[1] (line 4)".into()),
            ]
        );
        assert!(p.is_empty() && e.is_none(), "{p:?} {e:?}");
        // A wrapper key that is not first, as in `{"NextToken":…,"Events":[…]}`: framed as one
        // value; the decoder reads the elements from it.
        let doc = "{\"NextToken\":\"t\",\"Events\":[{\"x\":1}]}";
        let (r, _, e) = run(doc.as_bytes());
        assert_eq!(r, vec![(doc.into(), "line 1".into())]);
        assert!(e.is_none());
    }

    #[test]
    fn bare_arrays_and_pretty_records() {
        let (r, _, e) = run(b"[ {\"a\":1} , {\"b\":2} ]");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].1, "[1] (line 1)");
        assert!(e.is_none());
        let (r, _, e) = run(b"{\n \"a\": 1,\n \"b\": {\"c\": 2}\n}\n{\"d\":3}\n");
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[1], ("{\"d\":3}".into(), "line 5".into()));
        assert!(e.is_none());
        let (r, _, e) = run(b"[]");
        assert!(r.is_empty() && e.is_none());
    }

    #[test]
    fn refills_in_the_middle_of_records_do_not_change_the_result() {
        let doc = br#"{"Records":[{"k":"v\"\\","n":[1,2,{"x":"]}"}]},{"k":2}]}
{"eventName":"x"}
[{"a":1}]"#;
        let whole = run(doc);
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(run_chunked(doc, chunk), whole, "chunk size {chunk}");
        }
        assert_eq!(whole.0.len(), 4);
    }

    #[test]
    fn bad_input() {
        let (_, _, e) = run(b"technique,eventID\nfoo,bar\n");
        assert_eq!(
            e.as_deref(),
            Some("not a record file: content is not JSON (starts with \"technique,eventID\")")
        );
        // Garbage line inside JSON Lines: reported, the next line still framed.
        let (r, p, e) = run(b"{\"a\":1}\nnot json\n{\"b\":2}\n");
        assert_eq!(r.len(), 2);
        assert_eq!(
            p,
            vec!["line 2: not a JSON object or array (expected one record per line)"]
        );
        assert!(e.is_none());
        // A truncated document: the records before the cut are delivered.
        let (r, _, e) = run(b"{\"Records\":[{\"a\":1},{\"b\":");
        assert_eq!(r.len(), 1);
        assert_eq!(
            e.as_deref(),
            Some("Records[1] (line 1): invalid JSON: unexpected end of input inside a value")
        );
        let (_, _, e) = run(b"[{\"a\":1]");
        assert!(e.unwrap().contains("unexpected `]`"));
    }
}

#[cfg(test)]
mod issue_12 {
    use super::*;

    /// Counts records and problems; a line offered on the fast path that is not one value is
    /// sent back for rescanning, as the decoder does.
    #[derive(Default)]
    struct Count {
        records: Vec<String>,
        problems: Vec<String>,
    }
    impl FrameSink for Count {
        fn record(&mut self, b: &[u8], loc: &Location, hint: bool) -> Verdict {
            match serde_json::from_slice::<serde_json::Value>(b) {
                Err(_) if hint => Verdict::Rescan,
                Err(_) => {
                    self.problems.push(format!("{loc}: bad record"));
                    Verdict::Invalid
                }
                Ok(v) => {
                    self.records.push(v["n"].to_string());
                    Verdict::Done
                }
            }
        }
        fn problem(&mut self, loc: Location, msg: String) {
            self.problems.push(format!("{loc}: {msg}"));
        }
    }

    fn record(n: usize) -> String {
        format!(
            r#"{{"eventVersion":"1.08","n":{n},"resources":[{{"ARN":"a"}},{{"ARN":"b"}}],"pad":"{}"}}"#,
            "x".repeat(n % 50)
        )
    }

    fn frame_all(input: &[u8], max_record: usize) -> (Count, FrameStats, Option<String>) {
        let mut c = Count::default();
        let (stats, res) = frame(input, max_record, &mut c);
        (c, stats, res.err().map(|e| e.to_string()))
    }

    fn numbers(range: impl Iterator<Item = usize>) -> Vec<String> {
        range.map(|n| n.to_string()).collect()
    }

    /// Records concatenated without separators (Firehose's layout) took time quadratic in the
    /// file: every record looked for the end of a line that runs to the end of the file.
    #[test]
    fn issue_12_concatenated_records_are_framed_in_linear_work() {
        for n in [1_000, 4_000, 16_000] {
            let input: String = (0..n).map(record).collect();
            let (c, stats, err) = frame_all(input.as_bytes(), 1 << 20);
            assert_eq!(c.records, numbers(0..n), "{n} records");
            assert!(c.problems.is_empty() && err.is_none(), "{:?}", c.problems);
            assert_eq!(stats.bytes, input.len() as u64);
            assert!(
                stats.examined <= 6 * stats.bytes,
                "{n} records: {} bytes examined for {} bytes",
                stats.examined,
                stats.bytes
            );
        }
    }

    /// The other layouts stay linear too, damaged or not.
    #[test]
    fn issue_12_every_layout_is_framed_in_linear_work() {
        let recs: Vec<String> = (0..3_000).map(record).collect();
        let mut damaged = recs.clone();
        damaged[1_500] = r#"{"eventVersion":"1.08","n":1500,"x":[1}"#.into();
        for (name, input) in [
            ("json lines", recs.join("\n")),
            ("bare array", format!("[{}]", recs.join(","))),
            ("wrapper", format!("{{\"Records\":[{}]}}", recs.join(","))),
            ("pretty lines", recs.join("\n").replace(",\"", ",\n  \"")),
            ("damaged array", format!("[{}]", damaged.join(","))),
            ("damaged concatenated", damaged.concat()),
            ("damaged lines", damaged.join("\n")),
        ] {
            let (c, stats, _) = frame_all(input.as_bytes(), 1 << 20);
            assert!(c.records.len() >= 2_999, "{name}: {}", c.records.len());
            assert!(
                stats.examined <= 6 * stats.bytes,
                "{name}: {} bytes examined for {} bytes",
                stats.examined,
                stats.bytes
            );
        }
    }

    /// One structural error in one element cost every later element.
    #[test]
    fn issue_12_a_broken_element_costs_that_element_only() {
        let recs: Vec<String> = (0..5).map(record).collect();
        let cases = [
            // An unmatched bracket, a missing brace, a missing quote.
            r#"{"eventVersion":"1.08","n":2,"x":[1}"#.to_string(),
            recs[2].replacen("}]", "]", 1),
            recs[2].replacen("\"ARN\"", "\"ARN", 1),
        ];
        for bad in cases {
            let mut v = recs.clone();
            v[2] = bad.clone();
            for (layout, input) in [
                ("array", format!("[{}]", v.join(","))),
                (
                    "wrapper",
                    format!("{{\"Records\":[{}],\"x\":1}}", v.join(",")),
                ),
                (
                    "pretty wrapper",
                    format!("{{\n  \"Records\": [\n    {}\n  ]\n}}\n", v.join(",\n    ")),
                ),
                ("concatenated", v.concat()),
            ] {
                let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
                let got: Vec<&str> = c.records.iter().map(String::as_str).collect();
                assert!(
                    got.starts_with(&["0", "1"]) && got.ends_with(&["3", "4"]),
                    "{layout} with {bad}: {got:?} {:?} {err:?}",
                    c.problems
                );
                assert!(err.is_none(), "{layout} with {bad}: {err:?}");
                assert!(!c.problems.is_empty(), "{layout} with {bad}: not reported");
            }
        }
        // A missing `,` between two elements costs nothing.
        let input = format!("[{},{}{}]", recs[0], recs[1], recs[2]);
        let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
        assert_eq!(c.records, numbers(0..3));
        assert_eq!(
            c.problems,
            vec!["[1] (line 1): invalid JSON: expected `,` or `]` after an element, found `{`"]
        );
        assert!(err.is_none());
    }

    /// A JSON Lines file whose damaged first line starts with `[` was read as one array
    /// running to the end of the file, and lost.
    #[test]
    fn issue_12_json_lines_with_a_damaged_first_line_starting_with_a_bracket() {
        let recs: Vec<String> = (0..4).map(record).collect();
        for first in [
            recs[0].replacen('{', "[", 1),
            format!("[{}", recs[0]),
            "[1, 2".to_string(),
        ] {
            let input = format!("{first}\n{}\n", recs[1..].join("\n"));
            let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
            assert!(
                c.records.ends_with(&numbers(1..4)),
                "{first}: {:?} {:?}",
                c.records,
                c.problems
            );
            assert!(err.is_none(), "{first}: {err:?}");
            assert!(
                c.problems
                    .iter()
                    .any(|p| p.starts_with("line 1: line is not valid JSON")),
                "{first}: {:?}",
                c.problems
            );
        }
        // A pretty-printed array is still an array.
        let input = format!("[\n  {},\n  {}\n]\n", recs[0], recs[1]);
        let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
        assert_eq!(c.records, numbers(0..2));
        assert!(c.problems.is_empty() && err.is_none());
    }

    /// A damaged line that ends by opening an array after a value (`{}[`, found by the
    /// property tests) is that line's problem: the records on the next lines are records, and
    /// no array problem is named on their lines.
    #[test]
    fn a_value_then_a_bracket_on_a_line_of_json_lines_is_that_line_s_problem() {
        let recs: Vec<String> = (0..4).map(record).collect();
        for first in [
            "{}[".to_string(),
            format!("{}[", recs[0]),
            "{} [ ".to_string(),
        ] {
            let input = format!("{first}\n{}\n", recs[1..].join("\n"));
            let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
            assert!(err.is_none(), "{first}: {err:?}");
            assert!(
                c.records.ends_with(&numbers(1..4)),
                "{first}: {:?}",
                c.records
            );
            assert!(
                c.problems.iter().all(|p| p.starts_with("line 1:")),
                "{first}: {:?}",
                c.problems
            );
            assert!(!c.problems.is_empty(), "{first}: the line is reported");
        }
    }

    /// A damaged record run into the end of a line's record (`}{,…}`) is followed by lines
    /// whose records open with another key (a GuardDuty finding after a CloudTrail record,
    /// found by the property tests): looking for the next record by the first key must stop
    /// at the next line, not pass over it.
    #[test]
    fn a_record_damaged_mid_line_costs_no_line_after_it() {
        let other = |n: usize| format!(r#"{{"schemaVersion":"2.0","n":{n}}}"#);
        for damage in [r#"{,"x":1}"#, r#"{"x":1"#, r#"{"eventVersion":"#] {
            let input = format!(
                "{}{damage}\n{}\n{}\n{}\n",
                record(0),
                other(1),
                record(2),
                other(3)
            );
            let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
            assert!(err.is_none(), "{damage}: {err:?}");
            assert_eq!(c.records, numbers(0..4), "{damage}: {:?}", c.problems);
            assert!(
                !c.problems.is_empty() && c.problems.iter().all(|p| p.starts_with("line 1")),
                "{damage}: {:?}",
                c.problems
            );
        }
    }

    /// `{}{` on the first line (found by the property tests): the `{` left open must not
    /// swallow the record on the next line; `[]` among records is reported, not silent.
    #[test]
    fn an_object_left_open_or_an_empty_array_costs_its_line_only() {
        let input = format!("{{}}{{\n{}\n{}\n", record(1), record(2));
        let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
        assert!(err.is_none(), "{err:?}");
        // `{}` is a value (the sink gets it: `null` here), then records 1 and 2.
        assert_eq!(c.records, ["null", "1", "2"], "{:?}", c.problems);
        assert!(
            c.problems.iter().all(|p| p.starts_with("line 1")),
            "{:?}",
            c.problems
        );

        let input = format!("{}\n[]\n{}\n", record(0), record(2));
        let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(c.records, vec!["0".to_string(), "2".to_string()]);
        assert_eq!(
            c.problems,
            ["line 2: an empty array among records: no record"]
        );
        // A document that is an empty array alone is no problem (an export with nothing in it).
        let (c, _, err) = frame_all(b"[]\n", 1 << 20);
        assert!(c.records.is_empty() && c.problems.is_empty() && err.is_none());
    }

    /// A damaged first line followed by lines over 64 KiB made the file "not JSON".
    #[test]
    fn issue_12_a_damaged_first_line_before_long_lines() {
        let long = |n: usize| {
            format!(
                r#"{{"eventVersion":"1.08","n":{n},"pad":"{}"}}"#,
                "y".repeat(100 << 10)
            )
        };
        let input = format!("garbage line\n{}\n{}\n", long(1), long(2));
        let (c, _, err) = frame_all(input.as_bytes(), 1 << 20);
        assert_eq!(c.records, numbers(1..3), "{err:?}");
        assert_eq!(
            c.problems,
            vec!["line 1: not a JSON object or array (expected one record per line)"]
        );
        assert!(err.is_none());
    }

    /// White space and byte order marks only: no value at all.
    #[test]
    fn issue_12_empty_input_has_no_values() {
        for input in [&b""[..], b"  \n\t\n", b"\xEF\xBB\xBF", b"\xEF\xBB\xBF\n "] {
            let (c, stats, err) = frame_all(input, 1 << 20);
            assert_eq!(stats.values, 0, "{input:?}");
            assert!(c.records.is_empty() && err.is_none());
        }
        let (_, stats, _) = frame_all(b"[]", 1 << 20);
        assert_eq!(stats.values, 1);
    }
}

#[cfg(test)]
mod cut_tests {
    use super::*;

    /// Gives `bytes` (in one read), then fails: a stream cut after them.
    struct CutAfter<'a>(&'a [u8], bool);
    impl Read for CutAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                if self.1 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
                }
                return Ok(0);
            }
            let n = self.0.len().min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[derive(Default)]
    struct Collect(Vec<String>, Vec<String>);
    impl FrameSink for Collect {
        fn record(&mut self, b: &[u8], _: &Location, hint: bool) -> Verdict {
            if hint && serde_json::from_slice::<serde_json::Value>(b).is_err() {
                return Verdict::Rescan;
            }
            self.0.push(String::from_utf8_lossy(b).to_string());
            Verdict::Done
        }
        fn problem(&mut self, loc: Location, msg: String) {
            self.1.push(format!("{loc}: {msg}"));
        }
    }

    #[test]
    fn a_line_whose_newline_arrived_before_a_cut_is_a_record() {
        for doc in [
            &b"{\"a\":1}\n"[..],
            b"{\"a\":1}\n{\"b\":2}\n",
            b"{\"a\":1}\n  \n",
            b"[{\"a\":1}]\n",
            b"x\n{\"a\":1}\n",
            b"{\"a\":1}\n[\n{\"b\":2}\n",
            b"{\"a\":1}{\"b\":2}\n",
        ] {
            let mut whole = Collect::default();
            let (_, res) = frame_from(CutAfter(doc, false), 1 << 20, false, &mut whole);
            assert!(res.is_ok());
            let mut cut = Collect::default();
            let (_, res) = frame_from(CutAfter(doc, true), 1 << 20, false, &mut cut);
            assert_eq!(cut.0, whole.0, "{}", String::from_utf8_lossy(doc));
            assert!(res.is_err(), "the cut is reported");
        }
    }
}
