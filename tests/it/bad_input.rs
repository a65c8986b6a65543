//! Every kind of bad input gets one precise message, and nothing valid is lost.
//!
//! Bad inputs are generated in temporary folders from the fixtures' good records. Each case
//! asserts the exact problem text (with its location: `line 3`, `Records[1] (line 1)`), its
//! severity, and that every valid record around it still decodes; none may panic.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use finding_correlator::normalize::{self, DecodeOptions, Decoded, Severity};
use finding_correlator::sources::file::{self, Event, FileProblem, InputFile};

use crate::common::{Decodes, decode_bytes, fixture};

/// `eventID`s of `cloudtrail/records.jsonl`, in order.
const JSONL_IDS: [&str; 4] = [
    "23fe8c17-27cc-464e-9177-3046cb24e13a",
    "b523dcf2-cf97-494f-a20f-ebf979469728",
    "01de260b-7e38-4f81-acb4-274fbe9c683e",
    "eaf2d2f5-dd0a-45e8-830f-ee999a0d43e4",
];

/// `eventID`s of `cloudtrail/s3-logfile-uncompressed.json`, in order.
const S3_IDS: [&str; 3] = [
    "d6f09426-db62-4095-b42a-a355f0705ec8",
    "da3d03df-21c0-4d04-8752-d9840f56ab96",
    "d6781847-972f-420c-97ed-6f3dc4485983",
];

const GZ_US_EAST_1: &str = "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2025/05/02/111122223333_CloudTrail_us-east-1_20250502T0805Z_Ab12Cd34Ef56Gh78.json.gz";

const NOT_A_RECORD: &str = "not a recognised record: expected a CloudTrail record (`eventSource`, `eventName`), a GuardDuty finding (`type`, `resource`), an ASFF finding (`SchemaVersion` 2018-10-08, `ProductArn`), or an EventBridge event of those";

/// The four lines of `cloudtrail/records.jsonl`.
fn jsonl_lines() -> Vec<String> {
    let text = fs::read_to_string(fixture("cloudtrail/records.jsonl")).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4);
    lines
}

/// The references of what was decoded, as text.
fn ids(d: &Decodes) -> Vec<String> {
    d.signals.iter().map(|(_, s)| s.reference.key()).collect()
}

fn problems(d: &Decodes) -> Vec<String> {
    d.problems.iter().map(ToString::to_string).collect()
}

fn severities(d: &Decodes) -> Vec<Severity> {
    d.problems.iter().map(|p| p.severity).collect()
}

fn id_list(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Reads one file as the pipeline does; returns its signal count and its problems.
fn read_input(path: &Path, explicit: bool) -> (u64, Vec<FileProblem>) {
    let mut problems = Vec::new();
    let input = InputFile {
        path: path.to_path_buf(),
        explicit,
    };
    let stats = file::decode_file(
        &input,
        &DecodeOptions::default(),
        &file::keep_all,
        &mut |e| {
            if let Event::Problem(p) = e {
                problems.push(p);
            }
        },
    );
    (stats.signals, problems)
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn correlator<S: AsRef<OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = crate::common::correlator().args(args).output().unwrap();
    (
        out.status.code().expect("killed by a signal"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

// ---------------------------------------------------------------------------------------------
// Files that are not record files.

const CSV: &str = "technique,eventID\nT1496,6e5560b0-4447-4079-82eb-398a73f217be\n";

#[test]
fn a_csv_file_is_not_a_record_file() {
    let d = decode_bytes(CSV.as_bytes());
    assert_eq!(d.not_json.as_deref(), Some("technique,eventID"));
    assert!(d.signals.is_empty() && d.problems.is_empty(), "{d:?}");

    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "labels.csv", CSV);
    // Named on the command line: it was meant as input, so its loss counts.
    let (signals, problems) = read_input(&csv, true);
    assert_eq!(signals, 0);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{}: not a record file: content is not JSON (starts with \"technique,eventID\")",
            csv.display()
        )
    );
    assert_eq!(problems[0].problem.severity, Severity::Skipped);
    assert_eq!(problems[0].problem.location, None);
    // Met in a folder (a labels file beside the logs): only noted.
    let (_, problems) = read_input(&csv, false);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].problem.severity, Severity::Ignored);
}

#[test]
fn a_csv_file_named_on_the_command_line_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "labels.csv", CSV);
    let (code, stdout, stderr) = correlator(&[OsStr::new("graph"), csv.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr
            .contains("not a record file: content is not JSON (starts with \"technique,eventID\")")
            && stderr.contains(&csv.display().to_string()),
        "{stderr}"
    );
    // The (empty) graph is still written.
    serde_json::from_str::<Value>(&stdout).unwrap();
}

#[test]
fn a_csv_file_inside_a_folder_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "labels.csv", CSV);
    fs::copy(
        fixture("cloudtrail/records.jsonl"),
        dir.path().join("records.jsonl"),
    )
    .unwrap();
    let (code, stdout, stderr) = correlator(&[OsStr::new("graph"), dir.path().as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ignored: 1"), "{stderr}");
    assert!(stderr.contains("skipped: 0"), "{stderr}");
    assert!(stdout.contains("\"instance:i-0ccccccccccccccc1\""));
}

// ---------------------------------------------------------------------------------------------
// Broken files: the records before the break are kept.

/// Reads a (possibly truncated) gzip stream as far as it goes.
fn gunzip_prefix(gz: &[u8]) -> Vec<u8> {
    let mut d = flate2::read::MultiGzDecoder::new(gz);
    let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match d.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The us-east-1 S3 log file (three records on one line) cut so that the first two records
/// are complete and the third is not.
fn truncated_gzip() -> Vec<u8> {
    let gz = fs::read(fixture(GZ_US_EAST_1)).unwrap();
    let full = gunzip_prefix(&gz);
    let starts: Vec<usize> = full
        .windows(16)
        .enumerate()
        .filter(|(_, w)| *w == b"{\"eventVersion\":")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 3, "three records on one line");
    let cut = (1..gz.len())
        .find(|&n| gunzip_prefix(&gz[..n]).len() > starts[2] + 100)
        .unwrap();
    assert!(gunzip_prefix(&gz[..cut]).len() < full.len() - 100);
    gz[..cut].to_vec()
}

#[test]
fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    let gz = truncated_gzip();
    let d = decode_bytes(&gz);
    assert_eq!(
        ids(&d),
        id_list(&[
            "c03cdf40-7d01-494c-a318-ca94c69e9e44",
            "f5598fda-3077-4edb-919f-01dfe581b16a"
        ]),
        "the two complete records before the cut; problems: {:?}",
        problems(&d)
    );
    assert_eq!(d.problems.len(), 1, "{:?}", problems(&d));
    let p = problems(&d).remove(0);
    assert!(
        p.starts_with("Records[2] (line 1): reading failed: ")
            && p.ends_with(" (truncated or corrupt gzip); the rest of the file is skipped"),
        "{p}"
    );
    assert_eq!(severities(&d), vec![Severity::Skipped]);
    // The file is named too.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cut.json.gz", &gz);
    let (signals, problems) = read_input(&path, true);
    assert_eq!(signals, 2);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .to_string()
            .starts_with(&format!("{}: Records[2] (line 1): ", path.display())),
        "{}",
        problems[0]
    );
}

#[test]
fn invalid_json_inside_a_records_element_skips_that_element_only() {
    // The pretty-printed S3 log file with `tru` instead of `true` in its second record.
    let text = fs::read_to_string(fixture("cloudtrail/s3-logfile-uncompressed.json")).unwrap();
    let starts: Vec<usize> = text
        .match_indices("\"eventVersion\"")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 3);
    let element = text[..starts[1]].rfind('{').unwrap();
    let line = text[..element].matches('\n').count() + 1;
    let bad = element
        + text[element..starts[2]]
            .find("true")
            .expect("a `true` in Records[1]");
    let broken = format!("{}tru{}", &text[..bad], &text[bad + 4..]);
    let d = decode_bytes(broken.as_bytes());
    assert_eq!(ids(&d), id_list(&[S3_IDS[0], S3_IDS[2]]));
    // serde_json's position is relative to the element: the character after `tru`.
    let within = &broken[element..bad + 3];
    let (rel_line, rel_column) = (
        within.matches('\n').count() + 1,
        within.len() - within.rfind('\n').map_or(0, |n| n + 1) + 1,
    );
    assert_eq!(
        problems(&d),
        vec![format!(
            "Records[1] (line {line}): record is not valid JSON: expected ident at line {rel_line} column {rel_column}"
        )]
    );
    assert_eq!(severities(&d), vec![Severity::Skipped]);
}

/// One structural error in one element cost every later element: framing goes on at the
/// next element that opens like the array's records.
#[test]
fn issue_12_a_broken_structure_inside_the_array_costs_that_element_only() {
    let records: Vec<String> = {
        let doc: Value = serde_json::from_str(
            &fs::read_to_string(fixture("cloudtrail/s3-logfile-uncompressed.json")).unwrap(),
        )
        .unwrap();
        doc["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect()
    };
    let bad = r#"{"eventVersion":"1.10","x":[1}"#;
    let doc = format!(
        "{{\"Records\":[{},{},{bad},{}]}}",
        records[0], records[1], records[2]
    );
    let d = decode_bytes(doc.as_bytes());
    assert_eq!(ids(&d), id_list(&S3_IDS));
    assert_eq!(
        problems(&d),
        vec![format!(
            "Records[2] (line 1): invalid JSON: unexpected `}}` at byte {}; going on at the next element",
            bad.find('}').unwrap()
        )]
    );
    assert_eq!(severities(&d), vec![Severity::Skipped]);
    // The same in a bare array, and with the damage at the end: nothing follows to go on at.
    let doc = format!("[{},{},{bad},{}]", records[0], records[1], records[2]);
    assert_eq!(ids(&decode_bytes(doc.as_bytes())), id_list(&S3_IDS));
    let doc = format!("[{},{},{bad}]", records[0], records[1]);
    let d = decode_bytes(doc.as_bytes());
    assert_eq!(ids(&d), id_list(&S3_IDS[..2]));
    assert!(
        problems(&d)[0].ends_with("; the rest of the document is skipped"),
        "{:?}",
        problems(&d)
    );
}

// ---------------------------------------------------------------------------------------------
// JSON Lines: one bad line costs that line only.

#[test]
fn a_record_without_event_time_is_the_only_loss() {
    let mut lines = jsonl_lines();
    let mut rec: Value = serde_json::from_str(&lines[2]).unwrap();
    rec.as_object_mut().unwrap().remove("eventTime").unwrap();
    lines[2] = rec.to_string();
    let d = decode_bytes(lines.join("\n").as_bytes());
    assert_eq!(
        ids(&d),
        id_list(&[JSONL_IDS[0], JSONL_IDS[1], JSONL_IDS[3]])
    );
    assert_eq!(problems(&d), vec!["line 3: missing field `eventTime`"]);
    assert_eq!(severities(&d), vec![Severity::Skipped]);

    // And an `eventTime` that is not a time.
    rec["eventTime"] = Value::from("redacted");
    lines[2] = rec.to_string();
    let d = decode_bytes(lines.join("\n").as_bytes());
    assert_eq!(d.signals.len(), 3);
    assert_eq!(
        problems(&d),
        vec![
            "line 3: field `eventTime` is not a timestamp: \"redacted\" (expected ISO-8601 like \"2025-05-02T09:20:00Z\")"
        ]
    );
}

#[test]
fn a_50_mb_line_that_is_not_a_record() {
    let lines = jsonl_lines();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mb = 50usize;
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        writeln!(f, "{}", lines[0]).unwrap();
        // A JSON object, but no record: {"padding":"xxx…","n":[1,2,3]}
        f.write_all(b"{\"padding\":\"").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..mb {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\",\"n\":[1,2,3]}\n").unwrap();
        writeln!(f, "{}", lines[1]).unwrap();
    }
    let started = Instant::now();
    let mut d = Decodes::default();
    normalize::decode_reader(
        fs::File::open(&path).unwrap(),
        &DecodeOptions::default(),
        &mut |x| match x {
            Decoded::Signal(k, s) => d.signals.push((k, *s)),
            Decoded::Unneeded(..) => panic!("no call filter was set"),
            Decoded::Sigma(..) => panic!("no Sigma rules were set"),
            Decoded::Problem(p) => d.problems.push(p),
        },
    );
    eprintln!(
        "a_50_mb_line_that_is_not_a_record: decoded {} MB in {:.2?}",
        mb,
        started.elapsed()
    );
    assert_eq!(ids(&d), id_list(&JSONL_IDS[..2]));
    assert_eq!(problems(&d), vec![format!("line 2: {NOT_A_RECORD}")]);
    assert_eq!(severities(&d), vec![Severity::Skipped]);
}

#[test]
fn a_line_of_garbage_text_in_json_lines() {
    let lines = jsonl_lines();
    let text = format!(
        "{}\nthis line is not JSON\n{}\n{}\n{}\n",
        lines[0], lines[1], lines[2], lines[3]
    );
    let d = decode_bytes(text.as_bytes());
    assert_eq!(ids(&d), id_list(&JSONL_IDS));
    assert_eq!(
        problems(&d),
        vec!["line 2: not a JSON object or array (expected one record per line)"]
    );
    assert_eq!(severities(&d), vec![Severity::Skipped]);

    // A line that starts like an object but is not JSON.
    let text = format!("{}\n{{not json}}\n{}\n", lines[0], lines[1]);
    let d = decode_bytes(text.as_bytes());
    assert_eq!(ids(&d), id_list(&JSONL_IDS[..2]));
    assert_eq!(
        problems(&d),
        vec!["line 2: record is not valid JSON: key must be a string at line 1 column 2"]
    );
}

/// A JSON Lines file whose first line is damaged is still a JSON Lines file: the records on
/// the other lines must not be lost (in a folder the whole file would otherwise be dropped as
/// "not JSON" with severity Ignored, and the run would exit 0).
#[test]
fn a_line_of_garbage_text_first_in_json_lines() {
    let lines = jsonl_lines();
    let text = format!("this line is not JSON\n{}\n", lines.join("\n"));
    let d = decode_bytes(text.as_bytes());
    assert_eq!(d.not_json, None, "read as not JSON");
    assert_eq!(ids(&d), id_list(&JSONL_IDS));
    assert_eq!(
        problems(&d),
        vec!["line 1: not a JSON object or array (expected one record per line)"]
    );
}

/// A line cut short (a partly written file, or files concatenated without their tails) costs
/// that line, not every line after it.
#[test]
fn a_truncated_line_in_json_lines_costs_that_line_only() {
    let lines = jsonl_lines();
    let cut = &lines[1][..lines[1].len() / 2];
    assert!(!cut.contains('\n'));
    let text = format!("{}\n{cut}\n{}\n{}\n", lines[0], lines[2], lines[3]);
    let d = decode_bytes(text.as_bytes());
    assert_eq!(
        ids(&d),
        id_list(&[JSONL_IDS[0], JSONL_IDS[2], JSONL_IDS[3]]),
        "problems: {:?}",
        problems(&d)
    );
    let p = problems(&d);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("line 2: "), "{p:?}");
    assert_eq!(severities(&d), vec![Severity::Skipped]);
}

// ---------------------------------------------------------------------------------------------
// Findings.

/// `guardduty/finding-single.json` as one JSON line, changed by `edit`.
fn single_finding(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(
        &fs::read_to_string(fixture("guardduty/finding-single.json")).unwrap(),
    )
    .unwrap();
    edit(&mut v);
    v.to_string()
}

/// The two lines of `guardduty/findings.jsonl`.
fn finding_lines() -> Vec<String> {
    fs::read_to_string(fixture("guardduty/findings.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Findings are told from CloudTrail records by their first keys and parsed once; a finding
/// cut short still costs only its line, reported as cut.
#[test]
fn a_finding_cut_short_costs_its_line_only() {
    let good = finding_lines();
    let single = single_finding(|_| {});
    let cut = &good[1][..good[1].len() / 2];
    let text = format!("{}\n{cut}\n{}\n{single}\n", good[0], good[1]);
    let d = decode_bytes(text.as_bytes());
    let p = problems(&d);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("line 2: record is truncated"), "{p:?}");
    assert_eq!(severities(&d), vec![Severity::Skipped]);
    assert_eq!(d.signals.len(), 3, "{p:?}");
}

/// An envelope that promises a CloudTrail record but carries a finding says so (the finding's
/// keys do not cut the nested parse short).
#[test]
fn a_cloudtrail_envelope_holding_a_finding_says_what_it_holds() {
    let finding: Value = serde_json::from_str(&single_finding(|_| {})).unwrap();
    let envelope = serde_json::json!({
        "version": "0",
        "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2025-05-02T09:20:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": finding,
    });
    let d = decode_bytes(envelope.to_string().as_bytes());
    assert!(d.signals.is_empty());
    assert_eq!(
        problems(&d),
        vec![
            "line 1: `detail` should hold a CloudTrail record, but has no `eventSource` or `eventName`"
        ]
    );
}

#[test]
fn a_finding_of_an_unknown_type_names_the_type() {
    let good = finding_lines();
    let banana = single_finding(|v| v["type"] = Value::from("banana"));
    let text = format!("{}\n{banana}\n{}\n", good[0], good[1]);
    let d = decode_bytes(text.as_bytes());
    assert_eq!(d.signals.len(), 2);
    assert_eq!(
        problems(&d),
        vec![
            "line 2: finding type \"banana\" is not a GuardDuty finding type (expected ThreatPurpose:ResourceType/ThreatFamily, e.g. \"CryptoCurrency:EC2/BitcoinTool.B!DNS\")"
        ]
    );
    assert_eq!(severities(&d), vec![Severity::Skipped]);

    // Without a GuardDuty or ASFF shape around it.
    let d = decode_bytes(br#"{"type": "banana", "id": "1"}"#);
    assert_eq!(
        problems(&d),
        vec![
            "line 1: finding of unknown shape (type \"banana\"): no `resource` (GuardDuty) or `ProductArn`/`Resources` (ASFF)"
        ]
    );
}

#[test]
fn a_guardduty_sample_finding_is_ignored_not_skipped() {
    let good = finding_lines();
    let sample = single_finding(|v| v["service"]["additionalInfo"]["sample"] = Value::from(true));
    let text = format!("{}\n{sample}\n{}\n", good[0], good[1]);
    let d = decode_bytes(text.as_bytes());
    assert_eq!(d.signals.len(), 2);
    assert_eq!(
        problems(&d),
        vec![
            "line 2: GuardDuty sample finding Execution:Runtime/NewBinaryExecuted (service.additionalInfo.sample = true)"
        ]
    );
    assert_eq!(severities(&d), vec![Severity::Ignored]);

    // Kept on request.
    let mut kept = Decodes::default();
    let opts = DecodeOptions {
        keep_sample_findings: true,
        ..DecodeOptions::default()
    };
    normalize::decode_reader(text.as_bytes(), &opts, &mut |x| match x {
        Decoded::Signal(k, s) => kept.signals.push((k, *s)),
        Decoded::Unneeded(..) => panic!("no call filter was set"),
        Decoded::Sigma(..) => panic!("no Sigma rules were set"),
        Decoded::Problem(p) => kept.problems.push(p),
    });
    assert_eq!(kept.signals.len(), 3);
    assert!(kept.problems.is_empty());

    // It does not fail the run.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "with-sample.jsonl", &text);
    let (code, _, stderr) = correlator(&[OsStr::new("graph"), path.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ignored: 1"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Encodings and odd documents.

#[test]
fn an_empty_file_has_nothing_to_lose() {
    for empty in ["", "\n", "  \r\n\n\t\n"] {
        let d = decode_bytes(empty.as_bytes());
        assert!(
            d.signals.is_empty() && d.problems.is_empty() && d.not_json.is_none(),
            "{empty:?}: {d:?}"
        );
    }
    // Named on the command line, it is reported (issue 12): the input asked for holds
    // nothing.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.json", "");
    let (code, stdout, stderr) = correlator(&[OsStr::new("graph"), path.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no records: the file is empty"), "{stderr}");
    serde_json::from_str::<Value>(&stdout).unwrap();
}

#[test]
fn a_utf8_byte_order_mark_is_skipped() {
    let bom = "\u{feff}";
    let d = decode_bytes(format!("{bom}{}\n", jsonl_lines().join("\n")).as_bytes());
    assert!(d.problems.is_empty(), "{:?}", problems(&d));
    assert_eq!(ids(&d), id_list(&JSONL_IDS));
    let pretty = fs::read_to_string(fixture("cloudtrail/s3-logfile-uncompressed.json")).unwrap();
    let d = decode_bytes(format!("{bom}{pretty}").as_bytes());
    assert!(d.problems.is_empty(), "{:?}", problems(&d));
    assert_eq!(ids(&d), id_list(&S3_IDS));
}

#[test]
fn crlf_line_endings_in_json_lines() {
    let mut lines = jsonl_lines();
    let d = decode_bytes(format!("{}\r\n", lines.join("\r\n")).as_bytes());
    assert!(d.problems.is_empty(), "{:?}", problems(&d));
    assert_eq!(ids(&d), id_list(&JSONL_IDS));
    // Line numbers still count lines.
    let mut rec: Value = serde_json::from_str(&lines[2]).unwrap();
    rec.as_object_mut().unwrap().remove("eventTime");
    lines[2] = rec.to_string();
    let d = decode_bytes(lines.join("\r\n").as_bytes());
    assert_eq!(problems(&d), vec!["line 3: missing field `eventTime`"]);
    assert_eq!(d.signals.len(), 3);
    // A pretty-printed document with CRLF.
    let pretty = fs::read_to_string(fixture("cloudtrail/s3-logfile-uncompressed.json")).unwrap();
    let d = decode_bytes(pretty.replace('\n', "\r\n").as_bytes());
    assert!(d.problems.is_empty(), "{:?}", problems(&d));
    assert_eq!(ids(&d), id_list(&S3_IDS));
}

#[test]
fn a_top_level_array_of_numbers() {
    let d = decode_bytes(b"[1, 2, 3]");
    let p = problems(&d);
    assert!(d.signals.is_empty());
    assert_eq!(p.len(), 3, "one per element: {p:?}");
    for (i, text) in p.iter().enumerate() {
        // What the element is and what was expected, without the decoder's internal type
        // names (`expected struct Record`).
        assert_eq!(
            text,
            &format!(
                "[{i}] (line 1): record has an unexpected shape: invalid type: integer `{}`, expected a JSON object at line 1 column 1",
                i + 1
            )
        );
        assert!(!text.contains("struct "), "{text}");
    }
    assert_eq!(severities(&d), vec![Severity::Skipped; 3]);
}

/// All of the above in one folder, and each named on the command line: the binary reports
/// them and exits 1, never panics, and still writes the graph of what was valid.
#[test]
fn every_bad_input_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = jsonl_lines();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("labels.csv", CSV.into()),
        ("cut.json.gz", truncated_gzip()),
        (
            "no-time.jsonl",
            {
                let mut rec: Value = serde_json::from_str(&lines[0]).unwrap();
                rec.as_object_mut().unwrap().remove("eventTime");
                format!("{rec}\n{}\n", lines[1])
            }
            .into(),
        ),
        (
            "garbage.jsonl",
            format!("{}\nnot json\n{{oops}}\n", lines[3]).into(),
        ),
        (
            "banana.jsonl",
            single_finding(|v| v["type"] = Value::from("banana")).into(),
        ),
        ("empty.json", Vec::new()),
        ("bom.jsonl", format!("\u{feff}{}", lines[2]).into()),
        ("numbers.json", b"[1,2,3]".to_vec()),
        ("nested.json", b"[[[[[[[[]]]]]]]]".to_vec()),
        ("scalar.json", b"{\"Records\": 12}".to_vec()),
        ("binary.bin", vec![0, 159, 146, 150, 255, 0, 1]),
        ("unterminated.json", b"{\"Records\": [{\"a\": \"".to_vec()),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in &cases {
        paths.push(write(d, name, bytes));
    }
    let (code, stdout, stderr) = correlator(&[OsStr::new("graph"), d.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let graph: Value = serde_json::from_str(&stdout).unwrap();
    let nodes = graph["elements"]["nodes"].as_array().unwrap();
    for instance in [
        "instance:i-0ccccccccccccccc2",
        "instance:i-0ddddddddddddddd1",
    ] {
        assert!(
            nodes.iter().any(|n| n["data"]["id"] == instance),
            "{instance} missing"
        );
    }
    for p in &paths {
        let (code, stdout, stderr) = correlator(&[OsStr::new("graph"), p.as_os_str()]);
        assert!(
            code == 0 || code == 1,
            "{}: exit {code}: {stderr}",
            p.display()
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", p.display());
        serde_json::from_str::<Value>(&stdout).unwrap();
    }
}

#[test]
fn a_json_lines_file_of_labels_is_one_not_a_record_file_problem() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(
        dir.path(),
        "labels.jsonl",
        "{\"rule_id\": \"a\", \"expected_result\": true}\n{\"rule_id\": \"b\", \"expected_result\": false}\n",
    );
    let want = "not a record file: none of its 2 JSON value(s) is a CloudTrail record, a GuardDuty finding or an ASFF finding";
    // Met in a folder: noted once, nothing lost.
    let (n, ps) = read_input(&labels, false);
    assert_eq!(n, 0);
    let texts: Vec<String> = ps.iter().map(|p| p.problem.to_string()).collect();
    assert_eq!(texts, vec![want.to_string()]);
    assert_eq!(ps[0].problem.severity, Severity::Ignored);
    // Named on the command line: the same one message, and it counts.
    let (_, ps) = read_input(&labels, true);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].problem.severity, Severity::Skipped);
    // Beside real records in a folder, the run succeeds.
    write(dir.path(), "records.jsonl", jsonl_lines().join("\n"));
    let (code, _, stderr) = correlator(&[OsStr::new("graph"), dir.path().as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(want), "{stderr}");
}

#[test]
fn a_non_record_line_among_records_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = jsonl_lines();
    lines.insert(1, "{\"rule_id\": \"a\"}".into());
    let path = write(dir.path(), "mixed.jsonl", lines.join("\n"));
    let (n, ps) = read_input(&path, false);
    assert_eq!(n, 4);
    let texts: Vec<String> = ps.iter().map(|p| p.problem.to_string()).collect();
    assert_eq!(
        texts,
        vec![format!(
            "line 2: {}",
            finding_correlator::normalize::NOT_A_RECORD
        )]
    );
    assert_eq!(ps[0].problem.severity, Severity::Skipped);
}
