//! Sequences → ASFF findings shaped like GuardDuty's own
//! `AttackSequence:EC2/CompromisedInstanceGroup`, valid for `BatchImportFindings`.
//!
//! The `Id` is deterministic and readable: `finding-correlator/<rule>/<affected account>/
//! <region>/<group key>/<start>`, where start is when the evidence that opened the sequence
//! began (its opening signals' earliest first sighting, see [`Sequence::created`]). `AwsAccountId` and
//! `ProductArn` name the account that writes the finding (Security Hub requires that for the
//! default product ARN); the affected account is in the Id, `Resources` and `ProductFields`.
//! `CreatedAt` is that start and `UpdatedAt` its newest signal, so re-running on
//! the same input writes the same finding and Security Hub treats it as no update.
//! `Workflow` and `Note` are never set: they belong to the analyst.

use serde_json::{Map, Value, json};

use crate::matcher::{GroupKey, SeqSignal, Sequence};
use crate::rules::{Rule, RuleSet};
use crate::signal::{Endpoint, EntityKind, InstanceInfo, Source};
use crate::time::{Millis, format_rfc3339};

/// The name and version findings carry in `ProductFields`.
pub const PROVIDER: &str = "finding-correlator";

/// Largest finding Security Hub accepts, with room to spare.
pub const MAX_FINDING_BYTES: usize = 240_000;

/// Who writes the findings.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    /// The writing account; None means the affected account of each finding.
    pub account: Option<String>,
    /// The Security Hub region; None means the region of each sequence.
    pub region: Option<String>,
    /// The writer's partition (the caller's, from STS); None means each finding's own.
    pub partition: Option<String>,
}

/// The finding `Id` of a sequence.
pub fn finding_id(seq: &Sequence) -> String {
    if let Some(r) = &seq.rollup {
        return r.id.clone();
    }
    let account = seq.account.as_deref().unwrap_or("unknown-account");
    let region = seq.region.as_deref().unwrap_or("unknown-region");
    let start = format_rfc3339(seq.created);
    let key = seq.key.to_string();
    let id = format!(
        "{PROVIDER}/{}/{account}/{region}/{key}/{start}",
        seq.rule_id
    );
    if id.len() <= 512 {
        return id;
    }
    // Over-long keys (long principal ARNs): keep the kind, hash the rest.
    let kind = key.split('/').next().unwrap_or("group");
    let hashed = format!("{kind}/h-{}", crate::normalize::stable_hash(key.as_bytes()));
    format!(
        "{PROVIDER}/{}/{account}/{region}/{hashed}/{start}",
        seq.rule_id
    )
}

/// The finding's `CreatedAt`: when the evidence that opened it began, or for a rolled-up
/// sequence that of the member whose `Id` it carries.
pub fn finding_created(seq: &Sequence) -> Millis {
    seq.rollup.as_ref().map_or(seq.created, |r| r.created)
}

fn cut(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn epoch_ms(t: i64) -> Value {
    Value::from(t)
}

/// Confidence: the rule's, plus 10 for each non-weak stage beyond the first and 5 for each
/// weak signal (failed launches, weak rules), at most 100.
pub fn confidence(rule: &Rule, seq: &Sequence) -> u8 {
    let extra_stages = seq.stages().len().saturating_sub(1) as u32;
    let weak = seq.weak_count() as u32;
    (u32::from(rule.confidence) + 10 * extra_stages + 5 * weak).min(100) as u8
}

fn instance_arn(partition: &str, region: &str, account: &str, id: &str) -> String {
    format!("arn:{partition}:ec2:{region}:{account}:instance/{id}")
}

fn guardduty_product_arn(partition: &str, region: &str) -> String {
    format!("arn:{partition}:securityhub:{region}::product/aws/guardduty")
}

/// The partition of a region, else `fallback`.
fn partition_in<'a>(region: &str, fallback: &'a str) -> &'a str {
    crate::regions::partition_of_region(region).unwrap_or(fallback)
}

/// The partition of a sequence's resources: its region's (`cn-north-1` is in `aws-cn`), else
/// that of an ARN its signals carry, else the writer's, else `aws`.
pub fn sequence_partition(seq: &Sequence, writer: &Writer) -> String {
    if let Some(p) = seq
        .region
        .as_deref()
        .and_then(crate::regions::partition_of_region)
    {
        return p.to_string();
    }
    let from_arn = seq.signals.iter().find_map(|s| {
        s.guardduty_arn()
            .or_else(|| s.actor.as_ref().and_then(|a| a.arn.as_deref()))
            .and_then(crate::regions::partition_of_arn)
    });
    from_arn
        .map(str::to_string)
        .or_else(|| writer.partition.clone())
        .unwrap_or_else(|| "aws".to_string())
}

fn actor_id(a: &crate::signal::Actor) -> Option<String> {
    a.principal().map(|p| format!("USER:{}", p.id))
}

/// Builds the ASFF finding of one sequence.
pub fn finding(seq: &Sequence, rule: &Rule, writer: &Writer) -> Value {
    finding_and_text(seq, rule, writer).0
}

/// [`finding`], with its text as it is written: the text its size is measured by, so that it
/// is serialized once.
pub fn finding_and_text(
    seq: &Sequence,
    rule: &Rule,
    writer: &Writer,
) -> (Value, crate::state::KeptFinding) {
    let mut keep = seq.signals.len().min(100);
    loop {
        let f = build(seq, rule, writer, keep);
        let text = crate::state::KeptFinding::of(&f);
        if text.text().len() <= MAX_FINDING_BYTES || keep <= 1 {
            return (f, text);
        }
        keep = keep * 3 / 4;
    }
}

fn build(seq: &Sequence, rule: &Rule, writer: &Writer, keep: usize) -> Value {
    let affected = seq.account.as_deref().unwrap_or("000000000000").to_string();
    let region = seq.region.as_deref().unwrap_or("us-east-1").to_string();
    let writer_account = writer.account.clone().unwrap_or_else(|| affected.clone());
    let sh_region = writer.region.clone().unwrap_or_else(|| region.clone());
    let partition = sequence_partition(seq, writer);
    let writer_partition = writer
        .partition
        .clone()
        .unwrap_or_else(|| partition.clone());
    let id = finding_id(seq);
    let label = rule.severity.as_str();
    let conf = confidence(rule, seq);

    // Signals kept: the first `keep` in the order their activity began (the opening of the
    // attack matters most), always including every finding before API calls when trimming.
    let mut kept: Vec<&SeqSignal> = seq.signals.iter().map(|s| s.as_ref()).collect();
    if kept.len() > keep {
        let mut findings: Vec<&SeqSignal> = kept
            .iter()
            .copied()
            .filter(|s| s.source != Source::CloudTrail)
            .collect();
        findings.truncate(keep);
        let room = keep - findings.len();
        let calls: Vec<&SeqSignal> = kept
            .iter()
            .copied()
            .filter(|s| s.source == Source::CloudTrail)
            .take(room)
            .collect();
        kept = findings.into_iter().chain(calls).collect();
        kept.sort_by_cached_key(|s| s.story_order());
    }
    let trimmed = seq.total_signals - kept.len();

    // Actors and endpoints, in order of appearance.
    let mut actors: Vec<Value> = Vec::new();
    let mut actor_ids: Vec<String> = Vec::new();
    let mut endpoints: Vec<Value> = Vec::new();
    let mut endpoint_ids: Vec<String> = Vec::new();
    for s in &kept {
        if let Some(a) = &s.actor
            && let Some(aid) = actor_id(a)
            && !actor_ids.contains(&aid)
            && actor_ids.len() < 10
        {
            let mut user = Map::new();
            let name = a
                .arn
                .as_deref()
                .map(|arn| {
                    crate::signal::EntityId::new(EntityKind::Principal, arn)
                        .label()
                        .to_string()
                })
                .or_else(|| a.user_name.as_ref().map(|u| u.to_string()))
                .unwrap_or_else(|| aid.clone());
            user.insert("Name".into(), json!(cut(&name, 256)));
            user.insert(
                "Uid".into(),
                json!(
                    a.principal_id
                        .as_deref()
                        .or(a.arn.as_deref())
                        .unwrap_or(&aid)
                ),
            );
            user.insert(
                "Type".into(),
                json!(a.principal_type.as_deref().unwrap_or("Unknown")),
            );
            if let Some(k) = &a.access_key_id {
                user.insert("CredentialUid".into(), json!(k));
            }
            if let Some(acct) = a.account.as_ref().or(s.account.as_ref()) {
                user.insert("Account".into(), json!({ "Uid": acct }));
            }
            let mut actor = json!({ "Id": aid, "User": user });
            if let Some(role) = &a.role_arn {
                actor["Session"] =
                    json!({ "Issuer": role, "Uid": a.session_name.as_deref().unwrap_or("") });
                if a.session_name.is_none() {
                    actor["Session"].as_object_mut().map(|m| m.remove("Uid"));
                }
            }
            actors.push(actor);
            actor_ids.push(aid);
        }
        for e in &s.endpoints {
            let (eid, body) = match e {
                Endpoint::Ip(ip) => (ip.to_string(), json!({ "Id": ip, "Ip": ip })),
                Endpoint::Domain(d) => (d.to_string(), json!({ "Id": d, "Domain": d })),
            };
            if !endpoint_ids.contains(&eid) && endpoint_ids.len() < 10 {
                endpoints.push(body);
                endpoint_ids.push(eid);
            }
        }
    }

    let signals: Vec<Value> = kept
        .iter()
        .map(|s| {
            let mut resource_ids: Vec<String> = s
                .instances
                .iter()
                .chain(s.launched.iter().map(|(i, _)| i))
                .map(|i| {
                    let r = seq
                        .instance_regions
                        .get(i)
                        .map(|r| r.as_str())
                        .or(s.region.as_deref())
                        .unwrap_or(&region);
                    instance_arn(partition_in(r, &partition), r, s.account.as_deref().unwrap_or(&affected), i)
                })
                .collect();
            resource_ids.truncate(100);
            let mut indicators = Vec::new();
            if s.high_risk_api
                && let Some(api) = &s.api {
                    indicators.push(json!({ "Key": "HIGH_RISK_API", "Values": [api], "Title": "High-risk API" }));
                }
            if !s.notes.is_empty() {
                let notes: Vec<String> = s.notes.iter().map(|n| cut(n, 512)).collect();
                indicators.push(json!({ "Key": "BASELINE", "Values": notes, "Title": "Unusual against the account's own history" }));
            }
            if !s.mining_domains.is_empty() {
                indicators.push(json!({ "Key": "CRYPTOMINING_DOMAIN", "Values": s.mining_domains, "Title": "Cryptomining domain" }));
            }
            // A Sigma rule's match: the ATT&CK tactics and techniques of its tags.
            if !s.tactics.is_empty() {
                indicators.push(json!({ "Key": "ATTACK_TACTIC", "Values": s.tactics, "Title": "ATT&CK tactics" }));
            }
            if !s.techniques.is_empty() {
                indicators.push(json!({ "Key": "ATTACK_TECHNIQUE", "Values": s.techniques, "Title": "ATT&CK techniques" }));
            }
            let (kind, product_arn) = match s.source {
                Source::CloudTrail => ("CLOUD_TRAIL", None),
                _ if s.kind.starts_with("rule:") => ("FINDING", Some(format!("arn:{writer_partition}:securityhub:{sh_region}:{writer_account}:product/{writer_account}/default"))),
                _ => ("FINDING", s.guardduty_arn().map(|arn| {
                    let r = s.region.as_deref().unwrap_or(&region);
                    let p = crate::regions::partition_of_arn(arn).unwrap_or_else(|| partition_in(r, &partition));
                    guardduty_product_arn(p, r)
                })),
            };
            let kind = if s.kind.starts_with("rule:") { "FINDING" } else { kind };
            let mut v = json!({
                "Type": kind,
                "Id": cut(&s.reference.key(), 512),
                "Title": cut(&s.title.as_deref().map(|t| t.to_string()).unwrap_or_else(|| s.describe()), 256),
                "Name": cut(&s.describe(), 256),
                "CreatedAt": epoch_ms(s.first_seen),
                "UpdatedAt": epoch_ms(s.updated_at.unwrap_or(s.last_seen)),
                "FirstSeenAt": epoch_ms(s.first_seen),
                "LastSeenAt": epoch_ms(s.last_seen),
                "Severity": s.severity,
                "Count": s.count.min(i32::MAX as u64),
            });
            if let Some(p) = product_arn {
                v["ProductArn"] = json!(p);
            }
            if !resource_ids.is_empty() {
                v["ResourceIds"] = json!(resource_ids);
            }
            if !indicators.is_empty() {
                v["SignalIndicators"] = json!(indicators);
            }
            if let Some(aid) = s.actor.as_deref().and_then(actor_id).filter(|a| actor_ids.contains(a)) {
                v["ActorIds"] = json!([aid]);
            }
            let eids: Vec<String> = s.endpoints.iter().map(|e| match e {
                Endpoint::Ip(i) => i.to_string(),
                Endpoint::Domain(d) => d.to_string(),
            }).filter(|e| endpoint_ids.contains(e)).collect();
            if !eids.is_empty() {
                v["EndpointIds"] = json!(eids);
            }
            v
        })
        .collect();

    // A rolled-up finding carries the tactics, techniques and types of what it absorbed too.
    let absorbed = seq
        .rollup
        .as_ref()
        .map(|r| r.absorbed.as_slice())
        .unwrap_or(&[]);
    let union = |own: &Vec<String>, of: fn(&crate::rollup::Absorbed) -> &Vec<String>| {
        let mut all: Vec<String> = own.clone();
        for v in absorbed.iter().flat_map(|a| of(a).iter()) {
            if !all.contains(v) {
                all.push(v.clone());
            }
        }
        all
    };
    let mut tactics = union(&rule.tactics, |a| &a.tactics);
    let mut techniques = union(&rule.techniques, |a| &a.techniques);
    // And those of the Sigma rules whose matches it holds (`T1496` is already there when
    // the rule says `T1496 - Resource Hijacking`).
    for s in &seq.signals {
        for t in &s.tactics {
            if !tactics.contains(t) {
                tactics.push(t.clone());
            }
        }
        for t in &s.techniques {
            let named = |have: &String| {
                have == t
                    || have
                        .strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with(' '))
            };
            if !techniques.iter().any(named) {
                techniques.push(t.clone());
            }
        }
    }
    let mut seq_indicators = Vec::new();
    if !tactics.is_empty() {
        seq_indicators
            .push(json!({ "Key": "ATTACK_TACTIC", "Values": tactics, "Title": "ATT&CK tactics" }));
    }
    if !techniques.is_empty() {
        seq_indicators.push(json!({ "Key": "ATTACK_TECHNIQUE", "Values": techniques, "Title": "ATT&CK techniques" }));
    }
    let mut apis: Vec<&str> = Vec::new();
    let mut crypto_domains: Vec<&str> = Vec::new();
    for s in &seq.signals {
        if s.high_risk_api
            && let Some(a) = s.api.as_deref()
            && !apis.contains(&a)
        {
            apis.push(a);
        }
        for d in &s.mining_domains {
            if !crypto_domains.contains(&d.as_str()) {
                crypto_domains.push(d);
            }
        }
    }
    apis.truncate(100);
    crypto_domains.truncate(100);
    if !apis.is_empty() {
        seq_indicators
            .push(json!({ "Key": "HIGH_RISK_API", "Values": apis, "Title": "High-risk APIs" }));
    }
    if !crypto_domains.is_empty() {
        seq_indicators.push(json!({ "Key": "CRYPTOMINING_DOMAIN", "Values": crypto_domains, "Title": "Cryptomining domains" }));
    }

    // Resources: the group first, then the instances the signals name, what they launched,
    // then the other members; 32 at most.
    let details: std::collections::HashMap<&str, &InstanceInfo> = seq
        .instance_details
        .iter()
        .map(|i| (i.instance_id.as_str(), &**i))
        .collect();
    let mut resources: Vec<Value> = vec![group_resource(seq, &affected, &partition, &region)];
    let mut listed: Vec<&str> = Vec::new();
    for i in listed_instances(seq) {
        listed.push(i);
        let r = seq
            .instance_regions
            .get(i)
            .map_or(region.as_str(), |r| r.as_str());
        resources.push(instance_resource(
            i,
            details.get(i).copied(),
            &affected,
            partition_in(r, &partition),
            r,
        ));
    }

    // What the launches bought that is not an instance listed above: spot requests, fleets,
    // Auto Scaling groups, tasks, jobs, functions, with their type and totals.
    let mut bought: Vec<String> = Vec::new();
    for s in &seq.signals {
        let Some(l) = s.launch.as_deref() else {
            continue;
        };
        let r = s.region.as_deref().unwrap_or(&region);
        let mut other = serde_json::Map::new();
        other.insert("launch-kind".into(), json!(l.kind.as_str()));
        if let Some(api) = &s.api {
            other.insert("api".into(), json!(cut(api, 1024)));
        }
        other.insert("count".into(), json!(l.count.to_string()));
        if !l.instance_types.is_empty() {
            other.insert(
                "instance-types".into(),
                json!(cut(&l.instance_types.join(","), 1024)),
            );
        }
        for (k, v) in [
            ("vcpus", l.vcpus),
            ("gpus", l.gpus),
            ("accelerators", l.accelerators),
        ] {
            if let Some(v) = v {
                other.insert(k.into(), json!(v.to_string()));
            }
        }
        let line = l.describe(s.api.as_deref());
        // A call and the weak signal about it are one purchase.
        if !bought.contains(&line) {
            bought.push(line);
        }
        for id in &l.resource_ids {
            if resources.len() >= MAX_RESOURCES {
                break;
            }
            if listed.contains(&id.as_str()) || crate::signal::is_instance_id(id) {
                continue;
            }
            listed.push(id);
            resources.push(json!({
                "Type": "Other",
                "Id": cut(id, 512),
                "Partition": partition_in(r, &partition),
                "Region": r,
                "Details": { "Other": other.clone() },
            }));
        }
    }

    let mut related: Vec<Value> = Vec::new();
    for s in &seq.signals {
        if let Some(arn) = s.guardduty_arn() {
            let r = s.region.as_deref().unwrap_or(&region);
            let p = crate::regions::partition_of_arn(arn)
                .unwrap_or_else(|| partition_in(r, &partition));
            let r = json!({ "ProductArn": guardduty_product_arn(p, r), "Id": arn });
            if !related.contains(&r) && related.len() < 10 {
                related.push(r);
            }
        }
    }

    let group = seq.key.to_string();
    let stages = seq.stages();
    let mut description = super::story::story(seq);
    if trimmed > 0 {
        description.push_str(&format!(
            " {trimmed} signal(s) left out of this finding to respect Security Hub limits."
        ));
    }
    description.push_str(&format!(
        " {} signal(s) from {} stage(s) ({}) on {} {} in account {} between {} and {}.",
        seq.total_signals,
        stages.len(),
        stages.join(", "),
        match seq.key {
            GroupKey::Group(_) | GroupKey::Instance(_) => "instance group",
            GroupKey::Principal(_) => "principal",
            GroupKey::Account(_) => "account",
            GroupKey::AccessKey(_) => "access key",
            GroupKey::Field(name, _) => name,
        },
        group,
        affected,
        format_rfc3339(seq.first_seen),
        format_rfc3339(seq.last_seen)
    ));
    if !seq.launched.is_empty() {
        description.push_str(&format!(" {} instance(s) launched.", seq.launched.len()));
    }
    if seq.weak_count() > 0 {
        description.push_str(&format!(
            " {} weak signal(s) raised confidence.",
            seq.weak_count()
        ));
    }
    description.push(' ');
    description.push_str(rule.description.trim());

    let mut product_fields = Map::new();
    product_fields.insert("ProviderName".into(), json!(PROVIDER));
    product_fields.insert("ProviderVersion".into(), json!(env!("CARGO_PKG_VERSION")));
    product_fields.insert(format!("{PROVIDER}/rule-id"), json!(rule.id));
    product_fields.insert(format!("{PROVIDER}/group-key"), json!(cut(&group, 2048)));
    product_fields.insert(format!("{PROVIDER}/affected-account"), json!(affected));
    product_fields.insert(
        format!("{PROVIDER}/signal-count"),
        json!(seq.total_signals.to_string()),
    );
    product_fields.insert(
        format!("{PROVIDER}/stages"),
        json!(cut(&stages.join(","), 2048)),
    );
    if !seq.launched.is_empty() {
        product_fields.insert(
            format!("{PROVIDER}/launched-instances"),
            json!(seq.launched.len().to_string()),
        );
    }
    if !bought.is_empty() {
        product_fields.insert(
            format!("{PROVIDER}/compute-bought"),
            json!(cut(&bought.join("; "), 2048)),
        );
    }
    if !absorbed.is_empty() {
        product_fields.insert(
            format!("{PROVIDER}/absorbed-count"),
            json!(absorbed.len().to_string()),
        );
        let rules_list: Vec<String> = absorbed
            .iter()
            .map(|a| format!("{} ({}): {}", a.rule_id, a.severity.as_str(), a.title))
            .collect();
        product_fields.insert(
            format!("{PROVIDER}/absorbed-rules"),
            json!(cut(&rules_list.join("; "), 2048)),
        );
        let ids: Vec<&str> = absorbed.iter().map(|a| a.id.as_str()).collect();
        product_fields.insert(
            format!("{PROVIDER}/absorbed-ids"),
            json!(cut(&ids.join(" "), 2048)),
        );
    }
    if trimmed > 0 {
        product_fields.insert(
            format!("{PROVIDER}/signals-trimmed"),
            json!(trimmed.to_string()),
        );
    }

    let types: Vec<String> = union(&rule.types, |a| &a.types)
        .into_iter()
        .take(50)
        .collect();
    let severity = json!({ "Label": label, "Original": label });
    let mut remediation = json!({ "Recommendation": { "Text": cut(rule.runbook.trim(), 512) } });
    if let Some(url) = &rule.runbook_url {
        remediation["Recommendation"]["Url"] = json!(url);
    }
    let mut fpf = json!({
        "Confidence": conf,
        "Severity": severity,
        "Types": types,
    });
    if !related.is_empty() {
        fpf["RelatedFindings"] = json!(related);
    }
    // The large parts are moved in, not passed to `json!`, which would copy their trees.
    let mut detection_sequence = json!({ "Uid": id });
    detection_sequence["Signals"] = Value::Array(signals);
    if !actors.is_empty() {
        detection_sequence["Actors"] = Value::Array(actors);
    }
    if !endpoints.is_empty() {
        detection_sequence["Endpoints"] = Value::Array(endpoints);
    }
    if !seq_indicators.is_empty() {
        detection_sequence["SequenceIndicators"] = Value::Array(seq_indicators);
    }
    let mut f = json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": format!("arn:{writer_partition}:securityhub:{sh_region}:{writer_account}:product/{writer_account}/default"),
        "ProductName": PROVIDER,
        "CompanyName": PROVIDER,
        "GeneratorId": rule.id,
        "AwsAccountId": writer_account,
        "Types": types,
        "CreatedAt": format_rfc3339(finding_created(seq)),
        "UpdatedAt": format_rfc3339(seq.last_seen),
        "FirstObservedAt": format_rfc3339(seq.first_seen),
        "LastObservedAt": format_rfc3339(seq.last_seen),
        "Severity": severity,
        "Confidence": conf,
        "Title": cut(&super::story::title(&rule.title, seq), 256),
        "Description": cut(&description, 1024),
        "RecordState": "ACTIVE",
    });
    f["Resources"] = Value::Array(resources);
    f["Detection"]["Sequence"] = detection_sequence;
    f["FindingProviderFields"] = fpf;
    f["ProductFields"] = Value::Object(product_fields);
    f["Remediation"] = remediation;
    if !related.is_empty() {
        f["RelatedFindings"] = json!(related);
    }
    f
}

fn group_resource(seq: &Sequence, account: &str, partition: &str, region: &str) -> Value {
    let mut other = Map::new();
    other.insert("group_key".into(), json!(cut(&seq.key.to_string(), 1024)));
    other.insert("affected_account".into(), json!(account));
    other.insert("members".into(), json!(seq.members.len().to_string()));
    match &seq.key {
        // The group's key, account and size are in ProductFields: `Details.Other` belongs
        // to resources of type `Other`.
        GroupKey::Group(g) if g.key.kind == EntityKind::AutoScalingGroup => json!({
            "Type": "AwsAutoScalingAutoScalingGroup",
            "Id": cut(g.key.label(), 512),
            "Partition": partition,
            "Region": region,
        }),
        GroupKey::AccessKey(k) => json!({
            "Type": "AwsIamAccessKey",
            "Id": k,
            "Partition": partition,
            "Region": region,
            "Details": { "AwsIamAccessKey": { "AccessKeyId": k, "AccountId": account } },
        }),
        key => {
            let id = match key {
                GroupKey::Group(g) => g.key.to_string(),
                other_key => other_key.to_string(),
            };
            json!({
                "Type": "Other",
                "Id": cut(&id, 512),
                "Partition": partition,
                "Region": region,
                "Details": { "Other": other },
            })
        }
    }
}

fn instance_resource(
    id: &str,
    info: Option<&InstanceInfo>,
    account: &str,
    partition: &str,
    region: &str,
) -> Value {
    let mut details = Map::new();
    if let Some(i) = info {
        for (k, v) in [
            ("Type", &i.instance_type),
            ("ImageId", &i.ami),
            ("IamInstanceProfileArn", &i.instance_profile),
            ("VpcId", &i.vpc),
            ("SubnetId", &i.subnet),
        ] {
            if let Some(v) = v {
                details.insert(k.into(), json!(v));
            }
        }
        if !i.public_ips.is_empty() {
            details.insert("IpV4Addresses".into(), json!(i.public_ips));
        }
    }
    let mut r = json!({
        "Type": "AwsEc2Instance",
        "Id": instance_arn(partition, region, account, id),
        "Partition": partition,
        "Region": region,
    });
    if !details.is_empty() {
        r["Details"] = json!({ "AwsEc2Instance": details });
    }
    if let Some(i) = info {
        let mut tags = Map::new();
        for (k, v) in [
            ("aws:autoscaling:groupName", &i.auto_scaling_group),
            ("aws:cloudformation:stack-name", &i.cloudformation_stack),
            ("aws:ec2launchtemplate:id", &i.launch_template),
        ] {
            if let Some(v) = v {
                tags.insert(k.into(), json!(v));
            }
        }
        for (k, v) in i.tags.iter().take(40) {
            tags.insert(k.to_string(), json!(v));
        }
        if !tags.is_empty() {
            r["Tags"] = Value::Object(tags);
        }
    }
    r
}

/// Resources a finding lists at most: its group and 31 others.
const MAX_RESOURCES: usize = 32;

/// The instances a sequence's finding lists as resources, after its group: the first distinct
/// ones of the group's members (those the signals name first) and then of the instances its
/// signals launched, as many as [`MAX_RESOURCES`] leaves room for.
pub fn listed_instances(seq: &Sequence) -> Vec<&str> {
    let mut listed: Vec<&str> = Vec::new();
    for i in seq
        .members
        .iter()
        .chain(seq.launched.iter().map(|(i, _)| i))
    {
        if listed.len() + 1 >= MAX_RESOURCES {
            break;
        }
        if !listed.contains(&i.as_str()) {
            listed.push(i);
        }
    }
    listed
}

/// Drops what a sequence holds of the graph's instances that its finding does not read: the
/// descriptions of instances it does not list ([`listed_instances`]), and the regions of
/// instances it neither lists nor names in a signal. A group's sequence holds every member's
/// (hundreds, for an Auto Scaling group that has run for weeks), which kept the graph's
/// description of every instance ever launched alive after the graph was freed.
pub fn keep_what_the_finding_reads(seq: &mut Sequence) {
    let listed: std::collections::HashSet<String> = listed_instances(seq)
        .into_iter()
        .map(str::to_string)
        .collect();
    seq.instance_details
        .retain(|d| listed.contains(d.instance_id.as_str()));
    seq.instance_details.shrink_to_fit();
    let named: std::collections::HashSet<&str> = seq
        .signals
        .iter()
        .flat_map(|s| s.instances.iter().chain(s.launched.iter().map(|(i, _)| i)))
        .map(|i| i.as_str())
        .chain(listed.iter().map(String::as_str))
        .collect();
    seq.instance_regions.retain(|i| named.contains(i));
}

/// The same as [`findings`], each kept as its text once built: only one finding's tree is in
/// memory at a time (a run of 7,000 findings held about 900 MB of trees for 270 MB of text).
pub fn finding_texts(
    seqs: &[Sequence],
    rules: &RuleSet,
    writer: &Writer,
) -> Vec<crate::state::KeptFinding> {
    seqs.iter()
        .filter(|s| s.emit == crate::rules::Emit::Finding)
        .filter_map(|s| {
            rules
                .get(&s.rule_id)
                .map(|r| finding_and_text(s, r, writer).1)
        })
        .collect()
}

/// Findings for every emitted sequence (weak-signal rules emit none), in a stable order.
pub fn findings(seqs: &[Sequence], rules: &RuleSet, writer: &Writer) -> Vec<Value> {
    seqs.iter()
        .filter(|s| s.emit == crate::rules::Emit::Finding)
        .filter_map(|s| rules.get(&s.rule_id).map(|r| finding(s, r, writer)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::SeqSignal;
    use crate::signal::{RecordRef, Str};
    use std::sync::Arc;

    fn rule() -> Rule {
        let set = RuleSet::builtin().expect("shipped rules load");
        set.get("instance-credentials-launch-compute")
            .expect("shipped")
            .clone()
    }

    fn signal(i: usize, launched: usize) -> Arc<SeqSignal> {
        Arc::new(SeqSignal {
            reference: RecordRef::EventId(Str::from(format!("00000000-0000-4000-8000-{i:012}"))),
            time: 1_746_177_600_000 + i as i64 * 1000,
            source: Source::CloudTrail,
            kind: Str::from("ec2.amazonaws.com:RunInstances"),
            severity: 0.0,
            stage: "launch".into(),
            weak: false,
            title: None,
            account: Some(Str::from("111122223333")),
            region: Some(Str::from("us-east-1")),
            actor: None,
            instances: vec![],
            launched: (0..launched)
                .map(|j| {
                    (
                        Str::from(format!("i-0{:016x}", i * 1000 + j)),
                        Some(Str::from("p3.16xlarge")),
                    )
                })
                .collect(),
            endpoints: vec![],
            api: Some("ec2:RunInstances".into()),
            high_risk_api: false,
            mining_domains: vec![],
            error_code: None,
            count: 1,
            first_seen: 1_746_177_600_000 + i as i64 * 1000,
            last_seen: 1_746_177_600_000 + i as i64 * 1000,
            updated_at: None,
            notes: Vec::new(),
            launch: None,
            tactics: Vec::new(),
            techniques: Vec::new(),
        })
    }

    fn sequence(key: GroupKey, signals: usize, launched: usize) -> Sequence {
        let r = rule();
        let mut seq = Sequence::new(&r, key, 1_746_177_600_000);
        for i in 0..signals {
            seq.add(signal(i, launched), 1000);
        }
        seq.account = Some(Str::from("111122223333"));
        seq.region = Some(Str::from("us-east-1"));
        seq
    }

    #[test]
    fn ids_are_readable_and_deterministic() {
        let seq = sequence(GroupKey::Instance(Str::from("i-0aaaaaaaaaaaaaaa1")), 1, 1);
        assert_eq!(
            finding_id(&seq),
            "finding-correlator/instance-credentials-launch-compute/111122223333/us-east-1/instance/i-0aaaaaaaaaaaaaaa1/2025-05-02T09:20:00.000Z"
        );
    }

    #[test]
    fn over_long_group_keys_are_hashed_within_512_characters() {
        let long = "x".repeat(600);
        let seq = sequence(GroupKey::Principal(Str::from(long.as_str())), 1, 1);
        let id = finding_id(&seq);
        assert!(id.len() <= 512, "{}", id.len());
        assert!(id.contains("/principal/h-"), "{id}");
        let other = sequence(GroupKey::Principal(Str::from(format!("{long}y"))), 1, 1);
        assert_ne!(finding_id(&other), id, "different keys, different ids");
    }

    #[test]
    fn oversized_findings_are_trimmed_and_say_so() {
        // 150 signals naming 100 launched instances each: far over 240 KB untrimmed.
        let seq = sequence(
            GroupKey::Instance(Str::from("i-0aaaaaaaaaaaaaaa1")),
            150,
            100,
        );
        let f = finding(&seq, &rule(), &Writer::default());
        let size = serde_json::to_vec(&f).unwrap().len();
        assert!(size <= MAX_FINDING_BYTES, "{size} bytes");
        let kept = f["Detection"]["Sequence"]["Signals"]
            .as_array()
            .unwrap()
            .len();
        assert!(kept < 100, "{kept} signals kept");
        let trimmed: usize = f["ProductFields"]["finding-correlator/signals-trimmed"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(trimmed, 150 - kept);
        assert!(
            f["Description"]
                .as_str()
                .unwrap()
                .contains("left out of this finding to respect Security Hub limits"),
            "{}",
            f["Description"]
        );
        assert!(f["Resources"].as_array().unwrap().len() <= 32);
    }

    #[test]
    fn small_findings_keep_every_signal_up_to_100() {
        let seq = sequence(GroupKey::Instance(Str::from("i-0aaaaaaaaaaaaaaa1")), 120, 1);
        let f = finding(&seq, &rule(), &Writer::default());
        assert_eq!(
            f["Detection"]["Sequence"]["Signals"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
        assert_eq!(
            f["ProductFields"]["finding-correlator/signals-trimmed"],
            "20"
        );
        assert!(f.get("Workflow").is_none() && f.get("Note").is_none());
    }

    #[test]
    fn a_sequence_keeps_only_the_instance_facts_its_finding_reads_and_the_finding_is_the_same() {
        use crate::graph::GroupId;
        use crate::signal::{EntityId, EntityKind};
        // A group of 200 members (the first named by the signals), whose facts the graph
        // described; the signals launched 3 more and name one member far down the list.
        let group = GroupId {
            account: Some(Str::from("111122223333")),
            key: EntityId::new(EntityKind::AutoScalingGroup, "111122223333/us-east-1/web"),
        };
        let mut seq = sequence(GroupKey::Group(group), 4, 3);
        let far = Str::from("i-0member000000180");
        let mut named = signal(9, 0);
        Arc::make_mut(&mut named).instances = vec![far.clone()];
        seq.add(named, 1000);
        let members: Vec<Str> = (0..200)
            .map(|n| Str::from(format!("i-0member{n:09}")))
            .collect();
        seq.members = members.clone();
        let launched: Vec<Str> = seq
            .signals
            .iter()
            .flat_map(|s| s.launched.iter().map(|(i, _)| i.clone()))
            .collect();
        seq.launched = launched
            .iter()
            .map(|i| (i.clone(), Some(Str::from("p3.16xlarge"))))
            .collect();
        let everyone = members.iter().chain(&launched);
        seq.instance_details = everyone
            .clone()
            .enumerate()
            .map(|(n, i)| {
                Arc::new(InstanceInfo {
                    instance_id: i.clone(),
                    instance_type: Some(Str::from(format!("c5.{n}xlarge"))),
                    ami: Some(Str::from(format!("ami-{n:08}"))),
                    tags: vec![(Str::from("team"), Str::from(format!("t{n}")))],
                    ..InstanceInfo::default()
                })
            })
            .collect();
        // Regions other than the signals' own, so that a region dropped shows in the ARNs.
        seq.instance_regions = everyone
            .enumerate()
            .map(|(n, i)| {
                (
                    i.clone(),
                    Str::from(if n % 2 == 0 {
                        "eu-west-1"
                    } else {
                        "ap-south-1"
                    }),
                )
            })
            .collect();
        let before = finding(&seq, &rule(), &Writer::default());
        assert!(
            before
                .to_string()
                .contains(&format!("eu-west-1:111122223333:instance/{far}")),
            "the far member's own region is in its signal's resource ids"
        );

        keep_what_the_finding_reads(&mut seq);
        assert_eq!(finding(&seq, &rule(), &Writer::default()), before);
        let listed = listed_instances(&seq);
        assert_eq!(listed.len(), 31);
        assert_eq!(
            seq.instance_details.len(),
            31,
            "a description per listed instance"
        );
        assert!(
            seq.instance_details
                .iter()
                .all(|d| listed.contains(&d.instance_id.as_str()))
        );
        // The listed ones, the far member and the launched ones (none listed: 200 members).
        assert_eq!(seq.instance_regions.len(), 31 + 1 + seq.launched.len());
        assert_eq!(
            seq.members.len(),
            200,
            "the members stay, for the summary and the count"
        );
    }

    #[test]
    fn the_writer_account_owns_the_product_arn() {
        let seq = sequence(GroupKey::Instance(Str::from("i-0aaaaaaaaaaaaaaa1")), 1, 1);
        let writer = Writer {
            account: Some("999988887777".into()),
            region: Some("eu-west-1".into()),
            partition: None,
        };
        let f = finding(&seq, &rule(), &writer);
        assert_eq!(f["AwsAccountId"], "999988887777");
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:eu-west-1:999988887777:product/999988887777/default"
        );
        // The affected account stays in the Id and ProductFields.
        assert!(f["Id"].as_str().unwrap().contains("/111122223333/"));
        assert_eq!(
            f["ProductFields"]["finding-correlator/affected-account"],
            "111122223333"
        );
    }
}
