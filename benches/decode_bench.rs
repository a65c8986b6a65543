//! Decoder throughput and memory benchmark on generated CloudTrail data.
//!
//! Generates about 1 GB (decimal: `--mb N` × 10^6 bytes of JSON) of realistic CloudTrail
//! management events into a temporary folder under [`std::env::temp_dir`], streaming to disk,
//! in two forms holding the same records:
//!
//! - JSON Lines (`cloudtrail/records-NN.jsonl`), split into 8 files in time order, one record
//!   per line;
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
//! `eventTime`s. The generator (`support/generate.rs`) is shared with `correlate_bench`.
//!
//! After a warm-up read of every file (page cache), it measures, once each:
//!
//! - a. one JSON Lines file on one thread (`sources::file::decode_file`);
//! - b. `.json.gz` files on one thread (`decode_file`, one after the other, about as many
//!   decompressed bytes as a.: one log object, ~5 MB, is too short to time);
//! - c. all JSON Lines files with `sources::file::read_files` and default `ReadOptions` (one
//!   thread per core), at a quarter of the files and at all of them;
//! - d. the same for all `.json.gz` files;
//! - e. the records of a. concatenated without separators, as Firehose writes them to S3
//!   (`firehose/records-00.json`, one line), on one thread: framing must stay linear (it
//!   was quadratic: 16 MB took 21 s), so its MB/s should be near a.'s.
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

#[path = "support/generate.rs"]
mod generate;
#[path = "support/measure.rs"]
mod measure;

use std::sync::Arc;
use std::time::Instant;

use finding_correlator::sources::file::{Classify, Event, FileStats, InputFile};
use finding_correlator::sources::file::{ReadOptions, keep_all};
use finding_correlator::sources::file::{decode_file, read_files};

use generate::{Amount, Data, Mix, Spec};
use measure::{Counts, Meter, Row, TempDir, drop_on_worker};

/// Number of JSON Lines files.
const JSONL_FILES: usize = 8;

const TARGET_JSONL: f64 = 600.0;
const TARGET_GZ: f64 = 300.0;

fn main() {
    let cfg = Config::from_env_and_args();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join(format!("decode_bench-{}", std::process::id()));
    let guard = TempDir {
        path: dir.clone(),
        keep: cfg.keep,
    };
    println!(
        "decode_bench: {} MB of CloudTrail JSON, {cores} core(s), 1-min load average {}, data in {}",
        cfg.mb,
        measure::load_average(),
        dir.display()
    );

    let t = Instant::now();
    let spec = Spec {
        seed: 0x5eed_cafe_f00d_0001,
        groups: 100,
        instances_per_group: 10,
        cloudtrail: Amount::Bytes(cfg.mb * 1_000_000),
        jsonl_files: JSONL_FILES,
        gz_objects: true,
        findings: 0,
        finding_files: 0,
        attacks: 0,
        accounts: 4,
        regional_group_names: false,
        mix: Mix::Standard,
    };
    let data = generate::generate(&dir, &spec).expect("generating the data set");
    let gen_secs = t.elapsed().as_secs_f64();
    let gz_bytes: u64 = data.gz.iter().map(|f| measure::file_len(&f.path)).sum();
    println!(
        "generated {} records ({:.1} MB, {:.0} B/record on average) in {:.1} s",
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / data.records as f64,
        gen_secs,
    );
    data.print_mix();
    println!(
        "  {} JSON Lines files; {} .json.gz log objects, {:.1} MB compressed (ratio {:.1}:1)",
        data.jsonl.len(),
        data.gz.len(),
        gz_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / gz_bytes.max(1) as f64
    );

    // e. the records of the first JSON Lines file, concatenated without separators.
    let firehose = dir.join("firehose").join("records-00.json");
    {
        use std::io::{BufRead, Write};
        std::fs::create_dir_all(firehose.parent().expect("a folder")).expect("firehose folder");
        let src = std::io::BufReader::new(
            std::fs::File::open(&data.jsonl[0].path).expect("the first JSON Lines file"),
        );
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&firehose).expect("creating the firehose file"),
        );
        for line in src.lines() {
            out.write_all(line.expect("reading a line").as_bytes())
                .expect("writing the firehose file");
        }
        out.flush().expect("writing the firehose file");
    }
    let firehose = [InputFile {
        path: firehose,
        explicit: true,
    }];

    let t = Instant::now();
    let warm: u64 = data
        .all_files()
        .iter()
        .chain(&firehose)
        .map(|f| measure::warm_up(&f.path))
        .sum();
    println!(
        "warm-up read of {:.1} MB (page cache) in {:.2} s",
        warm as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if !measure::reset_peak() {
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
    let plan: [(&'static str, &[InputFile], Mode, Classify<'_>); 9] = [
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
        (
            "e. concatenated, 1 file, decode_file",
            &firehose,
            Mode::Sequential,
            &keep_all,
        ),
    ];
    let rows: Vec<Row> = plan
        .into_iter()
        .map(|(name, files, mode, classify)| run(name, files, mode, classify, cores))
        .collect();
    let [
        a,
        b,
        c_quarter,
        c_full,
        c_drop,
        d_quarter,
        d_full,
        d_drop,
        e,
    ] = &rows[..]
    else {
        unreachable!("one row per plan entry")
    };

    println!();
    print_machine(cores, &data);
    measure::print_table(&rows, "records");

    let total_problems: u64 = rows.iter().map(|r| r.problems).sum();
    println!();
    measure::print_problems(&rows);
    let complete = [c_full, c_drop, d_full, d_drop]
        .iter()
        .all(|r| r.records == data.records);
    println!(
        "signals: JSON Lines {} and gz {} of {} records generated; problems: {} in all{}",
        c_full.records,
        d_full.records,
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
        c_quarter.peak_mib(),
        c_quarter.bytes as f64 / 1e6,
        c_full.peak_mib(),
        c_full.bytes as f64 / 1e6,
        d_quarter.peak_mib(),
        d_quarter.bytes as f64 / 1e6,
        d_full.peak_mib(),
        d_full.bytes as f64 / 1e6,
    );
    println!();
    for (row, target) in [
        (a, TARGET_JSONL),
        (e, TARGET_JSONL),
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
// Settings

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

// ---------------------------------------------------------------------------------------------
// Measurement

#[derive(Clone, Copy)]
enum Mode {
    /// `decode_file` on each file in turn, on this thread.
    Sequential,
    /// `read_files` with default options.
    ReadFiles,
}

fn run(
    name: &'static str,
    files: &[InputFile],
    mode: Mode,
    classify: Classify<'_>,
    cores: usize,
) -> Row {
    let opts = ReadOptions::default();
    let mut counts = Counts::default();
    let meter = Meter::start();
    let threads = match mode {
        Mode::Sequential => {
            // As `read_files` does with one thread.
            for f in files {
                let stats: FileStats =
                    decode_file(f, &opts.decode, classify, &mut |e| counts.on_event(e));
                counts.on_event(Event::FileDone(Arc::from(f.path.as_path()), stats));
            }
            1
        }
        Mode::ReadFiles => {
            read_files(files, &opts, classify, &mut |e| counts.on_event(e));
            cores.min(files.len())
        }
    };
    let usage = meter.stop();
    println!("  done: {name} ({:.2} s)", usage.wall);
    counts.row(name, files.len(), threads, usage)
}

fn print_machine(cores: usize, data: &Data) {
    println!(
        "machine: {cores} core(s); data: {} records, {:.1} MB JSON ({} JSON Lines files, {} .json.gz)",
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl.len(),
        data.gz.len()
    );
}
