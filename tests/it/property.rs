//! Property tests of the decoders, starting from real records and mutating them.
//!
//! The corpus is every record of `../shared/realdata/` (Stratus Red Team detonations, Panther's
//! CloudTrail and GuardDuty test events) and of `../shared/samples/` (wrapper documents split
//! into their records). The properties:
//!
//! * structure-preserving mutations (a key deleted, a value replaced by another JSON type) never
//!   lose a record silently: records in = signals + problems out;
//! * in a JSON Lines file with one corrupted line, every other line decodes as before;
//! * the same records in any container (JSON Lines, bare array, `{"Records":[…]}`, EventBridge
//!   envelopes, pretty-printed, gzipped) give identical signals;
//! * a truncated document (plain or gzipped) gives exactly the signals of the records complete
//!   before the cut, and one problem for the cut;
//! * corrupt gzip and random bytes never panic, and never change signals without a problem.

use std::io::{Read, Write};
use std::sync::OnceLock;

use finding_correlator::signal::{RecordRef, Signal};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::Config;
use serde_json::{Value, json};

use crate::common::{Decodes, decode_bytes, shared};

// ---------------------------------------------------------------------------------------------
// The corpus

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    CloudTrail,
    GuardDuty,
    Asff,
}

/// What one record decodes to (as one line of a JSON Lines document).
#[derive(Clone, Debug, Default)]
struct Out {
    signals: Vec<Signal>,
    reasons: Vec<String>,
}

struct Entry {
    origin: String,
    /// The record as published: a line of a `.jsonl` file, or the compact form of a sample.
    raw: Vec<u8>,
    value: Value,
    /// `serde_json::to_vec` / `to_vec_pretty` of `value` (keys sorted).
    compact: Vec<u8>,
    pretty: Vec<u8>,
    /// The family an EventBridge envelope would promise; None for envelopes, LookupEvents
    /// elements and non-records.
    family: Option<Family>,
    raw_out: Out,
    compact_out: Out,
}

struct Corpus {
    entries: Vec<Entry>,
    /// Indices into `entries` by source, so that small sources are picked as often as large.
    groups: Vec<Vec<usize>>,
}

fn family_of(v: &Value) -> Option<Family> {
    let has = |k: &str| v.get(k).is_some();
    if has("detail-type") || has("CloudTrailEvent") {
        None
    } else if has("eventSource") || has("eventName") {
        Some(Family::CloudTrail)
    } else if v.get("SchemaVersion").and_then(Value::as_str) == Some("2018-10-08")
        || (has("ProductArn") && has("Resources"))
    {
        Some(Family::Asff)
    } else if has("type") || has("Type") {
        Some(Family::GuardDuty)
    } else {
        None
    }
}

/// What each of `records` decodes to, from one JSON Lines document of them (one `decode_bytes`
/// per record would cost a reader's buffer each). Each record must give exactly one result.
fn outs_of(records: &[&[u8]]) -> Vec<Out> {
    let doc: Vec<u8> = records.iter().flat_map(|r| [*r, b"\n"].concat()).collect();
    let d = decode_bytes(&doc);
    assert!(d.not_json.is_none());
    let mut outs = vec![Out::default(); records.len()];
    for p in &d.problems {
        let n = p.location.as_ref().expect("located").line as usize - 1;
        assert!(
            outs[n].reasons.is_empty(),
            "two problems on line {}: {p}",
            n + 1
        );
        outs[n].reasons.push(p.reason.clone());
    }
    let mut signals = d.only_signals().into_iter();
    for out in outs.iter_mut().filter(|o| o.reasons.is_empty()) {
        out.signals
            .push(signals.next().expect("one signal per record").clone());
    }
    assert!(signals.next().is_none(), "more signals than records");
    outs
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        // (origin, raw) by group.
        let mut sources: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
        for rel in [
            "realdata/stratus-red-team/all-detonations.jsonl",
            "realdata/panther-test-events/cloudtrail-test-events.jsonl",
            "realdata/panther-test-events/guardduty-test-findings.jsonl",
        ] {
            let text = std::fs::read_to_string(shared(rel)).unwrap();
            sources.push(
                text.lines()
                    .enumerate()
                    .map(|(i, line)| (format!("{rel}:{}", i + 1), line.as_bytes().to_vec()))
                    .collect(),
            );
        }
        let mut files = Vec::new();
        for dir in ["cloudtrail", "guardduty", "asff"] {
            for e in std::fs::read_dir(shared(&format!("samples/{dir}"))).unwrap() {
                files.push(e.unwrap().path());
            }
        }
        files.sort();
        let mut samples = Vec::new();
        for path in files {
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let wrapped = ["Records", "Events", "findings", "Findings"]
                .into_iter()
                .find_map(|k| doc.get(k).and_then(Value::as_array));
            let records = match (wrapped, doc.as_array()) {
                (Some(list), _) | (None, Some(list)) => list.clone(),
                (None, None) => vec![doc],
            };
            for (i, rec) in records.iter().enumerate() {
                samples.push((
                    format!("samples/{name}[{i}]"),
                    serde_json::to_vec(rec).unwrap(),
                ));
            }
        }
        sources.push(samples);

        let mut entries = Vec::new();
        let mut groups = Vec::new();
        for source in sources {
            let values: Vec<Value> = source
                .iter()
                .map(|(origin, raw)| {
                    serde_json::from_slice(raw).unwrap_or_else(|e| panic!("{origin}: {e}"))
                })
                .collect();
            let compacts: Vec<Vec<u8>> = values
                .iter()
                .map(|v| serde_json::to_vec(v).unwrap())
                .collect();
            let raws: Vec<&[u8]> = source.iter().map(|(_, raw)| &raw[..]).collect();
            let raw_outs = outs_of(&raws);
            let compact_outs = outs_of(&compacts.iter().map(|c| &c[..]).collect::<Vec<_>>());
            let mut group = Vec::new();
            for ((((origin, raw), value), compact), (raw_out, compact_out)) in source
                .into_iter()
                .zip(values)
                .zip(compacts)
                .zip(raw_outs.into_iter().zip(compact_outs))
            {
                group.push(entries.len());
                entries.push(Entry {
                    origin,
                    family: family_of(&value),
                    pretty: serde_json::to_vec_pretty(&value).unwrap(),
                    raw,
                    value,
                    compact,
                    raw_out,
                    compact_out,
                });
            }
            groups.push(group);
        }
        Corpus { entries, groups }
    })
}

/// Picks a record: first a source, then a record of it.
fn pick() -> impl Strategy<Value = usize> {
    (0..4usize, any::<Index>()).prop_map(|(g, i)| {
        let group = &corpus().groups[g];
        group[i.index(group.len())]
    })
}

fn picks(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(pick(), 1..=max)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Only tests/it/property.rs and realdata.rs are ours to write: no regression files.
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Containers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// One record per line (pretty records span several lines).
    Lines,
    Array,
    ArrayPretty,
    Records,
    RecordsPretty,
}

const LAYOUTS: [Layout; 5] = [
    Layout::Lines,
    Layout::Array,
    Layout::ArrayPretty,
    Layout::Records,
    Layout::RecordsPretty,
];

/// Lays records out in a document; returns it and each record's (start, end) offsets.
fn layout(parts: &[Vec<u8>], how: Layout) -> (Vec<u8>, Vec<(usize, usize)>) {
    let (open, sep, close): (&[u8], &[u8], &[u8]) = match how {
        Layout::Lines => (b"", b"\n", b"\n"),
        Layout::Array => (b"[", b",", b"]"),
        Layout::ArrayPretty => (b"[\n", b",\n", b"\n]\n"),
        Layout::Records => (b"{\"Records\":[", b",", b"]}"),
        Layout::RecordsPretty => (b"{\n  \"Records\": [\n", b",\n", b"\n  ]\n}\n"),
    };
    let mut doc = open.to_vec();
    let mut spans = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            doc.extend_from_slice(sep);
        }
        spans.push((doc.len(), doc.len() + p.len()));
        doc.extend_from_slice(p);
    }
    doc.extend_from_slice(close);
    (doc, spans)
}

/// An EventBridge event carrying `record` (its bytes embedded as they are).
/// The bytes of the chosen corpus records, compact or pretty-printed, each in its EventBridge
/// envelope when asked (records of families EventBridge carries).
fn record_bytes(c: &Corpus, ids: &[usize], pretty: bool, in_envelopes: bool) -> Vec<Vec<u8>> {
    ids.iter()
        .map(|&i| {
            let e = &c.entries[i];
            let bytes = if pretty { &e.pretty } else { &e.compact };
            match e.family {
                Some(f) if in_envelopes => envelope(bytes, f, pretty),
                _ => bytes.clone(),
            }
        })
        .collect()
}

fn envelope(record: &[u8], family: Family, pretty: bool) -> Vec<u8> {
    let (detail_type, source) = match family {
        Family::CloudTrail => ("AWS API Call via CloudTrail", "aws.ec2"),
        Family::GuardDuty => ("GuardDuty Finding", "aws.guardduty"),
        Family::Asff => ("Security Hub Findings - Imported", "aws.securityhub"),
    };
    let nl = if pretty { "\n  " } else { "" };
    let mut out = format!(
        "{{{nl}\"version\": \"0\",{nl}\"id\": \"7bf73129-1428-4cd3-a780-95db273d1602\",{nl}\"detail-type\": \"{detail_type}\",{nl}\"source\": \"{source}\",{nl}\"account\": \"111122223333\",{nl}\"time\": \"2025-05-02T09:20:00Z\",{nl}\"region\": \"us-east-1\",{nl}\"resources\": [],{nl}\"detail\": "
    )
    .into_bytes();
    if family == Family::Asff {
        out.extend_from_slice(format!("{{{nl}\"findings\": [").as_bytes());
        out.extend_from_slice(record);
        out.extend_from_slice(b"]}");
    } else {
        out.extend_from_slice(record);
    }
    out.extend_from_slice(if pretty { b"\n}" } else { b"}" });
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// What a gzip decoder yields before it fails (the whole content for a good stream).
fn gunzip_prefix(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(gz);
    let mut buf = [0u8; 8192];
    loop {
        match dec.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn signals(d: &Decodes) -> Vec<Signal> {
    d.only_signals().into_iter().cloned().collect()
}

fn reasons(d: &Decodes) -> Vec<String> {
    d.problems.iter().map(|p| p.reason.clone()).collect()
}

fn origins(ids: &[usize]) -> Vec<&'static str> {
    ids.iter()
        .map(|&i| corpus().entries[i].origin.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    At(usize),
}

/// Every path to a value below the root, depth first.
fn value_paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                value_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::At(i));
                out.push(prefix.clone());
                value_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()).unwrap(),
        Seg::At(i) => v.get_mut(*i).unwrap(),
    })
}

/// A value of another JSON type than most record fields have.
#[derive(Clone, Debug)]
enum NewValue {
    Int(i64),
    Float(f64),
    Str(String),
    Null,
    Bool(bool),
    Object(Value),
    Array(Value),
    /// A string of this many bytes (past the framer's 1 MiB chunk).
    Huge(usize),
}

impl NewValue {
    fn value(&self) -> Value {
        match self {
            NewValue::Int(n) => json!(n),
            NewValue::Float(f) => json!(f),
            NewValue::Str(s) => json!(s),
            NewValue::Null => Value::Null,
            NewValue::Bool(b) => json!(b),
            NewValue::Object(v) | NewValue::Array(v) => v.clone(),
            NewValue::Huge(n) => Value::String("x".repeat(*n)),
        }
    }
}

fn new_value() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        3 => any::<i64>().prop_map(NewValue::Int),
        2 => prop::num::f64::NORMAL.prop_map(NewValue::Float),
        3 => prop_oneof![
            "[ -~]{0,24}",
            "\\PC{0,8}",
            Just("2025-05-02T09:20:00Z".to_string()),
            Just("12".to_string()),
            Just(String::new()),
        ]
        .prop_map(NewValue::Str),
        2 => Just(NewValue::Null),
        1 => any::<bool>().prop_map(NewValue::Bool),
        2 => prop_oneof![
            Just(json!({})),
            Just(json!({"value": "p2.xlarge"})),
            Just(json!({"a": [1, {"b": null}], "items": "x"})),
        ]
        .prop_map(NewValue::Object),
        2 => prop_oneof![
            Just(json!([])),
            Just(json!([1, "x", null, {}, []])),
            Just(json!([{"key": "aws:autoscaling:groupName"}])),
        ]
        .prop_map(NewValue::Array),
        1 => ((1usize << 20)..(1usize << 20) + 4096).prop_map(NewValue::Huge),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteKey(Index),
    Replace(Index, NewValue),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteKey),
        (any::<Index>(), new_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
    ]
}

/// Applies `m` to a copy of `v`; the path it touched is returned for messages.
fn mutate(v: &Value, m: &Mutation) -> (Value, String) {
    let mut v = v.clone();
    let mut all = Vec::new();
    value_paths(&v, &mut Vec::new(), &mut all);
    let describe = |p: &[Seg]| format!("{p:?}");
    match m {
        Mutation::DeleteKey(i) => {
            let keys: Vec<&Vec<Seg>> = all
                .iter()
                .filter(|p| matches!(p.last(), Some(Seg::Key(_))))
                .collect();
            if keys.is_empty() {
                return (v, "nothing to delete".into());
            }
            let path = keys[i.index(keys.len())].clone();
            let (last, parent) = path.split_last().unwrap();
            let Seg::Key(k) = last else { unreachable!() };
            at_mut(&mut v, parent).as_object_mut().unwrap().remove(k);
            (v, format!("deleted {}", describe(&path)))
        }
        Mutation::Replace(i, new) => {
            if all.is_empty() {
                return (v, "nothing to replace".into());
            }
            let path = &all[i.index(all.len())];
            *at_mut(&mut v, path) = new.value();
            (v, format!("replaced {}", describe(path)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(128))]

    /// Deleting a key or changing a value's type anywhere in records never loses one
    /// silently, in any container: records in = signals + problems out.
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn mutated_records_are_each_a_signal_or_a_problem(
        records in prop::collection::vec((pick(), mutation()), 1..=5),
        how in select(LAYOUTS.to_vec()),
        pretty in any::<bool>(),
        in_envelopes in any::<bool>(),
        gz in any::<bool>(),
    ) {
        let c = corpus();
        let mut parts = Vec::new();
        let mut what = Vec::new();
        for (i, m) in &records {
            let e = &c.entries[*i];
            let (v, did) = mutate(&e.value, m);
            let bytes = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            let bytes = match family_of(&v) {
                Some(f) if in_envelopes => envelope(&bytes, f, pretty),
                _ => bytes,
            };
            what.push(format!("{}: {did}", e.origin));
            parts.push(bytes);
        }
        let (mut doc, _) = layout(&parts, how);
        if gz {
            doc = gzip(&doc);
        }
        let d = decode_bytes(&doc);
        prop_assert!(d.not_json.is_none());
        prop_assert_eq!(
            d.signals.len() + d.problems.len(),
            records.len(),
            "{:#?}\nproblems: {:#?}",
            what,
            reasons(&d)
        );
    }

    /// One corrupted line of a JSON Lines file costs that line only: every other line
    /// decodes to the same signals and problems as before, in order, and the corrupted line is
    /// reported (or still decodes).
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn a_corrupted_line_costs_only_that_line(
        ids in prop::collection::vec(pick(), 2..=6),
        line in any::<Index>(),
        corruption in corruption(),
    ) {
        let c = corpus();
        let bad = line.index(ids.len());
        let mut doc = Vec::new();
        let mut corrupted = Vec::new();
        for (n, &i) in ids.iter().enumerate() {
            let raw = &c.entries[i].raw;
            if n == bad {
                corrupted = corruption.apply(raw);
                doc.extend_from_slice(&corrupted);
            } else {
                doc.extend_from_slice(raw);
            }
            doc.push(b'\n');
        }
        // A first line that opens an array starts a (pretty-printed) array document as far as
        // anyone can tell; later in a JSON Lines file, it is one broken line.
        prop_assume!(!(bad == 0 && corrupted.trim_ascii_start().starts_with(b"[")));
        let d = decode_bytes(&doc);
        let ctx = format!(
            "records {:?}, line {} corrupted to {:?}\nnot_json {:?}\nproblems {:#?}",
            origins(&ids),
            bad + 1,
            String::from_utf8_lossy(&corrupted),
            d.not_json,
            d.problems.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        let before: Vec<Signal> = ids[..bad]
            .iter()
            .flat_map(|&i| c.entries[i].raw_out.signals.clone())
            .collect();
        let after: Vec<Signal> = ids[bad + 1..]
            .iter()
            .flat_map(|&i| c.entries[i].raw_out.signals.clone())
            .collect();
        let got = signals(&d);
        prop_assert!(got.len() >= before.len() + after.len(), "signals lost: {}", ctx);
        prop_assert!(got.starts_with(&before), "lines before changed: {}", ctx);
        prop_assert!(got.ends_with(&after), "lines after changed: {}", ctx);
        let middle = got.len() - before.len() - after.len();
        prop_assert!(middle <= 1, "{} signals from one line: {}", middle, ctx);

        // Problems of the other lines are theirs, unchanged; the corrupted line is reported
        // unless it still decodes (or became blank).
        let mut at_bad = 0;
        let mut others = Vec::new();
        for p in &d.problems {
            let loc = p.location.as_ref();
            prop_assert!(loc.is_some(), "unlocated problem {}: {}", p, ctx);
            let n = loc.unwrap().line as usize - 1;
            if n == bad {
                at_bad += 1;
            } else {
                others.push((n, p.reason.clone()));
            }
        }
        let want: Vec<(usize, String)> = ids
            .iter()
            .enumerate()
            .filter(|(n, _)| *n != bad)
            .flat_map(|(n, &i)| c.entries[i].raw_out.reasons.iter().map(move |r| (n, r.clone())))
            .collect();
        prop_assert_eq!(others, want, "{}", ctx);
        if !corrupted.trim_ascii().is_empty() {
            prop_assert!(middle + at_bad >= 1, "corrupted line lost silently: {}", ctx);
        }
    }

    /// The same records give the same signals in every container, pretty or compact,
    /// gzipped or not, duplicated or not (records without `eventID` get a hash reference that
    /// must not depend on white space).
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn every_container_gives_the_same_signals(
        ids in picks(6),
        how in select(LAYOUTS.to_vec()),
        pretty in any::<bool>(),
        in_envelopes in any::<bool>(),
        gz in any::<bool>(),
        twice in any::<bool>(),
    ) {
        let c = corpus();
        let ids: Vec<usize> = if twice {
            ids.iter().chain(&ids).copied().collect()
        } else {
            ids
        };
        let parts = record_bytes(c, &ids, pretty, in_envelopes);
        let (mut doc, _) = layout(&parts, how);
        if gz {
            doc = gzip(&doc);
        }
        let d = decode_bytes(&doc);
        let want: Vec<Signal> = ids
            .iter()
            .flat_map(|&i| c.entries[i].compact_out.signals.clone())
            .collect();
        let want_reasons: Vec<String> = ids
            .iter()
            .flat_map(|&i| c.entries[i].compact_out.reasons.clone())
            .collect();
        prop_assert!(d.not_json.is_none());
        prop_assert_eq!(signals(&d), want, "{:?}", origins(&ids));
        prop_assert_eq!(d.problems.len(), want_reasons.len(), "{:?}", reasons(&d));
        if !in_envelopes {
            prop_assert_eq!(reasons(&d), want_reasons);
        }
    }

    /// A document cut anywhere gives exactly the signals of the records complete before the
    /// cut, and one problem when the cut falls inside it.
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn a_truncated_document_keeps_the_complete_records(
        ids in picks(5),
        how in select(LAYOUTS.to_vec()),
        pretty in any::<bool>(),
        cut in any::<Index>(),
    ) {
        let c = corpus();
        let parts: Vec<Vec<u8>> = ids
            .iter()
            .map(|&i| {
                let e = &c.entries[i];
                match (pretty, how) {
                    (true, _) => e.pretty.clone(),
                    (false, Layout::Lines) => e.raw.clone(),
                    (false, _) => e.compact.clone(),
                }
            })
            .collect();
        let out = |i: usize| {
            let e = &c.entries[i];
            if !pretty && how == Layout::Lines { &e.raw_out } else { &e.compact_out }
        };
        let (doc, spans) = layout(&parts, how);
        let cut = cut.index(doc.len() + 1);
        let d = decode_bytes(&doc[..cut]);
        let complete: Vec<usize> = (0..ids.len()).filter(|&n| spans[n].1 <= cut).collect();
        let want: Vec<Signal> = complete.iter().flat_map(|&n| out(ids[n]).signals.clone()).collect();
        let base_problems: usize = complete.iter().map(|&n| out(ids[n]).reasons.len()).sum();
        let broken = if how == Layout::Lines {
            spans.iter().any(|&(s, e)| s < cut && cut < e)
        } else {
            cut > 0 && doc[..cut].trim_ascii_end() != doc.trim_ascii_end()
        };
        let ctx = format!(
            "{:?} {:?} pretty {} cut at {} of {}: {:?}",
            origins(&ids), how, pretty, cut, doc.len(),
            d.problems.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        prop_assert!(d.not_json.is_none(), "{}", ctx);
        prop_assert_eq!(signals(&d), want, "{}", ctx);
        // A cut record is reported. Framing then goes on at a guess of the next record: an
        // object that opens with the records' first key, which may be one nested inside the
        // cut record, so the same damage can be named more than once (a known limit of
        // resynchronising by key). Nothing is lost and nothing invented: the signals above
        // are exact.
        let problems = d.problems.len();
        if broken {
            prop_assert!(problems > base_problems, "the cut is not reported: {}", ctx);
        } else {
            prop_assert_eq!(problems, base_problems, "{}", ctx);
        }
    }

    /// A gzip stream cut anywhere gives the signals of the records complete in what can be
    /// decompressed, and one problem for the cut.
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn a_truncated_gzip_keeps_the_complete_records(
        ids in picks(8),
        how in select(LAYOUTS.to_vec()),
        cut in any::<Index>(),
    ) {
        let c = corpus();
        let parts: Vec<Vec<u8>> = ids
            .iter()
            .map(|&i| {
                let e = &c.entries[i];
                if how == Layout::Lines { e.raw.clone() } else { e.compact.clone() }
            })
            .collect();
        let out = |i: usize| {
            let e = &c.entries[i];
            if how == Layout::Lines { &e.raw_out } else { &e.compact_out }
        };
        let (doc, spans) = layout(&parts, how);
        let gz = gzip(&doc);
        // Two bytes at least, so that the input is still recognised as gzip.
        let cut = 2 + cut.index(gz.len() - 1);
        let got = decode_bytes(&gz[..cut]);
        let available = gunzip_prefix(&gz[..cut]).len();
        // A line is known complete when its newline arrived.
        let slack = usize::from(how == Layout::Lines);
        let complete: Vec<usize> =
            (0..ids.len()).filter(|&n| spans[n].1 + slack <= available).collect();
        let want: Vec<Signal> = complete.iter().flat_map(|&n| out(ids[n]).signals.clone()).collect();
        let base_problems: usize = complete.iter().map(|&n| out(ids[n]).reasons.len()).sum();
        let ctx = format!(
            "{:?} {:?}: gzip of {} bytes cut at {} of {}, {} bytes decompress: {:?}",
            origins(&ids), how, doc.len(), cut, gz.len(), available,
            got.problems.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        prop_assert_eq!(signals(&got), want, "{}", ctx);
        prop_assert_eq!(
            got.problems.len(),
            base_problems + usize::from(cut < gz.len()),
            "{}", ctx
        );
    }
}

#[derive(Clone, Debug)]
enum Corruption {
    /// Keep this many bytes of the line (at least one, fewer than all).
    Truncate(Index),
    /// Insert bytes (never a newline) at a position.
    Insert(Index, Vec<u8>),
    /// Replace the line.
    Garbage(Vec<u8>),
}

const NOISE: &[u8] = b"{}[]\",:\\ aZ0-.\t\xff\xc3\x00";

fn corruption() -> impl Strategy<Value = Corruption> {
    let noise = |n| prop::collection::vec(select(NOISE), n);
    prop_oneof![
        any::<Index>().prop_map(Corruption::Truncate),
        (any::<Index>(), noise(1..4)).prop_map(|(i, b)| Corruption::Insert(i, b)),
        noise(1..40).prop_map(Corruption::Garbage),
    ]
}

impl Corruption {
    fn apply(&self, line: &[u8]) -> Vec<u8> {
        match self {
            Corruption::Truncate(i) => line[..1 + i.index(line.len() - 1)].to_vec(),
            Corruption::Insert(i, bytes) => {
                let at = i.index(line.len() + 1);
                [&line[..at], bytes, &line[at..]].concat()
            }
            Corruption::Garbage(bytes) => bytes.clone(),
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Corrupt gzip never panics, and never changes what decodes without saying so.
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn corrupt_gzip_is_reported_never_silent(
        ids in picks(4),
        how in select(LAYOUTS.to_vec()),
        damage in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let c = corpus();
        let parts: Vec<Vec<u8>> = ids.iter().map(|&i| c.entries[i].compact.clone()).collect();
        let (doc, _) = layout(&parts, how);
        let mut gz = gzip(&doc);
        for (at, byte) in &damage {
            let at = at.index(gz.len());
            gz[at] ^= byte | 1;
        }
        let d = decode_bytes(&gz);
        if d.problems.is_empty() && d.not_json.is_none() {
            let want: Vec<Signal> =
                ids.iter().flat_map(|&i| c.entries[i].compact_out.signals.clone()).collect();
            prop_assert_eq!(signals(&d), want, "{:?}", origins(&ids));
        }
    }

    /// Random bytes anywhere in a document never panic, and something is always said: a
    /// signal, a problem, or "not JSON".
    #[test]
    #[cfg_attr(not(shared_corpus), ignore = "needs ../shared/realdata and ../shared/samples beside the repository")]
    fn random_bytes_never_panic(
        ids in picks(4),
        how in select(LAYOUTS.to_vec()),
        noise in prop::collection::vec((any::<Index>(), prop::collection::vec(any::<u8>(), 1..6)), 1..4),
    ) {
        let c = corpus();
        let parts: Vec<Vec<u8>> = ids.iter().map(|&i| c.entries[i].raw.clone()).collect();
        let (mut doc, _) = layout(&parts, how);
        for (at, bytes) in &noise {
            let at = at.index(doc.len() + 1);
            doc.splice(at..at, bytes.iter().copied());
        }
        let d = decode_bytes(&doc);
        prop_assert!(
            !d.signals.is_empty() || !d.problems.is_empty() || d.not_json.is_some(),
            "{:?}: nothing at all from {:?}",
            origins(&ids),
            String::from_utf8_lossy(&doc[..doc.len().min(200)])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The same, deterministic, over the whole corpus and on the smallest inputs that show a bug

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn every_container_gives_the_same_signals_over_the_whole_corpus() {
    let c = corpus();
    let all: Vec<usize> = (0..c.entries.len()).collect();
    let want: Vec<Signal> = all
        .iter()
        .flat_map(|&i| c.entries[i].compact_out.signals.clone())
        .collect();
    let want_problems: usize = all
        .iter()
        .map(|&i| c.entries[i].compact_out.reasons.len())
        .sum();
    // Records without eventID (Panther's) are referenced by a hash of their bytes.
    let hashed = want
        .iter()
        .filter(|s| matches!(s.reference, RecordRef::Hash(_)))
        .count();
    assert!(hashed >= 30, "{hashed} hash references");
    for how in LAYOUTS {
        for pretty in [false, true] {
            for in_envelopes in [false, true] {
                let parts = record_bytes(c, &all, pretty, in_envelopes);
                let (doc, _) = layout(&parts, how);
                // Gzip (slow in a debug build) for two of the layouts.
                let gzipped = [false, true].into_iter().filter(|&gz| {
                    !gz || matches!(
                        (how, pretty, in_envelopes),
                        (Layout::Lines, false, false) | (Layout::RecordsPretty, true, true)
                    )
                });
                for gz in gzipped {
                    let d = if gz {
                        decode_bytes(&gzip(&doc))
                    } else {
                        decode_bytes(&doc)
                    };
                    let ctx = format!("{how:?} pretty {pretty} envelopes {in_envelopes} gzip {gz}");
                    assert!(d.not_json.is_none(), "{ctx}");
                    let got = signals(&d);
                    assert_eq!(got.len(), want.len(), "{ctx}");
                    for (n, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g, w, "{ctx}: signal {n}");
                    }
                    assert_eq!(d.problems.len(), want_problems, "{ctx}");
                }
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn published_bytes_and_their_compact_form_give_the_same_signals() {
    // Records with an eventID do not depend on their bytes at all.
    let c = corpus();
    for e in &c.entries {
        let with_id = e
            .raw_out
            .signals
            .iter()
            .all(|s| !matches!(s.reference, RecordRef::Hash(_)));
        if with_id {
            assert_eq!(e.raw_out.signals, e.compact_out.signals, "{}", e.origin);
        }
        assert_eq!(e.raw_out.reasons, e.compact_out.reasons, "{}", e.origin);
    }
}

/// Three Stratus lines.
fn three_lines() -> (Vec<Vec<u8>>, Vec<Signal>) {
    let c = corpus();
    let lines: Vec<Vec<u8>> = (0..3).map(|i| c.entries[i].raw.clone()).collect();
    let sigs = (0..3)
        .flat_map(|i| c.entries[i].raw_out.signals.clone())
        .collect();
    (lines, sigs)
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn a_truncated_line_in_json_lines_keeps_the_lines_after_it() {
    // A writer that died mid-line, then was restarted: line 2 is cut short.
    let (lines, sigs) = three_lines();
    let doc = [
        &lines[0][..],
        b"\n",
        &lines[1][..60],
        b"\n",
        &lines[2][..],
        b"\n",
    ]
    .concat();
    let d = decode_bytes(&doc);
    let problems: Vec<String> = d.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        signals(&d),
        [sigs[0].clone(), sigs[2].clone()],
        "line 3 must survive line 2: {problems:?}"
    );
    assert_eq!(d.problems.len(), 1, "{problems:?}");
    assert_eq!(d.problems[0].location.as_ref().map(|l| l.line), Some(2));
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn a_broken_line_that_opens_an_array_costs_only_that_line() {
    // JSON Lines may hold a batch of records as an array on one line; one cut short in the
    // middle of the file must not take the lines after it along.
    let (lines, sigs) = three_lines();
    let cut_batch = [b"[", &lines[1][..60]].concat();
    let doc = [
        &lines[0][..],
        b"\n",
        &cut_batch[..],
        b"\n",
        &lines[2][..],
        b"\n",
        b"[",
        &lines[0][..],
        b",",
        &lines[1][..],
        b"]\n",
    ]
    .concat();
    let d = decode_bytes(&doc);
    let problems: Vec<String> = d.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        signals(&d),
        [&sigs[0], &sigs[2], &sigs[0], &sigs[1]].map(Clone::clone),
        "lines 3 and 4 must survive line 2: {problems:?}"
    );
    assert_eq!(d.problems.len(), 1, "{problems:?}");
    assert_eq!(d.problems[0].location.as_ref().map(|l| l.line), Some(2));
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn json_lines_whose_first_line_is_broken_still_decode() {
    // The head of the first line is lost (a file cut at the front, as by log rotation).
    let (lines, sigs) = three_lines();
    let doc = [
        &lines[0][40..],
        b"\n",
        &lines[1][..],
        b"\n",
        &lines[2][..],
        b"\n",
    ]
    .concat();
    let d = decode_bytes(&doc);
    let problems: Vec<String> = d.problems.iter().map(ToString::to_string).collect();
    assert_eq!(d.not_json, None);
    assert_eq!(signals(&d), sigs[1..], "{problems:?}");
    assert_eq!(d.problems.len(), 1, "{problems:?}");
    assert_eq!(d.problems[0].location.as_ref().map(|l| l.line), Some(1));
}

#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn a_truncated_gzip_keeps_the_records_before_the_break() {
    let c = corpus();
    let doc: Vec<u8> = c.groups[0]
        .iter()
        .flat_map(|&i| [&c.entries[i].raw[..], b"\n"].concat())
        .collect();
    let gz = gzip(&doc);
    let cut = &gz[..gz.len() / 2];
    let available = gunzip_prefix(cut);
    let complete = available.iter().filter(|&&b| b == b'\n').count();
    assert!(
        complete > 50,
        "{complete} complete lines in half the stream"
    );
    let d = decode_bytes(cut);
    assert_eq!(
        d.signals.len(),
        complete,
        "{:?}",
        d.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert_eq!(d.problems.len(), 1);
    assert!(d.problems[0].reason.contains("truncated or corrupt gzip"));
}

// ---------------------------------------------------------------------------------------------
// The graph: the same records in any order give the same exports (issue 13)

/// The signals of every JSON record under `fixtures/` (the main scenario and every rule's
/// scenarios), and two records that disagree with one of them about an instance: an hour
/// earlier, another type in another region; an hour later, the instance named and nothing
/// else said of it (as `TerminateInstances` does). Sorted by reference.
fn fixture_signals() -> &'static [Signal] {
    static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
    SIGNALS.get_or_init(|| {
        let mut files = Vec::new();
        let mut dirs = vec![crate::common::fixture("")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut out: Vec<Signal> = files
            .iter()
            .flat_map(|f| signals(&decode_bytes(&std::fs::read(f).unwrap())))
            .collect();
        let described = out
            .iter()
            .find(|s| s.instances.iter().any(|i| i.instance_type.is_some()))
            .expect("a record describes an instance")
            .clone();
        let mut earlier = described.clone();
        earlier.reference = RecordRef::EventId("issue-13-earlier".into());
        earlier.time -= 3_600_000;
        earlier.region = Some("eu-west-1".into());
        for i in &mut earlier.instances {
            i.instance_type = Some("m5.24xlarge".into());
        }
        let mut later = described;
        later.reference = RecordRef::EventId("issue-13-later".into());
        later.time += 3_600_000;
        later.instances = later
            .instances
            .iter()
            .map(|i| finding_correlator::signal::InstanceInfo {
                instance_id: i.instance_id.clone(),
                ..Default::default()
            })
            .collect();
        out.extend([earlier, later]);
        out.sort_by_key(|s| (s.reference.key(), s.updated_at, s.source));
        out
    })
}

/// An order of [`fixture_signals`]: a random permutation of their indexes.
fn fixture_order() -> impl Strategy<Value = Vec<usize>> {
    Just(()).prop_perturb(|_, mut rng| {
        let mut idx: Vec<usize> = (0..fixture_signals().len()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.random_range(0..=i));
        }
        idx
    })
}

/// Every export of a graph built from `signals` in this order.
fn exports_of(signals: &[&Signal]) -> Vec<Vec<u8>> {
    use finding_correlator::graph::{DEFAULT_GROUP_PRECEDENCE, EntityGraph, export};
    let mut g = EntityGraph::new(DEFAULT_GROUP_PRECEDENCE.to_vec(), true);
    for s in signals {
        g.add_signal(s);
    }
    [
        export::Format::Json,
        export::Format::Dot,
        export::Format::Graphml,
        export::Format::Cypher,
    ]
    .into_iter()
    .map(|f| {
        let mut out = Vec::new();
        export::write(&g, f, &mut out).unwrap();
        out
    })
    .collect()
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn issue_13_fixture_records_in_any_order_give_the_same_exports(
        order in fixture_order()
    ) {
        let all = fixture_signals();
        prop_assume!(all.len() > 100);
        let sorted: Vec<&Signal> = all.iter().collect();
        let shuffled: Vec<&Signal> = order.iter().map(|&i| &all[i]).collect();
        let want = exports_of(&sorted);
        let got = exports_of(&shuffled);
        for (w, g) in want.iter().zip(&got) {
            prop_assert!(w == g, "an export differs between record orders");
        }
        // No node id twice (in the JSON, every format's reference).
        let doc: Value = serde_json::from_slice(&want[0]).unwrap();
        let ids: Vec<&str> = doc["elements"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["data"]["id"].as_str().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&&str> = ids.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len());
    }
}

#[test]
#[should_panic(expected = "a sealed graph kept for matching has no nodes or edges to export")]
fn a_sealed_graph_kept_for_matching_does_not_export() {
    use finding_correlator::graph::{DEFAULT_GROUP_PRECEDENCE, Detail, EntityGraph};
    let mut g = EntityGraph::with_detail(DEFAULT_GROUP_PRECEDENCE.to_vec(), Detail::Matching);
    for s in fixture_signals() {
        g.add_signal(s);
    }
    g.seal();
    let _ = g.snapshot();
}

#[test]
#[should_panic(expected = "a sealed graph takes no record")]
fn a_sealed_graph_takes_no_record() {
    use finding_correlator::graph::{DEFAULT_GROUP_PRECEDENCE, EntityGraph};
    let all = fixture_signals();
    let mut g = EntityGraph::new(DEFAULT_GROUP_PRECEDENCE.to_vec(), false);
    g.add_signal(&all[0]);
    g.seal();
    g.add_signal(&all[1]);
}

/// What matching and findings ask of a graph: its size, its groups and their members, every
/// entity's group and every instance's facts and region.
fn matching_view(
    g: &finding_correlator::graph::EntityGraph,
    entities: &[finding_correlator::signal::EntityId],
) -> Vec<String> {
    let mut out = vec![format!(
        "{} nodes, {} edges, {} entities",
        g.node_count(),
        g.edge_count(),
        g.entity_count()
    )];
    out.extend(
        g.groups()
            .map(|(group, members)| format!("{group}: {members:?}")),
    );
    for e in entities {
        out.push(format!("{e:?} in {:?}", g.group_of(e)));
        if e.kind == finding_correlator::signal::EntityKind::Instance {
            out.push(format!(
                "{:?} in {:?}",
                g.instance_info(&e.id),
                g.instance_region(&e.id)
            ));
        }
    }
    out
}

/// The nodes and edges an export would draw (by id, without labels or properties).
fn drawn(g: &finding_correlator::graph::EntityGraph) -> Vec<String> {
    let (nodes, edges) = g.snapshot();
    let mut out: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {}", n.kind, n.id))
        .collect();
    out.extend(edges.iter().map(|(a, b, k)| format!("{a} {k:?} {b}")));
    out
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn a_graph_kept_only_for_matching_answers_as_one_kept_for_exports(
        order in fixture_order()
    ) {
        use finding_correlator::graph::{DEFAULT_GROUP_PRECEDENCE, Detail, EntityGraph};
        use finding_correlator::signal::{EntityId, EntityKind};
        let all = fixture_signals();
        let mut full = EntityGraph::with_detail(DEFAULT_GROUP_PRECEDENCE.to_vec(), Detail::Entities);
        for s in all {
            full.add_signal(s);
        }
        let mut lean = EntityGraph::with_detail(DEFAULT_GROUP_PRECEDENCE.to_vec(), Detail::Matching);
        for &i in &order {
            lean.add_signal(&all[i]);
        }
        // Every entity the full graph has, and the groups' keys.
        let (nodes, _) = full.snapshot();
        let entities: Vec<EntityId> = nodes
            .iter()
            .filter_map(|n| {
                let kind = EntityKind::parse(n.kind)?;
                let id = n.id.strip_prefix(kind.as_str())?.strip_prefix(':')?;
                Some(EntityId::new(kind, id))
            })
            .collect();
        prop_assert!(entities.len() > 50);
        prop_assert!(nodes.iter().any(|n| n.props.iter().next().is_some()));
        prop_assert_eq!(matching_view(&lean, &entities), matching_view(&full, &entities));
        prop_assert_eq!(drawn(&lean), drawn(&full));
        let (lean_nodes, _) = lean.snapshot();
        prop_assert!(
            lean_nodes
                .iter()
                .filter(|n| n.kind != "instance_group")
                .all(|n| n.label.is_empty() && n.props.iter().next().is_none()),
            "no labels or properties kept"
        );
        // Sealed, as a run's graph is before matching: what only adding records reads is
        // gone, and every answer and count is the same.
        lean.seal();
        prop_assert_eq!(matching_view(&lean, &entities), matching_view(&full, &entities));
    }
}
