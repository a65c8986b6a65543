//! Every input shape of `fixtures/`, decoded field by field.
//!
//! One test per shape. The expected values are copied by hand from the fixture JSON (the story
//! is in `fixtures/README.md`), not computed with the crate, so that a decoder bug cannot cancel
//! out; times are computed here from the scenario's date rather than with the crate's parser.
//! Each test compares every field of every signal (through its serde form, so that a field
//! added later is compared too, then with `PartialEq`) and lists all differences at once.

use std::collections::BTreeSet;

use serde_json::Value;

use finding_correlator::normalize::RecordKind;
use finding_correlator::signal::{
    Actor, Endpoint, EntityId, EntityKind, Fields, InstanceInfo, RecordRef, Signal, Source, Str,
};
use finding_correlator::time::Millis;

use crate::common::{Decodes, decode_bytes, decode_file, fixture};

// ---------------------------------------------------------------------------------------------
// The scenario's ids, as the fixtures spell them.

const ACCOUNT: &str = "111122223333";
const US_EAST_1: &str = "us-east-1";
const AP_SOUTHEAST_3: &str = "ap-southeast-3";

const WEB1: &str = "i-0aaaaaaaaaaaaaaa1";
const WEB2: &str = "i-0aaaaaaaaaaaaaaa2";
const WEB3: &str = "i-0aaaaaaaaaaaaaaa3";
const BATCH1: &str = "i-0ccccccccccccccc1";
const BATCH2: &str = "i-0ccccccccccccccc2";
const CI1: &str = "i-0ddddddddddddddd1";

const WEB_LT: &str = "lt-0abc1234def567890";
const BATCH_LT: &str = "lt-0def4567abc890123";
const GPU_LT: &str = "lt-0c0ffee0c0ffee003";
const WEB_PROFILE: &str = "arn:aws:iam::111122223333:instance-profile/web-instance-profile";
const BATCH_PROFILE: &str = "arn:aws:iam::111122223333:instance-profile/batch-instance-profile";
const WEB_AMI: &str = "ami-0a1b2c3d4e5f60718";
const BATCH_AMI: &str = "ami-0b1c2d3e4f5061728";
const GPU_AMI: &str = "ami-0c0ffee0c0ffee000";
const CI_AMI: &str = "ami-0d1d2d3d4d5d6d7d8";
const SHARED_VPC: &str = "vpc-0a1b2c3d4e5f60718";
const GPU_VPC: &str = "vpc-0c0ffee0c0ffee000";
const GPU_SUBNET: &str = "subnet-0c0ffee0c0ffee001";
const CI_VPC: &str = "vpc-0d1d2d3d4d5d6d7d8";
const CI_SUBNET: &str = "subnet-0d1d2d3d4d5d6d7d9";

const SESSION_ARN: &str =
    "arn:aws:sts::111122223333:assumed-role/web-instance-role/i-0aaaaaaaaaaaaaaa1";
const SESSION_PRINCIPAL_ID: &str = "AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1";
const SESSION_KEY: &str = "ASIAEXAMPLEEXAMPLE01";
const WEB_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/web-instance-role";
const ATTACKER_IP: &str = "198.51.100.23";

const DETECTOR_ARN: &str =
    "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0";
const BITCOIN_ID: &str = "51e3c9b93d1304e6d09ba20c00abf4b7";
const BITCOIN_TYPE: &str = "CryptoCurrency:EC2/BitcoinTool.B!DNS";
const BITCOIN_TITLE: &str =
    "Bitcoin-related domain name queried by EC2 instance i-0aaaaaaaaaaaaaaa1.";
const GUARDDUTY_PRODUCT: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
const INSPECTOR_PRODUCT: &str = "arn:aws:securityhub:us-east-1::product/aws/inspector";
const INSPECTOR_ID: &str =
    "arn:aws:inspector2:us-east-1:111122223333:finding/2ac18fd91a7758175833f006dd772412";

/// The AWS CLI's user agent, before the command name.
const CLI_UA: &str = "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1017-aws md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#";
const BOTO_UA: &str = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.5.0-1017-aws md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84";
const TERRAFORM_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.8.2 (+https://www.terraform.io) terraform-provider-aws/5.46.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 ua/2.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.156.0";

/// 2025-05-02 (the scenario's day) at `h:m:s.ms` UTC, in epoch milliseconds.
/// 2025-05-02T00:00:00Z is 1746144000 s: 20210 days × 86400 s.
fn at(h: i64, m: i64, s: i64, ms: i64) -> Millis {
    (1_746_144_000 + h * 3600 + m * 60 + s) * 1000 + ms
}

fn some(s: &str) -> Option<Str> {
    Some(s.into())
}

/// An instance's own (non-`aws:`) tags, in record order.
fn tags(pairs: &[(&str, &str)]) -> Vec<(Str, Str)> {
    pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
}

fn cli_ua(command: &str) -> String {
    format!("{CLI_UA}{command}")
}

// ---------------------------------------------------------------------------------------------
// Actors.

/// The role session of i-0aaaaaaaaaaaaaaa1 as CloudTrail names it.
fn stolen_session() -> Actor {
    Actor {
        arn: some(SESSION_ARN),
        principal_type: some("AssumedRole"),
        principal_id: some(SESSION_PRINCIPAL_ID),
        account: some(ACCOUNT),
        user_name: None,
        access_key_id: some(SESSION_KEY),
        role_arn: some(WEB_ROLE_ARN),
        session_name: some(WEB1),
        instance_id: some(WEB1),
        invoked_by: None,
    }
}

fn auto_scaling() -> Actor {
    Actor {
        arn: some(
            "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        ),
        principal_type: some("AssumedRole"),
        principal_id: some("AROAEXAMPLEASGSVC0004:AutoScaling"),
        account: some(ACCOUNT),
        user_name: None,
        access_key_id: None,
        role_arn: some(
            "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        ),
        session_name: some("AutoScaling"),
        instance_id: None,
        invoked_by: some("autoscaling.amazonaws.com"),
    }
}

fn ci_deploy() -> Actor {
    Actor {
        arn: some("arn:aws:sts::111122223333:assumed-role/ci-deploy/gitlab-runner-1234"),
        principal_type: some("AssumedRole"),
        principal_id: some("AROAEXAMPLECIDEPLOY03:gitlab-runner-1234"),
        account: some(ACCOUNT),
        user_name: None,
        access_key_id: some("ASIAEXAMPLECIDEPLOY2"),
        role_arn: some("arn:aws:iam::111122223333:role/ci-deploy"),
        session_name: some("gitlab-runner-1234"),
        instance_id: None,
        invoked_by: None,
    }
}

fn alice() -> Actor {
    Actor {
        arn: some("arn:aws:iam::111122223333:user/alice"),
        principal_type: some("IAMUser"),
        principal_id: some("AIDAEXAMPLEALICE0001"),
        account: some(ACCOUNT),
        user_name: some("alice"),
        access_key_id: some("AKIAEXAMPLEALICE0001"),
        role_arn: None,
        session_name: None,
        instance_id: None,
        invoked_by: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Instances.

/// A web-asg member as the Auto Scaling `RunInstances` response describes it (tags, profile,
/// cpuOptions 1 × 2; pending instances have no public IP yet).
fn web_launched(id: &str, subnet: &str) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        auto_scaling_group: some("web-asg"),
        launch_template: some(WEB_LT),
        launch_template_version: some("3"),
        cloudformation_stack: some("web-stack"),
        instance_profile: some(WEB_PROFILE),
        ami: some(WEB_AMI),
        vpc: some(SHARED_VPC),
        subnet: some(subnet),
        instance_type: some("c5.large"),
        vcpus: Some(2),
        public_ips: vec![],
        launched: true,
        tags: tags(&[("Name", "web"), ("env", "prod")]),
    }
}

/// A web-asg member as a GuardDuty finding's `resource.instanceDetails` describes it.
fn web_seen(id: &str, subnet: &str, public_ip: &str) -> InstanceInfo {
    InstanceInfo {
        vcpus: None,
        public_ips: vec![public_ip.into()],
        launched: false,
        ..web_launched(id, subnet)
    }
}

fn batch_launched(id: &str, subnet: &str) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        auto_scaling_group: some("batch-asg"),
        launch_template: some(BATCH_LT),
        launch_template_version: some("7"),
        cloudformation_stack: some("batch-stack"),
        instance_profile: some(BATCH_PROFILE),
        ami: some(BATCH_AMI),
        vpc: some(SHARED_VPC),
        subnet: some(subnet),
        instance_type: some("m5.xlarge"),
        vcpus: Some(4),
        public_ips: vec![],
        launched: true,
        tags: tags(&[("Name", "batch-worker"), ("env", "prod")]),
    }
}

fn batch_seen(id: &str, subnet: &str, public_ips: &[&str]) -> InstanceInfo {
    InstanceInfo {
        vcpus: None,
        public_ips: public_ips.iter().map(|&s| s.into()).collect(),
        launched: false,
        ..batch_launched(id, subnet)
    }
}

/// A GPU instance launched by the stolen session: no tags, no profile.
fn gpu(n: u32, instance_type: &str, vcpus: u32) -> InstanceInfo {
    InstanceInfo {
        instance_id: format!("i-0bbbbbbbbbbbbbbb{n}").into(),
        ami: some(GPU_AMI),
        vpc: some(GPU_VPC),
        subnet: some(GPU_SUBNET),
        instance_type: some(instance_type),
        vcpus: Some(vcpus),
        launched: true,
        ..InstanceInfo::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Signals.

#[allow(clippy::too_many_arguments)]
fn cloudtrail(
    event_id: &str,
    time: Millis,
    region: &str,
    event_source: &str,
    event_name: &str,
    actor: Actor,
    source_ip: &str,
    user_agent: &str,
) -> Signal {
    Signal {
        time,
        account: some(ACCOUNT),
        region: some(region),
        source: Source::CloudTrail,
        kind: format!("{event_source}:{event_name}").into(),
        severity: 0.0,
        reference: RecordRef::EventId(event_id.into()),
        updated_at: None,
        actor: Some(Box::new(actor)),
        instances: vec![],
        resources: vec![],
        endpoints: vec![],
        fields: Fields {
            event_source: some(event_source),
            event_name: some(event_name),
            source_ip: some(source_ip),
            user_agent: some(user_agent),
            ..Fields::default()
        },
    }
}

/// A call of the stolen session from the attacker's address.
fn session_call(
    event_id: &str,
    time: Millis,
    region: &str,
    event_source: &str,
    event_name: &str,
    user_agent: &str,
) -> Signal {
    cloudtrail(
        event_id,
        time,
        region,
        event_source,
        event_name,
        stolen_session(),
        ATTACKER_IP,
        user_agent,
    )
}

/// An Auto Scaling launch of one instance.
fn asg_launch(event_id: &str, time: Millis, instance: InstanceInfo, vcpus: u32) -> Signal {
    let mut s = cloudtrail(
        event_id,
        time,
        US_EAST_1,
        "ec2.amazonaws.com",
        "RunInstances",
        auto_scaling(),
        "autoscaling.amazonaws.com",
        "autoscaling.amazonaws.com",
    );
    s.resources = vec![EntityId::new(
        EntityKind::LaunchTemplate,
        instance.launch_template.clone().unwrap(),
    )];
    s.fields.requested_instance_type = instance.instance_type.clone();
    s.fields.requested_count = Some(1);
    s.fields.requested_vcpus = Some(vcpus);
    s.fields.launched_count = Some(1);
    s.fields.launched_vcpus = Some(vcpus);
    s.fields.launch = instance_launch(&[&instance.instance_id], &instance.instance_type, vcpus);
    s.instances = vec![instance];
    s
}

/// GPUs and memory (MiB) of one instance of the fixtures' types, copied by hand from the EC2
/// User Guide's instance type specifications (not from `data/instance_types.tsv`, which the
/// decoder reads): a c5.large has 4 GiB, an m5.xlarge 16 GiB, a t3.micro 1 GiB, a
/// p3.16xlarge 8 V100 GPUs and 488 GiB, a g5.12xlarge 4 A10G GPUs and 192 GiB.
fn type_facts(instance_type: &str) -> (u32, u64) {
    match instance_type {
        "c5.large" => (0, 4 * 1024),
        "m5.xlarge" => (0, 16 * 1024),
        "t3.micro" => (0, 1024),
        "p3.16xlarge" => (8, 488 * 1024),
        "g5.12xlarge" => (4, 192 * 1024),
        other => panic!("no hand-copied facts for {other}"),
    }
}

/// The launch (issue 17) of a `RunInstances` that started `ids`.
fn instance_launch(
    ids: &[&str],
    instance_type: &Option<finding_correlator::signal::Str>,
    vcpus: u32,
) -> Option<Box<finding_correlator::launch::Launch>> {
    let n = ids.len() as u32;
    let (gpus, memory) = type_facts(instance_type.as_deref().expect("an instance type"));
    Some(Box::new(finding_correlator::launch::Launch {
        kind: "instance".into(),
        count: n,
        instance_types: instance_type.iter().cloned().collect(),
        resource_ids: ids.iter().map(|i| (*i).into()).collect(),
        vcpus: Some(vcpus),
        gpus: Some(gpus * n),
        accelerators: Some(0),
        memory_mib: Some(memory * u64::from(n)),
        ..Default::default()
    }))
}

/// A GuardDuty finding of the scenario's detector in us-east-1 (not archived).
#[allow(clippy::too_many_arguments)]
fn guardduty(
    id: &str,
    finding_type: &str,
    severity: f64,
    title: &str,
    resource_type: &str,
    first_seen: Millis,
    last_seen: Millis,
    updated_at: Millis,
    count: u64,
) -> Signal {
    Signal {
        time: last_seen,
        account: some(ACCOUNT),
        region: some(US_EAST_1),
        source: Source::GuardDuty,
        kind: finding_type.into(),
        severity,
        reference: RecordRef::FindingArn(format!("{DETECTOR_ARN}/finding/{id}").into()),
        updated_at: Some(updated_at),
        actor: None,
        instances: vec![],
        resources: vec![],
        endpoints: vec![],
        fields: Fields {
            finding_type: some(finding_type),
            finding_id: some(id),
            title: some(title),
            resource_type: some(resource_type),
            count: Some(count),
            first_seen: Some(first_seen),
            last_seen: Some(last_seen),
            archived: Some(false),
            ..Fields::default()
        },
    }
}

/// A DNS-request finding on one web instance.
#[allow(clippy::too_many_arguments)]
fn dns_finding(
    id: &str,
    finding_type: &str,
    title: &str,
    instance: InstanceInfo,
    domain: &str,
    first_seen: Millis,
    last_seen: Millis,
    updated_at: Millis,
    count: u64,
) -> Signal {
    let mut s = guardduty(
        id,
        finding_type,
        8.0,
        title,
        "Instance",
        first_seen,
        last_seen,
        updated_at,
        count,
    );
    s.instances = vec![instance];
    s.endpoints = vec![Endpoint::Domain(domain.into())];
    s.fields.action_type = some("DNS_REQUEST");
    s
}

/// The newest version of the BitcoinTool finding, as GuardDuty `GetFindings` returns it.
fn bitcoin_tool_newest() -> Signal {
    dns_finding(
        BITCOIN_ID,
        BITCOIN_TYPE,
        BITCOIN_TITLE,
        web_seen(WEB1, "subnet-0a1b2c3d4e5f60718", "203.0.113.11"),
        "xmr.pool.minergate.com",
        at(9, 2, 11, 0),
        at(9, 41, 3, 0),
        at(9, 44, 20, 512),
        14,
    )
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// Decodes a fixture that must decode without any problem.
fn decode_clean(rel: &str) -> Decodes {
    let d = decode_file(&fixture(rel));
    assert!(
        d.not_json.is_none(),
        "{rel}: read as not JSON: {:?}",
        d.not_json
    );
    let problems: Vec<String> = d.problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{rel}: problems: {problems:#?}");
    d
}

/// Asserts that `got` holds exactly `want`, in order, field by field; lists every difference.
fn assert_signals(rel: &str, got: &Decodes, want: &[(RecordKind, Signal)]) {
    let mut diffs = Vec::new();
    if got.signals.len() != want.len() {
        diffs.push(format!(
            "{} signal(s), expected {}: got {:?}",
            got.signals.len(),
            want.len(),
            got.signals
                .iter()
                .map(|(_, s)| s.reference.key())
                .collect::<Vec<_>>()
        ));
    }
    for (i, ((got_kind, got), (want_kind, want))) in got.signals.iter().zip(want).enumerate() {
        let label = format!("signal {i} ({})", want.reference.key());
        if got_kind != want_kind {
            diffs.push(format!(
                "{label}: record kind {got_kind:?}, expected {want_kind:?}"
            ));
        }
        let before = diffs.len();
        json_diff(
            &label,
            &serde_json::to_value(got).unwrap(),
            &serde_json::to_value(want).unwrap(),
            &mut diffs,
        );
        if diffs.len() == before && got != want {
            diffs.push(format!("{label}: differs:\n{got:#?}\nexpected\n{want:#?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{rel}: {} difference(s):\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

/// Lists where two JSON values differ, by path.
fn json_diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (g.get(k), w.get(k)) {
                    (Some(a), Some(b)) => json_diff(&p, a, b, out),
                    (Some(a), None) => out.push(format!("{p}: got {a}, expected nothing")),
                    (None, Some(b)) => out.push(format!("{p}: missing, expected {b}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                json_diff(&format!("{path}[{i}]"), a, b, out);
            }
        }
        _ if got == want => {}
        _ => out.push(format!("{path}: got {got}, expected {want}")),
    }
}

fn ct(signals: Vec<Signal>) -> Vec<(RecordKind, Signal)> {
    signals
        .into_iter()
        .map(|s| (RecordKind::CloudTrail, s))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CloudTrail.

const GZ_US_EAST_1: &str = "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2025/05/02/111122223333_CloudTrail_us-east-1_20250502T0805Z_Ab12Cd34Ef56Gh78.json.gz";
const GZ_AP_SOUTHEAST_3: &str = "cloudtrail/AWSLogs/111122223333/CloudTrail/ap-southeast-3/2025/05/02/111122223333_CloudTrail_ap-southeast-3_20250502T0930Z_Zz98Yy76Xx54Ww32.json.gz";

#[test]
fn s3_log_file_gzip_auto_scaling_launches_of_web_asg() {
    let bytes = std::fs::read(fixture(GZ_US_EAST_1)).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "the fixture is gzipped");
    let d = decode_clean(GZ_US_EAST_1);
    let want = ct(vec![
        asg_launch(
            "c03cdf40-7d01-494c-a318-ca94c69e9e44",
            at(8, 1, 12, 0),
            web_launched(WEB1, "subnet-0a1b2c3d4e5f60718"),
            2,
        ),
        asg_launch(
            "f5598fda-3077-4edb-919f-01dfe581b16a",
            at(8, 1, 13, 0),
            web_launched(WEB2, "subnet-0a1b2c3d4e5f60729"),
            2,
        ),
        asg_launch(
            "4d2944d2-ac59-4b3d-8eae-8f18526696c6",
            at(8, 3, 47, 0),
            web_launched(WEB3, "subnet-0a1b2c3d4e5f6073a"),
            2,
        ),
    ]);
    assert_signals(GZ_US_EAST_1, &d, &want);
}

#[test]
fn s3_log_file_gzip_gpu_launches_by_the_stolen_session() {
    let bytes = std::fs::read(fixture(GZ_AP_SOUTHEAST_3)).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "the fixture is gzipped");
    let d = decode_clean(GZ_AP_SOUTHEAST_3);
    let launch = |event_id: &str, time, ty: &str, per: u32, ns: &[u32]| {
        let mut s = session_call(
            event_id,
            time,
            AP_SOUTHEAST_3,
            "ec2.amazonaws.com",
            "RunInstances",
            &cli_ua("ec2.run-instances"),
        );
        let n = ns.len() as u32;
        s.instances = ns.iter().map(|&i| gpu(i, ty, per)).collect();
        s.fields.requested_instance_type = some(ty);
        s.fields.requested_count = Some(n);
        s.fields.requested_vcpus = Some(per * n);
        s.fields.launched_count = Some(n);
        s.fields.launched_vcpus = Some(per * n);
        let ids: Vec<&str> = s.instances.iter().map(|i| i.instance_id.as_str()).collect();
        s.fields.launch = instance_launch(&ids, &some(ty), per * n);
        s
    };
    let want = ct(vec![
        // 4 × p3.16xlarge, cpuOptions 32 × 2.
        launch(
            "6e5560b0-4447-4079-82eb-398a73f217be",
            at(9, 22, 47, 0),
            "p3.16xlarge",
            64,
            &[1, 2, 3, 4],
        ),
        // 2 × g5.12xlarge, cpuOptions 24 × 2.
        launch(
            "7dd30d91-ef63-49fb-b6ac-64d592915f9c",
            at(9, 26, 15, 0),
            "g5.12xlarge",
            48,
            &[5, 6],
        ),
    ]);
    assert_signals(GZ_AP_SOUTHEAST_3, &d, &want);
    // Every item of the response, not only the first.
    assert_eq!(d.signals[0].1.instances.len(), 4);
}

#[test]
fn s3_log_file_uncompressed_and_pretty_printed() {
    let rel = "cloudtrail/s3-logfile-uncompressed.json";
    let d = decode_clean(rel);
    let want = ct(vec![
        // eventVersion 1.09, requestParameters null, responseElements null.
        session_call(
            "d6f09426-db62-4095-b42a-a355f0705ec8",
            at(9, 5, 12, 0),
            US_EAST_1,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            &cli_ua("sts.get-caller-identity"),
        ),
        session_call(
            "da3d03df-21c0-4d04-8752-d9840f56ab96",
            at(9, 6, 40, 0),
            US_EAST_1,
            "ec2.amazonaws.com",
            "DescribeInstances",
            &cli_ua("ec2.describe-instances"),
        ),
        session_call(
            "d6781847-972f-420c-97ed-6f3dc4485983",
            at(9, 7, 55, 0),
            US_EAST_1,
            "ec2.amazonaws.com",
            "DescribeVpcs",
            &cli_ua("ec2.describe-vpcs"),
        ),
    ]);
    assert_signals(rel, &d, &want);
}

#[test]
fn json_lines_of_cloudtrail_records() {
    let rel = "cloudtrail/records.jsonl";
    let d = decode_clean(rel);
    let mut ci = cloudtrail(
        "01de260b-7e38-4f81-acb4-274fbe9c683e",
        at(10, 31, 22, 0),
        US_EAST_1,
        "ec2.amazonaws.com",
        "RunInstances",
        ci_deploy(),
        "192.0.2.45",
        TERRAFORM_UA,
    );
    ci.instances = vec![InstanceInfo {
        instance_id: CI1.into(),
        ami: some(CI_AMI),
        vpc: some(CI_VPC),
        subnet: some(CI_SUBNET),
        instance_type: some("t3.micro"),
        // cpuOptions 1 × 2.
        vcpus: Some(2),
        launched: true,
        // No group tags: only its own.
        tags: tags(&[("Name", "ci-smoke-1234"), ("pipeline", "deploy-1234")]),
        ..InstanceInfo::default()
    }];
    ci.fields.requested_instance_type = some("t3.micro");
    ci.fields.requested_count = Some(1);
    // From the size table (a t3.micro has 2 vCPUs), not from the response.
    ci.fields.requested_vcpus = Some(2);
    ci.fields.launched_count = Some(1);
    ci.fields.launched_vcpus = Some(2);
    ci.fields.launch = instance_launch(&[CI1], &some("t3.micro"), 2);
    let want = ct(vec![
        asg_launch(
            "23fe8c17-27cc-464e-9177-3046cb24e13a",
            at(7, 14, 3, 0),
            batch_launched(BATCH1, "subnet-0a1b2c3d4e5f60741"),
            4,
        ),
        asg_launch(
            "b523dcf2-cf97-494f-a20f-ebf979469728",
            at(7, 14, 5, 0),
            batch_launched(BATCH2, "subnet-0a1b2c3d4e5f60752"),
            4,
        ),
        ci,
        // Filters on the web-asg tag, but names no instance.
        cloudtrail(
            "eaf2d2f5-dd0a-45e8-830f-ee999a0d43e4",
            at(10, 52, 40, 0),
            US_EAST_1,
            "ec2.amazonaws.com",
            "DescribeInstances",
            alice(),
            "192.0.2.10",
            &cli_ua("ec2.describe-instances"),
        ),
    ]);
    assert_signals(rel, &d, &want);
}

#[test]
fn bare_array_of_failed_launches() {
    let rel = "cloudtrail/record-array.json";
    let d = decode_clean(rel);
    let run = |event_id: &str, time, region: &str, ua: &str, error: &str| {
        let mut s = session_call(
            event_id,
            time,
            region,
            "ec2.amazonaws.com",
            "RunInstances",
            ua,
        );
        s.fields.error_code = some(error);
        s
    };
    // Dry run with the attacker's launch template; no `responseElements` key at all. The
    // instance type is in the template, so none is requested and no vCPUs are known.
    let mut dry = run(
        "d01e90ef-fcf7-43ad-a4b7-0a47ce66ae30",
        at(9, 19, 41, 0),
        AP_SOUTHEAST_3,
        BOTO_UA,
        "Client.DryRunOperation",
    );
    dry.fields.requested_count = Some(4);
    // The record names the launch template (`requestParameters.launchTemplate`), which links
    // the dry run to the CreateLaunchTemplate call before it.
    dry.resources = vec![EntityId::new(EntityKind::LaunchTemplate, GPU_LT)];
    // `responseElements: null`: p3.16xlarge × 8 = 512 vCPUs asked for, none launched.
    let mut quota = run(
        "8d6ffcb6-2f74-40e5-9b70-39373d6938b8",
        at(9, 33, 2, 0),
        AP_SOUTHEAST_3,
        &cli_ua("ec2.run-instances"),
        "Client.VcpuLimitExceeded",
    );
    quota.fields.requested_instance_type = some("p3.16xlarge");
    quota.fields.requested_count = Some(8);
    quota.fields.requested_vcpus = Some(512);
    // `"instanceType": {"value": "p4d.24xlarge"}`, denied by an SCP in us-west-2.
    let mut denied = run(
        "1bf965d6-d294-4b5c-93b5-38cb0c09db3f",
        at(9, 44, 10, 0),
        "us-west-2",
        BOTO_UA,
        "Client.UnauthorizedOperation",
    );
    denied.fields.requested_instance_type = some("p4d.24xlarge");
    denied.fields.requested_count = Some(2);
    denied.fields.requested_vcpus = Some(192);
    for (_, s) in &d.signals {
        assert!(s.instances.is_empty(), "{}: no instance launched", s.kind);
        assert_eq!(s.fields.launched_count, None, "{}", s.reference.key());
        assert_eq!(s.fields.launched_vcpus, None, "{}", s.reference.key());
    }
    assert_signals(rel, &d, &ct(vec![dry, quota, denied]));
}

#[test]
fn single_pretty_printed_record() {
    let rel = "cloudtrail/single-record.json";
    let d = decode_clean(rel);
    let mut s = session_call(
        "20472005-aab9-4f7e-9883-8dfa660776b1",
        at(9, 18, 20, 0),
        AP_SOUTHEAST_3,
        "ec2.amazonaws.com",
        "CreateLaunchTemplate",
        BOTO_UA,
    );
    // From the `CreateLaunchTemplateRequest` / `…Response` wrappers.
    s.fields.requested_instance_type = some("p3.16xlarge");
    s.resources = vec![EntityId::new(EntityKind::LaunchTemplate, GPU_LT)];
    assert_signals(rel, &d, &ct(vec![s]));
}

#[test]
fn lookup_events_response() {
    let rel = "cloudtrail/lookup-events.json";
    let d = decode_clean(rel);
    let want: Vec<_> = [
        (
            "7d9a5c62-df2a-4853-928f-08d34d222ed8",
            at(9, 15, 48, 0),
            "DescribeImages",
        ),
        (
            "1919b10f-79af-4f83-8a80-961ceb013f49",
            at(9, 13, 5, 0),
            "DescribeInstanceTypes",
        ),
    ]
    .into_iter()
    .map(|(id, time, name)| {
        (
            RecordKind::CloudTrailLookupEvents,
            session_call(id, time, AP_SOUTHEAST_3, "ec2.amazonaws.com", name, BOTO_UA),
        )
    })
    .collect();
    assert_signals(rel, &d, &want);
    // The envelope's `EventId` and `EventTime` (epoch seconds) agree with the record inside.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap();
    for (event, (_, s)) in doc["Events"].as_array().unwrap().iter().zip(&d.signals) {
        assert_eq!(
            RecordRef::EventId(event["EventId"].as_str().unwrap().into()),
            s.reference
        );
        // JSON 1.1 wire: epoch seconds as a float (`1746177348.0`).
        assert_eq!(event["EventTime"].as_f64().unwrap() as i64 * 1000, s.time);
    }
}

#[test]
fn eventbridge_cloudtrail_event() {
    let rel = "cloudtrail/eventbridge-cloudtrail.json";
    let d = decode_clean(rel);
    let want = vec![(
        RecordKind::CloudTrailEventBridge,
        session_call(
            "2c2879d1-744e-4414-85de-fe6c82c24fa3",
            at(9, 9, 30, 0),
            US_EAST_1,
            "ec2.amazonaws.com",
            "DescribeRegions",
            &cli_ua("ec2.describe-regions"),
        ),
    )];
    assert_signals(rel, &d, &want);
}

// ---------------------------------------------------------------------------------------------
// GuardDuty.

fn gd(signals: Vec<Signal>) -> Vec<(RecordKind, Signal)> {
    signals
        .into_iter()
        .map(|s| (RecordKind::GuardDuty, s))
        .collect()
}

#[test]
fn guardduty_get_findings_response() {
    let rel = "guardduty/get-findings.json";
    let d = decode_clean(rel);
    let mut probe = guardduty(
        "f30f07681d363c01451613fa6ccc61ab",
        "Recon:EC2/PortProbeUnprotectedPort",
        2.0,
        "Unprotected port on EC2 instance i-0ccccccccccccccc1 is being probed.",
        "Instance",
        at(10, 12, 30, 0),
        at(10, 14, 7, 0),
        at(10, 18, 44, 903),
        6,
    );
    probe.instances = vec![batch_seen(
        BATCH1,
        "subnet-0a1b2c3d4e5f60741",
        &["203.0.113.31"],
    )];
    probe.endpoints = vec![Endpoint::Ip("192.0.2.200".into())];
    probe.fields.action_type = some("PORT_PROBE");
    assert_signals(rel, &d, &gd(vec![bitcoin_tool_newest(), probe]));
}

#[test]
fn guardduty_single_finding() {
    let rel = "guardduty/finding-single.json";
    let d = decode_clean(rel);
    let mut s = guardduty(
        "1a8abaa0a6a1179f4179a343b0b87e79",
        "Execution:Runtime/NewBinaryExecuted",
        5.0,
        "A newly created or recently modified binary file has been executed on EC2 instance i-0aaaaaaaaaaaaaaa1.",
        "Instance",
        at(9, 1, 27, 0),
        at(9, 1, 27, 0),
        at(9, 3, 55, 907),
        1,
    );
    s.instances = vec![web_seen(WEB1, "subnet-0a1b2c3d4e5f60718", "203.0.113.11")];
    s.fields.feature_name = some("RuntimeMonitoring");
    assert_signals(rel, &d, &gd(vec![s]));
}

#[test]
fn guardduty_findings_json_lines() {
    let rel = "guardduty/findings.jsonl";
    let d = decode_clean(rel);
    let mut exfil = guardduty(
        "1d39ec3d2dc7e905e72f492346feadd6",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        8.0,
        "Credentials for instance role web-instance-role used from external IP address.",
        "AccessKey",
        at(9, 5, 12, 0),
        at(9, 9, 30, 0),
        at(9, 15, 2, 771),
        4,
    );
    // `accessKeyDetails`: the STS ARN is rebuilt so that it names the same principal as the
    // session's CloudTrail records; the role ARN is not in the finding.
    exfil.actor = Some(Box::new(Actor {
        user_name: some("web-instance-role"),
        role_arn: None,
        ..stolen_session()
    }));
    exfil.instances = vec![web_seen(WEB1, "subnet-0a1b2c3d4e5f60718", "203.0.113.11")];
    exfil.endpoints = vec![Endpoint::Ip(ATTACKER_IP.into())];
    exfil.fields.action_type = some("AWS_API_CALL");
    exfil.fields.api = some("DescribeRegions");
    exfil.fields.event_source = some("ec2.amazonaws.com");
    exfil.fields.user_agent = some(&cli_ua("ec2.describe-regions"));
    // The older version of BitcoinTool: count 3, last seen 09:05:50, updated 09:07:40.218.
    let older = Signal {
        time: at(9, 5, 50, 0),
        updated_at: Some(at(9, 7, 40, 218)),
        fields: Fields {
            count: Some(3),
            last_seen: Some(at(9, 5, 50, 0)),
            ..bitcoin_tool_newest().fields
        },
        ..bitcoin_tool_newest()
    };
    assert_signals(rel, &d, &gd(vec![exfil, older]));
}

#[test]
fn guardduty_findings_bare_array() {
    let rel = "guardduty/findings-array.json";
    let d = decode_clean(rel);
    let s = dns_finding(
        "0033da37962bfff520b07e39172bd985",
        "Backdoor:EC2/C&CActivity.B!DNS",
        "Command and Control server domain name queried by EC2 instance i-0aaaaaaaaaaaaaaa2.",
        web_seen(WEB2, "subnet-0a1b2c3d4e5f60729", "203.0.113.12"),
        "update.cnc-node.example.net",
        at(9, 18, 5, 0),
        at(9, 19, 44, 0),
        at(9, 23, 12, 650),
        2,
    );
    assert_signals(rel, &d, &gd(vec![s]));
}

#[test]
fn eventbridge_guardduty_finding() {
    let rel = "guardduty/eventbridge-guardduty.json";
    let d = decode_clean(rel);
    let s = dns_finding(
        "6a0481c0bc98af3776b8b1947d9e18f5",
        "Impact:EC2/BitcoinDomainRequest.Reputation",
        "EC2 instance i-0aaaaaaaaaaaaaaa3 queried a domain associated with cryptocurrency-related activity.",
        web_seen(WEB3, "subnet-0a1b2c3d4e5f6073a", "203.0.113.13"),
        "gulf.moneroocean.stream",
        at(9, 31, 9, 0),
        at(9, 31, 58, 0),
        at(9, 35, 27, 118),
        3,
    );
    assert_signals(rel, &d, &[(RecordKind::GuardDutyEventBridge, s)]);
}

#[test]
fn guardduty_cli_pascal_case_findings() {
    let rel = "guardduty/cli-pascalcase.json";
    let d = decode_clean(rel);
    // `Severity` 8.0, `Service.Action` {}, `FeatureName` EbsVolumeScan.
    let mut s = guardduty(
        "885253221d59858e711958e5be3a4513",
        "Execution:EC2/MaliciousFile",
        8.0,
        "Malicious file detected on EC2 instance i-0aaaaaaaaaaaaaaa1.",
        "Instance",
        at(9, 16, 2, 0),
        at(9, 16, 2, 0),
        at(9, 16, 40, 44),
        1,
    );
    s.instances = vec![web_seen(WEB1, "subnet-0a1b2c3d4e5f60718", "203.0.113.11")];
    s.fields.feature_name = some("EbsVolumeScan");
    assert_signals(rel, &d, &gd(vec![s]));
    // The same instance as the camelCase findings describe it.
    let camel = decode_clean("guardduty/finding-single.json");
    assert_eq!(d.signals[0].1.instances, camel.signals[0].1.instances);
}

/// Renames every member the way the AWS CLI prints GuardDuty output (`instanceDetails` →
/// `InstanceDetails`).
fn pascal_case(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let renamed = match chars.next() {
                        Some(first) => first.to_uppercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    (renamed, pascal_case(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(pascal_case).collect()),
        v => v,
    }
}

#[test]
fn pascal_case_guardduty_decodes_to_the_same_signal_as_camel_case() {
    for rel in [
        "guardduty/get-findings.json",
        "guardduty/findings.jsonl",
        "guardduty/findings-array.json",
        "guardduty/finding-single.json",
    ] {
        let camel = decode_clean(rel);
        // The raw findings, in file order (one signal each).
        let text = std::fs::read_to_string(fixture(rel)).unwrap();
        let raw: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut m)) if m.contains_key("findings") => {
                serde_json::from_value(m.remove("findings").unwrap()).unwrap()
            }
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        assert_eq!(raw.len(), camel.signals.len(), "{rel}");
        for (finding, (_, want)) in raw.into_iter().zip(&camel.signals) {
            let pascal = pascal_case(finding);
            assert!(pascal.get("Resource").is_some() && pascal.get("resource").is_none());
            let got = decode_bytes(pascal.to_string().as_bytes());
            assert_signals(
                &format!("{rel} renamed to PascalCase"),
                &got,
                &[(RecordKind::GuardDuty, want.clone())],
            );
            assert!(got.problems.is_empty(), "{rel}: {:?}", got.problems);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ASFF.

#[test]
fn asff_get_findings_response() {
    let rel = "asff/securityhub-get-findings.json";
    let d = decode_clean(rel);
    let asff_web = |id: &str, subnet: &str, public_ip: &str| InstanceInfo {
        // `Details.AwsEc2Instance` and the `Tags` map; of `IpV4Addresses` only the public
        // addresses are kept.
        vcpus: None,
        launched: false,
        public_ips: vec![public_ip.into()],
        ..web_launched(id, subnet)
    };
    // (a) BitcoinTool as Security Hub shows it: the GuardDuty ARN is the ASFF `Id`, the
    // finding type comes back from `Types`, count and archived from `ProductFields`.
    let bitcoin = Signal {
        source: Source::SecurityHub,
        instances: vec![asff_web(WEB1, "subnet-0a1b2c3d4e5f60718", "203.0.113.11")],
        fields: Fields {
            // GuardDuty's own finding id, as in the GuardDuty copy of this finding.
            finding_id: some(BITCOIN_ID),
            resource_type: some("AwsEc2Instance"),
            product_arn: some(GUARDDUTY_PRODUCT),
            generator_id: some(DETECTOR_ARN),
            types: vec![
                "TTPs/Command and Control/CryptoCurrency:EC2-BitcoinTool.B!DNS".into(),
                "Effects/Resource Consumption/CryptoCurrency:EC2-BitcoinTool.B!DNS".into(),
            ],
            record_state: some("ACTIVE"),
            ..bitcoin_tool_newest().fields
        },
        ..bitcoin_tool_newest()
    };
    // (b) DGA, only in Security Hub.
    let dga = Signal {
        time: at(9, 30, 2, 0),
        account: some(ACCOUNT),
        region: some(US_EAST_1),
        source: Source::SecurityHub,
        kind: "Trojan:EC2/DGADomainRequest.C!DNS".into(),
        severity: 8.0,
        reference: RecordRef::FindingArn(
            format!("{DETECTOR_ARN}/finding/3cfa02c9d6579f7b26f5ed7cbf37dac6").into(),
        ),
        updated_at: Some(at(9, 33, 51, 402)),
        actor: None,
        instances: vec![asff_web(WEB2, "subnet-0a1b2c3d4e5f60729", "203.0.113.12")],
        resources: vec![],
        endpoints: vec![Endpoint::Domain("xq7kz2v9mwp3.example".into())],
        fields: Fields {
            finding_type: some("Trojan:EC2/DGADomainRequest.C!DNS"),
            finding_id: some("3cfa02c9d6579f7b26f5ed7cbf37dac6"),
            title: some("DGA domain name queried by EC2 instance i-0aaaaaaaaaaaaaaa2."),
            resource_type: some("AwsEc2Instance"),
            action_type: some("DNS_REQUEST"),
            count: Some(5),
            first_seen: Some(at(9, 29, 17, 0)),
            last_seen: Some(at(9, 30, 2, 0)),
            archived: Some(false),
            product_arn: some(GUARDDUTY_PRODUCT),
            generator_id: some(DETECTOR_ARN),
            types: vec!["TTPs/Command and Control/Trojan:EC2-DGADomainRequest.C!DNS".into()],
            record_state: some("ACTIVE"),
            ..Fields::default()
        },
    };
    // (c) Inspector: not a GuardDuty finding, so keyed by product and id; no finding type;
    // severity from `Normalized` 70.
    let inspector = Signal {
        time: at(7, 21, 36, 155),
        account: some(ACCOUNT),
        region: some(US_EAST_1),
        source: Source::SecurityHub,
        kind: "Software and Configuration Checks/Vulnerabilities/CVE".into(),
        severity: 7.0,
        reference: RecordRef::AsffFinding {
            product_arn: INSPECTOR_PRODUCT.into(),
            id: INSPECTOR_ID.into(),
        },
        updated_at: Some(at(7, 21, 36, 155)),
        actor: None,
        instances: vec![InstanceInfo {
            vcpus: None,
            launched: false,
            public_ips: vec!["203.0.113.32".into()],
            ..batch_launched(BATCH2, "subnet-0a1b2c3d4e5f60752")
        }],
        resources: vec![],
        endpoints: vec![],
        fields: Fields {
            finding_type: None,
            finding_id: some(INSPECTOR_ID),
            title: some("CVE-2024-6387 - openssh-server"),
            resource_type: some("AwsEc2Instance"),
            first_seen: Some(at(7, 21, 36, 155)),
            last_seen: Some(at(7, 21, 36, 155)),
            product_arn: some(INSPECTOR_PRODUCT),
            generator_id: some("AWSInspector"),
            types: vec!["Software and Configuration Checks/Vulnerabilities/CVE".into()],
            record_state: some("ACTIVE"),
            ..Fields::default()
        },
    };
    let want: Vec<_> = [bitcoin, dga, inspector]
        .into_iter()
        .map(|s| (RecordKind::Asff, s))
        .collect();
    assert_signals(rel, &d, &want);
}

/// The BitcoinTool finding read from Security Hub and from GuardDuty becomes one signal
/// (same reference), so the two copies must agree on everything a rule can select on;
/// whichever arrives first is the one the graph keeps.
#[test]
fn asff_copy_of_a_guardduty_finding_agrees_with_the_guardduty_copy() {
    let asff = decode_clean("asff/securityhub-get-findings.json");
    let gd = decode_clean("guardduty/get-findings.json");
    let (a, g) = (&asff.signals[0].1, &gd.signals[0].1);
    assert_eq!(a.reference, g.reference);
    assert_eq!(
        a.reference,
        RecordRef::FindingArn(format!("{DETECTOR_ARN}/finding/{BITCOIN_ID}").into())
    );
    assert_eq!(a.fields.finding_type.as_deref(), Some(BITCOIN_TYPE));
    assert_eq!(a.kind, g.kind);
    assert_eq!(a.time, g.time);
    assert_eq!(a.severity, g.severity);
    assert_eq!(a.updated_at, g.updated_at);
    assert_eq!(a.account, g.account);
    assert_eq!(a.region, g.region);
    assert_eq!(a.actor, g.actor);
    assert_eq!(a.endpoints, g.endpoints);
    // `finding_id` is compared in `asff_get_findings_response`.
    for (name, x, y) in [
        (
            "finding_type",
            &a.fields.finding_type,
            &g.fields.finding_type,
        ),
        ("title", &a.fields.title, &g.fields.title),
        ("action_type", &a.fields.action_type, &g.fields.action_type),
    ] {
        assert_eq!(x, y, "{name}");
    }
    assert_eq!(a.fields.count, g.fields.count, "count");
    assert_eq!(a.fields.first_seen, g.fields.first_seen, "first_seen");
    assert_eq!(a.fields.last_seen, g.fields.last_seen, "last_seen");
    assert_eq!(a.fields.archived, g.fields.archived, "archived");
    assert_eq!(a.instances.len(), 1);
    let (ai, gi) = (&a.instances[0], &g.instances[0]);
    let keys = |i: &InstanceInfo| {
        (
            i.instance_id.clone(),
            i.auto_scaling_group.clone(),
            i.launch_template.clone(),
            i.launch_template_version.clone(),
            i.cloudformation_stack.clone(),
            i.instance_profile.clone(),
            i.ami.clone(),
            i.vpc.clone(),
            i.subnet.clone(),
            i.instance_type.clone(),
        )
    };
    assert_eq!(keys(ai), keys(gi), "instance group keys");
}
