//! A fuzz harness for framing and every decoder, on stable Rust, run by the test suite.
//!
//! Real records (every fixture record and the published ones in `../shared/realdata/`) are
//! laid out as a file in one of the layouts the tool reads (JSON Lines, records concatenated
//! without separators, a bare array, a `{"Records":[…]}` document compact or pretty-printed,
//! pretty-printed records one after another); one record is damaged by a random mutation
//! (a byte replaced by a structural character or a stray byte, deleted, inserted, a cut, a
//! range deleted or repeated). Invariants, on every input:
//!
//! - decoding never panics;
//! - the framer's work is linear: it examines at most 8 bytes per input byte (plus 4 KiB);
//! - every undamaged record still decodes. After damage inside an array or among
//!   concatenated records, framing finds the next record by the first key the records share
//!   (`{"eventVersion"`, as every record of one publisher's file does), so in those layouts
//!   a file's records share their first key, and damage to the first key of the first record
//!   is left out of this check. Pretty-printed records one after another (not an array) are
//!   left out of it too: damage that unbalances their brackets can still cost the record
//!   after the damaged one (framing goes on at the next line opening an object at its first
//!   column, which the damage can move); they are still checked for panics and linear work.
//!
//! The generator is seeded (`SEED`) so a failure is reproducible: its input is written to
//! `target/fuzz-failures/`. `ITERATIONS` inputs are tried, within `BUDGET` at most.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use finding_correlator::normalize::{self, DecodeOptions, Decoded};

use crate::common::{fixture, repo, shared};

const SEED: u64 = 0x1234_5678_9abc_def1;
const ITERATIONS: usize = 20_000;
const BUDGET: Duration = Duration::from_secs(60);

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One record: its compact text and the reference its signal has when decoded alone.
struct Record {
    text: String,
    key: String,
}

/// What decoding `bytes` yields: signal references, and the bytes examined and read.
fn decode(bytes: &[u8]) -> (Vec<String>, u64, u64) {
    let mut keys = Vec::new();
    let stats = normalize::decode_reader(bytes, &DecodeOptions::default(), &mut |d| {
        if let Decoded::Signal(_, s) = d {
            keys.push(s.reference.key());
        }
    });
    (keys, stats.examined, stats.bytes)
}

/// Every value of a document that may be a record: array elements and wrapper elements.
fn flatten(v: serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        serde_json::Value::Object(mut m) => {
            for key in ["Records", "Findings", "findings", "Events"] {
                if let Some(serde_json::Value::Array(items)) = m.remove(key) {
                    items.into_iter().for_each(|i| flatten(i, out));
                    return;
                }
            }
            out.push(serde_json::Value::Object(m));
        }
        _ => {}
    }
}

fn corpus() -> Vec<Record> {
    let mut files = Vec::new();
    for dir in [
        fixture("cloudtrail"),
        fixture("guardduty"),
        fixture("asff"),
        shared("realdata"),
    ] {
        collect(&dir, &mut files);
    }
    let mut values = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match serde_json::from_str(&text) {
            Ok(v) => flatten(v, &mut values),
            Err(_) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .for_each(|v| flatten(v, &mut values)),
        }
    }
    let mut seen = HashSet::new();
    values
        .into_iter()
        .filter_map(|v| {
            let text = v.to_string();
            let (keys, _, _) = decode(text.as_bytes());
            (keys.len() == 1 && seen.insert(keys[0].clone())).then(|| Record {
                text,
                key: keys[0].clone(),
            })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
            out.push(p);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    Lines,
    Concatenated,
    Array,
    Wrapper,
    PrettyWrapper,
    PrettyRecords,
}

const LAYOUTS: [Layout; 6] = [
    Layout::Lines,
    Layout::Concatenated,
    Layout::Array,
    Layout::Wrapper,
    Layout::PrettyWrapper,
    Layout::PrettyRecords,
];

fn pretty(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    serde_json::to_string_pretty(&v).unwrap()
}

/// Damages `rec`; returns the first byte changed.
fn mutate(rng: &mut Rng, rec: &mut Vec<u8>) -> (usize, &'static str) {
    const BYTES: &[u8] = b"{}[]\",:\\\n 0a\xff";
    let i = rng.below(rec.len());
    let byte = BYTES[rng.below(BYTES.len())];
    match rng.below(6) {
        0 => {
            rec[i] = byte;
            (i, "replace")
        }
        1 => {
            rec.remove(i);
            (i, "delete")
        }
        2 => {
            rec.insert(i, byte);
            (i, "insert")
        }
        3 => {
            rec.truncate(i.max(1));
            (i, "cut")
        }
        4 => {
            let end = (i + 1 + rng.below(64)).min(rec.len());
            rec.drain(i..end);
            (i, "delete range")
        }
        _ => {
            let end = (i + 1 + rng.below(64)).min(rec.len());
            let copy = rec[i..end].to_vec();
            rec.splice(i..i, copy);
            (i, "repeat range")
        }
    }
}

/// A record's first key.
fn first_key(text: &str) -> &str {
    text.split('"').nth(1).unwrap_or_default()
}

/// The end of a record's first key (`{"eventVersion"`), pretty-printed or not.
fn first_key_end(rec: &[u8]) -> usize {
    let open = rec.iter().position(|&b| b == b'"').unwrap_or(0);
    open + 1 + rec[open + 1..].iter().position(|&b| b == b'"').unwrap_or(0) + 1
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn issue_12_fuzz_framing_and_decoders() {
    let records = corpus();
    assert!(
        records.len() >= 20,
        "only {} records in the corpus",
        records.len()
    );
    let mut rng = Rng(SEED);
    let started = Instant::now();
    let mut done = 0;
    while done < ITERATIONS && started.elapsed() < BUDGET {
        done += 1;
        let layout = LAYOUTS[rng.below(LAYOUTS.len())];
        let n = 2 + rng.below(6);
        let keyed = matches!(
            layout,
            Layout::Concatenated | Layout::Array | Layout::Wrapper | Layout::PrettyWrapper
        );
        let first = &records[rng.below(records.len())];
        let peers: Vec<&Record> = records
            .iter()
            .filter(|r| !keyed || first_key(&r.text) == first_key(&first.text))
            .collect();
        let picked: Vec<&Record> = std::iter::once(first)
            .chain((1..n).map(|_| peers[rng.below(peers.len())]))
            .collect();
        let damaged = rng.below(n);
        let mut texts: Vec<Vec<u8>> = picked
            .iter()
            .map(|r| match layout {
                Layout::PrettyWrapper | Layout::PrettyRecords => pretty(&r.text).into_bytes(),
                _ => r.text.clone().into_bytes(),
            })
            .collect();
        let key_end = first_key_end(&texts[0]);
        let (at, how) = mutate(&mut rng, &mut texts[damaged]);
        let join = |sep: &[u8]| texts.join(sep);
        let input: Vec<u8> = match layout {
            Layout::Lines => join(b"\n"),
            Layout::Concatenated => join(b""),
            Layout::Array => [b"[".to_vec(), join(b","), b"]".to_vec()].concat(),
            Layout::Wrapper => [b"{\"Records\":[".to_vec(), join(b","), b"]}".to_vec()].concat(),
            Layout::PrettyWrapper => [
                b"{\n  \"Records\": [\n".to_vec(),
                join(b",\n"),
                b"\n  ]\n}\n".to_vec(),
            ]
            .concat(),
            Layout::PrettyRecords => join(b"\n"),
        };
        let (got, examined, bytes) = decode(&input);
        let fail = |why: String| {
            let dir = repo().join("target").join("fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("input-{done}.json"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "iteration {done} ({layout:?}, {how} at byte {at} of record {damaged} of {n}): {why}; input in {}",
                path.display()
            );
        };
        if examined > 8 * bytes + 4096 {
            fail(format!("{examined} bytes examined for {bytes}"));
        }
        if layout == Layout::PrettyRecords || (keyed && damaged == 0 && at <= key_end) {
            continue;
        }
        let got: HashSet<&String> = got.iter().collect();
        for (i, r) in picked.iter().enumerate() {
            if i != damaged && !got.contains(&r.key) {
                fail(format!("undamaged record {i} ({}) lost", r.key));
            }
        }
    }
    eprintln!(
        "fuzz: {done} inputs from {} records in {:.1?}",
        records.len(),
        started.elapsed()
    );
}
