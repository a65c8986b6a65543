//! The scheduled case (issue 16): what `correlator correlate --state` costs run after run on
//! the heavy mix of issues 15 and 16, against one stateless run over everything; and, with
//! `--python`, the pipeline against the DuckDB peer (`../shared/peers/duck_peer.py`, issue 15
//! item 7).
//!
//! For each identity shape (`--sessions stable,per-call`, the default; `half` is the mix of
//! issue 15 item 6), generates (streaming, into a temporary folder under
//! [`std::env::temp_dir`]) the heavy mix of `support/generate.rs` ([`Mix::Heavy`]): `--ct N`
//! CloudTrail records (default 1 000 000) over `--days N` days (default 7; 5 000 000 over 35
//! is the large option) and `--gd N` GuardDuty findings (default 100 000), about 1 000 Auto
//! Scaling groups of 10 instances over 4 accounts and 4 regions, with planted attacks (with
//! `--fleet steady`, launched instances are terminated again after a lifetime, as a fleet
//! that scales in and out; by default, `growing`, they run silent to the end); each
//! source in 10 JSON Lines files of the same time slices. Then it cuts the last `--slices N`
//! (default 96) quarter-hours that end on a quarter-hour boundary at or before the newest
//! record (a day) out of the data: CloudTrail records by `eventTime`, findings by
//! `updatedAt` (when GuardDuty exports them), one folder per slice, and everything older into
//! a warm-up folder (records after the last slice are left out). It runs the `correlator`
//! binary of this build (`--correlator PATH` runs another), as the scheduled task does, each
//! run with `--asff FILE --summary json` (and `--config FILE` when given one):
//!
//! - a. one run over everything, no state;
//! - b. `--state` over the first 9 files of each source (90 %), then the last one (10 %);
//! - c. `--state` over the warm-up folder (the days before), then one run per slice.
//!
//! For each run: wall time; CPU time (user + system of the child, from the `cutime` and
//! `cstime` of `/proc/self/stat` once it is reaped); the CPU time other processes took
//! meanwhile (the machine is shared); peak RSS (`VmHWM` of `/proc/PID/status`, sampled every
//! 5 ms while the child runs, so a peak in its last 5 ms can be missed); the state's size
//! after it, and its parts as `correlator state inspect --format json` weighs them. For each
//! slice also the CPU time of decoding that slice's files in this process
//! (`sources::file::read_files`, default options, every signal dropped on the worker that
//! decoded it, as `correlate_bench`'s decode-only row; repeated up to 10 times, as the CPU
//! time counts in steps of 10 ms), and the slice's CPU beyond that: what a run costs beyond
//! reading its own records, start-up included.
//!
//! With `--daily`, instead of a. to c.: d. one `--state` run per UTC day, in order, over every
//! whole day of the data (the days of `--days`; what comes before the first whole day is one
//! run before them, what comes after the last is left out), the state's size and parts after
//! each, and the growth of the saved state between the middle day and the last (issue 16:
//! under 10 % between day 15 and day 30 of `--days 30`).
//!
//! PASS/FAIL lines close each shape's report (the process never fails on a miss): the 10 %
//! run within 0.3× the wall time of the stateless run; every slice under 1 s of CPU beyond
//! reading its records; every state under 50 MB; every run's peak RSS under 500 MiB.
//!
//! With `--python PATH` (a Python with `duckdb`, e.g. a venv), after the shapes: the first
//! shape's CloudTrail records as one JSON Lines file, `duck_peer.py FILE` (`--duck-peer PATH`,
//! default `../shared/peers/duck_peer.py` beside the project) and `correlator correlate` over
//! the same file alternated `--rounds N` times (default 3, A B A B …), every round's wall time
//! and the ratio of the medians, as the peer's README says. `--peer-only` runs only that
//! comparison.
//!
//! Run: `cargo bench --bench state_bench` (about 2 GB of JSON Lines per shape and as much
//! again for the slices; the shapes one after the other, each folder removed when done), or
//! `cargo bench --bench state_bench -- --ct 100000 --gd 10000 --slices 24`, or the 30 days of
//! the growth target with `-- --sessions stable --ct 1000000 --gd 100000 --days 32 --daily`
//! (30 whole days). `--keep` leaves
//! the folders and prints their paths. CI does not run it (`cargo clippy --all-targets` only
//! compiles it).

/// The same allocator as the `correlator` binary, for the in-process decode.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/generate.rs"]
mod generate;
#[path = "support/measure.rs"]
mod measure;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use finding_correlator::sources::file::{InputFile, ReadOptions, read_files};
use finding_correlator::time::{format_rfc3339, parse_timestamp};
use serde_json::Value;

use generate::{Amount, Data, Mix, Spec};
use measure::{Counts, Meter, TempDir, drop_on_worker};

/// The `correlator` binary of this build.
const BIN: &str = env!("CARGO_BIN_EXE_correlator");
/// JSON Lines files per source; the last one is the 10 % of run b.
const FILES: usize = 10;
const QUARTER_HOUR_MS: u64 = 15 * 60_000;
const DAY_MS: u64 = 86_400_000;
/// Most decodes of one slice's files, for its reading CPU.
const DECODE_REPEATS: u32 = 10;

/// Issue 16's targets.
const TARGET_TENTH_SHARE: f64 = 0.3;
const TARGET_SLICE_CPU_S: f64 = 1.0;
const TARGET_STATE_MB: f64 = 50.0;
const TARGET_PEAK_MIB: f64 = 500.0;
/// Most growth of the state between the middle day and the last of `--daily` (day 15 and day
/// 30 of 30).
const TARGET_DAILY_GROWTH: f64 = 0.10;

fn main() {
    let cli = Cli::from_args();
    let root = std::env::temp_dir().join(format!("state_bench-{}", std::process::id()));
    let _root_guard = TempDir {
        path: root.clone(),
        keep: cli.keep,
    };
    println!(
        "state_bench: heavy mix, {} CloudTrail records over {} days + {} GuardDuty findings, \
         {} groups of {}, a {} fleet; shapes {}; {} slices of 15 minutes; correlator {}; {} \
         core(s), 1-min load average {}, data under {}",
        cli.ct,
        cli.days,
        cli.gd,
        cli.groups,
        cli.per_group,
        if cli.terminate { "steady" } else { "growing" },
        cli.shapes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        cli.slices,
        cli.correlator.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        measure::load_average(),
        root.display()
    );
    let mut peer_input: Option<(TempDir, PathBuf)> = None;
    for (i, &shape) in cli.shapes.iter().enumerate() {
        let dir = root.join(shape.name());
        let guard = TempDir {
            path: dir.clone(),
            keep: cli.keep,
        };
        let data = generate_shape(&cli, shape, &dir);
        if cli.daily {
            run_days(&cli, shape, &dir, &data);
        } else if !cli.peer_only {
            run_shape(&cli, shape, &dir, &data);
        }
        if i == 0 && cli.python.is_some() {
            // The peer comparison reads the first shape's CloudTrail: keep its folder.
            let one = dir.join("cloudtrail-all.jsonl");
            concat(&data.jsonl, &one);
            peer_input = Some((guard, one));
            if cli.peer_only {
                break;
            }
        } else {
            drop(guard);
        }
    }
    if let (Some(python), Some((_guard, file))) = (&cli.python, &peer_input) {
        compare_with_duckdb(&cli, python, file);
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

/// Who makes the calls: the share of calls made from a role session of their own.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Instance-role sessions named after their instances, keys that rotate every 6 hours.
    Stable,
    /// Every role call from its own session (ECS tasks, CI OIDC runs).
    PerCall,
    /// Half of them.
    Half,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Stable => "stable",
            Shape::PerCall => "per-call",
            Shape::Half => "half",
        }
    }

    fn task_sessions_per_mille(self) -> u32 {
        match self {
            Shape::Stable => 0,
            Shape::PerCall => 1000,
            Shape::Half => 500,
        }
    }
}

struct Cli {
    ct: u64,
    gd: u64,
    days: u64,
    groups: usize,
    per_group: usize,
    attacks: usize,
    slices: u64,
    shapes: Vec<Shape>,
    keep: bool,
    /// One run a day (d.) instead of a. to c.
    daily: bool,
    /// `--fleet steady`: launched instances are terminated again after a lifetime (the heavy
    /// mix's `terminate`); `--fleet growing` (the default): they run to the end of the data.
    terminate: bool,
    /// With `--python`: only the comparison with DuckDB (the first shape is generated, no run
    /// of the scheduled case).
    peer_only: bool,
    correlator: PathBuf,
    /// A configuration file every `correlate` run is given (`--config`).
    config: Option<PathBuf>,
    python: Option<PathBuf>,
    duck_peer: PathBuf,
    rounds: usize,
}

impl Cli {
    /// `--ct N --gd N --days N --groups N --per-group N --attacks N --slices N --sessions
    /// LIST --rounds N --correlator PATH --config FILE --python PATH --duck-peer PATH --keep
    /// --daily --fleet steady|growing` (also as `--flag=value`); `--bench` (from cargo) is ignored.
    fn from_args() -> Cli {
        let mut cli = Cli {
            ct: 1_000_000,
            gd: 100_000,
            days: 7,
            groups: 1_000,
            per_group: 10,
            attacks: 36,
            slices: 96,
            shapes: vec![Shape::Stable, Shape::PerCall],
            keep: false,
            daily: false,
            terminate: false,
            peer_only: false,
            correlator: PathBuf::from(BIN),
            config: None,
            python: None,
            duck_peer: Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/duck_peer.py"),
            rounds: 3,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            let mut text = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .unwrap_or_else(|| panic!("{what} needs a value"))
            };
            let number = |what: &str, v: String| -> u64 {
                v.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{what}: expected a number, got {v:?}"))
            };
            match flag.as_str() {
                "--ct" => cli.ct = number("--ct", text("--ct")).max(1),
                "--gd" => cli.gd = number("--gd", text("--gd")),
                "--days" => cli.days = number("--days", text("--days")).max(1),
                "--groups" => cli.groups = number("--groups", text("--groups")).max(1) as usize,
                "--per-group" => {
                    cli.per_group = number("--per-group", text("--per-group")).max(1) as usize;
                }
                "--attacks" => cli.attacks = number("--attacks", text("--attacks")) as usize,
                "--slices" => cli.slices = number("--slices", text("--slices")).max(1),
                "--rounds" => cli.rounds = number("--rounds", text("--rounds")).max(1) as usize,
                "--sessions" => {
                    cli.shapes = text("--sessions")
                        .split(',')
                        .map(|s| match s.trim() {
                            "stable" => Shape::Stable,
                            "per-call" => Shape::PerCall,
                            "half" => Shape::Half,
                            other => panic!(
                                "--sessions: expected stable, per-call or half (comma-separated), \
                                 got {other:?}"
                            ),
                        })
                        .collect();
                }
                "--correlator" => cli.correlator = PathBuf::from(text("--correlator")),
                "--config" => cli.config = Some(PathBuf::from(text("--config"))),
                "--python" => cli.python = Some(PathBuf::from(text("--python"))),
                "--duck-peer" => cli.duck_peer = PathBuf::from(text("--duck-peer")),
                "--keep" => cli.keep = true,
                "--daily" => cli.daily = true,
                "--fleet" => {
                    cli.terminate = match text("--fleet").trim() {
                        "steady" => true,
                        "growing" => false,
                        other => panic!("--fleet: expected steady or growing, got {other:?}"),
                    }
                }
                "--peer-only" => cli.peer_only = true,
                "--bench" => {}
                other => panic!("unknown argument {other:?}"),
            }
        }
        cli
    }
}

// ---------------------------------------------------------------------------------------------
// Data

fn generate_shape(cli: &Cli, shape: Shape, dir: &Path) -> Data {
    let spec = Spec {
        seed: 0x5eed_cafe_f00d_0016,
        groups: cli.groups,
        instances_per_group: cli.per_group,
        cloudtrail: Amount::Records(cli.ct),
        jsonl_files: FILES,
        gz_objects: false,
        findings: cli.gd,
        finding_files: FILES,
        attacks: cli.attacks,
        accounts: 4,
        regional_group_names: false,
        mix: Mix::Heavy {
            days: cli.days,
            task_sessions: shape.task_sessions_per_mille(),
            terminate: cli.terminate,
        },
    };
    let t = Instant::now();
    let data = generate::generate(dir, &spec).expect("generating the data set");
    println!();
    println!("== shape {} ==", shape.name());
    println!(
        "generated in {:.1} s: {} CloudTrail records ({:.1} MB, {:.0} B/record, {} planted) and \
         {} GuardDuty finding lines ({:.1} MB, {:.0} B/line; {} of kinds rules select); {:.2} \
         days from {}; {:.1} MB of JSON Lines in all",
        t.elapsed().as_secs_f64(),
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / data.records.max(1) as f64,
        data.planted_records,
        data.findings,
        data.findings_bytes as f64 / 1e6,
        data.findings_bytes as f64 / data.findings.max(1) as f64,
        data.selected_kind_findings,
        (data.last_ms - data.first_ms) as f64 / 86_400_000.0,
        format_rfc3339(data.first_ms as i64),
        (data.jsonl_bytes + data.findings_bytes) as f64 / 1e6,
    );
    data.print_mix();
    data.print_finding_mix();
    println!(
        "  estate: {} Auto Scaling groups, {} instances at the start; {} planted attacks, {} \
         quiet look-alikes",
        data.groups, data.instances, data.attacks, data.look_alikes
    );
    data
}

/// What the cut into a warm-up folder and slices wrote.
struct Cut {
    warm: PathBuf,
    /// Folder, first millisecond, CloudTrail records, findings, bytes.
    slices: Vec<(PathBuf, u64, u64, u64, u64)>,
    warm_records: u64,
    left_out: u64,
}

/// Cuts the last `slices` periods of `period` ms (quarter-hours or days, ending on a boundary
/// of the period at or before the newest record, and starting on one) into one folder each, and
/// everything older into `warm/`.
fn cut(data: &Data, dir: &Path, slices: u64, period: u64) -> Cut {
    let end = data.last_ms / period * period;
    let start = end
        .saturating_sub(slices * period)
        .max(data.first_ms.div_ceil(period) * period)
        .min(end);
    let n = ((end - start) / period) as usize;
    let warm = dir.join("warm");
    fs::create_dir_all(&warm).expect("creating the warm-up folder");
    let mut out = Cut {
        warm: warm.clone(),
        slices: Vec::new(),
        warm_records: 0,
        left_out: 0,
    };
    let open = |p: PathBuf| {
        BufWriter::with_capacity(1 << 20, File::create(&p).expect("creating a slice file"))
    };
    for (files, key, name, is_ct) in [
        (
            &data.jsonl,
            &b"\"eventTime\":\""[..],
            "cloudtrail.jsonl",
            true,
        ),
        (
            &data.findings_files,
            &b"\"updatedAt\":\""[..],
            "guardduty.jsonl",
            false,
        ),
    ] {
        let mut warm_out = open(warm.join(name));
        let mut outs: Vec<BufWriter<File>> = (0..n)
            .map(|i| {
                let d = dir.join(format!("slice-{i:03}"));
                fs::create_dir_all(&d).expect("creating a slice folder");
                if is_ct {
                    out.slices
                        .push((d.clone(), start + i as u64 * period, 0, 0, 0));
                }
                open(d.join(name))
            })
            .collect();
        let finder = memchr::memmem::Finder::new(key);
        let mut line = Vec::with_capacity(64 << 10);
        for f in files {
            let mut r = BufReader::with_capacity(
                1 << 20,
                File::open(&f.path).expect("opening a generated file"),
            );
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line)
                    .expect("reading a generated file")
                    == 0
                {
                    break;
                }
                let at = finder.find(&line).unwrap_or_else(|| {
                    panic!("a generated line without {}", String::from_utf8_lossy(key))
                }) + key.len();
                let end_quote =
                    memchr::memchr(b'"', &line[at..]).expect("a closed time string") + at;
                let t = std::str::from_utf8(&line[at..end_quote])
                    .ok()
                    .and_then(parse_timestamp)
                    .expect("a generated time") as u64;
                if t < start {
                    warm_out
                        .write_all(&line)
                        .expect("writing the warm-up folder");
                    out.warm_records += 1;
                } else if t < end {
                    let i = ((t - start) / period) as usize;
                    outs[i].write_all(&line).expect("writing a slice");
                    let s = &mut out.slices[i];
                    if is_ct {
                        s.2 += 1;
                    } else {
                        s.3 += 1;
                    }
                    s.4 += line.len() as u64;
                } else {
                    out.left_out += 1;
                }
            }
        }
        warm_out.flush().expect("writing the warm-up folder");
        for mut o in outs {
            o.flush().expect("writing a slice");
        }
    }
    out
}

/// [`cut`], said, and every input read once so that the page cache holds it before the first
/// run, as in the other benches.
fn cut_and_warm_up(data: &Data, dir: &Path, slices: u64, period: u64, what: &str) -> Cut {
    let t = Instant::now();
    let cut = cut(data, dir, slices, period);
    println!(
        "cut in {:.1} s: {} {what} from {} ({} records and findings, {} left out after the \
         last); {} before the first, in the warm-up folder",
        t.elapsed().as_secs_f64(),
        cut.slices.len(),
        cut.slices
            .first()
            .map_or("-".to_string(), |s| format_rfc3339(s.1 as i64)),
        cut.slices.iter().map(|s| s.2 + s.3).sum::<u64>(),
        cut.left_out,
        cut.warm_records
    );
    for f in data.all_files() {
        measure::warm_up(&f.path);
    }
    cut
}

/// Writes `files` one after the other into `out`.
fn concat(files: &[InputFile], out: &Path) {
    let mut w = BufWriter::with_capacity(
        1 << 20,
        File::create(out).expect("creating the peer's input"),
    );
    for f in files {
        let mut r = File::open(&f.path).expect("opening a generated file");
        std::io::copy(&mut r, &mut w).expect("writing the peer's input");
    }
    w.flush().expect("writing the peer's input");
}

fn files_in(dir: &Path) -> Vec<InputFile> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("listing a folder")
        .map(|e| e.expect("listing a folder").path())
        .collect();
    v.sort();
    v.into_iter()
        .map(|path| InputFile {
            path,
            explicit: true,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// What one child process cost.
#[derive(Clone, Debug, Default)]
struct Run {
    name: String,
    bytes: u64,
    wall: f64,
    cpu: f64,
    others: f64,
    peak_kib: u64,
    exit: i32,
    /// State file size after the run (0 without a state).
    state_bytes: u64,
    /// Records the run read (from its JSON summary).
    records: u64,
    findings: u64,
}

/// Runs `program args`, sampling its peak RSS, and returns what it cost and its stdout.
fn measure_child(program: &Path, args: &[&std::ffi::OsStr], stderr_to: &Path) -> (Run, Vec<u8>) {
    let out_path = stderr_to.with_extension("stdout");
    let cpu0 = measure::children_cpu_seconds();
    let own0 = measure::cpu_seconds();
    let busy0 = measure::machine_busy_seconds();
    let t = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("creating a stdout file"))
        .stderr(File::create(stderr_to).expect("creating a stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for a child") {
            break s;
        }
        peak = peak.max(measure::status_kib(&status_file, "VmHWM:"));
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = t.elapsed().as_secs_f64();
    let cpu = measure::children_cpu_seconds() - cpu0;
    let own = measure::cpu_seconds() - own0;
    let run = Run {
        wall,
        cpu,
        others: (measure::machine_busy_seconds() - busy0 - cpu - own).max(0.0),
        peak_kib: peak,
        exit: status.code().unwrap_or(-1),
        ..Run::default()
    };
    (run, fs::read(&out_path).unwrap_or_default())
}

/// `correlator correlate` over `inputs`, with a state when given.
fn correlate(cli: &Cli, dir: &Path, name: &str, inputs: &[PathBuf], state: Option<&Path>) -> Run {
    let asff = dir.join("findings.json");
    let log = dir.join(format!("run-{}.log", name.replace(['.', ' ', '/'], "_")));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "correlate".as_ref(),
        "--summary".as_ref(),
        "json".as_ref(),
        "--asff".as_ref(),
        asff.as_os_str(),
    ];
    if let Some(s) = state {
        args.push("--state".as_ref());
        args.push(s.as_os_str());
    }
    if let Some(c) = &cli.config {
        args.push("--config".as_ref());
        args.push(c.as_os_str());
    }
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    let (mut run, _) = measure_child(&cli.correlator, &args, &log);
    run.name = name.to_string();
    run.bytes = inputs.iter().map(|p| tree_len(p)).sum();
    if run.exit != 0 && run.exit != 1 {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        panic!(
            "{name}: correlator exited with {} (log {}):\n{}",
            run.exit,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    if let Some(s) = state {
        run.state_bytes = measure::file_len(s);
    }
    if let Some(summary) = last_json_object(&fs::read_to_string(&log).unwrap_or_default()) {
        run.records = summary
            .pointer("/read/records")
            .and_then(Value::as_object)
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        // With a state, the findings written (new or changed); without, every sequence's.
        run.findings = summary
            .pointer("/findings/written")
            .and_then(Value::as_u64)
            .or_else(|| {
                summary
                    .pointer("/correlate/sequences")
                    .and_then(Value::as_array)
                    .map(|a| a.len() as u64)
            })
            .unwrap_or(0);
    }
    if !cli.keep {
        let _ = fs::remove_file(&asff);
    }
    run
}

/// The last line of `text` that is a JSON object (the run summary after the logs).
fn last_json_object(text: &str) -> Option<Value> {
    text.lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
}

fn tree_len(p: &Path) -> u64 {
    if p.is_dir() {
        fs::read_dir(p)
            .map(|d| d.flatten().map(|e| tree_len(&e.path())).sum())
            .unwrap_or(0)
    } else {
        measure::file_len(p)
    }
}

/// One part of a state as `state inspect --format json` weighs it.
struct Part {
    name: String,
    items: u64,
    bytes: u64,
}

/// A state as `state inspect --format json` describes it.
struct Inspected {
    /// Bytes as saved (compressed from version 7 on).
    saved: u64,
    /// Bytes of its JSON document (what the parts add up to; the saved size before version 7).
    document: u64,
    parts: Vec<Part>,
}

/// `correlator state inspect --format json`: the state's sizes and its parts.
fn inspect(cli: &Cli, dir: &Path, state: &Path) -> Inspected {
    let log = dir.join("inspect.log");
    let args: Vec<&std::ffi::OsStr> = vec![
        "state".as_ref(),
        "inspect".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    let (run, stdout) = measure_child(&cli.correlator, &args, &log);
    let doc: Value = match serde_json::from_slice(&stdout) {
        Ok(v) if run.exit == 0 => v,
        _ => {
            println!(
                "  (state inspect exited with {}; its log: {})",
                run.exit,
                fs::read_to_string(&log).unwrap_or_default().trim()
            );
            let len = measure::file_len(state);
            return Inspected {
                saved: len,
                document: len,
                parts: Vec::new(),
            };
        }
    };
    let parts = doc
        .get("parts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| Part {
                    name: p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    items: p.get("items").and_then(Value::as_u64).unwrap_or(0),
                    bytes: p.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let saved = doc
        .get("bytes")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| measure::file_len(state));
    let document = doc
        .get("document_bytes")
        .and_then(Value::as_u64)
        .unwrap_or(saved);
    Inspected {
        saved,
        document,
        parts,
    }
}

// ---------------------------------------------------------------------------------------------
// One shape

fn run_shape(cli: &Cli, shape: Shape, dir: &Path, data: &Data) {
    let cut = cut_and_warm_up(
        data,
        dir,
        cli.slices,
        QUARTER_HOUR_MS,
        "slices of 15 minutes",
    );
    let ct_dir = dir.join("cloudtrail");
    let gd_dir = dir.join("guardduty");
    let mut runs = Vec::new();
    let mut states: Vec<(String, Inspected)> = Vec::new();

    // a. Everything, no state.
    let a = correlate(cli, dir, "a. everything, no state", &[ct_dir, gd_dir], None);
    println!("  done: {} ({:.2} s)", a.name, a.wall);
    runs.push(a);

    // b. The first 90 % with a state, then the last 10 %.
    let state_b = dir.join("b.state");
    let first: Vec<PathBuf> = data.jsonl[..FILES - 1]
        .iter()
        .chain(&data.findings_files[..FILES - 1])
        .map(|f| f.path.clone())
        .collect();
    let last: Vec<PathBuf> = [&data.jsonl[FILES - 1], &data.findings_files[FILES - 1]]
        .iter()
        .map(|f| f.path.clone())
        .collect();
    for (name, inputs) in [
        ("b1. first 90 %, --state", first),
        ("b2. last 10 %, --state", last),
    ] {
        let r = correlate(cli, dir, name, &inputs, Some(&state_b));
        println!("  done: {} ({:.2} s)", r.name, r.wall);
        states.push((name.to_string(), inspect(cli, dir, &state_b)));
        runs.push(r);
    }
    if !cli.keep {
        let _ = fs::remove_file(&state_b);
    }

    // c. The days before, then one run per slice.
    let state_c = dir.join("c.state");
    let warm = correlate(
        cli,
        dir,
        "c0. warm-up: the days before, --state",
        std::slice::from_ref(&cut.warm),
        Some(&state_c),
    );
    println!("  done: {} ({:.2} s)", warm.name, warm.wall);
    states.push((warm.name.clone(), inspect(cli, dir, &state_c)));
    runs.push(warm);
    let mut slice_rows = Vec::new();
    for (i, (folder, from, ct, gd, _)) in cut.slices.iter().enumerate() {
        let r = correlate(
            cli,
            dir,
            &format!("slice {i}"),
            std::slice::from_ref(folder),
            Some(&state_c),
        );
        slice_rows.push(SliceRow {
            i,
            from: *from,
            records: ct + gd,
            run: r,
            decode_cpu: decode_cpu(&files_in(folder)),
        });
        // The parts after the first, the middle and the last slice.
        let n = cut.slices.len();
        if i == 0 || i == n / 2 || i + 1 == n {
            states.push((format!("c. after slice {i}"), inspect(cli, dir, &state_c)));
        }
    }

    print_runs(&runs, &slice_rows);
    print_states(&states);
    print_slices(&slice_rows);
    check_targets(shape, &runs, &slice_rows, &states);
}

/// d. One `--state` run per whole UTC day, in order, after one over what comes before the first.
fn run_days(cli: &Cli, shape: Shape, dir: &Path, data: &Data) {
    let cut = cut_and_warm_up(data, dir, cli.days + 1, DAY_MS, "whole days");
    let state = dir.join("d.state");
    let mut days: Vec<DayRow> = Vec::new();
    if cut.warm_records > 0 {
        let r = correlate(
            cli,
            dir,
            "d0. before the first whole day",
            std::slice::from_ref(&cut.warm),
            Some(&state),
        );
        days.push(DayRow {
            day: 0,
            from: None,
            records: cut.warm_records,
            run: r,
            state: inspect(cli, dir, &state),
        });
    }
    for (i, (folder, from, ct, gd, _)) in cut.slices.iter().enumerate() {
        let r = correlate(
            cli,
            dir,
            &format!("day {}", i + 1),
            std::slice::from_ref(folder),
            Some(&state),
        );
        println!("  done: {} ({:.2} s)", r.name, r.wall);
        days.push(DayRow {
            day: i + 1,
            from: Some(*from),
            records: ct + gd,
            run: r,
            state: inspect(cli, dir, &state),
        });
    }
    print_days(&days);
    check_days(shape, &days);
}

struct DayRow {
    /// 0: what comes before the first whole day.
    day: usize,
    from: Option<u64>,
    records: u64,
    run: Run,
    state: Inspected,
}

impl DayRow {
    /// Items and MB of the document of one part of the state after the day.
    fn part(&self, name: &str) -> String {
        self.state
            .parts
            .iter()
            .find(|p| p.name == name)
            .map_or("-".to_string(), |p| {
                format!("{} / {:.1}", p.items, p.bytes as f64 / 1e6)
            })
    }
}

fn print_days(days: &[DayRow]) {
    println!();
    println!(
        "days (one --state run per UTC day; saved MB = the state file after it, document MB = \
         its JSON; parts: items / MB of the document; peak RSS sampled every 5 ms)"
    );
    println!(
        "| day | from       | records | wall s | CPU s | peak RSS MiB | saved MB | document MB | signals             | graph               | sequences           |"
    );
    println!(
        "|-----|------------|---------|--------|-------|--------------|----------|-------------|---------------------|---------------------|---------------------|"
    );
    for d in days {
        println!(
            "| {:>3} | {:<10} | {:>7} | {:>6.2} | {:>5.2} | {:>12.1} | {:>8.2} | {:>11.2} | {:>19} | {:>19} | {:>19} |",
            d.day,
            d.from
                .map_or("before".to_string(), |f| format_rfc3339(f as i64)[..10]
                    .to_string()),
            d.records,
            d.run.wall,
            d.run.cpu,
            mib(d.run.peak_kib),
            d.state.saved as f64 / 1e6,
            d.state.document as f64 / 1e6,
            d.part("signals"),
            d.part("graph"),
            d.part("sequences"),
        );
    }
}

/// The state's growth between the middle whole day and the last.
fn check_days(shape: Shape, days: &[DayRow]) {
    println!();
    let whole: Vec<&DayRow> = days.iter().filter(|d| d.day > 0).collect();
    if whole.len() < 2 {
        println!(
            "check [{}]: fewer than two whole days: no growth to measure",
            shape.name()
        );
        return;
    }
    // Day 15 of 30.
    let (middle, last) = (whole[whole.len() / 2 - 1], whole[whole.len() - 1]);
    let growth = |f: &dyn Fn(&Inspected) -> u64| {
        f(&last.state) as f64 / f(&middle.state).max(1) as f64 - 1.0
    };
    let saved = growth(&|s| s.saved);
    let document = growth(&|s| s.document);
    check(
        shape,
        &format!(
            "state growth from day {} to day {}: saved {:.2} -> {:.2} MB ({:+.1} %), document \
             {:.1} -> {:.1} MB ({:+.1} %) (target < {:.0} %)",
            middle.day,
            last.day,
            middle.state.saved as f64 / 1e6,
            last.state.saved as f64 / 1e6,
            100.0 * saved,
            middle.state.document as f64 / 1e6,
            last.state.document as f64 / 1e6,
            100.0 * document,
            100.0 * TARGET_DAILY_GROWTH
        ),
        saved < TARGET_DAILY_GROWTH,
    );
    let largest = days.iter().map(|d| d.state.saved).max().unwrap_or(0) as f64 / 1e6;
    check(
        shape,
        &format!("largest state {largest:.1} MB (target < {TARGET_STATE_MB} MB)"),
        largest < TARGET_STATE_MB,
    );
    let worst = days.iter().max_by_key(|d| d.run.peak_kib).expect("a day");
    check(
        shape,
        &format!(
            "highest peak RSS {:.1} MiB ({}) (target < {TARGET_PEAK_MIB} MiB)",
            mib(worst.run.peak_kib),
            worst.run.name
        ),
        mib(worst.run.peak_kib) < TARGET_PEAK_MIB,
    );
}

/// CPU seconds of decoding `files` in this process (default reading options, every signal
/// dropped on the worker that decoded it): repeated up to [`DECODE_REPEATS`] times until
/// 0.3 s have been measured, since the process's CPU time counts in steps of 10 ms.
fn decode_cpu(files: &[InputFile]) -> f64 {
    let mut total = 0.0;
    let mut rounds = 0;
    while rounds < DECODE_REPEATS && total < 0.3 {
        let mut counts = Counts::default();
        let meter = Meter::start();
        read_files(files, &ReadOptions::default(), &drop_on_worker, &mut |e| {
            counts.on_event(e)
        });
        total += meter.stop().cpu;
        rounds += 1;
        assert_eq!(
            counts.problems, 0,
            "generated data has no problems: {:?}",
            counts.first_problems
        );
    }
    total / f64::from(rounds)
}

struct SliceRow {
    i: usize,
    from: u64,
    records: u64,
    run: Run,
    decode_cpu: f64,
}

impl SliceRow {
    fn beyond(&self) -> f64 {
        self.run.cpu - self.decode_cpu
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_runs(runs: &[Run], slices: &[SliceRow]) {
    println!();
    println!(
        "runs (MB = 10^6 bytes of input; CPU = user + system of the child; others = CPU \
         seconds other processes used meanwhile; peak RSS sampled every 5 ms, MiB; state MB \
         after the run; findings: without a state every sequence's, with one those written, \
         new or changed); 1-min load average now {}",
        measure::load_average()
    );
    println!(
        "| {:<40} | {:>8} | {:>9} | {:>7} | {:>7} | {:>6} | {:>9} | {:>8} | {:>8} | {:>4} |",
        "run",
        "MB",
        "records",
        "wall s",
        "CPU s",
        "others",
        "peak RSS",
        "state MB",
        "findings",
        "exit"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|",
        "-".repeat(42),
        "-".repeat(10),
        "-".repeat(11),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(8),
        "-".repeat(11),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(6)
    );
    let row = |r: &Run| {
        println!(
            "| {:<40} | {:>8.1} | {:>9} | {:>7.2} | {:>7.2} | {:>6.2} | {:>9.1} | {:>8.1} | {:>8} | {:>4} |",
            r.name,
            r.bytes as f64 / 1e6,
            r.records,
            r.wall,
            r.cpu,
            r.others,
            mib(r.peak_kib),
            r.state_bytes as f64 / 1e6,
            r.findings,
            r.exit
        );
    };
    for r in runs {
        row(r);
    }
    if slices.is_empty() {
        return;
    }
    // The slices in three rows: median, 90th percentile and highest of each column.
    for (label, q) in [("median", 0.5), ("90th percentile", 0.9), ("highest", 1.0)] {
        let pick = |f: &dyn Fn(&SliceRow) -> f64| quantile(slices.iter().map(f).collect(), q);
        let r = Run {
            name: format!("c. {} slices: {label}", slices.len()),
            bytes: pick(&|s| s.run.bytes as f64) as u64,
            records: pick(&|s| s.records as f64) as u64,
            wall: pick(&|s| s.run.wall),
            cpu: pick(&|s| s.run.cpu),
            others: pick(&|s| s.run.others),
            peak_kib: pick(&|s| s.run.peak_kib as f64) as u64,
            state_bytes: pick(&|s| s.run.state_bytes as f64) as u64,
            findings: pick(&|s| s.run.findings as f64) as u64,
            exit: slices.iter().map(|s| s.run.exit).max().unwrap_or(0),
        };
        row(&r);
    }
}

/// The `q` quantile (0 to 1, nearest rank) of `v`.
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn print_states(states: &[(String, Inspected)]) {
    println!();
    println!(
        "state parts (correlator state inspect --format json): MB of the JSON document (share) \
         and items; saved MB is the file as written (compressed from state version 7 on)"
    );
    let mut names: Vec<&str> = Vec::new();
    for (_, st) in states {
        for p in &st.parts {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
    }
    let mut header = format!(
        "| {:<40} | {:>9} | {:>11} |",
        "state after", "saved MB", "document MB"
    );
    for n in &names {
        header.push_str(&format!(" {n:>26} |"));
    }
    println!("{header}");
    println!(
        "|{}|",
        header[1..header.len() - 1]
            .split('|')
            .map(|c| "-".repeat(c.chars().count()))
            .collect::<Vec<_>>()
            .join("|")
    );
    for (name, st) in states {
        let mut line = format!(
            "| {name:<40} | {:>9.2} | {:>11.2} |",
            st.saved as f64 / 1e6,
            st.document as f64 / 1e6
        );
        for n in &names {
            let cell = st
                .parts
                .iter()
                .find(|p| p.name == *n)
                .map_or(String::new(), |p| {
                    format!(
                        "{:.2} ({:.0} %) {}",
                        p.bytes as f64 / 1e6,
                        100.0 * p.bytes as f64 / st.document.max(1) as f64,
                        p.items
                    )
                });
            line.push_str(&format!(" {cell:>26} |"));
        }
        println!("{line}");
    }
    if let Some((name, st)) = states.last()
        && let Some(top) = st.parts.iter().max_by_key(|p| p.bytes)
    {
        println!(
            "largest part after {name}: {} ({} items)",
            top.name, top.items
        );
    }
}

fn print_slices(slices: &[SliceRow]) {
    if slices.is_empty() {
        return;
    }
    println!();
    println!(
        "slices (decode CPU = reading the slice's files in this process, every signal dropped \
         on its worker; beyond = the run's CPU minus that)"
    );
    println!(
        "| slice | from                 | records | wall s | CPU s | decode CPU s | beyond s | peak RSS MiB | state MB | others |"
    );
    println!(
        "|-------|----------------------|---------|--------|-------|--------------|----------|--------------|----------|--------|"
    );
    for s in slices {
        println!(
            "| {:>5} | {:<20} | {:>7} | {:>6.2} | {:>5.2} | {:>12.3} | {:>8.2} | {:>12.1} | {:>8.2} | {:>6.2} |",
            s.i,
            format_rfc3339(s.from as i64),
            s.records,
            s.run.wall,
            s.run.cpu,
            s.decode_cpu,
            s.beyond(),
            mib(s.run.peak_kib),
            s.run.state_bytes as f64 / 1e6,
            s.run.others
        );
    }
}

fn check_targets(shape: Shape, runs: &[Run], slices: &[SliceRow], states: &[(String, Inspected)]) {
    println!();
    let find = |prefix: &str| runs.iter().find(|r| r.name.starts_with(prefix));
    if let (Some(a), Some(b2)) = (find("a."), find("b2.")) {
        let share = b2.wall / a.wall;
        check(
            shape,
            &format!(
                "the 10 % run {:.2} s = {share:.2}x the stateless run's {:.2} s (target <= \
                 {TARGET_TENTH_SHARE}x)",
                b2.wall, a.wall
            ),
            share <= TARGET_TENTH_SHARE,
        );
    }
    if !slices.is_empty() {
        let beyond: Vec<f64> = slices.iter().map(SliceRow::beyond).collect();
        let worst = quantile(beyond.clone(), 1.0);
        check(
            shape,
            &format!(
                "slice CPU beyond reading its records: median {:.2} s, highest {worst:.2} s \
                 (target < {TARGET_SLICE_CPU_S} s)",
                quantile(beyond, 0.5)
            ),
            worst < TARGET_SLICE_CPU_S,
        );
    }
    let largest = runs
        .iter()
        .map(|r| r.state_bytes)
        .chain(slices.iter().map(|s| s.run.state_bytes))
        .chain(states.iter().map(|s| s.1.saved))
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    check(
        shape,
        &format!("largest state {largest:.1} MB (target < {TARGET_STATE_MB} MB)"),
        largest < TARGET_STATE_MB,
    );
    let (name, peak) = runs
        .iter()
        .map(|r| (r.name.clone(), r.peak_kib))
        .chain(slices.iter().map(|s| (s.run.name.clone(), s.run.peak_kib)))
        .max_by_key(|r| r.1)
        .unwrap_or_default();
    check(
        shape,
        &format!(
            "highest peak RSS {:.1} MiB ({name}) (target < {TARGET_PEAK_MIB} MiB)",
            mib(peak)
        ),
        mib(peak) < TARGET_PEAK_MIB,
    );
}

fn check(shape: Shape, what: &str, ok: bool) {
    println!(
        "check [{}]: {what}: {}",
        shape.name(),
        if ok { "PASS" } else { "FAIL" }
    );
}

// ---------------------------------------------------------------------------------------------
// DuckDB peer

/// `duck_peer.py FILE` (A) and `correlator correlate FILE` (B), alternated.
fn compare_with_duckdb(cli: &Cli, python: &Path, file: &Path) {
    println!();
    println!(
        "DuckDB peer: {} {} over {} ({:.1} MB), alternating with correlator correlate over the \
         same file, {} rounds",
        python.display(),
        cli.duck_peer.display(),
        file.display(),
        measure::file_len(file) as f64 / 1e6,
        cli.rounds
    );
    measure::warm_up(file);
    let dir = file.parent().expect("a folder");
    let mut peer = Vec::new();
    let mut ours = Vec::new();
    for round in 0..cli.rounds {
        let log = dir.join("duck.log");
        let args: Vec<&std::ffi::OsStr> = vec![cli.duck_peer.as_os_str(), file.as_os_str()];
        let (mut a, stdout) = measure_child(python, &args, &log);
        a.bytes = measure::file_len(file);
        if a.exit != 0 {
            panic!(
                "duck_peer.py exited with {}: {}",
                a.exit,
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        a.name = format!(
            "A{round}. duck_peer.py (prints {})",
            String::from_utf8_lossy(&stdout).trim()
        );
        println!("  done: {} ({:.2} s)", a.name, a.wall);
        peer.push(a);
        let b = correlate(
            cli,
            dir,
            &format!("B{round}. correlator correlate"),
            &[file.to_path_buf()],
            None,
        );
        println!("  done: {} ({:.2} s)", b.name, b.wall);
        ours.push(b);
    }
    let rows: Vec<Run> = peer
        .iter()
        .zip(&ours)
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    print_runs(&rows, &[]);
    let a = quantile(peer.iter().map(|r| r.wall).collect(), 0.5);
    let b = quantile(ours.iter().map(|r| r.wall).collect(), 0.5);
    println!(
        "check [peer]: median wall: pipeline {b:.2} s, DuckDB {a:.2} s: {:.2}x DuckDB's (issue \
         15 item 7's target <= 0.5x): {}",
        b / a,
        if b / a <= 0.5 { "PASS" } else { "FAIL" }
    );
}
