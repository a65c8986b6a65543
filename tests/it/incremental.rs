//! Incremental runs with a state: one run over all input and any split of it into
//! consecutive runs write the same findings (ids included); re-runs write nothing; a failed
//! run leaves the state as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use finding_correlator::config::{Config, Settings};
use finding_correlator::incremental;
use finding_correlator::pipeline;
use finding_correlator::rules::RuleSet;
use finding_correlator::sinks::asff::{self, Writer};
use finding_correlator::state::{KeptFinding, State};
use finding_correlator::time::Millis;
use predicates::prelude::*;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{self, correlator, decode_bytes};

fn settings() -> Settings {
    Config::default().validate().expect("default settings")
}

fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| Arc::new(RuleSet::builtin().expect("the shipped rules load")))
        .clone()
}

/// How a file holds its records, so a part of them can be written the same way.
#[derive(Clone, Debug)]
enum Shape {
    Lines,
    Array,
    Wrapped(String),
    Single,
}

/// One raw record of an input file, with the event time its signal has.
#[derive(Clone, Debug)]
struct Raw {
    file: usize,
    shape: Shape,
    value: Value,
    time: Millis,
    /// Its place in the input, to keep the order of records with equal times.
    order: usize,
}

fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

fn input_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            input_files(&p, out);
        } else if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".gz") {
            out.push(p);
        }
    }
}

fn encode(shape: &Shape, values: &[&Value]) -> String {
    match shape {
        Shape::Lines => values
            .iter()
            .map(|v| format!("{}\n", serde_json::to_string(v).unwrap()))
            .collect(),
        Shape::Array => serde_json::to_string(values).unwrap(),
        Shape::Wrapped(k) => serde_json::json!({ k.as_str(): values }).to_string(),
        Shape::Single => {
            assert_eq!(values.len(), 1);
            values[0].to_string()
        }
    }
}

/// Every record under `dir`, in event-time order.
fn records(dir: &Path) -> Vec<Raw> {
    let mut files = Vec::new();
    input_files(dir, &mut files);
    let mut out = Vec::new();
    for (file, path) in files.iter().enumerate() {
        let text = read_text(path);
        let (shape, values): (Shape, Vec<Value>) = if path.to_string_lossy().contains(".jsonl") {
            let vs = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (Shape::Lines, vs)
        } else {
            match serde_json::from_str::<Value>(&text).unwrap() {
                Value::Array(a) => (Shape::Array, a),
                Value::Object(o) => {
                    let key = ["Records", "findings", "Findings", "Events"]
                        .into_iter()
                        .find(|k| o.get(*k).is_some_and(Value::is_array));
                    match key {
                        Some(k) => (
                            Shape::Wrapped(k.to_string()),
                            o[k].as_array().unwrap().clone(),
                        ),
                        None => (Shape::Single, vec![Value::Object(o)]),
                    }
                }
                other => panic!("{}: unexpected {other}", path.display()),
            }
        };
        for value in values {
            let decoded = decode_bytes(encode(&shape, &[&value]).as_bytes());
            let time = decoded
                .signals
                .iter()
                .map(|(_, s)| s.time)
                .max()
                .unwrap_or(Millis::MIN);
            let order = out.len();
            out.push(Raw {
                file,
                shape: shape.clone(),
                value,
                time,
                order,
            });
        }
    }
    out.sort_by_key(|r| (r.time, r.order));
    out
}

/// Writes records as files of the shapes they came in, one file per source file.
fn write_part(dir: &Path, part: &[Raw]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut by_file: BTreeMap<usize, Vec<&Raw>> = BTreeMap::new();
    for r in part {
        by_file.entry(r.file).or_default().push(r);
    }
    for (file, rs) in by_file {
        let shape = &rs[0].shape;
        if matches!(shape, Shape::Single) {
            for (i, r) in rs.iter().enumerate() {
                let p = dir.join(format!("f{file}-{i}.json"));
                std::fs::write(p, encode(shape, &[&r.value])).unwrap();
            }
            continue;
        }
        let ext = if matches!(shape, Shape::Lines) {
            "jsonl"
        } else {
            "json"
        };
        let values: Vec<&Value> = rs.iter().map(|r| &r.value).collect();
        std::fs::write(dir.join(format!("f{file}.{ext}")), encode(shape, &values)).unwrap();
    }
}

/// Findings by `Id`, the last version written winning.
type Written = BTreeMap<String, Value>;

fn id(f: &Value) -> String {
    f["Id"].as_str().unwrap().to_string()
}

/// One run over everything, without a state.
fn single_run(dir: &Path) -> Written {
    single_run_with(dir, &settings())
}

/// The same, with `settings`.
fn single_run_with(dir: &Path, settings: &Settings) -> Written {
    let rules = rules();
    let run = pipeline::correlate(&[dir.to_path_buf()], settings, rules.clone(), false, None);
    asff::findings(&run.sequences, &rules, &Writer::default())
        .into_iter()
        .map(|f| (id(&f), f))
        .collect()
}

/// Consecutive runs with a state saved and loaded (as JSON) between them.
fn split_runs(dirs: &[PathBuf], state: &mut State) -> (Written, usize) {
    let rules = rules();
    let settings = settings();
    let mut written = Written::new();
    let mut superseded = 0;
    for dir in dirs {
        let run = pipeline::correlate(
            std::slice::from_ref(dir),
            &settings,
            rules.clone(),
            false,
            Some(state),
        );
        let (next, changes) =
            incremental::advance(Some(state), &run, &rules, &settings, &Writer::default());
        superseded += changes.superseded;
        for f in changes.write.iter().map(KeptFinding::value) {
            written.insert(id(&f), f);
        }
        let text = String::from_utf8(next.to_json()).unwrap();
        *state = State::from_json(&text, "test").expect("a saved state loads");
    }
    (written, superseded)
}

/// Splits the records of `dir` at `cuts` (indexes) and checks the runs against one run.
fn check_split(name: &str, all: &[Raw], whole: &Written, cuts: &[usize]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied());
    bounds.push(all.len());
    for (i, w) in bounds.windows(2).enumerate() {
        let d = tmp.path().join(format!("run{i}"));
        write_part(&d, &all[w[0]..w[1]]);
        dirs.push(d);
    }
    let mut state = State::new();
    let (written, superseded) = split_runs(&dirs, &mut state);
    let active: Written = written
        .into_iter()
        .filter(|(_, f)| f["RecordState"] != "ARCHIVED")
        .collect();
    assert_eq!(
        active.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>(),
        "{name}: split at {cuts:?} wrote other finding ids ({superseded} superseded)"
    );
    for (k, f) in &active {
        assert_eq!(
            f, &whole[k],
            "{name}: split at {cuts:?}: finding {k} differs"
        );
    }
}

fn scenario_dirs() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let root = common::fixture("scenarios");
    let mut rules: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rules.sort();
    for r in rules {
        // Every rule's positive and negative case, and the roll-up cases (issue 14).
        let mut cases: Vec<_> = std::fs::read_dir(&r)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|d| d.join("expected.yaml").is_file())
            .collect();
        cases.sort();
        for d in cases {
            out.push((
                format!(
                    "{}/{}",
                    r.file_name().unwrap().to_string_lossy(),
                    d.file_name().unwrap().to_string_lossy()
                ),
                d,
            ));
        }
    }
    out
}

#[test]
fn every_scenario_run_record_by_record_equals_one_run() {
    for (name, dir) in scenario_dirs() {
        let whole = single_run(&dir);
        let all = records(&dir);
        assert!(!all.is_empty(), "{name}: no records");
        let cuts: Vec<usize> = (1..all.len()).collect();
        check_split(&name, &all, &whole, &cuts);
    }
}

#[test]
fn the_fixture_scenario_split_in_two_equals_one_run() {
    let dir = common::fixture("");
    let whole = single_run(&dir);
    assert!(!whole.is_empty());
    let all = records(&dir);
    for cut in [
        1,
        all.len() / 4,
        all.len() / 2,
        all.len() * 3 / 4,
        all.len() - 1,
    ] {
        check_split("fixtures", &all, &whole, &[cut]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any split of the whole fixture set into consecutive runs equals one run.
    #[test]
    fn any_split_equals_one_run(fractions in proptest::collection::vec(0.0f64..1.0, 1..5)) {
        static ALL: OnceLock<(Vec<Raw>, Written)> = OnceLock::new();
        let (all, whole) = ALL.get_or_init(|| {
            let dir = common::fixture("");
            (records(&dir), single_run(&dir))
        });
        let mut cuts: Vec<usize> = fractions
            .iter()
            .map(|f| 1 + (f * (all.len() - 1) as f64) as usize)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        check_split("fixtures", all, whole, &cuts);
    }
}

#[test]
fn a_rerun_on_the_same_input_writes_nothing() {
    let dir = common::fixture("");
    let mut state = State::new();
    let (first, _) = split_runs(std::slice::from_ref(&dir), &mut state);
    assert!(!first.is_empty());
    let before = state.clone();
    let (again, _) = split_runs(&[dir], &mut state);
    assert!(again.is_empty(), "a re-run wrote {:?}", again.keys());
    assert_eq!(state.signals, before.signals);
    assert_eq!(state.graph, before.graph);
    assert_eq!(state.sequences, before.sequences);
    assert_eq!(state.horizon, before.horizon);
}

fn signal_count(f: &Value) -> usize {
    f["Detection"]["Sequence"]["Signals"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn a_sequence_that_continues_is_written_again_under_its_id() {
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let all = records(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let mut continued = 0;
    for cut in 1..all.len() {
        let (a, b) = (
            tmp.path().join(format!("a{cut}")),
            tmp.path().join(format!("b{cut}")),
        );
        write_part(&a, &all[..cut]);
        write_part(&b, &all[cut..]);
        let mut state = State::new();
        let (first, _) = split_runs(&[a], &mut state);
        let open: Vec<_> = state
            .sequences
            .iter()
            .filter(|s| s.status == finding_correlator::state::SequenceStatus::Open)
            .map(|s| s.id.clone())
            .collect();
        let (second, _) = split_runs(&[b], &mut state);
        for (id, f1) in &first {
            assert!(open.contains(id), "{id} is open after the first run");
            let Some(f2) = second.get(id) else { continue };
            continued += 1;
            assert_eq!(f1["CreatedAt"], f2["CreatedAt"]);
            assert!(
                f2["UpdatedAt"].as_str() > f1["UpdatedAt"].as_str(),
                "{} then {}",
                f1["UpdatedAt"],
                f2["UpdatedAt"]
            );
            assert!(signal_count(f2) > signal_count(f1));
        }
    }
    assert!(continued > 0, "no split continued a sequence");
}

/// The same records again, on day `to` instead of `from`, as new records: other event and
/// finding ids, and other instances (an instance id is never used twice), their first digit
/// the last of `to`.
fn replay_later(src: &Path, dst: &Path, from: &str, to: &str) {
    let uuid = regex::Regex::new(r#""([0-9a-f])([0-9a-f]{7}-[0-9a-f]{4}-)"#).unwrap();
    let hex32 = regex::Regex::new(r"([^0-9a-f])([0-9a-f])([0-9a-f]{31})([^0-9a-f])").unwrap();
    let instance = regex::Regex::new(r"\bi-[0-9a-f]([0-9a-f]{16})\b").unwrap();
    let digit = &to[to.len() - 1..];
    assert_ne!(
        digit, "0",
        "instance ids start with 0: the replay would keep them"
    );
    std::fs::create_dir_all(dst).unwrap();
    let mut files = Vec::new();
    input_files(src, &mut files);
    for (i, f) in files.iter().enumerate() {
        let text = read_text(f).replace(from, to);
        let text = uuid.replace_all(&text, format!("\"{digit}$2"));
        let text = hex32.replace_all(&text, format!("${{1}}{digit}$3$4"));
        let text = instance.replace_all(&text, format!("i-{digit}$1"));
        let name = f.file_name().unwrap().to_string_lossy().replace(".gz", "");
        std::fs::write(dst.join(format!("{i}-{name}")), text.as_bytes()).unwrap();
    }
}

#[test]
fn a_closed_sequence_is_not_updated_and_a_later_attack_opens_a_new_one() {
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let tmp = tempfile::tempdir().unwrap();
    let later = tmp.path().join("later");
    replay_later(&dir, &later, "2025-05-03", "2025-05-06");
    let mut state = State::new();
    let (first, _) = split_runs(std::slice::from_ref(&dir), &mut state);
    assert_eq!(first.len(), 1);
    let (second, _) = split_runs(&[later], &mut state);
    assert_eq!(second.len(), 1, "{:?}", second.keys());
    let (id1, f1) = first.iter().next().unwrap();
    let (id2, f2) = second.iter().next().unwrap();
    assert_ne!(id1, id2, "the later attack is a new sequence");
    assert_eq!(
        f1["Resources"][0]["Id"], f2["Resources"][0]["Id"],
        "same group"
    );
    assert!(id2.ends_with("/2025-05-06T07:52:10.000Z"), "{id2}");
    // The first finding stays ACTIVE as written; the state forgot it once nothing could
    // reach it any more: it ended more than the longest window (24 hours) before the horizon
    // of a run a day later (until then a sequence the next run makes could roll up with it).
    assert_eq!(f1["RecordState"], "ACTIVE");
    let day_later = tmp.path().join("day-later");
    replay_later(&dir, &day_later, "2025-05-03", "2025-05-07");
    let (third, _) = split_runs(&[day_later], &mut state);
    assert!(!third.contains_key(id1), "the first is not written again");
    assert!(state.sequences.iter().all(|s| &s.id != id1));
}

/// Records that come after the state's horizon has passed them (a trail object read days
/// late, a finding first exported days after its activity) cannot join the windows they
/// belonged to, which closed before the horizon: they are left out, and the run says so as a
/// warning with their count, and in its summary, not as records an earlier run matched.
#[test]
fn records_older_than_the_horizon_are_left_out_with_a_warning_and_counted() {
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let tmp = tempfile::tempdir().unwrap();
    let later = tmp.path().join("later");
    replay_later(&dir, &later, "2025-05-03", "2025-05-06");
    let state = tmp.path().join("state.json");
    let out = tmp.path().join("out.json");
    // The schedule has read three days later; the attack's own records were never read.
    let first = correlate_with_state(&state, Some(&out), &later)
        .args(["--summary", "json"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(findings_file(&out).len(), 1);
    // The horizon: the newest event time less 49 hours (the longest window, suppression and
    // allowed lag of the shipped rules), as the README says.
    let saved = crate::common::state_value(&std::fs::read(&state).unwrap());
    let at =
        |k: &str| finding_correlator::time::parse_timestamp(saved[k].as_str().unwrap()).unwrap();
    assert_eq!(
        at("newest") - at("horizon"),
        49 * 3_600_000,
        "{}",
        saved["horizon"]
    );
    let late = correlate_with_state(&state, Some(&out), &dir)
        .args(["--summary", "json"])
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(0));
    let stderr = String::from_utf8(late.stderr).unwrap();
    let warning = stderr
        .lines()
        .find(|l| l.contains("older than the state's horizon"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("not matched at all if they arrived this late"),
        "{warning}"
    );
    assert!(warning.contains("guardduty: "), "{warning}");
    let summary: Value = stderr
        .lines()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("state").is_some())
        })
        .unwrap_or_else(|| panic!("no JSON summary: {stderr}"));
    let left_out = summary["state"]["before_horizon"].as_u64().unwrap();
    assert!(left_out >= 4, "{summary}");
    // The late attack's own finding is not written (what its records said of the group's
    // instances still reaches the graph: the later finding may list more members).
    let written = findings_file(&out);
    assert!(
        written.iter().all(|f| !id(f).contains("/2025-05-03T")),
        "{:?}",
        written.iter().map(id).collect::<Vec<_>>()
    );
    // An archived finding that old feeds no rule: it is not counted as left out.
    let archived = tmp.path().join("archived");
    std::fs::create_dir_all(&archived).unwrap();
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("guardduty-get-findings.json")).unwrap(),
    )
    .unwrap();
    for f in doc["findings"].as_array_mut().unwrap() {
        f["service"]["archived"] = json!(true);
    }
    std::fs::write(archived.join("findings.json"), doc.to_string()).unwrap();
    let run = correlate_with_state(&state, None, &archived)
        .args(["--summary", "json", "--dry-run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        !stderr.contains("older than the state's horizon"),
        "{stderr}"
    );
    // The text summary says it too.
    let text = correlate_with_state(&state, None, &dir).output().unwrap();
    let stderr = String::from_utf8(text.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "; {left_out} selected record(s) older than the horizon left out)"
        )),
        "{stderr}"
    );
}

/// A record of a written finding's group older than the finding's start, that a later run
/// reads (late, within the horizon), goes into the finding under the `Id` and `CreatedAt` it
/// was written with: one run would have opened the sequence at that record, but a finding in
/// Security Hub keeps its `Id` for life, and none is archived for it. For a GuardDuty finding
/// (the opener held back) and for a CloudTrail call (the opener left out, an earlier call
/// held back).
#[test]
fn a_late_record_older_than_a_written_findings_start_goes_into_it_under_its_id() {
    let dir = common::fixture("scenarios/compromised-instance-group/positive");
    let all = records(&dir);
    let is_type = |r: &Raw, t: &str| r.value["type"] == t;
    let is_call = |r: &Raw, name: &str| r.value["eventName"] == name;
    type Pick<'a> = &'a dyn Fn(&Raw) -> bool;
    let cases: [(&str, Pick, Pick); 2] = [
        (
            "the opening GuardDuty finding",
            &|r| is_type(r, "CryptoCurrency:EC2/BitcoinTool.B!DNS"),
            &|_| false,
        ),
        (
            "an earlier CloudTrail call",
            &|r| is_call(r, "CreateAccessKey"),
            &|r| is_type(r, "CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        ),
    ];
    for (name, late, left_out) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let kept: Vec<Raw> = all.iter().filter(|r| !left_out(r)).cloned().collect();
        let held: Vec<Raw> = kept.iter().filter(|r| late(r)).cloned().collect();
        let first: Vec<Raw> = kept.iter().filter(|r| !late(r)).cloned().collect();
        assert_eq!(held.len(), 1, "{name}");
        let (d1, d2) = (tmp.path().join("first"), tmp.path().join("late"));
        write_part(&d1, &first);
        write_part(&d2, &held);
        let mut state = State::new();
        let (w1, _) = split_runs(std::slice::from_ref(&d1), &mut state);
        assert_eq!(w1.len(), 1, "{name}: {:?}", w1.keys());
        let (id1, f1) = w1.iter().next().unwrap();
        assert!(
            held[0].time < state.sequences[0].start,
            "{name}: the late record is older than the finding's start"
        );
        let (w2, superseded) = split_runs(std::slice::from_ref(&d2), &mut state);
        assert_eq!(superseded, 0, "{name}");
        assert_eq!(w2.keys().collect::<Vec<_>>(), [id1], "{name}");
        let f2 = &w2[id1];
        assert_eq!(f2["RecordState"], "ACTIVE", "{name}");
        assert_eq!(f2["CreatedAt"], f1["CreatedAt"], "{name}");
        let signals = |f: &Value| {
            f["Detection"]["Sequence"]["Signals"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(signals(f2), signals(f1) + 1, "{name}");
        // One run over the same records opens it at the late record: another `Id`.
        let one = tmp.path().join("one");
        write_part(&one, &kept);
        let whole = single_run(&one);
        assert_eq!(whole.len(), 1, "{name}");
        assert_ne!(whole.keys().next().unwrap(), id1, "{name}");
    }
}

/// Writes the fixture records as two consecutive days of files.
fn two_days(tmp: &Path) -> (PathBuf, PathBuf) {
    let all = records(&common::fixture(""));
    let (a, b) = (tmp.join("day1"), tmp.join("day2"));
    // Day 1 ends with the main scenario (2025-05-02); the other cases come on day 2.
    let day2 = finding_correlator::time::parse_timestamp("2025-05-03T00:00:00Z").unwrap();
    let cut = all.iter().position(|r| r.time >= day2).unwrap();
    write_part(&a, &all[..cut]);
    write_part(&b, &all[cut..]);
    (a, b)
}

#[test]
fn the_state_a_run_leaves_shares_the_graph_statements_it_read() {
    // A scheduled run reads tens of thousands of graph statements and leaves nearly all of
    // them to the next run: the state it leaves holds the copies it read (one allocation
    // each), not clones (on the 1 M benchmark's slices the clones were 130 MiB of peak
    // memory). The saved text is the same either way.
    let tmp = tempfile::tempdir().unwrap();
    let (day1, day2) = two_days(tmp.path());
    let (rules, settings) = (rules(), settings());
    let mut state = State::new();
    for dir in [&day1, &day2] {
        let (_, next, _) = common::run_with_state(dir, &state, &rules, &settings);
        if dir == &day2 {
            let read: std::collections::HashMap<String, &Arc<_>> = state
                .graph
                .iter()
                .map(|s| (serde_json::to_string(&**s).unwrap(), s))
                .collect();
            let mut shared = 0;
            for s in &next.graph {
                if let Some(prior) = read.get(&serde_json::to_string(&**s).unwrap()) {
                    assert!(Arc::ptr_eq(prior, s), "a statement read was copied: {s:?}");
                    shared += 1;
                }
            }
            assert!(shared > 0, "day 2 keeps statements of day 1");
        }
        let text = String::from_utf8(next.to_json()).unwrap();
        state = State::from_json(&text, "test").expect("a saved state loads");
    }
}

/// `correlator correlate --state STATE [--asff OUT] INPUT`.
fn correlate_with_state(state: &Path, out: Option<&Path>, input: &Path) -> assert_cmd::Command {
    let mut cmd = correlator();
    cmd.args(["correlate", "--state"]).arg(state);
    if let Some(out) = out {
        cmd.arg("--asff").arg(out);
    }
    cmd.arg(input);
    cmd
}

fn findings_file(path: &Path) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["Findings"].as_array().unwrap().clone()
}

#[test]
fn cli_a_run_whose_output_fails_keeps_the_old_state_and_the_next_run_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (day1, day2) = two_days(tmp.path());
    let state = tmp.path().join("state.json");
    let out1 = tmp.path().join("out1.json");
    correlate_with_state(&state, Some(&out1), &day1)
        .assert()
        .success();
    let saved = std::fs::read(&state).unwrap();
    // The sink fails (its folder does not exist): exit 3, the state is untouched.
    correlate_with_state(
        &state,
        Some(&tmp.path().join("missing").join("out.json")),
        &day2,
    )
    .assert()
    .code(3)
    .stderr(predicates::str::contains("missing/out.json"));
    assert_eq!(std::fs::read(&state).unwrap(), saved);
    let out2 = tmp.path().join("out2.json");
    correlate_with_state(&state, Some(&out2), &day2)
        .assert()
        .success();
    let mut written = Written::new();
    for f in findings_file(&out1).into_iter().chain(findings_file(&out2)) {
        written.insert(id(&f), f);
    }
    let whole = single_run(&common::fixture(""));
    assert_eq!(written, whole);
}

#[test]
fn cli_dry_run_writes_outputs_but_no_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (day1, day2) = two_days(tmp.path());
    let state = tmp.path().join("state.json");
    let out = tmp.path().join("out.json");
    correlator()
        .args(["correlate", "--dry-run", "--state"])
        .arg(&state)
        .arg("--asff")
        .arg(&out)
        .arg(&day1)
        .assert()
        .success()
        .stderr(predicates::str::contains("state: dry run, nothing saved"));
    assert!(!state.exists());
    assert!(!findings_file(&out).is_empty());
    correlate_with_state(&state, None, &day1).assert().success();
    let saved = std::fs::read(&state).unwrap();
    let assert = correlator()
        .args(["correlate", "--dry-run", "--summary", "json", "--state"])
        .arg(&state)
        .arg("--asff")
        .arg(&out)
        .arg(&day2)
        .assert()
        .success();
    assert_eq!(std::fs::read(&state).unwrap(), saved);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["state"]["saved"], false);
    assert_eq!(summary["state"]["dry_run"], true);
    assert_eq!(
        summary["findings"]["written"].as_u64().unwrap() as usize,
        findings_file(&out).len()
    );
}

#[test]
fn cli_a_damaged_state_is_an_error_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    std::fs::write(
        &state,
        "{\"format\":\"finding-correlator-state\",\"version\":1,",
    )
    .unwrap();
    correlator()
        .args(["correlate", "--state"])
        .arg(&state)
        .arg("fixtures/")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("state.json").and(predicates::str::contains("damaged")));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{\"format\":\"finding-correlator-state\",\"version\":1,"
    );
}

#[test]
fn a_finding_whose_group_becomes_known_later_is_archived_in_favour_of_the_group_finding() {
    // Run 1: GuardDuty findings without their `aws:` system tags, and the role session's
    // calls: the instances' group is not known yet. Run 2: the Auto Scaling launches of the
    // same instances (earlier records, arriving late but within the horizon).
    let src = common::fixture("scenarios/compromised-instance-group/positive");
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, all) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("all"),
    );
    for d in [&run1, &run2, &all] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut gd: Value = serde_json::from_str(
        &std::fs::read_to_string(src.join("guardduty-get-findings.json")).unwrap(),
    )
    .unwrap();
    for f in gd["findings"].as_array_mut().unwrap() {
        let details = &mut f["resource"]["instanceDetails"];
        let tags = details["tags"].as_array_mut().unwrap();
        tags.retain(|t| !t["key"].as_str().unwrap().starts_with("aws:"));
    }
    let launches = "111122223333_CloudTrail_us-east-1_20250503T0605Z_BVFM0aBn89YJ143c.json";
    for d in [&run1, &all] {
        std::fs::write(d.join("gd.json"), gd.to_string()).unwrap();
        std::fs::copy(
            src.join("cloudtrail-session-calls.jsonl"),
            d.join("calls.jsonl"),
        )
        .unwrap();
    }
    for d in [&run2, &all] {
        std::fs::copy(src.join(launches), d.join("launches.json")).unwrap();
    }
    let whole = single_run(&all);
    assert_eq!(whole.len(), 1);
    let group_id = whole.keys().next().unwrap().clone();
    assert!(
        group_id.contains("/auto_scaling_group/shop-asg/"),
        "{group_id}"
    );

    let mut state = State::new();
    let (first, _) = split_runs(&[run1], &mut state);
    assert_eq!(first.len(), 1);
    let early_id = first.keys().next().unwrap().clone();
    assert_ne!(
        early_id, group_id,
        "without the launches the group is another"
    );
    let (second, superseded) = split_runs(&[run2], &mut state);
    assert_eq!(superseded, 1);
    assert_eq!(second.len(), 2, "{:?}", second.keys());
    assert_eq!(second[&group_id], whole[&group_id]);
    let archived = &second[&early_id];
    assert_eq!(archived["RecordState"], "ARCHIVED");
    assert!(
        archived["Description"]
            .as_str()
            .unwrap()
            .starts_with("Superseded")
    );
    assert!(archived["ProductFields"]["finding-correlator/superseded"].is_string());
    assert!(archived.get("Note").is_none(), "Note is the analysts'");
    assert!(archived["UpdatedAt"].as_str() >= first[&early_id]["UpdatedAt"].as_str());
    assert!(state.sequences.iter().all(|s| s.id != early_id));
}

/// A copy of a GuardDuty finding (of the `findings` array) as another finding: new `id` and
/// ARN, its activity and versions at `at`, optionally another type and instance.
fn finding_copy(
    f: &Value,
    id: &str,
    at: &str,
    kind: Option<&str>,
    instance: Option<&str>,
) -> Value {
    let mut f = f.clone();
    let old_id = f["id"].as_str().unwrap().to_string();
    f["id"] = json!(id);
    f["arn"] = json!(f["arn"].as_str().unwrap().replace(&old_id, id));
    for key in ["createdAt", "updatedAt"] {
        f[key] = json!(at);
    }
    for key in ["eventFirstSeen", "eventLastSeen"] {
        f["service"][key] = json!(at);
    }
    if let Some(k) = kind {
        f["type"] = json!(k);
    }
    if let Some(i) = instance {
        f["resource"]["instanceDetails"]["instanceId"] = json!(i);
        f["resource"]["instanceDetails"]["iamInstanceProfile"]["arn"] =
            json!("arn:aws:iam::111122223333:instance-profile/other-profile");
    }
    f
}

#[test]
fn issue_13_a_closed_finding_whose_signals_form_another_sequence_later_is_archived() {
    // Run 1: the compromised group's findings without their `aws:` tags and its session
    // calls (the group is not known: the sequence is keyed by what is), then, 30 hours later,
    // a finding about another instance: run 1 ends with the sequence closed, but within the
    // horizon (its signals are replayed). Run 2, within the lag: a port probe on one of the
    // instances, with its tags: the group is the Auto Scaling group now, and the replayed
    // signals form the group's sequence. One run finds only that one; the split must archive
    // the finding run 1 wrote, closed or not.
    let src = common::fixture("scenarios/compromised-instance-group/positive");
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2, all) = (
        tmp.path().join("run1"),
        tmp.path().join("run2"),
        tmp.path().join("all"),
    );
    for d in [&run1, &run2, &all] {
        std::fs::create_dir_all(d).unwrap();
    }
    let gd: Value = serde_json::from_str(
        &std::fs::read_to_string(src.join("guardduty-get-findings.json")).unwrap(),
    )
    .unwrap();
    let tagged = gd["findings"][0].clone();
    let mut untagged = gd.clone();
    for f in untagged["findings"].as_array_mut().unwrap() {
        let tags = f["resource"]["instanceDetails"]["tags"]
            .as_array_mut()
            .unwrap();
        tags.retain(|t| !t["key"].as_str().unwrap().starts_with("aws:"));
    }
    let mut elsewhere = finding_copy(
        &untagged["findings"][0],
        "c1053d0000000000000000000000e1se",
        "2025-05-04T14:00:00.000Z",
        None,
        Some("i-0e15e00000000009"),
    );
    elsewhere["resource"]["instanceDetails"]["networkInterfaces"] = json!([]);
    let probe = finding_copy(
        &tagged,
        "9e0be00000000000000000000000a5a5",
        "2025-05-04T14:30:00.000Z",
        Some("Recon:EC2/PortProbeUnprotectedPort"),
        None,
    );
    let first = json!({"findings": [untagged["findings"][0], untagged["findings"][1], elsewhere]});
    let second = json!({"findings": [probe]});
    for d in [&run1, &all] {
        std::fs::write(d.join("gd.json"), first.to_string()).unwrap();
        std::fs::copy(
            src.join("cloudtrail-session-calls.jsonl"),
            d.join("calls.jsonl"),
        )
        .unwrap();
    }
    for d in [&run2, &all] {
        std::fs::write(d.join("probe.json"), second.to_string()).unwrap();
    }
    let whole = single_run(&all);
    let group_ids: Vec<&String> = whole
        .keys()
        .filter(|k| k.contains("/auto_scaling_group/shop-asg/"))
        .collect();
    assert_eq!(group_ids.len(), 1, "{:?}", whole.keys());

    let mut state = State::new();
    let (early, _) = split_runs(&[run1], &mut state);
    let early_ids: Vec<String> = early
        .keys()
        .filter(|k| !whole.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(
        early_ids.len(),
        1,
        "run 1 keys the sequence otherwise: {:?}",
        early.keys()
    );
    let record = state
        .sequences
        .iter()
        .find(|r| r.id == early_ids[0])
        .expect("the sequence can still be replayed");
    assert_eq!(
        record.status,
        finding_correlator::state::SequenceStatus::Closed,
        "the case is a closed sequence"
    );
    let (later, superseded) = split_runs(&[run2], &mut state);
    assert_eq!(superseded, 1, "{:?}", later.keys());
    assert_eq!(later[&early_ids[0]]["RecordState"], "ARCHIVED");
    let mut last = early;
    last.extend(later);
    let active: Vec<&String> = last
        .iter()
        .filter(|(_, f)| f["RecordState"] != "ARCHIVED")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(active, whole.keys().collect::<Vec<_>>());
}

#[test]
fn the_state_stays_bounded_over_many_daily_runs() {
    // Sixty days of a CI role's nightly launches (new instances every night), run a day at a
    // time: graph statements expire after `graph_retention` (30 days), replayed signals after
    // the longest window, so the state stops growing.
    let tmp = tempfile::tempdir().unwrap();
    let mut state = State::new();
    let mut sizes = Vec::new();
    for day in 0..60u32 {
        let dir = tmp.path().join(format!("day{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let date = 1_744_243_200 + i64::from(day) * 86_400; // 2025-04-10
        let mut lines = String::new();
        for k in 0..3u32 {
            let t = finding_correlator::time::format_rfc3339((date + i64::from(k) * 60) * 1000);
            let items: Vec<Value> = (0..2)
                .map(|i| {
                    serde_json::json!({
                        "instanceId": format!("i-0{:016x}", day * 100 + k * 10 + i),
                        "instanceType": "c5.xlarge",
                        "imageId": "ami-0b5e1a00000000001",
                        "tagSet": {"items": [{"key": "aws:autoscaling:groupName", "value": "ci-asg"}]}
                    })
                })
                .collect();
            let record = serde_json::json!({
                "eventVersion": "1.10",
                "eventTime": t.replace(".000Z", "Z"),
                "eventSource": "ec2.amazonaws.com",
                "eventName": "RunInstances",
                "awsRegion": "us-east-1",
                "recipientAccountId": "777788880009",
                "eventID": format!("00000000-0000-4000-8000-{:012}", day * 10 + k),
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLECIROLE001:nightly",
                    "arn": "arn:aws:sts::777788880009:assumed-role/ci/nightly",
                    "accountId": "777788880009"
                },
                "responseElements": {"instancesSet": {"items": items}}
            });
            lines.push_str(&format!("{record}\n"));
        }
        std::fs::write(dir.join("ct.jsonl"), lines).unwrap();
        split_runs(&[dir], &mut state);
        sizes.push(state.to_json().len());
    }
    eprintln!(
        "state sizes by day: {sizes:?}; {} statements",
        state.graph.len()
    );
    assert!(
        state.graph.len() <= 31 * 3,
        "{} statements",
        state.graph.len()
    );
    assert!(
        sizes[59] <= sizes[40] + sizes[40] / 10,
        "the state keeps growing: day 40 {} bytes, day 60 {} bytes",
        sizes[40],
        sizes[59]
    );
    assert!(sizes[59] > sizes[5], "it did keep something");
}

#[test]
fn issue_16_what_records_said_about_an_instance_is_kept_while_records_name_it() {
    // With a 3-day `graph_retention`: two instances of two Auto Scaling groups are launched on
    // day 0; one calls AWS with its instance role every day after, the other is never named
    // again. Ten daily runs later the state still knows the first one's group (its launch is
    // kept while its calls name it: a call made with an instance role does not say the
    // group), and has let the second's launch go.
    let account = "777788880020";
    let settings = settings_with(|c| c.state.graph_retention = "3d".into());
    let (busy, quiet) = ("i-02000000000000b0b", "i-020000000000000a0");
    let state = daily_runs(
        &settings,
        10,
        |day, at| {
            // Every day a CI job launches an instance of its own (which moves the runs' time on).
            let ci = format!("i-03000000000000d{day:02}");
            let id = |n: u32| format!("20000000-0000-4000-8000-0000000{day:02}{n:03}");
            let mut records = vec![launch_call(
                account,
                &[ci.as_str()],
                "ci-asg",
                &at(1),
                &id(0),
            )];
            if day == 0 {
                records.push(launch_call(account, &[busy], "busy-asg", &at(1), &id(1)));
                records.push(launch_call(account, &[quiet], "quiet-asg", &at(1), &id(2)));
            } else {
                records.push(describe_call(
                    account,
                    ("busy-role", "AROAEXAMPLEBUSYROLE20"),
                    busy,
                    &at(1),
                    &id(100),
                    &format!("ASIAEXAMPLEBUSY{day:05}"),
                ));
            }
            records
        },
        |day, run, _, _| {
            if day == 9 {
                assert_grouped_in(run, busy, "busy-asg");
            }
        },
    );
    let launched: Vec<&str> = state
        .graph
        .iter()
        .flat_map(|s| s.instances.iter().filter(|i| i.launched))
        .map(|i| i.instance_id.as_str())
        .collect();
    assert!(
        launched.contains(&busy),
        "launches kept after day 9: {launched:?}"
    );
    assert!(
        !launched.contains(&quiet),
        "launches kept after day 9: {launched:?}"
    );
    assert!(
        !launched.contains(&"i-03000000000000d00"),
        "launches kept after day 9: {launched:?}"
    );
}

#[test]
fn issue_16_what_records_said_about_a_terminated_instance_is_let_go_after_its_termination() {
    // `terminated_retention` 2 days, the 30-day `graph_retention` by default. Auto Scaling's
    // fleet-asg launches A (runs all along: its role calls AWS daily, a failed termination
    // on day 3 does not end it), B (terminated on day 1, a failed stop after; its role's
    // credentials are used once more on day 2) and C and D in one call (C terminated on day
    // 2, D on day 8); A's role launches E (terminated on day 2); spot-asg launches F (a Spot
    // instance EC2 interrupts on day 1: a `BidEvictedEvent`). A CI job
    // launches an instance every day and terminates it the same day. A state with one run a
    // day keeps what records said of an instance for two days after its termination, then
    // lets it go; before the change, every launch stayed the whole 30 days (terminations
    // named the instances once more).
    let account = "777788880021";
    let settings = settings_with(|c| c.state.terminated_retention = "2d".into());
    let (a, b, c, d, e, f) = (
        "i-0210000000000000a",
        "i-0210000000000000b",
        "i-0210000000000000c",
        "i-0210000000000000d",
        "i-0210000000000000e",
        "i-0210000000000000f",
    );
    let mut kept_by_day = Vec::new();
    daily_runs(
        &settings,
        12,
        |day, at| {
            let id = |n: u32| format!("21000000-0000-4000-8000-0000{day:02}{n:06}");
            let ci = format!("i-03100000000000d{day:02}");
            let mut records = vec![
                launch_call(account, &[ci.as_str()], "ci-asg", &at(1), &id(0)),
                terminate_call(account, &[ci.as_str()], None, &at(6), &id(1)),
            ];
            match day {
                0 => {
                    records.extend([
                        launch_call(account, &[a], "fleet-asg", &at(2), &id(2)),
                        launch_call(account, &[b], "fleet-asg", &at(2), &id(10)),
                        launch_call(account, &[c, d], "fleet-asg", &at(3), &id(3)),
                        launch_call(account, &[f], "spot-asg", &at(3), &id(14)),
                    ]);
                    // A launches E with its role (a controller, as Karpenter or a CI plugin).
                    records.push(launch_by_instance_role(
                        account,
                        ("fleet-role", "AROAEXAMPLEFLEETROL21"),
                        a,
                        (e, "c5.xlarge"),
                        &at(3),
                        &id(12),
                    ));
                }
                1 => {
                    records.push(terminate_call(account, &[b], None, &at(6), &id(4)));
                    records.push(spot_interruption(account, f, &at(6), &id(15)));
                    // A stop of the same instance by the same role after it (failed: it is gone)
                    // does not take the termination's place.
                    let mut stop = terminate_call(
                        account,
                        &[b],
                        Some("IncorrectInstanceState"),
                        &at(7),
                        &id(11),
                    );
                    stop["eventName"] = json!("StopInstances");
                    records.push(stop);
                }
                2 => {
                    records.push(terminate_call(account, &[c], None, &at(6), &id(5)));
                    records.push(terminate_call(account, &[e], None, &at(6), &id(13)));
                    records.push(describe_call(
                        account,
                        ("fleet-role", "AROAEXAMPLEFLEETROL21"),
                        b,
                        &at(4),
                        &id(6),
                        "ASIAEXAMPLEFLEETB0002",
                    ));
                }
                3 => records.push(terminate_call(
                    account,
                    &[a],
                    Some("Client.UnauthorizedOperation"),
                    &at(6),
                    &id(7),
                )),
                8 => records.push(terminate_call(account, &[d], None, &at(6), &id(8))),
                _ => {}
            }
            if day > 0 {
                records.push(describe_call(
                    account,
                    ("fleet-role", "AROAEXAMPLEFLEETROL21"),
                    a,
                    &at(4),
                    &id(9),
                    &format!("ASIAEXAMPLEFLEETA{day:04}"),
                ));
            }
            records
        },
        |day, run, _, state| {
            if day == 2 {
                // Within the two days, B's stolen credentials are still B's, of fleet-asg.
                assert_grouped_in(run, b, "fleet-asg");
            }
            kept_by_day.push(instances_kept(state));
        },
    );
    let kept = |day: usize, id: &str| kept_by_day[day].contains(id);
    // Terminations at 06:00, everything else before: one terminated on day T is kept through
    // day T + 2's run and let go by day T + 3's.
    // A runs: its launch is kept, and the failed termination ended nothing.
    assert!((0..12).all(|day| kept(day, a)), "{kept_by_day:?}");
    // B: terminated on day 1, named on day 2, let go two days after its termination.
    assert!(kept(2, b) && kept(3, b), "{kept_by_day:?}");
    assert!(!kept(4, b) && !kept(11, b), "{kept_by_day:?}");
    // F, a Spot instance EC2 interrupted on day 1: as B.
    assert!(kept(3, f) && !kept(4, f), "{kept_by_day:?}");
    // E, launched by A's role and terminated on day 2: let go although A runs on.
    assert!(kept(4, e) && !kept(5, e), "{kept_by_day:?}");
    // C and D: their launch (and C's termination) is kept while D runs, let go two days
    // after D's termination.
    assert!(kept(7, c) && kept(9, d), "{kept_by_day:?}");
    assert!(!kept(11, c) && !kept(11, d), "{kept_by_day:?}");
    // The CI instances of the last two days only.
    let ci: Vec<&String> = kept_by_day[11]
        .iter()
        .filter(|i| i.starts_with("i-031"))
        .collect();
    assert_eq!(
        ci,
        [
            "i-03100000000000d09",
            "i-03100000000000d10",
            "i-03100000000000d11"
        ]
    );
}

#[test]
fn issue_16_a_terminated_instance_is_kept_while_a_signal_still_matched_names_it() {
    // `terminated_retention` 1 hour. X is launched on day 0; on day 3 its role's credentials
    // launch another instance (a signal the rules select, matched again by the next runs
    // while its windows are open) and X is terminated an hour later. The next day's state
    // still holds X's launch (the windows of that signal group by it) until the signal has
    // left them (the longest window, 48 hours, and the hour of lag), then lets it go.
    let account = "777788880022";
    let settings = settings_with(|c| c.state.terminated_retention = "1h".into());
    let x = "i-0220000000000000a";
    let mut holds_x = Vec::new();
    daily_runs(
        &settings,
        7,
        |day, at| {
            let id = |n: u32| format!("22000000-0000-4000-8000-0000{day:02}{n:06}");
            let ci = format!("i-03200000000000d{day:02}");
            let mut records = vec![launch_call(
                account,
                &[ci.as_str()],
                "ci-asg",
                &at(1),
                &id(0),
            )];
            if day == 0 {
                records.push(launch_call(account, &[x], "fleet-asg", &at(2), &id(1)));
            }
            if day == 3 {
                records.push(launch_by_instance_role(
                    account,
                    ("fleet-role", "AROAEXAMPLEFLEETROL22"),
                    x,
                    ("i-0220000000000000b", "p3.16xlarge"),
                    &at(5),
                    &id(2),
                ));
                records.push(terminate_call(account, &[x], None, &at(6), &id(3)));
            }
            records
        },
        |_, _, _, state| {
            holds_x.push(state.graph.iter().chain(&state.signals).any(|s| {
                s.instances.iter().any(|i| {
                    i.instance_id == x && i.auto_scaling_group.as_deref() == Some("fleet-asg")
                })
            }));
        },
    );
    assert_eq!(
        holds_x,
        [true, true, true, true, true, true, false],
        "whether the state holds X's launch after each day (matched again until day 2, \
         graph statement after)"
    );
}

/// The default settings with `edit` made to the configuration.
fn settings_with(edit: impl FnOnce(&mut Config)) -> Settings {
    let mut config = Config::default();
    edit(&mut config);
    config.validate().expect("valid settings")
}

#[test]
fn a_closed_finding_is_not_written_again_as_its_auto_scaling_group_scales() {
    // web-asg runs A, B and C; X ran an hour that morning and was terminated; Y too, but its
    // termination was sent again during the attack (the latest end counts). GuardDuty
    // reports cryptomining on A and command-and-control on B that day (one sequence of
    // compromised-instance-group, closed 24 hours later). Then, a run a day, Auto Scaling
    // scales out (a new member each morning) and in (B on day 1, C on day 3, each new one the
    // next day). The finding lists the members that ran while the attack did (A, B, C, Y,
    // not X, not the later ones), and is written once: before, each run listed the group's members
    // of the moment, so a closed finding was written again every time its group scaled (on
    // the steady benchmark fleet, some 850 findings every 15 minutes). With a one-hour
    // `terminated_retention`, what records said of an ended member is kept while a run may
    // write the finding that lists it again (else it drops out of the finding, which is
    // written again for that). One run over all days writes the same finding.
    let account = "777788880023";
    let template = finding_template();
    let member = |n: u32| format!("i-023000000000000{n:02x}");
    let (a, b, c, x, y) = (
        member(0xa),
        member(0xb),
        member(0xc),
        member(0xf),
        member(0xe),
    );
    let records = |day: u32, at: &dyn Fn(i64) -> String| -> Vec<Value> {
        let id = |n: u32| format!("23000000-0000-4000-8000-0000{day:02}{n:06}");
        let mut records = Vec::new();
        if day == 0 {
            records.extend(launch_each(account, &[&a, &b, &c, &x, &y], &at(1), |n| {
                id(10 + n)
            }));
            records.push(terminate_call(account, &[&x], None, &at(2), &id(1)));
            // Y's termination is sent again during the attack: the latest end counts.
            records.push(terminate_call(account, &[&y], None, &at(2), &id(4)));
            records.push(terminate_call(account, &[&y], None, &at(11), &id(5)));
            for (name, kind, on, hour) in [
                ("23crypto", "CryptoCurrency:EC2/BitcoinTool.B!DNS", &a, 10),
                ("23c2", "Backdoor:EC2/C&CActivity.B!DNS", &b, 12),
            ] {
                let t = at(hour);
                records.push(gd_finding(
                    &template,
                    account,
                    name,
                    (kind, 8),
                    on,
                    Some("web-asg"),
                    (&t, &t),
                    1,
                ));
            }
        } else {
            let new = member(0x10 + day);
            records.push(launch_call(account, &[&new], "web-asg", &at(3), &id(2)));
            let old = match day {
                1 => b.clone(),
                3 => c.clone(),
                _ => member(0x10 + day - 1),
            };
            records.push(terminate_call(account, &[&old], None, &at(4), &id(3)));
        }
        records
    };
    let settings = settings_with(|c| c.state.terminated_retention = "1h".into());
    let mut written: Vec<(u32, Value)> = Vec::new();
    let mut kept_by_day: Vec<BTreeSet<String>> = Vec::new();
    let days = 9;
    daily_runs(&settings, days, records, |day, _, changes, state| {
        for f in &changes.write {
            written.push((day, f.value()));
        }
        kept_by_day.push(instances_kept(state));
    });
    // What records said of B (ended on day 1) is kept while a run may write the finding
    // that lists it again (through day 3's run), then let go; of C (ended on day 3), by day
    // 5's (an ended instance is kept at least the longest window plus the lag: 25 hours);
    // A runs on.
    let kept = |day: usize, id: &str| kept_by_day[day].contains(id);
    assert!(kept(3, &b) && !kept(4, &b), "{kept_by_day:?}");
    assert!(kept(4, &c) && !kept(5, &c), "{kept_by_day:?}");
    assert!(
        (0..days as usize).all(|day| kept(day, &a)),
        "{kept_by_day:?}"
    );
    let attack: Vec<&(u32, Value)> = written
        .iter()
        .filter(|(_, f)| {
            f["GeneratorId"]
                .as_str()
                .unwrap()
                .contains("compromised-instance-group")
        })
        .collect();
    assert_eq!(
        attack.iter().map(|(day, _)| *day).collect::<Vec<_>>(),
        [0],
        "written on these days: {:?}",
        attack
            .iter()
            .map(|(d, f)| (d, &f["Id"], &f["UpdatedAt"], &f["RecordState"]))
            .collect::<Vec<_>>()
    );
    let finding = &attack[0].1;
    assert_eq!(
        listed_instances(finding),
        BTreeSet::from([a.clone(), b.clone(), c.clone(), y.clone()])
    );
    // One run over every day writes the same finding, also one that keeps every copy of a
    // record for a graph export (`--graph`).
    let tmp = tempfile::tempdir().unwrap();
    let all: Vec<Value> = (0..days)
        .flat_map(|day| records(day, &|hour| day_at(day, hour)))
        .collect();
    write_records(tmp.path(), &all);
    let whole = single_run_with(tmp.path(), &settings);
    assert_eq!(&whole[&id(finding)], finding);
    let rules = rules();
    let run = pipeline::correlate(
        &[tmp.path().to_path_buf()],
        &settings,
        rules.clone(),
        true,
        None,
    );
    let exported: Written = asff::findings(&run.sequences, &rules, &Writer::default())
        .into_iter()
        .map(|f| (id(&f), f))
        .collect();
    assert_eq!(&exported[&id(finding)], finding);
}

#[test]
fn a_member_that_ended_before_a_sequence_formed_is_listed_alike_by_one_run_and_daily_runs() {
    // web-asg runs A and B, and Z until it is terminated. GuardDuty reports cryptomining on
    // A, first seen on day 0 and seen again on day 5 (one finding, updated), and, in a
    // chain, also new cryptomining findings on A every day; command-and-control on B
    // on day 5 makes the sequence (of the findings within its 24-hour window). Daily runs
    // let go of Z some time after its end, before the sequence forms; one run knows Z to
    // the end. Both must list the same members: (1) Z ended on day 1, before any signal of
    // the sequence (the updated finding's first sighting lies before, but not its time);
    // (2) the same with the chain (findings at noon and 23:00); (3) Z ended on day 4 at
    // 13:00, after the chain's noon finding that opens the sequence, with a one-hour
    // `terminated_retention` and a later finding that day: the state keeps Z the longest
    // window plus the lag all the same.
    let account = "777788880024";
    let template = finding_template();
    let member = |n: u32| format!("i-024000000000000{n:02x}");
    let (a, b, z) = (member(0xa), member(0xb), member(0xf));
    for (case, chain, retention, (end_day, end_hour), z_listed) in [
        (1, false, "2d", (1, 3), false),
        (2, true, "2d", (1, 3), false),
        (3, true, "1h", (4, 13), true),
    ] {
        let records = |day: u32, at: &dyn Fn(i64) -> String| -> Vec<Value> {
            let id = |n: u32| format!("24000000-0000-4000-8000-0000{day:02}{n:06}");
            let mut records = Vec::new();
            let gd = |name: &str, kind: &str, on: &str, (first, last): (&str, &str)| {
                gd_finding(
                    &template,
                    account,
                    name,
                    (kind, 8),
                    on,
                    Some("web-asg"),
                    (first, last),
                    1,
                )
            };
            let crypto = "CryptoCurrency:EC2/BitcoinTool.B!DNS";
            if day == 0 {
                records.extend(launch_each(account, &[&a, &b, &z], &at(1), |n| id(10 + n)));
                records.push(gd("24crypto", crypto, &a, (&at(2), &at(2))));
            }
            if day == end_day {
                records.push(terminate_call(account, &[&z], None, &at(end_hour), &id(1)));
            }
            if chain && day > 0 {
                records.push(gd(
                    &format!("24crypto{day}"),
                    crypto,
                    &a,
                    (&at(12), &at(12)),
                ));
                records.push(gd(&format!("24late{day}"), crypto, &a, (&at(23), &at(23))));
            }
            if day == 5 {
                records.push(gd("24crypto", crypto, &a, (&day_at(0, 2), &at(9))));
                let c2 = "Backdoor:EC2/C&CActivity.B!DNS";
                records.push(gd("24c2", c2, &b, (&at(10), &at(10))));
            }
            records
        };
        let settings = settings_with(|c| c.state.terminated_retention = retention.into());
        let days = 7;
        let mut written = Written::new();
        daily_runs(&settings, days, records, |_, _, changes, _| {
            for f in &changes.write {
                let f = f.value();
                written.insert(id(&f), f);
            }
        });
        let tmp = tempfile::tempdir().unwrap();
        // One run reads each finding's newest version only.
        let mut all: Vec<Value> = Vec::new();
        for day in 0..days {
            for r in records(day, &|hour| day_at(day, hour)) {
                all.retain(|x| x.get("id").is_none() || x.get("id") != r.get("id"));
                all.push(r);
            }
        }
        write_records(tmp.path(), &all);
        let whole = single_run_with(tmp.path(), &settings);
        let group: Vec<(&String, &Value)> = whole
            .iter()
            .filter(|(k, _)| k.contains("compromised-instance-group"))
            .collect();
        assert_eq!(group.len(), 1, "case {case}: {:?}", whole.keys());
        let (k, f) = group[0];
        assert_eq!(
            listed_instances(f).contains(&z),
            z_listed,
            "case {case}: {:?}",
            listed_instances(f)
        );
        assert_eq!(
            listed_instances(&written[k]),
            listed_instances(f),
            "case {case}: {k}: daily runs, then one run"
        );
        assert_eq!(&written[k], f, "case {case}: {k}");
    }
}

/// One `RunInstances` per instance into web-asg, at `time`, the n-th with event id `id(n)`.
fn launch_each(account: &str, ids: &[&str], time: &str, id: impl Fn(u32) -> String) -> Vec<Value> {
    (0u32..)
        .zip(ids)
        .map(|(n, i)| launch_call(account, &[i], "web-asg", time, &id(n)))
        .collect()
}

/// The instances what a state keeps describes (its graph statements, and the signals the
/// next run matches again).
fn instances_kept(state: &State) -> BTreeSet<String> {
    state
        .graph
        .iter()
        .chain(&state.signals)
        .flat_map(|s| s.instances.iter().map(|i| i.instance_id.to_string()))
        .collect()
}

/// The instances a finding lists among its resources.
fn listed_instances(f: &Value) -> BTreeSet<String> {
    f["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["Type"] == "AwsEc2Instance")
        .map(|r| r["Id"].as_str().unwrap().rsplit('/').next().unwrap().into())
        .collect()
}

/// Day `day` (from 2025-05-01) at `hour`, as CloudTrail writes times.
fn day_at(day: u32, hour: i64) -> String {
    finding_correlator::time::format_rfc3339(
        (1_746_057_600 + i64::from(day) * 86_400 + hour * 3_600) * 1000,
    )
    .replace(".000Z", "Z")
}

/// One `--state` run a day from 2025-05-01, `days` days, each over the records (CloudTrail
/// events, GuardDuty findings) `records(day, at)` makes (`at(hour)` is [`day_at`] that day),
/// the state saved and loaded between runs; `after(day, run, changes, state)` sees each run,
/// what it wrote and the state it left.
fn daily_runs(
    settings: &Settings,
    days: u32,
    mut records: impl FnMut(u32, &dyn Fn(i64) -> String) -> Vec<Value>,
    mut after: impl FnMut(u32, &pipeline::CorrelateRun, &incremental::Changes, &State),
) -> State {
    let tmp = tempfile::tempdir().unwrap();
    let rules = rules();
    let mut state = State::new();
    for day in 0..days {
        let dir = tmp.path().join(format!("day{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let at = |hour: i64| day_at(day, hour);
        write_records(&dir, &records(day, &at));
        let (run, next, changes) = common::run_with_state(&dir, &state, &rules, settings);
        let text = String::from_utf8(next.to_json()).unwrap();
        state = State::from_json(&text, "test").expect("a saved state loads");
        after(day, &run, &changes, &state);
    }
    state
}

/// Writes CloudTrail events to `ct.jsonl` and GuardDuty findings to `gd.jsonl` in `dir`.
fn write_records(dir: &Path, records: &[Value]) {
    let (ct, gd): (Vec<&Value>, Vec<&Value>) =
        records.iter().partition(|r| r.get("eventTime").is_some());
    for (name, part) in [("ct.jsonl", ct), ("gd.jsonl", gd)] {
        let lines: String = part.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(dir.join(name), lines).unwrap();
    }
}

/// Asserts that the run's graph puts instance `id` in a group named `group`.
fn assert_grouped_in(run: &pipeline::CorrelateRun, id: &str, group: &str) {
    let found = run
        .graph
        .group_of(&finding_correlator::signal::EntityId::new(
            finding_correlator::signal::EntityKind::Instance,
            id,
        ));
    assert!(
        found.is_some_and(|g| g.to_string().contains(group)),
        "{id}'s group: {found:?}, not {group}"
    );
}

/// A `RunInstances` call by a CI role launching `ids` into the Auto Scaling group `group`.
fn launch_call(account: &str, ids: &[&str], group: &str, time: &str, event_id: &str) -> Value {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "instanceId": id,
                "instanceType": "c5.xlarge",
                "imageId": "ami-0b5e1a00000000020",
                "tagSet": {"items": [{"key": "aws:autoscaling:groupName", "value": group}]}
            })
        })
        .collect();
    json!({
        "eventVersion": "1.10",
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "eventID": event_id,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLECIROLE020:deploy",
            "arn": format!("arn:aws:sts::{account}:assumed-role/ci/deploy"),
            "accountId": account
        },
        "responseElements": {"instancesSet": {"items": items}}
    })
}

/// A `RunInstances` made with instance `launcher`'s role credentials, launching one instance
/// (`launched`: its id and type).
fn launch_by_instance_role(
    account: &str,
    role: (&str, &str),
    launcher: &str,
    (id, instance_type): (&str, &str),
    time: &str,
    event_id: &str,
) -> Value {
    let mut record = describe_call(
        account,
        role,
        launcher,
        time,
        event_id,
        "ASIAEXAMPLELAUNCHER1",
    );
    record["eventName"] = json!("RunInstances");
    record["responseElements"] = json!({"instancesSet": {"items": [{
        "instanceId": id,
        "instanceType": instance_type,
        "imageId": "ami-0b5e1a00000000021"
    }]}});
    record
}

/// EC2's `BidEvictedEvent`: it interrupted the Spot instance `id` (a service event, the shape
/// the EC2 User Guide shows: no caller but EC2, the instances in `serviceEventDetails`).
fn spot_interruption(account: &str, id: &str, time: &str, event_id: &str) -> Value {
    json!({
        "eventVersion": "1.05",
        "userIdentity": {"accountId": account, "invokedBy": "ec2.amazonaws.com"},
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "userAgent": "ec2.amazonaws.com",
        "sourceIPAddress": "ec2.amazonaws.com",
        "eventName": "BidEvictedEvent",
        "awsRegion": "us-east-1",
        "eventID": event_id,
        "eventType": "AwsServiceEvent",
        "recipientAccountId": account,
        "RequestParameters": null,
        "ResponseElements": null,
        "serviceEventDetails": {"instanceIdSet": [id]}
    })
}

/// A `TerminateInstances` call by Auto Scaling's service-linked role, failed with `error`.
fn terminate_call(
    account: &str,
    ids: &[&str],
    error: Option<&str>,
    time: &str,
    event_id: &str,
) -> Value {
    let items: Vec<Value> = ids.iter().map(|id| json!({ "instanceId": id })).collect();
    let mut record = json!({
        "eventVersion": "1.10",
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "TerminateInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "eventID": event_id,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEASGSLR0021:AutoScaling",
            "arn": format!(
                "arn:aws:sts::{account}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
            ),
            "accountId": account,
            "invokedBy": "autoscaling.amazonaws.com"
        },
        "requestParameters": {"instancesSet": {"items": items}}
    });
    if let Some(e) = error {
        record["errorCode"] = json!(e);
        record["errorMessage"] = json!("You are not authorized to perform this operation.");
    }
    record
}

#[test]
fn cli_a_run_killed_at_any_point_leaves_a_usable_state_and_the_next_run_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (day1, day2) = two_days(tmp.path());
    let base = tmp.path().join("base.json");
    correlate_with_state(&base, None, &day1).assert().success();
    let before = std::fs::read(&base).unwrap();
    // Day 2 uninterrupted: what the next run must write.
    let clean = tmp.path().join("clean.json");
    let clean_out = tmp.path().join("clean-out.json");
    std::fs::copy(&base, &clean).unwrap();
    let started = std::time::Instant::now();
    correlate_with_state(&clean, Some(&clean_out), &day2)
        .assert()
        .success();
    let took = started.elapsed().as_millis() as u64;
    let want = findings_file(&clean_out);
    let after_clean = std::fs::read(&clean).unwrap();
    // Kills spread over the whole run as long as a clean one takes (on a slower or faster
    // machine alike), from the start to well after its end: reading, matching, writing the
    // findings, saving.
    let mut delays: Vec<u64> = vec![0, 2, 5];
    delays.extend((1..=19).map(|k| took * k / 20));
    delays.extend([took, took * 3]);
    let mut outcomes = (0, 0);
    for (i, delay_ms) in delays.into_iter().enumerate() {
        let state = tmp.path().join(format!("state{i}.json"));
        std::fs::copy(&base, &state).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_correlator"))
            .args(["correlate", "--log", "error", "--state"])
            .arg(&state)
            .arg("--asff")
            .arg(tmp.path().join(format!("killed{i}.json")))
            .arg(&day2)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        // Whenever it died, the state is the old one or the complete new one.
        let now = std::fs::read(&state).unwrap();
        assert!(
            now == before || now == after_clean,
            "killed after {delay_ms} ms: the state is neither the old nor the new one"
        );
        // The next run writes everything the interrupted one may not have.
        let out = tmp.path().join(format!("next{i}.json"));
        correlate_with_state(&state, Some(&out), &day2)
            .assert()
            .success();
        eprintln!(
            "killed after {delay_ms} ms: {}",
            if now == before {
                "before the save"
            } else {
                "after the save"
            }
        );
        if now == before {
            outcomes.0 += 1;
            assert_eq!(findings_file(&out), want, "killed after {delay_ms} ms");
        } else {
            outcomes.1 += 1;
            assert!(findings_file(&out).is_empty(), "the run had finished");
        }
        let got = std::fs::read(&state).unwrap();
        if now == before {
            assert!(
                got == after_clean,
                "killed after {delay_ms} ms: the completed state differs from a clean run's"
            );
        } else {
            // The input was read twice: only the records-read counters moved.
            let strip = |b: &[u8]| {
                let mut v: Value = crate::common::state_value(b);
                for c in v["checkpoints"].as_object_mut().unwrap().values_mut() {
                    c.as_object_mut().unwrap().remove("records");
                }
                v
            };
            assert_eq!(
                strip(&got),
                strip(&after_clean),
                "killed after {delay_ms} ms"
            );
        }
    }
    // Both fates happened: some runs died before their save, some after it.
    assert!(
        outcomes.0 > 0 && outcomes.1 > 0,
        "{outcomes:?} (before, after) of kills over a {took} ms run"
    );
}

#[test]
fn cli_two_runs_on_one_state_do_not_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let store = finding_correlator::state::FileStore::new(&state);
    let held = store.lock().unwrap();
    correlator()
        .args(["correlate", "--state"])
        .arg(&state)
        .arg("fixtures/")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("in use by another run"));
    assert!(!state.exists());
    drop(held);
    correlator()
        .args(["correlate", "--state"])
        .arg(&state)
        .arg("fixtures/")
        .assert()
        .success();
}

#[test]
fn a_finding_that_changes_without_a_new_signal_still_moves_its_updated_at_forward() {
    // Run 1 lacks the Auto Scaling launch of shop-asg's third member; run 2 brings it (an
    // earlier record, within the horizon): the finding's resources grow, its signals do not.
    let src = common::fixture("scenarios/compromised-instance-group/positive");
    let tmp = tempfile::tempdir().unwrap();
    let (run1, run2) = (tmp.path().join("run1"), tmp.path().join("run2"));
    std::fs::create_dir_all(&run1).unwrap();
    std::fs::create_dir_all(&run2).unwrap();
    let launches = "111122223333_CloudTrail_us-east-1_20250503T0605Z_BVFM0aBn89YJ143c.json";
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join(launches)).unwrap()).unwrap();
    let third = doc["Records"].as_array_mut().unwrap().pop().unwrap();
    let third_id = third["responseElements"]["instancesSet"]["items"][0]["instanceId"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(run1.join("launches.json"), doc.to_string()).unwrap();
    std::fs::write(
        run2.join("launch.json"),
        json!({ "Records": [third] }).to_string(),
    )
    .unwrap();
    for f in [
        "guardduty-get-findings.json",
        "cloudtrail-session-calls.jsonl",
    ] {
        std::fs::copy(src.join(f), run1.join(f)).unwrap();
    }
    let mut state = State::new();
    let (first, _) = split_runs(&[run1], &mut state);
    assert_eq!(first.len(), 1);
    let (id, f1) = first.iter().next().unwrap();
    assert!(!f1.to_string().contains(&third_id));
    let (second, _) = split_runs(&[run2], &mut state);
    let f2 = &second[id];
    assert!(
        f2.to_string().contains(&third_id),
        "the third member joined the resources"
    );
    assert_eq!(signal_count(f2), signal_count(f1), "no new signal");
    let t1 = finding_correlator::time::parse_timestamp(f1["UpdatedAt"].as_str().unwrap()).unwrap();
    let t2 = finding_correlator::time::parse_timestamp(f2["UpdatedAt"].as_str().unwrap()).unwrap();
    assert_eq!(t2, t1 + 1, "one millisecond later than the version written");
    // Nothing new: nothing written, and the next change moves on from there.
    let (third_run, _) = split_runs(&[tmp.path().join("run2")], &mut state);
    assert!(third_run.is_empty());
}

#[test]
fn issue_14_the_main_attack_keeps_one_id_for_life_when_run_record_by_record() {
    // The main scenario, one run per record: two rules' sequences appear run after run and
    // roll up into one finding. Every version written is that finding, under one Id: nothing
    // in Security Hub changes identity, nothing is archived, and the end equals one run.
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main");
    for sub in ["cloudtrail", "guardduty", "asff"] {
        let mut files = Vec::new();
        input_files(&common::fixture(sub), &mut files);
        for (i, f) in files.iter().enumerate() {
            let to = main.join(sub);
            std::fs::create_dir_all(&to).unwrap();
            let name = format!("{i}-{}", f.file_name().unwrap().to_string_lossy());
            std::fs::copy(f, to.join(name)).unwrap();
        }
    }
    let whole = single_run(&main);
    assert_eq!(whole.len(), 1, "{:?}", whole.keys());
    let all = records(&main);
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..all.len())
        .map(|i| {
            let d = tmp.path().join(format!("run{i}"));
            write_part(&d, &all[i..i + 1]);
            d
        })
        .collect();
    let mut state = State::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut last = None;
    for d in &dirs {
        let (written, superseded) = split_runs(std::slice::from_ref(d), &mut state);
        assert_eq!(superseded, 0, "nothing archived");
        for (id, f) in written {
            assert_eq!(f["RecordState"], "ACTIVE");
            ids.insert(id);
            last = Some(f);
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let last = last.expect("written");
    assert_eq!(&last, whole.values().next().unwrap());
    assert_eq!(
        last["ProductFields"]["finding-correlator/absorbed-rules"]
            .as_str()
            .map(|r| r.starts_with("instance-credentials-launch-compute")),
        Some(true)
    );
}

/// A run whose records are all read and none kept (a quiet 15 minutes of calls no rule
/// takes) saves a state the next run reads: the source's checkpoint counts the records and
/// names no newest time. (Earlier builds saved the earliest time there is, which no run could
/// read back; such a state is read as naming none.)
#[test]
fn a_run_that_keeps_no_record_of_a_source_saves_a_state_the_next_run_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut record: Value = serde_json::from_str(&read_text(&common::fixture(
        "cloudtrail/single-record.json",
    )))
    .unwrap();
    record["eventSource"] = "s3.amazonaws.com".into();
    record["eventName"] = "ListBuckets".into();
    record["userIdentity"] = serde_json::json!({
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEREADER001",
        "arn": "arn:aws:iam::111122223333:user/reader",
        "accountId": "111122223333",
        "accessKeyId": "AKIAEXAMPLEREADER001",
        "userName": "reader",
    });
    for key in ["requestParameters", "responseElements"] {
        record.as_object_mut().unwrap().remove(key);
    }
    let input = tmp.path().join("quiet.json");
    std::fs::write(&input, record.to_string()).unwrap();
    let state = tmp.path().join("state.json");
    for run in 1..=2 {
        correlate_with_state(&state, None, &input)
            .assert()
            .success();
        let doc = common::state_value(&std::fs::read(&state).unwrap());
        let cp = &doc["checkpoints"]["cloudtrail"];
        assert_eq!(cp["records"], run, "{doc}");
        assert!(cp["newest"].is_null(), "run {run}: {cp}");
    }

    // A state an earlier build saved so (version 6, plain JSON) is read, as naming no newest
    // time.
    let mut doc = common::state_value(&std::fs::read(&state).unwrap());
    doc["version"] = 6.into();
    doc["checkpoints"]["cloudtrail"]["newest"] = "-292275055-05-16T16:47:04.192Z".into();
    std::fs::write(&state, doc.to_string()).unwrap();
    correlate_with_state(&state, None, &input)
        .assert()
        .success();
}

#[test]
fn issue_16_steady_activity_leaves_the_state_level_after_two_weeks() {
    // Thirty days of the same estate at work, run a day at a time: four instances of one
    // Auto Scaling group call AWS hourly through their instance-role sessions (access keys
    // rotating every 6 hours), ECS tasks call through a session of their own per call, and
    // GuardDuty updates one low-severity finding about an instance daily (and finds a new one
    // every day). Nothing new joins the estate, so the state must stop growing with the days:
    // day 30 within 10 % of day 15, saved or as a document.
    let tmp = tempfile::tempdir().unwrap();
    let template = finding_template();
    let account = "777788880016";
    let instance = |i: u32| format!("i-0{:016x}", 0x16_0000 + i);
    let mut state = State::new();
    let (mut sizes, mut saved) = (Vec::new(), Vec::new());
    for day in 0..30u32 {
        let dir = tmp.path().join(format!("day{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let midnight = (1_746_057_600 + i64::from(day) * 86_400) * 1000; // 2025-05-01
        let mut calls = String::new();
        for hour in 0..24u32 {
            let t =
                finding_correlator::time::format_rfc3339(midnight + i64::from(hour) * 3_600_000);
            for i in 0..4u32 {
                let id = instance(i);
                let record = describe_call(
                    account,
                    ("web-role", "AROAEXAMPLEWEBROLE016"),
                    &id,
                    &t.replace(".000Z", "Z"),
                    &format!("16000000-0000-4000-8000-{:04}{:02}{:02}0001", day, hour, i),
                    &format!("ASIAEXAMPLE{:04}{:02}{i}", day, hour / 6),
                );
                calls.push_str(&format!("{record}\n"));
            }
            let task = format!("{:04}{:02}", day, hour);
            let record = json!({
                "eventVersion": "1.10",
                "eventTime": t.replace(".000Z", "Z"),
                "eventSource": "kms.amazonaws.com",
                "eventName": "Decrypt",
                "awsRegion": "us-east-1",
                "recipientAccountId": account,
                "sourceIPAddress": "10.0.2.20",
                "eventID": format!("16000000-0000-4000-8000-{task}99990002"),
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": format!("AROAEXAMPLETASKROLE16:task-{task}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/task-role/task-{task}"),
                    "accountId": account,
                    "accessKeyId": format!("ASIAEXAMPLETASK{task}")
                }
            });
            calls.push_str(&format!("{record}\n"));
        }
        std::fs::write(dir.join("ct.jsonl"), calls).unwrap();
        let mut findings = String::new();
        for (n, id) in [("recurring".to_string(), 0), (format!("day{day}"), 1)] {
            let seen = finding_correlator::time::format_rfc3339(midnight + 12 * 3_600_000);
            let first = if n == "recurring" {
                finding_correlator::time::format_rfc3339(1_746_057_600_000)
            } else {
                seen.clone()
            };
            let f = gd_finding(
                &template,
                account,
                &format!("16{n}"),
                ("Recon:EC2/PortProbeUnprotectedPort", 2),
                &instance(id),
                None,
                (&first, &seen),
                day + 1,
            );
            findings.push_str(&format!("{f}\n"));
        }
        std::fs::write(dir.join("gd.jsonl"), findings).unwrap();
        split_runs(&[dir], &mut state);
        sizes.push(state.to_json().len());
        saved.push(state.encode().len());
    }
    eprintln!(
        "document sizes by day: {sizes:?}\nsaved sizes by day: {saved:?}\n{} statements, {} signals",
        state.graph.len(),
        state.signals.len()
    );
    assert!(
        state.graph.len() < 40,
        "statements grow with the calls: {}",
        state.graph.len()
    );
    assert_level(&sizes, &saved);
    for s in [&sizes, &saved] {
        assert!(s[29] > s[0] / 2, "it did keep something");
    }
    assert_eq!(
        state.checkpoints["cloudtrail"].records,
        30 * 24 * 5,
        "every call was read"
    );
}

/// After 30 daily runs, the state's document and saved sizes on day 30 are within 10 % of day
/// 15's.
fn assert_level(sizes: &[usize], saved: &[usize]) {
    for (what, s) in [("document", sizes), ("saved", saved)] {
        assert!(
            s[29] <= s[14] + s[14] / 10,
            "the {what} keeps growing: day 15 {} bytes, day 30 {} bytes",
            s[14],
            s[29]
        );
    }
}

/// The findings runs wrote (the last version of each) are those one run writes, the same.
fn assert_same_findings(written: &Written, whole: &Written) {
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>(),
        "the runs wrote other findings than one run"
    );
    for (k, f) in whole {
        assert_eq!(&written[k], f, "finding {k} differs from one run's");
    }
}

/// A `DescribeInstances` call made at `time` with the credentials EC2 delivers to `instance`
/// for its role (`role`: name and role id; the session is named after the instance).
fn describe_call(
    account: &str,
    (role, role_id): (&str, &str),
    instance: &str,
    time: &str,
    event_id: &str,
    key: &str,
) -> Value {
    json!({
        "eventVersion": "1.10",
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "sourceIPAddress": "10.0.1.11",
        "eventID": event_id,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("{role_id}:{instance}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{instance}"),
            "accountId": account,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": format!("arn:aws:iam::{account}:role/{role}"),
                    "accountId": account,
                    "userName": role
                },
                "ec2RoleDelivery": "2.0"
            }
        }
    })
}

/// The single-finding fixture, to make findings of.
fn finding_template() -> Value {
    serde_json::from_str(&read_text(&common::fixture(
        "guardduty/finding-single.json",
    )))
    .unwrap()
}

/// A GuardDuty finding of a kind and severity about `instance` (of Auto Scaling group
/// `group`, when given), from the single-finding fixture, with its own id, first and last
/// sightings and count.
#[allow(clippy::too_many_arguments)]
fn gd_finding(
    template: &Value,
    account: &str,
    name: &str,
    (kind, severity): (&str, u32),
    instance: &str,
    group: Option<&str>,
    (first, last): (&str, &str),
    count: u32,
) -> Value {
    let mut f = template.clone();
    f["accountId"] = json!(account);
    f["id"] = json!(name);
    f["arn"] = json!(format!(
        "arn:aws:guardduty:us-east-1:{account}:detector/{account}/finding/{name}"
    ));
    f["type"] = json!(kind);
    f["severity"] = json!(severity);
    f["createdAt"] = json!(first);
    f["updatedAt"] = json!(last);
    f["service"] = json!({
        "serviceName": "guardduty",
        "eventFirstSeen": first,
        "eventLastSeen": last,
        "archived": false,
        "count": count
    });
    f["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    if let Some(g) = group {
        f["resource"]["instanceDetails"]["tags"] =
            json!([{"key": "aws:autoscaling:groupName", "value": g}]);
    }
    f
}

/// `days` days of one Auto Scaling group (`miner-asg`) under attack from 2025-05-01, a folder
/// per day: ten cryptomining and ten command-and-control findings a day on five members, and
/// one more finding about a sixth, first seen on the first day and updated daily. Also the
/// whole as one run reads it (the updated finding at its last version only).
fn days_of_attack(root: &Path, days: u32) -> (Vec<PathBuf>, PathBuf) {
    let template = finding_template();
    let account = "777788880017";
    let instance = |i: u32| format!("i-0{:016x}", 0x17_0000 + i);
    let start = 1_746_057_600_000i64; // 2025-05-01
    let finding = |name: &str, kind: &str, member: u32, first: i64, last: i64, count: u32| {
        let first = finding_correlator::time::format_rfc3339(first);
        let last = finding_correlator::time::format_rfc3339(last);
        gd_finding(
            &template,
            account,
            &format!("17{name}"),
            (kind, 8),
            &instance(member),
            Some("miner-asg"),
            (&first, &last),
            count,
        )
    };
    let all = root.join("all");
    let mut dirs = Vec::new();
    for day in 0..days {
        let midnight = start + i64::from(day) * 86_400_000;
        let hour = 3_600_000i64;
        // Ten cryptomining findings in the morning and ten command-and-control ones in the
        // evening, on the first five members; the recurring one on a sixth.
        let mut records = Vec::new();
        for n in 0..10u32 {
            let morning = midnight + i64::from(n) * hour;
            let evening = midnight + i64::from(12 + n) * hour;
            records.push(finding(
                &format!("crypto{day}-{n}"),
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                n % 5,
                morning,
                morning,
                1,
            ));
            records.push(finding(
                &format!("c2{day}-{n}"),
                "Backdoor:EC2/C&CActivity.B!DNS",
                n % 5,
                evening,
                evening,
                1,
            ));
        }
        records.push(finding(
            "recurring",
            "Execution:Runtime/NewBinaryExecuted",
            5,
            start + hour,
            midnight + 11 * hour,
            day + 1,
        ));
        let dir = root.join(format!("day{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = records.iter().map(|f| format!("{f}\n")).collect();
        std::fs::write(dir.join("gd.jsonl"), &text).unwrap();
        // One run over the month reads the newest version of the recurring finding only.
        let newest: String = records
            .iter()
            .filter(|f| day == days - 1 || f["id"] != "17recurring")
            .map(|f| format!("{f}\n"))
            .collect();
        std::fs::create_dir_all(&all).unwrap();
        std::fs::write(all.join(format!("day{day}.jsonl")), newest).unwrap();
        dirs.push(dir);
    }
    (dirs, all)
}

#[test]
fn issue_16_a_group_attacked_for_a_month_is_one_finding_and_the_state_stays_level() {
    // Thirty days of one Auto Scaling group under attack, run a day at a time: every day
    // GuardDuty finds cryptomining and command-and-control traffic on its members, ten of
    // each, and updates one finding about another member (first seen on the first day) with a
    // new count. The sequence keeps its first 200 signals (`max_signals_per_sequence`, twice
    // what a finding lists), which it has by the tenth day.
    // The group's `compromised-instance-group` sequence never closes, so before the state
    // carried the matcher's windows every run replayed the month from its first day. Now the
    // state must level off (day 30 within 10 % of day 15), replay only what began within the
    // last window, suppression and lag, and the findings must be those of one run over the
    // month: the same `Id`, `CreatedAt` and evidence, the updated finding at its last version.
    let tmp = tempfile::tempdir().unwrap();
    let (dirs, all) = days_of_attack(tmp.path(), 30);
    let whole = single_run(&all);
    assert_eq!(whole.len(), 1, "one finding: {:?}", whole.keys());

    let mut state = State::new();
    let mut written = Written::new();
    let (mut sizes, mut saved, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
    for dir in &dirs {
        let (w, superseded) = split_runs(std::slice::from_ref(dir), &mut state);
        assert_eq!(superseded, 0);
        written.extend(w);
        sizes.push(state.to_json().len());
        saved.push(state.encode().len());
        replayed.push(state.signals.len());
    }
    eprintln!(
        "document sizes by day: {sizes:?}\nsaved: {saved:?}\nsignals to replay: {replayed:?}"
    );
    assert_same_findings(&written, &whole);
    let f = whole.values().next().unwrap();
    assert_eq!(f["CreatedAt"], "2025-05-01T00:00:00.000Z");
    assert_level(&sizes, &saved);
    // Only what began within the last two days and an hour (window, suppression, lag) is
    // matched again: about forty findings, never the month.
    assert!(
        replayed.iter().all(|&n| n <= 45),
        "signals to replay: {replayed:?}"
    );
    let carried = state
        .carried
        .as_ref()
        .expect("the state carries the windows");
    assert_eq!(
        carried.counts().1,
        1,
        "the group's open sequence is carried"
    );
}

#[test]
fn issue_16_a_rule_changed_between_runs_matches_afresh_from_the_horizon() {
    // Three days of an attack run a day at a time, then the fourth with the rules as they were
    // and with `compromised-instance-group`'s window changed. With the same rules the fourth
    // run goes on from the carried windows: the group's finding holds every signal of the four
    // days. With the changed rule the windows it carried are dropped (they were counted for
    // another window) and the rule matches from the state's horizon on: the finding goes on
    // under its `Id` (its sequence holds a finding it held), with only what began after it.
    let tmp = tempfile::tempdir().unwrap();
    let (dirs, _) = days_of_attack(tmp.path(), 4);
    let mut state = State::new();
    let mut first = Written::new();
    for dir in &dirs[..3] {
        first.extend(split_runs(std::slice::from_ref(dir), &mut state).0);
    }
    assert_eq!(first.len(), 1);
    let group_id = first.keys().next().unwrap().clone();
    let fourth = |rules: Arc<RuleSet>| {
        let settings = settings();
        let (_, next, changes) = common::run_with_state(&dirs[3], &state, &rules, &settings);
        let written: Vec<Value> = changes.write.iter().map(KeptFinding::value).collect();
        assert_eq!(written.len(), 1);
        assert_eq!(id(&written[0]), group_id);
        (next, signal_count(&written[0]))
    };
    let (_, same) = fourth(rules());
    assert_eq!(same, 4 * 20 + 1, "the same rules go on from the windows");
    let mut changed = RuleSet::builtin().expect("the shipped rules load");
    let rule = changed
        .rules
        .iter_mut()
        .find(|r| r.id == "compromised-instance-group")
        .unwrap();
    rule.window -= 3_600_000;
    let (next, fresh) = fourth(Arc::new(changed));
    // What began after the state's horizon (the signals it keeps to match again), the
    // fourth day's twenty findings, and the new version of the recurring one.
    assert_eq!(
        fresh,
        state.signals.len() + 21,
        "the changed rule matched what began after the horizon"
    );
    let carried = next.carried.expect("the run carries its own windows");
    assert_eq!(carried.counts().1, 1, "its new sequence is carried");
}

/// The README: the carried windows of a rule that is gone since are dropped with a warning;
/// the other rules go on from theirs. Three days of an attack a day at a time, then the fourth
/// with a rules folder without `compromised-instance-group`.
#[test]
fn the_windows_of_a_rule_removed_between_runs_are_dropped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (dirs, _) = days_of_attack(tmp.path(), 4);
    let state = tmp.path().join("state.json");
    for dir in &dirs[..3] {
        correlate_with_state(&state, None, dir).assert().success();
    }
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for e in std::fs::read_dir(common::repo().join("correlation-rules")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file()
            && name.ends_with(".yaml")
            && name != "compromised-instance-group.yaml"
        {
            std::fs::copy(e.path(), rules.join(&name)).unwrap();
        }
    }
    let carried_rules = |state: &Path| -> Vec<String> {
        let v = common::state_value(&std::fs::read(state).unwrap());
        let mut r: Vec<String> = v["carried"]["rules"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["rule"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r.dedup();
        r
    };
    assert!(
        carried_rules(&state).contains(&"compromised-instance-group".to_string()),
        "{:?}",
        carried_rules(&state)
    );
    let out = tmp.path().join("out.json");
    let run = correlate_with_state(&state, Some(&out), &dirs[3])
        .arg("--rules")
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    let stderr = String::from_utf8(run.stderr).unwrap();
    let warning = stderr
        .lines()
        .find(|l| l.contains("windows of a rule that is gone"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        warning.contains("WARN") && warning.contains("compromised-instance-group"),
        "{warning}"
    );
    assert!(
        findings_file(&out)
            .iter()
            .all(|f| f["GeneratorId"] != "compromised-instance-group"),
        "the removed rule wrote a finding"
    );
    assert!(!carried_rules(&state).contains(&"compromised-instance-group".to_string()));
}

#[test]
fn issue_16_an_older_version_of_a_carried_finding_arriving_later_is_not_matched() {
    // A cryptomining finding first seen on 2025-05-01, at its version of 05-04 00:00 when the
    // first run reads it: that run's horizon (49 hours back) lies after its first sighting,
    // so the version sits in the carried windows. The second run reads an older version of
    // it (last seen 05-03 00:00, an export read late) and a command-and-control finding on
    // another member at 05-04 12:00. One run matches only the newest version, which is still
    // in the 24-hour window at 05-04 12:00: two kinds of signal, one finding. The older
    // version must not take the newer one's place in the carried window (it would have left
    // the window a day earlier, and the finding would not open).
    let tmp = tempfile::tempdir().unwrap();
    let template = finding_template();
    let account = "777788880018";
    let finding = |name: &str, kind: &str, member: u32, first: &str, last: &str, count: u32| {
        gd_finding(
            &template,
            account,
            &format!("18{name}"),
            (kind, 8),
            &format!("i-0{:016x}", 0x18_0000 + member),
            Some("late-asg"),
            (first, last),
            count,
        )
    };
    let crypto = "CryptoCurrency:EC2/BitcoinTool.B!DNS";
    let newer = finding(
        "m",
        crypto,
        0,
        "2025-05-01T00:00:00.000Z",
        "2025-05-04T00:00:00.000Z",
        9,
    );
    let older = finding(
        "m",
        crypto,
        0,
        "2025-05-01T00:00:00.000Z",
        "2025-05-03T00:00:00.000Z",
        5,
    );
    let c2 = finding(
        "c2",
        "Backdoor:EC2/C&CActivity.B!DNS",
        1,
        "2025-05-04T12:00:00.000Z",
        "2025-05-04T12:00:00.000Z",
        1,
    );
    let write = |dir: &Path, records: &[&Value]| {
        std::fs::create_dir_all(dir).unwrap();
        let text: String = records.iter().map(|f| format!("{f}\n")).collect();
        std::fs::write(dir.join("gd.jsonl"), text).unwrap();
    };
    // A later finding about the same instance (that no rule selects) says what the graph
    // knows of it, so the state keeps that one's copy of the instance's description, not the
    // cryptomining finding's: the older version is not known to the graph as a copy.
    let recon = finding(
        "recon",
        "Recon:EC2/PortProbeUnprotectedPort",
        0,
        "2025-05-04T06:00:00.000Z",
        "2025-05-04T06:00:00.000Z",
        1,
    );
    let all = tmp.path().join("all");
    write(&all, &[&newer, &recon, &older, &c2]);
    let whole = single_run(&all);
    assert_eq!(
        whole.len(),
        1,
        "one run opens the finding: {:?}",
        whole.keys()
    );
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    write(&first, &[&newer, &recon]);
    write(&second, &[&older, &c2]);
    let mut state = State::new();
    let (written, _) = split_runs(&[first, second], &mut state);
    assert_same_findings(&written, &whole);
}

#[test]
fn issue_16_a_later_version_of_a_carried_finding_last_seen_before_the_horizon_replaces_it() {
    // GuardDuty may write a new version of a finding (a later `updatedAt`, a higher count)
    // whose activity it last saw days ago. The first run reads a cryptomining finding last seen
    // 05-01 12:00 and a command-and-control finding on another member of its group at 05-02
    // 00:00 (one finding), and an attack on another group at 05-04 06:00, so its horizon (49
    // hours back) lies after both: they are carried in the windows. The second run reads the
    // first finding again, updated at 05-04 10:00 with a count of 12, its activity still last
    // seen at 05-01 12:00, before the horizon. One run matches only that version; so must the
    // second run, in the old version's place (the finding's signal then says count 12).
    let tmp = tempfile::tempdir().unwrap();
    let template = finding_template();
    let account = "777788880019";
    let finding = |name: &str, kind: &str, member: u32, group: &str, at: (&str, &str)| {
        gd_finding(
            &template,
            account,
            &format!("19{name}"),
            (kind, 8),
            &format!("i-0{:016x}", 0x19_0000 + member),
            Some(group),
            at,
            3,
        )
    };
    let crypto = "CryptoCurrency:EC2/BitcoinTool.B!DNS";
    let c2 = "Backdoor:EC2/C&CActivity.B!DNS";
    let day1 = ("2025-05-01T00:00:00.000Z", "2025-05-01T12:00:00.000Z");
    let first = finding("m", crypto, 0, "stale-asg", day1);
    let mut later = first.clone();
    later["updatedAt"] = json!("2025-05-04T10:00:00.000Z");
    later["service"]["count"] = json!(12);
    let at = ("2025-05-02T00:00:00.000Z", "2025-05-02T00:00:00.000Z");
    let command = finding("c2", c2, 1, "stale-asg", at);
    let at = ("2025-05-04T06:00:00.000Z", "2025-05-04T06:00:00.000Z");
    let elsewhere = [
        finding("m-other", crypto, 2, "other-asg", at),
        finding("c2-other", c2, 3, "other-asg", at),
    ];
    let write = |dir: &Path, records: &[&Value]| {
        std::fs::create_dir_all(dir).unwrap();
        let text: String = records.iter().map(|f| format!("{f}\n")).collect();
        std::fs::write(dir.join("gd.jsonl"), text).unwrap();
    };
    let all = tmp.path().join("all");
    write(
        &all,
        &[&first, &command, &elsewhere[0], &elsewhere[1], &later],
    );
    let whole = single_run(&all);
    assert_eq!(whole.len(), 2, "one finding a group: {:?}", whole.keys());
    let counts: Vec<u64> = whole
        .values()
        .flat_map(|f| {
            f["Detection"]["Sequence"]["Signals"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|s| s["Id"].as_str().is_some_and(|id| id.ends_with("/19m")))
        .map(|s| s["Count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [12], "one run holds the later version");
    let (a, b) = (tmp.path().join("first"), tmp.path().join("second"));
    write(&a, &[&first, &command, &elsewhere[0], &elsewhere[1]]);
    write(&b, &[&later]);
    let mut state = State::new();
    let (mut written, _) = split_runs(&[a, b], &mut state);
    // The second run writes the finding again, changed without a new event time: its
    // `UpdatedAt` moves past the one written before (Security Hub keeps the later), where one
    // run writes it once. All else is the same.
    let mut whole = whole;
    for (k, f) in &mut written {
        let split = f.as_object_mut().unwrap().remove("UpdatedAt").unwrap();
        let one = whole.get_mut(k).unwrap().as_object_mut().unwrap();
        assert!(split.as_str() >= one.remove("UpdatedAt").unwrap().as_str());
    }
    assert_same_findings(&written, &whole);
}

#[test]
fn cli_runs_with_a_state_over_nothing_save_no_horizon_and_the_next_run_goes_on() {
    // A scheduled task's first runs may find no record: the state they save has no horizon
    // (nothing was read to count back from), and a later run with records goes on from it.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for _ in 0..2 {
        correlate_with_state(&state, None, &empty)
            .assert()
            .success()
            .stderr(predicates::str::contains("horizon none"));
        let saved = State::decode(&std::fs::read(&state).unwrap()[..], "state").unwrap();
        assert_eq!(saved.horizon, None);
    }
    let out = tmp.path().join("out.json");
    correlate_with_state(&state, Some(&out), &common::fixture(""))
        .assert()
        .success();
    assert!(
        !findings_file(&out).is_empty(),
        "the run with records wrote its findings"
    );
}

/// A case run in two parts and at once, under `tmp`: `r1` holds the group case's session
/// calls, the `later` calls and the GuardDuty `findings`; `r2` the `archived` finding; `all`
/// everything. Returns the three folders.
fn archive_case(
    tmp: &Path,
    later: &[Value],
    findings: &[&Value],
    archived: &Value,
) -> (PathBuf, PathBuf, PathBuf) {
    let case = common::fixture("scenarios/compromised-instance-group/positive");
    let calls = std::fs::read_to_string(case.join("cloudtrail-session-calls.jsonl")).unwrap();
    let dir = |name: &str| {
        let d = tmp.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (r1, r2, all) = (dir("r1"), dir("r2"), dir("all"));
    let write = |d: &Path, name: &str, text: String| std::fs::write(d.join(name), text).unwrap();
    for d in [&r1, &all] {
        write(d, "calls.jsonl", calls.clone());
        write(d, "gd.json", json!({ "findings": findings }).to_string());
        if !later.is_empty() {
            write(d, "later.json", json!({ "Records": later }).to_string());
        }
    }
    for d in [&r2, &all] {
        write(
            d,
            "archived.json",
            json!({ "findings": [archived] }).to_string(),
        );
    }
    (r1, r2, all)
}

/// Copies of the group case's first session call, one at each of `times`, each with an event
/// id of its own.
fn later_calls(times: &[&str]) -> Vec<Value> {
    let case = common::fixture("scenarios/compromised-instance-group/positive");
    let calls = std::fs::read_to_string(case.join("cloudtrail-session-calls.jsonl")).unwrap();
    let call: Value = serde_json::from_str(calls.lines().next().unwrap()).unwrap();
    times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let mut c = call.clone();
            c["eventID"] = json!(format!("11111111-2222-4333-8444-{i:012}"));
            c["eventTime"] = json!(at);
            c
        })
        .collect()
}

/// The group case's GuardDuty finding of `kind`, with its sightings at `at` (`updatedAt` a
/// second later), and that version archived on May 7th.
fn sighted_at(kind: &str, at: &str) -> (Value, Value) {
    let mut f = common::group_case_finding(kind);
    f["service"]["eventFirstSeen"] = json!(at);
    f["service"]["eventLastSeen"] = json!(at);
    f["updatedAt"] = json!(at.replace(":00.000Z", ":01.000Z"));
    let mut archived = f.clone();
    archived["updatedAt"] = json!("2025-05-07T23:00:00.000Z");
    archived["service"]["archived"] = json!(true);
    (f, archived)
}

/// The first and second runs of a case with a state, and one run over all of it: the
/// findings each wrote. `rules`: a rules folder in place of the shipped rules.
fn archive_runs(
    tmp: &Path,
    (r1, r2, all): &(PathBuf, PathBuf, PathBuf),
    rules: Option<&Path>,
) -> (Vec<Value>, Vec<Value>, Vec<Value>, String) {
    let state = tmp.join("state");
    let run = |input: &Path, n: u32, with_state: bool| {
        let out = tmp.join(format!("out{n}.json"));
        let mut cmd = correlator();
        cmd.arg("correlate");
        if let Some(r) = rules {
            cmd.arg("--rules").arg(r);
        }
        if with_state {
            cmd.arg("--state").arg(&state);
        }
        let done = cmd.arg("--asff").arg(&out).arg(input).output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
        assert!(done.status.success(), "{stderr}");
        (findings_file(&out), stderr)
    };
    let (first, _) = run(r1, 1, true);
    let (second, stderr) = run(r2, 2, true);
    let (whole, _) = run(all, 9, false);
    let (third, _) = run(r2, 3, true);
    assert!(third.is_empty(), "the run after writes nothing: {third:?}");
    (first, second, whole, stderr)
}

fn holds(f: &Value, kind: &str) -> bool {
    f["Description"].as_str().unwrap().contains(kind)
}

/// The rules README: a GuardDuty finding whose newest version is archived (an analyst closed
/// it) feeds no rule, also when an earlier scheduled run matched an earlier version. The
/// group case's mining finding and the session's calls make a finding; the next run reads the
/// mining finding archived. Whether the earlier version is among the signals the state
/// replays or, once the horizon has passed it (a call 60 hours later), in the windows and
/// sequences the state carries:
/// - alone with the calls, the sequence forms no more: the finding that run wrote is written
///   once more as ARCHIVED, "Withdrawn", naming the GuardDuty finding, as one run over all of
///   it writes no finding; the run after writes nothing;
/// - with the group's other findings, it still forms: the same `Id` is written again without
///   the mining finding, as one run over all of it tells the story (its `Id` and `CreatedAt`
///   stay those written first).
#[test]
fn a_finding_archived_after_a_run_matched_it_leaves_the_findings_that_held_it() {
    let (doc, mining, archived) = common::group_case_mining();
    let arn = mining["arn"].as_str().unwrap().to_string();
    let others: Vec<&Value> = doc["findings"].as_array().unwrap().iter().collect();
    for carried in [false, true] {
        for with_others in [false, true] {
            let what = format!("carried {carried}, the group's other findings {with_others}");
            let tmp = tempfile::tempdir().unwrap();
            let later = if carried {
                later_calls(&["2025-05-05T20:00:00Z"])
            } else {
                Vec::new()
            };
            let findings = if with_others {
                others.clone()
            } else {
                vec![&mining]
            };
            let case = archive_case(tmp.path(), &later, &findings, &archived);
            let (first, second, whole, stderr) = archive_runs(tmp.path(), &case, None);
            assert_eq!(first.len(), 1, "{what}");
            let written = &first[0];
            assert!(holds(written, "BitcoinTool"), "{what}");
            assert_eq!(second.len(), 1, "{what}");
            let again = &second[0];
            assert_eq!(again["Id"], written["Id"], "{what}");
            assert_eq!(again["CreatedAt"], written["CreatedAt"], "{what}");
            assert!(
                again["UpdatedAt"].as_str() > written["UpdatedAt"].as_str(),
                "{what}"
            );
            if with_others {
                assert_ne!(again["RecordState"], "ARCHIVED", "{what}");
                assert!(
                    !holds(again, "BitcoinTool"),
                    "{what}: {}",
                    again["Description"]
                );
                assert_eq!(whole.len(), 1, "{what}");
                for field in ["Description", "Resources", "Severity", "Title", "Types"] {
                    assert_eq!(again[field], whole[0][field], "{what}: {field}");
                }
            } else {
                assert!(whole.is_empty(), "{what}: one run writes none");
                assert_eq!(again["RecordState"], "ARCHIVED", "{what}");
                assert!(
                    again["Description"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("Withdrawn: the GuardDuty finding {arn} ")),
                    "{what}: {}",
                    again["Description"]
                );
                assert_eq!(
                    again["ProductFields"]["finding-correlator/withdrawn-for"],
                    arn.as_str(),
                    "{what}"
                );
                assert!(stderr.contains("1 withdrawn"), "{what}: {stderr}");
            }
        }
    }
}

/// As above, for a sequence that has lasted longer than its rule's window (24 hours): the
/// mining finding and a high-risk call open it on May 3rd, calls every 20 hours keep it open,
/// a command-and-control finding joins it on May 5th, and a call on May 7th moves the horizon
/// past that finding, which the state then carries in the sequence. Archived, it leaves the
/// sequence, which still stands by its own signals (its window alone no longer shows the
/// mining finding that opened it): the same `Id` is written again without it, as one run
/// over all of it tells the story, not withdrawn.
#[test]
fn a_finding_archived_out_of_a_sequence_longer_than_its_window_leaves_it_standing() {
    let (_, mining, _) = common::group_case_mining();
    let (cnc, archived) = sighted_at("Backdoor:EC2/C&CActivity.B!DNS", "2025-05-05T20:00:00.000Z");
    let later = later_calls(&[
        "2025-05-04T04:00:00Z",
        "2025-05-05T00:00:00Z",
        "2025-05-05T20:00:00Z",
        "2025-05-07T22:00:00Z",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let case = archive_case(tmp.path(), &later, &[&mining, &cnc], &archived);
    let (first, second, whole, _) = archive_runs(tmp.path(), &case, None);
    assert_eq!(first.len(), 1);
    assert!(holds(&first[0], "C&CActivity"));
    assert_eq!(second.len(), 1);
    let again = &second[0];
    assert_eq!(again["Id"], first[0]["Id"]);
    assert_ne!(again["RecordState"], "ARCHIVED", "{}", again["Description"]);
    assert!(!holds(again, "C&CActivity"));
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0]["Id"], again["Id"]);
    for field in [
        "Description",
        "Resources",
        "Types",
        "FirstObservedAt",
        "LastObservedAt",
    ] {
        assert_eq!(again[field], whole[0][field], "{field}");
    }
}

/// As above, for a sequence that ended before the horizon and that the state carries to be
/// written again at the end of the next run (a copy of the group rule with a 1-hour window
/// and no suppression, beside the rule, whose finding rolls the copy's sequences up): the
/// mining finding, a command-and-control finding and the session's calls on May 3rd morning,
/// a second mining finding and a call at noon, a call on May 5th that moves the horizon past
/// them. The command-and-control finding, archived, leaves the sequences, the ended one of
/// the copy too: the finding is written again under its `Id` without it, as one run over all
/// of it tells the story.
#[test]
fn a_finding_archived_out_of_an_ended_sequence_the_state_carries_leaves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    common::copy_dir(&common::repo().join("correlation-rules"), &rules);
    std::fs::remove_dir_all(rules.join("sigma")).unwrap();
    // A copy of the group rule beside it, with a 1-hour window and no suppression.
    let text = std::fs::read_to_string(rules.join("compromised-instance-group.yaml")).unwrap();
    assert!(text.contains("\nwindow: 24h\n") && text.contains("\nsuppress: 24h\n"));
    std::fs::write(
        rules.join("group-short.yaml"),
        text.replace("compromised-instance-group", "group-short")
            .replace("\nwindow: 24h\n", "\nwindow: 1h\n")
            .replace("\nsuppress: 24h\n", "\n"),
    )
    .unwrap();
    let (_, mining, _) = common::group_case_mining();
    let cnc = common::group_case_finding("Backdoor:EC2/C&CActivity.B!DNS");
    let mut archived = cnc.clone();
    archived["updatedAt"] = json!("2025-05-07T23:00:00.000Z");
    archived["service"]["archived"] = json!(true);
    let (mut noon, _) = sighted_at(
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        "2025-05-03T12:30:00.000Z",
    );
    let id = "ffffffffffffffffffffffffffffffff";
    let arn = mining["arn"]
        .as_str()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    noon["id"] = json!(id);
    noon["arn"] = json!(format!("{arn}/{id}"));
    let later = later_calls(&["2025-05-03T12:35:00Z", "2025-05-05T20:00:00Z"]);
    let case = archive_case(tmp.path(), &later, &[&mining, &cnc, &noon], &archived);
    let (first, second, whole, _) = archive_runs(tmp.path(), &case, Some(&rules));
    // One finding: the group rule's sequence, with the short copy's rolled up into it.
    assert_eq!(first.len(), 1);
    assert!(holds(&first[0], "C&CActivity"));
    assert_eq!(second.len(), 1);
    let again = &second[0];
    assert_eq!(again["Id"], first[0]["Id"]);
    assert_ne!(again["RecordState"], "ARCHIVED");
    assert!(!holds(again, "C&CActivity"), "{}", again["Description"]);
    assert_eq!(
        signal_count(again),
        signal_count(&first[0]) - 1,
        "without the archived finding"
    );
    assert_eq!(whole.len(), 1);
    for field in ["Description", "Resources", "LastObservedAt"] {
        assert_eq!(again[field], whole[0][field], "{field}");
    }
    assert_eq!(signal_count(again), signal_count(&whole[0]));
}

/// As above, for a finding that bridged two signals farther apart than the rule's window: the
/// session's calls on May 3rd, the mining finding on May 4th and a command-and-control
/// finding on May 5th form one sequence (each within 24 hours of the one before), a call on
/// May 7th moves the horizon past them. The mining finding, archived, leaves the others 43
/// hours apart, never within one window: the finding is withdrawn, as one run over all of it
/// writes none.
#[test]
fn a_finding_archived_that_bridged_signals_a_window_apart_withdraws_the_finding() {
    let (mining, archived) = sighted_at(
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        "2025-05-04T06:00:00.000Z",
    );
    let (cnc, _) = sighted_at("Backdoor:EC2/C&CActivity.B!DNS", "2025-05-05T04:00:00.000Z");
    let later = later_calls(&["2025-05-07T12:00:00Z"]);
    let tmp = tempfile::tempdir().unwrap();
    let case = archive_case(tmp.path(), &later, &[&mining, &cnc], &archived);
    let (first, second, whole, stderr) = archive_runs(tmp.path(), &case, None);
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["Id"], first[0]["Id"]);
    assert_eq!(second[0]["RecordState"], "ARCHIVED");
    assert!(stderr.contains("1 withdrawn"), "{stderr}");
    assert!(whole.is_empty(), "one run writes none");
}
