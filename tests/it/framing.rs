//! Issue 12, items 7 and 8: one damaged record costs one record (never the file), empty
//! inputs are reported, messages stay short, and only regular files are read.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use finding_correlator::normalize::Severity;
use finding_correlator::sources::file::{self, Event, FileProblem, InputFile};

use crate::common::{decode_bytes, fixture};

/// The four lines of `cloudtrail/records.jsonl` and their `eventID`s.
fn jsonl() -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(fixture("cloudtrail/records.jsonl")).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let ids = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["eventID"].to_string())
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    (lines, ids)
}

fn ids(bytes: &[u8]) -> Vec<String> {
    decode_bytes(bytes)
        .signals
        .iter()
        .map(|(_, s)| s.reference.key())
        .collect()
}

/// Reads one file as the pipeline does; returns its signal count and its problems.
fn read_input(path: &Path, explicit: bool) -> (u64, Vec<FileProblem>) {
    let mut problems = Vec::new();
    let input = InputFile {
        path: path.to_path_buf(),
        explicit,
    };
    let stats = file::decode_file(&input, &Default::default(), &file::keep_all, &mut |e| {
        if let Event::Problem(p) = e {
            problems.push(p);
        }
    });
    (stats.signals, problems)
}

/// Runs the binary with a time limit (a FIFO must not block it); returns (exit code, stderr).
fn correlator<S: AsRef<OsStr>>(args: &[S]) -> (i32, String) {
    let out = crate::common::correlator()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code().expect("killed (timed out?)"),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// A damaged first line followed by lines over 64 KiB made the whole file "not JSON":
/// named on the command line none of its records survived; in a folder it was silently
/// passed over and the run exited 0.
#[test]
fn issue_12_a_damaged_first_line_before_lines_over_64_kib() {
    let (lines, _) = jsonl();
    let pad = "p".repeat(70 << 10);
    let long: Vec<String> = lines
        .iter()
        .map(|l| format!("{},\"padding\":\"{pad}\"}}", &l[..l.len() - 1]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "trail.jsonl",
        format!("this line is damaged\n{}\n", long.join("\n")),
    );
    for explicit in [true, false] {
        let (signals, problems) = read_input(&path, explicit);
        assert_eq!(signals, 4, "explicit {explicit}: {problems:?}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].problem.to_string(),
            "line 1: not a JSON object or array (expected one record per line)"
        );
        assert_eq!(problems[0].problem.severity, Severity::Skipped);
    }
    // In a folder, the loss of line 1 fails the run.
    let (code, stderr) = correlator(&[OsStr::new("graph"), dir.path().as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("skipped: 1"), "{stderr}");
}

/// A JSON Lines file whose damaged first line starts with `[` was read as an array that
/// never ends, and every record was lost.
#[test]
fn issue_12_json_lines_whose_damaged_first_line_starts_with_a_bracket() {
    let (lines, ids_all) = jsonl();
    for first in [
        format!("[{}", &lines[0][1..]),
        format!("[{}", lines[0]),
        "[\"not a record\", 1".to_string(),
    ] {
        let text = format!("{first}\n{}\n", lines[1..].join("\n"));
        let d = decode_bytes(text.as_bytes());
        let got: Vec<String> = d.signals.iter().map(|(_, s)| s.reference.key()).collect();
        assert!(
            got.ends_with(&ids_all[1..]),
            "{first:.30}: {got:?} {:?}",
            d.problems
        );
        assert!(
            d.problems.iter().any(|p| p.to_string()
                == "line 1: line is not valid JSON (expected one record per line)"),
            "{:?}",
            d.problems
        );
    }
}

/// Records concatenated without separators (Firehose's S3 layout), one of them damaged:
/// the others decode.
#[test]
fn issue_12_concatenated_records_with_a_damaged_one() {
    let (lines, ids_all) = jsonl();
    let mut recs = lines.clone();
    recs[1] = recs[1].replacen("\"userIdentity\":{", "\"userIdentity\":[", 1);
    let want = vec![ids_all[0].clone(), ids_all[2].clone(), ids_all[3].clone()];
    assert_eq!(ids(recs.concat().as_bytes()), want);
    assert_eq!(ids(lines.concat().as_bytes()), ids_all);
}

/// Empty, white space only and BOM only files named on the command line were silent.
#[test]
fn issue_12_empty_files_named_on_the_command_line_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, reason) in [
        ("empty.json", &b""[..], "no records: the file is empty"),
        (
            "blank.json",
            b" \n\t\r\n",
            "no records: the file holds only white space or a byte order mark",
        ),
        (
            "bom.json",
            b"\xEF\xBB\xBF",
            "no records: the file holds only white space or a byte order mark",
        ),
    ] {
        let path = write(dir.path(), name, bytes);
        let (signals, problems) = read_input(&path, true);
        assert_eq!(signals, 0);
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert_eq!(problems[0].problem.reason, reason, "{name}");
        assert_eq!(problems[0].problem.severity, Severity::Skipped);
        // In a folder an empty file is nothing to report.
        assert!(read_input(&path, false).1.is_empty(), "{name}");
        let (code, stderr) = correlator(&[OsStr::new("graph"), path.as_os_str()]);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stderr.contains(reason), "{name}: {stderr}");
    }
    // A document with no records in it is not empty.
    let path = write(dir.path(), "no-records.json", "{\"Records\":[]}");
    assert!(read_input(&path, true).1.is_empty());
}

/// A 50 MB `eventTime` wrote a 52 MB log line: messages quote a short prefix of a value, at
/// most 64 bytes of it (the README's promise), whatever its size and wherever it is.
#[test]
fn issue_12_messages_quote_a_short_prefix_of_a_huge_value() {
    let (lines, _) = jsonl();
    let mut rec: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    for size in [65, 300, 5 << 20] {
        let huge = "9".repeat(size);
        let escaped = "\"\\é".repeat(size / 4 + 1);
        let cases = [
            ("eventTime", serde_json::Value::from(huge.clone())),
            ("userIdentity", serde_json::Value::from(huge.clone())),
            ("userIdentity", serde_json::Value::from(escaped.clone())),
            ("eventSource", serde_json::json!([huge.clone()])),
            ("requestParameters", serde_json::Value::from(huge.clone())),
            (
                "recipientAccountId",
                serde_json::json!({ "x": huge.clone() }),
            ),
        ];
        for (field, value) in cases {
            let saved = rec[field].clone();
            rec[field] = value;
            let d = decode_bytes(rec.to_string().as_bytes());
            rec[field] = saved;
            let text = d
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            if d.problems.is_empty() {
                // Taken as it is (a field the decoder reads as text): nothing quoted.
                continue;
            }
            assert!(
                text.len() < 600,
                "{field}, {size}: a {} byte message",
                text.len()
            );
            for run in quoted_runs(&text) {
                assert!(
                    run.len() <= 64,
                    "{field}, {size}: {} bytes quoted: {text}",
                    run.len()
                );
            }
        }
    }
}

/// The runs between double quotes of a message (a backslash escapes the next character).
fn quoted_runs(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while let Some(open) = b[i..].iter().position(|&c| c == b'"').map(|j| i + j) {
        let mut j = open + 1;
        while j < b.len() && b[j] != b'"' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(b.len());
        runs.push(&text[open + 1..end]);
        i = end + 1;
        if i >= b.len() {
            break;
        }
    }
    runs
}

/// The README: "larger records are reported and skipped" (`input.max_record_mib`). A record
/// over the limit, between two good ones, in JSON Lines and in a `{"Records": [...]}`
/// document: one problem naming the limit, both neighbours decoded, exit 1.
#[test]
fn a_record_over_the_size_limit_is_reported_and_skipped_and_its_neighbours_read() {
    let (lines, ids) = jsonl();
    let mut huge: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    huge["requestParameters"] = serde_json::json!({ "padding": "x".repeat(2 << 20) });
    let huge = huge.to_string();
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(
            dir.path(),
            "records.jsonl",
            format!("{}\n{huge}\n{}\n", lines[0], lines[2]),
        ),
        write(
            dir.path(),
            "records.json",
            format!("{{\"Records\": [{}, {huge}, {}]}}", lines[0], lines[2]),
        ),
    ];
    let mut options = file::ReadOptions::default().decode;
    options.max_record_bytes = 1 << 20;
    for path in &files {
        let mut problems = Vec::new();
        let input = InputFile {
            path: path.clone(),
            explicit: true,
        };
        let stats = file::decode_file(&input, &options, &file::keep_all, &mut |e| {
            if let Event::Problem(p) = e {
                problems.push(p);
            }
        });
        assert_eq!(stats.signals, 2, "{}: {problems:?}", path.display());
        assert_eq!(problems.len(), 1, "{}: {problems:?}", path.display());
        assert!(
            problems[0]
                .problem
                .reason
                .contains("record larger than 1 MiB"),
            "{problems:?}"
        );
    }
    // The binary with the limit in its configuration: the neighbours' events, exit 1.
    let config = write(dir.path(), "config.toml", "[input]\nmax_record_mib = 1\n");
    let out = crate::common::correlator()
        .args(["graph", "--config"])
        .arg(&config)
        .arg(&files[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("record larger than 1 MiB"), "{stderr}");
    let graph = String::from_utf8(out.stdout).unwrap();
    for id in [&ids[0], &ids[2]] {
        assert!(graph.contains(id.as_str()), "{id} is not in the graph");
    }
}

/// A FIFO, socket or device as an input, rules file, configuration or state is refused
/// (a FIFO with no writer blocked forever; /dev/zero was read until memory ran out).
#[cfg(unix)]
#[test]
fn issue_12_fifos_and_devices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let records = fixture("cloudtrail/records.jsonl");
    let records = records.as_os_str();
    let fifo_s = fifo.as_os_str();
    let zero = OsStr::new("/dev/zero");

    for input in [fifo_s, zero] {
        let (code, stderr) = correlator(&[OsStr::new("graph"), input, records]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("expected a regular file"), "{stderr}");
    }
    // Met in a folder: noted and passed over; the records beside it are read.
    let folder = tempfile::tempdir().unwrap();
    std::process::Command::new("mkfifo")
        .arg(folder.path().join("pipe.jsonl"))
        .status()
        .unwrap();
    fs::copy(
        fixture("cloudtrail/records.jsonl"),
        folder.path().join("r.jsonl"),
    )
    .unwrap();
    let (code, stderr) = correlator(&[OsStr::new("graph"), folder.path().as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("is a FIFO, expected a regular file"),
        "{stderr}"
    );

    for config in [fifo_s, zero] {
        let (code, stderr) = correlator(&[OsStr::new("--config"), config, OsStr::new("validate")]);
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains("expected a regular file"), "{stderr}");
    }
    let state_out = tempfile::tempdir().unwrap();
    for state in [fifo_s, zero] {
        let (code, stderr) = correlator(&[
            OsStr::new("correlate"),
            OsStr::new("--state"),
            state,
            OsStr::new("--asff"),
            state_out.path().join("f.json").as_os_str(),
            records,
        ]);
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains("expected a regular file"), "{stderr}");
    }
    let rules = tempfile::tempdir().unwrap();
    std::process::Command::new("mkfifo")
        .arg(rules.path().join("rule.yaml"))
        .status()
        .unwrap();
    let (code, stderr) = correlator(&[
        OsStr::new("rules"),
        OsStr::new("check"),
        OsStr::new("--rules"),
        rules.path().as_os_str(),
    ]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("is a FIFO, expected a regular file"),
        "{stderr}"
    );
}

/// Rules, configuration and state are read up to a stated size.
#[test]
fn issue_12_rules_and_config_reads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("# {}\n", "x".repeat(2 << 20));
    let config = write(dir.path(), "config.toml", &big);
    let (code, stderr) = correlator(&[
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("validate"),
    ]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("larger than the 1 MiB this file may be"),
        "{stderr}"
    );
    let rules = tempfile::tempdir().unwrap();
    write(rules.path(), "big.yaml", &big);
    let (code, stderr) = correlator(&[
        OsStr::new("rules"),
        OsStr::new("check"),
        OsStr::new("--rules"),
        rules.path().as_os_str(),
    ]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("larger than the 1 MiB this file may be"),
        "{stderr}"
    );
}

/// Two links to their own folder made the walk exponential; one read every file 41 times.
#[cfg(unix)]
#[test]
fn issue_12_symlink_loops_are_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("cloudtrail/records.jsonl"),
        dir.path().join("r.jsonl"),
    )
    .unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("self-a")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("self-b")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("sub").join("up")).unwrap();
    let (files, problems) = file::collect_files(&[dir.path().to_path_buf()]);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(problems.len(), 3, "{problems:?}");
    for p in &problems {
        assert_eq!(p.problem.severity, Severity::Ignored);
        assert!(
            p.problem
                .reason
                .contains("a symbolic link leads back to it"),
            "{p}"
        );
    }
}
