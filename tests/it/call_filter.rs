//! The reading threads' shortcut: CloudTrail calls no rule can take and that tell the graph
//! nothing new are counted without building their signals
//! (`DecodeOptions::calls`). Checked against full decoding of every fixture and every real
//! record in `../shared/realdata/`: the shortcut must only ever skip records the pipeline
//! would have dropped anyway.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use finding_correlator::config::Config;
use finding_correlator::matcher::Matcher;
use finding_correlator::normalize::{
    self, CallFilter, DecodeOptions, Decoded, RecordKind, SentStatements,
};
use finding_correlator::pipeline::graph_statement;
use finding_correlator::rules::RuleSet;
use finding_correlator::signal::Signal;
use finding_correlator::sources::file::collect_files;
use finding_correlator::time::Millis;

use crate::common::{fixture, repo, shared};

/// One decoded record: its signal, or that it was counted only.
#[derive(Debug)]
enum Out {
    Signal(RecordKind, Box<Signal>),
    Unneeded(RecordKind, Millis),
    Problem(String),
}

fn decode(bytes: &[u8], calls: Option<Arc<CallFilter>>) -> Vec<Out> {
    let opts = DecodeOptions {
        calls,
        ..DecodeOptions::default()
    };
    let mut out = Vec::new();
    normalize::decode_reader(bytes, &opts, &mut |d| {
        out.push(match d {
            Decoded::Signal(k, s) => Out::Signal(k, s),
            Decoded::Unneeded(k, t) => Out::Unneeded(k, t),
            Decoded::Sigma(..) => panic!("no Sigma rules were set"),
            Decoded::Problem(p) => Out::Problem(p.to_string()),
        })
    });
    out
}

/// Every record file of the fixtures and of the real data.
fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let (files, _) = collect_files(&[fixture(""), shared("realdata")]);
    let inputs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f.path).expect("reading an input");
            (f.path, bytes)
        })
        .collect();
    assert!(inputs.len() > 20, "{} input files", inputs.len());
    inputs
}

fn matcher() -> Matcher {
    let rules = Arc::new(RuleSet::builtin().expect("the shipped rules load"));
    let settings = Config::default().validate().expect("default config");
    Matcher::new(rules, settings.matching)
}

/// Decodes `bytes` in full and with `calls`, and checks each record counted only against its
/// full signal; returns how many were counted only, and how many of those were calls made
/// with an instance's credentials.
fn compare(
    m: &Matcher,
    path: &std::path::Path,
    bytes: &[u8],
    calls: &Arc<CallFilter>,
    sent: &HashSet<u64>,
) -> (usize, usize) {
    let full = decode(bytes, None);
    let quick = decode(bytes, Some(calls.clone()));
    let where_ = path
        .strip_prefix(repo().join(".."))
        .unwrap_or(path)
        .display();
    assert_eq!(
        full.len(),
        quick.len(),
        "{where_}: as many records either way"
    );
    let (mut unneeded, mut by_instance) = (0, 0);
    for (i, (f, q)) in full.iter().zip(&quick).enumerate() {
        match (f, q) {
            (Out::Signal(fk, fs), Out::Signal(qk, qs)) => {
                assert_eq!(fk, qk, "{where_} #{i}");
                assert_eq!(fs, qs, "{where_} #{i}: the same signal when one is built");
            }
            (Out::Signal(fk, fs), Out::Unneeded(qk, t)) => {
                unneeded += 1;
                assert_eq!(fk, qk, "{where_} #{i}: counted as the same kind of record");
                assert_eq!(fs.time, *t, "{where_} #{i}: with the same time");
                assert!(
                    !m.wants(fs),
                    "{where_} #{i}: a record some rule takes was counted only: {}",
                    fs.kind
                );
                match graph_statement(fs) {
                    None => {}
                    Some(st) => {
                        by_instance += 1;
                        assert!(
                            sent.contains(&st),
                            "{where_} #{i}: a record that tells the graph something new was \
                             counted only: {fs:?}"
                        );
                    }
                }
            }
            (Out::Problem(a), Out::Problem(b)) => assert_eq!(a, b, "{where_} #{i}"),
            other => panic!("{where_} #{i}: full and quick decoding differ: {other:?}"),
        }
    }
    (unneeded, by_instance)
}

/// Without statements sent, only calls no rule takes that were not made by an instance are
/// counted only, and decoding is otherwise unchanged.
#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn only_calls_no_rule_takes_and_no_instance_made_are_counted_only() {
    let m = matcher();
    let calls = Arc::new(m.call_filter());
    assert!(!calls.all, "the shipped rules name the calls they take");
    assert!(calls.high_risk_by_instance && !calls.high_risk_by_anyone);
    let (mut unneeded, mut total) = (0, 0);
    for (path, bytes) in inputs() {
        let (u, by_instance) = compare(&m, &path, &bytes, &calls, &HashSet::new());
        assert_eq!(by_instance, 0, "{}", path.display());
        unneeded += u;
        total += decode(&bytes, None).len();
    }
    assert!(
        unneeded > 100 && unneeded < total,
        "{unneeded} of {total} records counted only"
    );
}

/// Once a session's statement was sent, its later calls no rule takes are counted only: the
/// hash the reading threads compute from the record is the one `graph_statement` gives its
/// signal.
#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn calls_of_a_session_the_graph_knows_are_counted_only() {
    let m = matcher();
    let inputs = inputs();
    let mut sent = HashSet::new();
    for (_, bytes) in &inputs {
        for o in decode(bytes, None) {
            if let Out::Signal(_, s) = o
                && let Some(st) = graph_statement(&s)
            {
                sent.insert(st);
            }
        }
    }
    let shared_sent = Arc::new(SentStatements::default());
    {
        let mut map = shared_sent.0.lock().unwrap();
        for st in &sent {
            map.insert(*st, (0, 0));
        }
    }
    let calls = Arc::new(CallFilter {
        sent: Some(shared_sent),
        ..m.call_filter()
    });
    let mut by_instance = 0;
    for (path, bytes) in &inputs {
        by_instance += compare(&m, path, bytes, &calls, &sent).1;
    }
    assert!(
        by_instance >= 10,
        "{by_instance} calls by instances counted only"
    );
}

/// A rule that names no calls, and could take any call, turns the shortcut off.
#[test]
fn a_rule_taking_any_call_turns_the_shortcut_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("any-error.yaml"),
        r#"id: any-error
title: Any failed call
description: Any CloudTrail call that failed.
severity: LOW
attack:
  tactics: [Discovery]
  techniques: ["T1580 - Cloud Infrastructure Discovery"]
types:
  - "Unusual Behaviors/User/Failed Call"
runbook: Review the caller.
emit: weak_signal
stages:
  - name: failed
    select:
      source: [cloudtrail]
      where:
        - field: error_code
          exists: true
group_by: principal
window: 1h
condition:
  require: [failed]
"#,
    )
    .unwrap();
    let rules = RuleSet::load_dir(dir.path()).unwrap_or_else(|e| panic!("the rule loads: {e:?}"));
    let rules = Arc::new(rules);
    let settings = Config::default().validate().unwrap();
    let m = Matcher::new(rules, settings.matching);
    assert!(m.call_filter().all);
}
