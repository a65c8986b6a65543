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

/// Frames `reader` and hands every record to `sink`.
///
/// A top-level value that is not a JSON object or array (garbage in a JSON Lines file) is
/// reported to the sink and skipped to the next line. Returns the number of bytes read.
///
/// # Errors
/// [`FrameError`] when the stream is not JSON at all, when a document's structure breaks
/// (the rest of that document cannot be framed), or when reading fails.
pub fn frame<R: Read>(
    reader: R,
    max_record: usize,
    sink: &mut dyn FrameSink,
) -> Result<u64, FrameError> {
    let mut f = Framer {
        reader,
        buf: Vec::new(),
        end: 0,
        pending_error: None,
        json_lines: false,
        pos: 0,
        eof: false,
        line: 1,
        total: 0,
        max_record,
    };
    f.run(sink)?;
    Ok(f.total)
}

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
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(self.read_err(element, e)),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        let end = self.pos + n;
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.pos..end]).count() as u64;
        self.pos = end;
    }

    /// Frames one value starting at `self.pos`; returns its length.
    fn take_value(&mut self, element: Option<(&str, u64)>) -> Result<usize, FrameError> {
        let mut st = ScanState::default();
        loop {
            match st.scan(&self.buf[self.pos..self.end]) {
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
                self.pos += off + 1;
                self.line += 1;
                return Ok(());
            }
            self.pos = self.end;
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.read_err(None, e)),
            }
        }
    }

    /// Ensures at least `n` bytes after `pos` are buffered, unless the input ends first.
    fn lookahead(&mut self, n: usize) -> Result<(), FrameError> {
        while self.end - self.pos < n {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.read_err(None, e)),
            }
        }
        Ok(())
    }

    /// Whether the line at `pos` is one complete JSON value.
    fn line_is_json(&mut self) -> Result<bool, FrameError> {
        loop {
            if let Some(off) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let line = &self.buf[self.pos..self.pos + off];
                return Ok(serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
            }
            if self.eof || self.end - self.pos > self.max_record {
                let line = &self.buf[self.pos..self.end];
                return Ok(serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
            }
            if let Err(e) = self.fill() {
                return Err(self.read_err(None, e));
            }
        }
    }

    /// Whether a later line within the first 64 KiB is a complete JSON object on its own:
    /// then content that does not start like JSON is JSON Lines with a damaged first line,
    /// not some other kind of file.
    fn json_lines_follow(&mut self) -> Result<bool, FrameError> {
        self.lookahead(64 << 10)?;
        let window = &self.buf[self.pos..self.end.min(self.pos + (64 << 10))];
        Ok(window.split(|&b| b == b'\n').skip(1).any(|line| {
            let t = line.trim_ascii();
            t.starts_with(b"{") && serde_json::from_slice::<serde::de::IgnoredAny>(t).is_ok()
        }))
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
        let key_end = key_start + memchr::memchr(b'"', b.get(key_start..)?)?;
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
                if c != b'{' && c != b'[' && self.json_lines_follow()? {
                    // JSON Lines whose first line is damaged: that line is the problem.
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
                b'[' => {
                    self.advance(1);
                    self.elements("", sink)?;
                }
                b'{' => {
                    self.lookahead(256)?;
                    if let Some((key, open)) = self.wrapper_at() {
                        self.advance(open + 1);
                        self.elements(key, sink)?;
                        self.rest_of_wrapper(sink)?;
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
                    self.skip_line()?;
                }
            }
        }
    }

    /// A top-level object that is a record: try the line fast path, then the structure.
    fn top_record(&mut self, sink: &mut dyn FrameSink) -> Result<(), FrameError> {
        let loc = self.loc(None);
        let first_line_len;
        loop {
            if let Some(off) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
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
            if self.eof {
                // The last line of a file without a trailing newline. (After a read error
                // the partial line is the cut record: `fill` reports the error instead.)
                let slice = &self.buf[self.pos..self.end];
                match sink.record(slice, &loc, !self.json_lines) {
                    Verdict::Rescan => {
                        first_line_len = self.end - self.pos;
                        break;
                    }
                    Verdict::Done | Verdict::Invalid => {
                        self.pos = self.end;
                        return Ok(());
                    }
                }
            }
            if self.end - self.pos > self.max_record {
                first_line_len = self.end - self.pos;
                break;
            }
            if let Err(e) = self.fill() {
                return Err(self.read_err(None, e));
            }
        }
        // Not one value on one line: a pretty-printed record, or a cut one. Frame it by its
        // structure; if that fails, report its first line and go on at the next line.
        let start_line = self.line;
        match self.take_value(None) {
            Ok(n) => {
                let verdict = sink.record(&self.buf[self.pos..self.pos + n], &loc, false);
                if verdict == Verdict::Invalid && n > first_line_len {
                    self.resync_after(first_line_len, start_line);
                } else {
                    self.advance(n);
                }
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
    /// starts a value at its first column (`{` or `[`): the next record of JSON Lines. Lines
    /// in between (the indented rest of a cut pretty-printed record) are part of the broken
    /// record, already reported.
    fn resync_after(&mut self, first_line_len: usize, start_line: u64) {
        let mut at = (self.pos + first_line_len + 1).min(self.end);
        let mut line = start_line + 1;
        while at < self.end && !matches!(self.buf[at], b'{' | b'[') {
            match memchr::memchr(b'\n', &self.buf[at..self.end]) {
                Some(off) => {
                    at += off + 1;
                    line += 1;
                }
                None => at = self.end,
            }
        }
        self.pos = at;
        self.line = line;
    }

    /// Frames the elements of an array whose `[` was just consumed, through the closing `]`.
    fn elements(&mut self, key: &str, sink: &mut dyn FrameSink) -> Result<(), FrameError> {
        let mut index = 0u64;
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
            let n = self.take_value(el)?;
            sink.record(&self.buf[self.pos..self.pos + n], &loc, false);
            self.advance(n);
            index += 1;
            match self.skip_ws(el)? {
                Some(b',') => self.advance(1),
                Some(b']') => {
                    self.advance(1);
                    return Ok(());
                }
                Some(c) => {
                    return Err(FrameError::Invalid {
                        at: self.loc(el),
                        reason: format!(
                            "expected `,` or `]` after an element, found `{}`",
                            c as char
                        ),
                    });
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

    /// After a wrapper array: the other members of the wrapper object (`NextToken`…), which
    /// may hold further wrapper arrays, through the closing `}`.
    fn rest_of_wrapper(&mut self, sink: &mut dyn FrameSink) -> Result<(), FrameError> {
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
            if self.skip_ws(None)? != Some(b'"') {
                return Err(FrameError::Invalid {
                    at: self.loc(None),
                    reason: "expected a member name in the wrapper object".into(),
                });
            }
            let n = self.take_value(None)?;
            let key =
                String::from_utf8_lossy(&self.buf[self.pos + 1..self.pos + n - 1]).into_owned();
            self.advance(n);
            if self.skip_ws(None)? != Some(b':') {
                return Err(FrameError::Invalid {
                    at: self.loc(None),
                    reason: format!("expected `:` after member `{key}`"),
                });
            }
            self.advance(1);
            let next = self.skip_ws(None)?;
            if next == Some(b'[')
                && let Some(k) = WRAPPER_KEYS.into_iter().find(|k| *k == key)
            {
                self.advance(1);
                self.elements(k, sink)?;
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
        let res = frame(Trickle(input, chunk), 1 << 20, &mut c);
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
