//! How a state is saved and read back (version 7 on): the JSON document, compressed, read by
//! streaming.
//!
//! Version 10 on, a state is two zstd frames: a skippable frame holding its format and version
//! (`finding-correlator-state version 10`), then the document in one zstd frame with its
//! checksum; `zstd -dc state` shows the document (zstd passes over skippable frames). Versions
//! 7 to 9 were one gzip stream with the same words in its header's comment, and are read as
//! before. Either way a reader knows what a state holds before it decompresses anything: a
//! newer version is refused at once, and the current one is read into [`State`] member by
//! member as it is decompressed (each item of the large lists parsed from its own text:
//! [`read_members`]), with no JSON value tree and no copy of the whole text in memory. Writing
//! streams the same way, into the file (or the buffer sent to S3) through the compressor.
//!
//! A plain JSON document (every version up to 6, or a current one decompressed by hand) is read
//! as before and migrated. Damage anywhere (header, compressed stream, checksum, the document
//! inside) is [`StateError::Corrupt`] naming the state.

use std::io::{self, BufRead, BufWriter, Read, Write};

use super::{FORMAT, State, StateError, VERSION};

/// The first two bytes of every gzip stream (the container of versions 7 to 9).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The first bytes of a state from version 10 on: the magic number of a zstd skippable frame
/// (the first of the sixteen zstd keeps for other data), little-endian.
const HEADER_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];

/// The magic number of a zstd frame, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The longest header frame a state has (its text is some 40 bytes).
const HEADER_MAX: u32 = 256;

/// The zstd level: the fastest of the regular levels. Every scheduled run writes the state, so
/// its CPU counts more than its size. On the 1 M benchmark's state (a 95 MB document) zstd's
/// level 1 took 0.13 s to write 9.2 MB and 0.05 s to read it back (the zstd tool, this 2-core
/// machine); gzip's level 1 (zlib-rs, the container of versions 7 to 9) took some 0.2 s to
/// write 19.1 MB and 0.08 s to read it (a profile of a 15-minute slice's run).
const LEVEL: i32 = 1;

/// Largest document a compressed state may decompress to (a damaged or hostile file must not
/// fill memory): 2 GiB, eight times the largest state file read.
pub const DECODED_MAX: u64 = 8 * crate::local_file::STATE_MAX;

/// The words naming a compressed state's format and version (its header frame's text, and the
/// gzip header's comment of versions 7 to 9).
fn comment(version: u32) -> String {
    format!("{FORMAT} version {version}")
}

/// The version a header names, or None when it is not a state's.
fn version_of(comment: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(comment).ok()?;
    let rest = text.strip_prefix(FORMAT)?.strip_prefix(" version ")?;
    rest.parse().ok()
}

impl State {
    /// Writes the state as it is saved (its header frame, then the zstd-compressed JSON
    /// document) into `out`, and returns it.
    ///
    /// # Errors
    /// The errors of writing to `out`.
    pub fn encode_to<W: Write>(&self, mut out: W) -> io::Result<W> {
        let started = std::time::Instant::now();
        let header = comment(self.version);
        out.write_all(&HEADER_MAGIC)?;
        out.write_all(&(header.len() as u32).to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        let mut z = zstd::stream::write::Encoder::new(out, LEVEL)?;
        z.include_checksum(true)?;
        let mut buf = BufWriter::with_capacity(1 << 16, z);
        serde_json::to_writer(&mut buf, self).map_err(io::Error::from)?;
        buf.write_all(b"\n")?;
        let z = buf.into_inner().map_err(io::IntoInnerError::into_error)?;
        let out = z.finish()?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "state serialized and compressed"
        );
        Ok(out)
    }

    /// The state as it is saved.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to(Vec::new())
            .expect("writing into memory does not fail")
    }

    /// Reads a saved state: compressed (version 7 on: zstd from 10, gzip before) or plain JSON
    /// (any version), migrating older versions. `origin` names it in errors.
    ///
    /// # Errors
    /// [`StateError::NotState`], [`StateError::Newer`], [`StateError::Corrupt`], or
    /// [`StateError::Io`] when reading fails.
    pub fn decode<R: BufRead>(mut input: R, origin: &str) -> Result<State, StateError> {
        let started = std::time::Instant::now();
        let corrupt = |message: String| StateError::Corrupt {
            origin: origin.to_string(),
            message,
        };
        let not_state = || StateError::NotState {
            origin: origin.to_string(),
        };
        let head = input.fill_buf().map_err(|source| StateError::Io {
            origin: origin.to_string(),
            source,
        })?;
        if head.starts_with(&ZSTD_MAGIC) {
            // Compressed, but without the header that names a state.
            return Err(not_state());
        }
        let state = if head.starts_with(&HEADER_MAGIC) {
            let mut frame = [0u8; 8];
            input
                .read_exact(&mut frame)
                .map_err(|e| corrupt(format!("header: {e}")))?;
            let len = u32::from_le_bytes(frame[4..].try_into().expect("four bytes"));
            if len > HEADER_MAX {
                return Err(not_state());
            }
            let mut header = vec![0u8; len as usize];
            input
                .read_exact(&mut header)
                .map_err(|e| corrupt(format!("header: {e}")))?;
            let version = version_of(&header).ok_or_else(not_state)?;
            let body = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| corrupt(format!("compressed data: {e}")))?;
            read_compressed(body, version, ZSTD_FROM, origin)?
        } else if head.starts_with(&GZIP_MAGIC) {
            let mut gz = flate2::bufread::GzDecoder::new(input);
            let Some(header) = gz.header() else {
                // The header could not be parsed: reading says why.
                let e = gz
                    .read(&mut [0u8; 1])
                    .err()
                    .map_or_else(|| "incomplete gzip header".to_string(), |e| e.to_string());
                return Err(corrupt(format!("gzip header: {e}")));
            };
            let version = header
                .comment()
                .and_then(version_of)
                .ok_or_else(not_state)?;
            read_compressed(gz, version, GZIP_FROM, origin)?
        } else {
            // Plain JSON, as versions up to 6 were saved.
            let mut bytes = Vec::new();
            input
                .take(crate::local_file::STATE_MAX + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| StateError::Io {
                    origin: origin.to_string(),
                    source,
                })?;
            if bytes.len() as u64 > crate::local_file::STATE_MAX {
                return Err(corrupt(format!(
                    "larger than the {} MiB a plain JSON state may be",
                    crate::local_file::STATE_MAX >> 20
                )));
            }
            let text = String::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
            return State::from_json(&text, origin);
        };
        tracing::debug!(
            state = origin,
            ms = started.elapsed().as_millis() as u64,
            "state decompressed and read"
        );
        state.checked(origin)
    }
}

/// The first version saved in each container: gzip from 7 (to 9), zstd from 10.
const GZIP_FROM: u64 = 7;
const ZSTD_FROM: u64 = 10;

/// Reads the document of a compressed state whose header says `version`, from `body` as it is
/// decompressed; `first` is the first version its container was saved in (a header naming an
/// older one was not written by any finding-correlator).
fn read_compressed<B: Read>(
    body: B,
    version: u64,
    first: u64,
    origin: &str,
) -> Result<State, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        origin: origin.to_string(),
        message,
    };
    if version > u64::from(VERSION) {
        return Err(StateError::Newer {
            origin: origin.to_string(),
            found: version,
        });
    }
    if version < first {
        return Err(corrupt(format!(
            "its header says version {version}, which was never saved compressed this way"
        )));
    }
    let body = Limited {
        inner: body,
        left: DECODED_MAX,
    };
    // Every compressed version's document reads as the current one's, so it is read by
    // streaming: version 8 only added a shorter form of instance lists (the plain lists of 7
    // still read), 9 a member absent before (`carried`), 10 changed only the compression. A
    // version whose document had to be migrated would be read whole and migrated here.
    let mut state =
        read_members(io::BufReader::with_capacity(1 << 16, body)).map_err(|e| match e {
            MemberError::Io(e) => corrupt(format!("compressed data: {e}")),
            MemberError::Json(e) => corrupt(e.to_string()),
            MemberError::Item { part, index, error } => {
                corrupt(format!("`{part}` item {index}: {error}"))
            }
            MemberError::Structure { message, offset } => {
                corrupt(format!("{message} at byte {offset} of the document"))
            }
        })?;
    if state.format != FORMAT {
        return Err(StateError::NotState {
            origin: origin.to_string(),
        });
    }
    if u64::from(state.version) != version {
        return Err(corrupt(format!(
            "its header says version {version}, its document version {}",
            state.version
        )));
    }
    if state.version != VERSION {
        tracing::info!(
            state = origin,
            from = state.version,
            to = VERSION,
            "state migrated: its document reads as this version's (it is saved as this version)"
        );
        state.version = VERSION;
    }
    Ok(state)
}

/// The members of a state document ([`State`]'s fields, as they are named in it).
const FIELDS: [&str; 13] = [
    "format",
    "version",
    "written_by",
    "checkpoints",
    "newest",
    "horizon",
    "signals",
    "graph",
    "sequences",
    "baselines",
    "carried",
    "lease",
    "unsent",
];

/// Why [`read_members`] could not read a document.
#[derive(Debug)]
enum MemberError {
    /// Reading failed (in a compressed state: the compressed stream is damaged, or too large).
    Io(io::Error),
    /// The members other than the large lists do not make a state document.
    Json(serde_json::Error),
    /// An item of one of the large lists is not what that list holds.
    Item {
        part: &'static str,
        index: usize,
        error: serde_json::Error,
    },
    /// The text is not one JSON object of members.
    Structure { message: &'static str, offset: u64 },
}

impl From<io::Error> for MemberError {
    fn from(e: io::Error) -> MemberError {
        MemberError::Io(e)
    }
}

/// Reads a state document member by member as it comes out of `input`, so that it is parsed
/// from text in memory (much faster than serde_json's reader, which takes a byte at a time)
/// without the whole text in memory: each item of the large lists (`signals`, `graph`,
/// `sequences`) is parsed from its own text as soon as it is read, and the other members are
/// gathered into a small document parsed as a [`State`] without those lists. The result is
/// the state `serde_json::from_reader` would give, and every text it refuses is refused: each
/// piece is parsed by serde_json, and the scanner checks what lies between them.
fn read_members<R: BufRead>(input: R) -> Result<State, MemberError> {
    let mut scan = Scanner { input, offset: 0 };
    let mut small = b"{".to_vec();
    let mut item = Vec::new();
    let mut signals = None;
    let mut graph = None;
    let mut sequences = None;
    let mut seen: Vec<&'static str> = Vec::new();
    if !scan.eat(b'{')? {
        return Err(scan.error("the document is not a JSON object"));
    }
    if !scan.eat(b'}')? {
        loop {
            if scan.peek()? != Some(b'"') {
                return Err(scan.error("expected a member's name"));
            }
            let name_at = small.len();
            scan.value(&mut small)?;
            if !scan.eat(b':')? {
                return Err(scan.error("expected `:` after a member's name"));
            }
            let name: String =
                serde_json::from_slice(&small[name_at..]).map_err(MemberError::Json)?;
            if !FIELDS.contains(&name.as_str()) {
                // Refused at its name, before its value is read, as serde_json refuses it.
                let mut probe = small[name_at..].to_vec();
                probe.insert(0, b'{');
                probe.extend_from_slice(b":null}");
                match serde_json::from_slice::<State>(&probe) {
                    Err(e) if e.to_string().starts_with("unknown field") => {
                        return Err(MemberError::Json(e));
                    }
                    // A field `FIELDS` does not name: read as any other.
                    _ => {}
                }
            }
            let list = match name.as_str() {
                "signals" => Some("signals"),
                "graph" => Some("graph"),
                "sequences" => Some("sequences"),
                _ => None,
            };
            if let Some(part) = list {
                // Once each, wherever its value goes (serde_json refuses a repeated field).
                if seen.contains(&part) {
                    return Err(scan.error("a list member named twice"));
                }
                seen.push(part);
            }
            match list {
                Some(part) if scan.peek()? == Some(b'[') => {
                    small.truncate(name_at);
                    scan.consume(1);
                    match part {
                        "signals" => signals = Some(scan.items(part, &mut item)?),
                        "graph" => graph = Some(scan.items(part, &mut item)?),
                        _ => sequences = Some(scan.items(part, &mut item)?),
                    }
                }
                _ => {
                    small.push(b':');
                    scan.value(&mut small)?;
                    small.push(b',');
                }
            }
            if scan.eat(b',')? {
                continue;
            }
            if scan.eat(b'}')? {
                break;
            }
            return Err(scan.error("expected `,` or `}` after a member"));
        }
    }
    if scan.peek()?.is_some() {
        return Err(scan.error("text after the document"));
    }
    if small.last() == Some(&b',') {
        small.pop();
    }
    small.push(b'}');
    let mut state: State = serde_json::from_slice(&small).map_err(MemberError::Json)?;
    state.signals = signals.unwrap_or_default();
    state.graph = graph.unwrap_or_default();
    state.sequences = sequences.unwrap_or_default();
    Ok(state)
}

/// Reads JSON text a value at a time (see [`read_members`]).
struct Scanner<R> {
    input: R,
    /// Bytes consumed so far.
    offset: u64,
}

impl<R: BufRead> Scanner<R> {
    fn consume(&mut self, n: usize) {
        self.input.consume(n);
        self.offset += n as u64;
    }

    fn error(&self, message: &'static str) -> MemberError {
        MemberError::Structure {
            message,
            offset: self.offset,
        }
    }

    /// The next byte that is not white space (which is consumed), itself not consumed; None
    /// at the end.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(i) => {
                    let b = buf[i];
                    self.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }

    /// Consumes `b` when it is the next byte that is not white space.
    fn eat(&mut self, b: u8) -> io::Result<bool> {
        let next = self.peek()? == Some(b);
        if next {
            self.consume(1);
        }
        Ok(next)
    }

    /// The items of a list whose `[` is read, up to its `]`, each parsed from its text.
    fn items<T: serde::de::DeserializeOwned>(
        &mut self,
        part: &'static str,
        text: &mut Vec<u8>,
    ) -> Result<Vec<T>, MemberError> {
        let mut out = Vec::new();
        if self.eat(b']')? {
            return Ok(out);
        }
        loop {
            let item = match self.whole_object()? {
                Some(item) => item,
                None => {
                    // Cut by the end of what is buffered: its text gathered first.
                    text.clear();
                    if let Err(e) = self.value(text) {
                        // A damaged item whose brackets never close runs on to the end of the
                        // document: the parse of what was gathered says where it breaks, and
                        // the error names the item, as for any other damaged one.
                        return Err(match serde_json::from_slice::<T>(text) {
                            Err(error) if !error.is_eof() => MemberError::Item {
                                part,
                                index: out.len(),
                                error,
                            },
                            _ => e,
                        });
                    }
                    serde_json::from_slice(text).map_err(|error| MemberError::Item {
                        part,
                        index: out.len(),
                        error,
                    })?
                }
            };
            out.push(item);
            if self.eat(b',')? {
                continue;
            }
            if self.eat(b']')? {
                return Ok(out);
            }
            return Err(self.error("expected `,` or `]` after an item"));
        }
    }

    /// The next item parsed straight from what is buffered, when it is an object that ends
    /// there (most do: an item is a kilobyte or two, the buffer 64 KiB), so that its text is
    /// not scanned first for where it ends; None when it is not an object, runs past the
    /// buffer or does not parse there (then [`Scanner::value`] gathers it, and its parse
    /// whole refuses a damaged one). An object is self-delimiting, so what is parsed is the
    /// text `value` would have gathered.
    fn whole_object<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, MemberError> {
        if self.peek()? != Some(b'{') {
            return Ok(None);
        }
        let buf = self.input.fill_buf()?;
        let mut items = serde_json::Deserializer::from_slice(buf).into_iter::<T>();
        // Any error is left to `value` and the parse of the whole text: the buffer's end may
        // cut the item where serde_json reports no end of input (after a number's `.`, `e`
        // or `-` it is "an invalid number"), and only the whole text says which it is.
        let Some(Ok(item)) = items.next() else {
            return Ok(None);
        };
        let n = items.byte_offset();
        self.consume(n);
        Ok(Some(item))
    }

    /// Appends the text of the next value to `out`: a string, an object or a list whole
    /// (brackets are counted outside strings; which bracket closes which is left to the
    /// parser of the text), or a number or word up to the next delimiter.
    fn value(&mut self, out: &mut Vec<u8>) -> Result<(), MemberError> {
        let Some(first) = self.peek()? else {
            return Err(self.error("the document ends where a value should be"));
        };
        if matches!(first, b',' | b':' | b']' | b'}') {
            return Err(self.error("expected a value"));
        }
        let scalar = !matches!(first, b'"' | b'{' | b'[');
        let mut depth: u32 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                if scalar {
                    return Ok(());
                }
                return Err(self.error("the document ends inside a value"));
            }
            let mut i = 0;
            let mut done = None;
            while i < buf.len() {
                if in_string {
                    if escaped {
                        escaped = false;
                        i += 1;
                        continue;
                    }
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => i = buf.len(),
                        Some(j) => {
                            i += j;
                            if buf[i] == b'\\' {
                                escaped = true;
                            } else {
                                in_string = false;
                                if depth == 0 {
                                    done = Some(i + 1);
                                    break;
                                }
                            }
                            i += 1;
                        }
                    }
                    continue;
                }
                let b = buf[i];
                if scalar {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                        done = Some(i);
                        break;
                    }
                    i += 1;
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            done = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let n = done.unwrap_or(buf.len());
            out.extend_from_slice(&buf[..n]);
            self.consume(n);
            if done.is_some() {
                return Ok(());
            }
        }
    }
}

/// A reader that fails once more than `left` bytes come out of it.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompresses to more than the {} MiB a state may be",
                    DECODED_MAX >> 20
                ),
            )
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Checkpoint, SequenceRecord, SequenceStatus};
    use flate2::{Compression, GzBuilder};

    fn sample() -> State {
        let mut st = State::new();
        st.newest = Some(1_746_177_600_123);
        st.horizon = Some(1_746_000_000_000);
        st.checkpoints.insert(
            "cloudtrail".into(),
            Checkpoint {
                newest: Some(1_746_177_600_123),
                records: 7,
                ..Checkpoint::default()
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
            finding: Some(crate::state::KeptFinding::of(
                &serde_json::json!({"Id": "x", "Title": "é ✓"}),
            )),
            created: None,
            refs: vec!["evt-1".into()],
        });
        st
    }

    #[test]
    fn a_state_written_is_read_back_equal() {
        let st = sample();
        let bytes = st.encode();
        assert_eq!(bytes[..4], HEADER_MAGIC);
        let header = comment(VERSION);
        assert_eq!(bytes[4..8], (header.len() as u32).to_le_bytes());
        assert_eq!(&bytes[8..8 + header.len()], header.as_bytes());
        assert_eq!(bytes[8 + header.len()..][..4], ZSTD_MAGIC);
        let back = State::decode(&bytes[..], "s").unwrap();
        // Equal as documents: every field, in the same encoding.
        assert_eq!(back.to_json(), st.to_json());
        // Decompressed as `zstd -dc` does it (over the header frame), it is the JSON document.
        let text = String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap();
        assert_eq!(text.as_bytes(), st.to_json());
        // The same document in the gzip container of versions 7 to 9 loads too.
        let mut gz = GzBuilder::new()
            .comment(comment(VERSION))
            .write(Vec::new(), Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(State::decode(&gz[..], "s").unwrap().to_json(), st.to_json());
        // And that plain document loads too.
        let plain = State::decode(text.as_bytes(), "s").unwrap();
        assert_eq!(plain.to_json(), st.to_json());
    }

    /// deploy/README.md's way back to a binary older than version 10: `zstd -dc` of the saved
    /// state, its first `"version":10,` (sed's `s///` without `g`) set to 9, is the same
    /// document as a version-9 one, which this reader reads back equal. (When the version
    /// moves on, this test fails until the recipe is written for it.)
    #[test]
    fn the_downgrade_recipe_gives_the_same_document_as_version_9() {
        assert_eq!(
            VERSION, 10,
            "deploy/README.md's downgrade recipe names version 10"
        );
        let st = full();
        let bytes = st.encode();
        let text = String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap();
        let first = text
            .find("\"version\":10,")
            .expect("the version is in the document");
        assert_eq!(
            text[..first].matches('{').count(),
            1,
            "the first match is the document's own version: {}",
            &text[..first + 14]
        );
        let nine = text.replacen("\"version\":10,", "\"version\":9,", 1);
        let back = State::decode(nine.as_bytes(), "state.json").unwrap();
        assert_eq!(back.to_json(), st.to_json());
    }

    /// A state with every part filled, from the shipped fixtures, and strings that test the
    /// scanner: escaped quotes and backslashes, unbalanced brackets and commas inside strings.
    fn full() -> State {
        let settings = crate::config::Config::default()
            .validate()
            .expect("the defaults are valid");
        let rules = std::sync::Arc::new(crate::rules::RuleSet::builtin().expect("shipped rules"));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
        let paths = [
            root.join("compromised-instance-group/positive"),
            root.join("instance-credentials-launch-compute/positive"),
        ];
        let empty = State::new();
        let run = crate::pipeline::correlate(&paths, &settings, rules.clone(), false, Some(&empty));
        let (mut st, _) = crate::incremental::advance(
            Some(&empty),
            &run,
            &rules,
            &settings,
            &crate::sinks::asff::Writer::default(),
        );
        assert!(!st.signals.is_empty() && !st.graph.is_empty() && !st.sequences.is_empty());
        let mut tricky = (*st.signals[0]).clone();
        tricky.account = Some(r#"one " quote ] a bracket, a brace } and a backslash \"#.into());
        st.signals.push(std::sync::Arc::new(tricky));
        st.sequences.extend(sample().sequences);
        st.checkpoints.extend(sample().checkpoints);
        st
    }

    /// What serde_json makes of a whole document: the state's own document, or None.
    fn whole(doc: &[u8]) -> Option<Vec<u8>> {
        serde_json::from_slice::<State>(doc)
            .ok()
            .map(|s| s.to_json())
    }

    #[test]
    fn read_member_by_member_a_document_is_what_serde_json_reads_whole() {
        let st = full();
        let doc = st.to_json();
        // Read through buffers of every small size, so that every token is cut somewhere.
        for capacity in [1, 2, 3, 5, 7, 13, 64, 1 << 16] {
            let back = read_members(io::BufReader::with_capacity(capacity, &doc[..]))
                .unwrap_or_else(|e| panic!("capacity {capacity}: {e:?}"));
            assert_eq!(back.to_json(), doc, "capacity {capacity}");
        }
        // White space anywhere between tokens, as a hand-edited document has it.
        let spaced = serde_json::to_vec_pretty(&st).unwrap();
        let back = read_members(&spaced[..]).unwrap();
        assert_eq!(back.to_json(), doc);
        // Members in another order, and the lists absent.
        let mut v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let m = v.as_object_mut().unwrap();
        let signals = m.remove("signals").unwrap();
        m.remove("graph");
        m.insert("signals".into(), signals);
        let reordered = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            read_members(&reordered[..]).unwrap().to_json(),
            whole(&reordered).unwrap()
        );
    }

    #[test]
    fn the_members_known_are_the_state_s_fields() {
        let mut st = full();
        st.lease = Some(crate::state::Lease::default());
        st.unsent.push(crate::state::KeptFinding::of(
            &serde_json::json!({"Id": "x"}),
        ));
        let doc: serde_json::Value = serde_json::from_slice(&st.to_json()).unwrap();
        let mut names: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut fields = FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(names, fields);
        // A member of another name is refused at its name, as serde_json names it, before
        // its value (here larger than anything else in the document) is read.
        let text = String::from_utf8(sample().to_json()).unwrap();
        let huge = format!("{{\"zzz\":\"{}\",{}", "x".repeat(1 << 20), &text[1..]);
        let mut read = 0;
        let counted = std::io::BufReader::with_capacity(
            64,
            Counting {
                inner: huge.as_bytes(),
                read: &mut read,
            },
        );
        let e = format!("{:?}", read_members(counted).unwrap_err());
        assert!(e.contains("unknown field `zzz`"), "{e}");
        assert!(read < 1024, "{read} bytes read");
    }

    /// A reader that counts what comes out of it.
    struct Counting<'a, R> {
        inner: R,
        read: &'a mut usize,
    }

    impl<R: Read> Read for Counting<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            *self.read += n;
            Ok(n)
        }
    }

    /// The read buffer may end anywhere in an item, also just after a number's `.`, `e` or
    /// `-`, where serde_json calls the rest "an invalid number", not the end of its input: a
    /// sound document reads the same through a buffer of every size.
    #[test]
    fn a_sound_document_reads_the_same_whatever_the_buffer_cuts() {
        // A few of each part (the time it takes grows with the square of the length).
        let mut st = full();
        st.signals.truncate(4);
        st.graph.truncate(2);
        st.sequences.truncate(1);
        st.carried = None;
        for (i, s) in st.signals.iter_mut().enumerate() {
            let s = std::sync::Arc::make_mut(s);
            s.severity = [8.5, 1e-7, 2.25e21, 0.125][i % 4];
            s.time = -s.time;
        }
        let doc = st.to_json();
        for number in ["8.5", "1e-7", ":-"] {
            assert!(
                String::from_utf8_lossy(&doc).contains(number),
                "the document has no {number}"
            );
        }
        let expected = read_members(&doc[..]).unwrap().to_json();
        assert_eq!(expected, doc);
        let mut differs = Vec::new();
        for capacity in 1..=doc.len() + 1 {
            match read_members(io::BufReader::with_capacity(capacity, &doc[..])) {
                Ok(read) if read.to_json() == expected => {}
                Ok(_) => differs.push(format!("{capacity}: another state")),
                Err(e) => differs.push(format!("{capacity}: {e:?}")),
            }
        }
        assert!(
            differs.is_empty(),
            "{} buffer sizes of {}: {:?}",
            differs.len(),
            doc.len(),
            &differs[..differs.len().min(5)]
        );
    }

    /// A damaged item is refused as that item, whatever the read buffer: also one whose
    /// brackets never close (its text runs on to the end of the document).
    #[test]
    fn a_damaged_item_is_named_by_its_part_and_index() {
        let mut st = sample();
        st.signals.push(full().signals.pop().unwrap());
        st.signals.push(full().signals.pop().unwrap());
        let doc = String::from_utf8(st.to_json()).unwrap();
        // Where the second item begins: after the first, parsed, and its comma.
        let first = doc.find("\"signals\":[").unwrap() + "\"signals\":[".len();
        let mut items =
            serde_json::Deserializer::from_str(&doc[first..]).into_iter::<serde_json::Value>();
        items.next().unwrap().unwrap();
        let second = first + items.byte_offset() + 1;
        assert_eq!(&doc[second - 1..second + 1], ",{");
        let unclosed = format!("{}{{\"x\":[[[1}},{}", &doc[..second], &doc[second..]);
        let balanced = format!("{}{{\"x\":1}},{}", &doc[..second], &doc[second..]);
        for (what, bad) in [("unclosed", &unclosed), ("balanced", &balanced)] {
            assert!(
                whole(bad.as_bytes()).is_none(),
                "{what}: serde_json takes it"
            );
            for capacity in [7, 97, 64 * 1024, bad.len() + 1] {
                let read = read_members(io::BufReader::with_capacity(capacity, bad.as_bytes()));
                match read {
                    Err(MemberError::Item { part, index, .. }) => {
                        assert_eq!((part, index), ("signals", 1), "{what}, buffer {capacity}");
                    }
                    Err(e) => panic!("{what}, buffer {capacity}: {e:?}"),
                    Ok(_) => panic!("{what}, buffer {capacity}: read"),
                }
            }
        }
    }

    #[test]
    fn a_damaged_document_is_refused_as_serde_json_refuses_it() {
        let mut st = sample();
        st.signals.push(full().signals.pop().unwrap());
        let doc = st.to_json();
        // Every cut, and every byte changed into each character that means something to the
        // scanner or the parser: read member by member, the result is serde_json's (the same
        // state, or an error), never a panic.
        // Read from the text whole (each item parsed where it lies) and through a small buffer
        // (items cut by its end are gathered first).
        let ours = |d: &[u8]| {
            let whole = read_members(d).ok().map(|s| s.to_json());
            let cut = read_members(io::BufReader::with_capacity(97, d))
                .ok()
                .map(|s| s.to_json());
            (whole == cut).then_some(whole)
        };
        let mut differs = Vec::new();
        for at in 0..doc.len() {
            if ours(&doc[..at]) != Some(whole(&doc[..at])) {
                differs.push(format!("the first {at} bytes"));
            }
            for b in *b"\"{}[],: \\x1-" {
                let mut d = doc.clone();
                if d[at] == b {
                    continue;
                }
                d[at] = b;
                if ours(&d) != Some(whole(&d)) {
                    differs.push(format!("byte {at} made {:?}", b as char));
                }
            }
        }
        assert!(
            differs.is_empty(),
            "{} cases: {:?}",
            differs.len(),
            &differs[..differs.len().min(10)]
        );
        // A list named twice, text after the document, not an object.
        let doc = String::from_utf8(sample().to_json()).unwrap();
        assert!(doc.contains("\"signals\":[]"), "{doc}");
        for bad in [
            doc.replacen("\"signals\":[]", "\"signals\":[],\"signals\":[]", 1),
            doc.replacen("\"signals\":[]", "\"signals\":null,\"signals\":[]", 1),
            format!("{doc} {{}}"),
            format!("[{doc}]"),
        ] {
            assert!(whole(bad.as_bytes()).is_none(), "{bad}");
            assert!(read_members(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn damage_anywhere_is_an_error_naming_the_state() {
        let bytes = sample().encode();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("header only", bytes[..12].to_vec()),
            ("no trailer", bytes[..bytes.len() - 4].to_vec()),
        ];
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        cases.push(("a byte changed", flipped));
        let mut crc = bytes.clone();
        let at = crc.len() - 8;
        crc[at] ^= 0xff;
        cases.push(("checksum", crc));
        for (what, b) in cases {
            let e = State::decode(&b[..], "s3://b/state.json")
                .expect_err(what)
                .to_string();
            assert!(
                e.contains("state `s3://b/state.json` is damaged"),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn every_cut_and_every_changed_byte_of_a_saved_state_is_refused_or_changes_nothing() {
        let st = sample();
        let bytes = st.encode();
        let body = 8 + comment(VERSION).len();
        for at in 0..bytes.len() {
            let e = State::decode(&bytes[..at], "st").map(|_| ()).unwrap_err();
            assert!(
                matches!(e, StateError::Corrupt { .. } | StateError::NotState { .. }),
                "the first {at} bytes: {e}"
            );
        }
        // In the compressed document (its header's words are the header test's): the
        // checksum catches what decompresses to other text.
        for at in body..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                match State::decode(&b[..], "st") {
                    Ok(back) => assert_eq!(back.to_json(), st.to_json(), "byte {at} ^ {flip:#x}"),
                    Err(e) => assert!(
                        e.to_string().contains("state `st` is damaged"),
                        "byte {at} ^ {flip:#x}: {e}"
                    ),
                }
            }
        }
        // Text after the document's frame.
        let mut more = bytes.clone();
        more.extend(b"{}");
        let e = State::decode(&more[..], "st").unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
    }

    #[test]
    fn newer_and_foreign_gzip_files_are_named_as_such() {
        let gz = |comment: Option<&str>, body: &[u8]| {
            let mut b = GzBuilder::new();
            if let Some(c) = comment {
                b = b.comment(c);
            }
            let mut w = b.write(Vec::new(), Compression::fast());
            w.write_all(body).unwrap();
            w.finish().unwrap()
        };
        let e = State::decode(&gz(Some(&comment(99)), b"{}")[..], "st")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 99, written by a newer"), "{e}");
        let e = State::decode(&gz(None, b"{\"Records\":[]}")[..], "st")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a finding-correlator state file"), "{e}");
        // The same in this version's container: a newer version is named before anything is
        // decompressed, and a zstd file of something else is no state.
        let framed = |header: &[u8], body: &[u8]| {
            let mut b = HEADER_MAGIC.to_vec();
            b.extend((header.len() as u32).to_le_bytes());
            b.extend(header);
            b.extend(zstd::stream::encode_all(body, 1).unwrap());
            b
        };
        let e = State::decode(&framed(comment(99).as_bytes(), b"not even JSON")[..], "st")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 99, written by a newer"), "{e}");
        // A header naming a version its container never held, over a current document.
        for (what, bytes) in [
            ("zstd", framed(comment(9).as_bytes(), &sample().to_json())),
            ("gzip", gz(Some(&comment(6)), &sample().to_json())),
        ] {
            let e = State::decode(&bytes[..], "st").unwrap_err().to_string();
            assert!(
                e.contains("damaged") && e.contains("never saved compressed this way"),
                "{what}: {e}"
            );
        }
        for other in [
            framed(b"some other tool", b"{}"),
            framed(&[b'x'; 300], b"{}"),
            zstd::stream::encode_all(&sample().to_json()[..], 1).unwrap(),
        ] {
            let e = State::decode(&other[..], "st").unwrap_err().to_string();
            assert!(e.contains("not a finding-correlator state file"), "{e}");
        }
        // The header and the document disagree.
        let doc = String::from_utf8(sample().to_json()).unwrap().replacen(
            &format!("\"version\":{VERSION}"),
            "\"version\":6",
            1,
        );
        let e = State::decode(&gz(Some(&comment(VERSION)), doc.as_bytes())[..], "st")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("damaged") && e.contains(&format!("header says version {VERSION}")),
            "{e}"
        );
    }

    #[test]
    fn a_version_7_document_is_read_by_streaming_and_saved_as_this_version() {
        let st = full();
        let doc = st.to_json();
        let mut v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let mut shared = 0;
        // As version 7 wrote it: every instance list plain.
        for part in ["signals", "graph"] {
            for s in v[part].as_array_mut().unwrap() {
                if let Some(i) = s.get_mut("instances") {
                    shared += usize::from(i.get("shared").is_some());
                    let list = crate::signal::instance_list::deserialize(i.take()).unwrap();
                    *i = serde_json::to_value(list).unwrap();
                }
            }
        }
        assert!(
            shared > 0,
            "the sample has instances written in the shared form"
        );
        v["version"] = 7.into();
        let mut w = GzBuilder::new()
            .comment(comment(7))
            .write(Vec::new(), Compression::fast());
        w.write_all(&serde_json::to_vec(&v).unwrap()).unwrap();
        let v7 = w.finish().unwrap();
        let back = State::decode(&v7[..], "v7.state").unwrap();
        assert_eq!(back.version, VERSION);
        assert_eq!(back.to_json(), doc);
        // Saved again, it is this version's, and reads back the same.
        assert_eq!(
            State::decode(&back.encode()[..], "v8").unwrap().to_json(),
            doc
        );
    }

    #[test]
    fn a_version_6_document_migrates() {
        // As version 6 saved it: plain JSON.
        let v6 = r#"{"format":"finding-correlator-state","version":6,"written_by":"finding-correlator 0.1.0","checkpoints":{"cloudtrail":{"newest":"2025-05-09T11:02:33.000Z","records":138}},"newest":"2025-05-09T11:40:12.000Z","horizon":"2025-05-07T10:02:18.000Z","signals":[],"graph":[],"sequences":[],"baselines":{"accounts":{}}}"#;
        let st = State::decode(v6.as_bytes(), "v6.json").unwrap();
        assert_eq!(st.version, VERSION);
        assert_eq!(st.checkpoints["cloudtrail"].records, 138);
        // Saved again, it is compressed, and reads back the same.
        let back = State::decode(&st.encode()[..], "v7").unwrap();
        assert_eq!(back.to_json(), st.to_json());
    }

    #[test]
    fn a_carried_picture_that_does_not_hold_together_is_damage_naming_the_state() {
        let st = full();
        let carried = st
            .carried
            .as_ref()
            .expect("a run with a state carries its windows");
        assert!(
            carried.counts().2 > 0,
            "the fixtures leave signals in the windows"
        );
        let doc: serde_json::Value = serde_json::from_slice(&st.to_json()).unwrap();
        let n = doc["carried"]["signals"].as_array().unwrap().len();
        // Each way to break it: an entry naming a signal past the table, an entry of a stage
        // past the window's, aggregates of different sizes, a sequence naming a signal past
        // the table.
        let mut broken = Vec::new();
        for (part, field, value) in [
            ("entries", "signal", serde_json::json!(n)),
            ("entries", "stage", serde_json::json!(99)),
            ("counts", "", serde_json::json!([])),
            (
                "open",
                "",
                serde_json::json!({"start": 0, "created": 0, "opened": 0, "first_seen": 0,
                    "last_seen": 0, "signals": [n + 5], "total_signals": 1}),
            ),
        ] {
            let mut d = doc.clone();
            let groups = d["carried"]["rules"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .flat_map(|r| r["groups"].as_array_mut().unwrap().iter_mut());
            let mut done = false;
            for g in groups {
                if field.is_empty() {
                    g[part] = value.clone();
                    done = true;
                } else if let Some(entry) = g.get_mut(part).and_then(|p| p.get_mut(0)) {
                    entry[field] = value.clone();
                    done = true;
                }
                if done {
                    break;
                }
            }
            assert!(done, "the fixtures' picture has {part}");
            broken.push(serde_json::to_vec(&d).unwrap());
        }
        for text in broken {
            let e = State::from_json(std::str::from_utf8(&text).unwrap(), "st.json")
                .expect_err("refused")
                .to_string();
            assert!(
                e.contains("st.json") && e.contains("carried windows"),
                "{e}"
            );
            let mut w = GzBuilder::new()
                .comment(comment(VERSION))
                .write(Vec::new(), Compression::fast());
            w.write_all(&text).unwrap();
            let e = State::decode(&w.finish().unwrap()[..], "st")
                .expect_err("refused")
                .to_string();
            assert!(e.contains("carried windows"), "{e}");
        }
    }
}
