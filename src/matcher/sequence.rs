//! What the matcher emits: sequences of signals of one rule and one group.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::graph::{EntityGraph, GroupId};
use crate::rules::compile::{SelectContext, api_name};
use crate::rules::{Emit, Rule};
use crate::signal::{Actor, Endpoint, RecordRef, Signal, Source, Str};
use crate::time::Millis;

/// What a sequence is about: an instance group, or the principal, account or access key a
/// rule groups by. An instance that no record describes stands for itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Group(GroupId),
    Instance(Str),
    Principal(Str),
    Account(Str),
    AccessKey(Str),
    /// A value of the field a rule groups by (`group_by: actor.role_arn`).
    Field(&'static str, Str),
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupKey::Group(g) => write!(f, "{g}"),
            GroupKey::Instance(i) => write!(f, "instance/{i}"),
            GroupKey::Principal(p) => write!(f, "principal/{p}"),
            GroupKey::Account(a) => write!(f, "account/{a}"),
            GroupKey::AccessKey(k) => write!(f, "access_key/{k}"),
            GroupKey::Field(name, v) => write!(f, "{name}/{v}"),
        }
    }
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A signal as a sequence keeps it: what the finding and the summary show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeqSignal {
    pub reference: RecordRef,
    pub time: Millis,
    pub source: Source,
    pub kind: Str,
    pub severity: f64,
    /// The rule stage it matched.
    pub stage: String,
    pub weak: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Box<Actor>>,
    /// Instances the signal is about (not launched by it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Str>,
    /// Instances the signal launched, with their types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launched: Vec<(Str, Option<Str>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// `service:Api` of a CloudTrail call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    pub high_risk_api: bool,
    /// The domains of a finding of a cryptomining type (the `cryptomining_finding_types`
    /// list), and any domain on the `mining_pool_domains` list: the CRYPTOMINING_DOMAIN
    /// indicators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mining_domains: Vec<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<Str>,
    pub count: u64,
    pub first_seen: Millis,
    pub last_seen: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
    /// Why a baseline condition held (first seen, launch-rate outlier), for a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the call bought, when it is a launch (any compute-buying API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Box<crate::launch::Launch>>,
    /// ATT&CK tactics and techniques of a Sigma rule's match (from its `attack.*` tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

impl SeqSignal {
    /// When its activity began: a finding's first sighting, a call's time.
    pub fn began(&self) -> Millis {
        self.first_seen.min(self.time)
    }

    /// The order a finding tells its signals in: by when their activity began (an attack's
    /// story opens with what happened first, whichever version of a finding was read), then
    /// by time, then by record.
    pub fn story_order(&self) -> (Millis, Millis, String) {
        (self.began(), self.time, self.reference.key())
    }

    pub fn new(s: &Signal, stage: &str, weak: bool, ctx: &SelectContext<'_>) -> SeqSignal {
        let api = (s.source == Source::CloudTrail)
            .then(|| api_name(s))
            .flatten();
        let high_risk_api = api
            .as_deref()
            .is_some_and(|a| ctx.high_risk_apis.matches(a));
        let mining_type = ctx
            .cryptomining_finding_types
            .iter()
            .any(|g| g.matches(&s.kind));
        let mining_domains: Vec<Str> = s
            .endpoints
            .iter()
            .filter_map(|e| match e {
                Endpoint::Domain(d) if mining_type || ctx.mining_pool_domains.contains(d) => {
                    Some(d.clone())
                }
                _ => None,
            })
            .collect();
        let mut instances: Vec<Str> = Vec::new();
        if s.source != Source::CloudTrail {
            instances.extend(
                s.instances
                    .iter()
                    .filter(|i| !i.launched)
                    .map(|i| i.instance_id.clone()),
            );
        }
        if let Some(i) = s.actor.as_ref().and_then(|a| a.instance_id.clone())
            && !instances.contains(&i)
        {
            instances.push(i);
        }
        let sigma = s
            .kind
            .strip_prefix("sigma:")
            .and_then(|id| ctx.sigma.get(id));
        SeqSignal {
            tactics: sigma.map(|r| r.tactics.clone()).unwrap_or_default(),
            techniques: sigma.map(|r| r.techniques.clone()).unwrap_or_default(),
            reference: s.reference.clone(),
            time: s.time,
            source: s.source,
            kind: s.kind.clone(),
            severity: s.severity,
            stage: stage.to_string(),
            weak,
            title: s.fields.title.clone(),
            account: s.account.clone(),
            region: s.region.clone(),
            actor: s.actor.clone(),
            instances,
            launched: s
                .instances
                .iter()
                .filter(|i| i.launched)
                .map(|i| (i.instance_id.clone(), i.instance_type.clone()))
                .collect(),
            endpoints: s.endpoints.clone(),
            api: api.map(|a| a.to_string()),
            high_risk_api,
            mining_domains,
            error_code: s.fields.error_code.clone(),
            count: s.fields.count.unwrap_or(1).max(1),
            first_seen: s.fields.first_seen.unwrap_or(s.time),
            last_seen: s.fields.last_seen.unwrap_or(s.time),
            updated_at: s.updated_at,
            notes: Vec::new(),
            launch: s.fields.launch.clone(),
        }
    }

    /// A GuardDuty finding's ARN, for `RelatedFindings`.
    pub fn guardduty_arn(&self) -> Option<&str> {
        match &self.reference {
            RecordRef::FindingArn(a) if a.contains(":guardduty:") => Some(a),
            _ => None,
        }
    }

    /// A short human description: `CryptoCurrency:EC2/BitcoinTool.B!DNS` or
    /// `ec2:RunInstances (Client.VcpuLimitExceeded)`.
    pub fn describe(&self) -> String {
        match (&self.api, &self.error_code) {
            (Some(api), Some(e)) => format!("{api} ({e})"),
            (Some(api), None) => api.clone(),
            _ => self.kind.to_string(),
        }
    }
}

/// Instances and their regions, one each, sorted by instance: a list, as a `BTreeMap` of
/// some hundred members per sequence took twice the room in its nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Regions(Vec<(Str, Str)>);

impl Regions {
    /// The region of `instance`.
    pub fn get(&self, instance: &str) -> Option<&Str> {
        self.0
            .binary_search_by(|(i, _)| i.as_str().cmp(instance))
            .ok()
            .map(|at| &self.0[at].1)
    }

    /// Adds the regions of `other` for the instances this does not have yet.
    pub fn add_missing(&mut self, other: Regions) {
        self.0.extend(other.0);
        self.settle();
    }

    /// How many instances it has a region for.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the instances `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(i, _)| keep(i));
        self.0.shrink_to_fit();
    }

    /// Sorted by instance, and the first region of each (a stable sort keeps the earlier).
    fn settle(&mut self) {
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        self.0.dedup_by(|later, earlier| later.0 == earlier.0);
        self.0.shrink_to_fit();
    }
}

impl FromIterator<(Str, Str)> for Regions {
    /// Instances and regions in any order: the first region of each instance is kept.
    fn from_iter<T: IntoIterator<Item = (Str, Str)>>(iter: T) -> Regions {
        let mut r = Regions(iter.into_iter().collect());
        r.settle();
        r
    }
}

/// An attack sequence: the signals of one rule and one group, in time order.
#[derive(Clone, Debug, Serialize)]
pub struct Sequence {
    pub rule_id: String,
    pub emit: Emit,
    pub key: GroupKey,
    /// When the sequence opened (its earliest signal then): replays of later runs begin here.
    pub start: Millis,
    /// When the evidence that opened the sequence began: the earliest first sighting of the
    /// signals that opened it (a GuardDuty finding's `eventFirstSeen`, which later versions of
    /// the finding keep). The finding's `Id` and `CreatedAt`; it never moves.
    pub created: Millis,
    /// When the rule's condition first held: the event time of the signal that opened it
    /// (the order in which a scheduled task writes sequences; see [`crate::rollup`]).
    pub opened: Millis,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub signals: Vec<Arc<SeqSignal>>,
    /// Signals that matched, including any beyond what is kept.
    pub total_signals: usize,
    pub account: Option<Str>,
    pub region: Option<Str>,
    /// Member instances of the group: those the signals name first, then the others that ran
    /// while the sequence did (see [`crate::graph::Lifetime`]).
    pub members: Vec<Str>,
    /// The group's other members, that did not run while the sequence did (launched after
    /// its last signal, ended before its first): not listed in its finding, but still of its
    /// group for roll-up (credentials taken from such an instance are the group's).
    #[serde(skip)]
    pub other_members: Vec<Str>,
    /// Instances the sequence's signals launched.
    pub launched: Vec<(Str, Option<Str>)>,
    /// What the graph knows of members and launched instances, for the finding's resources.
    #[serde(skip)]
    pub instance_details: Vec<Arc<crate::signal::InstanceInfo>>,
    /// Regions the graph knows for the instances the sequence names.
    #[serde(skip)]
    pub instance_regions: Regions,
    /// The sequences of other rules this one absorbed, and the finding `Id` it is written
    /// under (see [`crate::rollup`]); None for a sequence that absorbed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup: Option<Box<crate::rollup::RollUp>>,
}

impl Sequence {
    pub fn new(rule: &Rule, key: GroupKey, start: Millis) -> Sequence {
        Sequence {
            rule_id: rule.id.clone(),
            emit: rule.emit,
            key,
            start,
            created: start,
            opened: start,
            first_seen: start,
            last_seen: start,
            signals: Vec::new(),
            total_signals: 0,
            account: None,
            region: None,
            members: Vec::new(),
            other_members: Vec::new(),
            launched: Vec::new(),
            instance_details: Vec::new(),
            instance_regions: Regions::default(),
            rollup: None,
        }
    }

    /// Adds a signal; a copy already present is replaced by a newer version (which extends
    /// the sequence's span as a new signal would), else ignored. Of two weak signals a rule
    /// made of versions of one record (they carry no version of their own), the later is newer.
    pub fn add(&mut self, s: Arc<SeqSignal>, max: usize) {
        if let Some(existing) = self.signals.iter_mut().find(|x| x.reference == s.reference) {
            if (s.updated_at, s.time) > (existing.updated_at, existing.time) {
                self.first_seen = self.first_seen.min(s.first_seen.min(s.time));
                self.last_seen = self.last_seen.max(s.time);
                *existing = s;
            }
            return;
        }
        // A finding's activity began at its first sighting, before the time it was matched
        // at (its last sighting).
        self.first_seen = self.first_seen.min(s.first_seen.min(s.time));
        self.last_seen = self.last_seen.max(s.time);
        self.total_signals += 1;
        if self.signals.len() < max {
            self.signals.push(s);
        }
    }

    /// Orders signals and fills what comes from the graph: account, region, members.
    pub fn finalize(&mut self, graph: &EntityGraph) {
        self.signals.sort_by_cached_key(|a| a.story_order());
        // First mentions in signal order, found through sets: a sequence that goes on for days
        // names thousands of instances, which a scan of the list per name made quadratic.
        let mut involved: Vec<Str> = Vec::new();
        let mut seen: HashSet<&Str> = HashSet::new();
        let mut launched: HashSet<_> = self.launched.iter().cloned().collect();
        for s in &self.signals {
            for i in &s.instances {
                if seen.insert(i) {
                    involved.push(i.clone());
                }
            }
            for l in &s.launched {
                if launched.insert(l.clone()) {
                    self.launched.push(l.clone());
                }
            }
        }
        let first =
            |f: fn(&SeqSignal) -> Option<&Str>| self.signals.iter().find_map(|s| f(s)).cloned();
        match &self.key {
            GroupKey::Group(g) => {
                let members: BTreeSet<Str> = graph.members(g).cloned().unwrap_or_default();
                let mut ordered: Vec<Str> = involved
                    .iter()
                    .filter(|i| members.contains(*i))
                    .cloned()
                    .collect();
                let first_named: HashSet<&Str> = ordered.iter().collect();
                // The other members are those that ran while the sequence did: not one the
                // group launched after its last signal or ended before its first. So a
                // finding lists the same instances however the group scales later, and
                // is not written again for that. From its first signal's time (a finding's
                // latest sighting), not its first sighting, which can lie days back: a run
                // with a state lets go of an instance that ended before the sequence formed
                // (`terminated_retention` after), one run would still know it.
                let from = self
                    .signals
                    .iter()
                    .map(|s| s.time)
                    .min()
                    .unwrap_or(self.first_seen);
                let (rest, others): (Vec<Str>, Vec<Str>) = members
                    .iter()
                    .filter(|m| !first_named.contains(m))
                    .cloned()
                    .partition(|m| graph.instance_lifetime(m).overlaps(from, self.last_seen));
                self.other_members = others;
                ordered.extend(rest);
                self.account = g.account.clone().or_else(|| first(|s| s.account.as_ref()));
                self.region = ordered
                    .iter()
                    .find_map(|m| graph.instance_region(m))
                    .map(Str::from)
                    .or_else(|| first(|s| s.region.as_ref()));
                self.members = ordered;
            }
            GroupKey::Instance(i) => {
                self.members = vec![i.clone()];
                self.account = first(|s| s.account.as_ref());
                self.region = graph
                    .instance_region(i)
                    .map(Str::from)
                    .or_else(|| first(|s| s.region.as_ref()));
            }
            _ => {
                self.members = involved;
                self.account = first(|s| s.account.as_ref());
                self.region = first(|s| s.region.as_ref());
            }
        }
        self.instance_details = self
            .members
            .iter()
            .chain(self.launched.iter().map(|(i, _)| i))
            .filter_map(|i| graph.instance_info_shared(i).cloned())
            .collect();
        let named = self
            .signals
            .iter()
            .flat_map(|s| s.instances.iter().chain(s.launched.iter().map(|(i, _)| i)));
        self.instance_regions = self
            .members
            .iter()
            .chain(named)
            .filter_map(|i| Some((i.clone(), Str::from(graph.instance_region(i)?))))
            .collect();
    }

    /// Non-weak stages that matched, in rule order of first appearance.
    pub fn stages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.signals {
            if !s.weak && !out.contains(&s.stage.as_str()) {
                out.push(&s.stage);
            }
        }
        out
    }

    pub fn weak_count(&self) -> usize {
        self.signals.iter().filter(|s| s.weak).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(pairs: &[(&str, &str)]) -> Regions {
        let mut r = Regions(
            pairs
                .iter()
                .map(|(i, r)| (Str::from(*i), Str::from(*r)))
                .collect(),
        );
        r.settle();
        r
    }

    #[test]
    fn regions_keep_the_first_region_of_each_instance_and_find_it() {
        let mut own = regions(&[
            ("i-3", "eu-west-1"),
            ("i-1", "us-east-1"),
            ("i-3", "ap-south-1"),
        ]);
        for (instance, want) in [
            ("i-1", Some("us-east-1")),
            ("i-3", Some("eu-west-1")),
            ("i-2", None),
        ] {
            assert_eq!(own.get(instance).map(Str::as_str), want, "{instance}");
        }
        // As `entry(i).or_insert(r)` over a map: what this has stays, the rest is added.
        own.add_missing(regions(&[("i-2", "sa-east-1"), ("i-1", "me-south-1")]));
        let got: Vec<(&str, &str)> = own
            .0
            .iter()
            .map(|(i, r)| (i.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("i-1", "us-east-1"),
                ("i-2", "sa-east-1"),
                ("i-3", "eu-west-1")
            ]
        );
    }
}
