//! The data set of the benches: realistic CloudTrail management events and GuardDuty findings
//! about one simulated AWS estate, streamed to disk as they are made (memory stays small
//! whatever the size).
//!
//! Used by `decode_bench`, `correlate_bench`, `determinism_check` and `state_bench` through
//! `#[path = "support/generate.rs"] mod generate;`; one [`Spec`] says what differs between
//! them (how many Auto Scaling groups and instances, how much CloudTrail, which files, how
//! many findings and planted attacks). Deterministic: the same spec writes the same bytes.
//!
//! **The estate**: 4 accounts (up to 20: [`Spec::accounts`]), 4 regions; `groups` Auto Scaling
//! groups (10 applications, each group with its own launch template, instance role and
//! profile, AMI and security group, every third one deployed by a CloudFormation stack; four
//! groups of one account and region share a VPC; optionally one name per account in every
//! region: [`Spec::regional_group_names`]), `instances_per_group` instances each; SSO users,
//! IAM users, a CI role, Lambda functions, AWS services.
//!
//! **CloudTrail** (`cloudtrail/records-NN.jsonl`, one record per line, split in time order;
//! optionally also gzipped S3 log objects under `AWSLogs/`): records average ~1.6 KB, a mix of
//! eighteen event names in realistic proportions (`AssumeRole`, `DescribeInstances`, KMS
//! `Decrypt`, `RunInstances` with full `responseElements` at 3 %, mostly by Auto Scaling's
//! service-linked role, some by CI and people…), every `userIdentity` type, instance-role
//! sessions named after the instances, unique `eventID`s, increasing `eventTime`s (0.8 s apart
//! on average from 2025-05-01).
//!
//! **GuardDuty** (`guardduty/findings-NN.jsonl`, the API's camelCase, one finding per line):
//! findings about the estate's instances (`instanceDetails` with the group's tags, profile,
//! AMI, network interfaces) and principals (`accessKeyDetails`), spread over the CloudTrail
//! time span. Mostly low and medium noise (port probes, SSH brute force, port scans, unusual
//! ports, policy and stealth findings about users); about 0.5 % of the kinds rules select
//! (cryptomining, command and control, runtime execution, instance credential exfiltration);
//! a quarter of the lines are later versions of an earlier finding (same id, higher count,
//! newer `updatedAt`), as GuardDuty exports them.
//!
//! **Record sizes** are those of real records of the same kind, checked (compact JSON, the
//! same event name and `userIdentity` type) against the full-fidelity real events in
//! `../shared/realdata/stratus-red-team/` (Stratus Red Team detonation logs) and the records
//! marked REAL in `../shared/samples/`; Panther's test events are trimmed by their publisher
//! (ids like `"1"`, no `tlsDetails`) and set no size. Generated vs real, bytes:
//! `DescribeInstances` by an instance role 1445 vs 1327, by an IAM user 1043 vs 963;
//! `GetCallerIdentity` by an instance role 1335 vs 1322, by an IAM user 928 vs 879;
//! `AssumeRole` by an IAM user 1944 vs 1870 (2253 in samples); `ConsoleLogin` 1141 vs 968;
//! a successful one-instance `RunInstances` 4800 vs 4600-4870 (samples; Panther's ten average
//! 4231); `TerminateInstances` 1447 vs 1654-1956. GuardDuty findings average ~2.6 KB per line
//! (`SSHBruteForce` 2858 vs a real 2465; real Elastic samples 3156 and 3876, the reconstructed
//! EC2 findings in the samples 2.6-3.5 KB). So the 1,000,000 + 100,000 of `correlate_bench`
//! make about 1.88 GB: the `userIdentity` of an instance-role session alone is ~590 B (330 B
//! of it `sessionContext`), and a mix where a third of the calls come from instance roles
//! does not fit in the ~1.1 KB a record that a 1.2 GB estimate implies.
//!
//! **The heavy mix** ([`Mix::Heavy`], issues 15 and 16; `state_bench`): `days` of CloudTrail
//! (1,000,000 records over 7 days, one every 0.6 s on average, or 5,000,000 over 35), eleven
//! event names ([`HEAVY_MIX`]): `RunInstances` at 4 % (three quarters by Auto Scaling, the rest
//! by CI and people; 1–8 new instances each, 1–2 by a person, every launch starting instances
//! the estate did not have), `CreateFunction20150331` at 1 % (CI and people; a function of a
//! group's application in its VPC, code from an S3 artifact), and 95 % reads by the estate's
//! roles (`DescribeInstances`, KMS, `GetCallerIdentity`…). The launched instances are never
//! named again; with `terminate` (a steady fleet) each launch's instances are terminated
//! together by their launcher after a lifetime (Auto Scaling 1–48 hours, CI 15 minutes to 3
//! hours, a person 4 hours to 10 days), a `TerminateInstances` written in place of a read
//! (3.7 % of the records; a CI or person's call fails at 4 % as other calls do, and leaves
//! its instances running), and without it they run to the end. Two identity shapes, by
//! `task_sessions`: at 0, the reads come from instance-role sessions named after their
//! instance, whose access keys rotate every 6 hours (stable role ids and session keys), and CI
//! from a few runner sessions; at 1000, every read comes from a task role session of its own
//! (the group's task role, the session named after an ECS task, a new access key), and every
//! CI call from a GitHub Actions run's OIDC session (`webIdFederationData` names the provider):
//! a new session name, principal id and access key each call. Findings: 10 % of high severity
//! (the severity-8 kinds, which rules select; [`FindingType::heavy_weight`]), the noise as in
//! the standard mix. Sizes, generated vs real (compact JSON): instance-role reads as above
//! (`DescribeInstances` 1435, `GetCallerIdentity` 1324); a task-role session's
//! `userIdentity` 567 B vs an instance session's 577 B (the same shape less
//! `ec2RoleDelivery`); a successful `CreateFunction20150331` 3.3-3.4 KB by a CI or SSO
//! session vs 2292 and 2531 B for the real `UpdateFunctionCode` and
//! `UpdateFunctionConfiguration` of the Stratus Red Team logs (an IAM user's 200 B
//! `userIdentity` and no VPC; the response is the same `FunctionConfiguration`) and 2048 B for
//! the reconstructed sample (no VPC, no response extras); `RunInstances` 13-15 KB on average
//! (4.5 instances of ~2.8 KB each, as the one-instance call above). So the 1,000,000 records
//! make about 2.06 GB and the 100,000 findings 0.26 GB: realistic records do not fit in the
//! 1.25 GB issue 15 describes for this mix, which would need reads of about 1 KB (real
//! instance-role reads are 1.3-1.45 KB).
//!
//! **Planted attacks** (`attacks` of them, spread over the span; see [`Plan`]): instance role
//! credentials stolen from a member of a group (cryptomining and credential exfiltration
//! findings, then GPU launches in an unused region after failed attempts, a third of them over
//! 800 vCPUs), and leaked IAM user keys launching over 800 vCPUs within hours. Beside them,
//! look-alikes that must stay quiet: Auto Scaling scale-outs of GPU instances over 800 vCPUs
//! and CI releases. [`Data::expected`] lists the sequences the attacks must produce,
//! [`Data::quiet`] the principals no finding may name.

// Each bench binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use finding_correlator::sources::file::InputFile;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Appends formatted text to a `String` (which cannot fail).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {
        write!($dst, $($arg)*).expect("writing to a String")
    };
}

/// 2025-05-01T00:00:00Z.
pub const START_MS: u64 = 1_746_057_600_000;
/// Mean gap between consecutive `eventTime`s.
const MEAN_GAP_MS: u64 = 800;
/// Records per gzipped log object: uniform in this range.
const GZ_RECORDS: (u64, u64) = (2_000, 5_000);
/// Average size of a CloudTrail record, to plan a time span from a size.
const MEAN_RECORD_BYTES: u64 = 1_600;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// How much CloudTrail to write.
#[derive(Clone, Copy, Debug)]
pub enum Amount {
    /// Bytes of JSON (one record more than needed at most).
    Bytes(u64),
    /// Records, planted ones included.
    Records(u64),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    pub seed: u64,
    /// Auto Scaling groups in the estate.
    pub groups: usize,
    pub instances_per_group: usize,
    pub cloudtrail: Amount,
    /// JSON Lines files the CloudTrail records are split into (in time order).
    pub jsonl_files: usize,
    /// Also write every record into gzipped CloudTrail S3 log objects.
    pub gz_objects: bool,
    /// GuardDuty finding lines (planted ones included).
    pub findings: u64,
    /// JSON Lines files the findings are split into (in time order).
    pub finding_files: usize,
    /// Attacks to plant (and half as many quiet look-alikes).
    pub attacks: usize,
    /// Accounts of the estate (1 to 20; the benches use 4). Groups are dealt to accounts in
    /// turn, so consecutive groups are in different accounts (interleaved in every file).
    pub accounts: usize,
    /// Name Auto Scaling groups `asg-NNNN` by account and position only, so that one account
    /// has a group of the same name in each estate region (a group per region, as a
    /// multi-region deployment has): names are unique per account and region only.
    pub regional_group_names: bool,
    /// Which calls and findings, at which pace.
    pub mix: Mix,
}

/// Which calls and findings the data set holds, at which pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The mix of `decode_bench`, `correlate_bench` and `determinism_check`: eighteen event
    /// names ([`MIX`]), a record every 0.8 s on average, 0.5 % of the findings of kinds rules
    /// select.
    Standard,
    /// The heavy mix of issues 15 and 16 ([`HEAVY_MIX`]): 4 % `RunInstances` of 1–8 new
    /// instances, 1 % `CreateFunction20150331`, the rest reads by the estate's roles; 10 % of
    /// the findings of high severity.
    Heavy {
        /// Days the CloudTrail records span: the mean gap between records follows from it.
        days: u64,
        /// Calls made from a role session of their own, per mille: reads by a task role
        /// session named after its ECS task, launches and function creations by a CI run's
        /// OIDC session (a new session name, principal id and access key each call). The
        /// others come from instance-role sessions named after their instance, with keys that
        /// rotate every 6 hours, and from CI sessions of a few runner names.
        task_sessions: u32,
        /// Launched instances are terminated again, as a fleet that scales in and out does:
        /// each launch's instances together, by whoever launched them, after a lifetime that
        /// depends on who that was ([`Gen::lifetime`]). Off, every launched instance runs (and
        /// stays silent) to the end of the data.
        terminate: bool,
    },
}

impl Mix {
    /// Event names and their weights.
    fn table(self) -> &'static [(Ev, u32)] {
        match self {
            Mix::Standard => &MIX,
            Mix::Heavy { .. } => &HEAVY_MIX,
        }
    }

    /// Mean gap between consecutive `eventTime`s when `records` are written.
    fn gap_ms(self, records: u64) -> u64 {
        match self {
            Mix::Standard => MEAN_GAP_MS,
            Mix::Heavy { days, .. } => (days * 24 * HOUR / records.max(1)).max(1),
        }
    }

    fn heavy(self) -> bool {
        matches!(self, Mix::Heavy { .. })
    }
}

/// A sequence a planted attack must produce: rule id and group key as the matcher prints it.
#[derive(Clone, Debug)]
pub struct Expected {
    pub rule: &'static str,
    pub key: String,
    /// Index into [`Plan::attacks`].
    pub attack: usize,
}

/// What was written.
pub struct Data {
    /// CloudTrail JSON Lines files, in time order.
    pub jsonl: Vec<InputFile>,
    /// Gzipped CloudTrail log objects, sorted by path.
    pub gz: Vec<InputFile>,
    /// Decompressed size of each `gz` file.
    pub gz_raw_bytes: Vec<u64>,
    /// GuardDuty JSON Lines files, in time order.
    pub findings_files: Vec<InputFile>,
    /// CloudTrail records, planted ones included.
    pub records: u64,
    pub jsonl_bytes: u64,
    pub failed: u64,
    /// Records per entry of the event mix, and their bytes.
    pub per_event: Vec<u64>,
    pub per_event_bytes: Vec<u64>,
    pub planted_records: u64,
    /// `eventTime` of the first and last CloudTrail record.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Finding lines, updates and planted ones included.
    pub findings: u64,
    pub finding_updates: u64,
    pub findings_bytes: u64,
    /// Lines per finding type (index into the type table) and the names.
    pub per_finding_type: Vec<(&'static str, u64)>,
    /// Lines of the kinds some shipped rule selects.
    pub selected_kind_findings: u64,
    pub planted_findings: u64,
    pub groups: usize,
    pub instances: usize,
    pub attacks: usize,
    pub look_alikes: usize,
    pub expected: Vec<Expected>,
    /// Principal keys (`principal/…`, a trailing `*` matches any rest) that no finding may name.
    pub quiet: Vec<String>,
    /// The event mix `per_event` counts.
    table: &'static [(Ev, u32)],
}

impl Data {
    /// Every input file: CloudTrail JSON Lines, gzipped objects, findings.
    pub fn all_files(&self) -> Vec<InputFile> {
        self.jsonl
            .iter()
            .chain(&self.gz)
            .chain(&self.findings_files)
            .cloned()
            .collect()
    }

    /// Prints the event mix of the CloudTrail records.
    pub fn print_mix(&self) {
        let mut line = String::from("  event mix (share, mean size):");
        for (i, (ev, _)) in self.table.iter().enumerate() {
            if i % 4 == 0 {
                line.push_str("\n   ");
            }
            let n = self.per_event[i];
            w!(
                line,
                " {} {:.1}% {:.0} B,",
                ev.name(),
                100.0 * n as f64 / self.records.max(1) as f64,
                self.per_event_bytes[i] as f64 / n.max(1) as f64
            );
        }
        line.pop();
        w!(
            line,
            "\n    failed calls (errorCode or ConsoleLogin failure): {:.1}%",
            100.0 * self.failed as f64 / self.records.max(1) as f64
        );
        println!("{line}");
    }

    /// Prints the finding type mix.
    pub fn print_finding_mix(&self) {
        let mut line = String::from("  finding mix (share of lines):");
        let mut types: Vec<&(&str, u64)> =
            self.per_finding_type.iter().filter(|t| t.1 > 0).collect();
        types.sort_by_key(|t| std::cmp::Reverse(t.1));
        for (i, (name, n)) in types.iter().enumerate() {
            if i % 4 == 0 {
                line.push_str("\n   ");
            }
            w!(
                line,
                " {name} {:.2}%,",
                100.0 * *n as f64 / self.findings.max(1) as f64
            );
        }
        line.pop();
        println!("{line}");
    }
}

/// Writes the data set into `dir` (which is created).
pub fn generate(dir: &Path, spec: &Spec) -> io::Result<Data> {
    let world = World::new(
        spec.groups,
        spec.instances_per_group,
        spec.accounts,
        spec.regional_group_names,
    );
    let planned_records = match spec.cloudtrail {
        Amount::Bytes(b) => b / MEAN_RECORD_BYTES,
        Amount::Records(n) => n,
    };
    let table = spec.mix.table();
    let plan = Plan::new(
        &world,
        spec.attacks,
        START_MS,
        START_MS + planned_records * spec.mix.gap_ms(planned_records),
    );
    let mut data = Data {
        jsonl: Vec::new(),
        gz: Vec::new(),
        gz_raw_bytes: Vec::new(),
        findings_files: Vec::new(),
        records: 0,
        jsonl_bytes: 0,
        failed: 0,
        per_event: vec![0; table.len()],
        per_event_bytes: vec![0; table.len()],
        planted_records: 0,
        first_ms: 0,
        last_ms: 0,
        findings: 0,
        finding_updates: 0,
        findings_bytes: 0,
        per_finding_type: FINDING_TYPES.iter().map(|t| (t.name, 0)).collect(),
        selected_kind_findings: 0,
        planted_findings: 0,
        groups: world.groups.len(),
        instances: world.instances.len(),
        attacks: plan.attacks.iter().filter(|a| !a.kind.quiet()).count(),
        look_alikes: plan.attacks.iter().filter(|a| a.kind.quiet()).count(),
        expected: plan.expected.clone(),
        quiet: plan.quiet.clone(),
        table,
    };
    write_cloudtrail(dir, spec, &world, &plan, &mut data)?;
    if spec.findings > 0 {
        write_findings(dir, spec, &world, &plan, &mut data)?;
    }
    Ok(data)
}

/// Opens the next of `files` output files when `progress` (0 to 1) says so.
struct Splitter {
    dir: PathBuf,
    prefix: &'static str,
    files: usize,
    out: Option<BufWriter<File>>,
}

impl Splitter {
    fn new(dir: PathBuf, prefix: &'static str, files: usize) -> io::Result<Splitter> {
        fs::create_dir_all(&dir)?;
        Ok(Splitter {
            dir,
            prefix,
            files: files.max(1),
            out: None,
        })
    }

    /// The writer for a line at `progress`; `opened` gets each new file.
    fn writer(
        &mut self,
        progress: f64,
        opened: &mut Vec<InputFile>,
    ) -> io::Result<&mut BufWriter<File>> {
        let want = ((progress * self.files as f64) as usize).min(self.files - 1);
        if self.out.is_none() || opened.len() <= want {
            if let Some(mut o) = self.out.take() {
                o.flush()?;
            }
            let path = self
                .dir
                .join(format!("{}-{:02}.jsonl", self.prefix, opened.len()));
            self.out = Some(BufWriter::with_capacity(1 << 20, File::create(&path)?));
            opened.push(InputFile {
                path,
                explicit: true,
            });
        }
        Ok(self.out.as_mut().expect("an open file"))
    }

    fn finish(mut self) -> io::Result<()> {
        match self.out.take() {
            Some(mut o) => o.flush(),
            None => Ok(()),
        }
    }
}

/// Writes the CloudTrail records: JSON Lines on this thread, gzip objects on a second thread.
fn write_cloudtrail(
    dir: &Path,
    spec: &Spec,
    world: &World,
    plan: &Plan,
    data: &mut Data,
) -> io::Result<()> {
    let gz_thread = spec.gz_objects.then(|| {
        let (tx, rx) = mpsc::sync_channel::<GzBatch>(16);
        let gz_dir = dir.to_path_buf();
        (
            tx,
            std::thread::spawn(move || write_gz_objects(&gz_dir, rx)),
        )
    });
    let mut jsonl = Splitter::new(dir.join("cloudtrail"), "records", spec.jsonl_files)?;
    let mut g = Gen::new(spec, world, plan);
    let mut planted = plan.calls.iter().peekable();
    let mut batch: GzBatch = Vec::with_capacity(256);
    let mut gz_alive = true;
    let progress = |d: &Data| match spec.cloudtrail {
        Amount::Bytes(b) => d.jsonl_bytes as f64 / b as f64,
        Amount::Records(n) => d.records as f64 / n as f64,
    };
    // The time of the next background record is drawn once that record is written; planted
    // calls due by then go first, in time order.
    let mut advance = true;
    while progress(data) < 1.0 && gz_alive {
        if advance {
            g.advance();
        }
        let meta = match planted.next_if(|c| c.time <= g.time_ms) {
            Some(call) => {
                data.planted_records += 1;
                advance = false;
                g.planted(call)
            }
            None => {
                advance = true;
                match g.due_termination() {
                    Some(due) => g.terminate(due),
                    None => g.record(),
                }
            }
        };
        let line = g.buf.as_bytes();
        let o = jsonl.writer(progress(data), &mut data.jsonl)?;
        o.write_all(line)?;
        o.write_all(b"\n")?;
        if data.records == 0 {
            data.first_ms = meta.time;
        }
        data.last_ms = data.last_ms.max(meta.time);
        data.records += 1;
        data.jsonl_bytes += line.len() as u64 + 1;
        data.per_event[meta.event] += 1;
        data.per_event_bytes[meta.event] += line.len() as u64;
        data.failed += u64::from(meta.failed);
        if let Some((tx, _)) = &gz_thread {
            batch.push((
                meta.account * REGIONS.len() + meta.region,
                meta.time,
                g.buf.clone(),
            ));
            if batch.len() == 256 {
                gz_alive = tx.send(std::mem::take(&mut batch)).is_ok();
            }
        }
    }
    jsonl.finish()?;
    if let Some((tx, handle)) = gz_thread {
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let mut gz = handle.join().expect("gzip writer thread")?;
        gz.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        for (f, raw) in gz {
            data.gz.push(f);
            data.gz_raw_bytes.push(raw);
        }
    }
    Ok(())
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

/// `2025-05-02T09:22:00.123Z`, as GuardDuty writes times.
fn iso_ms(out: &mut String, ms: u64) {
    iso(out, ms);
    out.pop();
    w!(out, ".{:03}Z", ms % 1000);
}

/// The private DNS name of an address `10.a.b.c` in a region.
fn private_dns(ip: [u8; 3], region: &str) -> String {
    format!(
        "ip-10-{}-{}-{}.{}",
        ip[0],
        ip[1],
        ip[2],
        if region == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{region}.compute.internal")
        }
    )
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

/// Accounts of the estate: the first [`Spec::accounts`] of them are used.
const ACCOUNTS: [&str; 20] = [
    "111122223333",
    "222233334444",
    "555566667777",
    "777788889999",
    "100000000101",
    "100000000202",
    "100000000303",
    "100000000404",
    "100000000505",
    "100000000606",
    "100000000707",
    "100000000808",
    "100000000909",
    "100000001010",
    "100000001111",
    "100000001212",
    "100000001313",
    "100000001414",
    "100000001515",
    "100000001616",
];
const ACCOUNT_WEIGHTS: [u32; 20] = [
    40, 25, 20, 15, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
];
/// The estate's regions (the first [`WORLD_REGIONS`]), then regions nobody uses, where the
/// planted attacks launch.
const REGIONS: [&str; 8] = [
    "us-east-1",
    "eu-west-1",
    "us-west-2",
    "ap-southeast-3",
    "sa-east-1",
    "ap-south-2",
    "me-central-1",
    "af-south-1",
];
const WORLD_REGIONS: usize = 4;
const REGION_WEIGHTS: [u32; WORLD_REGIONS] = [50, 20, 20, 10];
/// The AWS-owned account that appears as `requesterId` of Auto Scaling launches.
const REQUESTER: &str = "444455556666";
/// Seeds of the instances the heavy mix launches (after the estate's and the planted ones).
const LAUNCHED_SEED: u64 = 200_000_000;
/// Groups of one account and region that share a VPC.
const GROUPS_PER_VPC: usize = 4;

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
/// Applications whose instances have public addresses (and draw port probes).
const PUBLIC_APPS: [&str; 4] = ["web", "api", "ingest", "gateway"];

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
    /// The CloudFormation stack that deployed the group, if any.
    stack: Option<String>,
}

#[derive(Clone)]
struct Instance {
    id: String,
    group: usize,
    subnet: usize,
    ip: [u8; 3],
    eni: String,
    mac: String,
    public_ip: Option<String>,
    launched_ms: u64,
}

impl Instance {
    /// Instance number `n` of `group`, derived from `seed`.
    fn new(seed: u64, n: usize, group: usize, public: bool) -> Instance {
        let s = 10_000_000 + seed * 10;
        let mut mac = String::from("0e");
        for b in mix(s + 3).to_be_bytes().iter().take(5) {
            w!(mac, ":{b:02x}");
        }
        let p = mix(s + 5).to_be_bytes();
        Instance {
            id: format!("i-0{}", hex_of(s, 16)),
            group,
            subnet: n % 3,
            ip: [(n % 3 * 16) as u8, (seed / 256) as u8, (seed % 256) as u8],
            eni: format!("eni-0{}", hex_of(s + 1, 16)),
            mac,
            public_ip: public.then(|| {
                format!(
                    "{}.{}.{}.{}",
                    [3, 18, 34, 52, 54][seed as usize % 5],
                    p[0],
                    p[1],
                    p[2].max(1)
                )
            }),
            launched_ms: START_MS - mix(s + 6) % (30 * 24 * HOUR),
        }
    }
}

struct World {
    groups: Vec<Group>,
    instances: Vec<Instance>,
    per_group: usize,
    /// How many of [`ACCOUNTS`] are used.
    accounts: usize,
}

impl World {
    /// `groups` Auto Scaling groups of `per_group` instances; instance `k` is member number
    /// `k / groups` of group `k % groups`.
    fn new(groups: usize, per_group: usize, accounts: usize, regional_names: bool) -> World {
        let accounts = accounts.clamp(1, ACCOUNTS.len());
        let digits = groups.saturating_sub(1).to_string().len().max(2);
        let buckets = accounts * WORLD_REGIONS;
        let group_list: Vec<Group> = (0..groups)
            .map(|g| {
                let account = g % accounts;
                let region = (g / accounts) % WORLD_REGIONS;
                let app = g % APPS.len();
                let acct = ACCOUNTS[account];
                let net = (account * WORLD_REGIONS
                    + region
                    + buckets * (g / (buckets * GROUPS_PER_VPC))) as u64;
                let s = g as u64 * 1000;
                let app_name = APPS[app].0;
                Group {
                    account,
                    region,
                    app,
                    name: if regional_names {
                        // The same number in every region of the account.
                        format!("asg-{:04}", g / buckets * accounts + account)
                    } else {
                        format!("{app_name}-asg-{g:0digits$}")
                    },
                    role: format!("{app_name}-instance-role-{g:0digits$}"),
                    role_id: format!("AROA{}", upper_of(s + 1, 17)),
                    profile_arn: format!(
                        "arn:aws:iam::{acct}:instance-profile/{app_name}-profile-{g:0digits$}"
                    ),
                    profile_id: format!("AIPA{}", upper_of(s + 2, 17)),
                    launch_template: format!("lt-0{}", hex_of(s + 3, 16)),
                    ami: format!("ami-0{}", hex_of(s + 4, 16)),
                    vpc: format!("vpc-0{}", hex_of(1_000_000 + net, 16)),
                    subnets: [0, 1, 2]
                        .map(|i| format!("subnet-0{}", hex_of(2_000_000 + net * 3 + i, 16))),
                    sg: format!("sg-0{}", hex_of(s + 5, 16)),
                    stack: (g % 3 == 0).then(|| format!("{app_name}-stack-{g:0digits$}")),
                }
            })
            .collect();
        let instances = (0..groups * per_group)
            .map(|k| {
                let g = k % groups;
                let public = PUBLIC_APPS.contains(&APPS[group_list[g].app].0);
                Instance::new(k as u64, k / groups, g, public)
            })
            .collect();
        World {
            groups: group_list,
            instances,
            per_group,
            accounts,
        }
    }

    /// How often each account is picked (by people, findings about users).
    fn account_weights(&self) -> &'static [u32] {
        &ACCOUNT_WEIGHTS[..self.accounts]
    }

    fn group_of(&self, k: usize) -> &Group {
        &self.groups[self.instances[k].group]
    }

    /// Instance number `n` (modulo the group size) of group `g`.
    fn member(&self, g: usize, n: usize) -> usize {
        g + self.groups.len() * (n % self.per_group)
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

/// Clients of attackers using stolen credentials.
const UA_ATTACKER: [&str; 3] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.run-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0-1017-aws md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go/1.50.0 (go1.21.6; linux; amd64)",
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
    /// Planted: an instance's role credentials, stolen (attack number).
    Stolen(usize),
    /// Planted: a leaked IAM user access key (attack number).
    Leaked(usize),
    /// Heavy mix: an ECS task of instance `k`'s group, through the group's task role, in a
    /// session of its own (named after the task, new credentials).
    Task(usize),
    /// Heavy mix: one CI run (GitHub Actions through OIDC) in a session of its own.
    CiRun,
}

/// Event names with their share of records, in per mille.
#[derive(Clone, Copy, PartialEq, Eq)]
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
    /// Lambda's `CreateFunction` (CloudTrail names it `CreateFunction20150331`).
    CreateFunction,
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

/// The heavy mix (issues 15 and 16), per mille: launches, function creations, and the reads
/// of the estate's roles (instance roles, or task roles with sessions of their own).
const HEAVY_MIX: [(Ev, u32); 12] = [
    (Ev::DescribeInstances, 200),
    (Ev::Decrypt, 150),
    (Ev::GetCallerIdentity, 120),
    (Ev::DescribeTags, 120),
    (Ev::DescribeInstanceStatus, 100),
    (Ev::DescribeVolumes, 80),
    (Ev::DescribeAutoScalingGroups, 80),
    (Ev::GenerateDataKey, 50),
    (Ev::DescribeSecurityGroups, 50),
    (Ev::RunInstances, 40),
    (Ev::CreateFunction, 10),
    // Never drawn: written when a launch's instances come to the end of their lifetime
    // (`terminate`), in place of a drawn record.
    (Ev::TerminateInstances, 0),
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
            Ev::CreateFunction => "CreateFunction20150331",
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
            Ev::CreateFunction => "lambda.amazonaws.com",
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
                | Ev::CreateFunction
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
    time: u64,
}

/// The caller's side of a record, known once `userIdentity` is chosen.
/// A launch of the heavy mix whose instances its launcher terminates at `time` (`terminate`).
struct Due {
    time: u64,
    /// Which launch (the instances launched before it): orders launches due at once.
    seq: u64,
    who: Who,
    account: usize,
    region: usize,
    instances: Vec<String>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

struct Caller {
    account: usize,
    region: usize,
    arn: String,
    ip: String,
    ua: &'static str,
    /// The instance whose role made the call, if any.
    instance: Option<usize>,
}

struct Gen<'w> {
    rng: Rng,
    world: &'w World,
    plan: &'w Plan,
    time_ms: u64,
    mix: Mix,
    table: &'static [(Ev, u32)],
    gap_ms: u64,
    /// Instances launched so far by the heavy mix (each launch starts new ones).
    launched: u64,
    /// Launches whose instances are to be terminated, the soonest first (`terminate`).
    due: std::collections::BinaryHeap<std::cmp::Reverse<Due>>,
    /// The instances of the `TerminateInstances` being written.
    terminating: Vec<String>,
    mix_weights: Vec<u32>,
    /// The current record's text.
    buf: String,
    /// Scratch space for request and response parts.
    scratch: String,
    /// The role of the current `AssumeRole` call, for its `resources`.
    role_arn: String,
}

impl<'w> Gen<'w> {
    fn new(spec: &Spec, world: &'w World, plan: &'w Plan) -> Gen<'w> {
        let table = spec.mix.table();
        let planned = match spec.cloudtrail {
            Amount::Bytes(b) => b / MEAN_RECORD_BYTES,
            Amount::Records(n) => n,
        };
        Gen {
            rng: Rng::new(spec.seed),
            world,
            plan,
            time_ms: START_MS,
            mix: spec.mix,
            table,
            gap_ms: spec.mix.gap_ms(planned),
            launched: 0,
            due: std::collections::BinaryHeap::new(),
            terminating: Vec::new(),
            mix_weights: table.iter().map(|m| m.1).collect(),
            buf: String::with_capacity(16 << 10),
            scratch: String::with_capacity(16 << 10),
            role_arn: String::new(),
        }
    }

    /// Moves the clock to the time of the next background record.
    fn advance(&mut self) {
        self.time_ms += self.rng.below(2 * self.gap_ms + 1);
    }

    /// Writes the next background record into `self.buf`.
    fn record(&mut self) -> Meta {
        let event = self.rng.weighted(&self.mix_weights);
        let who = match self.mix {
            Mix::Standard => self.who(self.table[event].0),
            Mix::Heavy { task_sessions, .. } => self.heavy_who(self.table[event].0, task_sessions),
        };
        self.write(event, who, None)
    }

    /// The launch whose instances are due to be terminated by now, if any.
    fn due_termination(&mut self) -> Option<Due> {
        let now = self.time_ms;
        self.due
            .peek()
            .is_some_and(|d| d.0.time <= now)
            .then(|| self.due.pop().expect("peeked").0)
    }

    /// Writes the `TerminateInstances` of a launch's instances into `self.buf`, by whoever
    /// launched them, in the launch's account and region.
    fn terminate(&mut self, due: Due) -> Meta {
        let event = self
            .table
            .iter()
            .position(|m| m.0 == Ev::TerminateInstances)
            .expect("terminations are in the heavy mix");
        self.terminating = due.instances;
        self.write_in(event, due.who, Some((due.account, due.region)), None)
    }

    /// How long a launched instance runs before its launcher terminates it: Auto Scaling
    /// scales in within 1-48 hours, a CI job's instances live 15 minutes to 3 hours, a
    /// person's 4 hours to 10 days (some outlive the data).
    fn lifetime(&mut self, who: Who) -> u64 {
        let (least, most) = match who {
            Who::AutoScaling => (HOUR, 48 * HOUR),
            Who::Sso(_) => (4 * HOUR, 240 * HOUR),
            _ => (15 * MINUTE, 3 * HOUR),
        };
        least + self.rng.below(most - least)
    }

    /// Writes a planted call into `self.buf`, at its own time.
    fn planted(&mut self, call: &'w Call) -> Meta {
        let now = std::mem::replace(&mut self.time_ms, call.time);
        let event = self
            .table
            .iter()
            .position(|m| m.0 == call.ev)
            .expect("planted calls are in the mix");
        let meta = self.write(event, call.who, Some(call));
        self.time_ms = now;
        meta
    }

    fn write(&mut self, event: usize, who: Who, call: Option<&'w Call>) -> Meta {
        self.write_in(event, who, call.map(|c| (c.account, c.region)), call)
    }

    /// [`Gen::write`] in the account and region `forced`, when given.
    fn write_in(
        &mut self,
        event: usize,
        who: Who,
        forced: Option<(usize, usize)>,
        call: Option<&'w Call>,
    ) -> Meta {
        let ev = self.table[event].0;
        self.buf.clear();
        let mut r = std::mem::take(&mut self.buf);
        let version = *self.rng.pick(&["1.08", "1.09", "1.10", "1.10", "1.11"]);
        w!(r, "{{\"eventVersion\":\"{version}\",\"userIdentity\":");
        let mut caller = self.identity(&mut r, who, forced);
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
        let failed = self.body(&mut r, ev, who, &caller, call);
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
            time: self.time_ms,
        }
    }

    /// Picks the caller for an event.
    fn who(&mut self, ev: Ev) -> Who {
        let rng = &mut self.rng;
        let inst = rng.index(self.world.instances.len());
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
            Ev::CreateFunction => match x {
                0..70 => Who::Ci,
                _ => Who::Sso(person),
            },
        }
    }

    /// Picks the caller for an event of the heavy mix: `task_sessions` per mille of the role
    /// calls come from a session of their own.
    fn heavy_who(&mut self, ev: Ev, task_sessions: u32) -> Who {
        let rng = &mut self.rng;
        let inst = rng.index(self.world.instances.len());
        let own_session = rng.chance(u64::from(task_sessions));
        let person = rng.index(PEOPLE.len());
        let x = rng.below(100);
        let ci = if own_session { Who::CiRun } else { Who::Ci };
        match ev {
            Ev::RunInstances => match x {
                0..75 => Who::AutoScaling,
                75..95 => ci,
                _ => Who::Sso(person),
            },
            Ev::CreateFunction => match x {
                0..70 => ci,
                _ => Who::Sso(person),
            },
            _ if own_session => Who::Task(inst),
            _ => Who::InstanceRole(inst),
        }
    }

    /// Writes `userIdentity` (the object) and returns the caller's context. `forced` sets
    /// the account and region (planted calls).
    fn identity(&mut self, r: &mut String, who: Who, forced: Option<(usize, usize)>) -> Caller {
        let (world, plan, now) = (self.world, self.plan, self.time_ms);
        let heavy = self.mix.heavy();
        let rng = &mut self.rng;
        let (mut account, mut region) = match forced {
            Some(f) => f,
            None => (
                rng.weighted(world.account_weights()),
                rng.weighted(&REGION_WEIGHTS),
            ),
        };
        let mut instance = None;
        let acct = |a: usize| ACCOUNTS[a];
        let nat_ip = |a: usize, reg: usize| format!("203.0.113.{}", 10 + (a * 16 + reg) % 240);
        let (arn, ip, ua) = match who {
            Who::InstanceRole(k) => {
                let g = world.group_of(k);
                let inst = &world.instances[k];
                account = g.account;
                region = g.region;
                instance = Some(k);
                let arn = if heavy {
                    // The credentials EC2 delivers, refreshed every 6 hours.
                    let (key, issued) = rotated_instance_key(k, now);
                    instance_session(r, rng, world, now, k, Some(&key), Some(issued))
                } else {
                    instance_session(r, rng, world, now, k, None, None)
                };
                // Calls through a VPC endpoint come from the private address.
                let ip = if rng.chance(300) {
                    format!("10.{}.{}.{}", inst.ip[0], inst.ip[1], inst.ip[2])
                } else {
                    nat_ip(account, region)
                };
                (arn, ip, *rng.pick(&UA_SDK))
            }
            Who::Stolen(n) => {
                let at = &plan.attacks[n];
                account = world.group_of(at.instance).account;
                instance = Some(at.instance);
                let arn = instance_session(r, rng, world, now, at.instance, Some(&at.key), None);
                (arn, at.ip.clone(), UA_ATTACKER[n % UA_ATTACKER.len()])
            }
            Who::Task(k) => {
                let g = world.group_of(k);
                account = g.account;
                region = g.region;
                instance = Some(k);
                let a = acct(account);
                let gi = world.instances[k].group;
                let role = g.role.replace("-instance-role-", "-task-role-");
                let role_id = format!("AROA{}", upper_of(gi as u64 * 1000 + 7, 17));
                // ECS names a task role's session after the task.
                let mut task = String::with_capacity(32);
                rng.hex(&mut task, 32);
                let arn = format!("arn:aws:sts::{a}:assumed-role/{role}/{task}");
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{role_id}:{task}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA"
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{role_id}\",\"arn\":\"arn:aws:iam::{a}:role/{role}\",\"accountId\":\"{a}\",\"userName\":\"{role}\"}},\"webIdFederationData\":{{}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, now - rng.below(15 * MINUTE));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                (arn, nat_ip(account, region), *rng.pick(&UA_SDK))
            }
            Who::CiRun => {
                account = 0;
                let a = acct(account);
                let run = 9_000_000_000 + rng.below(1_000_000_000);
                let session = format!("gha-{run}-1");
                let arn = format!("arn:aws:sts::{a}:assumed-role/ci-deploy/{session}");
                w!(
                    r,
                    "{{\"type\":\"AssumedRole\",\"principalId\":\"{CI_ROLE_ID}:{session}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"ASIA"
                );
                rng.upper(r, 16);
                w!(
                    r,
                    "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{CI_ROLE_ID}\",\"arn\":\"arn:aws:iam::{a}:role/ci-deploy\",\"accountId\":\"{a}\",\"userName\":\"ci-deploy\"}},\"webIdFederationData\":{{\"federatedProvider\":\"arn:aws:iam::{a}:oidc-provider/token.actions.githubusercontent.com\",\"attributes\":{{}}}},\"attributes\":{{\"creationDate\":\""
                );
                iso(r, now - rng.below(10 * MINUTE));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                (
                    arn,
                    format!("192.0.2.{}", 100 + rng.below(100)),
                    UA_TERRAFORM,
                )
            }
            Who::Sso(p) => {
                let a = acct(account);
                let (role, role_id) = sso_role(account, p);
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
                iso(r, now - rng.below(8 * 3_600_000));
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
                iso(r, now - rng.below(3_600_000));
                r.push_str("\",\"mfaAuthenticated\":\"false\"}}}");
                (arn, format!("192.0.2.{}", 10 + rng.below(8)), UA_TERRAFORM)
            }
            Who::IamUser(u) => {
                let (principal, key) = iam_user_ids(account, u);
                let arn = iam_user(r, account, IAM_USERS[u], &principal, &key);
                let ua = if rng.chance(100) {
                    *rng.pick(&UA_ODD)
                } else {
                    *rng.pick(&UA_HUMAN)
                };
                (arn, format!("198.51.100.{}", 100 + u), ua)
            }
            Who::Leaked(n) => {
                let at = &plan.attacks[n];
                account = at.account;
                let arn = iam_user(r, account, &at.user, &at.principal_id, &at.key);
                (arn, at.ip.clone(), UA_ATTACKER[n % UA_ATTACKER.len()])
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
                iso(r, now - rng.below(3_600_000));
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
                let g = world.group_of(k);
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
                iso(r, now - rng.below(120_000));
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
        let n = self.world.groups.len();
        let start = self.rng.index(n);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&g| {
                let gr = &self.world.groups[g];
                gr.account == c.account && gr.region == c.region
            })
            .unwrap_or(start)
    }

    /// An instance of group `g`.
    fn member(&mut self, g: usize) -> usize {
        let n = self.rng.index(self.world.per_group);
        self.world.member(g, n)
    }

    /// Writes error fields (for some calls), `requestParameters`, `responseElements` and extra
    /// data. Returns whether the call failed.
    fn body(
        &mut self,
        r: &mut String,
        ev: Ev,
        who: Who,
        c: &Caller,
        call: Option<&'w Call>,
    ) -> bool {
        let a = ACCOUNTS[c.account];
        let region = REGIONS[c.region];
        let can_fail = !matches!(
            who,
            Who::Service(_) | Who::Ec2Delivery(_) | Who::AutoScaling | Who::Config | Who::Root
        ) && !matches!(ev, Ev::ConsoleLogin | Ev::RunInstances)
            && call.is_none();
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
                            ACCOUNTS[self.rng.index(self.world.accounts)]
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
                let g = self.rng.index(self.world.groups.len());
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
                launch_failed = self.run_instances(&mut s, who, c, call);
                response_null = false;
            }
            Ev::TerminateInstances => {
                // A launch's instances at the end of their lifetime, or a member of a group.
                let mut ids = std::mem::take(&mut self.terminating);
                if ids.is_empty() {
                    let g = self.local_group(c);
                    let k = self.member(g);
                    ids.push(self.world.instances[k].id.clone());
                }
                s.push_str(",\"requestParameters\":{\"instancesSet\":{\"items\":[");
                for (i, id) in ids.iter().enumerate() {
                    let comma = if i > 0 { "," } else { "" };
                    w!(s, "{comma}{{\"instanceId\":\"{id}\"}}");
                }
                s.push_str("]}}");
                if !failed {
                    response_null = false;
                    s.push_str(",\"responseElements\":{\"requestId\":\"");
                    self.rng.uuid(&mut s);
                    s.push_str("\",\"instancesSet\":{\"items\":[");
                    for (i, id) in ids.iter().enumerate() {
                        let comma = if i > 0 { "," } else { "" };
                        w!(
                            s,
                            "{comma}{{\"instanceId\":\"{id}\",\"currentState\":{{\"code\":32,\"name\":\"shutting-down\"}},\"previousState\":{{\"code\":16,\"name\":\"running\"}}}}"
                        );
                    }
                    s.push_str("]}}");
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
            Ev::CreateFunction => {
                if !failed {
                    response_null = false;
                }
                self.create_function(&mut s, c, !failed);
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

    /// `CreateFunction20150331` request and, when it succeeded, response: a function of a
    /// group's application in the group's VPC, its code from an S3 artifact (the shape of the
    /// Lambda records in `../shared/samples/` and of the real `UpdateFunctionCode` and
    /// `UpdateFunctionConfiguration` responses in the Stratus Red Team logs).
    fn create_function(&mut self, s: &mut String, c: &Caller, ok: bool) {
        const PURPOSES: [&str; 6] = [
            "event-handler",
            "thumbnail",
            "etl-step",
            "alerts",
            "nightly-report",
            "webhook",
        ];
        const RUNTIMES: [(&str, &str); 4] = [
            ("python3.12", "app.handler"),
            ("nodejs20.x", "index.handler"),
            ("java21", "com.example.Handler::handleRequest"),
            ("provided.al2023", "bootstrap"),
        ];
        let a = ACCOUNTS[c.account];
        let region = REGIONS[c.region];
        let g = self.local_group(c);
        let gr = &self.world.groups[g];
        let app = APPS[gr.app].0;
        let name = format!(
            "{app}-{}-{:04}",
            self.rng.pick(&PURPOSES),
            self.rng.below(10_000)
        );
        let (runtime, handler) = *self.rng.pick(&RUNTIMES);
        let memory = *self.rng.pick(&[128, 256, 512, 1024, 2048]);
        let timeout = *self.rng.pick(&[3, 30, 60, 300, 900]);
        let role = format!("arn:aws:iam::{a}:role/service-role/{name}-role");
        let mut sha = String::with_capacity(44);
        self.rng.base64(&mut sha, 43);
        sha.push('=');
        let vpc = format!(
            "\"vpcConfig\":{{\"subnetIds\":[\"{}\",\"{}\"],\"securityGroupIds\":[\"{}\"]",
            gr.subnets[0], gr.subnets[1], gr.sg
        );
        let logging = format!(
            "\"loggingConfig\":{{\"logFormat\":\"Text\",\"logGroup\":\"/aws/lambda/{name}\"}}"
        );
        w!(
            s,
            ",\"requestParameters\":{{\"functionName\":\"{name}\",\"runtime\":\"{runtime}\",\"role\":\"{role}\",\"handler\":\"{handler}\",\"code\":{{\"s3Bucket\":\"deploy-artifacts-{a}-{region}\",\"s3Key\":\"lambda/{name}/{}.zip\"}},\"description\":\"\",\"timeout\":{timeout},\"memorySize\":{memory},\"publish\":true,{vpc}}},\"environment\":{{}},\"tracingConfig\":{{\"mode\":\"PassThrough\"}},\"tags\":{{\"app\":\"{app}\",\"managed-by\":\"terraform\"}},\"architectures\":[\"x86_64\"],\"ephemeralStorage\":{{\"size\":512}},{logging}}}",
            &sha[..12]
        );
        if !ok {
            return;
        }
        let mut modified = String::new();
        iso(&mut modified, self.time_ms);
        modified.pop();
        w!(
            s,
            ",\"responseElements\":{{\"functionName\":\"{name}\",\"functionArn\":\"arn:aws:lambda:{region}:{a}:function:{name}\",\"runtime\":\"{runtime}\",\"role\":\"{role}\",\"handler\":\"{handler}\",\"codeSize\":{},\"description\":\"\",\"timeout\":{timeout},\"memorySize\":{memory},\"lastModified\":\"{modified}.{:03}+0000\",\"codeSha256\":\"{sha}\",\"version\":\"1\",{vpc},\"vpcId\":\"{}\",\"ipv6AllowedForDualStack\":false}},\"environment\":{{}},\"tracingConfig\":{{\"mode\":\"PassThrough\"}},\"revisionId\":\"",
            20_000 + self.rng.below(30_000_000),
            self.time_ms % 1000,
            gr.vpc
        );
        self.rng.uuid(s);
        w!(
            s,
            "\",\"state\":\"Pending\",\"stateReason\":\"The function is being created.\",\"stateReasonCode\":\"Creating\",\"packageType\":\"Zip\",\"architectures\":[\"x86_64\"],\"ephemeralStorage\":{{\"size\":512}},\"snapStart\":{{\"applyOn\":\"None\",\"optimizationStatus\":\"Off\"}},\"runtimeVersionConfig\":{{\"runtimeVersionArn\":\"arn:aws:lambda:{region}::runtime:"
        );
        self.rng.hex(s, 64);
        w!(s, "\"}},{logging}}}");
    }

    /// `RunInstances` request and response (or error). Writes both into `s`, after any
    /// error fields. Returns whether the launch failed.
    fn run_instances(
        &mut self,
        s: &mut String,
        who: Who,
        c: &Caller,
        call: Option<&'w Call>,
    ) -> bool {
        let by_asg = matches!(who, Who::AutoScaling);
        let l = match call.and_then(|p| p.launch.as_ref()) {
            Some(p) => self.planted_launch(p),
            None if self.mix.heavy() => self.heavy_launch(c, who),
            None => self.background_launch(c, by_asg),
        };
        let a = ACCOUNTS[c.account];
        let region = REGIONS[c.region];
        let az = ['a', 'b', 'c'][self.rng.index(3)];
        let itype = l.itype;
        let mut token = String::new();
        if by_asg {
            token.push_str("fleet-");
            self.rng.uuid(&mut token);
            token.push_str("-0");
        } else {
            self.rng.uuid(&mut token);
        }
        match l.error {
            None => {}
            Some(LaunchError::VcpuLimit) => s.push_str(",\"errorCode\":\"Client.VcpuLimitExceeded\",\"errorMessage\":\"You have requested more vCPU capacity than your current vCPU limit of 64 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.\""),
            Some(LaunchError::Capacity) => w!(
                s,
                ",\"errorCode\":\"Server.InsufficientInstanceCapacity\",\"errorMessage\":\"We currently do not have sufficient {itype} capacity in the Availability Zone you requested ({region}{az}). Our system will be working on provisioning additional capacity.\""
            ),
            Some(LaunchError::Unauthorized) => {
                w!(
                    s,
                    ",\"errorCode\":\"Client.UnauthorizedOperation\",\"errorMessage\":\"You are not authorized to perform this operation. User: {} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:{region}:{a}:instance/* because no identity-based policy allows the ec2:RunInstances action. Encoded authorization failure message: ",
                    c.arn
                );
                self.rng.alnum(s, 400);
                s.push('"');
            }
            Some(LaunchError::DryRun) => s.push_str(",\"errorCode\":\"Client.DryRunOperation\",\"errorMessage\":\"Request would have succeeded, but DryRun flag is set.\""),
        }
        let app = l.app.unwrap_or("default");
        if let Some(gr) = l.asg {
            w!(
                s,
                ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"minCount\":1,\"maxCount\":{}}}]}},\"instanceType\":\"{itype}\",\"blockDeviceMapping\":{{}},\"availabilityZone\":\"{region}{az}\",\"monitoring\":{{\"enabled\":false}},\"subnetId\":\"{}\",\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\"{token}\",\"launchTemplate\":{{\"launchTemplateId\":\"{}\",\"version\":\"3\"}}}}",
                l.count,
                l.subnets[0],
                gr.launch_template
            );
        } else {
            w!(
                s,
                ",\"requestParameters\":{{\"instancesSet\":{{\"items\":[{{\"imageId\":\"{}\",\"minCount\":1,\"maxCount\":{}}}]}},\"instanceType\":\"{itype}\",\"blockDeviceMapping\":{{}},\"monitoring\":{{\"enabled\":false}},\"disableApiTermination\":false,\"disableApiStop\":false,\"clientToken\":\"{token}\"",
                l.ami,
                l.count
            );
            if let Some((arn, _)) = l.profile {
                w!(s, ",\"iamInstanceProfile\":{{\"arn\":\"{arn}\"}}");
            }
            if let Some(app) = l.app {
                w!(
                    s,
                    ",\"tagSpecificationSet\":{{\"items\":[{{\"resourceType\":\"instance\",\"tags\":[{{\"key\":\"Name\",\"value\":\"{app}-manual\"}},{{\"key\":\"Owner\",\"value\":\"platform\"}}]}}]}}"
                );
            }
            s.push('}');
        }
        if l.error.is_some() {
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
        let (cores, threads) = (l.cores, l.threads);
        for (i, inst) in l.instances.iter().enumerate() {
            let subnet = &l.subnets[inst.subnet % 3];
            let ip = format!("10.{}.{}.{}", inst.ip[0], inst.ip[1], inst.ip[2]);
            let dns = private_dns(inst.ip, region);
            let launch = self.time_ms;
            if i > 0 {
                s.push(',');
            }
            w!(
                s,
                "{{\"instanceId\":\"{}\",\"imageId\":\"{}\",\"bootMode\":\"uefi-preferred\",\"currentInstanceBootMode\":\"legacy-bios\",\"instanceState\":{{\"code\":0,\"name\":\"pending\"}},\"privateDnsName\":\"{dns}\",\"amiLaunchIndex\":{i},\"productCodes\":{{}},\"instanceType\":\"{itype}\",\"launchTime\":{launch},\"placement\":{{\"availabilityZone\":\"{region}{az}\",\"tenancy\":\"default\"}},\"monitoring\":{{\"state\":\"disabled\"}},\"subnetId\":\"{subnet}\",\"vpcId\":\"{}\",\"privateIpAddress\":\"{ip}\",\"stateReason\":{{\"code\":\"pending\",\"message\":\"pending\"}},\"architecture\":\"x86_64\",\"rootDeviceType\":\"ebs\",\"rootDeviceName\":\"/dev/xvda\",\"blockDeviceMapping\":{{}},\"virtualizationType\":\"hvm\",\"hypervisor\":\"xen\",\"clientToken\":\"{token}\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\",\"groupName\":\"{app}-sg\"}}]}},\"sourceDestCheck\":true,",
                inst.id,
                l.ami,
                l.vpc,
                l.sg
            );
            w!(
                s,
                "\"networkInterfaceSet\":{{\"items\":[{{\"networkInterfaceId\":\"{}\",\"subnetId\":\"{subnet}\",\"vpcId\":\"{}\",\"ownerId\":\"{a}\",\"status\":\"in-use\",\"macAddress\":\"{}\",\"privateIpAddress\":\"{ip}\",\"privateDnsName\":\"{dns}\",\"sourceDestCheck\":true,\"interfaceType\":\"interface\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\",\"groupName\":\"{app}-sg\"}}]}},\"attachment\":{{\"attachmentId\":\"eni-attach-0",
                inst.eni,
                l.vpc,
                inst.mac,
                l.sg
            );
            self.rng.hex(s, 16);
            w!(
                s,
                "\",\"deviceIndex\":0,\"networkCardIndex\":0,\"status\":\"attaching\",\"attachTime\":{launch},\"deleteOnTermination\":true}},\"privateIpAddressesSet\":{{\"item\":[{{\"privateIpAddress\":\"{ip}\",\"privateDnsName\":\"{dns}\",\"primary\":true}}]}},\"ipv6AddressesSet\":{{}},\"tagSet\":{{}}}}]}},"
            );
            if let Some((arn, id)) = l.profile {
                w!(
                    s,
                    "\"iamInstanceProfile\":{{\"arn\":\"{arn}\",\"id\":\"{id}\"}},"
                );
            }
            w!(
                s,
                "\"ebsOptimized\":false,\"enaSupport\":true,\"cpuOptions\":{{\"coreCount\":{cores},\"threadsPerCore\":{threads}}},\"capacityReservationSpecification\":{{\"capacityReservationPreference\":\"open\"}},\"hibernationOptions\":{{\"configured\":false}},\"enclaveOptions\":{{\"enabled\":false}},\"metadataOptions\":{{\"state\":\"pending\",\"httpTokens\":\"required\",\"httpPutResponseHopLimit\":2,\"httpEndpoint\":\"enabled\",\"httpProtocolIpv4\":\"enabled\",\"httpProtocolIpv6\":\"disabled\",\"instanceMetadataTags\":\"disabled\"}},\"maintenanceOptions\":{{\"autoRecovery\":\"default\"}},\"privateDnsNameOptions\":{{\"hostnameType\":\"ip-name\",\"enableResourceNameDnsARecord\":false,\"enableResourceNameDnsAAAARecord\":false}},\"tagSet\":{{\"items\":["
            );
            let mut tags = Vec::new();
            if let Some(gr) = l.asg {
                tags.push(("aws:ec2launchtemplate:id", gr.launch_template.as_str()));
                tags.push(("aws:autoscaling:groupName", gr.name.as_str()));
                tags.push(("aws:ec2launchtemplate:version", "3"));
                tags.push(("aws:ec2:fleet-id", token.trim_end_matches("-0")));
                if let Some(stack) = &gr.stack {
                    tags.push(("aws:cloudformation:stack-name", stack.as_str()));
                }
            }
            if let Some(app) = l.app {
                tags.push(("Name", app));
                tags.push(("Environment", "production"));
            }
            for (j, (k, v)) in tags.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                w!(s, "{{\"key\":\"{k}\",\"value\":\"{v}\"}}");
            }
            s.push_str("]},\"operator\":{\"managed\":false}}");
        }
        s.push_str("]}}");
        false
    }

    /// What a background `RunInstances` launches: members of a group of the caller's account
    /// and region, of the group's application; 1 % of the calls fail.
    fn background_launch(&mut self, c: &Caller, by_asg: bool) -> Launch<'w> {
        let world = self.world;
        let g = self.local_group(c);
        let gr = &world.groups[g];
        let count = if by_asg || self.rng.chance(700) {
            1
        } else {
            2 + self.rng.below(2) as usize
        };
        let (app, itype, cores, threads) = APPS[gr.app];
        let error = self.rng.chance(10).then(|| {
            [
                LaunchError::VcpuLimit,
                LaunchError::Capacity,
                LaunchError::Unauthorized,
            ][self.rng.index(3)]
        });
        let first = self.rng.index(world.per_group);
        Launch {
            asg: by_asg.then_some(gr),
            itype,
            cores,
            threads,
            count,
            ami: &gr.ami,
            vpc: &gr.vpc,
            subnets: &gr.subnets,
            sg: &gr.sg,
            app: Some(app),
            profile: Some((&gr.profile_arn, &gr.profile_id)),
            instances: (0..count)
                .map(|i| Cow::Borrowed(&world.instances[world.member(g, first + i)]))
                .collect(),
            error,
        }
    }

    /// What a `RunInstances` of the heavy mix launches: 1–8 new instances of a group of the
    /// caller's account and region (1–2 when a person launches), of the group's application;
    /// 1 % of the calls fail. With `terminate`, the instances are due to be terminated by
    /// `who` after their [`Gen::lifetime`].
    fn heavy_launch(&mut self, c: &Caller, who: Who) -> Launch<'w> {
        let (by_asg, person) = (matches!(who, Who::AutoScaling), matches!(who, Who::Sso(_)));
        let world = self.world;
        let g = self.local_group(c);
        let gr = &world.groups[g];
        let count = 1 + self.rng.below(if person { 2 } else { 8 }) as usize;
        let (app, itype, cores, threads) = APPS[gr.app];
        let error = self.rng.chance(10).then(|| {
            [
                LaunchError::VcpuLimit,
                LaunchError::Capacity,
                LaunchError::Unauthorized,
            ][self.rng.index(3)]
        });
        let public = PUBLIC_APPS.contains(&app);
        let instances: Vec<Cow<'w, Instance>> = (0..count)
            .map(|i| {
                self.launched += 1;
                Cow::Owned(Instance::new(LAUNCHED_SEED + self.launched, i, g, public))
            })
            .collect();
        if matches!(
            self.mix,
            Mix::Heavy {
                terminate: true,
                ..
            }
        ) && error.is_none()
        {
            let time = self.time_ms + self.lifetime(who);
            self.due.push(std::cmp::Reverse(Due {
                time,
                seq: self.launched,
                who,
                account: c.account,
                region: c.region,
                instances: instances.iter().map(|i| i.id.clone()).collect(),
            }));
        }
        Launch {
            asg: by_asg.then_some(gr),
            itype,
            cores,
            threads,
            count,
            ami: &gr.ami,
            vpc: &gr.vpc,
            subnets: &gr.subnets,
            sg: &gr.sg,
            app: Some(app),
            profile: Some((&gr.profile_arn, &gr.profile_id)),
            instances,
            error,
        }
    }

    /// What a planted `RunInstances` launches.
    fn planted_launch(&self, p: &'w Planted) -> Launch<'w> {
        let world = self.world;
        let group = p.group.map(|g| &world.groups[g]);
        let instances = p
            .new_instances
            .iter()
            .chain(p.members.iter().map(|&k| &world.instances[k]))
            .map(Cow::Borrowed)
            .collect();
        let (ami, vpc, subnets, sg) = match (&p.net, group) {
            (Some(n), _) => (&n.ami, &n.vpc, &n.subnets, &n.sg),
            (None, Some(gr)) => (&gr.ami, &gr.vpc, &gr.subnets, &gr.sg),
            (None, None) => unreachable!("a planted launch names a group or a network"),
        };
        Launch {
            asg: group.filter(|_| p.by_asg),
            itype: p.itype,
            cores: p.cores,
            threads: p.threads,
            count: p.count,
            ami,
            vpc,
            subnets,
            sg,
            app: group.map(|gr| APPS[gr.app].0),
            profile: group.map(|gr| (gr.profile_arn.as_str(), gr.profile_id.as_str())),
            instances,
            error: p.error,
        }
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

/// Writes the `userIdentity` of instance `k`'s role session (its credentials: the session
/// is named after the instance), with access key `key` (else a random one). Returns the
/// session ARN.
fn instance_session(
    r: &mut String,
    rng: &mut Rng,
    world: &World,
    now: u64,
    k: usize,
    key: Option<&str>,
    issued: Option<u64>,
) -> String {
    let g = world.group_of(k);
    let inst = &world.instances[k];
    let a = ACCOUNTS[g.account];
    let arn = format!("arn:aws:sts::{a}:assumed-role/{}/{}", g.role, inst.id);
    w!(
        r,
        "{{\"type\":\"AssumedRole\",\"principalId\":\"{}:{}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"",
        g.role_id,
        inst.id
    );
    match key {
        Some(k) => r.push_str(k),
        None => {
            r.push_str("ASIA");
            rng.upper(r, 16);
        }
    }
    w!(
        r,
        "\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{}\",\"arn\":\"arn:aws:iam::{a}:role/{}\",\"accountId\":\"{a}\",\"userName\":\"{}\"}},\"webIdFederationData\":{{}},\"attributes\":{{\"creationDate\":\"",
        g.role_id,
        g.role,
        g.role
    );
    iso(r, issued.unwrap_or_else(|| now - rng.below(6 * HOUR)));
    w!(
        r,
        "\",\"mfaAuthenticated\":\"false\"}},\"ec2RoleDelivery\":\"2.0\"}}}}"
    );
    arn
}

/// The access key of instance `k`'s role credentials at `now`, and when they were issued: EC2
/// refreshes them every 6 hours (at a time of its own for each instance).
fn rotated_instance_key(k: usize, now: u64) -> (String, u64) {
    let offset = mix(k as u64 ^ 0x6b65_7973) % (6 * HOUR);
    let period = (now + offset) / (6 * HOUR);
    let issued = (period * 6 * HOUR)
        .saturating_sub(offset)
        .max(START_MS - 6 * HOUR);
    let mut key = String::from("ASIA");
    key.push_str(&upper_of(mix(k as u64 * 1_000_003 + period), 16));
    (key, issued)
}

/// Principal id and access key of IAM user number `u` of an account.
fn iam_user_ids(account: usize, u: usize) -> (String, String) {
    let seed = account as u64 * 100 + u as u64;
    (
        format!("AIDA{}", upper_of(seed, 17)),
        format!("AKIA{}", upper_of(seed + 50, 16)),
    )
}

/// Writes the `userIdentity` of an IAM user; returns its ARN.
fn iam_user(r: &mut String, account: usize, name: &str, principal: &str, key: &str) -> String {
    let a = ACCOUNTS[account];
    let arn = format!("arn:aws:iam::{a}:user/{name}");
    w!(
        r,
        "{{\"type\":\"IAMUser\",\"principalId\":\"{principal}\",\"arn\":\"{arn}\",\"accountId\":\"{a}\",\"accessKeyId\":\"{key}\",\"userName\":\"{name}\"}}"
    );
    arn
}

/// The permission-set role (name and role id) SSO user `p` assumes in an account.
fn sso_role(account: usize, p: usize) -> (&'static str, String) {
    let role = if p < 3 {
        "AWSReservedSSO_AdministratorAccess_4f1d6a0e3c2b8a7d"
    } else {
        "AWSReservedSSO_ReadOnlyAccess_9a8b7c6d5e4f3a2b"
    };
    (
        role,
        format!("AROA{}", upper_of(account as u64 * 10 + (p < 3) as u64, 17)),
    )
}

// ---------------------------------------------------------------------------------------------
// GuardDuty findings

/// Whom a finding type is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// An instance with a public address (probes, brute force).
    PublicInstance,
    /// Any instance; picked in turn, so that every instance is described sooner or later.
    AnyInstance,
    /// An instance's role credentials (`accessKeyDetails`) and the instance.
    InstanceCredentials,
    /// An IAM user, the root user or an SSO session.
    User,
    /// The root user.
    Root,
}

/// What `service.action` holds.
#[derive(Clone, Copy)]
enum Act {
    PortProbe(u16, &'static str),
    Inbound(u16, &'static str),
    Outbound(u16, &'static str),
    Dns(&'static [&'static str]),
    /// API name and service.
    Api(&'static str, &'static str),
    /// Runtime Monitoring: `action` is empty, `runtimeDetails` says which process.
    Runtime,
}

struct FindingType {
    name: &'static str,
    severity: f64,
    /// Lines per 100 000 random (not planted) findings.
    weight: u32,
    aim: Aim,
    act: Act,
    /// `{}` stands for the instance id or the user or role name.
    title: &'static str,
    description: &'static str,
    /// Whether a shipped rule selects this kind.
    selected: bool,
}

const POOLS: [&str; 5] = [
    "xmr.pool.minergate.com",
    "pool.supportxmr.com",
    "xmr-eu1.nanopool.org",
    "gulf.moneroocean.stream",
    "pool.hashvault.pro",
];
const C2_DOMAINS: [&str; 3] = [
    "update.cdn-telemetry.example",
    "api.sync-node.example",
    "c2.example.net",
];
const EXFIL_DOMAINS: [&str; 2] = ["a1b2c3.tunnel.example", "data.dnsexfil.example"];

/// Noise first (99.5 % of random findings), then the kinds rules select (0.5 %).
const FINDING_TYPES: [FindingType; 19] = [
    FindingType {
        name: "Recon:EC2/PortProbeUnprotectedPort",
        severity: 2.0,
        weight: 39_200,
        aim: Aim::PublicInstance,
        act: Act::PortProbe(22, "SSH"),
        title: "Unprotected port on EC2 instance {} is being probed.",
        description: "EC2 instance has an unprotected port 22 which is being probed by a known malicious host.",
        selected: false,
    },
    FindingType {
        name: "UnauthorizedAccess:EC2/SSHBruteForce",
        severity: 2.0,
        weight: 20_000,
        aim: Aim::PublicInstance,
        act: Act::Inbound(22, "SSH"),
        title: "SSH brute force attacks against {}.",
        description: "A remote host is performing SSH brute force attacks against the EC2 instance. Brute force attacks are used to gain unauthorized access to your instance by guessing the SSH password.",
        selected: false,
    },
    FindingType {
        name: "Behavior:EC2/NetworkPortUnusual",
        severity: 5.0,
        weight: 9_000,
        aim: Aim::AnyInstance,
        act: Act::Outbound(6667, "Unknown"),
        title: "Unusual outbound communication on port 6667 from EC2 instance {}.",
        description: "EC2 instance is communicating with a remote host on an unusual server port 6667.",
        selected: false,
    },
    FindingType {
        name: "Recon:EC2/Portscan",
        severity: 5.0,
        weight: 6_000,
        aim: Aim::AnyInstance,
        act: Act::Outbound(445, "SMB"),
        title: "EC2 instance {} is performing outbound port scans against remote hosts.",
        description: "EC2 instance is performing outbound port scans against a remote host.",
        selected: false,
    },
    FindingType {
        name: "Policy:IAMUser/RootCredentialUsage",
        severity: 2.0,
        weight: 6_000,
        aim: Aim::Root,
        act: Act::Api("ListBuckets", "s3.amazonaws.com"),
        title: "API ListBuckets was invoked using root credentials.",
        description: "API ListBuckets was invoked using root credentials from IP address 198.51.100.200.",
        selected: false,
    },
    FindingType {
        name: "UnauthorizedAccess:EC2/RDPBruteForce",
        severity: 2.0,
        weight: 4_000,
        aim: Aim::PublicInstance,
        act: Act::Inbound(3389, "RDP"),
        title: "RDP brute force attacks against {}.",
        description: "A remote host is performing RDP brute force attacks against the EC2 instance.",
        selected: false,
    },
    FindingType {
        name: "Behavior:EC2/TrafficVolumeUnusual",
        severity: 5.0,
        weight: 4_000,
        aim: Aim::AnyInstance,
        act: Act::Outbound(443, "HTTPS"),
        title: "Unusually large amount of network traffic from EC2 instance {}.",
        description: "EC2 instance is generating unusually large amounts of network traffic to a remote host.",
        selected: false,
    },
    FindingType {
        name: "Discovery:IAMUser/AnomalousBehavior",
        severity: 5.0,
        weight: 3_500,
        aim: Aim::User,
        act: Act::Api("DescribeInstances", "ec2.amazonaws.com"),
        title: "User {} is anomalously invoking APIs commonly used in discovery tactics.",
        description: "APIs commonly used in discovery tactics were invoked by user {} under unusual circumstances.",
        selected: false,
    },
    FindingType {
        name: "UnauthorizedAccess:EC2/TorIPCaller",
        severity: 5.0,
        weight: 3_000,
        aim: Aim::PublicInstance,
        act: Act::Inbound(443, "HTTPS"),
        title: "Inbound connection to EC2 instance {} from a Tor exit node.",
        description: "EC2 instance is receiving inbound connections from a Tor exit node.",
        selected: false,
    },
    FindingType {
        name: "Stealth:IAMUser/PasswordPolicyChange",
        severity: 2.0,
        weight: 1_500,
        aim: Aim::User,
        act: Act::Api("UpdateAccountPasswordPolicy", "iam.amazonaws.com"),
        title: "Password policy was weakened by {}.",
        description: "The account password policy was weakened by {}.",
        selected: false,
    },
    FindingType {
        name: "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        severity: 5.0,
        weight: 1_500,
        aim: Aim::User,
        act: Act::Api("ConsoleLogin", "signin.amazonaws.com"),
        title: "Unusual console login by {}.",
        description: "Multiple worldwide successful console logins were observed for {}.",
        selected: false,
    },
    FindingType {
        name: "Recon:IAMUser/MaliciousIPCaller",
        severity: 5.0,
        weight: 1_500,
        aim: Aim::User,
        act: Act::Api("GetCallerIdentity", "sts.amazonaws.com"),
        title: "Reconnaissance API GetCallerIdentity was invoked from a known malicious IP address by {}.",
        description: "API GetCallerIdentity was invoked by {} from a known malicious IP address.",
        selected: false,
    },
    FindingType {
        name: "Stealth:IAMUser/CloudTrailLoggingDisabled",
        severity: 2.0,
        weight: 300,
        aim: Aim::User,
        act: Act::Api("StopLogging", "cloudtrail.amazonaws.com"),
        title: "AWS CloudTrail trail was disabled by {}.",
        description: "The CloudTrail trail was disabled by {}.",
        selected: false,
    },
    FindingType {
        name: "Execution:Runtime/NewBinaryExecuted",
        severity: 5.0,
        weight: 250,
        aim: Aim::AnyInstance,
        act: Act::Runtime,
        title: "A newly created or recently modified binary file has been executed on EC2 instance {}.",
        description: "A newly created or recently modified binary file has been executed on the EC2 instance.",
        selected: true,
    },
    FindingType {
        name: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        severity: 8.0,
        weight: 70,
        aim: Aim::InstanceCredentials,
        act: Act::Api("DescribeInstances", "ec2.amazonaws.com"),
        title: "Credentials for instance role {} used from a different AWS account.",
        description: "Credentials created exclusively for an EC2 instance using instance role {} have been used from a different AWS account.",
        selected: true,
    },
    FindingType {
        name: "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        severity: 8.0,
        weight: 60,
        aim: Aim::AnyInstance,
        act: Act::Dns(&POOLS),
        title: "Bitcoin-related domain name queried by EC2 instance {}.",
        description: "EC2 instance is querying a domain name that is associated with Bitcoin-related activity.",
        selected: true,
    },
    FindingType {
        name: "Backdoor:EC2/C&CActivity.B!DNS",
        severity: 8.0,
        weight: 60,
        aim: Aim::AnyInstance,
        act: Act::Dns(&C2_DOMAINS),
        title: "Command and Control server domain name queried by EC2 instance {}.",
        description: "EC2 instance is querying a domain name associated with a known Command & Control server.",
        selected: true,
    },
    FindingType {
        name: "Trojan:EC2/DNSDataExfiltration",
        severity: 8.0,
        weight: 60,
        aim: Aim::AnyInstance,
        act: Act::Dns(&EXFIL_DOMAINS),
        title: "Data exfiltration through DNS queries from EC2 instance {}.",
        description: "EC2 instance is exfiltrating data through DNS queries.",
        selected: true,
    },
    FindingType {
        name: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        severity: 8.0,
        weight: 0,
        aim: Aim::InstanceCredentials,
        act: Act::Api("RunInstances", "ec2.amazonaws.com"),
        title: "Credentials for instance role {} used from external IP address.",
        description: "Credentials created exclusively for an EC2 instance using instance role {} have been used from an external IP address.",
        selected: true,
    },
];

impl FindingType {
    /// Lines per 100 000 random findings of the heavy mix: the noise at 0.9× the weight of the
    /// standard mix, and 10 % of high severity (the severity-8 kinds, which rules select).
    fn heavy_weight(&self) -> u32 {
        match self.name {
            "CryptoCurrency:EC2/BitcoinTool.B!DNS" => 3_000,
            "Backdoor:EC2/C&CActivity.B!DNS" => 2_500,
            "Trojan:EC2/DNSDataExfiltration" => 2_000,
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS" => 2_500,
            _ if self.severity >= 7.0 => 0,
            _ => self.weight * 9 / 10,
        }
    }
}

fn finding_type(name: &str) -> usize {
    FINDING_TYPES
        .iter()
        .position(|t| t.name == name)
        .unwrap_or_else(|| panic!("unknown finding type {name}"))
}

/// Where remote hosts of findings come from: (ASN, organisation, country code and name,
/// city, latitude, longitude).
const ORGS: [(&str, &str, &str, &str, &str, f64, f64); 5] = [
    (
        "64496",
        "EXAMPLE-HOSTING-BV",
        "NL",
        "Netherlands",
        "Amsterdam",
        52.3759,
        4.8975,
    ),
    (
        "64500",
        "EXAMPLE-CLOUD-LLC",
        "US",
        "United States",
        "Ashburn",
        39.0438,
        -77.4874,
    ),
    (
        "64511",
        "EXAMPLE-TELECOM",
        "CN",
        "China",
        "Shanghai",
        31.2222,
        121.4581,
    ),
    (
        "65001",
        "EXAMPLE-DC-LTD",
        "RU",
        "Russia",
        "Moscow",
        55.7522,
        37.6156,
    ),
    (
        "65010",
        "EXAMPLE-ISP-SA",
        "BR",
        "Brazil",
        "Sao Paulo",
        -23.5475,
        -46.6361,
    ),
];

/// Who an access-key finding is about.
#[derive(Clone, Copy)]
enum User {
    Iam(usize),
    Root,
    Sso(usize),
}

/// What a finding is about.
#[derive(Clone)]
enum Target {
    Instance(usize),
    /// An instance's role credentials, and the instance.
    InstanceCredentials {
        instance: usize,
        key: String,
    },
    User {
        account: usize,
        user: User,
    },
}

/// One finding line: a finding at one version.
#[derive(Clone)]
struct Finding {
    id: String,
    ty: usize,
    target: Target,
    first_seen: u64,
    last_seen: u64,
    created: u64,
    updated: u64,
    count: u64,
    /// The remote host's address and [`ORGS`] entry.
    remote: String,
    org: usize,
    /// Which domain of a DNS finding, which process of a runtime finding.
    pick: usize,
}

impl Finding {
    /// The account and region (indexes) the finding belongs to.
    fn place(&self, world: &World) -> (usize, usize) {
        match &self.target {
            Target::Instance(k) | Target::InstanceCredentials { instance: k, .. } => {
                let g = world.group_of(*k);
                (g.account, g.region)
            }
            Target::User { account, .. } => (*account, 0),
        }
    }
}

/// Findings about the estate, written one line at a time into `buf`.
struct FindingGen<'w> {
    rng: Rng,
    world: &'w World,
    weights: Vec<u32>,
    /// Instances with a public address.
    public: Vec<usize>,
    /// Turn of the next [`Aim::AnyInstance`] finding.
    turn: u64,
    /// Recent findings, of which later versions are written.
    recent: VecDeque<Finding>,
    buf: String,
}

/// Findings kept for later versions.
const RECENT_FINDINGS: usize = 2048;
/// Share of lines that are a later version of a recent finding, per mille.
const UPDATE_PER_MILLE: u64 = 250;

impl<'w> FindingGen<'w> {
    fn new(seed: u64, world: &'w World, heavy: bool) -> FindingGen<'w> {
        let public: Vec<usize> = (0..world.instances.len())
            .filter(|&k| world.instances[k].public_ip.is_some())
            .collect();
        FindingGen {
            rng: Rng::new(seed),
            world,
            weights: FINDING_TYPES
                .iter()
                .map(|t| if heavy { t.heavy_weight() } else { t.weight })
                .collect(),
            public,
            turn: 0,
            recent: VecDeque::with_capacity(RECENT_FINDINGS),
            buf: String::with_capacity(8 << 10),
        }
    }

    /// The next random finding line at time `now`: a new finding or a later version of a
    /// recent one (then true).
    fn next(&mut self, now: u64) -> (Finding, bool) {
        if !self.recent.is_empty() && self.rng.chance(UPDATE_PER_MILLE) {
            let i = self.rng.index(self.recent.len());
            let f = &mut self.recent[i];
            f.last_seen = f.last_seen.max(now);
            f.updated = f.last_seen + MINUTE * (2 + self.rng.below(4));
            f.count += 1 + self.rng.below(20);
            return (f.clone(), true);
        }
        let ty = self.rng.weighted(&self.weights);
        let n = self.world.instances.len() as u64;
        let target = match FINDING_TYPES[ty].aim {
            Aim::PublicInstance if !self.public.is_empty() => {
                Target::Instance(*self.rng.pick(&self.public))
            }
            Aim::PublicInstance | Aim::AnyInstance => {
                // A stride coprime with the instance count visits every instance in turn.
                let stride = if n.is_multiple_of(7919) { 1 } else { 7919 };
                self.turn += 1;
                Target::Instance(((self.turn * stride) % n) as usize)
            }
            Aim::InstanceCredentials => {
                let mut key = String::from("ASIA");
                self.rng.upper(&mut key, 16);
                Target::InstanceCredentials {
                    instance: self.rng.below(n) as usize,
                    key,
                }
            }
            Aim::User => {
                let account = self.rng.weighted(self.world.account_weights());
                let user = if self.rng.chance(500) {
                    User::Iam(self.rng.index(IAM_USERS.len()))
                } else {
                    User::Sso(self.rng.index(PEOPLE.len()))
                };
                Target::User { account, user }
            }
            Aim::Root => Target::User {
                account: self.rng.weighted(self.world.account_weights()),
                user: User::Root,
            },
        };
        let mut id = String::with_capacity(32);
        self.rng.hex(&mut id, 32);
        let created = now + MINUTE * (1 + self.rng.below(5));
        let r = self.rng.below(750) as usize;
        let f = Finding {
            id,
            ty,
            target,
            first_seen: now - self.rng.below(2 * HOUR),
            last_seen: now,
            created,
            updated: created,
            count: 1 + self.rng.below(5),
            remote: format!(
                "{}.{}",
                ["198.51.100", "192.0.2", "203.0.113"][r % 3],
                5 + r / 3
            ),
            org: self.rng.index(ORGS.len()),
            pick: self.rng.index(64),
        };
        if self.recent.len() == RECENT_FINDINGS {
            self.recent.pop_front();
        }
        self.recent.push_back(f.clone());
        (f, false)
    }

    /// Writes `f` as one line of JSON into `self.buf`.
    fn write(&mut self, f: &Finding) {
        let t = &FINDING_TYPES[f.ty];
        let world = self.world;
        let (account, region) = f.place(world);
        let a = ACCOUNTS[account];
        let reg = REGIONS[region];
        let detector = hex_of(4_000_000 + (account * REGIONS.len() + region) as u64, 32);
        let mut r = std::mem::take(&mut self.buf);
        r.clear();
        w!(
            r,
            "{{\"schemaVersion\":\"2.0\",\"accountId\":\"{a}\",\"region\":\"{reg}\",\"partition\":\"aws\",\"id\":\"{}\",\"arn\":\"arn:aws:guardduty:{reg}:{a}:detector/{detector}/finding/{}\",\"type\":\"{}\",\"resource\":{{",
            f.id,
            f.id,
            t.name
        );
        let subject = match &f.target {
            Target::Instance(k) => {
                r.push_str("\"resourceType\":\"Instance\",");
                instance_details(&mut r, world, *k);
                world.instances[*k].id.clone()
            }
            Target::InstanceCredentials { instance, key } => {
                let g = world.group_of(*instance);
                w!(
                    r,
                    "\"resourceType\":\"AccessKey\",\"accessKeyDetails\":{{\"accessKeyId\":\"{key}\",\"principalId\":\"{}:{}\",\"userName\":\"{}\",\"userType\":\"AssumedRole\"}},",
                    g.role_id,
                    world.instances[*instance].id,
                    g.role
                );
                instance_details(&mut r, world, *instance);
                g.role.clone()
            }
            Target::User { account, user } => {
                let (key, principal, name, kind) = match *user {
                    User::Iam(u) => {
                        let (principal, key) = iam_user_ids(*account, u);
                        (key, principal, IAM_USERS[u].to_string(), "IAMUser")
                    }
                    User::Root => {
                        let mut key = String::from("ASIA");
                        self.rng.upper(&mut key, 16);
                        (key, a.to_string(), "Root".to_string(), "Root")
                    }
                    User::Sso(p) => {
                        let mut key = String::from("ASIA");
                        self.rng.upper(&mut key, 16);
                        let (role, role_id) = sso_role(*account, p);
                        (
                            key,
                            format!("{role_id}:{}", PEOPLE[p]),
                            role.to_string(),
                            "AssumedRole",
                        )
                    }
                };
                w!(
                    r,
                    "\"resourceType\":\"AccessKey\",\"accessKeyDetails\":{{\"accessKeyId\":\"{key}\",\"principalId\":\"{principal}\",\"userName\":\"{name}\",\"userType\":\"{kind}\"}}"
                );
                name
            }
        };
        w!(
            r,
            "}},\"service\":{{\"serviceName\":\"guardduty\",\"detectorId\":\"{detector}\",\"action\":"
        );
        self.action(&mut r, f, t.act, a);
        r.push_str(",\"resourceRole\":\"TARGET\",\"additionalInfo\":{\"value\":\"{}\",\"type\":\"default\"},\"eventFirstSeen\":\"");
        iso_ms(&mut r, f.first_seen);
        r.push_str("\",\"eventLastSeen\":\"");
        iso_ms(&mut r, f.last_seen);
        w!(r, "\",\"archived\":false,\"count\":{}", f.count);
        match t.act {
            Act::Dns(_) => r.push_str(",\"evidence\":{\"threatIntelligenceDetails\":[{\"threatListName\":\"ProofPoint\",\"threatNames\":[]}]}"),
            Act::Runtime => self.runtime_details(&mut r, f),
            _ => {}
        }
        w!(r, "}},\"severity\":{},\"createdAt\":\"", t.severity);
        iso_ms(&mut r, f.created);
        r.push_str("\",\"updatedAt\":\"");
        iso_ms(&mut r, f.updated);
        w!(
            r,
            "\",\"title\":\"{}\",\"description\":\"{}\"}}",
            t.title.replace("{}", &subject),
            t.description.replace("{}", &subject)
        );
        self.buf = r;
    }

    /// `service.action`.
    fn action(&mut self, r: &mut String, f: &Finding, act: Act, account: &str) {
        let local = match &f.target {
            Target::Instance(k) | Target::InstanceCredentials { instance: k, .. } => {
                let ip = self.world.instances[*k].ip;
                format!("10.{}.{}.{}", ip[0], ip[1], ip[2])
            }
            Target::User { .. } => String::new(),
        };
        match act {
            Act::PortProbe(port, name) => {
                w!(
                    r,
                    "{{\"actionType\":\"PORT_PROBE\",\"portProbeAction\":{{\"blocked\":false,\"portProbeDetails\":[{{\"localPortDetails\":{{\"port\":{port},\"portName\":\"{name}\"}},\"localIpDetails\":{{\"ipAddressV4\":\"{local}\"}},\"remoteIpDetails\":"
                );
                remote_ip_details(r, &f.remote, f.org);
                r.push_str("}]}}");
            }
            Act::Inbound(port, name) | Act::Outbound(port, name) => {
                let inbound = matches!(act, Act::Inbound(..));
                let other = 32_768 + self.rng.below(28_000);
                let (local_port, local_name, remote_port, remote_name) = if inbound {
                    (u64::from(port), name, other, "Unknown")
                } else {
                    (other, "Unknown", u64::from(port), name)
                };
                w!(
                    r,
                    "{{\"actionType\":\"NETWORK_CONNECTION\",\"networkConnectionAction\":{{\"connectionDirection\":\"{}\",\"localPortDetails\":{{\"port\":{local_port},\"portName\":\"{local_name}\"}},\"protocol\":\"TCP\",\"blocked\":false,\"localIpDetails\":{{\"ipAddressV4\":\"{local}\"}},\"remoteIpDetails\":",
                    if inbound { "INBOUND" } else { "OUTBOUND" }
                );
                remote_ip_details(r, &f.remote, f.org);
                w!(
                    r,
                    ",\"remotePortDetails\":{{\"port\":{remote_port},\"portName\":\"{remote_name}\"}}}}}}"
                );
            }
            Act::Dns(domains) => {
                let domain = domains[f.pick % domains.len()];
                let suffix = domain.split_once('.').map_or(domain, |(_, s)| s);
                w!(
                    r,
                    "{{\"actionType\":\"DNS_REQUEST\",\"dnsRequestAction\":{{\"domain\":\"{domain}\",\"protocol\":\"UDP\",\"blocked\":false,\"domainWithSuffix\":\"{suffix}\",\"vpcOwnerAccountId\":\"{account}\"}}}}"
                );
            }
            Act::Api(api, service) => {
                w!(
                    r,
                    "{{\"actionType\":\"AWS_API_CALL\",\"awsApiCallAction\":{{\"api\":\"{api}\",\"serviceName\":\"{service}\",\"callerType\":\"Remote IP\",\"remoteIpDetails\":"
                );
                remote_ip_details(r, &f.remote, f.org);
                w!(
                    r,
                    ",\"affectedResources\":{{}},\"userAgent\":\"{}\"}}}}",
                    UA_ATTACKER[f.pick % UA_ATTACKER.len()]
                );
            }
            Act::Runtime => r.push_str("{}"),
        }
    }

    /// `service.featureName` and `service.runtimeDetails` of a runtime finding.
    fn runtime_details(&mut self, r: &mut String, f: &Finding) {
        const PROCESSES: [(&str, &str, &str); 4] = [
            ("xmrig", "/tmp/.x/xmrig", "apache"),
            (
                "app-update",
                "/opt/app/releases/current/bin/app-update",
                "app",
            ),
            (
                "node_exporter",
                "/usr/local/bin/node_exporter",
                "prometheus",
            ),
            ("kworkerds", "/var/tmp/kworkerds", "root"),
        ];
        let (name, path, user) = PROCESSES[f.pick % PROCESSES.len()];
        let pid = 1000 + f.pick * 731;
        w!(
            r,
            ",\"featureName\":\"RuntimeMonitoring\",\"runtimeDetails\":{{\"process\":{{\"name\":\"{name}\",\"executablePath\":\"{path}\",\"executableSha256\":\""
        );
        self.rng.hex(r, 64);
        let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
        w!(
            r,
            "\",\"namespacePid\":{pid},\"pwd\":\"{dir}\",\"pid\":{pid},\"startTime\":{}.{},\"uuid\":\"",
            f.first_seen / 1000,
            f.first_seen % 1000 / 100
        );
        self.rng.uuid(r);
        r.push_str("\",\"parentUuid\":\"");
        self.rng.uuid(r);
        w!(
            r,
            "\",\"user\":\"{user}\",\"userId\":48,\"euid\":48,\"lineage\":[]}}}}"
        );
    }
}

/// `resource.instanceDetails` of instance `k` (with the trailing `}` of the object left to
/// the caller: fields only).
fn instance_details(r: &mut String, world: &World, k: usize) {
    let inst = &world.instances[k];
    let g = &world.groups[inst.group];
    let (app, itype, _, _) = APPS[g.app];
    let region = REGIONS[g.region];
    let ip = format!("10.{}.{}.{}", inst.ip[0], inst.ip[1], inst.ip[2]);
    let dns = private_dns(inst.ip, region);
    w!(
        r,
        "\"instanceDetails\":{{\"instanceId\":\"{}\",\"instanceType\":\"{itype}\",\"launchTime\":\"",
        inst.id
    );
    iso_ms(r, inst.launched_ms);
    w!(
        r,
        "\",\"platform\":null,\"productCodes\":[],\"iamInstanceProfile\":{{\"arn\":\"{}\",\"id\":\"{}\"}},\"networkInterfaces\":[{{\"networkInterfaceId\":\"{}\",\"privateDnsName\":\"{dns}\",\"privateIpAddress\":\"{ip}\",\"privateIpAddresses\":[{{\"privateDnsName\":\"{dns}\",\"privateIpAddress\":\"{ip}\"}}],\"subnetId\":\"{}\",\"vpcId\":\"{}\",\"securityGroups\":[{{\"groupName\":\"{app}-sg\",\"groupId\":\"{}\"}}]",
        g.profile_arn,
        g.profile_id,
        inst.eni,
        g.subnets[inst.subnet],
        g.vpc,
        g.sg
    );
    match &inst.public_ip {
        Some(p) => {
            let dashed = p.replace('.', "-");
            let host = if region == "us-east-1" {
                format!("ec2-{dashed}.compute-1.amazonaws.com")
            } else {
                format!("ec2-{dashed}.{region}.compute.amazonaws.com")
            };
            w!(r, ",\"publicDnsName\":\"{host}\",\"publicIp\":\"{p}\"");
        }
        None => r.push_str(",\"publicDnsName\":\"\""),
    }
    w!(
        r,
        ",\"ipv6Addresses\":[]}}],\"outpostArn\":null,\"tags\":[{{\"key\":\"Name\",\"value\":\"{app}\"}},{{\"key\":\"aws:autoscaling:groupName\",\"value\":\"{}\"}},{{\"key\":\"aws:ec2launchtemplate:id\",\"value\":\"{}\"}},{{\"key\":\"aws:ec2launchtemplate:version\",\"value\":\"3\"}},",
        g.name,
        g.launch_template
    );
    if let Some(stack) = &g.stack {
        w!(
            r,
            "{{\"key\":\"aws:cloudformation:stack-name\",\"value\":\"{stack}\"}},{{\"key\":\"aws:cloudformation:logical-id\",\"value\":\"Asg\"}},"
        );
    }
    w!(
        r,
        "{{\"key\":\"Environment\",\"value\":\"production\"}}],\"instanceState\":\"running\",\"availabilityZone\":\"{region}{}\",\"imageId\":\"{}\",\"imageDescription\":\"Amazon Linux 2023 AMI 2023.7.20250428.1 x86_64 HVM kernel-6.1\"}}",
        ['a', 'b', 'c'][inst.subnet],
        g.ami
    );
}

/// `remoteIpDetails` of a remote host.
fn remote_ip_details(r: &mut String, ip: &str, org: usize) {
    let (asn, name, cc, country, city, lat, lon) = ORGS[org];
    w!(
        r,
        "{{\"ipAddressV4\":\"{ip}\",\"organization\":{{\"asn\":\"{asn}\",\"asnOrg\":\"{name}\",\"isp\":\"{name}\",\"org\":\"{name}\"}},\"country\":{{\"countryCode\":\"{cc}\",\"countryName\":\"{country}\"}},\"city\":{{\"cityName\":\"{city}\"}},\"geoLocation\":{{\"lat\":{lat},\"lon\":{lon}}}}}"
    );
}

/// Writes the findings: random ones spread evenly over the CloudTrail time span, planted ones
/// at their times.
fn write_findings(
    dir: &Path,
    spec: &Spec,
    world: &World,
    plan: &Plan,
    data: &mut Data,
) -> io::Result<()> {
    let mut files = Splitter::new(dir.join("guardduty"), "findings", spec.finding_files)?;
    let mut g = FindingGen::new(spec.seed ^ 0x6775_6172_6464_7479, world, spec.mix.heavy());
    let (t0, t1) = (data.first_ms, data.last_ms.max(data.first_ms + 1));
    let m = spec.findings;
    let mut planted = plan.findings.iter().peekable();
    let mut i = 0u64;
    loop {
        let now = t0 + (t1 - t0) * i.min(m) / m;
        let finding = match planted.next_if(|p| p.last_seen <= now || i >= m) {
            Some(p) => {
                data.planted_findings += 1;
                p.clone()
            }
            None if i < m => {
                let (f, update) = g.next(now);
                data.finding_updates += u64::from(update);
                f
            }
            None => break,
        };
        g.write(&finding);
        let o = files.writer(i as f64 / m as f64, &mut data.findings_files)?;
        o.write_all(g.buf.as_bytes())?;
        o.write_all(b"\n")?;
        i += 1;
        data.findings += 1;
        data.findings_bytes += g.buf.len() as u64 + 1;
        data.per_finding_type[finding.ty].1 += 1;
        data.selected_kind_findings += u64::from(FINDING_TYPES[finding.ty].selected);
    }
    files.finish()
}

// ---------------------------------------------------------------------------------------------
// Planted attacks and quiet look-alikes

/// Why a launch failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaunchError {
    VcpuLimit,
    Capacity,
    Unauthorized,
    DryRun,
}

/// What a `RunInstances` call launches (or tried to).
struct Launch<'a> {
    /// The Auto Scaling group launching: the request names its launch template, the items
    /// carry its tags.
    asg: Option<&'a Group>,
    itype: &'a str,
    cores: u32,
    threads: u32,
    /// `maxCount` asked for.
    count: usize,
    ami: &'a str,
    vpc: &'a str,
    subnets: &'a [String; 3],
    sg: &'a str,
    /// Application: `Name` tags and security group name (none for attackers).
    app: Option<&'a str>,
    /// Instance profile ARN and id.
    profile: Option<(&'a str, &'a str)>,
    instances: Vec<Cow<'a, Instance>>,
    error: Option<LaunchError>,
}

/// An attacker's launch network in a region: its own AMI and the region's default VPC.
struct Net {
    ami: String,
    vpc: String,
    subnets: [String; 3],
    sg: String,
}

impl Net {
    fn new(account: usize, region: usize) -> Net {
        let n = (account * REGIONS.len() + region) as u64;
        Net {
            ami: format!("ami-0{}", hex_of(70_000_000 + region as u64, 16)),
            vpc: format!("vpc-0{}", hex_of(71_000_000 + n, 16)),
            subnets: [0, 1, 2].map(|i| format!("subnet-0{}", hex_of(72_000_000 + n * 3 + i, 16))),
            sg: format!("sg-0{}", hex_of(73_000_000 + n, 16)),
        }
    }
}

/// A planted `RunInstances`.
struct Planted {
    itype: &'static str,
    cores: u32,
    threads: u32,
    count: usize,
    error: Option<LaunchError>,
    /// The group whose launch template, AMI and profile the launch uses.
    group: Option<usize>,
    /// Launched by the group's Auto Scaling group.
    by_asg: bool,
    /// The attacker's network (else the group's).
    net: Option<Net>,
    /// Instances the call launches that the estate did not have.
    new_instances: Vec<Instance>,
    /// Instances of the estate the call (re)launches.
    members: Vec<usize>,
}

/// A planted CloudTrail record.
struct Call {
    time: u64,
    ev: Ev,
    who: Who,
    account: usize,
    region: usize,
    launch: Option<Planted>,
}

/// What a planted scenario is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackKind {
    /// A group member's role credentials stolen: cryptomining (and command-and-control or
    /// runtime) findings on the member, its credentials used from outside AWS, failed then
    /// successful GPU launches in a region nobody uses; `big` launches over 800 vCPUs.
    StolenInstanceCredentials { big: bool },
    /// A leaked IAM user access key launching over 800 vCPUs within hours, after a failure.
    LeakedUserKey,
    /// Quiet: an Auto Scaling group scaling out GPU instances, over 800 vCPUs in an hour.
    ScaleOut,
    /// Quiet: a CI release launching a dozen instances.
    CiRelease,
}

impl AttackKind {
    pub fn quiet(self) -> bool {
        matches!(self, AttackKind::ScaleOut | AttackKind::CiRelease)
    }
}

/// One planted scenario.
pub struct Attack {
    pub kind: AttackKind,
    pub t0: u64,
    account: usize,
    /// Where it launches.
    region: usize,
    group: usize,
    /// The member whose credentials are stolen.
    instance: usize,
    /// The access key used.
    key: String,
    /// The attacker's address.
    ip: String,
    /// The IAM user of a leaked key, and its principal id.
    user: String,
    principal_id: String,
}

/// The planted scenarios, the records and findings they consist of, and what they must
/// produce.
pub struct Plan {
    pub attacks: Vec<Attack>,
    /// CloudTrail records to plant, in time order.
    calls: Vec<Call>,
    /// Finding lines to plant, in time order.
    findings: Vec<Finding>,
    expected: Vec<Expected>,
    quiet: Vec<String>,
}

/// The Auto Scaling service-linked role's principal id (the same in every account).
const ASG_PRINCIPAL: &str = "AROAEXAMPLEASGSVC0004:AutoScaling";
const CI_ROLE_ID: &str = "AROAEXAMPLECIROLE0001";

impl Plan {
    /// `attacks` attacks and `attacks / 2` look-alikes spread over 5–85 % of `start..end`.
    fn new(world: &World, attacks: usize, start: u64, end: u64) -> Plan {
        let mut plan = Plan {
            attacks: Vec::new(),
            calls: Vec::new(),
            findings: Vec::new(),
            expected: Vec::new(),
            quiet: vec![
                format!("principal/{ASG_PRINCIPAL}"),
                format!("principal/{CI_ROLE_ID}:*"),
            ],
        };
        let total = attacks + attacks / 2;
        let span = end.saturating_sub(start);
        let groups = world.groups.len();
        let stride = if groups.is_multiple_of(7919) { 1 } else { 7919 };
        for i in 0..total {
            let kind = if i >= attacks {
                if (i - attacks).is_multiple_of(2) {
                    AttackKind::ScaleOut
                } else {
                    AttackKind::CiRelease
                }
            } else {
                match i % 4 {
                    1 => AttackKind::StolenInstanceCredentials { big: true },
                    2 => AttackKind::LeakedUserKey,
                    _ => AttackKind::StolenInstanceCredentials { big: false },
                }
            };
            let mut group = (i * stride + 13) % groups;
            if kind == AttackKind::CiRelease {
                // The CI role lives in the first account.
                group -= group % world.accounts;
            }
            let g = &world.groups[group];
            // Evenly spread, with a deterministic jitter of up to an hour.
            let slot = (i * 37) % total.max(1);
            let t0 = start
                + span / 20
                + span * 4 / 5 * slot as u64 / total.max(1) as u64
                + mix(i as u64) % HOUR;
            let attack_region = WORLD_REGIONS + i % (REGIONS.len() - WORLD_REGIONS);
            let a = Attack {
                kind,
                t0,
                account: if kind == AttackKind::LeakedUserKey {
                    i % world.accounts
                } else {
                    g.account
                },
                region: if kind.quiet() {
                    g.region
                } else {
                    attack_region
                },
                group,
                instance: world.member(group, i),
                key: match kind {
                    AttackKind::LeakedUserKey => {
                        format!("AKIA{}", upper_of(62_000_000 + i as u64, 16))
                    }
                    _ => format!("ASIA{}", upper_of(60_000_000 + i as u64, 16)),
                },
                ip: format!("203.0.113.{}", 200 + i % 50),
                user: format!("render-svc-{i:02}"),
                principal_id: format!("AIDA{}", upper_of(61_000_000 + i as u64, 17)),
            };
            plan.plant(world, i, &a);
            plan.attacks.push(a);
        }
        plan.calls.sort_by_key(|c| c.time);
        plan.findings.sort_by_key(|f| f.last_seen);
        plan
    }

    /// Adds the records, findings and expectations of attack number `n`.
    fn plant(&mut self, world: &World, n: usize, a: &Attack) {
        let g = &world.groups[a.group];
        let launch = |itype: &'static str,
                      cores: u32,
                      threads: u32,
                      count: usize,
                      error: Option<LaunchError>,
                      call: usize| {
            let new_instances = if error.is_some() {
                Vec::new()
            } else {
                (0..count)
                    .map(|j| {
                        Instance::new(
                            50_000_000 + (n * 100 + call * 10 + j) as u64,
                            j,
                            a.group,
                            false,
                        )
                    })
                    .collect()
            };
            Planted {
                itype,
                cores,
                threads,
                count,
                error,
                group: None,
                by_asg: false,
                net: Some(Net::new(a.account, a.region)),
                new_instances,
                members: Vec::new(),
            }
        };
        let mut call = |time: u64, ev: Ev, who: Who, region: usize, p: Option<Planted>| {
            self.calls.push(Call {
                time,
                ev,
                who,
                account: a.account,
                region,
                launch: p,
            });
        };
        let t0 = a.t0;
        match a.kind {
            AttackKind::StolenInstanceCredentials { big } => {
                let who = Who::Stolen(n);
                let region = a.region;
                call(t0 + 15 * MINUTE, Ev::GetCallerIdentity, who, 0, None);
                let p4d = |e, c| Some(launch("p4d.24xlarge", 48, 2, 8, Some(e), c));
                call(
                    t0 + 18 * MINUTE,
                    Ev::RunInstances,
                    who,
                    region,
                    p4d(LaunchError::DryRun, 0),
                );
                call(
                    t0 + 20 * MINUTE,
                    Ev::RunInstances,
                    who,
                    region,
                    p4d(LaunchError::VcpuLimit, 1),
                );
                if big {
                    // 3 × 5 p3.16xlarge: 960 vCPUs.
                    for j in 0..3 {
                        let p = launch("p3.16xlarge", 32, 2, 5, None, 2 + j);
                        let at = t0 + (24 + 9 * j as u64) * MINUTE;
                        call(at, Ev::RunInstances, who, region, Some(p));
                    }
                } else {
                    let p = launch("g5.xlarge", 2, 2, 2, None, 2);
                    call(t0 + 24 * MINUTE, Ev::RunInstances, who, region, Some(p));
                    let p = launch("p3.2xlarge", 4, 2, 2, None, 3);
                    call(t0 + 31 * MINUTE, Ev::RunInstances, who, region, Some(p));
                }
                self.plant_findings(world, n, a);
                let group_key = format!("auto_scaling_group/{}", g.name);
                let principal =
                    format!("principal/{}:{}", g.role_id, world.instances[a.instance].id);
                let mut expect = vec![
                    ("compromised-instance-group", group_key.clone()),
                    ("instance-credentials-launch-compute", group_key),
                    ("compute-resource-creation", principal.clone()),
                    ("failed-compute-launch", principal.clone()),
                ];
                if big {
                    expect.push(("mass-compute-deployment", principal));
                }
                self.expect(n, expect);
            }
            AttackKind::LeakedUserKey => {
                let who = Who::Leaked(n);
                let p = launch("c5.24xlarge", 48, 2, 10, Some(LaunchError::VcpuLimit), 0);
                call(t0, Ev::RunInstances, who, a.region, Some(p));
                // 4 × 3 c5.24xlarge within 5 hours: 1 152 vCPUs.
                for (j, minutes) in [10, 70, 160, 260].into_iter().enumerate() {
                    let p = launch("c5.24xlarge", 48, 2, 3, None, 1 + j);
                    call(
                        t0 + minutes * MINUTE,
                        Ev::RunInstances,
                        who,
                        a.region,
                        Some(p),
                    );
                }
                let principal = format!("principal/{}", a.principal_id);
                self.expect(
                    n,
                    vec![
                        ("mass-compute-deployment", principal.clone()),
                        ("compute-resource-creation", principal.clone()),
                        ("failed-compute-launch", principal),
                    ],
                );
            }
            AttackKind::ScaleOut => {
                // 4 × 8 p3.8xlarge within an hour: 1 024 vCPUs, by Auto Scaling.
                for j in 0..4 {
                    let mut p = launch("p3.8xlarge", 16, 2, 8, None, j);
                    p.group = Some(a.group);
                    p.by_asg = true;
                    p.net = None;
                    let at = t0 + 20 * MINUTE * j as u64;
                    call(at, Ev::RunInstances, Who::AutoScaling, a.region, Some(p));
                }
            }
            AttackKind::CiRelease => {
                // 4 × 3 members of a group relaunched by CI: 192 vCPUs.
                for j in 0..4 {
                    let mut p = launch("m6i.4xlarge", 8, 2, 3, None, j);
                    p.group = Some(a.group);
                    p.net = None;
                    p.new_instances.clear();
                    p.members = (0..3).map(|m| world.member(a.group, j * 3 + m)).collect();
                    let at = t0 + 15 * MINUTE * j as u64;
                    call(at, Ev::RunInstances, Who::Ci, a.region, Some(p));
                }
            }
        }
    }

    fn expect(&mut self, attack: usize, rules: Vec<(&'static str, String)>) {
        for (rule, key) in rules {
            self.expected.push(Expected { rule, key, attack });
        }
    }

    /// The findings of stolen instance credentials: cryptomining on the member (two later
    /// versions), command and control or a runtime execution, then the credentials used from
    /// outside AWS.
    fn plant_findings(&mut self, world: &World, n: usize, a: &Attack) {
        let t0 = a.t0;
        let k = a.instance;
        let finding =
            |ty: &str, target: Target, first: u64, last: u64, count: u64, pick: usize| Finding {
                id: hex_of(80_000_000 + (n * 10) as u64 + count, 32),
                ty: finding_type(ty),
                target,
                first_seen: first,
                last_seen: last,
                created: last + 3 * MINUTE,
                updated: last + 3 * MINUTE,
                count,
                remote: a.ip.clone(),
                org: n % ORGS.len(),
                pick,
            };
        let crypto = finding(
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            Target::Instance(k),
            t0 - 10 * MINUTE,
            t0,
            3,
            n,
        );
        for (hours, count) in [(1, 41), (3, 230)] {
            let mut later = crypto.clone();
            later.last_seen = t0 + hours * HOUR;
            later.updated = later.last_seen + 4 * MINUTE;
            later.count = count;
            self.findings.push(later);
        }
        self.findings.push(crypto);
        if n.is_multiple_of(2) {
            self.findings.push(finding(
                "Backdoor:EC2/C&CActivity.B!DNS",
                Target::Instance(k),
                t0 - 2 * MINUTE,
                t0 + 4 * MINUTE,
                2,
                n,
            ));
        } else {
            // The miner's binary (process table entry 0: xmrig).
            self.findings.push(finding(
                "Execution:Runtime/NewBinaryExecuted",
                Target::Instance(k),
                t0 - 30 * MINUTE,
                t0 - 30 * MINUTE,
                1,
                0,
            ));
        }
        self.findings.push(finding(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            Target::InstanceCredentials {
                instance: k,
                key: a.key.clone(),
            },
            t0 + 15 * MINUTE,
            t0 + 25 * MINUTE,
            4,
            n,
        ));
        debug_assert!(k < world.instances.len());
    }
}
