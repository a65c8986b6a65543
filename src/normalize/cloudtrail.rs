//! CloudTrail records → signals.
//!
//! Every record gets its actor (from `userIdentity`), source IP, user agent and error code.
//! The calls that describe or change EC2 instance groups also get their request and response
//! read, lazily (they arrive as raw JSON and are parsed only for these event names):
//! `RunInstances` (every launched item, with its group tags, profile, AMI, VPC, type and
//! vCPUs), `Start/Stop/TerminateInstances`, EC2's `BidEvictedEvent` (a Spot interruption:
//! the instances in its `serviceEventDetails`), Auto Scaling group changes, launch template
//! creation, and instance profile associations. Every call of an API in the launch catalog
//! (`crate::launch`) becomes a launch.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::lenient::{LenientF64, LenientStr, LenientTime};
use super::record_hash;
use crate::signal::{
    Actor, EntityId, EntityKind, Fields, InstanceInfo, RecordRef, Signal, Source, Str,
    is_instance_id,
};

/// The top-level keys of a CloudTrail record that signals use. `requestParameters` and
/// `responseElements` stay raw (borrowed, never copied) and are parsed only for the calls the
/// decoder or the launch catalog reads: most records are read-only calls whose details no
/// rule uses.
#[derive(Default)]
pub struct Record<'a> {
    pub event_version: LenientStr<'a>,
    pub event_time: LenientTime<'a>,
    pub event_source: LenientStr<'a>,
    pub event_name: LenientStr<'a>,
    pub aws_region: LenientStr<'a>,
    pub source_ip: LenientStr<'a>,
    pub user_agent: LenientStr<'a>,
    pub user_identity: Option<UserIdentity<'a>>,
    pub request_parameters: Option<&'a RawValue>,
    pub response_elements: Option<&'a RawValue>,
    /// A service event's details (`AwsServiceEvent`: a Spot instance's interruption).
    pub service_event_details: Option<&'a RawValue>,
    pub error_code: LenientStr<'a>,
    pub event_id: LenientStr<'a>,
    pub recipient_account_id: LenientStr<'a>,
    /// When asked for ([`parse_top_level`]'s `keys`): every top-level key, as written (slices
    /// of the text), in order; None when one holds an escape (so it is no slice). With the
    /// text they give every member's extent without a second scan
    /// ([`raw_json::member_at`](super::raw_json::member_at)).
    pub keys: Option<Vec<&'a str>>,
}

/// The calls whose request or response the decoder itself reads: what they say of instances
/// and their groups (launches, starts and ends, Auto Scaling groups, launch templates,
/// instance profiles) is the entity graph's, whatever the rules select.
pub const GRAPH_EVENT_NAMES: &[&str] = &[
    "RunInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
    "BidEvictedEvent",
    "RebootInstances",
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "AssociateIamInstanceProfile",
    "ReplaceIamInstanceProfileAssociation",
    "CreateAutoScalingGroup",
    "UpdateAutoScalingGroup",
    "SetDesiredCapacity",
    "DeleteAutoScalingGroup",
];

/// Whether the decoder reads the call's request or response itself ([`GRAPH_EVENT_NAMES`];
/// the launch catalog's calls are decided by the catalog).
pub fn needs_details(event_name: &str) -> bool {
    GRAPH_EVENT_NAMES.contains(&event_name)
}

/// The keys [`Record`] reads, matched without allocating.
enum Key {
    EventVersion,
    EventTime,
    EventSource,
    EventName,
    AwsRegion,
    SourceIp,
    UserAgent,
    UserIdentity,
    ErrorCode,
    EventId,
    RecipientAccountId,
    RequestParameters,
    ResponseElements,
    ServiceEventDetails,
    /// A key no CloudTrail record has at its top level, but other records do.
    Foreign,
    Other,
}

/// Parses a [`Record`] from the top level of a record, stopping at the first key no
/// CloudTrail record has at its top level (a GuardDuty finding's `schemaVersion`, an
/// envelope's `detail-type`): `Ok(None)`, and the caller parses it as what it is, once.
/// `keys`: fill [`Record::keys`].
pub fn parse_top_level<'a>(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
    keys: bool,
) -> Result<Option<Record<'a>>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let stopped = std::cell::Cell::new(false);
    let seed = RecordSeed {
        stop_at_foreign: Some(&stopped),
        keys,
        lifetime: std::marker::PhantomData,
    };
    match seed.deserialize(de) {
        Err(_) if stopped.get() => Ok(None),
        other => other.map(Some),
    }
}

/// A [`Key`], with the key as written when it is a slice of the text (it holds no escape).
struct KeyAt<'a>(Key, Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for KeyAt<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = KeyAt<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, k: &'de str) -> Result<KeyAt<'a>, E> {
                Ok(KeyAt(Key::of(k), Some(k)))
            }
            fn visit_str<E>(self, k: &str) -> Result<KeyAt<'a>, E> {
                Ok(KeyAt(Key::of(k), None))
            }
        }
        d.deserialize_identifier(V(std::marker::PhantomData))
    }
}

impl Key {
    fn of(k: &str) -> Key {
        match k {
            "eventVersion" => Key::EventVersion,
            "eventTime" => Key::EventTime,
            "eventSource" => Key::EventSource,
            "eventName" => Key::EventName,
            "awsRegion" => Key::AwsRegion,
            "sourceIPAddress" => Key::SourceIp,
            "userAgent" => Key::UserAgent,
            "userIdentity" => Key::UserIdentity,
            "errorCode" => Key::ErrorCode,
            "eventID" => Key::EventId,
            "recipientAccountId" => Key::RecipientAccountId,
            "requestParameters" => Key::RequestParameters,
            "responseElements" => Key::ResponseElements,
            "serviceEventDetails" => Key::ServiceEventDetails,
            // GuardDuty and ASFF findings, EventBridge envelopes, finding lists.
            "schemaVersion" | "SchemaVersion" | "detail-type" | "detail" | "service"
            | "Service" | "resource" | "Resource" | "ProductArn" | "Findings" | "findings" => {
                Key::Foreign
            }
            _ => Key::Other,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Record<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        RecordSeed {
            stop_at_foreign: None,
            keys: false,
            lifetime: std::marker::PhantomData,
        }
        .deserialize(d)
    }
}

/// Parses a [`Record`]; with `stop_at_foreign`, stops at a [`Key::Foreign`] (setting the
/// flag) instead of skipping it; with `keys`, fills [`Record::keys`].
struct RecordSeed<'f, 'a> {
    stop_at_foreign: Option<&'f std::cell::Cell<bool>>,
    keys: bool,
    lifetime: std::marker::PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for RecordSeed<'_, 'a> {
    type Value = Record<'a>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Record<'a>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for RecordSeed<'_, 'a> {
    type Value = Record<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Record<'a>, A::Error> {
        use serde::de::IgnoredAny;
        let mut r = Record::default();
        let mut keys = self.keys.then(|| Vec::with_capacity(32));
        while let Some(KeyAt(key, written)) = m.next_key()? {
            if let Some(list) = &mut keys {
                match written {
                    Some(k) => list.push(k),
                    None => keys = None,
                }
            }
            match key {
                Key::EventVersion => r.event_version = m.next_value()?,
                Key::EventTime => r.event_time = m.next_value()?,
                Key::EventSource => r.event_source = m.next_value()?,
                Key::EventName => r.event_name = m.next_value()?,
                Key::AwsRegion => r.aws_region = m.next_value()?,
                Key::SourceIp => r.source_ip = m.next_value()?,
                Key::UserAgent => r.user_agent = m.next_value()?,
                Key::UserIdentity => r.user_identity = m.next_value()?,
                Key::ErrorCode => r.error_code = m.next_value()?,
                Key::EventId => r.event_id = m.next_value()?,
                Key::RecipientAccountId => r.recipient_account_id = m.next_value()?,
                Key::ServiceEventDetails => r.service_event_details = m.next_value()?,
                Key::Foreign => match self.stop_at_foreign {
                    Some(stopped) => {
                        stopped.set(true);
                        return Err(serde::de::Error::custom("not a CloudTrail record"));
                    }
                    None => {
                        m.next_value::<IgnoredAny>()?;
                    }
                },
                // Captured for every call (borrowed, not copied: the same scan as skipping),
                // since the launch catalog, which is data, decides which calls are read.
                Key::RequestParameters | Key::ResponseElements => {
                    let raw: Option<&'a RawValue> = m.next_value()?;
                    if matches!(key, Key::RequestParameters) {
                        r.request_parameters = raw;
                    } else {
                        r.response_elements = raw;
                    }
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        r.keys = keys;
        Ok(r)
    }
}

impl Record<'_> {
    /// Whether the object is a CloudTrail record (possibly one missing a field it needs,
    /// which [`decode`] then reports).
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_source.get().is_some()
            || self.event_name.get().is_some()
            || self.event_version.get().is_some()
            || (!self.event_time.is_absent() && self.user_identity.is_some())
    }
}

/// `userIdentity`.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: LenientStr<'a>,
    #[serde(rename = "principalId", borrow)]
    pub principal_id: LenientStr<'a>,
    #[serde(borrow)]
    pub arn: LenientStr<'a>,
    #[serde(rename = "accountId", borrow)]
    pub account_id: LenientStr<'a>,
    #[serde(rename = "accessKeyId", borrow)]
    pub access_key_id: LenientStr<'a>,
    #[serde(rename = "userName", borrow)]
    pub user_name: LenientStr<'a>,
    #[serde(rename = "invokedBy", borrow)]
    pub invoked_by: LenientStr<'a>,
    #[serde(rename = "sessionContext", borrow)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct SessionContext<'a> {
    #[serde(rename = "sessionIssuer", borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: LenientStr<'a>,
    #[serde(borrow)]
    pub arn: LenientStr<'a>,
    #[serde(rename = "userName", borrow)]
    pub user_name: LenientStr<'a>,
}

/// Builds the actor of a CloudTrail `userIdentity`.
pub fn actor_from_identity(ui: &UserIdentity<'_>) -> Actor {
    let mut actor = Actor {
        arn: ui.arn.owned(),
        principal_type: ui.kind.owned(),
        principal_id: ui.principal_id.owned(),
        account: ui.account_id.owned(),
        user_name: ui.user_name.owned(),
        access_key_id: ui.access_key_id.owned(),
        invoked_by: ui.invoked_by.owned(),
        ..Actor::default()
    };
    if let Some(issuer) = ui
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        && issuer.kind.get().is_none_or(|k| k == "Role")
    {
        actor.role_arn = issuer.arn.owned();
    }
    actor.session_name = session_name(ui.arn.get(), ui.principal_id.get());
    actor.instance_id = actor
        .session_name
        .as_deref()
        .filter(|s| is_instance_id(s))
        .map(Str::from);
    actor
}

/// The role session name: the last part of `…:assumed-role/ROLE/SESSION`, else what follows
/// the colon of an `AROA…:SESSION` principal id.
pub fn session_name(arn: Option<&str>, principal_id: Option<&str>) -> Option<Str> {
    session_name_str(arn, principal_id).map(Str::from)
}

fn session_name_str<'a>(arn: Option<&'a str>, principal_id: Option<&'a str>) -> Option<&'a str> {
    if let Some((_, rest)) = arn.and_then(crate::signal::split_assumed_role)
        && let Some((_, session)) = rest.split_once('/')
    {
        return Some(session).filter(|s| !s.is_empty());
    }
    principal_id
        .and_then(|p| p.split_once(':'))
        .map(|(_, s)| s)
        .filter(|s| !s.is_empty())
}

/// Whether the call was made with an instance's role credentials (its actor would have an
/// `instance_id`), without building the actor.
pub fn by_instance(rec: &Record<'_>) -> bool {
    rec.user_identity
        .as_ref()
        .and_then(instance_session)
        .is_some()
}

/// The instance whose role session `ui` is, if it is one.
fn instance_session<'a>(ui: &'a UserIdentity<'_>) -> Option<&'a str> {
    session_name_str(ui.arn.get(), ui.principal_id.get()).filter(|s| is_instance_id(s))
}

/// For a call made with an instance's role credentials: the hash of the graph statement its
/// signal would make if it describes no instance (the same as
/// [`crate::pipeline::graph_statement`] of that signal), computed without building the
/// signal. None for calls by other actors.
pub fn session_statement(rec: &Record<'_>) -> Option<u64> {
    use std::hash::Hasher;
    let ui = rec.user_identity.as_ref()?;
    let session = instance_session(ui)?;
    let role_arn = ui
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .filter(|i| i.kind.get().is_none_or(|k| k == "Role"))
        .and_then(|i| i.arn.get());
    let mut h = rustc_hash::FxHasher::default();
    crate::signal::hash_statement_place(
        &mut h,
        rec.recipient_account_id.get().or(ui.account_id.get()),
        // Without instances, the region is not part of the statement.
        None,
        &[],
    );
    crate::signal::hash_statement_actor(
        &mut h,
        [
            ui.principal_id.get(),
            ui.arn.get(),
            role_arn,
            Some(session),
            ui.account_id.get(),
        ],
    );
    Some(h.finish())
}

/// Maps one CloudTrail record. `raw` is the record's bytes, hashed when it has no `eventID`;
/// a call of an API in `launches` becomes a launch.
pub fn decode(
    rec: &Record<'_>,
    raw: &[u8],
    launches: &crate::launch::Catalog,
) -> Result<Signal, Str> {
    let source = rec
        .event_source
        .get()
        .ok_or("CloudTrail record without `eventSource`")?;
    let name = rec
        .event_name
        .get()
        .ok_or("CloudTrail record without `eventName`")?;
    let time = rec.event_time.require("eventTime")?;
    let actor = rec
        .user_identity
        .as_ref()
        .map(|u| Box::new(actor_from_identity(u)));
    let account = rec
        .recipient_account_id
        .owned()
        .or_else(|| actor.as_ref().and_then(|a| a.account.clone()));
    let reference = match rec.event_id.get() {
        Some(id) => RecordRef::EventId(Str::from(id)),
        None => RecordRef::Hash(record_hash(raw).into()),
    };
    let mut signal = Signal {
        time,
        account,
        region: rec.aws_region.owned(),
        source: Source::CloudTrail,
        kind: crate::signal::joined(source, ':', name),
        severity: 0.0,
        reference,
        updated_at: None,
        actor,
        instances: Vec::new(),
        resources: Vec::new(),
        endpoints: Vec::new(),
        fields: Fields {
            event_source: Some(Str::from(source)),
            event_name: Some(Str::from(name)),
            error_code: rec.error_code.owned(),
            source_ip: rec.source_ip.owned(),
            user_agent: rec.user_agent.owned(),
            ..Fields::default()
        },
    };
    let request = rec.request_parameters.map(RawValue::get);
    let response = rec.response_elements.map(RawValue::get);
    match (source, name) {
        ("ec2.amazonaws.com", "RunInstances") => run_instances(&mut signal, request, response),
        (
            "ec2.amazonaws.com",
            "StartInstances" | "StopInstances" | "TerminateInstances" | "RebootInstances",
        ) => named_instances(&mut signal, request),
        // EC2 interrupted a Spot instance (ended it: not a call anyone made).
        ("ec2.amazonaws.com", "BidEvictedEvent") => {
            evicted_instances(&mut signal, rec.service_event_details.map(RawValue::get))
        }
        ("ec2.amazonaws.com", "CreateLaunchTemplate" | "CreateLaunchTemplateVersion") => {
            launch_template_change(&mut signal, request, response)
        }
        (
            "ec2.amazonaws.com",
            "AssociateIamInstanceProfile" | "ReplaceIamInstanceProfileAssociation",
        ) => profile_association(&mut signal, request, response),
        (
            "autoscaling.amazonaws.com",
            "CreateAutoScalingGroup"
            | "UpdateAutoScalingGroup"
            | "SetDesiredCapacity"
            | "DeleteAutoScalingGroup",
        ) => auto_scaling_change(&mut signal, request),
        _ => {}
    }
    launches.extract(&mut signal, request, response);
    Ok(signal)
}

fn parse<'a, T: Deserialize<'a> + Default>(raw: Option<&'a str>) -> T {
    // Request and response shapes differ between API versions and publishers; a part we
    // cannot read costs the details it would have given, never the record.
    raw.and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunRequest<'a> {
    #[serde(rename = "instanceType", borrow)]
    instance_type: LenientStr<'a>,
    #[serde(rename = "imageId", borrow)]
    image_id: LenientStr<'a>,
    #[serde(rename = "instancesSet", borrow)]
    instances_set: RequestItems<'a>,
    #[serde(rename = "launchTemplate", borrow)]
    launch_template: LaunchTemplateRef<'a>,
    #[serde(rename = "iamInstanceProfile", borrow)]
    iam_instance_profile: ProfileRef<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RequestItems<'a> {
    #[serde(borrow)]
    items: Vec<RequestItem<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RequestItem<'a> {
    #[serde(rename = "imageId", borrow)]
    image_id: LenientStr<'a>,
    #[serde(rename = "instanceId", borrow)]
    instance_id: LenientStr<'a>,
    #[serde(rename = "maxCount")]
    max_count: LenientF64,
    #[serde(rename = "minCount")]
    min_count: LenientF64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LaunchTemplateRef<'a> {
    #[serde(rename = "launchTemplateId", alias = "LaunchTemplateId", borrow)]
    id: LenientStr<'a>,
    #[serde(rename = "launchTemplateName", alias = "LaunchTemplateName", borrow)]
    name: LenientStr<'a>,
    #[serde(alias = "Version", borrow)]
    version: LenientStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProfileRef<'a> {
    #[serde(alias = "Arn", borrow)]
    arn: LenientStr<'a>,
    #[serde(alias = "Name", borrow)]
    name: LenientStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunResponse<'a> {
    #[serde(rename = "instancesSet", borrow)]
    instances_set: Option<ResponseItems<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseItems<'a> {
    #[serde(borrow)]
    items: Vec<ResponseItem<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseItem<'a> {
    #[serde(rename = "instanceId", borrow)]
    instance_id: LenientStr<'a>,
    #[serde(rename = "imageId", borrow)]
    image_id: LenientStr<'a>,
    #[serde(rename = "instanceType", borrow)]
    instance_type: LenientStr<'a>,
    #[serde(rename = "iamInstanceProfile", borrow)]
    iam_instance_profile: ProfileRef<'a>,
    #[serde(rename = "subnetId", borrow)]
    subnet_id: LenientStr<'a>,
    #[serde(rename = "vpcId", borrow)]
    vpc_id: LenientStr<'a>,
    #[serde(rename = "ipAddress", borrow)]
    ip_address: LenientStr<'a>,
    #[serde(rename = "tagSet", borrow)]
    tag_set: TagSet<'a>,
    #[serde(rename = "cpuOptions")]
    cpu_options: CpuOptions,
    #[serde(rename = "networkInterfaceSet", borrow)]
    network_interface_set: EniSet<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagSet<'a> {
    #[serde(borrow)]
    items: Vec<Tag<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Tag<'a> {
    #[serde(alias = "Key", borrow)]
    pub key: LenientStr<'a>,
    #[serde(alias = "Value", borrow)]
    pub value: LenientStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CpuOptions {
    #[serde(rename = "coreCount")]
    core_count: LenientF64,
    #[serde(rename = "threadsPerCore")]
    threads_per_core: LenientF64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EniSet<'a> {
    #[serde(borrow)]
    items: Vec<Eni<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Eni<'a> {
    #[serde(rename = "vpcId", borrow)]
    vpc_id: LenientStr<'a>,
    #[serde(rename = "subnetId", borrow)]
    subnet_id: LenientStr<'a>,
    #[serde(borrow)]
    association: EniAssociation<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EniAssociation<'a> {
    #[serde(rename = "publicIp", borrow)]
    public_ip: LenientStr<'a>,
}

/// Applies the group-defining `aws:` system tags to an instance.
pub(crate) fn apply_group_tag(info: &mut InstanceInfo, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    if !key.starts_with("aws:") {
        if info.tags.len() < 50 && !info.tags.iter().any(|(k, _)| k == key) {
            info.tags.push((Str::from(key), Str::from(value)));
        }
        return;
    }
    match key {
        "aws:autoscaling:groupName" => info.auto_scaling_group = Some(Str::from(value)),
        "aws:cloudformation:stack-name" => info.cloudformation_stack = Some(Str::from(value)),
        "aws:ec2launchtemplate:id" => info.launch_template = Some(Str::from(value)),
        "aws:ec2launchtemplate:version" => info.launch_template_version = Some(Str::from(value)),
        _ => {}
    }
}

fn run_instances(signal: &mut Signal, request: Option<&str>, response: Option<&str>) {
    let req: RunRequest = parse(request);
    let requested_type = req.instance_type.owned();
    let requested_count = req
        .instances_set
        .items
        .iter()
        .filter_map(|i| i.max_count.as_u32().or(i.min_count.as_u32()))
        .max();
    signal.fields.requested_instance_type = requested_type.clone();
    signal.fields.requested_count = requested_count;
    if let (Some(t), Some(n)) = (requested_type.as_deref(), requested_count) {
        signal.fields.requested_vcpus =
            crate::instance_types::vcpus(t).map(|v| v.saturating_mul(n));
    }
    // The launch template is named even when the call failed (dry runs, quota errors).
    if let Some(lt) = req.launch_template.id.owned() {
        push_unique(
            &mut signal.resources,
            EntityId::new(EntityKind::LaunchTemplate, lt),
        );
    }
    let resp: RunResponse = parse(response);
    let Some(set) = resp.instances_set else {
        return;
    };
    let request_ami = req.image_id.owned().or_else(|| {
        req.instances_set
            .items
            .iter()
            .find_map(|i| i.image_id.owned())
    });
    let mut vcpu_total = 0u32;
    // Lists sized to what they hold: a run keeps many of them until it ends.
    signal.instances.reserve_exact(set.items.len());
    for item in &set.items {
        let Some(id) = item.instance_id.get() else {
            continue;
        };
        let mut info = InstanceInfo {
            instance_id: Str::from(id),
            launched: true,
            ami: item.image_id.owned().or_else(|| request_ami.clone()),
            instance_type: item
                .instance_type
                .owned()
                .or_else(|| requested_type.clone()),
            subnet: item.subnet_id.owned(),
            vpc: item.vpc_id.owned(),
            instance_profile: item
                .iam_instance_profile
                .arn
                .owned()
                .or_else(|| req.iam_instance_profile.arn.owned()),
            launch_template: req.launch_template.id.owned(),
            launch_template_version: req.launch_template.version.owned(),
            ..InstanceInfo::default()
        };
        for tag in &item.tag_set.items {
            if let (Some(k), Some(v)) = (tag.key.get(), tag.value.get()) {
                apply_group_tag(&mut info, k, v);
            }
        }
        for eni in &item.network_interface_set.items {
            if info.vpc.is_none() {
                info.vpc = eni.vpc_id.owned();
            }
            if info.subnet.is_none() {
                info.subnet = eni.subnet_id.owned();
            }
            if let Some(ip) = eni.association.public_ip.owned()
                && !info.public_ips.contains(&ip)
            {
                info.public_ips.push(ip);
            }
        }
        if let Some(ip) = item.ip_address.owned()
            && !info.public_ips.contains(&ip)
        {
            info.public_ips.push(ip);
        }
        let from_cpu = match (
            item.cpu_options.core_count.as_u32(),
            item.cpu_options.threads_per_core.as_u32(),
        ) {
            (Some(c), Some(t)) => Some(c.saturating_mul(t.max(1))),
            (Some(c), None) => Some(c),
            _ => None,
        };
        info.vcpus = from_cpu.or_else(|| {
            info.instance_type
                .as_deref()
                .and_then(crate::instance_types::vcpus)
        });
        info.tags.shrink_to_fit();
        info.public_ips.shrink_to_fit();
        vcpu_total = vcpu_total.saturating_add(info.vcpus.unwrap_or(0));
        if let Some(lt) = &info.launch_template {
            push_unique(
                &mut signal.resources,
                EntityId::new(EntityKind::LaunchTemplate, lt.clone()),
            );
        }
        signal.instances.push(info);
    }
    signal.fields.launched_count = Some(signal.instances.len() as u32);
    signal.fields.launched_vcpus = Some(vcpu_total);
}

fn named_instances(signal: &mut Signal, request: Option<&str>) {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Req<'a> {
        #[serde(rename = "instancesSet", borrow)]
        instances_set: RequestItems<'a>,
    }
    let req: Req = parse(request);
    signal
        .instances
        .reserve_exact(req.instances_set.items.len());
    for item in &req.instances_set.items {
        if let Some(id) = item.instance_id.get() {
            signal.instances.push(InstanceInfo {
                instance_id: Str::from(id),
                ..InstanceInfo::default()
            });
        }
    }
}

/// `serviceEventDetails.instanceIdSet` of a `BidEvictedEvent`: the Spot instances EC2 ended.
fn evicted_instances(signal: &mut Signal, details: Option<&str>) {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Details<'a> {
        #[serde(rename = "instanceIdSet", borrow)]
        instance_id_set: Vec<LenientStr<'a>>,
    }
    let details: Details = parse(details);
    signal
        .instances
        .reserve_exact(details.instance_id_set.len());
    for id in &details.instance_id_set {
        if let Some(id) = id.get() {
            signal.instances.push(InstanceInfo {
                instance_id: Str::from(id),
                ..InstanceInfo::default()
            });
        }
    }
}

fn launch_template_change(signal: &mut Signal, request: Option<&str>, response: Option<&str>) {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Req<'a> {
        #[serde(
            rename = "CreateLaunchTemplateRequest",
            alias = "CreateLaunchTemplateVersionRequest",
            borrow
        )]
        inner: LtRequest<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct LtRequest<'a> {
        #[serde(rename = "LaunchTemplateId", borrow)]
        id: LenientStr<'a>,
        #[serde(rename = "LaunchTemplateData", borrow)]
        data: LtData<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct LtData<'a> {
        #[serde(rename = "InstanceType", borrow)]
        instance_type: LenientStr<'a>,
        #[serde(rename = "IamInstanceProfile", borrow)]
        profile: ProfileRef<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Resp<'a> {
        #[serde(
            rename = "CreateLaunchTemplateResponse",
            alias = "CreateLaunchTemplateVersionResponse",
            borrow
        )]
        inner: LtResponse<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct LtResponse<'a> {
        #[serde(rename = "launchTemplate", alias = "launchTemplateVersion", borrow)]
        template: LaunchTemplateRef<'a>,
    }
    let req: Req = parse(request);
    let resp: Resp = parse(response);
    signal.fields.requested_instance_type = req.inner.data.instance_type.owned();
    if let Some(id) = resp.inner.template.id.owned().or(req.inner.id.owned()) {
        push_unique(
            &mut signal.resources,
            EntityId::new(EntityKind::LaunchTemplate, id),
        );
    }
    if let Some(arn) = req.inner.data.profile.arn.owned() {
        push_unique(
            &mut signal.resources,
            EntityId::new(EntityKind::InstanceProfile, arn),
        );
    }
}

fn profile_association(signal: &mut Signal, request: Option<&str>, response: Option<&str>) {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Req<'a> {
        #[serde(
            rename = "AssociateIamInstanceProfileRequest",
            alias = "ReplaceIamInstanceProfileAssociationRequest",
            borrow
        )]
        inner: AssocRequest<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct AssocRequest<'a> {
        #[serde(rename = "InstanceId", borrow)]
        instance_id: LenientStr<'a>,
        #[serde(rename = "IamInstanceProfile", borrow)]
        profile: ProfileRef<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Resp<'a> {
        #[serde(
            rename = "AssociateIamInstanceProfileResponse",
            alias = "ReplaceIamInstanceProfileAssociationResponse",
            borrow
        )]
        inner: AssocResponse<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct AssocResponse<'a> {
        #[serde(rename = "iamInstanceProfileAssociation", borrow)]
        association: Association<'a>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Association<'a> {
        #[serde(rename = "instanceId", borrow)]
        instance_id: LenientStr<'a>,
        #[serde(rename = "iamInstanceProfile", borrow)]
        profile: ProfileRef<'a>,
    }
    if signal.fields.error_code.is_some() {
        return;
    }
    let req: Req = parse(request);
    let resp: Resp = parse(response);
    let instance = resp
        .inner
        .association
        .instance_id
        .owned()
        .or(req.inner.instance_id.owned());
    let profile = resp
        .inner
        .association
        .profile
        .arn
        .owned()
        .or(req.inner.profile.arn.owned());
    if let Some(id) = instance {
        signal.instances.push(InstanceInfo {
            instance_id: id,
            instance_profile: profile,
            ..InstanceInfo::default()
        });
    }
}

fn auto_scaling_change(signal: &mut Signal, request: Option<&str>) {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Req<'a> {
        #[serde(rename = "autoScalingGroupName", borrow)]
        name: LenientStr<'a>,
        #[serde(rename = "desiredCapacity")]
        desired: LenientF64,
        #[serde(rename = "maxSize")]
        max_size: LenientF64,
        #[serde(rename = "launchTemplate", borrow)]
        launch_template: LaunchTemplateRef<'a>,
    }
    let req: Req = parse(request);
    signal.fields.auto_scaling_group_name = req.name.owned();
    signal.fields.desired_capacity = req.desired.as_u32();
    signal.fields.max_size = req.max_size.as_u32();
    if let Some(name) = req.name.get() {
        let id = EntityId::scoped(
            EntityKind::AutoScalingGroup,
            signal.account.as_deref(),
            signal.region.as_deref(),
            name,
        );
        push_unique(&mut signal.resources, id);
    }
    if let Some(lt) = req.launch_template.id.owned() {
        push_unique(
            &mut signal.resources,
            EntityId::new(EntityKind::LaunchTemplate, lt),
        );
    }
}

fn push_unique(v: &mut Vec<EntityId>, e: EntityId) {
    if !v.contains(&e) {
        v.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names() {
        assert_eq!(
            session_name(
                Some("arn:aws:sts::111122223333:assumed-role/web-role/i-0abc1234def567890"),
                None
            )
            .as_deref(),
            Some("i-0abc1234def567890")
        );
        assert_eq!(
            session_name(None, Some("AROAEXAMPLE:i-0abc1234def567890")).as_deref(),
            Some("i-0abc1234def567890")
        );
        assert_eq!(
            session_name(Some("arn:aws:iam::1:user/alice"), Some("AIDA")),
            None
        );
    }
}
