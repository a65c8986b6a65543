//! Issue 17: detection knowledge as data (the instance-type table, lists, validation of rules
//! against the AWS service models and GuardDuty's finding types).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{correlator, fixture};

/// The summary line of `correlate --summary json`.
fn json_summary(stderr: &str) -> Value {
    serde_json::from_str(stderr.lines().last().unwrap()).unwrap()
}

/// Bare-metal sizes have no number in their name: the size heuristic counted them as 0 vCPUs,
/// so 9 `c5.metal` (96 vCPUs each, from the table) launched without `cpuOptions` never
/// reached `mass-compute-deployment`'s 800 vCPUs.
#[test]
fn issue_17_metal_sizes_count_their_vcpus_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let cpu_options = regex::Regex::new(r#""cpuOptions":\s*\{[^}]*\},?"#).unwrap();
    let metal = crate::common::edited_scenario(dir.path(), "mass-compute-deployment", &|t| {
        cpu_options
            .replace_all(t, "")
            .replace("c5.24xlarge", "c5.metal")
            .replace("m5.24xlarge", "m5.metal")
    });
    let text = fs::read_to_string(metal.join("cloudtrail-us-east-1.jsonl")).unwrap();
    assert!(!text.contains("cpuOptions") && text.contains("c5.metal"));
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(&metal)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "finding-correlator/mass-compute-deployment/111122223333/us-east-1/principal/AIDAEXAMPLEREPORTING1/2025-05-07T10:02:18.000Z"
        ],
        "{stderr}"
    );
    assert!(!stderr.contains("instance types not in"), "{stderr}");
}

/// A type the table does not hold is counted as nothing and named once per run, with how
/// many signals named it: in one warning, in the text summary and in the JSON summary.
#[test]
fn issue_17_unknown_instance_types_are_reported_once_per_run_with_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cpu_options = regex::Regex::new(r#""cpuOptions":\s*\{[^}]*\},?"#).unwrap();
    let made_up = crate::common::edited_scenario(dir.path(), "mass-compute-deployment", &|t| {
        cpu_options
            .replace_all(t, "")
            .replace("c5.24xlarge", "c9z.24xlarge")
            .replace("m5.24xlarge", "zz1.metal")
    });
    let out = correlator()
        .args(["correlate", "--asff", "-"])
        .arg(&made_up)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Not guessed from the size: no vCPUs, so no finding.
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["Findings"].as_array().unwrap().len(), 0, "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("instance types not in this build's table"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("c9z.24xlarge (2 signal(s)), zz1.metal (1 signal(s))"),
        "{stderr}"
    );
    assert!(
        stderr.contains("instance types not in this build's table, no vCPUs counted: c9z.24xlarge (2 signal(s)), zz1.metal (1 signal(s))"),
        "{stderr}"
    );
    let out = correlator()
        .args(["correlate", "--summary", "json"])
        .arg(&made_up)
        .output()
        .unwrap();
    let summary = json_summary(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        summary["read"]["unknown_instance_types"],
        serde_json::json!({"c9z.24xlarge": 2, "zz1.metal": 1}),
        "{summary}"
    );
}

/// A shipped rule with one event name, one event source and one wildcard pattern mistyped:
/// `rules check` names each at its line and column with the nearest valid name, and exits 2.
#[test]
fn issue_17_rules_check_names_mistyped_event_names_with_the_nearest_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let rule = fs::read_to_string(
        crate::common::repo().join("correlation-rules/failed-compute-launch.yaml"),
    )
    .unwrap();
    let events = |list: &str| {
        rule.replacen(
            r#"events: ["ec2.amazonaws.com:RunInstances"]"#,
            &format!("events: [{list}]"),
            1,
        )
    };
    let bad = events(r#""ec2.amazonaws.com:RunInstnaces", "lambda.amazonaws.con:CreateFunction*""#);
    assert_ne!(bad, rule);
    let path = dir.path().join("failed-compute-launch.yaml");
    fs::write(&path, &bad).unwrap();
    let at = |needle: &str| {
        let (line_no, line) = bad
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        let col = line.find(needle).unwrap();
        // The quote before the value, if any, is where the value starts.
        let col = if line[..col].ends_with('"') {
            col
        } else {
            col + 1
        };
        format!("{}:{}:{}", path.display(), line_no + 1, col)
    };
    let out = correlator()
        .args(["rules", "check", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: event \"ec2.amazonaws.com:RunInstnaces\": event name \"RunInstnaces\" is not an event name of ec2.amazonaws.com (did you mean \"RunInstances\"?)",
            at("ec2.amazonaws.com:RunInstnaces")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}: event \"lambda.amazonaws.con:CreateFunction*\": event source \"lambda.amazonaws.con\" is not an AWS event source (did you mean \"lambda.amazonaws.com\"?)",
            at("lambda.amazonaws.con:CreateFunction*")
        )),
        "{stderr}"
    );
    // CloudTrail's own spelling of a Lambda call (from the data, not a special case) and the
    // shipped rules pass.
    let spelled = events(
        r#""ec2.amazonaws.com:RunInstances", "lambda.amazonaws.com:CreateFunction20150331""#,
    );
    assert_ne!(spelled, rule);
    fs::write(&path, spelled).unwrap();
    let out = correlator()
        .args(["rules", "check", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let out = correlator().args(["rules", "check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// The `SequenceIndicators` of `key` of each finding `correlate` writes for the
/// compromised-instance-group positive case, with `rules` (a folder) and `config` (TOML).
fn indicators(rules: Option<&Path>, config: Option<&str>, key: &str) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = correlator();
    if let Some(text) = config {
        let p = dir.path().join("c.toml");
        fs::write(&p, text).unwrap();
        cmd.arg("--config").arg(p);
    }
    cmd.args(["correlate", "--asff", "-"]);
    if let Some(r) = rules {
        cmd.arg("--rules").arg(r);
    }
    let out = cmd
        .arg(fixture("scenarios/compromised-instance-group/positive"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["Findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{stderr}");
    findings
        .iter()
        .map(|f| {
            f["Detection"]["Sequence"]["SequenceIndicators"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["Key"] == key)
                .flat_map(|i| i["Values"].as_array().unwrap().iter())
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// `indicators` over a copy of the compromised-instance-group positive case edited by `edit`.
fn indicators_of(
    edit: &dyn Fn(&str) -> String,
    rules: Option<&Path>,
    key: &str,
) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::edited_scenario(dir.path(), "compromised-instance-group", edit);
    let mut cmd = correlator();
    cmd.args(["correlate", "--asff", "-"]);
    if let Some(r) = rules {
        cmd.arg("--rules").arg(r);
    }
    let out = cmd.arg(&input).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["Detection"]["Sequence"]["SequenceIndicators"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["Key"] == key)
                .flat_map(|i| i["Values"].as_array().unwrap().iter())
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// A finding of any type that names a mining pool's domain (or a subdomain of one) carries it
/// as a CRYPTOMINING_DOMAIN indicator, from the `mining_pool_domains` list; a `--rules`
/// folder can take a domain out.
#[test]
fn issue_17_mining_pool_domains_are_indicators_whatever_the_finding_type() {
    // The C&C finding now names a pool the list names (none of its parents is listed).
    let edit = |t: &str| t.replace("beacon.c2-relay.example.org", "de.ckpool.org");
    assert_eq!(
        indicators_of(&edit, None, "CRYPTOMINING_DOMAIN"),
        [vec![
            "pool.supportxmr.com".to_string(),
            "de.ckpool.org".to_string()
        ]]
    );
    let dir = tempfile::tempdir().unwrap();
    let folder = rules_with_lists(
        dir.path(),
        &[("mining_pool_domains.yaml", "remove: [de.ckpool.org]\n")],
    );
    assert_eq!(
        indicators_of(&edit, Some(&folder), "CRYPTOMINING_DOMAIN"),
        [vec!["pool.supportxmr.com".to_string()]]
    );
}

/// A copy of the shipped rules with `lists` (file name, text) in its `lists/` folder.
fn rules_with_lists(dir: &Path, lists: &[(&str, &str)]) -> PathBuf {
    let rules = dir.join("rules");
    fs::create_dir_all(rules.join("lists")).unwrap();
    for e in fs::read_dir(crate::common::repo().join("correlation-rules")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            fs::copy(&p, rules.join(p.file_name().unwrap())).unwrap();
        }
    }
    for (name, text) in lists {
        fs::write(rules.join("lists").join(name), text).unwrap();
    }
    rules
}

/// Lists are layered, lowest first: the shipped ones, the `--rules` folder's `lists/`, the
/// configuration; each layer replaces a list (`values`) or extends it (`add`, `remove`), and
/// the ASFF indicators follow the lists loaded.
#[test]
fn issue_17_lists_layer_shipped_then_rules_folder_then_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let both = vec![
        "iam:CreateAccessKey".to_string(),
        "ec2:AuthorizeSecurityGroupIngress".to_string(),
    ];
    let only_key = vec!["iam:CreateAccessKey".to_string()];
    // Shipped lists.
    assert_eq!(
        indicators(None, None, "HIGH_RISK_API"),
        std::slice::from_ref(&both)
    );
    assert_eq!(
        indicators(None, None, "CRYPTOMINING_DOMAIN"),
        [vec!["pool.supportxmr.com".to_string()]]
    );
    // The rules folder takes one out.
    let folder = rules_with_lists(
        dir.path(),
        &[(
            "high_risk_apis.yaml",
            "remove: [\"ec2:AuthorizeSecurityGroupIngress\"]\n",
        )],
    );
    assert_eq!(
        indicators(Some(&folder), None, "HIGH_RISK_API"),
        std::slice::from_ref(&only_key)
    );
    // The configuration puts it back over the folder.
    let add = "[lists.high_risk_apis]\nadd = [\"ec2:AuthorizeSecurityGroupIngress\"]\n";
    assert_eq!(
        indicators(Some(&folder), Some(add), "HIGH_RISK_API"),
        std::slice::from_ref(&both)
    );
    // The configuration replaces a list, with `values` or with the older `[rules]` key.
    let replace = "[lists.high_risk_apis]\nvalues = [\"iam:CreateAccessKey\"]\n";
    assert_eq!(
        indicators(None, Some(replace), "HIGH_RISK_API"),
        std::slice::from_ref(&only_key)
    );
    let legacy = "[rules]\nhigh_risk_apis = [\"iam:CreateAccessKey\"]\n";
    assert_eq!(indicators(None, Some(legacy), "HIGH_RISK_API"), [only_key]);
    // A folder's lists replace the shipped ones: no type reports mining and no pool is
    // named, so the sink names no cryptomining domain.
    let other = tempfile::tempdir().unwrap();
    let no_mining = rules_with_lists(
        other.path(),
        &[
            (
                "cryptomining_finding_types.yaml",
                "values: [\"Nothing:*\"]\n",
            ),
            (
                "mining_pool_domains.yaml",
                "values: [pool.example.invalid]\n",
            ),
        ],
    );
    assert_eq!(
        indicators(Some(&no_mining), None, "CRYPTOMINING_DOMAIN"),
        [Vec::<String>::new()]
    );
}

/// A list file that names no list, removes a value the list does not hold, or holds a bad
/// value is a `file:line:column` error (exit 2); so is a `[lists.NAME]` of no list.
#[test]
fn issue_17_bad_list_files_and_list_keys_are_errors_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let folder = rules_with_lists(
        dir.path(),
        &[
            ("high_risk_api.yaml", "add: [\"iam:CreateUser\"]\n"),
            (
                "high_powered_instance_types.yaml",
                "description: mine\nremove:\n  - \"x9.*\"\n",
            ),
            ("high_risk_apis.yaml", "add:\n  - \"CreateUser\"\n"),
        ],
    );
    let out = correlator()
        .args(["rules", "check", "--rules"])
        .arg(&folder)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lists = folder.join("lists");
    for want in [
        format!(
            "{}:1:1: no list is named \"high_risk_api\" (did you mean high_risk_apis.yaml?)",
            lists.join("high_risk_api.yaml").display()
        ),
        format!(
            "{}:3:5: remove: \"x9.*\" is not in the list high_powered_instance_types",
            lists.join("high_powered_instance_types.yaml").display()
        ),
        format!(
            "{}:2:5: high_risk_apis: \"CreateUser\" is not `service:Api`",
            lists.join("high_risk_apis.yaml").display()
        ),
    ] {
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
    let config = dir.path().join("c.toml");
    fs::write(
        &config,
        "[lists.high_risk_api]\nadd = [\"iam:CreateUser\"]\n",
    )
    .unwrap();
    let out = correlator()
        .arg("--config")
        .arg(&config)
        .args(["validate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("lists.high_risk_api: no list is named \"high_risk_api\""),
        "{stderr}"
    );
}

/// A mistyped GuardDuty finding type (a literal, and a pattern that matches nothing) is a
/// `file:line:column` error; the literal's names the nearest published type.
#[test]
fn issue_17_rules_check_names_mistyped_finding_types_with_the_nearest_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_with_lists(dir.path(), &[]);
    let path = rules.join("compromised-instance-group.yaml");
    let rule = fs::read_to_string(&path).unwrap();
    let bad = rule
        .replacen(
            "Impact:Runtime/CryptoMinerExecuted",
            "Impact:Runtime/CryptoMinerExecutd",
            1,
        )
        .replacen("\"CryptoCurrency:*\"", "\"CryptoCurency:*\"", 1);
    assert_ne!(bad, rule);
    fs::write(&path, &bad).unwrap();
    let at = |needle: &str| {
        let (n, line) = bad
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        format!(
            "{}:{}:{}",
            path.display(),
            n + 1,
            line.find(needle).unwrap()
        )
    };
    let out = correlator()
        .args(["rules", "check", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        format!(
            "{}: finding type \"Impact:Runtime/CryptoMinerExecutd\" is not a GuardDuty finding type (did you mean \"Impact:Runtime/CryptoMinerExecuted\"?)",
            at("Impact:Runtime/CryptoMinerExecutd")
        ),
        format!(
            "{}: finding type pattern \"CryptoCurency:*\" matches no GuardDuty finding type",
            at("CryptoCurency:*")
        ),
    ] {
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
}

/// The README of the rules: `high_powered_instance_types` holds the accelerated families and
/// "`*.12xlarge` and every larger size". Every type of the instance-type table of 12xlarge
/// or more, metal, or with GPUs or accelerators is high-powered (so a size the table gains
/// without the list gaining it fails here), SageMaker's `ml.` types as their EC2 types, and
/// the `high_powered` operator and the `launched_high_powered_*` fields agree (one test of
/// both).
#[test]
fn every_large_or_accelerated_type_of_the_table_is_high_powered() {
    use finding_correlator::rules::compile::Glob;
    use finding_correlator::rules::fields::FieldContext;
    use finding_correlator::rules::lists::{HIGH_POWERED_INSTANCE_TYPES, Lists};
    let lists = Lists::builtin().unwrap();
    let globs: Vec<Glob> = lists
        .get(HIGH_POWERED_INSTANCE_TYPES)
        .iter()
        .map(|p| Glob::new(p))
        .collect();
    let ctx = FieldContext {
        high_powered: &globs,
    };
    let table = fs::read_to_string(crate::common::repo().join("data/instance_types.tsv")).unwrap();
    let mut missed = Vec::new();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (ty, gpus, accelerators) = (cols[0], cols[3], cols[4]);
        let size = ty.rsplit('.').next().unwrap();
        let large = size
            .strip_suffix("xlarge")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 12);
        let accelerated = gpus != "0" || accelerators != "0";
        if large || accelerated || size.starts_with("metal") {
            checked += 1;
            if !ctx.is_high_powered(ty) {
                missed.push(ty.to_string());
            }
        }
    }
    assert!(checked > 200, "{checked} types checked");
    assert!(missed.is_empty(), "not high-powered: {missed:?}");
    for (ty, want) in [
        ("ml.g5.2xlarge", true),
        ("g5.2xlarge", true),
        ("x8i.64xlarge", true),
        ("t3.micro", false),
        ("ml.t3.medium", false),
    ] {
        assert_eq!(ctx.is_high_powered(ty), want, "{ty}");
    }
}
