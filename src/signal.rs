//! The normalized observation every decoder produces, and the typed entity ids it names.
//!
//! A [`Signal`] is one record reduced to what correlation needs: when, where, from which
//! source, what kind, how severe, who acted, which instances it describes, which endpoints it
//! touched, a fixed set of named [`Fields`] that rules select on, and a [`RecordRef`] back to
//! the raw record. Decoders in `normalize/` build signals; the entity graph and the matcher
//! read them and never look at raw JSON.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::time::Millis;

/// The string type of signals: short values (accounts, regions, event names, error codes,
/// access keys) live inline without a heap allocation, which matters at a million records a
/// second.
pub type Str = compact_str::CompactString;

/// Where a signal came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    GuardDuty,
    SecurityHub,
    CloudTrail,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GuardDuty => "guardduty",
            Source::SecurityHub => "securityhub",
            Source::CloudTrail => "cloudtrail",
        }
    }
}

/// The kinds of entity the graph knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Instance,
    AutoScalingGroup,
    LaunchTemplate,
    CloudFormationStack,
    InstanceProfile,
    IamRole,
    Ami,
    Vpc,
    Subnet,
    Principal,
    AccessKey,
    Ip,
    Domain,
    Account,
}

impl EntityKind {
    pub const ALL: [EntityKind; 14] = [
        EntityKind::Instance,
        EntityKind::AutoScalingGroup,
        EntityKind::LaunchTemplate,
        EntityKind::CloudFormationStack,
        EntityKind::InstanceProfile,
        EntityKind::IamRole,
        EntityKind::Ami,
        EntityKind::Vpc,
        EntityKind::Subnet,
        EntityKind::Principal,
        EntityKind::AccessKey,
        EntityKind::Ip,
        EntityKind::Domain,
        EntityKind::Account,
    ];

    /// The snake_case name used in ids, exports and config.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Instance => "instance",
            EntityKind::AutoScalingGroup => "auto_scaling_group",
            EntityKind::LaunchTemplate => "launch_template",
            EntityKind::CloudFormationStack => "cloudformation_stack",
            EntityKind::InstanceProfile => "instance_profile",
            EntityKind::IamRole => "iam_role",
            EntityKind::Ami => "ami",
            EntityKind::Vpc => "vpc",
            EntityKind::Subnet => "subnet",
            EntityKind::Principal => "principal",
            EntityKind::AccessKey => "access_key",
            EntityKind::Ip => "ip",
            EntityKind::Domain => "domain",
            EntityKind::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A typed entity id. Names that are only unique within an account and region (Auto Scaling
/// groups, CloudFormation stacks) carry them: `111122223333/us-east-1/web-asg`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId {
    pub kind: EntityKind,
    pub id: Str,
}

impl EntityId {
    pub fn new(kind: EntityKind, id: impl Into<Str>) -> EntityId {
        EntityId {
            kind,
            id: id.into(),
        }
    }

    /// Builds the id of an account- and region-scoped name.
    pub fn scoped(
        kind: EntityKind,
        account: Option<&str>,
        region: Option<&str>,
        name: &str,
    ) -> EntityId {
        EntityId::new(
            kind,
            compact_str::format_compact!(
                "{}/{}/{}",
                account.unwrap_or("unknown-account"),
                region.unwrap_or("unknown-region"),
                name
            ),
        )
    }

    /// A short label for a person: the name part of scoped ids and ARNs.
    pub fn label(&self) -> &str {
        match self.kind {
            EntityKind::AutoScalingGroup | EntityKind::CloudFormationStack => {
                self.id.splitn(3, '/').nth(2).unwrap_or(&self.id)
            }
            EntityKind::InstanceProfile | EntityKind::IamRole => {
                self.id.rsplit('/').next().unwrap_or(&self.id)
            }
            EntityKind::Principal => match split_assumed_role(&self.id) {
                Some((_, rest)) => rest,
                None => self.id.rsplit(':').next().unwrap_or(&self.id),
            },
            _ => &self.id,
        }
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl Serialize for EntityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads the `kind:id` form [`Serialize`] writes (saved state holds entity ids this way).
impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EntityId, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let (kind, id) = s
            .split_once(':')
            .ok_or_else(|| serde::de::Error::custom(format!("entity id {s:?} is not `kind:id`")))?;
        let kind = EntityKind::parse(kind)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown entity kind {kind:?}")))?;
        Ok(EntityId::new(kind, id))
    }
}

/// What a record says about one EC2 instance: the keys instance groups are made of.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceInfo {
    #[serde(skip_serializing_if = "Str::is_empty")]
    pub instance_id: Str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template_version: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloudformation_stack: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<Str>,
    /// vCPUs from `cpuOptions` (cores × threads per core), where the record has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub public_ips: Vec<Str>,
    /// True when this record launched the instance (a `RunInstances` response item).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub launched: bool,
    /// The instance's own tags (not the `aws:` system tags, which have fields above).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(Str, Str)>,
}

/// How a signal's instances are written (the state is where signals are written): a list of
/// two or more that share a fact (a launch's instances share their group, template, profile,
/// image, network, type and tags, and differ in id and subnet) as `{"shared": facts they all
/// have, "each": [each one's other facts]}`, about a third of the text; one instance, or
/// instances that share nothing, as the plain list, which is also what states written before
/// version 8 hold. Either form reads back as the same list.
pub mod instance_list {
    use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::InstanceInfo;

    #[derive(Serialize)]
    struct SharedRef<'a> {
        shared: &'a InstanceInfo,
        each: &'a [InstanceInfo],
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shared {
        shared: InstanceInfo,
        each: Vec<InstanceInfo>,
    }

    /// Applies `$m!(field)` to every field of [`InstanceInfo`]; the pattern names them all, so
    /// a field added to the struct and not here does not compile.
    macro_rules! every_field {
        ($i:expr, $m:ident) => {{
            let InstanceInfo {
                instance_id: _,
                auto_scaling_group: _,
                launch_template: _,
                launch_template_version: _,
                cloudformation_stack: _,
                instance_profile: _,
                ami: _,
                vpc: _,
                subnet: _,
                instance_type: _,
                vcpus: _,
                public_ips: _,
                launched: _,
                tags: _,
            } = $i;
            $m!(instance_id);
            $m!(auto_scaling_group);
            $m!(launch_template);
            $m!(launch_template_version);
            $m!(cloudformation_stack);
            $m!(instance_profile);
            $m!(ami);
            $m!(vpc);
            $m!(subnet);
            $m!(instance_type);
            $m!(vcpus);
            $m!(public_ips);
            $m!(launched);
            $m!(tags);
        }};
    }

    /// The facts every instance of `list` has (a fact they do not all share, or share as
    /// absent, is left out), and each instance without them.
    fn split(list: &[InstanceInfo]) -> (InstanceInfo, Vec<InstanceInfo>) {
        let mut shared = InstanceInfo::default();
        let mut each = list.to_vec();
        macro_rules! share {
            ($f:ident) => {
                if list.iter().all(|i| i.$f == list[0].$f) {
                    shared.$f = std::mem::take(&mut each[0].$f);
                    for e in &mut each[1..] {
                        e.$f = Default::default();
                    }
                }
            };
        }
        every_field!(&list[0], share);
        (shared, each)
    }

    fn is_default<T: Default + PartialEq>(v: &T) -> bool {
        *v == T::default()
    }

    /// An instance of the shared form: its own facts, and every fact `shared` has.
    fn merge(shared: &InstanceInfo, mut own: InstanceInfo) -> InstanceInfo {
        macro_rules! take {
            ($f:ident) => {
                if !is_default(&shared.$f) {
                    own.$f = shared.$f.clone();
                }
            };
        }
        every_field!(shared, take);
        own
    }

    pub fn serialize<S: Serializer>(list: &[InstanceInfo], s: S) -> Result<S::Ok, S::Error> {
        if list.len() >= 2 {
            let (shared, each) = split(list);
            if shared != InstanceInfo::default() {
                return SharedRef {
                    shared: &shared,
                    each: &each,
                }
                .serialize(s);
            }
        }
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InstanceInfo>, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Vec<InstanceInfo>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of instances, or the instances' shared and own facts")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let Shared { shared, each } = Shared::deserialize(MapAccessDeserializer::new(map))?;
                Ok(each.into_iter().map(|own| merge(&shared, own)).collect())
            }
        }
        d.deserialize_any(Either)
    }
}

/// The principal that made a call, or whose credentials a finding is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Actor {
    /// ARN of the principal as CloudTrail names it (`arn:aws:sts::…:assumed-role/ROLE/SESSION`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<Str>,
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<Str>,
    /// The IAM role behind an assumed-role session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<Str>,
    /// Set when the session name is an EC2 instance id: the credentials are that instance's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<Str>,
    /// The AWS service that made the call on the principal's behalf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<Str>,
}

impl Actor {
    /// The principal entity. Keyed by the principal id (`AROA…:SESSION`, `AIDA…`), which
    /// CloudTrail and GuardDuty both carry, so that a finding about a role session and the
    /// calls that session made meet on one node; else the ARN, else the invoking service.
    pub fn principal(&self) -> Option<EntityId> {
        self.principal_key()
            .map(|s| EntityId::new(EntityKind::Principal, s))
    }

    /// The id of [`Actor::principal`], without building the entity id.
    pub fn principal_key(&self) -> Option<&str> {
        self.principal_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.arn.as_deref().filter(|s| !s.is_empty()))
            .or(self.invoked_by.as_deref().filter(|s| !s.is_empty()))
    }

    /// Whether an AWS service acted (Auto Scaling, EKS node groups…), not a person or workload.
    pub fn is_service(&self) -> bool {
        self.invoked_by.is_some()
            || self.principal_type.as_deref() == Some("AWSService")
            || self
                .role_arn
                .as_deref()
                .is_some_and(|r| r.contains(":role/aws-service-role/"))
    }
}

/// A remote network endpoint a signal names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Endpoint {
    Ip(Str),
    Domain(Str),
}

/// The named fields rules select on. Every decoder fills what its record has; the names are
/// stable and documented in `correlation-rules/README.md`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fields {
    // CloudTrail
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Str>,
    /// `requestParameters.instanceType` (string or `{"value": …}` in the record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_instance_type: Option<Str>,
    /// Largest `maxCount` asked for in `requestParameters.instancesSet.items[]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_count: Option<u32>,
    /// `requested_count` × the vCPUs of `requested_instance_type` (also for failed calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_vcpus: Option<u32>,
    /// Instances a `RunInstances` response lists (every item, not only the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launched_count: Option<u32>,
    /// Sum of vCPUs of the launched instances (`cpuOptions`, else the instance type table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launched_vcpus: Option<u32>,
    /// Auto Scaling group named in an Auto Scaling API call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_name: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
    /// What a compute-buying call bought (see [`crate::launch`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<Box<crate::launch::Launch>>,
    // Findings
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_type: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_type: Option<Str>,
    /// `service.action.awsApiCallAction.api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Str>,
    /// `service.count`: how often GuardDuty saw the activity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_name: Option<Str>,
    /// Security Hub product that produced an ASFF finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_arn: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_id: Option<Str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_state: Option<Str>,
}

/// How to find the raw record again, and the key that makes one signal of many copies.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum RecordRef {
    /// A GuardDuty finding (direct or through Security Hub): its ARN.
    FindingArn(Str),
    /// Another product's ASFF finding: `ProductArn` and `Id`.
    AsffFinding { product_arn: Str, id: Str },
    /// A CloudTrail record: its `eventID`.
    EventId(Str),
    /// A record without an id: a stable hash of its bytes (hex).
    Hash(Str),
    /// A weak signal of a rule, about another signal: `rule:<id>/<that signal's key>`.
    RuleMatch(Str),
}

impl RecordRef {
    /// The text form used in exports and finding signals.
    pub fn key(&self) -> String {
        match self {
            RecordRef::FindingArn(s) | RecordRef::EventId(s) => s.to_string(),
            RecordRef::AsffFinding { product_arn, id } => format!("{product_arn}/{id}"),
            RecordRef::Hash(h) => format!("fnv:{h}"),
            RecordRef::RuleMatch(s) => s.to_string(),
        }
    }
}

/// One normalized observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Event time: CloudTrail `eventTime`; for findings, when the activity was last seen.
    pub time: Millis,
    /// The affected account (CloudTrail `recipientAccountId`, finding account).
    pub account: Option<Str>,
    pub region: Option<Str>,
    pub source: Source,
    /// `eventSource:eventName` for CloudTrail, the finding type for findings.
    pub kind: Str,
    /// 0–10, GuardDuty's scale; 0 for API calls.
    pub severity: f64,
    pub reference: RecordRef,
    /// For findings: when this version of the finding was written (newer replaces older).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
    /// Boxed: most findings have none, and a signal with it inline outgrows the allocator's
    /// 896-byte class (see the test `a_kept_signal_fits_the_896_byte_class`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Box<Actor>>,
    /// In a state document, two or more are written as what they share and what is each
    /// one's own (see [`instance_list`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "instance_list")]
    pub instances: Vec<InstanceInfo>,
    /// Other entities the record names (an Auto Scaling group resized, a launch template
    /// created, resources of an ASFF finding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<EntityId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    pub fields: Fields,
}

/// Which of two copies of one record is the later version (compare with `>`): the later
/// `updatedAt` (a finding's), then GuardDuty's own over Security Hub's copy, then the later
/// activity. One order for the graph, the matcher and the carried windows.
pub type Version = (Option<Millis>, std::cmp::Reverse<Source>, Millis);

/// The [`Version`] of a copy with these facts.
pub fn version(updated_at: Option<Millis>, source: Source, time: Millis) -> Version {
    (updated_at, std::cmp::Reverse(source), time)
}

/// The key of the record a derived signal was made of ([`Signal::derived`]: `rule:<id>/KEY`,
/// `sigma:<id>/KEY`, however many times over); any other key as it is.
pub fn underlying_key(mut key: &str) -> &str {
    while let Some((family, rest)) = key.split_once('/')
        && (family.starts_with("rule:") || family.starts_with("sigma:"))
    {
        key = rest;
    }
    key
}

impl Signal {
    /// A signal derived from this one by a rule (`rule:<id>`, a weak signal) or a Sigma rule
    /// (`sigma:<id>`): the same actor, instances, account and region, so it groups as this
    /// one does, with its own kind, reference, severity and title.
    pub fn derived(&self, family: &str, id: &str, severity: f64, title: Str) -> Signal {
        let mut d = self.clone();
        d.kind = compact_str::format_compact!("{family}:{id}");
        d.reference = RecordRef::RuleMatch(compact_str::format_compact!(
            "{family}:{id}/{}",
            self.reference.key()
        ));
        d.severity = severity;
        d.updated_at = None;
        d.fields.title = Some(title);
        d
    }

    /// Whether the signal says the instances it describes have ended: a successful
    /// `TerminateInstances`, or EC2's `BidEvictedEvent` (it interrupted Spot instances).
    pub fn ends_its_instances(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "ec2.amazonaws.com:TerminateInstances" | "ec2.amazonaws.com:BidEvictedEvent"
        ) && self.fields.error_code.is_none()
    }

    /// This copy's [`Version`].
    pub fn version(&self) -> Version {
        version(self.updated_at, self.source, self.time)
    }

    /// When the activity began: a finding's `eventFirstSeen` (a finding is evidence over its
    /// whole span, whichever version of it was read), otherwise the event time. The matcher
    /// takes signals in this order, so a finding counts from the start of its span whether a
    /// run read its first version or its last.
    pub fn since(&self) -> Millis {
        self.fields
            .first_seen
            .map_or(self.time, |f| f.min(self.time))
    }

    /// Every entity the signal names, without repeats.
    pub fn entities(&self) -> Vec<EntityId> {
        let mut out = Vec::new();
        let mut push = |e: EntityId| {
            if !out.contains(&e) {
                out.push(e);
            }
        };
        if let Some(a) = &self.account {
            push(EntityId::new(EntityKind::Account, a.clone()));
        }
        if let Some(actor) = &self.actor {
            if let Some(p) = actor.principal() {
                push(p);
            }
            if let Some(k) = &actor.access_key_id {
                push(EntityId::new(EntityKind::AccessKey, k.clone()));
            }
            if let Some(r) = &actor.role_arn {
                push(EntityId::new(EntityKind::IamRole, r.clone()));
            }
            if let Some(i) = &actor.instance_id {
                push(EntityId::new(EntityKind::Instance, i.clone()));
            }
        }
        for inst in &self.instances {
            push(EntityId::new(
                EntityKind::Instance,
                inst.instance_id.clone(),
            ));
        }
        for r in &self.resources {
            push(r.clone());
        }
        if let Some(ip) = &self.fields.source_ip
            && looks_like_ip(ip)
        {
            push(EntityId::new(EntityKind::Ip, ip.clone()));
        }
        for e in &self.endpoints {
            match e {
                Endpoint::Ip(ip) => push(EntityId::new(EntityKind::Ip, ip.clone())),
                Endpoint::Domain(d) => push(EntityId::new(EntityKind::Domain, d.clone())),
            }
        }
        out
    }

    /// Whether this is a finding (strong signal) rather than an API call.
    pub fn is_finding(&self) -> bool {
        self.fields.finding_type.is_some() || self.source != Source::CloudTrail
    }
}

/// CloudTrail's `sourceIPAddress` also holds service names (`autoscaling.amazonaws.com`,
/// `AWS Internal`); only address-looking values become IP entities. Anonymised logs carry
/// strings such as `255.090.254.5`, which are kept as given.
pub fn looks_like_ip(s: &str) -> bool {
    !s.is_empty()
        && (s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            || (s.contains(':') && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')))
}

/// An instance id as EC2 writes them: `i-` and 8 or 17 hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Splits a principal ARN at its first `:assumed-role/`, as `split_once(":assumed-role/")`
/// would, without building a substring searcher per call (every CloudTrail record's ARN
/// passes here).
pub fn split_assumed_role(arn: &str) -> Option<(&str, &str)> {
    const MARK: &[u8] = b":assumed-role/";
    let bytes = arn.as_bytes();
    // The mark comes early in an ARN: a plain scan beats a searcher's setup.
    let at = (0..bytes.len()).find(|&at| bytes[at] == b':' && bytes[at..].starts_with(MARK))?;
    // Both ends are next to ASCII bytes: char boundaries.
    Some((&arn[..at], &arn[at + MARK.len()..]))
}

/// `a`, `sep` and `b` as one [`Str`], without formatting machinery (once per record).
pub fn joined(a: &str, sep: char, b: &str) -> Str {
    let mut s = Str::with_capacity(a.len() + sep.len_utf8() + b.len());
    s.push_str(a);
    s.push(sep);
    s.push_str(b);
    s
}

/// The parts of a graph statement ([`crate::pipeline::graph_statement`]) that say where a
/// record was made and what it names besides instances, hashed into `h`. Shared with the
/// reading threads, which compute the same hash from a record before building its signal.
pub fn hash_statement_place(
    h: &mut impl std::hash::Hasher,
    account: Option<&str>,
    region: Option<&str>,
    resources: &[EntityId],
) {
    use std::hash::Hash;
    (account, region, resources).hash(h);
}

/// The actor's part of a graph statement: principal id, ARN, role ARN, instance and
/// account, hashed into `h` (see [`hash_statement_place`]).
pub fn hash_statement_actor(h: &mut impl std::hash::Hasher, parts: [Option<&str>; 5]) {
    use std::hash::Hash;
    parts.hash(h);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_derived_signal_s_key_leads_to_the_record_it_was_made_of() {
        let arn = "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f";
        assert_eq!(super::underlying_key(arn), arn);
        assert_eq!(super::underlying_key(&format!("rule:a/{arn}")), arn);
        assert_eq!(super::underlying_key(&format!("rule:b/rule:a/{arn}")), arn);
        assert_eq!(super::underlying_key("sigma:x/0a1b-evt"), "0a1b-evt");
        assert_eq!(super::underlying_key("fnv:12/34"), "fnv:12/34");
    }

    use super::*;
    use proptest::prelude::*;

    fn written(list: &[InstanceInfo]) -> String {
        let mut out = Vec::new();
        instance_list::serialize(list, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn read(text: &str) -> Result<Vec<InstanceInfo>, serde_json::Error> {
        instance_list::deserialize(&mut serde_json::Deserializer::from_str(text))
    }

    fn a_fact() -> impl Strategy<Value = Option<Str>> {
        prop::sample::select(vec![None, Some(Str::from("a")), Some(Str::from("b"))])
    }

    fn an_instance() -> impl Strategy<Value = InstanceInfo> {
        (
            (a_fact(), a_fact(), a_fact(), a_fact(), a_fact(), a_fact()),
            (a_fact(), a_fact(), a_fact(), a_fact()),
            (
                prop::sample::select(vec![None, Some(2u32), Some(4)]),
                prop::sample::select(vec![vec![], vec![Str::from("203.0.113.5")]]),
                any::<bool>(),
                prop::sample::select(vec![vec![], vec![(Str::from("Name"), Str::from("web"))]]),
            ),
        )
            .prop_map(
                |(
                    (id, asg, lt, ltv, stack, profile),
                    (ami, vpc, subnet, ty),
                    (vcpus, public_ips, launched, tags),
                )| {
                    InstanceInfo {
                        instance_id: id.unwrap_or_default(),
                        auto_scaling_group: asg,
                        launch_template: lt,
                        launch_template_version: ltv,
                        cloudformation_stack: stack,
                        instance_profile: profile,
                        ami,
                        vpc,
                        subnet,
                        instance_type: ty,
                        vcpus,
                        public_ips,
                        launched,
                        tags,
                    }
                },
            )
    }

    proptest! {
        /// Whatever the instances share or not, both forms read back as the list written, and
        /// a list of two or more that shares a fact is written in the shared form.
        #[test]
        fn an_instance_list_reads_back_as_it_was_written(list in prop::collection::vec(an_instance(), 0..6)) {
            let text = written(&list);
            prop_assert_eq!(read(&text).unwrap(), list.clone(), "{}", text);
            let plain = serde_json::to_string(&list).unwrap();
            prop_assert_eq!(read(&plain).unwrap(), list.clone());
            let shares = list.len() >= 2
                && (list.iter().all(|i| i.ami == list[0].ami && i.ami.is_some())
                    || list.iter().all(|i| i.launched && i.launched == list[0].launched));
            if shares {
                prop_assert!(text.starts_with("{\"shared\":"), "{}", text);
            }
            if list.len() < 2 {
                prop_assert_eq!(text, plain);
            }
        }
    }

    /// Signals are kept as `Arc<Signal>`, allocated from mimalloc's size classes (…, 768,
    /// 896, 1024, 1280 bytes): with its two counters a signal of up to 880 bytes takes 896,
    /// where one of 1,016 (its actor inline) took 1,280. The actor, present on calls and on
    /// few findings, is boxed for that; a field that makes the signal outgrow the class costs
    /// every kept signal 128 bytes or more, so it should be boxed too.
    #[test]
    fn a_kept_signal_fits_the_896_byte_class() {
        let arc = std::mem::size_of::<Signal>() + 2 * std::mem::size_of::<usize>();
        assert!(arc <= 896, "Arc<Signal> is {arc} bytes");
    }

    #[test]
    fn a_launch_s_instances_are_written_once_with_what_each_has_of_its_own() {
        let one = |id: &str, subnet: &str| InstanceInfo {
            instance_id: id.into(),
            auto_scaling_group: Some("ingest-asg-344".into()),
            launch_template: Some("lt-012979a84f9a394b7".into()),
            launch_template_version: Some("3".into()),
            instance_profile: Some(
                "arn:aws:iam::111122223333:instance-profile/ingest-profile-344".into(),
            ),
            ami: Some("ami-0a47e942da60ce3e0".into()),
            vpc: Some("vpc-0f1cc02a157d5c32e".into()),
            subnet: Some(subnet.into()),
            instance_type: Some("r6g.large".into()),
            vcpus: Some(2),
            launched: true,
            tags: vec![("Name".into(), "ingest".into())],
            ..InstanceInfo::default()
        };
        let list = vec![
            one("i-01e05d02a4964bc77", "subnet-05a0a9eefd9fc6650"),
            one("i-00d5039e7d3f4b2a6", "subnet-0922c278bd16dd6af"),
            one("i-05feb3ca053243361", "subnet-05a0a9eefd9fc6650"),
            one("i-06a8cc8c24cb5ff49", "subnet-082a8f3754acb72bd"),
        ];
        let text = written(&list);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["shared"]["ami"], "ami-0a47e942da60ce3e0");
        assert_eq!(v["shared"]["launched"], true);
        assert_eq!(
            v["each"][1],
            serde_json::json!({"instance_id": "i-00d5039e7d3f4b2a6", "subnet": "subnet-0922c278bd16dd6af"})
        );
        let plain = serde_json::to_string(&list).unwrap();
        assert!(
            text.len() * 5 < plain.len() * 2,
            "{} of {}",
            text.len(),
            plain.len()
        );
        assert_eq!(read(&text).unwrap(), list);
        // Neither form takes another member, nor the shared form without its parts.
        for bad in [
            r#"{"shared":{},"each":[],"more":1}"#,
            r#"{"each":[]}"#,
            r#"{"shared":{}}"#,
            r#""i-1""#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assumed_role_arns_split_as_split_once_does() {
        for arn in [
            "arn:aws:sts::111122223333:assumed-role/web-role/i-0abc",
            "arn:aws:sts::111122223333:assumed-role/",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:sts::1:assumed-role:assumed-role/x/y",
            ":assumed-role/a",
            "assumed-role/a",
            "a::assumed-role/b:assumed-role/c",
            "",
            "arn:aws:sts::1:assumed-role",
        ] {
            assert_eq!(
                split_assumed_role(arn),
                arn.split_once(":assumed-role/"),
                "{arn:?}"
            );
        }
    }

    #[test]
    fn joined_is_the_parts_in_order() {
        for (a, sep, b) in [
            ("ec2.amazonaws.com", ':', "RunInstances"),
            ("", ':', ""),
            ("a-very-long-service-name.amazonaws.com", '/', "é"),
        ] {
            assert_eq!(joined(a, sep, b), format!("{a}{sep}{b}"));
        }
    }

    #[test]
    fn instance_ids() {
        for (s, want) in [
            ("i-0abc1234def567890", true),
            ("i-b188560f", true),
            ("i-99999999", true),
            ("i-xyz", false),
            ("AutoScaling", false),
            ("gitlab-runner-1234", false),
        ] {
            assert_eq!(is_instance_id(s), want, "{s}");
        }
    }

    #[test]
    fn labels() {
        let asg = EntityId::scoped(
            EntityKind::AutoScalingGroup,
            Some("111122223333"),
            Some("us-east-1"),
            "web/asg",
        );
        assert_eq!(asg.label(), "web/asg");
        let p = EntityId::new(
            EntityKind::Principal,
            "arn:aws:sts::111122223333:assumed-role/web-role/i-0abc1234def567890",
        );
        assert_eq!(p.label(), "web-role/i-0abc1234def567890");
        assert_eq!(p.to_string(), format!("principal:{}", p.id));
    }
}
