//! The named signal fields rules select on, and how to read them from a [`Signal`].
//!
//! Rules never see raw JSON paths: every name here is a normalized field that the decoders
//! fill for every input family (STYLE: "Rules use normalized signal fields"). Unknown names
//! are rejected when a rule loads, with the list of known ones.

use crate::signal::Signal;

use super::compile::Glob;

/// A field's value on one signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Absent,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    /// Several values: a condition holds when it holds for any of them.
    List(Vec<&'a str>),
}

/// Settings fields depend on.
pub struct FieldContext<'a> {
    pub high_powered: &'a [Glob],
}

impl FieldContext<'_> {
    /// Whether `t` is a high-powered instance type: one of the list's patterns matches it,
    /// or the type without its service prefix (`ml.p3.2xlarge` is a SageMaker p3.2xlarge).
    /// What the `high_powered` operator and the `launched_high_powered_*` fields both mean.
    pub fn is_high_powered(&self, t: &str) -> bool {
        let bare = t
            .split_once('.')
            .filter(|(_, r)| r.contains('.'))
            .map(|(_, r)| r);
        self.high_powered
            .iter()
            .any(|g| g.matches(t) || bare.is_some_and(|b| g.matches(b)))
    }
}

macro_rules! fields {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// A named field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Field { $($variant,)* }

        impl Field {
            /// Every field with its name and meaning (for errors and the rule reference).
            pub const ALL: &'static [(Field, &'static str, &'static str)] = &[
                $((Field::$variant, $name, $doc),)*
            ];
        }
    };
}

fields! {
    Source => "source": "guardduty, securityhub or cloudtrail",
    Kind => "kind": "eventSource:eventName for CloudTrail, the finding type for findings",
    Severity => "severity": "0-10 on GuardDuty's scale (0 for API calls)",
    Account => "account": "the affected account",
    Region => "region": "the region",
    EventSource => "event_source": "CloudTrail eventSource",
    EventName => "event_name": "CloudTrail eventName",
    ErrorCode => "error_code": "CloudTrail errorCode (absent when the call succeeded)",
    SourceIp => "source_ip": "CloudTrail sourceIPAddress",
    UserAgent => "user_agent": "CloudTrail userAgent",
    RequestedInstanceType => "requested_instance_type": "requestParameters.instanceType",
    RequestedCount => "requested_count": "largest maxCount asked for",
    RequestedVcpus => "requested_vcpus": "requested_count x vCPUs of the requested type",
    LaunchedCount => "launched_count": "units a launch bought: instances a RunInstances response lists, a fleet's or group's capacity, tasks, a job's instances",
    LaunchedVcpus => "launched_vcpus": "vCPUs a launch bought (sum over its instances, or count x vCPUs of its type; Fargate cpu/1024)",
    LaunchedHighPoweredCount => "launched_high_powered_count": "launched instances of a high-powered type",
    LaunchedHighPoweredVcpus => "launched_high_powered_vcpus": "vCPUs of launched high-powered instances",
    LaunchKind => "launch_kind": "what a launch bought: instance, spot_request, fleet, auto_scaling_group, task, training_job, function... (correlation-rules/launches/)",
    LaunchedGpus => "launched_gpus": "GPUs a launch bought (count x GPUs of its type)",
    LaunchedAccelerators => "launched_accelerators": "other accelerators a launch bought (Inferentia, Trainium, Gaudi, FPGAs)",
    LaunchedMemoryMib => "launched_memory_mib": "memory a launch bought, MiB",
    LaunchedResourceIds => "launched_resource_ids": "ids a launch returned: instance, spot request and fleet ids, job ARNs (list)",
    InstanceTypes => "instance_types": "types of the instances the signal names, the type a call asked for and a launch's types (list)",
    InstanceIds => "instance_ids": "ids of the instances the signal names (list)",
    AutoScalingGroupName => "auto_scaling_group_name": "Auto Scaling group of an Auto Scaling API call",
    DesiredCapacity => "desired_capacity": "desiredCapacity of an Auto Scaling API call",
    MaxSize => "max_size": "maxSize of an Auto Scaling API call",
    FindingType => "finding_type": "GuardDuty finding type",
    FindingId => "finding_id": "finding id",
    Title => "title": "finding title",
    ResourceType => "resource_type": "finding resource type",
    ActionType => "action_type": "GuardDuty service.action.actionType",
    Api => "api": "GuardDuty awsApiCallAction.api",
    Count => "count": "GuardDuty service.count",
    Archived => "archived": "whether the finding is archived",
    ProductArn => "product_arn": "ASFF ProductArn",
    GeneratorId => "generator_id": "ASFF GeneratorId",
    Types => "types": "ASFF Types (list)",
    RecordState => "record_state": "ASFF RecordState",
    Domains => "domains": "domains the signal names (list)",
    Ips => "ips": "remote IPs the signal names (list)",
    ActorArn => "actor.arn": "ARN of the acting principal",
    ActorType => "actor.type": "IAMUser, AssumedRole, Root, AWSService...",
    ActorPrincipalId => "actor.principal_id": "principal id (AROA...:session, AIDA...)",
    ActorUserName => "actor.user_name": "userName",
    ActorAccessKey => "actor.access_key_id": "access key used",
    ActorRoleArn => "actor.role_arn": "IAM role behind a role session",
    ActorRoleName => "actor.role_name": "name of that role",
    ActorSessionName => "actor.session_name": "role session name",
    ActorInstanceId => "actor.instance_id": "instance whose role credentials were used",
    ActorInvokedBy => "actor.invoked_by": "AWS service that called on the principal's behalf",
    ActorIsService => "actor.is_service": "true when an AWS service acted (Auto Scaling, EKS...)",
}

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(f, _, _)| *f)
    }

    pub fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// Reads the field from a signal.
    pub fn get<'a>(self, s: &'a Signal, ctx: &FieldContext<'_>) -> Value<'a> {
        let f = &s.fields;
        let text =
            |v: &'a Option<crate::signal::Str>| v.as_deref().map_or(Value::Absent, Value::Text);
        let num = |v: Option<f64>| v.map_or(Value::Absent, Value::Number);
        let actor = s.actor.as_ref();
        let actor_text = |get: fn(&'a crate::signal::Actor) -> &'a Option<crate::signal::Str>| {
            actor
                .and_then(|a| get(a).as_deref())
                .map_or(Value::Absent, Value::Text)
        };
        let high_powered = |t: &str| ctx.is_high_powered(t);
        let launch = f.launch.as_deref();
        // A launch that started no instance the record lists (a spot request, a job): all its
        // units are of its type (the largest, when several may be used).
        let unlisted = launch.filter(|_| !s.instances.iter().any(|i| i.launched));
        let launch_high_powered =
            unlisted.filter(|l| l.instance_types.iter().any(|t| high_powered(t)));
        let launch_num = |get: fn(&crate::launch::Launch) -> Option<f64>| {
            launch.and_then(get).map_or(Value::Absent, Value::Number)
        };
        match self {
            Field::Source => Value::Text(s.source.as_str()),
            Field::Kind => Value::Text(&s.kind),
            Field::Severity => Value::Number(s.severity),
            Field::Account => text(&s.account),
            Field::Region => text(&s.region),
            Field::EventSource => text(&f.event_source),
            Field::EventName => text(&f.event_name),
            Field::ErrorCode => text(&f.error_code),
            Field::SourceIp => text(&f.source_ip),
            Field::UserAgent => text(&f.user_agent),
            Field::RequestedInstanceType => text(&f.requested_instance_type),
            Field::RequestedCount => num(f.requested_count.map(f64::from)),
            Field::RequestedVcpus => num(f.requested_vcpus.map(f64::from)),
            Field::LaunchedCount => num(f.launched_count.map(f64::from)),
            Field::LaunchedVcpus => num(f.launched_vcpus.map(f64::from)),
            Field::LaunchedHighPoweredCount => {
                let launched = s.instances.iter().filter(|i| i.launched);
                if f.launched_count.is_none() {
                    return Value::Absent;
                }
                if let Some(l) = unlisted {
                    return Value::Number(if launch_high_powered.is_some() {
                        f64::from(l.count)
                    } else {
                        0.0
                    });
                }
                Value::Number(
                    launched
                        .filter(|i| i.instance_type.as_deref().is_some_and(high_powered))
                        .count() as f64,
                )
            }
            Field::LaunchedHighPoweredVcpus => {
                if f.launched_count.is_none() {
                    return Value::Absent;
                }
                if unlisted.is_some() {
                    return Value::Number(
                        launch_high_powered
                            .and_then(|l| l.vcpus)
                            .map_or(0.0, f64::from),
                    );
                }
                Value::Number(
                    s.instances
                        .iter()
                        .filter(|i| i.launched)
                        .filter(|i| i.instance_type.as_deref().is_some_and(high_powered))
                        .map(|i| f64::from(i.vcpus.unwrap_or(0)))
                        .sum(),
                )
            }
            Field::InstanceTypes => {
                let v: Vec<&str> = s
                    .instances
                    .iter()
                    .filter_map(|i| i.instance_type.as_deref())
                    .chain(f.requested_instance_type.as_deref())
                    .chain(
                        launch
                            .iter()
                            .flat_map(|l| l.instance_types.iter().map(|t| t.as_str())),
                    )
                    .collect();
                if v.is_empty() {
                    Value::Absent
                } else {
                    Value::List(v)
                }
            }
            Field::InstanceIds => {
                let v: Vec<&str> = s.instances.iter().map(|i| i.instance_id.as_str()).collect();
                if v.is_empty() {
                    Value::Absent
                } else {
                    Value::List(v)
                }
            }
            Field::LaunchKind => launch.map_or(Value::Absent, |l| Value::Text(&l.kind)),
            Field::LaunchedGpus => launch_num(|l| l.gpus.map(f64::from)),
            Field::LaunchedAccelerators => launch_num(|l| l.accelerators.map(f64::from)),
            Field::LaunchedMemoryMib => launch_num(|l| l.memory_mib.map(|m| m as f64)),
            Field::LaunchedResourceIds => match launch {
                Some(l) if !l.resource_ids.is_empty() => {
                    Value::List(l.resource_ids.iter().map(|i| i.as_str()).collect())
                }
                _ => Value::Absent,
            },
            Field::AutoScalingGroupName => text(&f.auto_scaling_group_name),
            Field::DesiredCapacity => num(f.desired_capacity.map(f64::from)),
            Field::MaxSize => num(f.max_size.map(f64::from)),
            Field::FindingType => text(&f.finding_type),
            Field::FindingId => text(&f.finding_id),
            Field::Title => text(&f.title),
            Field::ResourceType => text(&f.resource_type),
            Field::ActionType => text(&f.action_type),
            Field::Api => text(&f.api),
            Field::Count => num(f.count.map(|c| c as f64)),
            Field::Archived => f.archived.map_or(Value::Absent, Value::Bool),
            Field::ProductArn => text(&f.product_arn),
            Field::GeneratorId => text(&f.generator_id),
            Field::Types => {
                if f.types.is_empty() {
                    Value::Absent
                } else {
                    Value::List(f.types.iter().map(|t| t.as_str()).collect())
                }
            }
            Field::RecordState => text(&f.record_state),
            Field::Domains | Field::Ips => {
                let want_domain = self == Field::Domains;
                let v: Vec<&str> = s
                    .endpoints
                    .iter()
                    .filter_map(|e| match e {
                        crate::signal::Endpoint::Domain(d) if want_domain => Some(d.as_str()),
                        crate::signal::Endpoint::Ip(i) if !want_domain => Some(i.as_str()),
                        _ => None,
                    })
                    .collect();
                if v.is_empty() {
                    Value::Absent
                } else {
                    Value::List(v)
                }
            }
            Field::ActorArn => actor_text(|a| &a.arn),
            Field::ActorType => actor_text(|a| &a.principal_type),
            Field::ActorPrincipalId => actor_text(|a| &a.principal_id),
            Field::ActorUserName => actor_text(|a| &a.user_name),
            Field::ActorAccessKey => actor_text(|a| &a.access_key_id),
            Field::ActorRoleArn => actor_text(|a| &a.role_arn),
            Field::ActorRoleName => actor
                .and_then(|a| a.role_arn.as_deref())
                .and_then(|r| r.rsplit('/').next())
                .map_or(Value::Absent, Value::Text),
            Field::ActorSessionName => actor_text(|a| &a.session_name),
            Field::ActorInstanceId => actor_text(|a| &a.instance_id),
            Field::ActorInvokedBy => actor_text(|a| &a.invoked_by),
            Field::ActorIsService => Value::Bool(actor.is_some_and(|a| a.is_service())),
        }
    }

    /// Whether the field holds numbers (for `sum` thresholds).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Field::Severity
                | Field::RequestedCount
                | Field::RequestedVcpus
                | Field::LaunchedCount
                | Field::LaunchedVcpus
                | Field::LaunchedHighPoweredCount
                | Field::LaunchedHighPoweredVcpus
                | Field::LaunchedGpus
                | Field::LaunchedAccelerators
                | Field::LaunchedMemoryMib
                | Field::DesiredCapacity
                | Field::MaxSize
                | Field::Count
        )
    }
}
