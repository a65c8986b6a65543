//! Decoder throughput and memory benchmark on generated CloudTrail data.
//!
//! Generates about 1 GB (decimal: `--mb N` × 10^6 bytes of JSON) of realistic CloudTrail
//! management events into a temporary folder under [`std::env::temp_dir`], streaming to disk,
//! in two forms holding the same records:
//!
//! - JSON Lines, split into 8 files in time order, one record per line;
//! - gzipped CloudTrail S3 log objects,
//!   `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz`,
//!   each one line `{"Records":[…]}` of 2 000–5 000 records of one account and region
//!   (flate2, default level).
//!
//! Records average ~1.6 KB: a mix of eighteen event names in realistic proportions
//! (`AssumeRole`, `DescribeInstances`, KMS `Decrypt`, `RunInstances` with full
//! `responseElements` at 3 %, `TerminateInstances`, `UpdateAutoScalingGroup`, `ConsoleLogin`,
//! failed calls…), every `userIdentity` type, instance-role sessions named after 1 000 instances
//! in 100 Auto Scaling groups over 4 accounts and 4 regions, unique `eventID`s, increasing
//! `eventTime`s.
//!
//! After a warm-up read of every file (page cache), it measures, once each:
//!
//! - a. one JSON Lines file on one thread (`sources::file::decode_file`);
//! - b. `.json.gz` files on one thread (`decode_file`, one after the other, about as many
//!   decompressed bytes as a.: one log object, ~5 MB, is too short to time);
//! - c. all JSON Lines files with `sources::file::read_files` and default `ReadOptions` (one
//!   thread per core), at a quarter of the files and at all of them;
//! - d. the same for all `.json.gz` files.
//!
//! These use the `keep_all` classifier: every signal reaches the callback, which counts and
//! drops it (on the calling thread). c2. and d2. repeat the full runs with a classifier that
//! drops every signal on the worker that decoded it, which shows what handing signals to the
//! calling thread costs.
//!
//! Each gets wall time, MB/s of decompressed bytes (MB = 10^6 bytes), MB/s per thread,
//! records/s, the process's CPU time, the CPU time other processes took meanwhile (a shared
//! machine makes numbers noisy), and peak RSS (`VmHWM`, reset before each measurement by
//! writing `5` to `/proc/self/clear_refs`). Problems are counted and the first few printed
//! (generated data must yield none). A PASS/FAIL line per throughput target (JSON Lines
//! ≥ 600 MB/s per core, gzip ≥ 300 MB/s decompressed per core) closes the report; the process
//! does not fail on a miss.
//!
//! Run: `cargo bench --bench decode_bench` (1024 MB), or
//! `cargo bench --bench decode_bench -- --mb 256` (`BENCH_MB=256` works too; the flag wins).
//! `--keep` leaves the generated folder in place and prints its path. Needs about 1.2 × the
//! size in free disk space.

/// The same allocator as the `correlator` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use finding_correlator::signal::Signal;
use finding_correlator::sources::file::{Classify, Event, FileStats, InputFile, Keep};
use finding_correlator::sources::file::{ReadOptions, keep_all};
use finding_correlator::sources::file::{decode_file, read_files};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Number of JSON Lines files.
const JSONL_FILES: usize = 8;
/// Records per gzipped log object: uniform in this range.
const GZ_RECORDS: (u64, u64) = (2_000, 5_000);
/// 2025-05-01T00:00:00Z.
const START_MS: u64 = 1_746_057_600_000;
/// Mean gap between consecutive `eventTime`s.
const MEAN_GAP_MS: u64 = 800;

const TARGET_JSONL: f64 = 600.0;
const TARGET_GZ: f64 = 300.0;

/// Appends formatted text to a `String` (which cannot fail).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {
        write!($dst, $($arg)*).expect("writing to a String")
    };
}

fn main() {
    let cfg = Config::from_env_and_args();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let target_bytes = cfg.mb * 1_000_000;
    let dir = std::env::temp_dir().join(format!("decode_bench-{}", std::process::id()));
    let guard = TempDir {
        path: dir.clone(),
        keep: cfg.keep,
    };
    println!(
        "decode_bench: {} MB of CloudTrail JSON, {cores} core(s), 1-min load average {}, data in {}",
        cfg.mb,
        load_average(),
        dir.display()
    );

    let t = Instant::now();
    let data = generate(&dir, target_bytes).expect("generating the data set");
    let gen_secs = t.elapsed().as_secs_f64();
    let gz_bytes: u64 = data.gz.iter().map(|f| file_len(&f.path)).sum();
    println!(
        "generated {} records ({:.1} MB, {:.0} B/record on average) in {:.1} s",
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / data.records as f64,
        gen_secs,
    );
    print_mix(&data);
    println!(
        "  {} JSON Lines files; {} .json.gz log objects, {:.1} MB compressed (ratio {:.1}:1)",
        data.jsonl.len(),
        data.gz.len(),
        gz_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / gz_bytes.max(1) as f64
    );

    let t = Instant::now();
    let warm: u64 = data
        .jsonl
        .iter()
        .chain(&data.gz)
        .map(|f| warm_up(&f.path))
        .sum();
    println!(
        "warm-up read of {:.1} MB (page cache) in {:.2} s",
        warm as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let peak_reset = reset_peak();
    if !peak_reset {
        println!("note: cannot write /proc/self/clear_refs; peak RSS is since process start");
    }

    // b. reads gz objects one after the other until about as many bytes as a. have passed.
    let one_jsonl = &data.jsonl[..1];
    let jsonl_share = data.jsonl_bytes / JSONL_FILES as u64;
    let mut gz_single = 0;
    let mut acc = 0;
    while gz_single < data.gz.len() && acc < jsonl_share {
        acc += data.gz_raw_bytes[gz_single];
        gz_single += 1;
    }
    let gz_single = gz_single.max(1);
    let quarter_jsonl = (data.jsonl.len() / 4).max(1);
    let quarter_gz = (data.gz.len() / 4).max(1);

    // Quarter before full: memory the allocator keeps after a larger run would otherwise
    // hide growth in the smaller one.
    let plan: [(&'static str, &[InputFile], Mode, Classify<'_>); 8] = [
        (
            "a. JSONL, 1 file, decode_file",
            one_jsonl,
            Mode::Sequential,
            &keep_all,
        ),
        (
            "b. gz, 1 thread, decode_file",
            &data.gz[..gz_single],
            Mode::Sequential,
            &keep_all,
        ),
        (
            "c. JSONL, 1/4 files, read_files",
            &data.jsonl[..quarter_jsonl],
            Mode::ReadFiles,
            &keep_all,
        ),
        (
            "c. JSONL, all files, read_files",
            &data.jsonl,
            Mode::ReadFiles,
            &keep_all,
        ),
        (
            "c2. same, Keep::Drop on workers",
            &data.jsonl,
            Mode::ReadFiles,
            &drop_on_worker,
        ),
        (
            "d. gz, 1/4 files, read_files",
            &data.gz[..quarter_gz],
            Mode::ReadFiles,
            &keep_all,
        ),
        (
            "d. gz, all files, read_files",
            &data.gz,
            Mode::ReadFiles,
            &keep_all,
        ),
        (
            "d2. same, Keep::Drop on workers",
            &data.gz,
            Mode::ReadFiles,
            &drop_on_worker,
        ),
    ];
    let rows: Vec<Row> = plan
        .into_iter()
        .map(|(name, files, mode, classify)| run(name, files, mode, classify, cores))
        .collect();
    let [a, b, c_quarter, c_full, c_drop, d_quarter, d_full, d_drop] = &rows[..] else {
        unreachable!("one row per plan entry")
    };

    print_table(&rows, cores, &data);

    let total_problems: u64 = rows.iter().map(|r| r.problems).sum();
    println!();
    for r in &rows {
        if !r.first_problems.is_empty() {
            println!("first problems of {}:", r.name);
            for p in &r.first_problems {
                println!("  {p}");
            }
        }
    }
    let complete = [c_full, c_drop, d_full, d_drop]
        .iter()
        .all(|r| r.signals == data.records);
    println!(
        "signals: JSON Lines {} and gz {} of {} records generated; problems: {} in all{}",
        c_full.signals,
        d_full.signals,
        data.records,
        total_problems,
        if total_problems == 0 && complete {
            " (OK)"
        } else {
            " (MISMATCH: decoder bug?)"
        }
    );
    println!(
        "peak RSS vs input size: JSON Lines {:.1} MiB at {:.0} MB, {:.1} MiB at {:.0} MB; \
         gz {:.1} MiB at {:.0} MB, {:.1} MiB at {:.0} MB",
        c_quarter.peak_kib as f64 / 1024.0,
        c_quarter.bytes as f64 / 1e6,
        c_full.peak_kib as f64 / 1024.0,
        c_full.bytes as f64 / 1e6,
        d_quarter.peak_kib as f64 / 1024.0,
        d_quarter.bytes as f64 / 1e6,
        d_full.peak_kib as f64 / 1024.0,
        d_full.bytes as f64 / 1e6,
    );
    println!();
    for (row, target) in [
        (a, TARGET_JSONL),
        (c_full, TARGET_JSONL),
        (c_drop, TARGET_JSONL),
        (b, TARGET_GZ),
        (d_full, TARGET_GZ),
        (d_drop, TARGET_GZ),
    ] {
        let per_core = row.mb_per_s() / row.threads as f64;
        println!(
            "check: {:<34} {:>7.0} MB/s per core (target >= {:.0}): {}",
            row.name,
            per_core,
            target,
            if per_core >= target { "PASS" } else { "FAIL" }
        );
    }
    drop(guard);
}

// ---------------------------------------------------------------------------------------------
// Settings and housekeeping

struct Config {
    mb: u64,
    keep: bool,
}

impl Config {
    /// `BENCH_MB`, then `--mb N` / `--mb=N` and `--keep`. Other arguments (cargo passes
    /// `--bench`) are ignored.
    fn from_env_and_args() -> Config {
        let parse = |v: &str, what: &str| -> u64 {
            match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => panic!("{what}: expected a positive number of MB, got {v:?}"),
            }
        };
        let mut cfg = Config {
            mb: std::env::var("BENCH_MB").map_or(1024, |v| parse(&v, "BENCH_MB")),
            keep: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if let Some(v) = a.strip_prefix("--mb=") {
                cfg.mb = parse(v, "--mb");
            } else if a == "--mb" {
                cfg.mb = parse(&args.next().unwrap_or_default(), "--mb");
            } else if a == "--keep" {
                cfg.keep = true;
            }
        }
        cfg
    }
}

/// Removes the generated folder when dropped (also on a panic), unless asked to keep it.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            println!("kept {}", self.path.display());
        } else if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

fn warm_up(p: &Path) -> u64 {
    let mut f = File::open(p).expect("opening a generated file");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading {}: {e}", p.display()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement

#[derive(Clone, Copy)]
enum Mode {
    /// `decode_file` on each file in turn, on this thread.
    Sequential,
    /// `read_files` with default options.
    ReadFiles,
}

struct Row {
    name: &'static str,
    files: usize,
    threads: usize,
    bytes: u64,
    signals: u64,
    problems: u64,
    first_problems: Vec<String>,
    wall: f64,
    cpu: f64,
    /// CPU time other processes used during the measurement.
    others: f64,
    base_kib: u64,
    peak_kib: u64,
}

impl Row {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall
    }
}

/// A classifier that drops every signal on the thread that decoded it.
fn drop_on_worker(_: &Signal) -> Keep {
    Keep::Drop
}

fn run(
    name: &'static str,
    files: &[InputFile],
    mode: Mode,
    classify: Classify<'_>,
    cores: usize,
) -> Row {
    let opts = ReadOptions::default();
    let mut signals = 0u64;
    let mut problems = 0u64;
    let mut first_problems = Vec::new();
    let mut bytes = 0u64;
    let mut on_event = |e: Event| match e {
        Event::Signals(batch) => signals += batch.len() as u64,
        Event::Problem(p) => {
            problems += 1;
            if first_problems.len() < 5 {
                first_problems.push(p.to_string());
            }
        }
        Event::FileDone(_, stats) => bytes += stats.bytes,
        Event::Dropped(counts) => signals += counts.iter().map(|(_, n)| n).sum::<u64>(),
    };
    reset_peak();
    let base_kib = proc_status_kib("VmRSS:");
    let cpu0 = cpu_seconds();
    let busy0 = machine_busy_seconds();
    let t = Instant::now();
    let threads = match mode {
        Mode::Sequential => {
            // As `read_files` does with one thread.
            for f in files {
                let stats: FileStats = decode_file(f, &opts.decode, classify, &mut on_event);
                on_event(Event::FileDone(Arc::from(f.path.as_path()), stats));
            }
            1
        }
        Mode::ReadFiles => {
            read_files(files, &opts, classify, &mut on_event);
            cores.min(files.len())
        }
    };
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let others = (machine_busy_seconds() - busy0 - cpu).max(0.0);
    let peak_kib = proc_status_kib("VmHWM:");
    println!("  done: {name} ({wall:.2} s)");
    Row {
        name,
        files: files.len(),
        threads,
        bytes,
        signals,
        problems,
        first_problems,
        wall,
        cpu,
        others,
        base_kib,
        peak_kib,
    }
}

/// Resets the peak RSS (`VmHWM`) to the current RSS. False when the kernel refuses.
fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `kB` line of `/proc/self/status` (`VmHWM:`, `VmRSS:`), 0 when unreadable.
fn proc_status_kib(key: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of the whole process (all threads, finished ones included), from
/// `/proc/self/stat` in clock ticks of 1/100 s (USER_HZ on Linux).
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of the line; field 3 (state) is the first after the `)`.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// CPU time all processes have used since boot (`/proc/stat`, all but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is counted in user).
    let busy: u64 = ticks.iter().take(8).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    busy as f64 / 100.0
}

/// The 1-minute load average.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn print_table(rows: &[Row], cores: usize, data: &Data) {
    println!();
    println!(
        "machine: {cores} core(s); data: {} records, {:.1} MB JSON ({} JSON Lines files, {} .json.gz)",
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl.len(),
        data.gz.len()
    );
    println!(
        "MB = 10^6 bytes of decompressed JSON; MB/s/thread = MB/s / threads; MB/CPUs = MB per \
         CPU second of this process; others = CPU seconds other processes used meanwhile \
         (noise); RSS in MiB; 1-min load average now {}",
        load_average()
    );
    let header = format!(
        "| {:<32} | {:>5} | {:>3} | {:>8} | {:>9} | {:>6} | {:>6} | {:>6} | {:>7} | {:>11} | {:>7} | {:>9} | {:>8} | {:>9} |",
        "measurement",
        "files",
        "thr",
        "MB",
        "records",
        "wall s",
        "CPU s",
        "others",
        "MB/s",
        "MB/s/thread",
        "MB/CPUs",
        "records/s",
        "base RSS",
        "peak RSS"
    );
    println!("{header}");
    println!(
        "|{}|",
        header[1..header.len() - 1]
            .split('|')
            .map(|c| "-".repeat(c.chars().count()))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in rows {
        println!(
            "| {:<32} | {:>5} | {:>3} | {:>8.1} | {:>9} | {:>6.2} | {:>6.2} | {:>6.2} | {:>7.0} | {:>11.0} | {:>7.0} | {:>9.0} | {:>8.1} | {:>9.1} |",
            r.name,
            r.files,
            r.threads,
            r.bytes as f64 / 1e6,
            r.signals,
            r.wall,
            r.cpu,
            r.others,
            r.mb_per_s(),
            r.mb_per_s() / r.threads as f64,
            if r.cpu > 0.0 {
                r.bytes as f64 / 1e6 / r.cpu
            } else {
                0.0
            },
            r.signals as f64 / r.wall,
            r.base_kib as f64 / 1024.0,
            r.peak_kib as f64 / 1024.0,
        );
    }
}

fn print_mix(data: &Data) {
    let mut line = String::from("  event mix (share, mean size):");
    for (i, (ev, _)) in MIX.iter().enumerate() {
        if i % 4 == 0 {
            line.push_str("\n   ");
        }
        let n = data.per_event[i];
        w!(
            line,
            " {} {:.1}% {:.0} B,",
            ev.name(),
            100.0 * n as f64 / data.records.max(1) as f64,
            data.per_event_bytes[i] as f64 / n.max(1) as f64
        );
    }
    line.pop();
    w!(
        line,
        "\n    failed calls (errorCode or ConsoleLogin failure): {:.1}%",
        100.0 * data.failed as f64 / data.records.max(1) as f64
    );
    println!("{line}");
}

// ---------------------------------------------------------------------------------------------
// Data set generation

struct Data {
    jsonl: Vec<InputFile>,
    gz: Vec<InputFile>,
    /// Decompressed size of each `gz` file.
    gz_raw_bytes: Vec<u64>,
    records: u64,
    jsonl_bytes: u64,
    failed: u64,
    per_event: Vec<u64>,
    per_event_bytes: Vec<u64>,
}

/// One gzipped log object being written.
struct GzObject {
    path: PathBuf,
    enc: GzEncoder<BufWriter<File>>,
    records: u64,
    limit: u64,
    raw: u64,
}

/// A batch of records for the gzip writer thread: (bucket, time, record text).
type GzBatch = Vec<(usize, u64, String)>;

/// Writes the data set; JSON Lines on this thread, gzip objects on a second thread.
fn generate(dir: &Path, target_bytes: u64) -> io::Result<Data> {
    fs::create_dir_all(dir)?;
    let (tx, rx) = mpsc::sync_channel::<GzBatch>(16);
    let gz_dir = dir.to_path_buf();
    let gz_thread = std::thread::spawn(move || write_gz_objects(&gz_dir, rx));

    let mut g = Gen::new(0x5eed_cafe_f00d_0001);
    let mut data = Data {
        jsonl: Vec::new(),
        gz: Vec::new(),
        gz_raw_bytes: Vec::new(),
        records: 0,
        jsonl_bytes: 0,
        failed: 0,
        per_event: vec![0; MIX.len()],
        per_event_bytes: vec![0; MIX.len()],
    };
    let per_file = target_bytes.div_ceil(JSONL_FILES as u64);
    let mut out: Option<BufWriter<File>> = None;
    let mut batch: GzBatch = Vec::with_capacity(256);
    while data.jsonl_bytes < target_bytes {
        let want = (data.jsonl_bytes / per_file) as usize;
        if out.is_none() || data.jsonl.len() <= want {
            if let Some(mut o) = out.take() {
                o.flush()?;
            }
            let path = dir.join(format!("records-{:02}.jsonl", data.jsonl.len()));
            out = Some(BufWriter::with_capacity(1 << 20, File::create(&path)?));
            data.jsonl.push(InputFile {
                path,
                explicit: true,
            });
        }
        let meta = g.record();
        let o = out.as_mut().expect("open JSON Lines file");
        o.write_all(g.buf.as_bytes())?;
        o.write_all(b"\n")?;
        data.records += 1;
        data.jsonl_bytes += g.buf.len() as u64 + 1;
        data.per_event[meta.event] += 1;
        data.per_event_bytes[meta.event] += g.buf.len() as u64;
        data.failed += u64::from(meta.failed);
        batch.push((
            meta.account * REGIONS.len() + meta.region,
            g.time_ms,
            g.buf.clone(),
        ));
        if batch.len() == 256 && tx.send(std::mem::take(&mut batch)).is_err() {
            break;
        }
    }
    if let Some(mut o) = out.take() {
        o.flush()?;
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    drop(tx);
    let mut gz = gz_thread.join().expect("gzip writer thread")?;
    gz.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (f, raw) in gz {
        data.gz.push(f);
        data.gz_raw_bytes.push(raw);
    }
    Ok(data)
}

/// Receives records and writes them into one open log object per account and region.
fn write_gz_objects(dir: &Path, rx: mpsc::Receiver<GzBatch>) -> io::Result<Vec<(InputFile, u64)>> {
    let mut rng = Rng::new(0x0b1e_c75e_ed00);
    let mut open: Vec<Option<GzObject>> =
        (0..ACCOUNTS.len() * REGIONS.len()).map(|_| None).collect();
    let mut done = Vec::new();
    for batch in rx {
        for (bucket, time, rec) in batch {
            let slot = &mut open[bucket];
            if slot.is_none() {
                *slot = Some(new_gz_object(dir, bucket, time, &mut rng)?);
            }
            let obj = slot.as_mut().expect("open log object");
            if obj.records > 0 {
                obj.enc.write_all(b",")?;
                obj.raw += 1;
            }
            obj.enc.write_all(rec.as_bytes())?;
            obj.raw += rec.len() as u64;
            obj.records += 1;
            if obj.records == obj.limit {
                let obj = slot.take().expect("open log object");
                done.push(finish_gz_object(obj)?);
            }
        }
    }
    for obj in open.into_iter().flatten() {
        done.push(finish_gz_object(obj)?);
    }
    Ok(done)
}

fn new_gz_object(dir: &Path, bucket: usize, time: u64, rng: &mut Rng) -> io::Result<GzObject> {
    let account = ACCOUNTS[bucket / REGIONS.len()];
    let region = REGIONS[bucket % REGIONS.len()];
    let t = Tm::from_ms(time);
    // Delivery is every ~5 minutes; the name carries the end of the window.
    let m5 = (t.min / 5 + 1) * 5;
    let (hh, mm) = if m5 == 60 {
        ((t.hour + 1) % 24, 0)
    } else {
        (t.hour, m5)
    };
    let folder = dir.join(format!(
        "AWSLogs/{account}/CloudTrail/{region}/{:04}/{:02}/{:02}",
        t.year, t.month, t.day
    ));
    fs::create_dir_all(&folder)?;
    let mut suffix = String::new();
    rng.alnum(&mut suffix, 16);
    let path = folder.join(format!(
        "{account}_CloudTrail_{region}_{:04}{:02}{:02}T{hh:02}{mm:02}Z_{suffix}.json.gz",
        t.year, t.month, t.day
    ));
    let file = BufWriter::with_capacity(256 << 10, File::create(&path)?);
    let mut enc = GzEncoder::new(file, Compression::default());
    enc.write_all(b"{\"Records\":[")?;
    Ok(GzObject {
        path,
        enc,
        records: 0,
        limit: GZ_RECORDS.0 + rng.below(GZ_RECORDS.1 - GZ_RECORDS.0 + 1),
        raw: 12,
    })
}

fn finish_gz_object(mut obj: GzObject) -> io::Result<(InputFile, u64)> {
    obj.enc.write_all(b"]}")?;
    obj.enc.finish()?.flush()?;
    Ok((
        InputFile {
            path: obj.path,
            explicit: true,
        },
        obj.raw + 2,
    ))
}

// ---------------------------------------------------------------------------------------------
// Randomness and small formatting helpers

/// xorshift64* pseudo-random numbers: fast, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Index into `weights`, chosen in proportion to them.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, &wt) in weights.iter().enumerate() {
            if x < wt {
                return i;
            }
            x -= wt;
        }
        weights.len() - 1
    }

    fn hex(&mut self, out: &mut String, n: usize) {
        push_chars(out, n, b"0123456789abcdef", || self.next());
    }

    fn upper(&mut self, out: &mut String, n: usize) {
        push_chars(out, n, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", || self.next());
    }

    fn alnum(&mut self, out: &mut String, n: usize) {
        push_chars(
            out,
            n,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            || self.next(),
        );
    }

    fn base64(&mut self, out: &mut String, n: usize) {
        push_chars(
            out,
            n,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            || self.next(),
        );
    }

    /// A random (version 4) UUID.
    fn uuid(&mut self, out: &mut String) {
        let a = self.next();
        let b = self.next();
        w!(
            out,
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        );
    }
}

fn push_chars(out: &mut String, n: usize, alphabet: &[u8], mut next: impl FnMut() -> u64) {
    let len = alphabet.len() as u64;
    for _ in 0..n {
        // The high bits of a multiply: unbiased enough, and no weak low bits.
        let i = ((next() >> 32) * len) >> 32;
        out.push(char::from(alphabet[i as usize]));
    }
}

/// splitmix64: a fixed scramble, for identifiers derived from an index.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` hex digits derived from `seed`.
fn hex_of(seed: u64, n: usize) -> String {
    let mut r = Rng::new(seed);
    let mut s = String::with_capacity(n);
    r.hex(&mut s, n);
    s
}

/// `n` upper-case IAM-style id characters derived from `seed`.
fn upper_of(seed: u64, n: usize) -> String {
    let mut r = Rng::new(seed);
    let mut s = String::with_capacity(n);
    r.upper(&mut s, n);
    s
}

/// A UTC calendar time.
struct Tm {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
}

impl Tm {
    fn from_ms(ms: u64) -> Tm {
        let secs = ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Tm {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            min: (rem / 60 % 60) as u32,
            sec: (rem % 60) as u32,
        }
    }
}

/// `2025-05-02T09:22:00Z`.
fn iso(out: &mut String, ms: u64) {
    let t = Tm::from_ms(ms);
    w!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.min,
        t.sec
    );
}

/// STS's `May 2, 2025, 3:22:00 PM`.
fn sts_expiration(out: &mut String, ms: u64) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Tm::from_ms(ms);
    let (h12, ampm) = match t.hour {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    w!(
        out,
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[t.month as usize - 1],
        t.day,
        t.year,
        h12,
        t.min,
        t.sec,
        ampm
    );
}

// ---------------------------------------------------------------------------------------------
// The simulated estate: accounts, regions, Auto Scaling groups, instances, people

const ACCOUNTS: [&str; 4] = [
    "111122223333",
    "222233334444",
    "555566667777",
    "777788889999",
];
const ACCOUNT_WEIGHTS: [u32; 4] = [40, 25, 20, 15];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-3"];
const REGION_WEIGHTS: [u32; 4] = [50, 20, 20, 10];
/// The AWS-owned account that appears as `requesterId` of Auto Scaling launches.
const REQUESTER: &str = "444455556666";
const GROUPS: usize = 100;
const INSTANCES: usize = 1000;

/// Application, instance type, cores, threads per core.
const APPS: [(&str, &str, u32, u32); 10] = [
    ("web", "c5.large", 1, 2),
    ("api", "m5.xlarge", 2, 2),
    ("batch", "m5.2xlarge", 4, 2),
    ("worker", "c6i.xlarge", 2, 2),
    ("ingest", "r6g.large", 2, 1),
    ("search", "r5.2xlarge", 4, 2),
    ("cache", "r6g.xlarge", 4, 1),
    ("etl", "m6i.4xlarge", 8, 2),
    ("ml-train", "p3.2xlarge", 4, 2),
    ("gateway", "t3.medium", 1, 2),
];

struct Group {
    account: usize,
    region: usize,
    app: usize,
    name: String,
    role: String,
    role_id: String,
    profile_arn: String,
    profile_id: String,
    launch_template: String,
    ami: String,
    vpc: String,
    subnets: [String; 3],
    sg: String,
}

struct Instance {
    id: String,
    group: usize,
    subnet: usize,
    ip: [u8; 3],
    eni: String,
    mac: String,
}

struct World {
    groups: Vec<Group>,
    instances: Vec<Instance>,
}

impl World {
    fn new() -> World {
        let groups = (0..GROUPS)
            .map(|g| {
                let account = g % ACCOUNTS.len();
                let region = (g / ACCOUNTS.len()) % REGIONS.len();
                let app = g % APPS.len();
                let acct = ACCOUNTS[account];
                let net = (account * REGIONS.len() + region) as u64;
                let s = g as u64 * 1000;
                let name = format!("{}-asg-{g:02}", APPS[app].0);
                Group {
                    account,
                    region,
                    app,
                    role: format!("{}-instance-role-{g:02}", APPS[app].0),
                    role_id: format!("AROA{}", upper_of(s + 1, 17)),
                    profile_arn: format!(
                        "arn:aws:iam::{acct}:instance-profile/{}-profile-{g:02}",
                        APPS[app].0
                    ),
                    profile_id: format!("AIPA{}", upper_of(s + 2, 17)),
                    launch_template: format!("lt-0{}", hex_of(s + 3, 16)),
                    ami: format!("ami-0{}", hex_of(s + 4, 16)),
                    vpc: format!("vpc-0{}", hex_of(1_000_000 + net, 16)),
                    subnets: [0, 1, 2]
                        .map(|i| format!("subnet-0{}", hex_of(2_000_000 + net * 3 + i, 16))),
                    sg: format!("sg-0{}", hex_of(s + 5, 16)),
                    name,
                }
            })
            .collect();
        let instances = (0..INSTANCES)
            .map(|k| {
                let s = 10_000_000 + k as u64 * 10;
                let mut mac = String::from("0e");
                for b in mix(s + 3).to_be_bytes().iter().take(5) {
                    w!(mac, ":{b:02x}");
                }
                Instance {
                    id: format!("i-0{}", hex_of(s, 16)),
                    group: k % GROUPS,
                    subnet: (k / GROUPS) % 3,
                    ip: [
                        (k / GROUPS % 3 * 16) as u8,
                        (k / 256) as u8,
                        (k % 256) as u8,
                    ],
                    eni: format!("eni-0{}", hex_of(s + 1, 16)),
                    mac,
                }
            })
            .collect();
        World { groups, instances }
    }

    fn group_of(&self, k: usize) -> &Group {
        &self.groups[self.instances[k].group]
    }
}

/// SSO users (assumed `AWSReservedSSO_…` roles) and IAM users.
const PEOPLE: [&str; 8] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dan@example.com",
    "erin@example.com",
    "frank@example.com",
    "grace@example.com",
    "heidi@example.com",
];
const IAM_USERS: [&str; 5] = ["alice", "ci-user", "backup-svc", "terraform", "monitoring"];
const LAMBDAS: [&str; 6] = [
    "orders-processor",
    "thumbnail-resize",
    "audit-forwarder",
    "nightly-report",
    "slack-notifier",
    "cost-exporter",
];

/// User agents, as they appear inside the JSON string (already escaped).
const UA_SDK: [&str; 6] = [
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.156.0",
    "aws-sdk-java/2.25.30 Linux/5.10.214-202.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
    "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.213-201.855.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off command/ec2.describe-instances",
    "amazon-cloudwatch-agent/1.300035.0b547 (go1.22.1; linux; amd64) aws-sdk-go/1.48.6 (go1.22.1; linux; amd64)",
    "aws-sdk-rust/1.1.9 os/linux lang/rust#1.77.2 api/sts#1.19.0",
];
const UA_HUMAN: [&str; 6] = [
    "aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe sid/d1c6b3e2 prompt/off command/ec2.describe-instances",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "AWS Internal",
    "AWSPowerShell/4.1.532.0 .NET_Runtime/4.0 .NET_Framework/4.0 OS/Microsoft_Windows_NT_10.0.19045.0 WindowsPowerShell/5.0 ClientSync",
    "aws-sdk-dotnet-coreclr/3.7.300.2 ua/2.0 OS/Windows#10.0.20348.0 md/exe#C:\\\\Program Files\\\\Contoso\\\\Sync\\\\agent.exe lang/.NET_Core#6.0.25",
];
/// Odd clients: escaped quotes and backslashes inside the string.
const UA_ODD: [&str; 3] = [
    "python-requests/2.31.0 (compatible; \\\"recon\\\" scanner; +https://scanner.example)",
    "curl/8.5.0 \\\"probe\\\" C:\\\\tools\\\\curl.exe",
    "[S3Browser/11.6.7 (Windows; \\\"portable\\\")]",
];
const UA_TERRAFORM: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.44.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.152.0";
const UA_LAMBDA: [&str; 2] = [
    "Boto3/1.34.42 md/Botocore#1.34.42 ua/2.0 os/linux#5.10.214-223.854.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.42",
    "awslambda-worker/1.0 rusoto/0.48.0 rust/1.74.1 linux",
];

/// Who made a call.
#[derive(Clone, Copy)]
enum Who {
    /// An EC2 instance's role session (session name = instance id).
    InstanceRole(usize),
    /// A person through IAM Identity Center.
    Sso(usize),
    /// The CI role used by Terraform.
    Ci,
    IamUser(usize),
    /// A Lambda function's execution role.
    Lambda(usize),
    /// `AWSService` with `invokedBy`.
    Service(&'static str),
    /// EC2 fetching an instance's role credentials (`AWSService`, `ec2.amazonaws.com`).
    Ec2Delivery(usize),
    /// The Auto Scaling service-linked role.
    AutoScaling,
    /// The AWS Config service-linked role.
    Config,
    Root,
}

/// Event names with their share of records, in per mille.
#[derive(Clone, Copy)]
enum Ev {
    AssumeRole,
    DescribeInstances,
    Decrypt,
    CreateLogStream,
    GetCallerIdentity,
    DescribeSecurityGroups,
    DescribeAutoScalingGroups,
    DescribeVolumes,
    GenerateDataKey,
    DescribeInstanceStatus,
    GetRole,
    DescribeTags,
    ListBuckets,
    CreateTags,
    RunInstances,
    TerminateInstances,
    UpdateAutoScalingGroup,
    ConsoleLogin,
}

const MIX: [(Ev, u32); 18] = [
    (Ev::AssumeRole, 160),
    (Ev::DescribeInstances, 120),
    (Ev::Decrypt, 110),
    (Ev::CreateLogStream, 70),
    (Ev::GetCallerIdentity, 60),
    (Ev::DescribeSecurityGroups, 60),
    (Ev::DescribeAutoScalingGroups, 60),
    (Ev::DescribeVolumes, 50),
    (Ev::GenerateDataKey, 50),
    (Ev::DescribeInstanceStatus, 50),
    (Ev::GetRole, 40),
    (Ev::DescribeTags, 40),
    (Ev::ListBuckets, 30),
    (Ev::CreateTags, 30),
    (Ev::RunInstances, 30),
    (Ev::TerminateInstances, 20),
    (Ev::UpdateAutoScalingGroup, 10),
    (Ev::ConsoleLogin, 10),
];

impl Ev {
    fn name(self) -> &'static str {
        match self {
            Ev::AssumeRole => "AssumeRole",
            Ev::DescribeInstances => "DescribeInstances",
            Ev::Decrypt => "Decrypt",
            Ev::CreateLogStream => "CreateLogStream",
            Ev::GetCallerIdentity => "GetCallerIdentity",
            Ev::DescribeSecurityGroups => "DescribeSecurityGroups",
            Ev::DescribeAutoScalingGroups => "DescribeAutoScalingGroups",
            Ev::DescribeVolumes => "DescribeVolumes",
            Ev::GenerateDataKey => "GenerateDataKey",
            Ev::DescribeInstanceStatus => "DescribeInstanceStatus",
            Ev::GetRole => "GetRole",
            Ev::DescribeTags => "DescribeTags",
            Ev::ListBuckets => "ListBuckets",
            Ev::CreateTags => "CreateTags",
            Ev::RunInstances => "RunInstances",
            Ev::TerminateInstances => "TerminateInstances",
            Ev::UpdateAutoScalingGroup => "UpdateAutoScalingGroup",
            Ev::ConsoleLogin => "ConsoleLogin",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Ev::AssumeRole | Ev::GetCallerIdentity => "sts.amazonaws.com",
            Ev::Decrypt | Ev::GenerateDataKey => "kms.amazonaws.com",
            Ev::CreateLogStream => "logs.amazonaws.com",
            Ev::DescribeAutoScalingGroups | Ev::UpdateAutoScalingGroup => {
                "autoscaling.amazonaws.com"
            }
            Ev::GetRole => "iam.amazonaws.com",
            Ev::ListBuckets => "s3.amazonaws.com",
            Ev::ConsoleLogin => "signin.amazonaws.com",
            _ => "ec2.amazonaws.com",
        }
    }

    fn read_only(self) -> bool {
        !matches!(
            self,
            Ev::CreateLogStream
                | Ev::CreateTags
                | Ev::RunInstances
                | Ev::TerminateInstances
                | Ev::UpdateAutoScalingGroup
                | Ev::ConsoleLogin
        )
    }

    /// Whether the call happens in `us-east-1` whatever the caller's region (global services).
    fn global(self) -> bool {
        matches!(self, Ev::GetRole | Ev::ConsoleLogin | Ev::ListBuckets)
    }
}

/// What the generator tells its caller about the record it wrote.
struct Meta {
    event: usize,
    account: usize,
    region: usize,
    failed: bool,
}

/// The caller's side of a record, known once `userIdentity` is chosen.
struct Caller {
    account: usize,
    region: usize,
    arn: String,
    ip: String,
    ua: &'static str,
    /// The instance whose role made the call, if any.
    instance: Option<usize>,
}

struct Gen {
    rng: Rng,
    world: World,
    time_ms: u64,
    mix_weights: Vec<u32>,
    /// The current record's text.
    buf: String,
    /// Scratch space for request and response parts.
    scratch: String,
    /// The role of the current `AssumeRole` call, for its `resources`.
    role_arn: String,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            world: World::new(),
            time_ms: START_MS,
            mix_weights: MIX.iter().map(|m| m.1).collect(),
            buf: String::with_capacity(16 << 10),
            scratch: String::with_capacity(16 << 10),
            role_arn: String::new(),
        }
    }

    /// Writes the next record into `self.buf`.
    fn record(&mut self) -> Meta {
        self.time_ms += self.rng.below(2 * MEAN_GAP_MS + 1);
        let event = self.rng.weighted(&self.mix_weights);
        let ev = MIX[event].0;
        let who = self.who(ev);
        self.buf.clear();
        let mut r = std::mem::take(&mut self.buf);
        let version = *self.rng.pick(&["1.08", "1.09", "1.10", "1.10", "1.11"]);
        w!(r, "{{\"eventVersion\":\"{version}\",\"userIdentity\":");
        let mut caller = self.identity(&mut r, who);
        if ev.global() {
            caller.region = 0;
        }
        let region = REGIONS[caller.region];
        let account = ACCOUNTS[caller.account];
        r.push_str(",\"eventTime\":\"");
        iso(&mut r, self.time_ms);
        w!(
            r,
            "\",\"eventSource\":\"{}\",\"eventName\":\"{}\",\"awsRegion\":\"{region}\",\"sourceIPAddress\":\"{}\",\"userAgent\":\"{}\"",
            ev.source(),
            ev.name(),
            caller.ip,
            caller.ua
        );
        let failed = self.body(&mut r, ev, who, &caller);
        if !matches!(ev, Ev::ConsoleLogin) {
            r.push_str(",\"requestID\":\"");
            if matches!(ev, Ev::ListBuckets) {
                self.rng.upper(&mut r, 16);
            } else {
                self.rng.uuid(&mut r);
            }
            r.push('"');
        }
        r.push_str(",\"eventID\":\"");
        self.rng.uuid(&mut r);
        w!(r, "\",\"readOnly\":{}", ev.read_only());
        self.resources(&mut r, ev, &caller);
        w!(
            r,
            ",\"eventType\":\"{}\",\"managementEvent\":true,\"recipientAccountId\":\"{account}\"",
            if matches!(ev, Ev::ConsoleLogin) {
                "AwsConsoleSignIn"
            } else {
                "AwsApiCall"
            }
        );
        if matches!(ev, Ev::AssumeRole) {
            r.push_str(",\"sharedEventID\":\"");
            self.rng.uuid(&mut r);
            r.push('"');
        }
        r.push_str(",\"eventCategory\":\"Management\"");
        if !matches!(
            who,
            Who::Service(_) | Who::Ec2Delivery(_) | Who::AutoScaling | Who::Config
        ) {
            let (tls, cipher) = if self.rng.chance(850) {
                ("TLSv1.3", "TLS_AES_128_GCM_SHA256")
            } else {
                ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
            };
            let host = match ev {
                Ev::ConsoleLogin => "signin.aws.amazon.com".to_string(),
                Ev::GetRole => "iam.amazonaws.com".to_string(),
                Ev::ListBuckets => "s3.amazonaws.com".to_string(),
                _ => format!(
                    "{}.{region}.amazonaws.com",
                    ev.source().trim_end_matches(".amazonaws.com")
                ),
            };
            w!(
                r,
                ",\"tlsDetails\":{{\"tlsVersion\":\"{tls}\",\"cipherSuite\":\"{cipher}\",\"clientProvidedHostHeader\":\"{host}\"}}"
            );
        }
        if matches!(who, Who::Sso(_)) && caller.ua.starts_with("Mozilla") {
            r.push_str(",\"sessionCredentialFromConsole\":\"true\"");
        }
        r.push('}');
        self.buf = r;
        Meta {
            event,
            account: caller.account,
            region: caller.region,
            failed,
        }
    }

    /// Picks the caller for an event.
    fn who(&mut self, ev: Ev) -> Who {
        let rng = &mut self.rng;
        let inst = rng.index(INSTANCES);
        let person = rng.index(PEOPLE.len());
        let user = rng.index(IAM_USERS.len());
        let lambda = rng.index(LAMBDAS.len());
        let x = rng.below(100);
        match ev {
            Ev::AssumeRole => match x {
                0..40 => Who::Ec2Delivery(inst),
                40..55 => Who::Service("lambda.amazonaws.com"),
                55..60 => Who::Service("ecs-tasks.amazonaws.com"),
                60..75 => Who::Sso(person),
                75..85 => Who::Ci,
                85..95 => Who::IamUser(user),
                _ => Who::InstanceRole(inst),
            },
            Ev::DescribeInstances | Ev::DescribeInstanceStatus | Ev::DescribeVolumes => match x {
                0..55 => Who::InstanceRole(inst),
                55..75 => Who::Sso(person),
                75..85 => Who::Ci,
                85..93 => Who::IamUser(user),
                _ => Who::Config,
            },
            Ev::DescribeSecurityGroups => match x {
                0..35 => Who::Config,
                35..60 => Who::Sso(person),
                60..80 => Who::Ci,
                _ => Who::InstanceRole(inst),
            },
            Ev::DescribeTags => match x {
                0..85 => Who::InstanceRole(inst),
                _ => Who::Sso(person),
            },
            Ev::Decrypt | Ev::GenerateDataKey => match x {
                0..45 => Who::Lambda(lambda),
                45..90 => Who::InstanceRole(inst),
                _ => Who::Sso(person),
            },
            Ev::CreateLogStream => match x {
                0..80 => Who::Lambda(lambda),
                _ => Who::InstanceRole(inst),
            },
            Ev::GetCallerIdentity => match x {
                0..50 => Who::InstanceRole(inst),
                50..70 => Who::Ci,
                70..90 => Who::Sso(person),
                _ => Who::IamUser(user),
            },
            Ev::DescribeAutoScalingGroups => match x {
                0..50 => Who::InstanceRole(inst),
                50..70 => Who::Ci,
                _ => Who::Sso(person),
            },
            Ev::GetRole => match x {
                0..40 => Who::Config,
                40..70 => Who::Ci,
                _ => Who::Sso(person),
            },
            Ev::ListBuckets => match x {
                0..50 => Who::Sso(person),
                50..80 => Who::IamUser(user),
                _ => Who::Ci,
            },
            Ev::CreateTags => match x {
                0..60 => Who::Ci,
                60..80 => Who::Sso(person),
                _ => Who::InstanceRole(inst),
            },
            Ev::RunInstances => match x {
                0..80 => Who::AutoScaling,
                80..92 => Who::Ci,
                _ => Who::Sso(person),
            },
            Ev::TerminateInstances => match x {
                0..75 => Who::AutoScaling,
                75..90 => Who::Ci,
                _ => Who::Sso(person),
            },
            Ev::UpdateAutoScalingGroup => match x {
                0..60 => Who::Ci,
                60..95 => Who::Sso(person),
                _ => Who::InstanceRole(inst),
            },
            Ev::ConsoleLogin => match x {
                0..60 => Who::IamUser(0),
                60..90 => Who::IamUser(user),
                _ => Who::Root,
            },
        }
    }

    /// Writes `userIdentity` (the object) and returns the caller's context.
    fn identity(&mut self, r: &mut String, who: Who) -> Caller {
        let rng = &mut self.rng;
        let mut account = rng.weighted(&ACCOUNT_WEIGHTS);
        let mut region = rng.weighted(&REGION_WEIGHTS);
        let mut instance = None;
        let acct = |a: usize| ACCOUNTS[a];
        let nat_ip = |a: usize, reg: usize| format!("203.0.113.{}", 10 + a * 16 + reg);
        let (arn, ip, ua) = match who {
            Who::InstanceRole(k) => {
                let g = self.world.group_of(k);
                let inst = &self.world.instances[k];
                account = g.account;
                region = g.region;
                instance = Some(k);
                let a = acct(account);
                let arn = format!("arn:aws:sts::{a}:assumed-role/{}/{}", g.role, inst.id);
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{}:{}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA",
                    g.role_id,
                    inst.id
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{}\",\"arn\":\"arn:aws:iam::{a}:role/{}\",\"accountId\":\"{a}\",\"userName\":\"{}\"}},\"webIdFederationData\":{{}},\"attributes\":{{\"creationDate\":\"",
                    g.role_id,
                    g.role,
                    g.role
                );
                iso(r, self.time_ms - rng.below(6 * 3_600_000));
                w!(
                    r,
                    "\",\"mfaAuthenticated\":\"false\"}},\"ec2RoleDelivery\":\"2.0\"}}}}"
                );
                // Calls through a VPC endpoint come from the private address.
                let ip = if rng.chance(300) {
                    format!("10.{}.{}.{}", inst.ip[0], inst.ip[1], inst.ip[2])
                } else {
                    nat_ip(account, region)
                };
                (arn, ip, *rng.pick(&UA_SDK))
            }
            Who::Sso(p) => {
                let a = acct(account);
                let role = if p < 3 {
                    "AWSReservedSSO_AdministratorAccess_4f1d6a0e3c2b8a7d"
                } else {
                    "AWSReservedSSO_ReadOnlyAccess_9a8b7c6d5e4f3a2b"
                };
                let role_id = format!("AROA{}", upper_of(account as u64 * 10 + (p < 3) as u64, 17));
                let arn = format!("arn:aws:sts::{a}:assumed-role/{role}/{}", PEOPLE[p]);
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{role_id}:{}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA",
                    PEOPLE[p]
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{role_id}\",\"arn\":\"arn:aws:iam::{a}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{role}\",\"accountId\":\"{a}\",\"userName\":\"{role}\"}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, self.time_ms - rng.below(8 * 3_600_000));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                let ua = if rng.chance(20) {
                    *rng.pick(&UA_ODD)
                } else {
                    *rng.pick(&UA_HUMAN)
                };
                (arn, format!("198.51.100.{}", 10 + p), ua)
            }
            Who::Ci => {
                account = 0;
                let a = acct(account);
                let role_id = "AROAEXAMPLECIROLE0001";
                let session = format!("gitlab-runner-{}", 1000 + rng.below(50));
                let arn = format!("arn:aws:sts::{a}:assumed-role/ci-deploy/{session}");
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{role_id}:{session}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA"
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{role_id}\",\"arn\":\"arn:aws:iam::{a}:role/ci-deploy\",\"accountId\":\"{a}\",\"userName\":\"ci-deploy\"}},\"webIdFederationData\":{{}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, self.time_ms - rng.below(3_600_000));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                (arn, format!("192.0.2.{}", 10 + rng.below(8)), UA_TERRAFORM)
            }
            Who::IamUser(u) => {
                let a = acct(account);
                let name = IAM_USERS[u];
                let arn = format!("arn:aws:iam::{a}:user/{name}");
                w!(
                    r,
                    "{{\"type\":\"IAMUser\",\"principalId\":\"AIDA{}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"AKIA{}\",\"userName\":\"{name}\"}}",
                    upper_of(account as u64 * 100 + u as u64, 17),
                    upper_of(account as u64 * 100 + u as u64 + 50, 16),
                );
                let ua = if rng.chance(100) {
                    *rng.pick(&UA_ODD)
                } else {
                    *rng.pick(&UA_HUMAN)
                };
                (arn, format!("198.51.100.{}", 100 + u), ua)
            }
            Who::Lambda(f) => {
                let a = acct(account);
                let role = format!("{}-role-{}", LAMBDAS[f], &hex_of(f as u64, 8));
                let role_id = format!("AROA{}", upper_of(account as u64 * 1000 + f as u64, 17));
                let arn = format!("arn:aws:sts::{a}:assumed-role/{role}/{}", LAMBDAS[f]);
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{role_id}:{}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA",
                    LAMBDAS[f]
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{role_id}\",\"arn\":\"arn:aws:iam::{a}:role/service-role/{role}\",\"accountId\":\"{a}\",\"userName\":\"{role}\"}},\"webIdFederationData\":{{}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, self.time_ms - rng.below(3_600_000));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                (
                    arn,
                    format!("3.{}.{}.{}", 80 + account, region * 10 + f, rng.below(250)),
                    *rng.pick(&UA_LAMBDA),
                )
            }
            Who::Service(svc) => {
                w!(r, "{{\"type\":\"AWSService\",\"invokedBy\":\"{svc}\"}}");
                (String::new(), svc.to_string(), svc)
            }
            Who::Ec2Delivery(k) => {
                let g = self.world.group_of(k);
                account = g.account;
                region = g.region;
                instance = Some(k);
                let svc = "ec2.amazonaws.com";
                w!(r, "{{\"type\":\"AWSService\",\"invokedBy\":\"{svc}\"}}");
                (String::new(), svc.to_string(), svc)
            }
            Who::AutoScaling | Who::Config => {
                let (role, session, svc, id) = if matches!(who, Who::AutoScaling) {
                    (
                        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                        "AutoScaling",
                        "autoscaling.amazonaws.com",
                        "AROAEXAMPLEASGSVC0004",
                    )
                } else {
                    (
                        "config.amazonaws.com/AWSServiceRoleForConfig",
                        "AWSConfig-Describe",
                        "config.amazonaws.com",
                        "AROAEXAMPLECONFIG0007",
                    )
                };
                let a = acct(account);
                let short = role.rsplit('/').next().unwrap_or(role);
                let arn = format!("arn:aws:sts::{a}:assumed-role/{short}/{session}");
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{id}:{session}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{id}\",\"arn\":\"arn:aws:iam::{a}:role/aws-service-role/{role}\",\"accountId\":\"{a}\",\"userName\":\"{short}\"}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, self.time_ms - rng.below(120_000));
                w!(
                    r,
                    "\",\"mfaAuthenticated\":\"false\"}}}},\"invokedBy\":\"{svc}\"}}"
                );
                (arn, svc.to_string(), svc)
            }
            Who::Root => {
                let a = acct(account);
                let arn = format!("arn:aws:iam::{a}:root");
                w!(
                    r,
                    "{{\"type\":\"Root\",\"principalId\":\"{a}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"\"}}"
                );
                (arn, format!("198.51.100.{}", 200 + account), UA_HUMAN[1])
            }
        };
        Caller {
            account,
            region,
            arn,
            ip,
            ua,
            instance,
        }
    }

    /// A group of the caller's account and region (or any, if none there).
    fn local_group(&mut self, c: &Caller) -> usize {
        if let Some(k) = c.instance {
            return self.world.instances[k].group;
        }
        let start = self.rng.index(GROUPS);
        (0..GROUPS)
            .map(|i| (start + i) % GROUPS)
            .find(|&g| {
                let gr = &self.world.groups[g];
                gr.account == c.account && gr.region == c.region
            })
            .unwrap_or(start)
    }

    /// An instance of group `g`.
    fn member(&mut self, g: usize) -> usize {
        g + GROUPS * self.rng.index(INSTANCES / GROUPS)
    }

    /// Writes error fields (for some calls), `requestParameters`, `responseElements` and extra
    /// data. Returns whether the call failed.
    fn body(&mut self, r: &mut String, ev: Ev, who: Who, c: &Caller) -> bool {
        let a = ACCOUNTS[c.account];
        let region = REGIONS[c.region];
        let can_fail = !matches!(
            who,
            Who::Service(_) | Who::Ec2Delivery(_) | Who::AutoScaling | Who::Config | Who::Root
        ) && !matches!(ev, Ev::ConsoleLogin | Ev::RunInstances);
        let failed = can_fail && self.rng.chance(40);
        if failed {
            let action = format!(
                "{}:{}",
                ev.source().trim_end_matches(".amazonaws.com"),
                ev.name()
            );
            match (ev.source(), self.rng.below(4)) {
                ("ec2.amazonaws.com", 0) => r.push_str(
                    ",\"errorCode\":\"Client.RequestLimitExceeded\",\"errorMessage\":\"Request limit exceeded.\"",
                ),
                ("ec2.amazonaws.com", _) => w!(
                    r,
                    ",\"errorCode\":\"Client.UnauthorizedOperation\",\"errorMessage\":\"You are not authorized to perform this operation. User: {} is not authorized to perform: {action} because no identity-based policy allows the {action} action\"",
                    c.arn
                ),
                (_, 0) => r.push_str(
                    ",\"errorCode\":\"ThrottlingException\",\"errorMessage\":\"Rate exceeded\"",
                ),
                (_, _) => w!(
                    r,
                    ",\"errorCode\":\"AccessDenied\",\"errorMessage\":\"User: {} is not authorized to perform: {action} with an explicit deny in a service control policy\"",
                    c.arn
                ),
            }
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        let mut response_null = true;
        let mut launch_failed = false;
        match ev {
            Ev::AssumeRole => {
                let (role_arn, session) = match who {
                    Who::Ec2Delivery(k) => {
                        let g = self.world.group_of(k);
                        (
                            format!("arn:aws:iam::{}:role/{}", ACCOUNTS[g.account], g.role),
                            self.world.instances[k].id.clone(),
                        )
                    }
                    Who::Service(_) => {
                        let f = self.rng.index(LAMBDAS.len());
                        (
                            format!(
                                "arn:aws:iam::{a}:role/service-role/{}-role-{}",
                                LAMBDAS[f],
                                hex_of(f as u64, 8)
                            ),
                            LAMBDAS[f].to_string(),
                        )
                    }
                    _ => (
                        format!(
                            "arn:aws:iam::{}:role/OrganizationAccountAccessRole",
                            ACCOUNTS[self.rng.index(ACCOUNTS.len())]
                        ),
                        format!(
                            "botocore-session-{}",
                            1_700_000_000 + self.rng.below(10_000_000)
                        ),
                    ),
                };
                w!(
                    s,
                    ",\"requestParameters\":{{\"roleArn\":\"{role_arn}\",\"roleSessionName\":\"{session}\""
                );
                self.role_arn.clone_from(&role_arn);
                if !matches!(who, Who::Ec2Delivery(_)) {
                    s.push_str(",\"durationSeconds\":3600");
                }
                s.push('}');
                if !failed {
                    response_null = false;
                    s.push_str(",\"responseElements\":{\"credentials\":{\"accessKeyId\":\"ASIA");
                    self.rng.upper(&mut s, 16);
                    s.push_str("\",\"sessionToken\":\"IQoJb3JpZ2luX2Vj");
                    let n = 280 + self.rng.index(240);
                    self.rng.base64(&mut s, n);
                    s.push_str("\",\"expiration\":\"");
                    sts_expiration(&mut s, self.time_ms + 3_600_000);
                    let role = role_arn.rsplit('/').next().unwrap_or("");
                    w!(
                        s,
                        "\"}},\"assumedRoleUser\":{{\"assumedRoleId\":\"AROA{}:{session}\",\"arn\":\"arn:aws:sts::{}:assumed-role/{role}/{session}\"}}}}",
                        upper_of(role.len() as u64, 17),
                        role_arn.split(':').nth(4).unwrap_or(a)
                    );
                }
            }
            Ev::DescribeInstances => {
                let g = self.local_group(c);
                match self.rng.below(3) {
                    0 => w!(
                        s,
                        ",\"requestParameters\":{{\"instancesSet\":{{}},\"filterSet\":{{\"items\":[{{\"name\":\"tag:aws:autoscaling:groupName\",\"valueSet\":{{\"items\":[{{\"value\":\"{}\"}}]}}}},{{\"name\":\"instance-state-name\",\"valueSet\":{{\"items\":[{{\"value\":\"running\"}}]}}}}]}}}}",
                        self.world.groups[g].name
                    ),
                    1 => {
                        let k = c.instance.unwrap_or_else(|| self.member(g));
                        w!(
                            s,
                            ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{}\"}}]}},\"filterSet\":{{}}}}",
                            self.world.instances[k].id
                        );
                    }
                    _ => s.push_str(
                        ",\"requestParameters\":{\"maxResults\":1000,\"instancesSet\":{},\"filterSet\":{}}",
                    ),
                }
            }
            Ev::DescribeInstanceStatus => {
                let g = self.local_group(c);
                let k = c.instance.unwrap_or_else(|| self.member(g));
                w!(
                    s,
                    ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{}\"}}]}},\"filterSet\":{{}},\"includeAllInstances\":false}}",
                    self.world.instances[k].id
                );
            }
            Ev::DescribeVolumes | Ev::DescribeTags => {
                let g = self.local_group(c);
                let k = c.instance.unwrap_or_else(|| self.member(g));
                let (set, filter) = if matches!(ev, Ev::DescribeVolumes) {
                    ("\"volumeSet\":{},", "attachment.instance-id")
                } else {
                    ("", "resource-id")
                };
                w!(
                    s,
                    ",\"requestParameters\":{{{set}\"filterSet\":{{\"items\":[{{\"name\":\"{filter}\",\"valueSet\":{{\"items\":[{{\"value\":\"{}\"}}]}}}}]}}}}",
                    self.world.instances[k].id
                );
            }
            Ev::DescribeSecurityGroups => {
                let g = self.local_group(c);
                w!(
                    s,
                    ",\"requestParameters\":{{\"securityGroupSet\":{{}},\"securityGroupIdSet\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"filterSet\":{{}}}}",
                    self.world.groups[g].sg
                );
            }
            Ev::DescribeAutoScalingGroups => {
                let g = self.local_group(c);
                if self.rng.chance(500) {
                    w!(
                        s,
                        ",\"requestParameters\":{{\"autoScalingGroupNames\":[\"{}\"]}}",
                        self.world.groups[g].name
                    );
                } else {
                    s.push_str(",\"requestParameters\":{\"maxRecords\":100}");
                }
            }
            Ev::Decrypt | Ev::GenerateDataKey => {
                let context = match who {
                    Who::Lambda(f) => format!(
                        "\"aws:lambda:FunctionArn\":\"arn:aws:lambda:{region}:{a}:function:{}\"",
                        LAMBDAS[f]
                    ),
                    _ => format!(
                        "\"aws:s3:arn\":\"arn:aws:s3:::data-{a}-{region}/exports/{}.parquet\"",
                        self.rng.below(100_000)
                    ),
                };
                if matches!(ev, Ev::Decrypt) {
                    w!(
                        s,
                        ",\"requestParameters\":{{\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"encryptionContext\":{{{context}}}}}"
                    );
                } else {
                    w!(
                        s,
                        ",\"requestParameters\":{{\"keyId\":\"arn:aws:kms:{region}:{a}:key/{}\",\"encryptionContext\":{{{context}}},\"keySpec\":\"AES_256\"}}",
                        kms_key(c.account, c.region)
                    );
                }
            }
            Ev::CreateLogStream => {
                let group = match who {
                    Who::Lambda(f) => format!("/aws/lambda/{}", LAMBDAS[f]),
                    _ => "/ec2/var/log/messages".to_string(),
                };
                w!(
                    s,
                    ",\"requestParameters\":{{\"logGroupName\":\"{group}\",\"logStreamName\":\""
                );
                let t = Tm::from_ms(self.time_ms);
                w!(s, "{:04}/{:02}/{:02}/[$LATEST]", t.year, t.month, t.day);
                self.rng.hex(&mut s, 32);
                s.push_str("\"}");
            }
            Ev::GetCallerIdentity => s.push_str(",\"requestParameters\":null"),
            Ev::GetRole => {
                let g = self.rng.index(GROUPS);
                w!(
                    s,
                    ",\"requestParameters\":{{\"roleName\":\"{}\"}}",
                    self.world.groups[g].role
                );
            }
            Ev::ListBuckets => {
                s.push_str(",\"requestParameters\":{\"Host\":\"s3.amazonaws.com\"}");
            }
            Ev::CreateTags => {
                let g = self.local_group(c);
                let k = c.instance.unwrap_or_else(|| self.member(g));
                w!(
                    s,
                    ",\"requestParameters\":{{\"resourcesSet\":{{\"items\":[{{\"resourceId\":\"{}\"}}]}},\"tagSet\":{{\"items\":[{{\"key\":\"Owner\",\"value\":\"team-{}\"}},{{\"key\":\"CostCenter\",\"value\":\"cc-{}\"}}]}}}}",
                    self.world.instances[k].id,
                    self.rng.below(20),
                    1000 + self.rng.below(50)
                );
                if !failed {
                    response_null = false;
                    s.push_str(",\"responseElements\":{\"requestId\":\"");
                    self.rng.uuid(&mut s);
                    s.push_str("\",\"_return\":true}");
                }
            }
            Ev::RunInstances => {
                launch_failed = self.run_instances(&mut s, who, c);
                response_null = false;
            }
            Ev::TerminateInstances => {
                let g = self.local_group(c);
                let k = self.member(g);
                let id = &self.world.instances[k].id;
                w!(
                    s,
                    ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{id}\"}}]}}}}"
                );
                if !failed {
                    response_null = false;
                    s.push_str(",\"responseElements\":{\"requestId\":\"");
                    self.rng.uuid(&mut s);
                    w!(
                        s,
                        "\",\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{id}\",\"currentState\":{{\"code\":32,\"name\":\"shutting-down\"}},\"previousState\":{{\"code\":16,\"name\":\"running\"}}}}]}}}}"
                    );
                }
            }
            Ev::UpdateAutoScalingGroup => {
                let g = self.local_group(c);
                let gr = &self.world.groups[g];
                let desired = 2 + self.rng.below(20);
                w!(
                    s,
                    ",\"requestParameters\":{{\"autoScalingGroupName\":\"{}\",\"launchTemplate\":{{\"launchTemplateId\":\"{}\",\"version\":\"$Latest\"}},\"minSize\":2,\"maxSize\":{},\"desiredCapacity\":{desired}}}",
                    gr.name,
                    gr.launch_template,
                    desired * 2
                );
            }
            Ev::ConsoleLogin => {
                let ok = !self.rng.chance(80);
                if !ok {
                    r.push_str(",\"errorMessage\":\"Failed authentication\"");
                }
                w!(
                    s,
                    ",\"requestParameters\":null,\"responseElements\":{{\"ConsoleLogin\":\"{}\"}},\"additionalEventData\":{{\"LoginTo\":\"https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_",
                    if ok { "Success" } else { "Failure" }
                );
                self.rng.hex(&mut s, 16);
                let mfa = if matches!(who, Who::Root) {
                    "root-account-mfa-device"
                } else {
                    IAM_USERS[0]
                };
                w!(
                    s,
                    "\",\"MobileVersion\":\"No\",\"MFAIdentifier\":\"arn:aws:iam::{a}:mfa/{mfa}\",\"MFAUsed\":\"Yes\"}}"
                );
                r.push_str(&s);
                self.scratch = s;
                return !ok;
            }
        }
        r.push_str(&s);
        if response_null {
            r.push_str(",\"responseElements\":null");
        }
        if matches!(ev, Ev::ListBuckets) {
            r.push_str(",\"additionalEventData\":{\"SignatureVersion\":\"SigV4\",\"CipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"bytesTransferredIn\":0,\"AuthenticationMethod\":\"AuthHeader\",\"x-amz-id-2\":\"");
            self.rng.base64(r, 76);
            w!(
                r,
                "\",\"bytesTransferredOut\":{}}}",
                2000 + self.rng.below(8000)
            );
        }
        self.scratch = s;
        failed || launch_failed
    }

    /// `RunInstances` request and response (or error). Writes both into `s`, after any
    /// error fields. Returns whether the launch failed.
    fn run_instances(&mut self, s: &mut String, who: Who, c: &Caller) -> bool {
        let a = ACCOUNTS[c.account];
        let region = REGIONS[c.region];
        let g = self.local_group(c);
        let by_asg = matches!(who, Who::AutoScaling);
        let count = if by_asg || self.rng.chance(700) {
            1
        } else {
            2 + self.rng.below(2) as usize
        };
        let (app, itype, cores, threads) = APPS[self.world.groups[g].app];
        let az = ['a', 'b', 'c'][self.rng.index(3)];
        let mut token = String::new();
        if by_asg {
            token.push_str("fleet-");
            self.rng.uuid(&mut token);
            token.push_str("-0");
        } else {
            self.rng.uuid(&mut token);
        }
        let mut err = String::new();
        if self.rng.chance(100) {
            err = match self.rng.below(3) {
                0 => ",\"errorCode\":\"Client.VcpuLimitExceeded\",\"errorMessage\":\"You have requested more vCPU capacity than your current vCPU limit of 64 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.\"".to_string(),
                1 => format!(
                    ",\"errorCode\":\"Server.InsufficientInstanceCapacity\",\"errorMessage\":\"We currently do not have sufficient {itype} capacity in the Availability Zone you requested ({region}{az}). Our system will be working on provisioning additional capacity.\""
                ),
                _ => format!(
                    ",\"errorCode\":\"Client.UnauthorizedOperation\",\"errorMessage\":\"You are not authorized to perform this operation. User: {} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:{region}:{a}:instance/* because no identity-based policy allows the ec2:RunInstances action. Encoded authorization failure message: {}\"",
                    c.arn,
                    {
                        let mut m = String::new();
                        self.rng.alnum(&mut m, 400);
                        m
                    }
                ),
            };
        }
        let gr = &self.world.groups[g];
        s.push_str(&err);
        if by_asg {
            w!(
                s,
                ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"minCount\":1,\"maxCount\":1}}]}},\"instanceType\":\"{itype}\",\"blockDeviceMapping\":{{}},\"availabilityZone\":\"{region}{az}\",\"monitoring\":{{\"enabled\":false}},\"subnetId\":\"{}\",\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\"{token}\",\"launchTemplate\":{{\"launchTemplateId\":\"{}\",\"version\":\"3\"}}}}",
                gr.subnets[0],
                gr.launch_template
            );
        } else {
            w!(
                s,
                ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"imageId\":\"{}\",\"minCount\":1,\"maxCount\":{count}}}]}},\"instanceType\":\"{itype}\",\"blockDeviceMapping\":{{}},\"monitoring\":{{\"enabled\":false}},\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\"{token}\",\"iamInstanceProfile\":{{\"arn\":\"{}\"}},\"tagSpecificationSet\":{{\"items\":[{{\"resourceType\":\"instance\",\"tags\":[{{\"key\":\"Name\",\"value\":\"{app}-manual\"}},{{\"key\":\"Owner\",\"value\":\"platform\"}}]}}]}}}}",
                gr.ami,
                gr.profile_arn
            );
        }
        if !err.is_empty() {
            s.push_str(",\"responseElements\":null");
            return true;
        }
        s.push_str(",\"responseElements\":{\"requestId\":\"");
        self.rng.uuid(s);
        s.push_str("\",\"reservationId\":\"r-0");
        self.rng.hex(s, 16);
        w!(s, "\",\"ownerId\":\"{a}\"");
        if by_asg {
            w!(s, ",\"requesterId\":\"{REQUESTER}\"");
        }
        s.push_str(",\"groupSet\":{},\"instancesSet\":{\"items\":[");
        let first = self.rng.index(INSTANCES / GROUPS);
        for i in 0..count {
            let k = g + GROUPS * ((first + i) % (INSTANCES / GROUPS));
            let inst = &self.world.instances[k];
            let gr = &self.world.groups[g];
            let subnet = &gr.subnets[inst.subnet];
            let ip = format!("10.{}.{}.{}", inst.ip[0], inst.ip[1], inst.ip[2]);
            let dns = format!(
                "ip-10-{}-{}-{}.{}",
                inst.ip[0],
                inst.ip[1],
                inst.ip[2],
                if region == "us-east-1" {
                    "ec2.internal".to_string()
                } else {
                    format!("{region}.compute.internal")
                }
            );
            let launch = self.time_ms;
            if i > 0 {
                s.push(',');
            }
            w!(
                s,
                "{{\"instanceId\":\"{}\",\"imageId\":\"{}\",\"bootMode\":\"uefi-preferred\",\"currentInstanceBootMode\":\"legacy-bios\",\"instanceState\":{{\"code\":0,\"name\":\"pending\"}},\"privateDnsName\":\"{dns}\",\"amiLaunchIndex\":{i},\"productCodes\":{{}},\"instanceType\":\"{itype}\",\"launchTime\":{launch},\"placement\":{{\"availabilityZone\":\"{region}{az}\",\"tenancy\":\"default\"}},\"monitoring\":{{\"state\":\"disabled\"}},\"subnetId\":\"{subnet}\",\"vpcId\":\"{}\",\"privateIpAddress\":\"{ip}\",\"stateReason\":{{\"code\":\"pending\",\"message\":\"pending\"}},\"architecture\":\"x86_64\",\"rootDeviceType\":\"ebs\",\"rootDeviceName\":\"/dev/xvda\",\"blockDeviceMapping\":{{}},\"virtualizationType\":\"hvm\",\"hypervisor\":\"xen\",\"clientToken\":\"{token}\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\",\"groupName\":\"{app}-sg\"}}]}},\"sourceDestCheck\":true,",
                inst.id,
                gr.ami,
                gr.vpc,
                gr.sg
            );
            w!(
                s,
                "\"networkInterfaceSet\":{{\"items\":[{{\"networkInterfaceId\":\"{}\",\"subnetId\":\"{subnet}\",\"vpcId\":\"{}\",\"ownerId\":\"{a}\",\"status\":\"in-use\",\"macAddress\":\"{}\",\"privateIpAddress\":\"{ip}\",\"privateDnsName\":\"{dns}\",\"sourceDestCheck\":true,\"interfaceType\":\"interface\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\",\"groupName\":\"{app}-sg\"}}]}},\"attachment\":{{\"attachmentId\":\"eni-attach-0",
                inst.eni,
                gr.vpc,
                inst.mac,
                gr.sg
            );
            self.rng.hex(s, 16);
            w!(
                s,
                "\",\"deviceIndex\":0,\"networkCardIndex\":0,\"status\":\"attaching\",\"attachTime\":{launch},\"deleteOnTermination\":true}},\"privateIpAddressesSet\":{{\"item\":[{{\"privateIpAddress\":\"{ip}\",\"privateDnsName\":\"{dns}\",\"primary\":true}}]}},\"ipv6AddressesSet\":{{}},\"tagSet\":{{}}}}]}},\"iamInstanceProfile\":{{\"arn\":\"{}\",\"id\":\"{}\"}},\"ebsOptimized\":false,\"enaSupport\":true,\"cpuOptions\":{{\"coreCount\":{cores},\"threadsPerCore\":{threads}}},\"capacityReservationSpecification\":{{\"capacityReservationPreference\":\"open\"}},\"hibernationOptions\":{{\"configured\":false}},\"enclaveOptions\":{{\"enabled\":false}},\"metadataOptions\":{{\"state\":\"pending\",\"httpTokens\":\"required\",\"httpPutResponseHopLimit\":2,\"httpEndpoint\":\"enabled\",\"httpProtocolIpv4\":\"enabled\",\"httpProtocolIpv6\":\"disabled\",\"instanceMetadataTags\":\"disabled\"}},\"maintenanceOptions\":{{\"autoRecovery\":\"default\"}},\"privateDnsNameOptions\":{{\"hostnameType\":\"ip-name\",\"enableResourceNameDnsARecord\":false,\"enableResourceNameDnsAAAARecord\":false}},\"tagSet\":{{\"items\":[",
                gr.profile_arn,
                gr.profile_id
            );
            if by_asg {
                w!(
                    s,
                    "{{\"key\":\"aws:ec2launchtemplate:id\",\"value\":\"{}\"}},{{\"key\":\"aws:autoscaling:groupName\",\"value\":\"{}\"}},{{\"key\":\"aws:ec2launchtemplate:version\",\"value\":\"3\"}},{{\"key\":\"aws:ec2:fleet-id\",\"value\":\"{}\"}},",
                    gr.launch_template,
                    gr.name,
                    token.trim_end_matches("-0")
                );
            }
            w!(
                s,
                "{{\"key\":\"Name\",\"value\":\"{app}\"}},{{\"key\":\"Environment\",\"value\":\"production\"}}]}},\"operator\":{{\"managed\":false}}}}"
            );
        }
        s.push_str("]}}");
        false
    }

    /// `resources` of the calls that have them.
    fn resources(&mut self, r: &mut String, ev: Ev, c: &Caller) {
        let a = ACCOUNTS[c.account];
        match ev {
            Ev::Decrypt | Ev::GenerateDataKey => w!(
                r,
                ",\"resources\":[{{\"accountId\":\"{a}\",\"type\":\"AWS::KMS::Key\",\"ARN\":\"arn:aws:kms:{}:{a}:key/{}\"}}]",
                REGIONS[c.region],
                kms_key(c.account, c.region)
            ),
            Ev::AssumeRole => {
                let role = &self.role_arn;
                let owner = role.split(':').nth(4).unwrap_or(a);
                w!(
                    r,
                    ",\"resources\":[{{\"accountId\":\"{owner}\",\"type\":\"AWS::IAM::Role\",\"ARN\":\"{role}\"}}]"
                );
            }
            _ => {}
        }
    }
}

/// The KMS key id of an account and region.
fn kms_key(account: usize, region: usize) -> String {
    let h = hex_of(3_000_000 + (account * REGIONS.len() + region) as u64, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
