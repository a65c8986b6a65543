//! The scenario of `fixtures/` as an entity graph: its instance groups, who acted as and
//! launched what, one signal per finding however often it arrives, and the exports.
//!
//! Expected values come from the "Expected groups", "Deduplication" and "Relationships"
//! sections of `fixtures/README.md`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use finding_correlator::config::{Config, Settings};
use finding_correlator::graph::export::{self, Format};
use finding_correlator::graph::{EdgeKind, EntityGraph, GroupId};
use finding_correlator::pipeline::{self, GraphRun};
use finding_correlator::signal::{EntityId, EntityKind};

use crate::common::repo;

const ACCOUNT: &str = "111122223333";
const WEB: [&str; 3] = [
    "i-0aaaaaaaaaaaaaaa1",
    "i-0aaaaaaaaaaaaaaa2",
    "i-0aaaaaaaaaaaaaaa3",
];
const BATCH: [&str; 2] = ["i-0ccccccccccccccc1", "i-0ccccccccccccccc2"];
const GPU: [&str; 6] = [
    "i-0bbbbbbbbbbbbbbb1",
    "i-0bbbbbbbbbbbbbbb2",
    "i-0bbbbbbbbbbbbbbb3",
    "i-0bbbbbbbbbbbbbbb4",
    "i-0bbbbbbbbbbbbbbb5",
    "i-0bbbbbbbbbbbbbbb6",
];
const CI: &str = "i-0ddddddddddddddd1";

const SESSION: &str = "AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1";
const SESSION_KEY: &str = "ASIAEXAMPLEEXAMPLE01";
const AUTO_SCALING: &str = "AROAEXAMPLEASGSVC0004:AutoScaling";
const CI_SESSION: &str = "AROAEXAMPLECIDEPLOY03:gitlab-runner-1234";
const ALICE: &str = "AIDAEXAMPLEALICE0001";

const BITCOIN_ARN: &str = "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/51e3c9b93d1304e6d09ba20c00abf4b7";

fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// The input-shape fixtures that make up the main cryptomining scenario (not the per-rule
/// scenarios of `fixtures/scenarios/`), in sorted folder order.
fn main_scenario() -> Vec<PathBuf> {
    ["asff", "cloudtrail", "guardduty"]
        .iter()
        .map(|d| fixtures().join(d))
        .collect()
}

fn default_settings() -> Settings {
    Config::default().validate().unwrap()
}

/// Settings with one reader thread: files are read in the order given (folders sorted).
fn single_threaded() -> Settings {
    Config::parse("[input]\nthreads = 1\n")
        .unwrap()
        .validate()
        .unwrap()
}

fn scenario() -> GraphRun {
    pipeline::build_graph(&main_scenario(), &default_settings(), true)
}

fn e(kind: EntityKind, id: &str) -> EntityId {
    EntityId::new(kind, id)
}

fn instance(id: &str) -> EntityId {
    e(EntityKind::Instance, id)
}

fn principal(id: &str) -> EntityId {
    e(EntityKind::Principal, id)
}

fn us_east_1(kind: EntityKind, name: &str) -> EntityId {
    EntityId::scoped(kind, Some(ACCOUNT), Some("us-east-1"), name)
}

/// Every group as (display name, members).
fn groups(g: &EntityGraph) -> Vec<(String, Vec<String>)> {
    g.groups()
        .map(|(id, members)| {
            (
                id.to_string(),
                members.iter().map(|m| m.to_string()).collect(),
            )
        })
        .collect()
}

fn group_name(g: &EntityGraph, e: &EntityId) -> Option<String> {
    g.group_of(e).map(GroupId::to_string)
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn export(g: &EntityGraph, format: Format) -> String {
    let mut out = Vec::new();
    export::write(g, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Groups.

#[test]
fn the_scenario_has_exactly_the_four_expected_groups() {
    let run = scenario();
    let g = &run.graph;
    assert_eq!(
        groups(g),
        vec![
            // Shares the VPC with web-asg, but the ASG key wins: two groups.
            ("auto_scaling_group/batch-asg".to_string(), strings(&BATCH)),
            ("auto_scaling_group/web-asg".to_string(), strings(&WEB)),
            // No tags, no profile: the AMI is the most specific key.
            ("ami/ami-0c0ffee0c0ffee000".to_string(), strings(&GPU)),
            ("ami/ami-0d1d2d3d4d5d6d7d8".to_string(), strings(&[CI])),
        ]
    );
    // The keys behind the names: an ASG name is scoped by account and region; every group by
    // the account of its instances.
    let web = g.group_of(&instance(WEB[0])).unwrap();
    assert_eq!(
        web.key,
        us_east_1(EntityKind::AutoScalingGroup, "web-asg"),
        "{web:?}"
    );
    assert_eq!(web.account.as_deref(), Some(ACCOUNT));
    let gpu = g.group_of(&instance(GPU[0])).unwrap();
    assert_eq!(gpu.key, e(EntityKind::Ami, "ami-0c0ffee0c0ffee000"));
    assert_eq!(gpu.account.as_deref(), Some(ACCOUNT));
}

#[test]
fn group_of_instances_and_of_the_credentials_of_an_instance() {
    let run = scenario();
    let g = &run.graph;
    let cases: Vec<(EntityId, Option<&str>)> = WEB
        .iter()
        .map(|i| (instance(i), Some("auto_scaling_group/web-asg")))
        .chain(
            BATCH
                .iter()
                .map(|i| (instance(i), Some("auto_scaling_group/batch-asg"))),
        )
        .chain(
            GPU.iter()
                .map(|i| (instance(i), Some("ami/ami-0c0ffee0c0ffee000"))),
        )
        .chain([
            (instance(CI), Some("ami/ami-0d1d2d3d4d5d6d7d8")),
            // The stolen role session is i-0aaaaaaaaaaaaaaa1's credentials, and so is its key.
            (principal(SESSION), Some("auto_scaling_group/web-asg")),
            (
                e(EntityKind::AccessKey, SESSION_KEY),
                Some("auto_scaling_group/web-asg"),
            ),
            // Tied to no instance, even though her request filters on web-asg.
            (principal(ALICE), None),
            (e(EntityKind::AccessKey, "AKIAEXAMPLEALICE0001"), None),
            // Sessions not named after an instance.
            (principal(AUTO_SCALING), None),
            (principal(CI_SESSION), None),
            (e(EntityKind::AccessKey, "ASIAEXAMPLECIDEPLOY2"), None),
            // Keys that name no group: the shared VPC, web-asg's launch template.
            (e(EntityKind::Vpc, "vpc-0a1b2c3d4e5f60718"), None),
            (e(EntityKind::LaunchTemplate, "lt-0abc1234def567890"), None),
            // An instance nobody described.
            (instance("i-0123456789abcdef0"), None),
        ])
        .collect();
    for (entity, want) in cases {
        assert_eq!(
            group_name(g, &entity).as_deref(),
            want,
            "group_of({entity})"
        );
    }
}

#[test]
fn group_of_a_key_entity_is_the_group_it_names() {
    let run = scenario();
    let g = &run.graph;
    for (entity, want) in [
        (
            us_east_1(EntityKind::AutoScalingGroup, "web-asg"),
            "auto_scaling_group/web-asg",
        ),
        (
            us_east_1(EntityKind::AutoScalingGroup, "batch-asg"),
            "auto_scaling_group/batch-asg",
        ),
        (
            e(EntityKind::Ami, "ami-0c0ffee0c0ffee000"),
            "ami/ami-0c0ffee0c0ffee000",
        ),
    ] {
        assert_eq!(
            group_name(g, &entity).as_deref(),
            Some(want),
            "group_of({entity})"
        );
        assert_eq!(
            g.group_of(&entity),
            g.group_of(&instance(match want {
                "auto_scaling_group/web-asg" => WEB[0],
                "auto_scaling_group/batch-asg" => BATCH[0],
                _ => GPU[0],
            }))
        );
    }
}

#[test]
fn custom_precedence_groups_by_instance_profile_then_vpc() {
    let settings =
        Config::parse("[graph]\ngroup_key_precedence = [\"instance_profile\", \"vpc\"]\n")
            .unwrap()
            .validate()
            .unwrap();
    let run = pipeline::build_graph(&main_scenario(), &settings, true);
    let g = &run.graph;
    assert_eq!(
        groups(g),
        vec![
            (
                "instance_profile/batch-instance-profile".to_string(),
                strings(&BATCH)
            ),
            (
                "instance_profile/web-instance-profile".to_string(),
                strings(&WEB)
            ),
            // No instance profile: the VPC.
            ("vpc/vpc-0c0ffee0c0ffee000".to_string(), strings(&GPU)),
            ("vpc/vpc-0d1d2d3d4d5d6d7d8".to_string(), strings(&[CI])),
        ]
    );
    assert_eq!(
        g.group_of(&instance(WEB[1])).unwrap().key,
        e(
            EntityKind::InstanceProfile,
            "arn:aws:iam::111122223333:instance-profile/web-instance-profile"
        )
    );
    assert_eq!(
        group_name(g, &principal(SESSION)).as_deref(),
        Some("instance_profile/web-instance-profile")
    );
    assert_eq!(run.summary.groups.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Relationships.

#[test]
fn edges_of_the_scenario() {
    let run = scenario();
    let g = &run.graph;
    let web_lt = e(EntityKind::LaunchTemplate, "lt-0abc1234def567890");
    let batch_lt = e(EntityKind::LaunchTemplate, "lt-0def4567abc890123");
    let web_profile = e(
        EntityKind::InstanceProfile,
        "arn:aws:iam::111122223333:instance-profile/web-instance-profile",
    );
    let batch_profile = e(
        EntityKind::InstanceProfile,
        "arn:aws:iam::111122223333:instance-profile/batch-instance-profile",
    );
    let shared_vpc = e(EntityKind::Vpc, "vpc-0a1b2c3d4e5f60718");
    let mut want: Vec<(EntityId, EntityId, EdgeKind)> = vec![
        // The session's name is the instance id: it is that instance's credentials.
        (principal(SESSION), instance(WEB[0]), EdgeKind::ActedAs),
        (
            principal(SESSION),
            e(EntityKind::AccessKey, SESSION_KEY),
            EdgeKind::UsesKey,
        ),
        (
            principal(SESSION),
            e(
                EntityKind::IamRole,
                "arn:aws:iam::111122223333:role/web-instance-role",
            ),
            EdgeKind::SessionOf,
        ),
        (
            principal(SESSION),
            e(EntityKind::Account, ACCOUNT),
            EdgeKind::InAccount,
        ),
        (instance(CI), principal(CI_SESSION), EdgeKind::LaunchedBy),
        (
            instance(CI),
            e(EntityKind::Ami, "ami-0d1d2d3d4d5d6d7d8"),
            EdgeKind::RunsAmi,
        ),
        (
            instance(CI),
            e(EntityKind::Vpc, "vpc-0d1d2d3d4d5d6d7d8"),
            EdgeKind::InVpc,
        ),
        // The public IP comes from the GuardDuty findings.
        (
            instance(WEB[0]),
            e(EntityKind::Ip, "203.0.113.11"),
            EdgeKind::HasIp,
        ),
        (
            instance(WEB[0]),
            e(EntityKind::Subnet, "subnet-0a1b2c3d4e5f60718"),
            EdgeKind::InSubnet,
        ),
    ];
    for w in WEB {
        want.extend([
            // Benign: launched by Auto Scaling.
            (instance(w), principal(AUTO_SCALING), EdgeKind::LaunchedBy),
            (
                instance(w),
                us_east_1(EntityKind::AutoScalingGroup, "web-asg"),
                EdgeKind::MemberOf,
            ),
            (instance(w), web_lt.clone(), EdgeKind::MemberOf),
            (
                instance(w),
                us_east_1(EntityKind::CloudFormationStack, "web-stack"),
                EdgeKind::MemberOf,
            ),
            (instance(w), web_profile.clone(), EdgeKind::UsesProfile),
            (
                instance(w),
                e(EntityKind::Ami, "ami-0a1b2c3d4e5f60718"),
                EdgeKind::RunsAmi,
            ),
            (instance(w), shared_vpc.clone(), EdgeKind::InVpc),
        ]);
    }
    for b in BATCH {
        want.extend([
            (instance(b), principal(AUTO_SCALING), EdgeKind::LaunchedBy),
            (
                instance(b),
                us_east_1(EntityKind::AutoScalingGroup, "batch-asg"),
                EdgeKind::MemberOf,
            ),
            (instance(b), batch_lt.clone(), EdgeKind::MemberOf),
            (
                instance(b),
                us_east_1(EntityKind::CloudFormationStack, "batch-stack"),
                EdgeKind::MemberOf,
            ),
            (instance(b), batch_profile.clone(), EdgeKind::UsesProfile),
            (
                instance(b),
                e(EntityKind::Ami, "ami-0b1c2d3e4f5061728"),
                EdgeKind::RunsAmi,
            ),
            // The same VPC as web-asg.
            (instance(b), shared_vpc.clone(), EdgeKind::InVpc),
        ]);
    }
    for gpu in GPU {
        want.extend([
            // What links the GPU group to web-asg.
            (instance(gpu), principal(SESSION), EdgeKind::LaunchedBy),
            (
                instance(gpu),
                e(EntityKind::Ami, "ami-0c0ffee0c0ffee000"),
                EdgeKind::RunsAmi,
            ),
            (
                instance(gpu),
                e(EntityKind::Vpc, "vpc-0c0ffee0c0ffee000"),
                EdgeKind::InVpc,
            ),
            (
                instance(gpu),
                e(EntityKind::Subnet, "subnet-0c0ffee0c0ffee001"),
                EdgeKind::InSubnet,
            ),
        ]);
    }
    let missing: Vec<String> = want
        .iter()
        .filter(|(a, b, k)| !g.has_edge(a, b, *k))
        .map(|(a, b, k)| format!("{a} -{}-> {b}", k.as_str()))
        .collect();
    assert!(missing.is_empty(), "missing edges: {missing:#?}");

    // And what must not be there.
    let unwanted = [
        (instance(WEB[0]), principal(SESSION), EdgeKind::LaunchedBy),
        (
            instance(GPU[0]),
            principal(AUTO_SCALING),
            EdgeKind::LaunchedBy,
        ),
        (principal(AUTO_SCALING), instance(WEB[0]), EdgeKind::ActedAs),
        (principal(SESSION), instance(WEB[1]), EdgeKind::ActedAs),
        (
            instance(BATCH[0]),
            us_east_1(EntityKind::AutoScalingGroup, "web-asg"),
            EdgeKind::MemberOf,
        ),
        (instance(GPU[0]), web_profile.clone(), EdgeKind::UsesProfile),
    ];
    for (a, b, k) in &unwanted {
        assert!(
            !g.has_edge(a, b, *k),
            "unexpected {a} -{}-> {b}",
            k.as_str()
        );
    }
    // The failed launches launched nothing: exactly the 6 GPU instances were launched by the
    // session, and no instance acted as anything but i-…1.
    let (_, edges) = g.snapshot();
    let launched_by_session: BTreeSet<&str> = edges
        .iter()
        .filter(|(_, t, k)| *k == EdgeKind::LaunchedBy && *t == principal(SESSION).to_string())
        .map(|(s, _, _)| s.as_ref())
        .collect();
    let gpu_ids: BTreeSet<String> = GPU.iter().map(|i| instance(i).to_string()).collect();
    assert_eq!(
        launched_by_session,
        gpu_ids.iter().map(String::as_str).collect()
    );
    let acted_as: Vec<(String, String, EdgeKind)> = edges
        .iter()
        .filter(|(_, _, k)| *k == EdgeKind::ActedAs)
        .map(|(s, t, k)| (s.to_string(), t.to_string(), *k))
        .collect();
    assert_eq!(
        acted_as,
        vec![(
            principal(SESSION).to_string(),
            instance(WEB[0]).to_string(),
            EdgeKind::ActedAs
        )]
    );
    // alice's DescribeInstances names no instance.
    let alice = principal(ALICE).to_string();
    assert!(
        edges
            .iter()
            .filter(|(s, t, _)| *s == alice || *t == alice)
            .all(|(_, t, _)| !t.starts_with("instance:")),
        "alice is linked to an instance"
    );
}

// ---------------------------------------------------------------------------------------------
// One signal per finding, summary counts.

/// The signal node of a record reference, from the export snapshot.
fn signal_node_props(g: &EntityGraph, reference: &str) -> BTreeMap<String, String> {
    let (nodes, _) = g.snapshot();
    let id = format!("signal:{reference}");
    let found: Vec<_> = nodes.iter().filter(|n| n.id == id).collect();
    assert_eq!(found.len(), 1, "signal nodes with id {id}");
    found[0]
        .props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_bitcoin_tool_finding_arriving_three_ways_is_one_signal_of_its_newest_version() {
    let run = scenario();
    let s = &run.summary;
    // 19 CloudTrail records + 8 distinct GuardDuty findings + 1 Inspector finding.
    assert_eq!(s.distinct_signals, 28);
    assert_eq!(run.graph.signal_count(), 28);
    // 30 records decoded: the BitcoinTool finding's two other copies were merged, either as
    // a duplicate or as an update, depending on which arrived first.
    assert_eq!(s.records.values().sum::<u64>(), 30);
    assert_eq!(s.duplicates_merged + s.findings_updated, 2, "{s:?}");
    let props = signal_node_props(&run.graph, BITCOIN_ARN);
    // The newest version: last seen 09:41:03 (the older one was last seen at 09:05:50).
    assert_eq!(props["time"], "2025-05-02T09:41:03.000Z", "{props:?}");
    assert_eq!(props["signal_kind"], "CryptoCurrency:EC2/BitcoinTool.B!DNS");
    assert_eq!(props["severity"], "8");
    assert_eq!(props["reference"], BITCOIN_ARN);
    assert_eq!(props["finding"], "true");
    let (nodes, edges) = run.graph.snapshot();
    assert_eq!(
        nodes.iter().filter(|n| n.id.contains(BITCOIN_ARN)).count(),
        1
    );
    let observed: BTreeSet<&str> = edges
        .iter()
        .filter(|(s, _, k)| *k == EdgeKind::ObservedOn && *s == format!("signal:{BITCOIN_ARN}"))
        .map(|(_, t, _)| t.as_ref())
        .collect();
    assert!(
        observed.contains("instance:i-0aaaaaaaaaaaaaaa1")
            && observed.contains("domain:xmr.pool.minergate.com"),
        "{observed:?}"
    );
}

#[test]
fn an_older_version_read_after_the_newer_one_changes_nothing() {
    // One thread, folders sorted: asff/ (newest, 09:44:20.512), …, guardduty/findings.jsonl
    // (older, 09:07:40.218), guardduty/get-findings.json (newest again: the GuardDuty
    // original of the same version replaces the Security Hub copy).
    let run = pipeline::build_graph(&main_scenario(), &single_threaded(), true);
    assert_eq!(run.summary.distinct_signals, 28);
    assert_eq!(run.summary.duplicates_merged, 1);
    assert_eq!(run.summary.findings_updated, 1);
    assert_eq!(
        signal_node_props(&run.graph, BITCOIN_ARN)["time"],
        "2025-05-02T09:41:03.000Z"
    );
    // The older version first, then the newer one: one update, one duplicate.
    let gd = fixtures().join("guardduty");
    let run = pipeline::build_graph(
        &[gd.join("findings.jsonl"), gd.join("get-findings.json")],
        &single_threaded(),
        true,
    );
    assert_eq!(
        (
            run.summary.distinct_signals,
            run.summary.findings_updated,
            run.summary.duplicates_merged
        ),
        (3, 1, 0)
    );
    assert_eq!(
        signal_node_props(&run.graph, BITCOIN_ARN)["time"],
        "2025-05-02T09:41:03.000Z"
    );
}

/// The same files read in another order (as parallel reading may do from run to run) must
/// give the same graph, byte for byte.
#[test]
fn the_graph_does_not_depend_on_the_order_files_are_read_in() {
    let (gd, asff) = (fixtures().join("guardduty"), fixtures().join("asff"));
    let a = pipeline::build_graph(&[gd.clone(), asff.clone()], &single_threaded(), true);
    let b = pipeline::build_graph(&[asff, gd], &single_threaded(), true);
    assert_eq!(
        signal_node_props(&a.graph, BITCOIN_ARN),
        signal_node_props(&b.graph, BITCOIN_ARN),
        "the BitcoinTool signal node differs with the reading order"
    );
    assert!(
        export(&a.graph, Format::Json) == export(&b.graph, Format::Json),
        "JSON export differs with the reading order"
    );
}

#[test]
fn summary_counts_per_record_kind() {
    let run = scenario();
    let s = &run.summary;
    let records: Vec<(&str, u64)> = s.records.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        records,
        vec![
            ("asff", 3),
            // gz 3 + 2, uncompressed 3, JSON Lines 4, array 3, single 1.
            ("cloudtrail", 16),
            ("cloudtrail (EventBridge)", 1),
            ("cloudtrail (LookupEvents)", 2),
            // GetFindings 2, single 1, JSON Lines 2, array 1, CLI 1.
            ("guardduty", 7),
            ("guardduty (EventBridge)", 1),
        ]
    );
    // 15 record files.
    assert_eq!(s.files, 15);
    assert_eq!(s.gzip_files, 2);
    assert_eq!(s.files_not_json, 0);
    assert_eq!(s.skipped, 0, "{:?}", s.skipped_reasons);
    assert_eq!(s.ignored, 0, "{:?}", s.ignored_reasons);
    assert!(!s.lost_anything());
    let groups: Vec<(&str, usize)> = s
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.members.len()))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("auto_scaling_group/batch-asg", 2),
            ("auto_scaling_group/web-asg", 3),
            ("ami/ami-0c0ffee0c0ffee000", 6),
            ("ami/ami-0d1d2d3d4d5d6d7d8", 1),
        ]
    );
    assert_eq!(s.entities as usize, run.graph.entity_count());
    assert_eq!(s.edges as usize, run.graph.edge_count());
    let text = s.to_text();
    assert!(
        text.contains("read 15 file(s) (2 gzip)") && text.contains("30 record(s) decoded"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Exports.

#[test]
fn json_export_is_cytoscape_elements_with_consistent_ids() {
    let run = scenario();
    let g = &run.graph;
    let doc: Value = serde_json::from_str(&export(g, Format::Json)).unwrap();
    let nodes = doc["elements"]["nodes"].as_array().expect("elements.nodes");
    let edges = doc["elements"]["edges"].as_array().expect("elements.edges");
    let (snap_nodes, snap_edges) = g.snapshot();
    assert_eq!(nodes.len(), snap_nodes.len());
    assert_eq!(edges.len(), snap_edges.len());
    let mut ids = HashSet::new();
    for n in nodes {
        let data = n["data"].as_object().expect("node data");
        for key in ["id", "label", "kind"] {
            assert!(data.get(key).is_some_and(Value::is_string), "{key} in {n}");
        }
        assert!(
            ids.insert(data["id"].as_str().unwrap().to_string()),
            "duplicate node id {}",
            data["id"]
        );
    }
    let mut kinds = BTreeMap::<&str, usize>::new();
    for edge in edges {
        let data = edge["data"].as_object().expect("edge data");
        for key in ["source", "target", "kind"] {
            assert!(
                data.get(key).is_some_and(Value::is_string),
                "{key} in {edge}"
            );
        }
        for end in ["source", "target"] {
            assert!(
                ids.contains(data[end].as_str().unwrap()),
                "{end} of {edge} is not a node"
            );
        }
        *kinds.entry(data["kind"].as_str().unwrap()).or_default() += 1;
    }
    // Cytoscape needs element ids unique across nodes and edges.
    for edge in edges {
        if let Some(id) = edge["data"]["id"].as_str() {
            assert!(ids.insert(id.to_string()), "edge id {id} is not unique");
        }
    }
    // 12 instances in groups; 28 signals.
    assert_eq!(kinds["in_group"], 12);
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n["data"]["kind"] == "signal")
            .count(),
        28
    );
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n["data"]["kind"] == "instance_group")
            .count(),
        4
    );
    for kind in ["acted_as", "launched_by", "member_of", "observed_on"] {
        assert!(kinds.contains_key(kind), "no {kind} edge: {kinds:?}");
    }
    let web1 = nodes
        .iter()
        .find(|n| n["data"]["id"] == "instance:i-0aaaaaaaaaaaaaaa1")
        .unwrap();
    assert_eq!(web1["data"]["kind"], "instance");
    assert_eq!(web1["data"]["group"], "auto_scaling_group/web-asg");
}

/// Splits DOT text into statements' kinds: node statements (a quoted id followed by `[`) and
/// edge statements (`->`); checks that braces balance outside quoted strings.
fn dot_shape(dot: &str) -> (usize, usize) {
    let mut depth = 0i64;
    let (mut in_string, mut escaped) = (false, false);
    for c in dot.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                assert!(depth >= 0, "unbalanced `}}`");
            }
            _ => {}
        }
    }
    assert!(!in_string, "unterminated string");
    assert_eq!(depth, 0, "unbalanced braces");
    let lines: Vec<&str> = dot.lines().map(str::trim).collect();
    let edges = lines.iter().filter(|l| l.contains("\" -> \"")).count();
    let nodes = lines
        .iter()
        .filter(|l| l.starts_with('"') && !l.contains("\" -> \"") && l.ends_with("];"))
        .count();
    (nodes, edges)
}

#[test]
fn dot_export_has_one_statement_per_node_and_edge_and_is_deterministic() {
    let first = scenario();
    let dot = export(&first.graph, Format::Dot);
    assert!(dot.starts_with("digraph entities {\n"), "{}", &dot[..40]);
    assert!(dot.ends_with("}\n"));
    let (snap_nodes, snap_edges) = first.graph.snapshot();
    let (nodes, edges) = dot_shape(&dot);
    assert_eq!(nodes, snap_nodes.len(), "node statements");
    assert_eq!(edges, snap_edges.len(), "edge statements");
    // One cluster per instance group.
    assert_eq!(dot.matches("subgraph cluster_").count(), 4);
    // Another run over the same input gives the same bytes.
    let second = scenario();
    assert!(
        dot == export(&second.graph, Format::Dot),
        "DOT differs between two runs"
    );
    assert!(
        export(&first.graph, Format::Json) == export(&second.graph, Format::Json),
        "JSON differs between two runs"
    );
    // Graphviz accepts it (when installed).
    crate::common::graphviz_accepts(&dot);
}

#[test]
fn without_signal_nodes_the_entities_and_groups_are_the_same() {
    let with = scenario();
    let without = pipeline::build_graph(&main_scenario(), &default_settings(), false);
    assert_eq!(groups(&with.graph), groups(&without.graph));
    assert_eq!(without.graph.entity_count(), without.graph.node_count());
    assert_eq!(without.summary.distinct_signals, 28);
    let (nodes, edges) = without.graph.snapshot();
    assert!(nodes.iter().all(|n| n.kind != "signal"));
    assert!(edges.iter().all(|(_, _, k)| *k != EdgeKind::ObservedOn));
    assert!(
        without
            .graph
            .has_edge(&instance(GPU[3]), &principal(SESSION), EdgeKind::LaunchedBy)
    );
}

/// Regression: versions of one finding naming different entities, and records that disagree
/// on a principal's ARN, gave a graph that depended on which file was read first.
#[test]
fn versions_and_disagreeing_records_give_the_same_graph_in_any_order() {
    let finding = |updated: &str, key: &str, ip: &str| {
        format!(
            r#"{{"schemaVersion":"2.0","accountId":"111122223333","region":"us-east-1","id":"0a2d97aab2c25db1bc31cfdfc46be34c","arn":"arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/0a2d97aab2c25db1bc31cfdfc46be34c","type":"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS","severity":8,"createdAt":"2025-05-02T09:00:00Z","updatedAt":"{updated}","resource":{{"resourceType":"AccessKey","accessKeyDetails":{{"accessKeyId":"{key}","principalId":"AROAEXAMPLE:i-0aaaaaaaaaaaaaaa1","userName":"web-role","userType":"AssumedRole"}}}},"service":{{"count":1,"action":{{"actionType":"AWS_API_CALL","awsApiCallAction":{{"api":"DescribeInstances","remoteIpDetails":{{"ipAddressV4":"{ip}"}}}}}}}}}}"#
        )
    };
    let call = |account: &str| {
        format!(
            r#"{{"eventVersion":"1.10","eventTime":"2025-05-02T09:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","recipientAccountId":"{account}","eventID":"00000000-0000-4000-8000-{account}","userIdentity":{{"type":"AssumedRole","principalId":"AROASHARED:AutoScaling","arn":"arn:aws:sts::{account}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling","invokedBy":"autoscaling.amazonaws.com"}}}}"#
        )
    };
    let older = finding(
        "2025-05-02T09:00:00Z",
        "ASIAOLDER00000000001",
        "198.51.100.1",
    );
    let newer = finding(
        "2025-05-02T10:00:00Z",
        "ASIANEWER00000000002",
        "198.51.100.2",
    );
    let export = |first: &[String], second: &[String]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), first.join("\n")).unwrap();
        std::fs::write(dir.path().join("b.jsonl"), second.join("\n")).unwrap();
        let run = pipeline::build_graph(&[dir.path().to_path_buf()], &single_threaded(), true);
        let mut out = Vec::new();
        finding_correlator::graph::export::write_json(&run.graph, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let a = [older.clone(), call("111122223333")];
    let b = [newer.clone(), call("444455556666")];
    let one = export(&a, &b);
    let other = export(&b, &a);
    assert_eq!(one, other);
    // Both versions' keys and addresses are in the graph; the signal shows the newest.
    for s in [
        "ASIAOLDER00000000001",
        "ASIANEWER00000000002",
        "198.51.100.1",
        "198.51.100.2",
    ] {
        assert!(one.contains(s), "{s} missing");
    }
    assert!(
        one.contains(r#""time":"2025-05-02T10:00:00.000Z""#),
        "{one}"
    );
}

/// An instance whose later records name another group moves there, in whichever order the
/// records are read; a group all of whose members moved is gone, as is the group its key
/// entity named. Two instances move from `old-asg` to `new-asg`, a third stays.
#[test]
fn an_instance_moves_to_the_group_its_latest_record_names_and_an_emptied_group_is_gone() {
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("guardduty/finding-single.json")).unwrap(),
    )
    .unwrap();
    let finding = |name: &str, instance: &str, group: &str, at: &str| {
        let mut f = template.clone();
        f["id"] = Value::from(name);
        f["arn"] = Value::from(format!(
            "arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/d/finding/{name}"
        ));
        f["createdAt"] = Value::from(at);
        f["updatedAt"] = Value::from(at);
        f["service"]["eventFirstSeen"] = Value::from(at);
        f["service"]["eventLastSeen"] = Value::from(at);
        f["resource"]["instanceDetails"]["instanceId"] = Value::from(instance);
        f["resource"]["instanceDetails"]["tags"] =
            serde_json::json!([{"key": "aws:autoscaling:groupName", "value": group}]);
        f.to_string()
    };
    let (a, b, c) = (
        "i-0eeeeeeeeeeeeeee1",
        "i-0eeeeeeeeeeeeeee2",
        "i-0eeeeeeeeeeeeeee3",
    );
    let first = [
        finding("f1", a, "old-asg", "2025-05-02T09:00:00Z"),
        finding("f2", b, "old-asg", "2025-05-02T09:00:00Z"),
        finding("f3", c, "old-asg", "2025-05-02T09:00:00Z"),
        finding("f4", a, "gone-asg", "2025-05-02T08:00:00Z"),
    ];
    let later = [
        finding("f5", a, "new-asg", "2025-05-02T10:00:00Z"),
        finding("f6", b, "new-asg", "2025-05-02T10:00:00Z"),
    ];
    let graph = |one: &[String], two: &[String]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), one.join("\n")).unwrap();
        std::fs::write(dir.path().join("b.jsonl"), two.join("\n")).unwrap();
        pipeline::build_graph(&[dir.path().to_path_buf()], &single_threaded(), false).graph
    };
    for g in [graph(&first, &later), graph(&later, &first)] {
        let asg = |name| us_east_1(EntityKind::AutoScalingGroup, name);
        assert_eq!(
            groups(&g),
            [
                ("auto_scaling_group/new-asg".to_string(), strings(&[a, b])),
                ("auto_scaling_group/old-asg".to_string(), strings(&[c])),
            ]
        );
        assert_eq!(
            group_name(&g, &instance(a)).as_deref(),
            Some("auto_scaling_group/new-asg")
        );
        assert_eq!(
            group_name(&g, &instance(c)).as_deref(),
            Some("auto_scaling_group/old-asg")
        );
        assert_eq!(
            group_name(&g, &asg("new-asg")).as_deref(),
            Some("auto_scaling_group/new-asg")
        );
        assert_eq!(group_name(&g, &asg("gone-asg")), None);
        let gone = GroupId {
            account: Some(ACCOUNT.into()),
            key: asg("gone-asg"),
        };
        assert!(g.members(&gone).is_none());
    }
}
