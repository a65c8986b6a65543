//! How a state is saved and read back (version 7 on): the JSON document, gzip-compressed, read
//! by streaming.
//!
//! The document is the same JSON as before; `zcat state` shows it. The gzip header's comment
//! names the format and version (`finding-correlator-state version 7`), so a reader knows what
//! it holds before it decompresses anything: a newer version is refused at once, and the
//! current one is deserialized straight from the decompressing reader into [`State`], with no
//! JSON value tree and no copy of the whole text in memory. Writing streams the same way, into
//! the file (or the buffer sent to S3) through the compressor.
//!
//! A plain JSON document (every version up to 6, or a current one decompressed by hand) is read
//! as before and migrated. Damage anywhere (header, deflate stream, CRC, the document inside)
//! is [`StateError::Corrupt`] naming the state.

use std::io::{self, BufRead, BufWriter, Read, Write};

use flate2::Compression;
use flate2::GzBuilder;
use flate2::bufread::GzDecoder;

use super::{FORMAT, State, StateError, VERSION};

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The compression level: JSON states shrink about tenfold at it, and a state of tens of
/// megabytes compresses in a fraction of a second.
const LEVEL: u32 = 3;

/// Largest document a compressed state may decompress to (a damaged or hostile file must not
/// fill memory): 2 GiB, eight times the largest state file read.
pub const DECODED_MAX: u64 = 8 * crate::local_file::STATE_MAX;

/// The gzip header comment of a compressed state of `version`.
fn comment(version: u32) -> String {
    format!("{FORMAT} version {version}")
}

/// The version a gzip header comment names, or None when it is not a state's.
fn version_of(comment: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(comment).ok()?;
    let rest = text.strip_prefix(FORMAT)?.strip_prefix(" version ")?;
    rest.parse().ok()
}

impl State {
    /// Writes the state as it is saved (gzip-compressed JSON) into `out`, and returns it.
    ///
    /// # Errors
    /// The errors of writing to `out`.
    pub fn encode_to<W: Write>(&self, out: W) -> io::Result<W> {
        let gz = GzBuilder::new()
            .comment(comment(self.version))
            .write(out, Compression::new(LEVEL));
        let mut buf = BufWriter::with_capacity(1 << 16, gz);
        serde_json::to_writer(&mut buf, self).map_err(io::Error::from)?;
        buf.write_all(b"\n")?;
        let gz = buf.into_inner().map_err(io::IntoInnerError::into_error)?;
        gz.finish()
    }

    /// The state as it is saved.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to(Vec::new())
            .expect("writing into memory does not fail")
    }

    /// Reads a saved state: compressed (version 7 on) or plain JSON (any version), migrating
    /// older versions. `origin` names it in errors.
    ///
    /// # Errors
    /// [`StateError::NotState`], [`StateError::Newer`], [`StateError::Corrupt`], or
    /// [`StateError::Io`] when reading fails.
    pub fn decode<R: BufRead>(mut input: R, origin: &str) -> Result<State, StateError> {
        let corrupt = |message: String| StateError::Corrupt {
            origin: origin.to_string(),
            message,
        };
        let head = input.fill_buf().map_err(|source| StateError::Io {
            origin: origin.to_string(),
            source,
        })?;
        if !(head.len() >= 2 && head[..2] == GZIP_MAGIC) {
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
        }
        let mut gz = GzDecoder::new(input);
        let Some(header) = gz.header() else {
            // The header could not be parsed: reading says why.
            let e = gz
                .read(&mut [0u8; 1])
                .err()
                .map_or_else(|| "incomplete gzip header".to_string(), |e| e.to_string());
            return Err(corrupt(format!("gzip header: {e}")));
        };
        let Some(version) = header.comment().and_then(version_of) else {
            return Err(StateError::NotState {
                origin: origin.to_string(),
            });
        };
        if version > u64::from(VERSION) {
            return Err(StateError::Newer {
                origin: origin.to_string(),
                found: version,
            });
        }
        let body = Limited {
            inner: gz,
            left: DECODED_MAX,
        };
        let compressed_error = |e: serde_json::Error| {
            if e.is_io() {
                corrupt(format!("compressed data: {e}"))
            } else {
                corrupt(e.to_string())
            }
        };
        if version != u64::from(VERSION) {
            // A compressed older version (none yet): through the migrations.
            let mut text = String::new();
            io::BufReader::new(body)
                .read_to_string(&mut text)
                .map_err(|e| corrupt(format!("compressed data: {e}")))?;
            return State::from_json(&text, origin);
        }
        let state: State = serde_json::from_reader(io::BufReader::with_capacity(1 << 16, body))
            .map_err(compressed_error)?;
        if state.format != FORMAT {
            return Err(StateError::NotState {
                origin: origin.to_string(),
            });
        }
        if u64::from(state.version) != version {
            return Err(corrupt(format!(
                "its gzip header says version {version}, its document version {}",
                state.version
            )));
        }
        Ok(state)
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
        assert_eq!(bytes[..2], GZIP_MAGIC);
        let back = State::decode(&bytes[..], "s").unwrap();
        // Equal as documents: every field, in the same encoding.
        assert_eq!(back.to_json(), st.to_json());
        // Decompressed, it is the JSON document.
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), st.to_json());
        // And that plain document loads too.
        let plain = State::decode(text.as_bytes(), "s").unwrap();
        assert_eq!(plain.to_json(), st.to_json());
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
        // The header and the document disagree.
        let doc = String::from_utf8(sample().to_json()).unwrap().replacen(
            "\"version\":7",
            "\"version\":6",
            1,
        );
        let e = State::decode(&gz(Some(&comment(VERSION)), doc.as_bytes())[..], "st")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("damaged") && e.contains("header says version 7"),
            "{e}"
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
}
