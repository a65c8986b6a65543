//! Issue 7 part 2: `--sequence ID` exports one sequence's neighbourhood (its signals, the
//! entities they name, its group and members, one hop around them) and nothing of unrelated
//! groups.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use finding_correlator::config::Config;
use finding_correlator::pipeline;
use finding_correlator::report;
use finding_correlator::rules::RuleSet;

use crate::common::{WEB_ASG_SEQUENCE, correlator, repo};

const MAIN: [&str; 3] = ["fixtures/cloudtrail", "fixtures/guardduty", "fixtures/asff"];

/// (kind, id) of each node.
type Nodes = BTreeSet<(String, String)>;
/// (source, kind, target) of each edge.
type Edges = BTreeSet<(String, String, String)>;

/// Nodes and edges of a JSON export.
fn elements(json: &[u8]) -> (Nodes, Edges) {
    let doc: Value = serde_json::from_slice(json).expect("JSON export");
    let nodes = doc["elements"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let d = &n["data"];
            (
                d["kind"].as_str().unwrap().into(),
                d["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let edges = doc["elements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let d = &e["data"];
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("source"), s("kind"), s("target"))
        })
        .collect();
    (nodes, edges)
}

fn graph_json(args: &[&str], paths: &[&str]) -> Vec<u8> {
    let out = correlator()
        .arg("graph")
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Whether a node belongs to the scenario's other groups: batch-asg, and the instance the
/// CI role launched (with its AMI group), or to principals that never touched web-asg.
fn unrelated(id: &str) -> bool {
    [
        "batch",
        "i-0ccccccccccccccc",
        "i-0ddddddddddddddd",
        "ami-0d1d2d3d4d5d6d7d8",
        "ci-deploy",
        "CIDEPLOY",
        "ALICE",
        "alice",
        "lt-0def4567abc890123",
    ]
    .iter()
    .any(|u| id.contains(u))
}

#[test]
fn issue_7_the_fixture_sequence_subgraph_has_its_group_victim_session_and_launches_only() {
    let (full, full_edges) = elements(&graph_json(&[], &MAIN));
    let (nodes, edges) = elements(&graph_json(&["--sequence", WEB_ASG_SEQUENCE], &MAIN));
    let ids: BTreeSet<&str> = nodes.iter().map(|(_, id)| id.as_str()).collect();
    let has = |id: &str| ids.contains(id);

    // The group, its members, the victim's role session (and its key and role), the instances
    // it launched with their group.
    for id in [
        "instance_group:111122223333/auto_scaling_group/us-east-1/web-asg",
        "instance:i-0aaaaaaaaaaaaaaa1",
        "instance:i-0aaaaaaaaaaaaaaa2",
        "instance:i-0aaaaaaaaaaaaaaa3",
        "principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1",
        "access_key:ASIAEXAMPLEEXAMPLE01",
        "iam_role:arn:aws:iam::111122223333:role/web-instance-role",
        "instance_group:111122223333/ami/ami-0c0ffee0c0ffee000",
        "domain:gulf.moneroocean.stream",
        "ip:198.51.100.23",
        // The launch template the session created (named by its CreateLaunchTemplate call).
        "launch_template:lt-0c0ffee0c0ffee003",
    ] {
        assert!(has(id), "{id} missing from the subgraph");
    }
    for i in 1..=6 {
        let id = format!("instance:i-0bbbbbbbbbbbbbbb{i}");
        assert!(has(&id), "launched {id} missing");
        assert!(
            edges.contains(&(
                id.clone(),
                "launched_by".into(),
                "principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1".into()
            )),
            "{id} launched_by the victim's session"
        );
    }
    assert!(edges.contains(&(
        "principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1".into(),
        "acted_as".into(),
        "instance:i-0aaaaaaaaaaaaaaa1".into()
    )));

    // Exactly the sequence's 13 signals: not the session's reconnaissance calls, which no
    // rule selected, though they are observed on the session.
    let signals = nodes.iter().filter(|(k, _)| k == "signal").count();
    assert_eq!(signals, 13);
    let recon: Vec<&String> = full_edges
        .iter()
        .filter(|(s, k, t)| {
            s.starts_with("signal:")
                && k == "observed_on"
                && t == "principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1"
                && !has(s)
        })
        .map(|(s, ..)| s)
        .collect();
    assert!(recon.len() >= 5, "{recon:?}");

    // One hop, not two: the Auto Scaling service principal that launched the members is
    // there, the batch-asg instances it also launched are not; so is the account, not the
    // other principals in it.
    assert!(has("principal:AROAEXAMPLEASGSVC0004:AutoScaling"));
    assert!(has("account:111122223333"));

    // Nothing of the unrelated groups, though the whole graph has them.
    for unrelated_id in [
        "instance_group:111122223333/auto_scaling_group/us-east-1/batch-asg",
        "instance:i-0ccccccccccccccc1",
        "instance:i-0ddddddddddddddd1",
        "principal:AIDAEXAMPLEALICE0001",
    ] {
        assert!(
            full.iter().any(|(_, id)| id == unrelated_id),
            "{unrelated_id} should be in the whole graph"
        );
    }
    let leaked: Vec<&str> = ids.iter().copied().filter(|id| unrelated(id)).collect();
    assert!(
        leaked.is_empty(),
        "unrelated nodes in the subgraph: {leaked:?}"
    );
    for (s, _, t) in &edges {
        assert!(has(s) && has(t), "edge {s} -> {t} to a node outside");
    }
}

#[test]
fn issue_7_with_every_fixture_an_unrelated_group_in_the_graph_is_not_in_the_subgraph() {
    // All of fixtures/: the per-rule scenarios add groups of their own.
    let all = ["fixtures/"];
    let full = elements(&graph_json(&[], &all)).0;
    let part = elements(&graph_json(&["--sequence", WEB_ASG_SEQUENCE], &all)).0;
    let groups = |n: &Nodes| -> BTreeSet<String> {
        n.iter()
            .filter(|(k, _)| k == "instance_group")
            .map(|(_, id)| id.clone())
            .collect()
    };
    assert!(groups(&full).len() >= 6, "{:?}", groups(&full));
    assert_eq!(
        groups(&part),
        BTreeSet::from([
            "instance_group:111122223333/ami/ami-0c0ffee0c0ffee000".to_string(),
            "instance_group:111122223333/auto_scaling_group/us-east-1/web-asg".to_string(),
        ])
    );
    for other in ["shop-asg", "etl-asg", "worker-asg", "api-asg", "batch-asg"] {
        assert!(full.iter().any(|(_, id)| id.contains(other)), "{other}");
        assert!(!part.iter().any(|(_, id)| id.contains(other)), "{other}");
    }
}

#[test]
fn issue_7_no_signals_leaves_the_signal_nodes_out_of_the_subgraph() {
    let (with, _) = elements(&graph_json(&["--sequence", WEB_ASG_SEQUENCE], &MAIN));
    let (without, edges) = elements(&graph_json(
        &["--sequence", WEB_ASG_SEQUENCE, "--no-signals"],
        &MAIN,
    ));
    let entities: BTreeSet<_> = with
        .iter()
        .filter(|(k, _)| k != "signal")
        .cloned()
        .collect();
    assert_eq!(without, entities);
    assert!(edges.iter().all(|(_, k, _)| k != "observed_on"));
}

#[test]
fn issue_7_an_unknown_sequence_id_is_a_usage_error_listing_the_known_ids() {
    for cmd in [
        vec!["graph", "--sequence", "no-such-id"],
        vec![
            "correlate",
            "--graph",
            "out.json",
            "--sequence",
            "no-such-id",
        ],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = correlator()
            .current_dir(dir.path())
            .args(&cmd)
            .args(MAIN.iter().map(|p| repo().join(p)))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        assert!(out.stdout.is_empty(), "{cmd:?} wrote output");
        assert!(
            !dir.path().join("out.json").exists(),
            "{cmd:?} wrote a graph"
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("\"no-such-id\""), "{stderr}");
        assert!(stderr.contains(WEB_ASG_SEQUENCE), "{stderr}");
        // The launch sequence is rolled into web-asg's finding (issue 14): not a finding.
        assert!(
            !stderr.contains(
                "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/auto_scaling_group/web-asg/2025-05-02T09:19:41.000Z"
            ),
            "{stderr}"
        );
    }
    // --sequence means nothing without an output it narrows.
    let out = correlator()
        .args(["correlate", "--sequence", WEB_ASG_SEQUENCE])
        .args(MAIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn issue_7_the_library_picks_by_id_and_seeds_from_the_sequence() {
    let rules = Arc::new(RuleSet::builtin().unwrap());
    let settings = Config::default().validate().unwrap();
    let paths: Vec<PathBuf> = MAIN.iter().map(|p| repo().join(p)).collect();
    let run = pipeline::correlate(&paths, &settings, rules.clone(), false, None);
    let seq = report::pick(&run.sequences, &rules, &format!("  {WEB_ASG_SEQUENCE}\n"))
        .expect("surrounding blanks are ignored");
    assert_eq!(seq.rule_id, "compromised-instance-group");
    // Without signal nodes in the graph, the entities come from the sequence itself.
    let part = report::neighbourhood(&run.graph, seq);
    let ids: BTreeSet<&str> = part.nodes.iter().map(|n| n.id.as_str()).collect();
    assert!(ids.contains("principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1"));
    assert!(ids.contains("instance:i-0bbbbbbbbbbbbbbb6"));
    assert!(!ids.iter().any(|id| unrelated(id)), "{ids:?}");
    let err = report::pick(&run.sequences, &rules, "x").unwrap_err();
    assert!(err.contains(WEB_ASG_SEQUENCE), "{err}");
}
