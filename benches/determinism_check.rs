//! The determinism check at scale (issue 13): the same input gives the same bytes, node ids
//! are unique, and runs split with `--state` end with one run's ACTIVE findings, on a
//! generated estate of the size a new user tries, not only on the fixtures.
//!
//! Generates (into a temporary folder) `--ct N` CloudTrail records (default 200 000) and
//! `--gd N` GuardDuty findings (default 20 000) about `--groups N` Auto Scaling groups
//! (default 300, 4 instances each) over `--accounts N` accounts (default 20, dealt to groups
//! in turn, so every file interleaves them) and 4 regions, where one account has a group of
//! the same name in each region (`asg-0002` in us-east-1 and in eu-west-1…), with planted
//! attacks. CloudTrail and findings are each split into 10 files of the same time slices.
//! Then runs the `correlator` binary of this build and checks:
//!
//! - `graph --format json`, `correlate --asff --graph` (DOT, GraphML, Cypher) and the JSON
//!   summaries: byte-identical between a run over the folder with the default reading threads
//!   and a run over every file listed in reverse order with another thread count
//!   (`CORRELATOR_INPUT_THREADS`); the summary's timing fields aside; and `graph --format
//!   json` the same bytes over every record in one JSON Lines file, which is read in parts on
//!   two threads;
//! - no export holds a node id twice (nor an edge id);
//! - one run's ACTIVE findings equal those that runs over the first 90 % then the last 10 %
//!   (one state file) leave ACTIVE, and those of ten runs over a tenth each.
//!
//! Prints each check and exits non-zero if one fails. At full size, in release: `cargo bench
//! --bench determinism_check` (57 s on an idle 2-core machine). `tests/run.sh` runs it with
//! the dev build at a quarter of the size: `cargo bench --profile dev --bench
//! determinism_check -- --ct 50000 --gd 5000` (about 70 s).
//! `--keep` leaves the folder in place and prints its path.

#[path = "support/generate.rs"]
mod generate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use generate::{Amount, Mix, Spec};

/// The `correlator` binary of this build (`--correlator PATH` runs another).
const BIN: &str = env!("CARGO_BIN_EXE_correlator");
/// Files per source; split `k` is CloudTrail file `k` with finding file `k`.
const FILES: usize = 10;

struct Args {
    ct: u64,
    gd: u64,
    groups: usize,
    accounts: usize,
    keep: bool,
    /// Only the split runs (and the one run they are compared with).
    splits_only: bool,
    correlator: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        ct: 200_000,
        gd: 20_000,
        groups: 300,
        accounts: 20,
        keep: false,
        splits_only: false,
        correlator: PathBuf::from(BIN),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--ct" => a.ct = num(),
            "--gd" => a.gd = num(),
            "--groups" => a.groups = num() as usize,
            "--accounts" => a.accounts = num() as usize,
            "--keep" => a.keep = true,
            "--splits-only" => a.splits_only = true,
            "--correlator" => a.correlator = it.next().expect("--correlator needs a path").into(),
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    a
}

/// Failed checks, printed as they happen.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        println!("  {} {what}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            self.failed.push(what.to_string());
        }
    }
}

/// Runs the correlator with `args`, `threads` reading threads (0: the default) and the state
/// in `state` (if any); returns stderr. Panics when it fails (exit codes other than 0).
fn run(bin: &Path, args: &[&std::ffi::OsStr], threads: usize, what: &str) -> Vec<u8> {
    let t = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args).env("CORRELATOR_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("CORRELATOR_") && k != "CORRELATOR_LOG" {
            cmd.env_remove(k);
        }
    }
    if threads > 0 {
        cmd.env("CORRELATOR_INPUT_THREADS", threads.to_string());
    }
    let out = cmd.output().expect("running the correlator");
    assert!(
        out.status.success(),
        "{what}: correlator failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("    {what}: {:.1} s", t.elapsed().as_secs_f64());
    out.stderr
}

fn os<P: AsRef<std::ffi::OsStr> + ?Sized>(p: &P) -> &std::ffi::OsStr {
    p.as_ref()
}

/// Every input file, in reverse order.
fn reversed(files: &[PathBuf]) -> Vec<&std::ffi::OsStr> {
    files.iter().rev().map(os).collect()
}

/// The JSON summary on stderr without its timing fields.
fn summary_of(stderr: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary in: {text}"));
    let mut v: serde_json::Value = serde_json::from_str(line).expect("summary JSON");
    strip_timing(&mut v);
    v
}

fn strip_timing(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("_ms") && !k.ends_with("_secs") && k != "elapsed");
            m.values_mut().for_each(strip_timing);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_timing),
        _ => {}
    }
}

/// Node ids written twice in an export (by its syntax).
fn duplicate_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("reading an export");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut ids: Vec<String> = Vec::new();
    match ext {
        "json" => {
            let v: serde_json::Value = serde_json::from_str(&text).expect("export JSON");
            for part in ["nodes", "edges"] {
                for n in v["elements"][part].as_array().expect("elements") {
                    ids.push(n["data"]["id"].as_str().expect("an id").to_string());
                }
            }
        }
        "graphml" => {
            for tag in ["<node id=\"", "<edge id=\""] {
                ids.extend(
                    text.split(tag)
                        .skip(1)
                        .map(|s| s.split('"').next().unwrap_or_default().to_string()),
                );
            }
        }
        "cypher" => {
            // One `MERGE (n:Kind {id: "…"})` per node.
            ids.extend(
                text.lines()
                    .filter(|l| l.starts_with("MERGE (") || l.contains("MERGE (n:"))
                    .filter_map(|l| l.split("{id: ").nth(1))
                    .map(|s| s.split('}').next().unwrap_or_default().to_string()),
            );
        }
        "dot" => {
            // Node statements: `  "id" [` at the start of a line (edges have `->`).
            ids.extend(
                text.lines()
                    .map(str::trim_start)
                    .filter(|l| l.starts_with('"') && !l.contains("->"))
                    .map(|l| l.split("\" [").next().unwrap_or_default().to_string()),
            );
        }
        _ => panic!("unknown export {ext}"),
    }
    assert!(!ids.is_empty(), "no ids found in {}", path.display());
    let mut seen = BTreeSet::new();
    let mut dup: Vec<String> = ids
        .into_iter()
        .filter(|i| !seen.insert(i.clone()))
        .collect();
    dup.dedup();
    dup
}

/// The findings a sequence of runs leaves in Security Hub: the last version written of each
/// `Id`, those ACTIVE, with what must match one run (not `UpdatedAt`/`CreatedAt`).
fn active(asff_files: &[PathBuf]) -> BTreeMap<String, String> {
    let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for f in asff_files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).expect("ASFF JSON");
        for finding in v["Findings"].as_array().expect("Findings") {
            let id = finding["Id"].as_str().expect("Id").to_string();
            last.insert(id, finding.clone());
        }
    }
    last.into_iter()
        .filter(|(_, f)| f["RecordState"] == "ACTIVE")
        .map(|(id, f)| {
            let key = format!(
                "{} {} {} {} {}",
                f["Title"],
                f["Severity"]["Label"],
                f["FirstObservedAt"],
                f["LastObservedAt"],
                f["Resources"].as_array().map_or(0, Vec::len)
            );
            (id, key)
        })
        .collect()
}

fn compare_active(
    checks: &mut Checks,
    one: &BTreeMap<String, String>,
    split: &BTreeMap<String, String>,
    what: &str,
) {
    let only_split: Vec<_> = split.keys().filter(|k| !one.contains_key(*k)).collect();
    let only_one: Vec<_> = one.keys().filter(|k| !split.contains_key(*k)).collect();
    let differ: Vec<_> = one
        .iter()
        .filter(|(k, v)| split.get(*k).is_some_and(|s| s != *v))
        .map(|(k, v)| format!("{k}: one run {v}, split {}", split[k]))
        .collect();
    for (name, list) in [("only split", &only_split), ("only one run", &only_one)] {
        for k in list.iter().take(5) {
            println!("    {name}: {k} {}", split.get(*k).or(one.get(*k)).unwrap());
        }
    }
    for d in differ.iter().take(5) {
        println!("    differs: {d}");
    }
    checks.check(
        only_split.is_empty() && only_one.is_empty() && differ.is_empty(),
        &format!(
            "{what}: ACTIVE findings equal one run's ({} one run; {} only split, {} only one run, {} differ)",
            one.len(),
            only_split.len(),
            only_one.len(),
            differ.len()
        ),
    );
}

fn main() -> ExitCode {
    let a = args();
    let dir = std::env::temp_dir().join(format!("determinism-check-{}", std::process::id()));
    let data_dir = dir.join("data");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("creating the output folder");
    let t = Instant::now();
    let spec = Spec {
        seed: 0x0de7_e2a1_0013,
        groups: a.groups,
        instances_per_group: 4,
        cloudtrail: Amount::Records(a.ct),
        jsonl_files: FILES,
        gz_objects: false,
        findings: a.gd,
        finding_files: FILES,
        attacks: 24,
        accounts: a.accounts,
        regional_group_names: true,
        mix: Mix::Standard,
    };
    let data = generate::generate(&data_dir, &spec).expect("generating the estate");
    println!(
        "estate: {} CloudTrail records, {} findings, {} groups of 4 over {} accounts, {} files, {:.0} MB, generated in {:.1} s",
        data.records,
        data.findings,
        data.groups,
        a.accounts,
        data.jsonl.len() + data.findings_files.len(),
        (data.jsonl_bytes + data.findings_bytes) as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut checks = Checks::default();
    let files: Vec<PathBuf> = data.all_files().into_iter().map(|f| f.path).collect();
    let folder = [os(&data_dir)];
    let p = |name: &str| out.join(name);

    if a.splits_only {
        let asff = p("asff-dot-0.json");
        let mut args = vec![os("correlate"), os("--asff"), os(&asff)];
        args.extend(folder);
        run(&a.correlator, &args, 0, "one run");
    } else {
        same_bytes(&a, &mut checks, &files, &folder, &p);
    }

    println!("split runs with --state end with one run's ACTIVE findings:");
    let one = active(&[p("asff-dot-0.json")]);
    let split_of = |k: usize| {
        [
            data.jsonl[k].path.clone(),
            data.findings_files[k].path.clone(),
        ]
    };
    for (name, cuts) in [
        ("90/10", vec![0, 9, FILES]),
        ("10-way", (0..=FILES).collect()),
    ] {
        let state = p(&format!("state-{name}.json").replace('/', "-"));
        let mut written = Vec::new();
        for w in cuts.windows(2) {
            let part: Vec<PathBuf> = (w[0]..w[1]).flat_map(split_of).collect();
            let asff = p(&format!("asff-{}-{}.json", name.replace('/', "-"), w[0]));
            let mut args = vec![
                os("correlate"),
                os("--state"),
                os(&state),
                os("--asff"),
                os(&asff),
            ];
            args.extend(part.iter().map(os));
            run(
                &a.correlator,
                &args,
                0,
                &format!("{name}: files {}..{}", w[0], w[1]),
            );
            written.push(asff);
        }
        compare_active(&mut checks, &one, &active(&written), name);
    }

    if a.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("done in {:.1} s", t.elapsed().as_secs_f64());
    if checks.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("{} check(s) failed", checks.failed.len());
        ExitCode::FAILURE
    }
}

/// Two runs of `graph` and `correlate` (every export format) give the same bytes, with no
/// duplicated id.
fn same_bytes(
    a: &Args,
    checks: &mut Checks,
    files: &[PathBuf],
    folder: &[&std::ffi::OsStr],
    p: &dyn Fn(&str) -> PathBuf,
) {
    println!(
        "same input, same bytes (the folder, default threads / every file in reverse order, other threads / all in one file, read in parts):"
    );
    // Every record in one JSON Lines file: over 64 MiB (at a quarter of the default size and
    // more), it is decoded in parts on both threads.
    let one = p("all.jsonl");
    {
        let mut w =
            std::io::BufWriter::new(std::fs::File::create(&one).expect("creating all.jsonl"));
        for f in files {
            let mut r = std::fs::File::open(f).expect("opening a generated file");
            std::io::copy(&mut r, &mut w).expect("writing all.jsonl");
        }
        std::io::Write::flush(&mut w).expect("writing all.jsonl");
    }
    for (i, (threads, inputs)) in [
        (0, folder.to_vec()),
        (1, reversed(files)),
        (2, vec![os(&one)]),
    ]
    .into_iter()
    .enumerate()
    {
        let g = p(&format!("graph-{i}.json"));
        let mut args = vec![os("graph"), os("--format"), os("json"), os("-o"), os(&g)];
        args.extend(inputs);
        run(
            &a.correlator,
            &args,
            threads,
            &format!("graph --format json, run {i}"),
        );
    }
    let same = |a: &Path, b: &Path| std::fs::read(a).ok() == std::fs::read(b).ok();
    checks.check(
        same(&p("graph-0.json"), &p("graph-1.json")),
        "graph --format json: byte-identical",
    );
    checks.check(
        same(&p("graph-0.json"), &p("graph-2.json")),
        &format!(
            "graph --format json: byte-identical over all records in one file ({:.0} MB)",
            std::fs::metadata(&one).map_or(0, |m| m.len()) as f64 / 1e6
        ),
    );
    if !a.keep {
        let _ = std::fs::remove_file(&one);
    }
    let dup = duplicate_ids(&p("graph-0.json"));
    checks.check(
        dup.is_empty(),
        &format!(
            "graph json: no duplicated id ({} duplicated: {:?})",
            dup.len(),
            &dup[..dup.len().min(3)]
        ),
    );
    // The exports are compared once: without --keep they go, so the check at full size needs
    // about the room of two exports at a time, not of eight.
    let done_with = |names: &[String]| {
        if !a.keep {
            for n in names {
                let _ = std::fs::remove_file(p(n));
            }
        }
    };
    done_with(&[
        "graph-0.json".into(),
        "graph-1.json".into(),
        "graph-2.json".into(),
    ]);
    for (ext, threads) in [("dot", 3), ("graphml", 2), ("cypher", 1)] {
        let mut summaries = Vec::new();
        for (i, (threads, inputs)) in [(0, folder.to_vec()), (threads, reversed(files))]
            .into_iter()
            .enumerate()
        {
            let (asff, g) = (
                p(&format!("asff-{ext}-{i}.json")),
                p(&format!("graph-{i}.{ext}")),
            );
            let mut args = vec![
                os("correlate"),
                os("--summary"),
                os("json"),
                os("--asff"),
                os(&asff),
                os("--graph"),
                os(&g),
            ];
            args.extend(inputs);
            summaries.push(summary_of(&run(
                &a.correlator,
                &args,
                threads,
                &format!("correlate --graph .{ext}, run {i}"),
            )));
        }
        checks.check(
            same(
                &p(&format!("asff-{ext}-0.json")),
                &p(&format!("asff-{ext}-1.json")),
            ),
            &format!("correlate ({ext} run): ASFF byte-identical"),
        );
        checks.check(
            same(&p(&format!("graph-0.{ext}")), &p(&format!("graph-1.{ext}"))),
            &format!("correlate --graph .{ext}: byte-identical"),
        );
        checks.check(
            summaries[0] == summaries[1],
            &format!("correlate ({ext} run): JSON summary identical (timings aside)"),
        );
        let dup = duplicate_ids(&p(&format!("graph-0.{ext}")));
        checks.check(
            dup.is_empty(),
            &format!(
                "{ext}: no duplicated id ({} duplicated: {:?})",
                dup.len(),
                &dup[..dup.len().min(3)]
            ),
        );
        // asff-dot-0.json is the one run the split runs are compared with.
        done_with(&[format!("graph-0.{ext}"), format!("graph-1.{ext}")]);
    }
}
