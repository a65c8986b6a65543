//! ASFF findings (Security Hub `GetFindings`, EventBridge imports, this tool's own output) →
//! signals.
//!
//! A GuardDuty finding forwarded to Security Hub keeps its ARN as the ASFF `Id`, so it becomes
//! the same signal as the finding read from GuardDuty directly; its type is recovered from
//! `Types` (`TTPs/Command and Control/CryptoCurrency:EC2-BitcoinTool.B!DNS`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::guardduty::{self, arn_region, is_finding_type};
use super::lenient::LenientStr;
use super::{RawRecord, Reject};
use crate::signal::{
    Actor, EntityId, EntityKind, Fields, InstanceInfo, RecordRef, Signal, Source, Str,
};

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Resource<'a> {
    #[serde(rename = "Type", borrow)]
    pub kind: LenientStr<'a>,
    #[serde(rename = "Id", borrow)]
    pub id: LenientStr<'a>,
    #[serde(rename = "Region", borrow)]
    pub region: LenientStr<'a>,
    #[serde(rename = "Tags", borrow)]
    pub tags: Option<BTreeMap<Cow<'a, str>, LenientStr<'a>>>,
    #[serde(rename = "Details", borrow)]
    pub details: Option<Details<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Details<'a> {
    #[serde(rename = "AwsEc2Instance", borrow)]
    pub ec2_instance: Option<Ec2Instance<'a>>,
    #[serde(rename = "AwsIamAccessKey", borrow)]
    pub access_key: Option<AccessKey<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Ec2Instance<'a> {
    #[serde(rename = "Type", borrow)]
    pub instance_type: LenientStr<'a>,
    #[serde(rename = "ImageId", borrow)]
    pub image_id: LenientStr<'a>,
    #[serde(rename = "IamInstanceProfileArn", borrow)]
    pub profile_arn: LenientStr<'a>,
    #[serde(rename = "VpcId", borrow)]
    pub vpc_id: LenientStr<'a>,
    #[serde(rename = "SubnetId", borrow)]
    pub subnet_id: LenientStr<'a>,
    #[serde(rename = "IpV4Addresses", borrow)]
    pub ipv4_addresses: Option<Vec<LenientStr<'a>>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct AccessKey<'a> {
    #[serde(rename = "AccessKeyId", borrow)]
    pub access_key_id: LenientStr<'a>,
    #[serde(rename = "PrincipalId", borrow)]
    pub principal_id: LenientStr<'a>,
    #[serde(rename = "PrincipalName", alias = "UserName", borrow)]
    pub principal_name: LenientStr<'a>,
    #[serde(rename = "PrincipalType", borrow)]
    pub principal_type: LenientStr<'a>,
}

/// The GuardDuty type behind an ASFF `Types` entry: the last path part with its first `-`
/// after the `:` turned back into `/`.
pub fn guardduty_type(types: &[LenientStr<'_>]) -> Option<Str> {
    types.iter().filter_map(|t| t.get()).find_map(|t| {
        let last = t.rsplit('/').next()?;
        let colon = last.find(':')?;
        let dash = colon + last[colon..].find('-')?;
        let candidate = compact_str::format_compact!("{}/{}", &last[..dash], &last[dash + 1..]);
        is_finding_type(&candidate).then_some(candidate)
    })
}

/// RFC 1918 and link-local IPv4 addresses.
fn is_private_ipv4(ip: &str) -> bool {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    match octets.as_slice() {
        [10, ..] | [192, 168, ..] | [169, 254, ..] => true,
        [172, b, ..] => (16..=31).contains(b),
        _ => false,
    }
}

/// The last `/`-separated part of an ARN (or the id itself).
fn arn_tail(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Maps one ASFF finding.
pub fn decode(rec: &RawRecord<'_>) -> Result<Signal, Reject> {
    let id = rec
        .id
        .get()
        .ok_or_else(|| Reject::skip("ASFF finding without `Id`"))?;
    let product_arn = rec
        .product_arn
        .get()
        .ok_or_else(|| Reject::skip("ASFF finding without `ProductArn`"))?;
    let types: &[LenientStr<'_>] = rec.types.as_deref().unwrap_or(&[]);
    let from_guardduty = product_arn.ends_with("product/aws/guardduty");
    let gd_type = if from_guardduty {
        guardduty_type(types)
    } else {
        None
    };
    let kind = gd_type
        .clone()
        .or_else(|| types.iter().find_map(|t| t.owned()))
        .or_else(|| rec.generator_id.owned())
        .ok_or_else(|| Reject::skip("ASFF finding without `Types` or `GeneratorId`"))?;
    let updated_at = rec.updated_at.millis();
    let time = rec
        .last_observed_at
        .millis()
        .or(updated_at)
        .or_else(|| rec.created_at.millis())
        .ok_or_else(|| Reject::skip(rec.updated_at.require("UpdatedAt").unwrap_err()))?;
    let product_field = |k: &str| {
        rec.product_fields
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.owned())
    };
    let account = rec.aws_account_id.owned();
    let region = rec
        .region
        .owned()
        .or_else(|| from_guardduty.then(|| arn_region(id)).flatten())
        .or_else(|| arn_region(product_arn));
    let reference = if from_guardduty {
        RecordRef::FindingArn(Str::from(id))
    } else {
        RecordRef::AsffFinding {
            product_arn: Str::from(product_arn),
            id: Str::from(id),
        }
    };
    let mut signal = Signal {
        time,
        account: account.clone(),
        region: region.clone(),
        source: Source::SecurityHub,
        kind,
        severity: rec.severity.score().unwrap_or(0.0),
        reference,
        updated_at,
        actor: None,
        instances: Vec::new(),
        resources: Vec::new(),
        endpoints: Vec::new(),
        fields: Fields {
            finding_type: gd_type,
            // A GuardDuty finding's id is the last part of its ARN, as GuardDuty gives it.
            finding_id: Some(Str::from(if from_guardduty {
                id.rsplit('/').next().unwrap_or(id)
            } else {
                id
            })),
            title: rec.title.owned(),
            product_arn: Some(Str::from(product_arn)),
            generator_id: rec.generator_id.owned(),
            types: types.iter().filter_map(|t| t.owned()).collect(),
            record_state: rec.record_state.owned(),
            first_seen: rec.first_observed_at.millis(),
            last_seen: rec.last_observed_at.millis(),
            count: product_field("aws/guardduty/service/count").and_then(|c| c.parse().ok()),
            archived: product_field("aws/guardduty/service/archived").map(|a| a == "true"),
            resource_type: rec
                .resources
                .as_ref()
                .and_then(|r| r.first())
                .and_then(|r| r.kind.owned()),
            ..Fields::default()
        },
    };
    for r in rec.resources.iter().flatten() {
        apply_resource(&mut signal, r);
    }
    if let Some(action) = &rec.asff_action {
        guardduty::apply_action(&mut signal, action);
    }
    Ok(signal)
}

fn apply_resource(signal: &mut Signal, r: &Resource<'_>) {
    let (Some(kind), Some(id)) = (r.kind.get(), r.id.get()) else {
        return;
    };
    let region = r.region.get().or(signal.region.as_deref()).map(Str::from);
    match kind {
        "AwsEc2Instance" => {
            let mut info = InstanceInfo {
                instance_id: Str::from(arn_tail(id)),
                ..InstanceInfo::default()
            };
            if let Some(d) = r.details.as_ref().and_then(|d| d.ec2_instance.as_ref()) {
                info.instance_type = d.instance_type.owned();
                info.ami = d.image_id.owned();
                info.instance_profile = d.profile_arn.owned();
                info.vpc = d.vpc_id.owned();
                info.subnet = d.subnet_id.owned();
                // Public addresses only: private ones say nothing beyond the VPC.
                info.public_ips = d
                    .ipv4_addresses
                    .iter()
                    .flatten()
                    .filter_map(|ip| ip.owned())
                    .filter(|ip| !is_private_ipv4(ip))
                    .collect();
            }
            for (k, v) in r.tags.iter().flatten() {
                if let Some(v) = v.get() {
                    super::cloudtrail::apply_group_tag(&mut info, k, v);
                }
            }
            signal.instances.push(info);
        }
        "AwsIamAccessKey" => {
            let d = r.details.as_ref().and_then(|d| d.access_key.as_ref());
            let mut actor = Actor {
                access_key_id: d
                    .and_then(|d| d.access_key_id.owned())
                    .or_else(|| Some(Str::from(arn_tail(id)))),
                principal_id: d.and_then(|d| d.principal_id.owned()),
                user_name: d.and_then(|d| d.principal_name.owned()),
                principal_type: d.and_then(|d| d.principal_type.owned()),
                account: signal.account.clone(),
                ..Actor::default()
            };
            let session = actor
                .principal_id
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .map(|(_, s)| Str::from(s));
            if let (Some("AssumedRole"), Some(role), Some(s), Some(acct)) = (
                actor.principal_type.as_deref(),
                actor.user_name.as_deref(),
                session.as_deref(),
                actor.account.as_deref(),
            ) {
                // The resource's own ARN, else the finding's region, names the partition.
                let partition = crate::regions::partition_of_arn(id)
                    .or_else(|| {
                        signal
                            .region
                            .as_deref()
                            .and_then(crate::regions::partition_of_region)
                    })
                    .unwrap_or("aws");
                actor.arn = Some(compact_str::format_compact!(
                    "arn:{partition}:sts::{acct}:assumed-role/{role}/{s}"
                ));
            }
            actor.instance_id = session
                .as_deref()
                .filter(|s| crate::signal::is_instance_id(s))
                .map(Str::from);
            actor.session_name = session;
            signal.actor = Some(Box::new(actor));
        }
        other => {
            let tail = arn_tail(id);
            let entity = match other {
                "AwsAutoScalingAutoScalingGroup" => Some(EntityId::scoped(
                    EntityKind::AutoScalingGroup,
                    signal.account.as_deref(),
                    region.as_deref(),
                    tail,
                )),
                "AwsCloudFormationStack" => {
                    // arn:…:stack/NAME/UUID: the name is the part before the UUID.
                    let name = id
                        .split_once(":stack/")
                        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
                        .unwrap_or(id);
                    Some(EntityId::scoped(
                        EntityKind::CloudFormationStack,
                        signal.account.as_deref(),
                        region.as_deref(),
                        name,
                    ))
                }
                "AwsEc2LaunchTemplate" => Some(EntityId::new(EntityKind::LaunchTemplate, tail)),
                "AwsEc2Vpc" => Some(EntityId::new(EntityKind::Vpc, tail)),
                "AwsEc2Subnet" => Some(EntityId::new(EntityKind::Subnet, tail)),
                "AwsIamRole" => Some(EntityId::new(EntityKind::IamRole, id)),
                _ => None,
            };
            if let Some(e) = entity
                && !signal.resources.contains(&e)
            {
                signal.resources.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guardduty_types_from_asff_types() {
        let t = |s: &'static str| LenientStr(Some(Cow::Borrowed(s)));
        for (types, want) in [
            (
                vec![t(
                    "TTPs/Command and Control/CryptoCurrency:EC2-BitcoinTool.B!DNS",
                )],
                Some("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
            ),
            (
                vec![t(
                    "Unusual Behaviors/User/ResourceConsumption:IAMUser-ComputeResources",
                )],
                Some("ResourceConsumption:IAMUser/ComputeResources"),
            ),
            (vec![t("Effects/Data Exposure")], None),
        ] {
            assert_eq!(guardduty_type(&types).as_deref(), want);
        }
    }
}
