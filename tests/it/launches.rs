//! Issue 17, item 1: every compute-buying API is a launch.
//!
//! For each API of the launch catalog (`correlation-rules/launches/compute-apis.yaml`): a
//! cryptomining attack that buys compute through it with a compromised instance's role
//! credentials (a GuardDuty cryptomining finding on the instance, then the call) yields a HIGH
//! or CRITICAL finding that names the instance's Auto Scaling group and what was bought (its
//! instance type and the ids the API returned), in one run, in two runs with the state saved
//! between them, and record by record; and the same call made by Auto Scaling's service-linked role or by a
//! CI role, without any finding, yields no finding at all.

use std::path::Path;
use std::sync::Arc;

use finding_correlator::config::{Config, Settings};
use finding_correlator::pipeline;
use finding_correlator::rules::RuleSet;
use finding_correlator::sinks::asff::{self, Writer};
use finding_correlator::state::{KeptFinding, State};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const VICTIM: &str = "i-0a11ce00000000001";
const GROUP: &str = "gpu-victim-asg";

fn settings() -> Settings {
    Config::default()
        .validate()
        .expect("default settings are valid")
}

fn rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::builtin().expect("the shipped rules load"))
}

/// The cryptomining finding on the victim, a member of [`GROUP`].
fn mining_finding() -> Value {
    json!({
        "schemaVersion": "2.0", "accountId": ACCOUNT, "region": "us-east-1",
        "id": "a1000000000000000000000000000001",
        "arn": format!("arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1000000000000000000000000000001"),
        "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8,
        "createdAt": "2025-06-02T09:10:00.000Z", "updatedAt": "2025-06-02T09:10:00.000Z",
        "resource": {"resourceType": "Instance", "instanceDetails": {
            "instanceId": VICTIM, "imageId": "ami-0a1b2c3d4e5f60718",
            "tags": [{"key": "aws:autoscaling:groupName", "value": GROUP}]}},
        "service": {"eventFirstSeen": "2025-06-02T09:05:00Z", "eventLastSeen": "2025-06-02T09:10:00Z",
            "count": 3, "action": {"actionType": "DNS_REQUEST",
            "dnsRequestAction": {"domain": "xmr.pool.minergate.com"}}}
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// The victim's role session.
    Victim,
    /// Auto Scaling's service-linked role.
    AutoScaling,
    /// A CI role (no instance).
    Ci,
}

fn identity(who: Who) -> Value {
    match who {
        Who::Victim => json!({
            "type": "AssumedRole", "principalId": format!("AROAEXAMPLEGPUROLE01:{VICTIM}"),
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/gpu-web-role/{VICTIM}"),
            "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLEGPUKEY001",
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/gpu-web-role"), "userName": "gpu-web-role"}}
        }),
        Who::AutoScaling => json!({
            "type": "AssumedRole", "principalId": "AROAEXAMPLEASGSVC0004:AutoScaling",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"),
            "accountId": ACCOUNT, "invokedBy": "autoscaling.amazonaws.com"
        }),
        Who::Ci => json!({
            "type": "AssumedRole", "principalId": "AROAEXAMPLECIROLE001:gitlab-runner-42",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy-role/gitlab-runner-42"),
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/ci-deploy-role"), "userName": "ci-deploy-role"}}
        }),
    }
}

fn call(n: u32, time: &str, source: &str, name: &str, who: Who, req: Value, resp: Value) -> Value {
    json!({
        "eventVersion": "1.10", "eventTime": time, "eventSource": source, "eventName": name,
        "awsRegion": "us-east-1", "recipientAccountId": ACCOUNT,
        "eventID": format!("00000000-0000-4000-8000-{n:012}"),
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
        "userIdentity": identity(who), "requestParameters": req, "responseElements": resp
    })
}

/// One API's case: the records before the call (launch templates, groups, made by an
/// administrator long before), the call, and what the finding must name.
struct Case {
    api: &'static str,
    setup: Vec<Value>,
    call: Value,
    /// The instance type and the ids the finding must show.
    names: Vec<&'static str>,
}

fn admin() -> Value {
    json!({"type": "IAMUser", "principalId": "AIDAEXAMPLEADMIN0001",
        "arn": format!("arn:aws:iam::{ACCOUNT}:user/admin"), "accountId": ACCOUNT})
}

fn template(n: u32, id: &str, ty: &str) -> Value {
    let mut v = call(
        n,
        "2025-06-01T08:00:00Z",
        "ec2.amazonaws.com",
        "CreateLaunchTemplate",
        Who::Ci,
        json!({"CreateLaunchTemplateRequest": {"LaunchTemplateName": "gpu-lt",
            "LaunchTemplateData": {"InstanceType": ty, "ImageId": "ami-0a1b2c3d4e5f60718"}}}),
        json!({"CreateLaunchTemplateResponse": {"launchTemplate": {"launchTemplateId": id,
            "launchTemplateName": "gpu-lt"}}}),
    );
    v["userIdentity"] = admin();
    v
}

/// Every catalogued API, bought by `who` at 09:20 (the mining finding is at 09:10).
fn cases(who: Who) -> Vec<Case> {
    let t = "2025-06-02T09:20:00Z";
    let ec2 = "ec2.amazonaws.com";
    let asg = "autoscaling.amazonaws.com";
    let sm = "sagemaker.amazonaws.com";
    let c = |api, setup, call, names| Case {
        api,
        setup,
        call,
        names,
    };
    let group_create = |n: u32| {
        let mut v = call(
            n,
            "2025-06-01T08:05:00Z",
            asg,
            "CreateAutoScalingGroup",
            Who::Ci,
            json!({"autoScalingGroupName": "batch-gpu", "minSize": 0, "maxSize": 10, "desiredCapacity": 0,
                "launchTemplate": {"launchTemplateId": "lt-0a11ce0000000gpu1", "version": "$Default"}}),
            Value::Null,
        );
        v["userIdentity"] = admin();
        v
    };
    vec![
        c(
            "RunInstances (type from an earlier launch template)",
            vec![template(900, "lt-0a11ce0000000gpu1", "p3.16xlarge")],
            call(
                1,
                t,
                ec2,
                "RunInstances",
                who,
                json!({"instancesSet": {"items": [{"minCount": 4, "maxCount": 4}]},
                    "launchTemplate": {"launchTemplateId": "lt-0a11ce0000000gpu1", "version": "1"}}),
                json!({"instancesSet": {"items": [
                    {"instanceId": "i-0b0a000000000a001"}, {"instanceId": "i-0b0a000000000a002"},
                    {"instanceId": "i-0b0a000000000a003"}, {"instanceId": "i-0b0a000000000a004"}]}}),
            ),
            vec!["p3.16xlarge", "i-0b0a000000000a001", "i-0b0a000000000a004"],
        ),
        c(
            "CreateFleet",
            vec![],
            call(
                2,
                t,
                ec2,
                "CreateFleet",
                who,
                json!({"CreateFleetRequest": {"Type": "instant",
                    "TargetCapacitySpecification": {"TotalTargetCapacity": 4, "DefaultTargetCapacityType": "spot"},
                    "LaunchTemplateConfigs": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0f1ee70000000aaa1", "Version": "1"},
                        "Overrides": {"InstanceType": "p3.16xlarge", "tag": 1}, "tag": 1}}}),
                json!({"CreateFleetResponse": {"fleetId": "fleet-0a11ce00-0000-4000-8000-000000000001",
                    "fleetInstanceSet": {"item": {"instanceType": "p3.16xlarge", "lifecycle": "spot",
                        "instanceIds": {"item": ["i-0b0a000000000b001", "i-0b0a000000000b002",
                            "i-0b0a000000000b003", "i-0b0a000000000b004"]}}}}}),
            ),
            vec![
                "p3.16xlarge",
                "fleet-0a11ce00-0000-4000-8000-000000000001",
                "i-0b0a000000000b001",
            ],
        ),
        c(
            "RequestSpotInstances",
            vec![],
            call(
                3,
                t,
                ec2,
                "RequestSpotInstances",
                who,
                json!({"instanceCount": 4, "type": "one-time",
                    "launchSpecification": {"imageId": "ami-0a1b2c3d4e5f60718", "instanceType": "p3.16xlarge"}}),
                json!({"spotInstanceRequestSet": {"items": [
                    {"spotInstanceRequestId": "sir-0a11ce01"}, {"spotInstanceRequestId": "sir-0a11ce02"},
                    {"spotInstanceRequestId": "sir-0a11ce03"}, {"spotInstanceRequestId": "sir-0a11ce04"}]}}),
            ),
            vec!["p3.16xlarge", "sir-0a11ce01", "sir-0a11ce04"],
        ),
        c(
            "RequestSpotFleet",
            vec![],
            call(
                4,
                t,
                ec2,
                "RequestSpotFleet",
                who,
                json!({"RequestSpotFleetRequest": {"SpotFleetRequestConfig": {"TargetCapacity": 4,
                    "IamFleetRole": format!("arn:aws:iam::{ACCOUNT}:role/spot-fleet"),
                    "LaunchSpecifications": {"InstanceType": "p3.16xlarge", "ImageId": "ami-0a1b2c3d4e5f60718", "tag": 1}}}}),
                json!({"RequestSpotFleetResponse": {"spotFleetRequestId": "sfr-0a11ce00-0000-4000-8000-000000000004"}}),
            ),
            vec!["p3.16xlarge", "sfr-0a11ce00-0000-4000-8000-000000000004"],
        ),
        c(
            "CreateAutoScalingGroup (type from an earlier launch template)",
            vec![template(901, "lt-0a11ce0000000gpu1", "p3.16xlarge")],
            call(
                5,
                t,
                asg,
                "CreateAutoScalingGroup",
                who,
                json!({"autoScalingGroupName": "miner-asg", "minSize": 4, "maxSize": 4, "desiredCapacity": 4,
                    "launchTemplate": {"launchTemplateId": "lt-0a11ce0000000gpu1", "version": "$Default"}}),
                Value::Null,
            ),
            vec!["p3.16xlarge", "miner-asg"],
        ),
        c(
            "UpdateAutoScalingGroup (mixed instances policy)",
            vec![],
            call(
                6,
                t,
                asg,
                "UpdateAutoScalingGroup",
                who,
                json!({"autoScalingGroupName": "web-spare", "desiredCapacity": 4, "minSize": 4,
                    "mixedInstancesPolicy": {"launchTemplate": {
                        "launchTemplateSpecification": {"launchTemplateId": "lt-0f1ee70000000aaa1"},
                        "overrides": [{"instanceType": "p3.16xlarge"}]}}}),
                Value::Null,
            ),
            vec!["p3.16xlarge", "web-spare"],
        ),
        c(
            "SetDesiredCapacity (type from the group's template)",
            vec![
                template(902, "lt-0a11ce0000000gpu1", "p3.16xlarge"),
                group_create(903),
            ],
            call(
                7,
                t,
                asg,
                "SetDesiredCapacity",
                who,
                json!({"autoScalingGroupName": "batch-gpu", "desiredCapacity": 4, "honorCooldown": false}),
                Value::Null,
            ),
            vec!["p3.16xlarge", "batch-gpu"],
        ),
        c(
            "ModifyInstanceAttribute",
            vec![],
            call(
                8,
                t,
                ec2,
                "ModifyInstanceAttribute",
                who,
                json!({"instanceId": "i-0b0a000000000c001", "instanceType": {"value": "p3.16xlarge"}}),
                json!({"_return": true}),
            ),
            vec!["p3.16xlarge", "i-0b0a000000000c001"],
        ),
        c(
            "RunTask (Fargate)",
            vec![],
            call(
                9,
                t,
                "ecs.amazonaws.com",
                "RunTask",
                who,
                json!({"cluster": "default", "taskDefinition": "xmrig:1", "count": 4, "launchType": "FARGATE"}),
                json!({"tasks": (1..=4).map(|i| json!({
                    "taskArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/default/0a11ce000000000000000000000000{i:02}"),
                    "cpu": "4096", "memory": "8192", "launchType": "FARGATE"})).collect::<Vec<_>>(), "failures": []}),
            ),
            vec![
                "arn:aws:ecs:us-east-1:111122223333:task/default/0a11ce00000000000000000000000001",
            ],
        ),
        c(
            "CreateService (Fargate)",
            vec![],
            call(
                10,
                t,
                "ecs.amazonaws.com",
                "CreateService",
                who,
                json!({"cluster": "default", "serviceName": "xmrig", "taskDefinition": "xmrig:1",
                    "desiredCount": 10, "launchType": "FARGATE"}),
                json!({"service": {"serviceArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/default/xmrig"),
                    "desiredCount": 10, "launchType": "FARGATE"}}),
            ),
            vec!["arn:aws:ecs:us-east-1:111122223333:service/default/xmrig"],
        ),
        c(
            "CreateTrainingJob",
            vec![],
            call(
                11,
                t,
                sm,
                "CreateTrainingJob",
                who,
                json!({"trainingJobName": "xgb-0a11ce",
                    "resourceConfig": {"instanceType": "ml.p3.16xlarge", "instanceCount": 4, "volumeSizeInGB": 50}}),
                json!({"trainingJobArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/xgb-0a11ce")}),
            ),
            vec![
                "ml.p3.16xlarge",
                "arn:aws:sagemaker:us-east-1:111122223333:training-job/xgb-0a11ce",
            ],
        ),
        c(
            "CreateProcessingJob",
            vec![],
            call(
                12,
                t,
                sm,
                "CreateProcessingJob",
                who,
                json!({"processingJobName": "proc-0a11ce", "processingResources": {"clusterConfig":
                    {"instanceCount": 4, "instanceType": "ml.p3.16xlarge", "volumeSizeInGB": 30}}}),
                json!({"processingJobArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/proc-0a11ce")}),
            ),
            vec![
                "ml.p3.16xlarge",
                "arn:aws:sagemaker:us-east-1:111122223333:processing-job/proc-0a11ce",
            ],
        ),
        c(
            "CreateNotebookInstance",
            vec![],
            call(
                13,
                t,
                sm,
                "CreateNotebookInstance",
                who,
                json!({"notebookInstanceName": "nb-0a11ce", "instanceType": "ml.p3.16xlarge",
                    "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/sm")}),
                json!({"notebookInstanceArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/nb-0a11ce")}),
            ),
            vec![
                "ml.p3.16xlarge",
                "arn:aws:sagemaker:us-east-1:111122223333:notebook-instance/nb-0a11ce",
            ],
        ),
        c(
            "CreateEndpointConfig",
            vec![],
            call(
                14,
                t,
                sm,
                "CreateEndpointConfig",
                who,
                json!({"endpointConfigName": "ep-0a11ce", "productionVariants": [
                    {"variantName": "a", "modelName": "m", "instanceType": "ml.p3.16xlarge", "initialInstanceCount": 4}]}),
                json!({"endpointConfigArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/ep-0a11ce")}),
            ),
            vec![
                "ml.p3.16xlarge",
                "arn:aws:sagemaker:us-east-1:111122223333:endpoint-config/ep-0a11ce",
            ],
        ),
        c(
            "CreateComputeEnvironment",
            vec![],
            call(
                15,
                t,
                "batch.amazonaws.com",
                "CreateComputeEnvironment",
                who,
                json!({"computeEnvironmentName": "ce-0a11ce", "type": "MANAGED",
                    "computeResources": {"type": "SPOT", "minvCpus": 0, "maxvCpus": 256, "desiredvCpus": 256,
                        "instanceTypes": ["p3.16xlarge"], "subnets": ["subnet-0a11ce"]}}),
                json!({"computeEnvironmentName": "ce-0a11ce",
                    "computeEnvironmentArn": format!("arn:aws:batch:us-east-1:{ACCOUNT}:compute-environment/ce-0a11ce")}),
            ),
            vec![
                "p3.16xlarge",
                "arn:aws:batch:us-east-1:111122223333:compute-environment/ce-0a11ce",
            ],
        ),
        c(
            "CreateNodegroup",
            vec![],
            call(
                16,
                t,
                "eks.amazonaws.com",
                "CreateNodegroup",
                who,
                json!({"clusterName": "prod", "nodegroupName": "ng-0a11ce", "instanceTypes": ["p3.16xlarge"],
                    "scalingConfig": {"minSize": 4, "maxSize": 4, "desiredSize": 4}}),
                json!({"nodegroup": {"nodegroupName": "ng-0a11ce",
                    "nodegroupArn": format!("arn:aws:eks:us-east-1:{ACCOUNT}:nodegroup/prod/ng-0a11ce/0a11ce00"),
                    "instanceTypes": ["p3.16xlarge"]}}),
            ),
            vec![
                "p3.16xlarge",
                "arn:aws:eks:us-east-1:111122223333:nodegroup/prod/ng-0a11ce/0a11ce00",
            ],
        ),
        c(
            "CreateInstances (Lightsail)",
            vec![],
            call(
                17,
                t,
                "lightsail.amazonaws.com",
                "CreateInstances",
                who,
                json!({"instanceNames": ["ls-0a11ce-1", "ls-0a11ce-2", "ls-0a11ce-3", "ls-0a11ce-4"],
                    "availabilityZone": "us-east-1a", "blueprintId": "ubuntu_22_04", "bundleId": "xlarge_3_0"}),
                json!({"operations": [{"resourceName": "ls-0a11ce-1", "operationType": "CreateInstance"}]}),
            ),
            vec!["xlarge_3_0", "ls-0a11ce-1", "ls-0a11ce-4"],
        ),
        c(
            "CreateFunction20150331",
            vec![],
            call(
                18,
                t,
                "lambda.amazonaws.com",
                "CreateFunction20150331",
                who,
                json!({"functionName": "miner", "runtime": "python3.12", "memorySize": 10240,
                    "role": format!("arn:aws:iam::{ACCOUNT}:role/lambda")}),
                json!({"functionName": "miner", "memorySize": 10240,
                    "functionArn": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:miner")}),
            ),
            vec!["arn:aws:lambda:us-east-1:111122223333:function:miner"],
        ),
    ]
}

fn write(dir: &Path, records: &[Value]) {
    std::fs::create_dir_all(dir).unwrap();
    let text = serde_json::to_string(&json!({ "Records": records })).unwrap();
    std::fs::write(dir.join("records.json"), text).unwrap();
}

/// The findings of runs over `dirs`, one after the other with the state saved between them.
fn run(dirs: &[std::path::PathBuf]) -> Vec<Value> {
    let rules = rules();
    let settings = settings();
    let mut state = State::new();
    let mut written: std::collections::BTreeMap<String, Value> = Default::default();
    for dir in dirs {
        let (run, next, changes) = crate::common::run_with_state(dir, &state, &rules, &settings);
        assert_eq!(run.summary.skipped, 0, "{:?}", run.summary.skipped_reasons);
        for f in changes.write.iter().map(KeptFinding::value) {
            written.insert(f["Id"].as_str().unwrap().to_string(), f);
        }
        let text = String::from_utf8(next.to_json()).unwrap();
        state = State::from_json(&text, "test").expect("a saved state loads");
    }
    written
        .into_values()
        .filter(|f| f["RecordState"] == "ACTIVE")
        .collect()
}

fn one_run(records: &[Value]) -> Vec<Value> {
    one_run_full(records).0
}

/// The findings of one run, and the run.
fn one_run_full(records: &[Value]) -> (Vec<Value>, pipeline::CorrelateRun) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), records);
    let rules = rules();
    let run = pipeline::correlate(
        &[tmp.path().to_path_buf()],
        &settings(),
        rules.clone(),
        false,
        None,
    );
    assert_eq!(run.summary.skipped, 0, "{:?}", run.summary.skipped_reasons);
    (
        asff::findings(&run.sequences, &rules, &Writer::default()),
        run,
    )
}

/// [`one_run_full`] with an empty state before it: every signal matched is kept whole, for
/// the state.
fn one_run_with_state(records: &[Value]) -> (Vec<Value>, pipeline::CorrelateRun) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), records);
    let rules = rules();
    let empty = finding_correlator::state::State::new();
    let run = pipeline::correlate(
        &[tmp.path().to_path_buf()],
        &settings(),
        rules.clone(),
        false,
        Some(&empty),
    );
    (
        asff::findings(&run.sequences, &rules, &Writer::default()),
        run,
    )
}

/// The problems of the attack's findings: one HIGH or CRITICAL finding must name the
/// victim's group and everything the case names.
fn attack_problems(case: &Case, how: &str, findings: &[Value]) -> Vec<String> {
    let found = findings.iter().any(|f| {
        let text = f.to_string();
        matches!(f["Severity"]["Label"].as_str(), Some("HIGH" | "CRITICAL"))
            && f["ProductFields"]["finding-correlator/group-key"]
                .as_str()
                .is_some_and(|g| g.ends_with(&format!("auto_scaling_group/{GROUP}")))
            && case.names.iter().all(|n| text.contains(n))
    });
    if found {
        Vec::new()
    } else {
        vec![format!(
            "{} ({how}): no HIGH/CRITICAL finding on {GROUP} naming {:?}; found {:?}",
            case.api,
            case.names,
            findings
                .iter()
                .map(|f| (
                    f["Id"].clone(),
                    f["Severity"]["Label"].clone(),
                    f["ProductFields"]["finding-correlator/compute-bought"].clone()
                ))
                .collect::<Vec<_>>()
        )]
    }
}

#[test]
fn issue_17_every_compute_api_used_by_stolen_instance_credentials_is_a_high_finding_naming_what_was_bought()
 {
    let mut problems = Vec::new();
    let mut written = Vec::new();
    for case in cases(Who::Victim) {
        let mut records = case.setup.clone();
        records.push(mining_finding());
        records.push(case.call.clone());
        let one = one_run(&records);
        problems.extend(attack_problems(&case, "one run", &one));
        written.extend(one);

        // Split: the templates and the mining finding in one run, the call in the next.
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let mut first = case.setup.clone();
        first.push(mining_finding());
        write(&a, &first);
        write(&b, std::slice::from_ref(&case.call));
        problems.extend(attack_problems(
            &case,
            "two runs with the state",
            &run(&[a, b]),
        ));

        // Record by record, each run on the state of the one before.
        let dirs: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let d = tmp.path().join(format!("r{i}"));
                write(&d, std::slice::from_ref(r));
                d
            })
            .collect();
        problems.extend(attack_problems(&case, "record by record", &run(&dirs)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every compute API's finding (its compute bought, its resources) is one Security Hub
    // takes.
    if let Some(why) = crate::common::security_hub_model_rejects(&written) {
        panic!("asff_validate.py rejected the findings:\n{why}");
    }
}

#[test]
fn issue_17_the_same_calls_by_auto_scaling_or_a_ci_role_write_no_finding() {
    let mut learned_only = 0;
    for who in [Who::AutoScaling, Who::Ci] {
        for case in cases(who) {
            let mut records = case.setup.clone();
            records.push(case.call.clone());
            let (findings, run) = one_run_full(&records);
            assert!(
                findings.is_empty(),
                "{}: {:?}",
                case.api,
                findings.iter().map(|f| &f["Id"]).collect::<Vec<_>>()
            );
            // Quiet, but seen: the call is a launch (the baselines learn it), and a CI role's
            // is a compute-resource-creation weak signal, as a RunInstances is; Auto Scaling's
            // is none. Without a state, Auto Scaling's is kept for matching only as what the
            // baselines learn of it, no rule can report it (unless its instance types are
            // still to be looked up then); with one, whole.
            let key = case.call["eventID"].as_str().unwrap();
            let kept_whole = run.selected.iter().any(|s| s.reference.key() == key);
            if who == Who::Ci {
                assert!(
                    kept_whole,
                    "{}: a CI role's launch is matched whole",
                    case.api
                );
            } else if !kept_whole {
                learned_only += 1;
            }
            let (_, whole) = one_run_with_state(&records);
            let launch = whole
                .selected
                .iter()
                .find(|s| s.reference.key() == case.call["eventID"].as_str().unwrap())
                .and_then(|s| s.fields.launch.clone());
            let launch = launch.unwrap_or_else(|| panic!("{}: not a launch", case.api));
            assert!(
                case.names.iter().all(|n| launch
                    .instance_types
                    .iter()
                    .chain(&launch.resource_ids)
                    .any(|v| v == n)),
                "{}: {launch:?} does not name {:?}",
                case.api,
                case.names
            );
            let weak = run
                .matching
                .weak_signals
                .get("compute-resource-creation")
                .copied()
                .unwrap_or(0);
            let want = if who == Who::Ci { 1 } else { 0 };
            assert_eq!(
                weak, want,
                "{}: compute-resource-creation weak signals",
                case.api
            );
        }
    }
    assert!(
        learned_only > 0,
        "no Auto Scaling launch was kept as what the baselines learn"
    );
}

#[test]
fn issue_17_every_catalogued_api_is_tested() {
    let catalog = finding_correlator::launch::Catalog::builtin().expect("the catalog loads");
    let tested: Vec<String> = cases(Who::Victim)
        .iter()
        .map(|c| {
            let name = c.call["eventName"].as_str().unwrap().to_string();
            format!("{}:{name}", c.call["eventSource"].as_str().unwrap())
        })
        .collect();
    for api in catalog.describe() {
        let event = api.split(' ').next().unwrap();
        assert!(
            tested.iter().any(|t| t == event),
            "{event} has no case in tests/it/launches.rs"
        );
    }
}

#[test]
fn issue_17_rules_check_reads_a_folders_launch_catalog_and_names_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["compute-resource-creation.yaml", "first-seen-launch.yaml"] {
        std::fs::copy(
            crate::common::repo().join("correlation-rules").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let launches = dir.path().join("launches");
    std::fs::create_dir(&launches).unwrap();
    std::fs::write(
        launches.join("gamelift.yaml"),
        "apis:\n  - event: gamelift.amazonaws.com:CreateFleet\n    kind: game_fleet\n    instance_types: [request.eC2InstanceType]\n",
    )
    .unwrap();
    let check = |dir: &Path| {
        let out = crate::common::correlator()
            .args(["rules", "check", "--rules"])
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    let builtin = finding_correlator::launch::Catalog::builtin()
        .unwrap()
        .len();
    assert!(
        stderr.contains(&format!(
            "{} compute-buying API(s) in the launch catalog",
            builtin + 1
        )),
        "{stderr}"
    );
    std::fs::write(
        launches.join("typo.yaml"),
        "apis:\n  - event: sagemaker.amazonaws.com:CreateHyperPodCluster\n    kind: cluster\n    count: [\"request.instanceGroups[].instanceCount\"]\n    instance_types:\n      - requestParameters.instanceGroups[].instanceType\n",
    )
    .unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("typo.yaml:6:9: instance_types: path \"requestParameters.instanceGroups[].instanceType\": expected it to start with `request.` or `response.`"),
        "{stderr}"
    );
}

/// The published records of these calls (`../shared/samples`, `../shared/realdata`) are read
/// as the catalog says.
#[test]
#[cfg_attr(
    not(shared_corpus),
    ignore = "needs ../shared/realdata and ../shared/samples beside the repository"
)]
fn issue_17_the_published_records_of_compute_apis_are_read_as_launches() {
    let decode = |rel: &str| -> Vec<finding_correlator::signal::Signal> {
        let path = crate::common::shared(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut out = Vec::new();
        finding_correlator::normalize::decode_reader(
            bytes.as_slice(),
            &finding_correlator::normalize::DecodeOptions::default(),
            &mut |d| {
                if let finding_correlator::normalize::Decoded::Signal(_, s) = d {
                    out.push(*s);
                }
            },
        );
        out
    };
    let launch = |rel: &str| {
        let signals = decode(rel);
        assert_eq!(signals.len(), 1, "{rel}");
        signals[0].fields.launch.clone().map(|l| *l)
    };
    // EKS's node group: 2 instances from launch template lt-0c2d2c87b6de105f8.
    let l =
        launch("samples/cloudtrail/CreateAutoScalingGroup.eks-nodegroup.eventbridge-envelope.json")
            .expect("a launch");
    assert_eq!((l.kind.as_str(), l.count), ("auto_scaling_group", 2));
    assert_eq!(l.launch_template.as_deref(), Some("lt-0c2d2c87b6de105f8"));
    assert_eq!(l.resource_ids, ["eks-e6b9d024-1742-daf1-664e-b6de9bd9074b"]);
    let l =
        launch("samples/cloudtrail/CreateAutoScalingGroup.iam-user-console.sumologic-docs.json")
            .expect("a launch");
    assert_eq!(
        (l.count, l.launch_template.as_deref()),
        (2, Some("lt-02c96752a8d5a34d9"))
    );
    let l = launch("samples/cloudtrail/SetDesiredCapacity.reconstructed.json").expect("a launch");
    assert_eq!(
        (l.count, l.resource_ids.as_slice()),
        (100, ["web-asg".into()].as_slice())
    );
    // Stratus Red Team's ModifyInstanceAttribute changes userData: no launch.
    assert_eq!(
        launch("samples/cloudtrail/ModifyInstanceAttribute.userData.stratus.json"),
        None
    );
    // Every real RunInstances and CreateFunction20150331 that succeeded is a launch naming
    // what the response lists.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for rel in [
        "realdata/panther-test-events/cloudtrail-test-events.jsonl",
        "realdata/stratus-red-team/all-detonations.jsonl",
    ] {
        for s in decode(rel) {
            let name = s.fields.event_name.clone().unwrap_or_default().to_string();
            if !matches!(name.as_str(), "RunInstances" | "CreateFunction20150331")
                || s.fields.error_code.is_some()
            {
                continue;
            }
            let l = s
                .fields
                .launch
                .as_deref()
                .unwrap_or_else(|| panic!("{name} {:?} is no launch", s.reference));
            let launched: Vec<&str> = s
                .instances
                .iter()
                .filter(|i| i.launched)
                .map(|i| i.instance_id.as_str())
                .collect();
            if name == "RunInstances" {
                assert_eq!(
                    l.resource_ids
                        .iter()
                        .map(|i| i.as_str())
                        .collect::<Vec<_>>(),
                    launched,
                    "{:?}",
                    s.reference
                );
            } else {
                assert_eq!(l.kind, "function");
                assert!(
                    l.resource_ids
                        .iter()
                        .all(|a| a.starts_with("arn:aws:lambda:")),
                    "{l:?}"
                );
            }
            *seen.entry(name).or_default() += 1;
        }
    }
    assert!(seen.get("RunInstances").is_some_and(|n| *n > 0), "{seen:?}");
}

/// The finding's description and the HTML report say what was bought.
#[test]
fn issue_17_the_description_and_the_report_show_the_compute_bought() {
    let case = cases(Who::Victim)
        .into_iter()
        .find(|c| c.api == "RequestSpotInstances")
        .unwrap();
    let records = vec![mining_finding(), case.call.clone()];
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), &records);
    let rules = rules();
    let run = pipeline::correlate(
        &[tmp.path().to_path_buf()],
        &settings(),
        rules.clone(),
        true,
        None,
    );
    let findings = asff::findings(&run.sequences, &rules, &Writer::default());
    let bought = "ec2:RequestSpotInstances 4×p3.16xlarge (sir-0a11ce01, sir-0a11ce02, sir-0a11ce03, sir-0a11ce04)";
    assert_eq!(findings.len(), 1);
    let description = findings[0]["Description"].as_str().unwrap();
    assert!(
        description.contains(&format!("Compute bought: {bought}.")),
        "{description}"
    );
    assert_eq!(
        findings[0]["ProductFields"]["finding-correlator/compute-bought"],
        bought
    );
    let spot = findings[0]["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Id"] == "sir-0a11ce01")
        .expect("the spot request is a resource");
    assert_eq!(spot["Type"], "Other");
    assert_eq!(spot["Details"]["Other"]["instance-types"], "p3.16xlarge");
    assert_eq!(spot["Details"]["Other"]["launch-kind"], "spot_request");
    let sequences = finding_correlator::report::select(&run.sequences, &rules, None).unwrap();
    let page = finding_correlator::report::Report {
        graph: &run.graph,
        rules: &rules,
        sequences,
    };
    let mut html = Vec::new();
    finding_correlator::report::write_html(&page, &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("<dt>Bought</dt><dd>spot_request 4×p3.16xlarge (sir-0a11ce01, sir-0a11ce02, sir-0a11ce03, sir-0a11ce04), 256 vCPUs"),
        "the report shows the purchase"
    );
}

/// The baselines learn every launch: a role that buys two spot instances a night learns that
/// rate, and ten at once is a launch-rate outlier; a first spot request of a new type after
/// the learning period is first seen.
#[test]
fn issue_17_baselines_learn_launches_of_any_api() {
    let spot = |n: u32, day: u32, count: u32, ty: &str| {
        call(
            100 + n,
            &format!("2025-05-{day:02}T02:00:00Z"),
            "ec2.amazonaws.com",
            "RequestSpotInstances",
            Who::Ci,
            json!({"instanceCount": count, "launchSpecification": {"instanceType": ty}}),
            json!({"spotInstanceRequestSet": {"items": (0..count).map(|i| json!({
                "spotInstanceRequestId": format!("sir-{n:04}{i:04}")})).collect::<Vec<_>>()}}),
        )
    };
    let mut records: Vec<Value> = (1..=16).map(|d| spot(d, d, 2, "c5.xlarge")).collect();
    let (quiet, _) = one_run_full(&records);
    assert!(quiet.is_empty(), "{quiet:?}");
    records.push(spot(99, 17, 10, "c5.xlarge"));
    let (findings, _) = one_run_full(&records);
    let rules: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["GeneratorId"].as_str())
        .collect();
    assert_eq!(rules, ["launch-rate-outlier"], "{findings:#?}");
    assert!(
        findings[0]["ProductFields"]["finding-correlator/compute-bought"]
            .as_str()
            .is_some_and(|b| b.contains("10×c5.xlarge")),
        "{}",
        findings[0]["ProductFields"]
    );
    // A type the account never bought, after learning: a first-seen weak signal.
    records.pop();
    records.push(spot(98, 17, 1, "g5.xlarge"));
    let (_, run) = one_run_full(&records);
    assert_eq!(
        run.matching.weak_signals.get("first-seen-launch"),
        Some(&1),
        "{:?}",
        run.matching.weak_signals
    );
}

/// A `--rules` folder's `launches/` catalog is used when records are read, not only checked:
/// a GameLift fleet, an API the built-in catalog does not list, becomes a launch that
/// `launch: true` selects once the folder declares it, and nothing without it.
#[test]
fn a_rules_folders_launch_catalog_makes_its_apis_launches() {
    let tmp = tempfile::tempdir().unwrap();
    let record = serde_json::json!({
        "eventVersion": "1.10",
        "eventTime": "2025-05-02T10:00:00Z",
        "eventSource": "gamelift.amazonaws.com",
        "eventName": "CreateFleet",
        "awsRegion": "ap-southeast-3",
        "recipientAccountId": "111122223333",
        "eventID": "00000000-0000-4000-8000-0000000fee71",
        "sourceIPAddress": "192.0.2.10",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEALICE0001",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLEALICE0001",
            "userName": "alice"
        },
        "requestParameters": {"name": "render", "eC2InstanceType": "g5.12xlarge"},
        "responseElements": {"fleetAttributes": {"fleetId": "fleet-2222aaaa-0000-4000-8000-00000000beef"}}
    });
    let input = tmp.path().join("gamelift.json");
    std::fs::write(&input, record.to_string()).unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::copy(
        crate::common::repo().join("correlation-rules/compute-resource-creation.yaml"),
        rules.join("compute-resource-creation.yaml"),
    )
    .unwrap();
    let weak = |rules: &std::path::Path| -> Vec<Value> {
        let out = crate::common::correlator()
            .args(["correlate", "--summary", "json", "--rules"])
            .arg(rules)
            .arg(&input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        summary["correlate"]["weak_signals"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(weak(&rules), Vec::<Value>::new(), "not a launch yet");
    std::fs::create_dir_all(rules.join("launches")).unwrap();
    std::fs::write(
        rules.join("launches/gamelift.yaml"),
        "apis:\n  - event: gamelift.amazonaws.com:CreateFleet\n    kind: fleet\n    \
         instance_types: [request.eC2InstanceType]\n    \
         ids: [response.fleetAttributes.fleetId]\n",
    )
    .unwrap();
    let found = weak(&rules);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["rule"], "compute-resource-creation", "{found:?}");
}
