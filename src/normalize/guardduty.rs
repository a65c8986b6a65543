//! GuardDuty findings → signals, in the API's camelCase and the CLI's PascalCase alike.
//!
//! One set of structs reads both casings (`#[serde(alias)]`). The instance a finding is about
//! comes from `resource.instanceDetails` (its group tags, profile, AMI, network interfaces);
//! the credentials from `resource.accessKeyDetails` (an `AROA…:i-…` principal id means an
//! instance's role credentials); endpoints from `service.action`.

use serde::Deserialize;

use super::lenient::{LenientBool, LenientF64, LenientStr, LenientTime};
use super::{RawRecord, Reject};
use crate::signal::{
    Actor, Endpoint, Fields, InstanceInfo, RecordRef, Signal, Source, Str, is_instance_id,
};

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Resource<'a> {
    #[serde(rename = "resourceType", alias = "ResourceType", borrow)]
    pub resource_type: LenientStr<'a>,
    #[serde(rename = "instanceDetails", alias = "InstanceDetails", borrow)]
    pub instance_details: Option<InstanceDetails<'a>>,
    #[serde(rename = "accessKeyDetails", alias = "AccessKeyDetails", borrow)]
    pub access_key_details: Option<AccessKeyDetails<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct InstanceDetails<'a> {
    #[serde(rename = "instanceId", alias = "InstanceId", borrow)]
    pub instance_id: LenientStr<'a>,
    #[serde(rename = "instanceType", alias = "InstanceType", borrow)]
    pub instance_type: LenientStr<'a>,
    #[serde(rename = "imageId", alias = "ImageId", borrow)]
    pub image_id: LenientStr<'a>,
    #[serde(rename = "iamInstanceProfile", alias = "IamInstanceProfile", borrow)]
    pub iam_instance_profile: Option<Profile<'a>>,
    #[serde(rename = "networkInterfaces", alias = "NetworkInterfaces", borrow)]
    pub network_interfaces: Option<Vec<NetworkInterface<'a>>>,
    #[serde(alias = "Tags", borrow)]
    pub tags: Option<Vec<super::cloudtrail::Tag<'a>>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Profile<'a> {
    #[serde(alias = "Arn", borrow)]
    pub arn: LenientStr<'a>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct NetworkInterface<'a> {
    #[serde(rename = "vpcId", alias = "VpcId", borrow)]
    pub vpc_id: LenientStr<'a>,
    #[serde(rename = "subnetId", alias = "SubnetId", borrow)]
    pub subnet_id: LenientStr<'a>,
    #[serde(rename = "publicIp", alias = "PublicIp", borrow)]
    pub public_ip: LenientStr<'a>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct AccessKeyDetails<'a> {
    #[serde(rename = "accessKeyId", alias = "AccessKeyId", borrow)]
    pub access_key_id: LenientStr<'a>,
    #[serde(rename = "principalId", alias = "PrincipalId", borrow)]
    pub principal_id: LenientStr<'a>,
    #[serde(rename = "userName", alias = "UserName", borrow)]
    pub user_name: LenientStr<'a>,
    #[serde(rename = "userType", alias = "UserType", borrow)]
    pub user_type: LenientStr<'a>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Service<'a> {
    #[serde(alias = "Action", borrow)]
    pub action: Option<Action<'a>>,
    #[serde(alias = "Count")]
    pub count: LenientF64,
    #[serde(rename = "eventFirstSeen", alias = "EventFirstSeen", borrow)]
    pub event_first_seen: LenientTime<'a>,
    #[serde(rename = "eventLastSeen", alias = "EventLastSeen", borrow)]
    pub event_last_seen: LenientTime<'a>,
    #[serde(alias = "Archived")]
    pub archived: LenientBool,
    #[serde(rename = "featureName", alias = "FeatureName", borrow)]
    pub feature_name: LenientStr<'a>,
    #[serde(rename = "additionalInfo", alias = "AdditionalInfo")]
    pub additional_info: Option<AdditionalInfo>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct AdditionalInfo {
    #[serde(alias = "Sample")]
    pub sample: LenientBool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Action<'a> {
    #[serde(rename = "actionType", alias = "ActionType", borrow)]
    pub action_type: LenientStr<'a>,
    #[serde(rename = "awsApiCallAction", alias = "AwsApiCallAction", borrow)]
    pub aws_api_call: Option<ApiCallAction<'a>>,
    #[serde(
        rename = "networkConnectionAction",
        alias = "NetworkConnectionAction",
        borrow
    )]
    pub network_connection: Option<RemoteOnly<'a>>,
    #[serde(rename = "dnsRequestAction", alias = "DnsRequestAction", borrow)]
    pub dns_request: Option<DnsRequest<'a>>,
    #[serde(rename = "portProbeAction", alias = "PortProbeAction", borrow)]
    pub port_probe: Option<PortProbe<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct ApiCallAction<'a> {
    #[serde(alias = "Api", borrow)]
    pub api: LenientStr<'a>,
    #[serde(rename = "serviceName", alias = "ServiceName", borrow)]
    pub service_name: LenientStr<'a>,
    #[serde(rename = "errorCode", alias = "ErrorCode", borrow)]
    pub error_code: LenientStr<'a>,
    #[serde(rename = "userAgent", alias = "UserAgent", borrow)]
    pub user_agent: LenientStr<'a>,
    #[serde(rename = "remoteIpDetails", alias = "RemoteIpDetails", borrow)]
    pub remote_ip: Option<RemoteIp<'a>>,
    #[serde(rename = "domainDetails", alias = "DomainDetails", borrow)]
    pub domain_details: Option<DnsRequest<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct RemoteOnly<'a> {
    #[serde(rename = "remoteIpDetails", alias = "RemoteIpDetails", borrow)]
    pub remote_ip: Option<RemoteIp<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct RemoteIp<'a> {
    #[serde(rename = "ipAddressV4", alias = "IpAddressV4", borrow)]
    pub v4: LenientStr<'a>,
    #[serde(rename = "ipAddressV6", alias = "IpAddressV6", borrow)]
    pub v6: LenientStr<'a>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct DnsRequest<'a> {
    #[serde(alias = "Domain", borrow)]
    pub domain: LenientStr<'a>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct PortProbe<'a> {
    #[serde(rename = "portProbeDetails", alias = "PortProbeDetails", borrow)]
    pub details: Vec<RemoteOnly<'a>>,
}

/// Whether `t` has the shape of a GuardDuty finding type:
/// `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName[.DetectionMechanism][!Artifact]`.
pub fn is_finding_type(t: &str) -> bool {
    let Some((purpose, rest)) = t.split_once(':') else {
        return false;
    };
    let Some((resource, family)) = rest.split_once('/') else {
        return false;
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    word(purpose) && word(resource) && !family.is_empty() && !family.contains(char::is_whitespace)
}

/// The instance a finding's `resource.instanceDetails` describes, with its group keys.
pub fn instance_info(d: &InstanceDetails<'_>) -> Option<InstanceInfo> {
    let id = d.instance_id.get()?;
    let mut info = InstanceInfo {
        instance_id: Str::from(id),
        instance_type: d.instance_type.owned(),
        ami: d.image_id.owned(),
        instance_profile: d.iam_instance_profile.as_ref().and_then(|p| p.arn.owned()),
        ..InstanceInfo::default()
    };
    for eni in d.network_interfaces.iter().flatten() {
        if info.vpc.is_none() {
            info.vpc = eni.vpc_id.owned();
        }
        if info.subnet.is_none() {
            info.subnet = eni.subnet_id.owned();
        }
        if let Some(ip) = eni.public_ip.owned()
            && !info.public_ips.contains(&ip)
        {
            info.public_ips.push(ip);
        }
    }
    for tag in d.tags.iter().flatten() {
        if let (Some(k), Some(v)) = (tag.key.get(), tag.value.get()) {
            super::cloudtrail::apply_group_tag(&mut info, k, v);
        }
    }
    Some(info)
}

/// The actor of `resource.accessKeyDetails`. For an assumed role the STS ARN is rebuilt
/// (`arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`: such ARNs never carry a role
/// path), so the finding and the CloudTrail records of that session name the same principal.
/// The partition is the finding ARN's (`arn:aws-cn:guardduty:…`).
pub fn actor_from_access_key(
    k: &AccessKeyDetails<'_>,
    account: Option<&str>,
    partition: &str,
) -> Actor {
    let session = k
        .principal_id
        .get()
        .and_then(|p| p.split_once(':'))
        .map(|(_, s)| Str::from(s))
        .filter(|s| !s.is_empty());
    let user_type = k.user_type.owned();
    let arn = match (
        user_type.as_deref(),
        k.user_name.get(),
        session.as_deref(),
        account,
    ) {
        (Some("AssumedRole"), Some(role), Some(session), Some(acct)) => {
            Some(compact_str::format_compact!(
                "arn:{partition}:sts::{acct}:assumed-role/{role}/{session}"
            ))
        }
        _ => None,
    };
    Actor {
        arn,
        principal_type: user_type,
        principal_id: k.principal_id.owned(),
        account: account.map(Str::from),
        user_name: k.user_name.owned(),
        access_key_id: k
            .access_key_id
            .owned()
            .filter(|k| k != "GeneratedFindingAccessKeyId"),
        instance_id: session
            .as_deref()
            .filter(|s| is_instance_id(s))
            .map(Str::from),
        session_name: session,
        ..Actor::default()
    }
}

/// Maps one GuardDuty finding (camelCase or PascalCase).
pub fn decode(rec: &RawRecord<'_>, source: Source) -> Result<Signal, Reject> {
    let kind = rec
        .finding_type
        .get()
        .ok_or_else(|| Reject::skip("GuardDuty finding without `type`"))?;
    if !is_finding_type(kind) {
        return Err(Reject::skip(compact_str::format_compact!(
            "finding type {} is not a GuardDuty finding type (expected ThreatPurpose:ResourceType/ThreatFamily, e.g. \"CryptoCurrency:EC2/BitcoinTool.B!DNS\")",
            super::quote(kind)
        )));
    }
    let arn = rec
        .arn
        .get()
        .ok_or_else(|| Reject::skip("GuardDuty finding without `arn`"))?;
    let service = rec.service.as_ref();
    if service
        .and_then(|s| s.additional_info.as_ref())
        .is_some_and(|a| a.sample.0 == Some(true))
        && !rec.keep_samples
    {
        return Err(Reject::ignore(compact_str::format_compact!(
            "GuardDuty sample finding {kind} (service.additionalInfo.sample = true)"
        )));
    }
    let updated_at = rec.updated_at.millis();
    let first_seen = service.and_then(|s| s.event_first_seen.millis());
    let last_seen = service.and_then(|s| s.event_last_seen.millis());
    let time = last_seen
        .or(updated_at)
        .or_else(|| rec.created_at.millis())
        .ok_or_else(|| {
            Reject::skip(match &rec.updated_at {
                LenientTime::Absent => {
                    "GuardDuty finding without `service.eventLastSeen` or `updatedAt`".to_string()
                }
                t => t.require("updatedAt").unwrap_err(),
            })
        })?;
    let account = rec.account_id.owned().or_else(|| arn_account(arn));
    let resource = rec.resource.as_ref();
    let mut signal = Signal {
        time,
        account: account.clone(),
        region: rec.region.owned().or_else(|| arn_region(arn)),
        source,
        kind: Str::from(kind),
        severity: rec.severity.score().unwrap_or(0.0),
        reference: RecordRef::FindingArn(Str::from(arn)),
        updated_at,
        actor: resource
            .and_then(|r| r.access_key_details.as_ref())
            .map(|k| {
                let partition = crate::regions::partition_of_arn(arn).unwrap_or("aws");
                Box::new(actor_from_access_key(k, account.as_deref(), partition))
            }),
        instances: resource
            .and_then(|r| r.instance_details.as_ref())
            .and_then(instance_info)
            .into_iter()
            .collect(),
        resources: Vec::new(),
        endpoints: Vec::new(),
        fields: Fields {
            finding_type: Some(Str::from(kind)),
            finding_id: rec.id.owned(),
            title: rec.title.owned(),
            resource_type: resource.and_then(|r| r.resource_type.owned()),
            count: service.and_then(|s| s.count.as_u64()),
            first_seen,
            last_seen,
            archived: service.and_then(|s| s.archived.0),
            feature_name: service.and_then(|s| s.feature_name.owned()),
            ..Fields::default()
        },
    };
    if let Some(action) = service.and_then(|s| s.action.as_ref()) {
        apply_action(&mut signal, action);
    }
    Ok(signal)
}

pub(crate) fn apply_action(signal: &mut Signal, action: &Action<'_>) {
    signal.fields.action_type = action.action_type.owned();
    let mut push = |e: Endpoint| {
        if !signal.endpoints.contains(&e) {
            signal.endpoints.push(e);
        }
    };
    let remote = |r: &Option<RemoteIp<'_>>, push: &mut dyn FnMut(Endpoint)| {
        if let Some(r) = r
            && let Some(ip) = r.v4.owned().or_else(|| r.v6.owned())
        {
            push(Endpoint::Ip(ip));
        }
    };
    if let Some(call) = &action.aws_api_call {
        remote(&call.remote_ip, &mut push);
        if let Some(d) = call.domain_details.as_ref().and_then(|d| d.domain.owned()) {
            push(Endpoint::Domain(d));
        }
    }
    if let Some(n) = &action.network_connection {
        remote(&n.remote_ip, &mut push);
    }
    if let Some(d) = action.dns_request.as_ref().and_then(|d| d.domain.owned()) {
        push(Endpoint::Domain(d));
    }
    if let Some(p) = &action.port_probe {
        for d in &p.details {
            remote(&d.remote_ip, &mut push);
        }
    }
    if let Some(call) = &action.aws_api_call {
        signal.fields.api = call.api.owned();
        signal.fields.error_code = call.error_code.owned();
        signal.fields.user_agent = call.user_agent.owned();
        signal.fields.event_source = call.service_name.owned();
    }
}

/// The account of an ARN (`arn:aws:SERVICE:REGION:ACCOUNT:…`).
pub fn arn_account(arn: &str) -> Option<Str> {
    arn.split(':')
        .nth(4)
        .filter(|s| !s.is_empty())
        .map(Str::from)
}

pub fn arn_region(arn: &str) -> Option<Str> {
    arn.split(':')
        .nth(3)
        .filter(|s| !s.is_empty())
        .map(Str::from)
}

/// GuardDuty's numeric severity, or the score behind an ASFF `Severity` object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeverityValue {
    pub number: Option<f64>,
    pub label: Option<Str>,
    pub normalized: Option<f64>,
    pub product: Option<f64>,
}

impl SeverityValue {
    /// On GuardDuty's 0–10 scale.
    pub fn score(&self) -> Option<f64> {
        self.number
            .or(self.product)
            .or(self.normalized.map(|n| n / 10.0))
            .or_else(|| {
                Some(match self.label.as_deref()? {
                    "INFORMATIONAL" => 0.0,
                    "LOW" => 2.0,
                    "MEDIUM" => 5.0,
                    "HIGH" => 8.0,
                    "CRITICAL" => 9.0,
                    _ => return None,
                })
            })
    }
}

impl<'de> Deserialize<'de> for SeverityValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Obj {
            #[serde(rename = "Label")]
            label: Option<Str>,
            #[serde(rename = "Normalized")]
            normalized: LenientF64,
            #[serde(rename = "Product")]
            product: LenientF64,
        }
        // A number (or numeric string) is GuardDuty's form; an object is ASFF's.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SeverityValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a severity number or an ASFF Severity object")
            }
            fn visit_f64<E>(self, v: f64) -> Result<SeverityValue, E> {
                Ok(SeverityValue {
                    number: Some(v),
                    ..Default::default()
                })
            }
            fn visit_u64<E>(self, v: u64) -> Result<SeverityValue, E> {
                Ok(SeverityValue {
                    number: Some(v as f64),
                    ..Default::default()
                })
            }
            fn visit_i64<E>(self, v: i64) -> Result<SeverityValue, E> {
                Ok(SeverityValue {
                    number: Some(v as f64),
                    ..Default::default()
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<SeverityValue, E> {
                Ok(match v.trim().parse::<f64>() {
                    Ok(n) => SeverityValue {
                        number: Some(n),
                        ..Default::default()
                    },
                    Err(_) => SeverityValue {
                        label: Some(v.to_ascii_uppercase().into()),
                        ..Default::default()
                    },
                })
            }
            fn visit_unit<E>(self) -> Result<SeverityValue, E> {
                Ok(SeverityValue::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<SeverityValue, A::Error> {
                let o = Obj::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(SeverityValue {
                    number: None,
                    label: o.label,
                    normalized: o.normalized.0,
                    product: o.product.0,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_type_grammar() {
        for (t, ok) in [
            ("CryptoCurrency:EC2/BitcoinTool.B!DNS", true),
            ("Backdoor:EC2/C&CActivity.B!DNS", true),
            (
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                true,
            ),
            ("AttackSequence:EC2/CompromisedInstanceGroup", true),
            ("banana", false),
            ("Foo:/x", false),
            (":EC2/x", false),
            ("Foo:EC2/", false),
        ] {
            assert_eq!(is_finding_type(t), ok, "{t}");
        }
    }

    #[test]
    fn severity_forms() {
        let s: SeverityValue = serde_json::from_str("8").unwrap();
        assert_eq!(s.score(), Some(8.0));
        let s: SeverityValue =
            serde_json::from_str(r#"{"Product":2,"Label":"MEDIUM","Normalized":40}"#).unwrap();
        assert_eq!(s.score(), Some(2.0));
        let s: SeverityValue = serde_json::from_str(r#"{"Label":"HIGH"}"#).unwrap();
        assert_eq!(s.score(), Some(8.0));
    }
}
