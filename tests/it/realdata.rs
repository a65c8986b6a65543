//! (being written)
use crate::common::*;

#[test]
fn explore_realdata() {
    for rel in [
        "realdata/panther-test-events/cloudtrail-test-events.jsonl",
        "realdata/panther-test-events/guardduty-test-findings.jsonl",
        "realdata/stratus-red-team/all-detonations.jsonl",
    ] {
        let d = decode_file(&shared(rel));
        eprintln!("{rel}: {} signals {} problems", d.signals.len(), d.problems.len());
        for p in &d.problems {
            eprintln!("  {p} [{:?}]", p.severity);
        }
    }
    let mut dirs = vec![];
    for sub in ["samples/cloudtrail", "samples/guardduty", "samples/asff"] {
        for e in std::fs::read_dir(shared(sub)).unwrap() {
            dirs.push(e.unwrap().path());
        }
    }
    dirs.sort();
    for p in dirs {
        let d = decode_file(&p);
        eprintln!("{}: {} signals {} problems notjson={:?}", p.display(), d.signals.len(), d.problems.len(), d.not_json);
        for pr in &d.problems {
            eprintln!("  {pr} [{:?}]", pr.severity);
        }
    }
}
