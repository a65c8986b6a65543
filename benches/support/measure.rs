//! Measurement helpers shared by the benches (`decode_bench`, `correlate_bench`,
//! `state_bench`): wall and CPU time (of this process, or of its reaped children), the CPU time
//! other processes took meanwhile, base and peak RSS (also another process's), the result
//! table, and a self-removing temporary folder.
//!
//! Peak RSS is `VmHWM` of `/proc/self/status`, reset before each measurement by writing `5` to
//! `/proc/self/clear_refs`; CPU time is user + system time of the whole process from
//! `/proc/self/stat`. Linux only; on other systems the figures read 0.

// Each bench binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use finding_correlator::signal::Signal;
use finding_correlator::sources::file::{Event, Keep};

/// Removes the generated folder when dropped (also on a panic), unless asked to keep it.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
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

pub fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

/// Reads a file to the end (into the page cache) and returns its length.
pub fn warm_up(p: &Path) -> u64 {
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

/// Resets the peak RSS (`VmHWM`) to the current RSS. False when the kernel refuses.
pub fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `kB` line of `/proc/self/status` (`VmHWM:`, `VmRSS:`), 0 when unreadable.
pub fn proc_status_kib(key: &str) -> u64 {
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
pub fn cpu_seconds() -> f64 {
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

/// User + system CPU time of this process's children that have ended and been waited for
/// (`cutime` and `cstime` of `/proc/self/stat`): what a child run cost, read before it is
/// started and after it is reaped.
pub fn children_cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 16 and 17 of the line.
    (ticks(13) + ticks(14)) as f64 / 100.0
}

/// A `kB` line of another process's status file (`/proc/PID/status`), 0 when unreadable (the
/// process has ended).
pub fn status_kib(status_file: &Path, key: &str) -> u64 {
    fs::read_to_string(status_file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time all processes have used since boot (`/proc/stat`, all but idle and iowait).
pub fn machine_busy_seconds() -> f64 {
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
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// What one measurement cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub wall: f64,
    pub cpu: f64,
    /// CPU time other processes used during the measurement.
    pub others: f64,
    pub base_kib: u64,
    pub peak_kib: u64,
}

/// A running measurement: started by [`Meter::start`] (which resets the peak RSS), read by
/// [`Meter::stop`].
pub struct Meter {
    base_kib: u64,
    cpu0: f64,
    busy0: f64,
    t: Instant,
}

impl Meter {
    pub fn start() -> Meter {
        reset_peak();
        Meter {
            base_kib: proc_status_kib("VmRSS:"),
            cpu0: cpu_seconds(),
            busy0: machine_busy_seconds(),
            t: Instant::now(),
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.t.elapsed().as_secs_f64()
    }

    pub fn stop(self) -> Usage {
        let wall = self.t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - self.cpu0;
        Usage {
            wall,
            cpu,
            others: (machine_busy_seconds() - self.busy0 - cpu).max(0.0),
            base_kib: self.base_kib,
            peak_kib: proc_status_kib("VmHWM:"),
        }
    }
}

/// One line of the result table.
pub struct Row {
    pub name: String,
    pub files: usize,
    pub threads: usize,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Records (events) decoded.
    pub records: u64,
    pub problems: u64,
    pub first_problems: Vec<String>,
    pub usage: Usage,
}

impl Row {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.usage.wall
    }

    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.usage.wall
    }

    pub fn peak_mib(&self) -> f64 {
        self.usage.peak_kib as f64 / 1024.0
    }
}

/// Prints the column legend and the table; `records` names the count column.
pub fn print_table(rows: &[Row], records: &str) {
    println!(
        "MB = 10^6 bytes of decompressed JSON; MB/s/thread = MB/s / threads; MB/CPUs = MB per \
         CPU second of this process; others = CPU seconds other processes used meanwhile \
         (noise); RSS in MiB; 1-min load average now {}",
        load_average()
    );
    let name_width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let name_width = name_width.max(32);
    let rate = format!("{records}/s");
    let header = format!(
        "| {:<name_width$} | {:>5} | {:>3} | {:>8} | {:>9} | {:>6} | {:>6} | {:>6} | {:>7} | {:>11} | {:>7} | {:>9} | {:>8} | {:>9} |",
        "measurement",
        "files",
        "thr",
        "MB",
        records,
        "wall s",
        "CPU s",
        "others",
        "MB/s",
        "MB/s/thread",
        "MB/CPUs",
        rate,
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
        let u = &r.usage;
        println!(
            "| {:<name_width$} | {:>5} | {:>3} | {:>8.1} | {:>9} | {:>6.2} | {:>6.2} | {:>6.2} | {:>7.0} | {:>11.0} | {:>7.0} | {:>9.0} | {:>8.1} | {:>9.1} |",
            r.name,
            r.files,
            r.threads,
            r.bytes as f64 / 1e6,
            r.records,
            u.wall,
            u.cpu,
            u.others,
            r.mb_per_s(),
            r.mb_per_s() / r.threads.max(1) as f64,
            if u.cpu > 0.0 {
                r.bytes as f64 / 1e6 / u.cpu
            } else {
                0.0
            },
            r.records_per_s(),
            u.base_kib as f64 / 1024.0,
            r.peak_mib(),
        );
    }
}

/// Prints the first problems of each row that has any.
pub fn print_problems(rows: &[Row]) {
    for r in rows {
        if !r.first_problems.is_empty() {
            println!("first problems of {}:", r.name);
            for p in &r.first_problems {
                println!("  {p}");
            }
        }
    }
}

/// A classifier that drops every signal on the thread that decoded it: the fastest the
/// reading layer goes.
pub fn drop_on_worker(_: &Signal) -> Keep {
    Keep::Drop
}

/// What reading files yielded, counted from [`Event`]s.
#[derive(Default)]
pub struct Counts {
    /// Signals, handed on or dropped by the classifier.
    pub records: u64,
    /// Decompressed bytes.
    pub bytes: u64,
    pub problems: u64,
    pub first_problems: Vec<String>,
}

impl Counts {
    pub fn on_event(&mut self, e: Event) {
        match e {
            Event::Signals(batch) => self.records += batch.len() as u64,
            Event::Dropped(counts) => self.records += counts.iter().map(|(_, n)| n).sum::<u64>(),
            Event::Problem(p) => {
                self.problems += 1;
                if self.first_problems.len() < 5 {
                    self.first_problems.push(p.to_string());
                }
            }
            Event::FileDone(_, stats) => self.bytes += stats.bytes,
        }
    }

    /// The table row of a measurement that read `files` files on `threads` threads.
    pub fn row(self, name: &str, files: usize, threads: usize, usage: Usage) -> Row {
        Row {
            name: name.to_string(),
            files,
            threads,
            bytes: self.bytes,
            records: self.records,
            problems: self.problems,
            first_problems: self.first_problems,
            usage,
        }
    }
}
