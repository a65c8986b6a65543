//! End-to-end correlation benchmark: every shipped rule over generated CloudTrail and
//! GuardDuty data, against the decode-only speed of the same files.
//!
//! Generates (streaming, into a temporary folder under [`std::env::temp_dir`]) `--ct N`
//! CloudTrail records (default 1 000 000, JSON Lines in 8 files) and `--gd N` GuardDuty
//! findings (default 100 000, JSON Lines in 4 files) about an estate of 1 000 Auto Scaling
//! groups of 10 instances over 4 accounts and 4 regions, with `--attacks N` planted attacks
//! (default 36: stolen instance credentials launching GPU instances, leaked user keys launching
//! over 800 vCPUs) and half as many quiet look-alikes (Auto Scaling GPU scale-outs over
//! 800 vCPUs, CI releases). The generator is `support/generate.rs`, shared with
//! `decode_bench`; its records have the sizes of real ones (see its doc comment), so the
//! default data set is about 1.88 GB. After a warm-up read of every file (page cache), it
//! measures:
//!
//! - a. decode only: `sources::file::read_files` over all files with default `ReadOptions`,
//!   with a classifier that drops every signal on the worker that decoded it (every record
//!   decoded into a signal, none kept), with `keep_all` (every signal handed to this thread),
//!   and with the pipeline's rule selection (`Matcher::wants`) evaluated on the workers but
//!   nothing kept;
//! - b. the whole pipeline: `pipeline::correlate_with` with the built-in rules and default
//!   settings, exporting the graph it built with `graph::export::write_json` (streamed
//!   through a buffer, as to a file) on a thread of its own while the rules are matched, as
//!   `correlator correlate --graph` does; then the ASFF findings (`sinks::asff::findings`)
//!   serialised as `{"Findings":[…]}` (pretty, as the CLI writes them) into memory; all timed
//!   together (its readers build no signal for the CloudTrail calls no rule takes that tell
//!   the graph nothing new: `DecodeOptions::calls`); first over a quarter of the files (the first quarter of the time span), then
//!   over the folder. The graph is the one correlation needs, without signal nodes:
//!   `correlator correlate --graph FILE` also writes a node per signal (and every entity any
//!   record names), which for these 1.1 million records is a 1.3 GB JSON file and about
//!   2.5 GB of memory, and is not what this benchmark measures.
//!
//! Decode-only (`Keep::Drop`) and the pipeline over all files are measured `--repeat N` times
//! (default 3), alternating; the table and the checks take the fastest run of each (the one
//! least disturbed by other processes on a shared machine), and every run's wall time is
//! listed under the table.
//!
//! The table has wall time, CPU time of the process, CPU time other processes took meanwhile
//! (noise on a shared machine), MB/s of JSON read (MB = 10^6 bytes), events/s, and base and
//! peak RSS (`VmHWM`, reset before each measurement through `/proc/self/clear_refs`). Then the
//! pipeline's phases, the events read, sequences per rule, findings written, instance groups
//! in the graph, and whether every planted attack was found and every look-alike stayed quiet.
//! PASS/FAIL lines close the report (the process never fails on a miss): pipeline MB/s at
//! least 80 % of decode-only (`Keep::Drop`) MB/s; peak RSS (the highest of the rounds) under
//! 500 MiB; wall time under 1.4 s.
//!
//! Run: `cargo bench --bench correlate_bench` (about 1.9 GB; needs that much free disk and
//! takes a minute or two, a quarter of it generating), or
//! `cargo bench --bench correlate_bench -- --ct 250000 --gd 25000 --repeat 5`. `--keep`
//! leaves the generated folder in place and prints its path.

/// The same allocator as the `correlator` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/generate.rs"]
mod generate;
#[path = "support/measure.rs"]
mod measure;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use finding_correlator::config::{Config, Settings};
use finding_correlator::graph::export;
use finding_correlator::matcher::Matcher;
use finding_correlator::pipeline;
use finding_correlator::rules::{Emit, RuleSet};
use finding_correlator::signal::Signal;
use finding_correlator::sinks::asff::{self, Writer};
use finding_correlator::sources::file::{Classify, InputFile, Keep};
use finding_correlator::sources::file::{ReadOptions, keep_all, read_files};

use generate::{Amount, Data, Mix, Spec};
use measure::{Counts, Meter, Row, TempDir, drop_on_worker};

/// The estate: Auto Scaling groups and instances per group.
const GROUPS: usize = 1_000;
const INSTANCES_PER_GROUP: usize = 10;
const CT_FILES: usize = 8;
const GD_FILES: usize = 4;

/// Pipeline throughput at least this share of decode-only (`Keep::Drop`) throughput.
const TARGET_SHARE: f64 = 0.8;
const TARGET_PEAK_MIB: f64 = 500.0;
const TARGET_WALL_S: f64 = 1.4;

fn main() {
    let cfg = Cli::from_args();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join(format!("correlate_bench-{}", std::process::id()));
    let guard = TempDir {
        path: dir.clone(),
        keep: cfg.keep,
    };
    println!(
        "correlate_bench: {} CloudTrail records + {} GuardDuty findings, {GROUPS} instance groups, \
         {} planted attacks; {cores} core(s), 1-min load average {}, data in {}",
        cfg.ct,
        cfg.gd,
        cfg.attacks,
        measure::load_average(),
        dir.display()
    );

    let t = Instant::now();
    let spec = Spec {
        seed: 0x5eed_c0de_0bad_f00d,
        groups: GROUPS,
        instances_per_group: INSTANCES_PER_GROUP,
        cloudtrail: Amount::Records(cfg.ct),
        jsonl_files: CT_FILES,
        gz_objects: false,
        findings: cfg.gd,
        finding_files: GD_FILES,
        attacks: cfg.attacks,
        accounts: 4,
        regional_group_names: false,
        mix: Mix::Standard,
    };
    let data = generate::generate(&dir, &spec).expect("generating the data set");
    print_data(&data, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let files = data.all_files();
    let warm: u64 = files.iter().map(|f| measure::warm_up(&f.path)).sum();
    println!(
        "warm-up read of {:.1} MB (page cache) in {:.2} s",
        warm as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if !measure::reset_peak() {
        println!("note: cannot write /proc/self/clear_refs; peak RSS is since process start");
    }

    let settings = Config::default()
        .validate()
        .expect("the default configuration is valid");
    let rules = Arc::new(RuleSet::builtin().expect("the shipped rules load"));
    let matcher = Matcher::new(rules.clone(), settings.matching.clone());
    let selected = AtomicU64::new(0);
    let select_on_worker = |s: &Signal| {
        if matcher.wants(s) {
            selected.fetch_add(1, Ordering::Relaxed);
        }
        Keep::Drop
    };

    let mut rows = vec![
        decode("a. decode only, Keep::Drop", &files, &drop_on_worker, cores),
        decode("a. decode only, keep_all", &files, &keep_all, cores),
        decode(
            "a. decode + rule selection, Keep::Drop",
            &files,
            &select_on_worker,
            cores,
        ),
    ];
    // A quarter of each kind of file: the first quarter of the time span. Quarter before
    // full: memory the allocator keeps after a larger run would hide growth in the smaller.
    let quarter: Vec<PathBuf> = data.jsonl[..(data.jsonl.len() / 4).max(1)]
        .iter()
        .chain(&data.findings_files[..(data.findings_files.len() / 4).max(1)])
        .map(|f| f.path.clone())
        .collect();
    let quarter_run = correlate(
        "b. pipeline (correlate+ASFF+graph), 1/4 files",
        &quarter,
        &settings,
        &rules,
        cores,
    );
    let full_run = || {
        correlate(
            "b. pipeline (correlate+ASFF+graph), all files",
            std::slice::from_ref(&dir),
            &settings,
            &rules,
            cores,
        )
    };
    let mut full = full_run();
    // More rounds of decode-only and the whole pipeline, alternating: on a shared machine the
    // best of each is the figure least disturbed by others.
    let mut walls = (vec![rows[0].usage], vec![full.row.usage]);
    let mut highest_peak = full.row.peak_mib();
    for _ in 1..cfg.repeat {
        let mut d = decode("a. decode only, Keep::Drop", &files, &drop_on_worker, cores);
        walls.0.push(d.usage);
        if d.usage.wall < rows[0].usage.wall {
            // Memory as the first round measured it: later rounds start with what the
            // pipeline runs left in the allocator.
            d.usage.base_kib = rows[0].usage.base_kib;
            d.usage.peak_kib = rows[0].usage.peak_kib;
            rows[0] = d;
        }
        let p = full_run();
        walls.1.push(p.row.usage);
        highest_peak = highest_peak.max(p.row.peak_mib());
        if p.row.usage.wall < full.row.usage.wall {
            full = p;
        }
    }
    rows.push(quarter_run.row);
    let full_row_index = rows.len();
    rows.push(full.row);

    println!();
    println!(
        "machine: {cores} core(s); data: {} CloudTrail records + {} GuardDuty finding lines, \
         {:.1} MB JSON in {} files",
        data.records,
        data.findings,
        (data.jsonl_bytes + data.findings_bytes) as f64 / 1e6,
        files.len()
    );
    measure::print_table(&rows, "events");
    let list = |u: &[measure::Usage]| {
        u.iter()
            .map(|u| format!("{:.2} s ({:.2})", u.wall, u.others))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "rounds (wall, and in brackets CPU s of other processes meanwhile): decode only {}; \
         pipeline, all files {}; the table and the checks take the fastest of each",
        list(&walls.0),
        list(&walls.1)
    );
    println!();
    measure::print_problems(&rows);

    let drop_row = &rows[0];
    let full_row = &rows[full_row_index];
    let quarter_row = &rows[full_row_index - 1];
    let r = &full.report;
    println!(
        "pipeline phases (all files): correlate (read, graph, match, and the graph export \
         alongside matching) {:.2} s, of which the export {:.3} s ({:.1} MB, streamed as to a \
         file); ASFF findings {:.3} s, serialise {:.3} s ({:.1} MB); dropping the results \
         afterwards (not timed) {:.3} s",
        r.phases[0],
        r.phases[1],
        r.graph_bytes as f64 / 1e6,
        r.phases[2],
        r.phases[3],
        r.asff_bytes as f64 / 1e6,
        r.drop_s,
    );
    println!(
        "pipeline memory (all files): base {:.1} MiB; RSS after correlate {:.1} MiB; peak RSS \
         by the end of correlate (graph export included) {:.1} MiB, of the ASFF output {:.1} MiB",
        full_row.usage.base_kib as f64 / 1024.0,
        r.rss_after_correlate as f64 / 1024.0,
        r.peaks[0] as f64 / 1024.0,
        r.peaks[1] as f64 / 1024.0,
    );
    println!(
        "signals some rule selects (Matcher::wants): {} of {} events; the pipeline handed {} \
         signals to its consumer thread (graph and matcher) and dropped {} on the readers",
        selected.load(Ordering::Relaxed),
        rows[2].records,
        full_row.records - r.not_needed,
        r.not_needed
    );
    print_report(r, &data);
    println!(
        "peak RSS vs input size: {:.1} MiB at {:.0} MB ({} events), {:.1} MiB at {:.0} MB ({} events)",
        quarter_row.peak_mib(),
        quarter_row.bytes as f64 / 1e6,
        quarter_row.records,
        full_row.peak_mib(),
        full_row.bytes as f64 / 1e6,
        full_row.records,
    );

    println!();
    let share = full_row.mb_per_s() / drop_row.mb_per_s();
    check(
        &format!(
            "pipeline {:.0} MB/s = {:.0} % of decode-only {:.0} MB/s (target >= {:.0} %)",
            full_row.mb_per_s(),
            100.0 * share,
            drop_row.mb_per_s(),
            100.0 * TARGET_SHARE
        ),
        share >= TARGET_SHARE,
    );
    check(
        &format!(
            "pipeline peak RSS {highest_peak:.1} MiB, the highest of the rounds (target < \
             {TARGET_PEAK_MIB:.0} MiB)"
        ),
        highest_peak < TARGET_PEAK_MIB,
    );
    check(
        &format!(
            "pipeline wall time {:.2} s (target < {TARGET_WALL_S} s)",
            full_row.usage.wall
        ),
        full_row.usage.wall < TARGET_WALL_S,
    );
    drop(guard);
}

fn check(what: &str, ok: bool) {
    println!("check: {what}: {}", if ok { "PASS" } else { "FAIL" });
}

// ---------------------------------------------------------------------------------------------
// Settings

struct Cli {
    ct: u64,
    gd: u64,
    attacks: usize,
    /// Rounds of decode-only and of the whole pipeline over all files.
    repeat: usize,
    keep: bool,
}

impl Cli {
    /// `--ct N`, `--gd N`, `--attacks N`, `--repeat N` (also as `--ct=N`…) and `--keep`.
    /// Other arguments (cargo passes `--bench`) are ignored.
    fn from_args() -> Cli {
        let parse = |v: Option<&str>, what: &str| -> u64 {
            match v.map(|v| v.trim().replace('_', "").parse::<u64>()) {
                Some(Ok(n)) => n,
                _ => panic!("{what}: expected a number, got {v:?}"),
            }
        };
        let mut cli = Cli {
            ct: 1_000_000,
            gd: 100_000,
            attacks: 36,
            repeat: 3,
            keep: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            let mut value = |what: &str| {
                let v = inline.clone().or_else(|| args.next());
                parse(v.as_deref(), what)
            };
            match flag.as_str() {
                "--ct" => cli.ct = value("--ct").max(1),
                "--gd" => cli.gd = value("--gd"),
                "--attacks" => cli.attacks = value("--attacks") as usize,
                "--repeat" => cli.repeat = (value("--repeat") as usize).max(1),
                "--keep" => cli.keep = true,
                _ => {}
            }
        }
        cli
    }
}

fn print_data(data: &Data, secs: f64) {
    println!(
        "generated in {secs:.1} s: {} CloudTrail records ({:.1} MB, {:.0} B/record, {} planted) \
         and {} GuardDuty finding lines ({:.1} MB, {:.0} B/line; {} later versions, {} of kinds \
         rules select, {} planted); {:.1} days from {}",
        data.records,
        data.jsonl_bytes as f64 / 1e6,
        data.jsonl_bytes as f64 / data.records.max(1) as f64,
        data.planted_records,
        data.findings,
        data.findings_bytes as f64 / 1e6,
        data.findings_bytes as f64 / data.findings.max(1) as f64,
        data.finding_updates,
        data.selected_kind_findings,
        data.planted_findings,
        (data.last_ms - data.first_ms) as f64 / 86_400_000.0,
        finding_correlator::time::format_rfc3339(data.first_ms as i64),
    );
    data.print_mix();
    data.print_finding_mix();
    println!(
        "  estate: {} Auto Scaling groups, {} instances; {} planted attacks, {} quiet look-alikes",
        data.groups, data.instances, data.attacks, data.look_alikes
    );
}

// ---------------------------------------------------------------------------------------------
// Measurement

fn decode(name: &str, files: &[InputFile], classify: Classify<'_>, cores: usize) -> Row {
    let mut counts = Counts::default();
    let meter = Meter::start();
    read_files(files, &ReadOptions::default(), classify, &mut |e| {
        counts.on_event(e)
    });
    let usage = meter.stop();
    println!("  done: {name} ({:.2} s)", usage.wall);
    counts.row(name, files.len(), cores.min(files.len()), usage)
}

/// What a pipeline run produced (read after the measurement).
struct Report {
    /// correlate (graph export included), the graph export alone (it runs while the rules
    /// are matched), ASFF findings, serialisation (seconds).
    phases: [f64; 4],
    /// Peak RSS (KiB) at the end of correlate (graph export included) and of the ASFF
    /// output; and RSS at the end of correlate (what the graph and sequences hold).
    peaks: [u64; 2],
    rss_after_correlate: u64,
    /// Records dropped on the reading threads (no rule and not the graph needed them).
    not_needed: u64,
    drop_s: f64,
    records: BTreeMap<&'static str, u64>,
    distinct_signals: u64,
    duplicates: u64,
    updated: u64,
    candidates: u64,
    /// Per rule: (finding sequences, weak-signal sequences).
    per_rule: BTreeMap<String, (usize, usize)>,
    findings: usize,
    asff_bytes: usize,
    graph_bytes: usize,
    groups: BTreeMap<&'static str, usize>,
    nodes: usize,
    edges: usize,
    /// (rule, key) of every sequence, and whether it is a finding.
    sequences: Vec<(String, String, bool)>,
}

struct PipelineRun {
    row: Row,
    report: Report,
}

fn correlate(
    name: &str,
    paths: &[PathBuf],
    settings: &Settings,
    rules: &Arc<RuleSet>,
    cores: usize,
) -> PipelineRun {
    let meter = Meter::start();
    // Streamed through a buffer as `correlate --graph FILE` writes its file, counting bytes,
    // while the rules are matched.
    let (run, (graph_out, t_export)) = pipeline::correlate_with(
        pipeline::Input::Paths(paths),
        settings,
        rules.clone(),
        finding_correlator::graph::Detail::Entities,
        None,
        false,
        |graph| {
            let t = Instant::now();
            let mut graph_out = Counter(0);
            {
                let mut w = std::io::BufWriter::new(&mut graph_out);
                export::write_json(graph, &mut w).expect("exporting the graph");
                std::io::Write::flush(&mut w).expect("exporting the graph");
            }
            (graph_out, t.elapsed().as_secs_f64())
        },
    );
    let t_correlate = meter.elapsed();
    // Peak RSS only grows: read at each phase's end, it shows which phase set the peak.
    let rss_correlate = (
        measure::proc_status_kib("VmHWM:"),
        measure::proc_status_kib("VmRSS:"),
    );
    let findings = asff::findings(&run.sequences, rules, &Writer::default());
    let t_findings = meter.elapsed();
    let doc = serde_json::json!({ "Findings": findings });
    let mut asff_out = Vec::new();
    serde_json::to_writer_pretty(&mut asff_out, &doc).expect("serialising findings");
    asff_out.push(b'\n');
    let t_serialise = meter.elapsed();
    let usage = meter.stop();
    println!("  done: {name} ({:.2} s)", usage.wall);

    let s = &run.summary;
    let mut per_rule: BTreeMap<String, (usize, usize)> =
        rules.rules.iter().map(|r| (r.id.clone(), (0, 0))).collect();
    for seq in &run.sequences {
        let e = per_rule.entry(seq.rule_id.clone()).or_default();
        match seq.emit {
            Emit::Finding => e.0 += 1,
            Emit::WeakSignal => e.1 += 1,
        }
    }
    let mut groups: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (g, _) in run.graph.groups() {
        *groups.entry(g.key.kind.as_str()).or_default() += 1;
    }
    let mut first_problems: Vec<String> = s.skipped_reasons.keys().take(5).cloned().collect();
    first_problems.extend(s.ignored_reasons.keys().take(5).cloned());
    let report = Report {
        phases: [
            t_correlate,
            t_export,
            t_findings - t_correlate,
            t_serialise - t_findings,
        ],
        peaks: [rss_correlate.0, usage.peak_kib],
        rss_after_correlate: rss_correlate.1,
        not_needed: s.not_needed,
        drop_s: 0.0,
        records: s.records.clone(),
        distinct_signals: s.distinct_signals,
        duplicates: s.duplicates_merged,
        updated: s.findings_updated,
        candidates: run.matching.candidates,
        per_rule,
        findings: findings.len(),
        asff_bytes: asff_out.len(),
        graph_bytes: graph_out.0,
        groups,
        nodes: run.graph.node_count(),
        edges: run.graph.edge_count(),
        // Sequences rolled into another rule's finding (one attack, one finding) were found
        // too: they are listed beside the finding that carries them.
        sequences: run
            .sequences
            .iter()
            .flat_map(|q| {
                let absorbed = q.rollup.iter().flat_map(|r| r.absorbed.iter());
                std::iter::once((
                    q.rule_id.clone(),
                    q.key.to_string(),
                    q.emit == Emit::Finding,
                ))
                .chain(absorbed.map(|a| (a.rule_id.clone(), a.key.to_string(), true)))
            })
            .collect(),
    };
    let row = Row {
        name: name.to_string(),
        files: s.files as usize,
        threads: cores.min(s.files as usize),
        bytes: s.bytes,
        records: s.records.values().sum(),
        problems: s.skipped + s.ignored,
        first_problems,
        usage,
    };
    let t = Instant::now();
    drop((run, findings, doc, asff_out, graph_out));
    PipelineRun {
        row,
        report: Report {
            drop_s: t.elapsed().as_secs_f64(),
            ..report
        },
    }
}

// ---------------------------------------------------------------------------------------------
// What the run found

fn print_report(r: &Report, data: &Data) {
    let events: u64 = r.records.values().sum();
    let kinds: Vec<String> = r.records.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "events in: {events} ({}); distinct signals in the graph {}, duplicates merged {}, \
         findings updated {}; signals matched {}",
        kinds.join(", "),
        r.distinct_signals,
        r.duplicates,
        r.updated,
        r.candidates
    );
    println!("sequences per rule (findings + weak-signal sequences):");
    for (rule, (f, w)) in &r.per_rule {
        println!("  {rule:<38} {f:>6} finding(s) {w:>6} weak");
    }
    println!(
        "findings written: {} ({:.1} MB of ASFF JSON); graph export {:.1} MB, {} nodes, {} edges",
        r.findings,
        r.asff_bytes as f64 / 1e6,
        r.graph_bytes as f64 / 1e6,
        r.nodes,
        r.edges
    );
    let total: usize = r.groups.values().sum();
    let by_kind: Vec<String> = r.groups.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "instance groups in the graph: {total} ({}); the estate has {} Auto Scaling groups: {}",
        by_kind.join(", "),
        data.groups,
        if r.groups.get("auto_scaling_group") == Some(&data.groups) {
            "all present (OK)"
        } else {
            "MISMATCH"
        }
    );

    let found: HashSet<(&str, &str)> = r
        .sequences
        .iter()
        .map(|(rule, key, _)| (rule.as_str(), key.as_str()))
        .collect();
    let missing: Vec<String> = data
        .expected
        .iter()
        .filter(|e| !found.contains(&(e.rule, e.key.as_str())))
        .map(|e| format!("{} {} (attack {})", e.rule, e.key, e.attack))
        .collect();
    let quiet = |key: &str| {
        data.quiet.iter().any(|q| match q.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == q,
        })
    };
    let loud: Vec<&(String, String, bool)> = r
        .sequences
        .iter()
        .filter(|(_, key, finding)| *finding && quiet(key))
        .collect();
    let expected: HashSet<(&str, &str)> = data
        .expected
        .iter()
        .map(|e| (e.rule, e.key.as_str()))
        .collect();
    let others = r
        .sequences
        .iter()
        .filter(|(rule, key, finding)| {
            *finding && !expected.contains(&(rule.as_str(), key.as_str()))
        })
        .count();
    println!(
        "planted attacks: {} expected sequences, {} found{}; finding sequences on quiet \
         principals (Auto Scaling, CI): {}{}; other finding sequences (background findings that \
         happen to meet in a group): {others}",
        data.expected.len(),
        data.expected.len() - missing.len(),
        if missing.is_empty() { " (OK)" } else { "" },
        loud.len(),
        if loud.is_empty() { " (OK)" } else { "" },
    );
    for m in missing.iter().take(10) {
        println!("  missing: {m}");
    }
    for (rule, key, _) in loud.iter().take(10) {
        println!("  not quiet: {rule} {key}");
    }
}

/// A writer that only counts bytes: the graph export goes where a file would.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
