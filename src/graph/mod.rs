//! The entity graph: what every signal says about instances, groups, principals and
//! endpoints, joined on `petgraph`.
//!
//! Nodes are entities (and, when kept, signals); edges say how they relate: an instance is a
//! member of an Auto Scaling group, launch template or stack, uses an instance profile, runs
//! an AMI, sits in a VPC and subnet; a principal acted as an instance (its role session is
//! named after the instance id); an instance was launched by a principal; a signal was
//! observed on an entity.
//!
//! **Instance groups**: every instance known by its own description belongs to exactly one
//! group, named by its most specific known key in the configured precedence (default Auto
//! Scaling group > launch template > CloudFormation stack > instance profile > AMI > VPC).
//! [`EntityGraph::group_of`] answers in a few hash lookups for any entity, because the matcher
//! asks per signal. The graph hands on nothing itself: exports ([`export`]) and the matcher
//! read it.

pub mod export;

use std::borrow::Cow;
use std::collections::BTreeSet;

use rustc_hash::{FxHashMap as HashMap, FxHashMap, FxHashSet as HashSet};
use std::fmt;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use serde::Serialize;

use crate::signal::{EntityId, EntityKind, InstanceInfo, RecordRef, Signal, Source, Str};
use crate::time::Millis;

/// How two nodes relate. Edges point from the dependent to what it depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// instance → Auto Scaling group, launch template or CloudFormation stack.
    MemberOf,
    /// instance → instance profile.
    UsesProfile,
    /// instance → AMI.
    RunsAmi,
    /// instance → VPC.
    InVpc,
    /// instance → subnet.
    InSubnet,
    /// instance → IP.
    HasIp,
    /// principal → instance: the principal's role session is the instance's credentials.
    ActedAs,
    /// instance → principal that launched it.
    LaunchedBy,
    /// principal → access key it used.
    UsesKey,
    /// principal (role session) → IAM role.
    SessionOf,
    /// principal → account.
    InAccount,
    /// signal → entity it names.
    ObservedOn,
    /// instance → its instance group (export only).
    InGroup,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::MemberOf => "member_of",
            EdgeKind::UsesProfile => "uses_profile",
            EdgeKind::RunsAmi => "runs_ami",
            EdgeKind::InVpc => "in_vpc",
            EdgeKind::InSubnet => "in_subnet",
            EdgeKind::HasIp => "has_ip",
            EdgeKind::ActedAs => "acted_as",
            EdgeKind::LaunchedBy => "launched_by",
            EdgeKind::UsesKey => "uses_key",
            EdgeKind::SessionOf => "session_of",
            EdgeKind::InAccount => "in_account",
            EdgeKind::ObservedOn => "observed_on",
            EdgeKind::InGroup => "in_group",
        }
    }
}

/// How much of what the records say a graph keeps, beyond what matching and findings read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// What matching and findings read: the entities and how they relate, each instance's
    /// facts and group, whose credentials a principal or key is. Nodes carry no label or
    /// properties, and are kept as their ids and edge counts rather than as a `petgraph`
    /// graph (on the heavy benchmark mix the labels, properties and adjacency lists were
    /// some 150 MB of heap for its 234,615 entities); an export draws them bare.
    Matching,
    /// Also every entity's label and properties, for exports and reports.
    #[default]
    Entities,
    /// Also a node per signal, with `observed_on` edges to what it names.
    Signals,
}

/// The entity kinds that can name an instance group, in the default precedence.
pub const DEFAULT_GROUP_PRECEDENCE: [EntityKind; 6] = [
    EntityKind::AutoScalingGroup,
    EntityKind::LaunchTemplate,
    EntityKind::CloudFormationStack,
    EntityKind::InstanceProfile,
    EntityKind::Ami,
    EntityKind::Vpc,
];

/// An instance group: the account its instances are in and the entity of its key. Displayed
/// as `auto_scaling_group/web-asg`. Keys are scoped by account because an AMI (a public one)
/// or a shared VPC can be used by many accounts whose instances have nothing else in common.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub account: Option<Str>,
    pub key: EntityId,
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.key.kind.as_str(), self.key.label())
    }
}

impl Serialize for GroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A node of the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// `instance:i-0abc…`, `signal:<reference>`…
    pub id: String,
    /// Entity kind name, or `signal`, or `instance_group`.
    pub kind: &'static str,
    pub label: String,
    /// Extra properties for exports (sorted, all strings).
    pub props: Props,
}

/// A node's properties for exports: a few, sorted by name, the short values kept inline. (A
/// `BTreeMap` of `String`s took a 456-byte leaf and an allocation per value for every
/// instance of a large estate.)
#[derive(Clone, Debug, Default)]
pub struct Props(Vec<(&'static str, Str)>);

impl Props {
    pub fn new() -> Props {
        Props(Vec::new())
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (*k).cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Sets `name` to `value`, replacing what it held.
    pub fn insert(&mut self, name: &'static str, value: impl Into<Str>) {
        let value = value.into();
        match self.0.binary_search_by(|(k, _)| (*k).cmp(name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// The properties, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// An edge of a snapshot: source id, target id, kind.
pub type SnapshotEdge<'a> = (Cow<'a, str>, Cow<'a, str>, EdgeKind);

/// Which version of a signal the graph holds, for a record with versions (a finding's
/// `updatedAt`) or a reference other than an event id.
struct SignalVersion {
    time: Millis,
    /// Every `updatedAt` met for the record, sorted; None for records without one. The latest
    /// is the version held. Boxed: one pointer in every entry, where a `Vec` would be three
    /// for the few records that have versions.
    #[allow(clippy::box_collection)]
    versions: Option<Box<Vec<Millis>>>,
    source: Source,
}

impl SignalVersion {
    fn updated_at(&self) -> Option<Millis> {
        self.versions.as_ref().and_then(|v| v.last().copied())
    }
}

/// What the table of signals holds of a reference.
enum Held<'a> {
    None,
    /// A record with this event id and no `updatedAt` (every CloudTrail record): its time and
    /// source are never read (only a held version's are, to compare with a later copy's), so
    /// nothing but the id is held.
    Plain,
    Version(&'a mut SignalVersion),
}

/// The graph's table of signals: a CloudTrail `eventID` in the form AWS writes it (a lowercase
/// UUID, 36 characters) is held as its 16 bytes, any other reference as it is, in a table of
/// its own. Two references find one entry exactly when they are the same reference: the 16
/// bytes are only ever made from that one spelling. Looking up borrows the reference; only a
/// new entry of the second table copies it. A run over days of trail holds a million event
/// ids, nearly all without versions: those are a set of their 16 bytes (with the hash table's
/// spare room about 36 MB for a million, where entries with a version held were 86 MB).
#[derive(Default)]
struct SignalTable {
    plain: HashSet<[u64; 2]>,
    event_ids: HashMap<[u64; 2], SignalVersion>,
    others: HashMap<RecordRef, SignalVersion>,
}

impl SignalTable {
    fn uuid(r: &RecordRef) -> Option<[u64; 2]> {
        match r {
            RecordRef::EventId(id) => uuid_bits(id),
            _ => None,
        }
    }

    fn held(&mut self, r: &RecordRef) -> Held<'_> {
        let found = match Self::uuid(r) {
            Some(bits) => {
                if self.plain.contains(&bits) {
                    return Held::Plain;
                }
                self.event_ids.get_mut(&bits)
            }
            None => self.others.get_mut(r),
        };
        found.map_or(Held::None, Held::Version)
    }

    /// Holds `r` at this version: `time` and `source` of the copy, with `updated_at` added to
    /// the versions met (which [`EntityGraph::add_signal`] keeps up to date before).
    fn hold(&mut self, r: &RecordRef, time: Millis, updated_at: Option<Millis>, source: Source) {
        let new = || SignalVersion {
            time,
            versions: updated_at.map(|at| Box::new(vec![at])),
            source,
        };
        let held = match Self::uuid(r) {
            Some(bits) if updated_at.is_none() && !self.event_ids.contains_key(&bits) => {
                self.plain.insert(bits);
                return;
            }
            Some(bits) => {
                // A copy with an `updatedAt` of a record held plain until now moves.
                self.plain.remove(&bits);
                self.event_ids.entry(bits).or_insert_with(new)
            }
            // Looked up by the reference: only a new entry copies it.
            None => match self.others.get_mut(r) {
                Some(v) => v,
                None => self.others.entry(r.clone()).or_insert_with(new),
            },
        };
        (held.time, held.source) = (time, source);
    }

    fn len(&self) -> usize {
        self.plain.len() + self.event_ids.len() + self.others.len()
    }
}

/// The 128 bits of `id` when it is a UUID written as AWS writes event ids: lowercase
/// hexadecimal digits in groups of 8-4-4-4-12 separated by hyphens. None for any other text
/// (uppercase digits too), so that no two texts give the same bits.
fn uuid_bits(id: &str) -> Option<[u64; 2]> {
    let b = id.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        bits = (bits << 4) | u128::from(digit);
    }
    Some([(bits >> 64) as u64, bits as u64])
}

/// What [`EntityGraph::add_signal`] did with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    New,
    /// A newer version of a finding already in the graph replaced it.
    Updated,
    /// The same record again (another copy, or an older version): nothing changed.
    Duplicate,
}

/// What the graph knows of one instance, merged over all records.
///
/// Each fact is what the newest record that states it says (on a tie, the greatest value),
/// each fact on its own: a record that only names the instance (a `TerminateInstances`) does
/// not make an older record's instance type stale. So the facts are a maximum over the
/// records, the same whatever order they are read in.
#[derive(Clone, Debug, Default)]
struct InstanceFacts {
    /// Shared with the sequences that describe the instance (their findings' resources): the
    /// facts are complete when sequences take them, so sharing never copies.
    info: std::sync::Arc<InstanceInfo>,
    account: Option<Str>,
    region: Option<Str>,
    /// When the instance was running, as far as records tell: see [`Lifetime`].
    lifetime: Lifetime,
    /// Its group: an index into [`EntityGraph::groups`], None until its facts name one.
    group: Option<u32>,
    /// How the facts were merged, for the records still to come; None once the graph is
    /// sealed ([`EntityGraph::seal`]): some 160 bytes an instance that matching never reads.
    merged: Option<Box<Merged>>,
}

/// When an instance was running, as far as records tell: the latest record that launched it
/// (a `RunInstances` response item) and the latest that ended it (a successful
/// `TerminateInstances`, a Spot interruption); unknown when no record tells. Latest, not
/// earliest: a run keeps one copy of each graph statement, the latest
/// ([`crate::pipeline::statement_rank`]), and a run that exports the graph keeps every copy,
/// so only a maximum is the same for both, and for one run and consecutive runs, whatever
/// order records arrive in. An instance id is launched once and ended once; the copies that
/// differ are retries (a termination sent again) and records that reuse an id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    pub launched: Option<Millis>,
    pub ended: Option<Millis>,
}

impl Lifetime {
    /// When the instance ended, unless records say it ran again after (a launch after its
    /// end, of records that reuse an id).
    pub fn end(&self) -> Option<Millis> {
        self.ended.filter(|&e| self.launched.is_none_or(|l| l <= e))
    }

    /// Whether the instance may have been running at some time in `from..=to`: not launched
    /// after it, not ended ([`Lifetime::end`]) before it. An unknown start or end counts as
    /// running.
    pub fn overlaps(&self, from: Millis, to: Millis) -> bool {
        self.launched.is_none_or(|l| l <= to) && self.end().is_none_or(|e| e >= from)
    }
}

fn latest(slot: &mut Option<Millis>, t: Millis) {
    *slot = Some(slot.map_or(t, |have| have.max(t)));
}

/// What merging an instance's facts needs besides the facts.
#[derive(Clone, Debug)]
struct Merged {
    /// Per fact (see [`Fact`]), the event time of the record it was taken from.
    said_at: [Millis; Fact::COUNT],
    /// Per tag of `info.tags` (kept sorted by key), the same.
    tags_said_at: Vec<Millis>,
    /// The node each of its facts links it to, in the order of [`LINK_SLOTS`] (`u32::MAX`:
    /// none): read only where no `petgraph` graph is kept ([`Detail::Matching`]), which
    /// cannot list an instance's edges.
    links: [u32; LINK_SLOTS.len()],
}

impl Default for Merged {
    fn default() -> Merged {
        Merged {
            said_at: [Millis::MIN; Fact::COUNT],
            tags_said_at: Vec::new(),
            links: [u32::MAX; LINK_SLOTS.len()],
        }
    }
}

/// The facts that link an instance to an entity: its kind and the edge's.
const LINK_SLOTS: [(EntityKind, EdgeKind); 7] = [
    (EntityKind::AutoScalingGroup, EdgeKind::MemberOf),
    (EntityKind::LaunchTemplate, EdgeKind::MemberOf),
    (EntityKind::CloudFormationStack, EdgeKind::MemberOf),
    (EntityKind::InstanceProfile, EdgeKind::UsesProfile),
    (EntityKind::Ami, EdgeKind::RunsAmi),
    (EntityKind::Vpc, EdgeKind::InVpc),
    (EntityKind::Subnet, EdgeKind::InSubnet),
];

/// The nodes of a graph kept for matching only ([`Detail::Matching`]), by index: what an
/// export or the removal of an entity no edge holds any longer needs of them.
#[derive(Default)]
struct BareNodes {
    /// Each node's entity (None once removed).
    entity: Vec<Option<(EntityKind, Str)>>,
    /// Each node's edges, in and out.
    degree: Vec<u32>,
}

impl BareNodes {
    /// The nodes not removed.
    fn count(&self) -> usize {
        self.entity.iter().filter(|e| e.is_some()).count()
    }
}

/// What a sealed graph counted before it dropped what only adding records reads.
#[derive(Clone, Copy, Debug)]
struct SealedCounts {
    /// Nodes, when a graph kept for matching dropped them (None: still there).
    nodes: Option<usize>,
    edges: usize,
    signals: usize,
}

/// The facts of [`InstanceFacts`], each with its own time.
#[derive(Clone, Copy)]
enum Fact {
    AutoScalingGroup,
    LaunchTemplate,
    LaunchTemplateVersion,
    Stack,
    Profile,
    Ami,
    Vpc,
    Subnet,
    InstanceType,
    Vcpus,
    Account,
    Region,
}

impl Fact {
    const COUNT: usize = 12;
}

/// Edge kinds made from an instance's facts: replaced when the facts change.
const FACT_LINKS: [EdgeKind; 5] = [
    EdgeKind::MemberOf,
    EdgeKind::UsesProfile,
    EdgeKind::RunsAmi,
    EdgeKind::InVpc,
    EdgeKind::InSubnet,
];

/// The entity graph and its instance groups.
pub struct EntityGraph {
    graph: StableDiGraph<Node, EdgeKind>,
    /// Entity id → node, one map per kind (indexed by `EntityKind as usize`): looked up by
    /// the id's text, so that finding a known entity builds no key.
    entities: Vec<FxHashMap<Str, NodeIndex>>,
    /// Signal reference → node (when signal nodes are kept).
    signal_nodes: FxHashMap<RecordRef, NodeIndex>,
    /// Every edge, but in a graph kept for matching ([`Detail::Matching`]) the links of an
    /// instance's facts, which its `links` hold (one per fact, about six an instance: the
    /// largest table of such a graph).
    edges: HashSet<(NodeIndex, NodeIndex, EdgeKind)>,
    /// The links of instances' facts in a graph kept for matching (not in `edges`).
    fact_links: usize,
    precedence: Vec<EntityKind>,
    detail: Detail,
    /// The nodes, when `graph` is not kept ([`Detail::Matching`]).
    bare: BareNodes,
    /// Boxed: the facts are large next to their key, and a table of a quarter of a million
    /// instances is grown by copying (both tables live at once) and is at most 7/8 full.
    instances: HashMap<Str, Box<InstanceFacts>>,
    /// Every record is in ([`EntityGraph::seal`]): what only adding records reads is gone, and
    /// these are the counts of what was dropped (nodes, edges, signals).
    sealed: Option<SealedCounts>,
    /// Every group an instance was put in, each once: instances hold their group's index
    /// (a number an instance, not a copy of the group's names).
    groups: Vec<GroupId>,
    group_index: HashMap<GroupId, u32>,
    /// The members of each group of `groups` (empty once its members all moved).
    group_members: Vec<BTreeSet<Str>>,
    /// Key entity → the groups it names (one per account).
    key_groups: HashMap<EntityId, BTreeSet<GroupId>>,
    /// Principal entity id → instance whose credentials it is.
    principal_instance: HashMap<Str, Str>,
    /// Access key → principal entity id.
    key_principal: HashMap<Str, Str>,
    /// Signal reference → the version kept.
    signals: SignalTable,
    /// See [`EntityGraph::older_versions`].
    older_versions: u64,
}

impl EntityGraph {
    /// `precedence`: which keys name a group, most specific first. `keep_signals`: add a node
    /// per signal with `observed_on` edges (for exports; the matcher does not need them).
    /// Either way every entity has its label and properties ([`Detail::Entities`]).
    pub fn new(precedence: Vec<EntityKind>, keep_signals: bool) -> EntityGraph {
        let detail = if keep_signals {
            Detail::Signals
        } else {
            Detail::Entities
        };
        EntityGraph::with_detail(precedence, detail)
    }

    /// [`EntityGraph::new`] keeping `detail`. A graph of [`Detail::Matching`] answers every
    /// question matching and findings ask as one of more detail does, and has the same nodes
    /// and edges; it is not for exports.
    pub fn with_detail(precedence: Vec<EntityKind>, detail: Detail) -> EntityGraph {
        EntityGraph {
            graph: StableDiGraph::new(),
            entities: EntityKind::ALL
                .iter()
                .map(|_| FxHashMap::default())
                .collect(),
            signal_nodes: FxHashMap::default(),
            edges: HashSet::default(),
            precedence,
            detail,
            bare: BareNodes::default(),
            instances: HashMap::default(),
            sealed: None,
            fact_links: 0,
            groups: Vec::new(),
            group_index: HashMap::default(),
            group_members: Vec::new(),
            key_groups: HashMap::default(),
            principal_instance: HashMap::default(),
            key_principal: HashMap::default(),
            signals: SignalTable::default(),
            older_versions: 0,
        }
    }

    pub fn node_count(&self) -> usize {
        if let Some(n) = self.sealed.and_then(|c| c.nodes) {
            return n;
        }
        match self.detail {
            Detail::Matching => self.bare.count(),
            _ => self.graph.node_count(),
        }
    }

    pub fn edge_count(&self) -> usize {
        self.sealed
            .map_or(self.edges.len() + self.fact_links, |c| c.edges)
    }

    /// Distinct signals in the graph (copies and versions counted once).
    pub fn signal_count(&self) -> usize {
        self.sealed.map_or(self.signals.len(), |c| c.signals)
    }

    /// Versions of findings replaced by a newer one (every `updatedAt` of a finding but its
    /// newest, counted once however many copies of it were read): the same whatever order
    /// the records arrive in, unlike [`Added::Updated`], which counts arrivals.
    pub fn older_versions(&self) -> u64 {
        self.older_versions
    }

    /// Entity nodes (signal nodes excluded).
    pub fn entity_count(&self) -> usize {
        if let Some(n) = self.sealed.and_then(|c| c.nodes) {
            return n;
        }
        match self.detail {
            Detail::Matching => self.bare.count(),
            _ => self
                .graph
                .node_weights()
                .filter(|n| n.kind != "signal")
                .count(),
        }
    }

    fn instance_group(&self, instance_id: &str) -> Option<&GroupId> {
        let index = self.instances.get(instance_id)?.group?;
        Some(&self.groups[index as usize])
    }

    /// Once every record is in: drops what only adding records reads, so that matching runs
    /// beside less: each instance's fact times and links (about 160 bytes an instance), the
    /// versions of the signals added, and in a graph kept for matching ([`Detail::Matching`])
    /// its nodes and edges too (the entity tables, about 250 bytes an instance), which only
    /// adding records and exports read; their counts stay. Every question matching and
    /// findings ask is answered as before. It takes no record after this, and a graph kept
    /// for matching no longer exports ([`EntityGraph::snapshot`]): either is a panic.
    pub fn seal(&mut self) {
        let mut counts = SealedCounts {
            nodes: None,
            edges: self.edge_count(),
            signals: self.signals.len(),
        };
        for facts in self.instances.values_mut() {
            facts.merged = None;
        }
        self.signals = SignalTable::default();
        if self.detail == Detail::Matching {
            counts.nodes = Some(self.bare.count());
            self.entities = vec![FxHashMap::default(); self.entities.len()];
            self.bare = BareNodes::default();
            self.edges = HashSet::default();
        }
        self.sealed = Some(counts);
    }

    /// Adds what a signal says. A finding already present (same ARN, directly or through
    /// Security Hub) is one signal; a newer version (later `updatedAt`) replaces it.
    pub fn add_signal(&mut self, s: &Signal) -> Added {
        assert!(self.sealed.is_none(), "a sealed graph takes no record");
        let added = match self.signals.held(&s.reference) {
            Held::None => Added::New,
            // A copy with an `updatedAt` is a later version than one without.
            Held::Plain if s.updated_at.is_some() => Added::Updated,
            Held::Plain => Added::Duplicate,
            Held::Version(prev) => {
                // A newer version replaces an older one. Between copies of one version the
                // GuardDuty original wins over the Security Hub copy, whichever came first,
                // so the result does not depend on the order files are read in.
                // Two versions written in the same millisecond: the later activity wins.
                let newer = match (prev.updated_at(), s.updated_at) {
                    (Some(p), Some(_)) => {
                        s.version() > crate::signal::version(Some(p), prev.source, prev.time)
                    }
                    (None, Some(_)) => true,
                    _ => false,
                };
                if let Some(at) = s.updated_at {
                    let versions = prev.versions.get_or_insert_with(Box::default);
                    if let Err(i) = versions.binary_search(&at) {
                        versions.insert(i, at);
                        if versions.len() > 1 {
                            self.older_versions += 1;
                        }
                    }
                }
                if newer {
                    Added::Updated
                } else {
                    Added::Duplicate
                }
            }
        };
        // What a record says about entities holds whichever version of a finding it is: the
        // graph is the union of every version's entities, so it does not depend on the order
        // versions arrive in. Only the signal node keeps the newest version.
        for inst in &s.instances {
            self.describe_instance(inst, s);
        }
        if let Some(actor) = &s.actor
            && let Some(principal) = actor.principal_key()
        {
            let p = self.node(EntityKind::Principal, principal);
            // Records may disagree (anonymised logs reuse ids); the smallest value wins, so
            // the graph does not depend on the order records arrive in.
            let arn_changed = self.set_prop_min(p, "arn", actor.arn.as_deref());
            self.set_prop_min(p, "principal_type", actor.principal_type.as_deref());
            if arn_changed && let Some(arn) = &actor.arn {
                let label = EntityId::new(EntityKind::Principal, arn.clone())
                    .label()
                    .to_string();
                self.graph[p].label = label;
            }
            if let Some(instance) = &actor.instance_id {
                let i = self.node(EntityKind::Instance, instance);
                self.edge(p, i, EdgeKind::ActedAs);
                // Should records disagree, the smallest instance id wins (whatever the order).
                if self
                    .principal_instance
                    .get(principal)
                    .is_none_or(|have| instance < have)
                {
                    self.principal_instance
                        .insert(Str::from(principal), instance.clone());
                }
            }
            if let Some(key) = &actor.access_key_id {
                let k = self.node(EntityKind::AccessKey, key);
                self.edge(p, k, EdgeKind::UsesKey);
                if self
                    .key_principal
                    .get(key)
                    .is_none_or(|have| principal < have.as_str())
                {
                    self.key_principal.insert(key.clone(), Str::from(principal));
                }
            }
            if let Some(role) = &actor.role_arn {
                let r = self.node(EntityKind::IamRole, role);
                self.edge(p, r, EdgeKind::SessionOf);
            }
            if let Some(acct) = actor.account.as_ref().or(s.account.as_ref()) {
                let a = self.node(EntityKind::Account, acct);
                self.edge(p, a, EdgeKind::InAccount);
            }
            for inst in s.instances.iter().filter(|i| i.launched) {
                let i = self.node(EntityKind::Instance, &inst.instance_id);
                self.edge(i, p, EdgeKind::LaunchedBy);
            }
        }
        if self.detail == Detail::Signals {
            self.signal_node(s, added != Added::Duplicate);
        }
        if added == Added::Duplicate {
            return added;
        }
        self.signals
            .hold(&s.reference, s.time, s.updated_at, s.source);
        added
    }

    /// The signal's node and its `observed_on` edges (the union over all versions); its
    /// properties are those of the newest version (`newest`).
    fn signal_node(&mut self, s: &Signal, newest: bool) -> NodeIndex {
        let n = match self.signal_nodes.get(&s.reference) {
            Some(&n) => n,
            None => {
                let n = self.graph.add_node(Node {
                    id: format!("signal:{}", s.reference.key()),
                    kind: "signal",
                    label: String::new(),
                    props: Props::new(),
                });
                self.signal_nodes.insert(s.reference.clone(), n);
                n
            }
        };
        for e in s.entities() {
            if e.kind == EntityKind::Account {
                continue;
            }
            let t = self.entity(&e);
            self.edge(n, t, EdgeKind::ObservedOn);
        }
        if !newest {
            return n;
        }
        let node = &mut self.graph[n];
        node.label = s.kind.to_string();
        node.props.insert("signal_kind", s.kind.clone());
        node.props.insert("source", s.source.as_str());
        node.props
            .insert("time", crate::time::format_rfc3339(s.time));
        node.props.insert("severity", format!("{}", s.severity));
        node.props.insert("reference", s.reference.key());
        if let Some(e) = &s.fields.error_code {
            node.props.insert("error_code", e.to_string());
        }
        if s.source != Source::CloudTrail || s.fields.finding_type.is_some() {
            node.props.insert("finding", "true");
        }
        n
    }

    fn describe_instance(&mut self, info: &InstanceInfo, s: &Signal) {
        let (known, facts) = match self.instances.get_mut(info.instance_id.as_str()) {
            Some(f) => (true, f),
            None => (
                false,
                self.instances.entry(info.instance_id.clone()).or_default(),
            ),
        };
        let merged = facts.merged.get_or_insert_with(|| {
            assert!(!known, "a sealed graph takes no record");
            Box::default()
        });
        let t = s.time;
        if info.launched {
            latest(&mut facts.lifetime.launched, t);
        }
        if s.ends_its_instances() {
            latest(&mut facts.lifetime.ended, t);
        }
        let at = &mut merged.said_at;
        let f = std::sync::Arc::make_mut(&mut facts.info);
        f.instance_id = info.instance_id.clone();
        let mut changed = !known;
        let mut fact = |fact: Fact, slot: &mut Option<Str>, new: &Option<Str>| {
            changed |= merge(slot, &mut at[fact as usize], new, t);
        };
        fact(
            Fact::AutoScalingGroup,
            &mut f.auto_scaling_group,
            &info.auto_scaling_group,
        );
        fact(
            Fact::LaunchTemplate,
            &mut f.launch_template,
            &info.launch_template,
        );
        fact(
            Fact::LaunchTemplateVersion,
            &mut f.launch_template_version,
            &info.launch_template_version,
        );
        fact(
            Fact::Stack,
            &mut f.cloudformation_stack,
            &info.cloudformation_stack,
        );
        fact(
            Fact::Profile,
            &mut f.instance_profile,
            &info.instance_profile,
        );
        fact(Fact::Ami, &mut f.ami, &info.ami);
        fact(Fact::Vpc, &mut f.vpc, &info.vpc);
        fact(Fact::Subnet, &mut f.subnet, &info.subnet);
        fact(
            Fact::InstanceType,
            &mut f.instance_type,
            &info.instance_type,
        );
        fact(Fact::Account, &mut facts.account, &s.account);
        fact(Fact::Region, &mut facts.region, &s.region);
        changed |= merge(&mut f.vcpus, &mut at[Fact::Vcpus as usize], &info.vcpus, t);
        if info.launched && !f.launched {
            f.launched = true;
            changed = true;
        }
        if f.tags.is_empty() {
            // Room for a new instance's tags at once, not doubled one tag at a time.
            f.tags.reserve_exact(info.tags.len());
            merged.tags_said_at.reserve_exact(info.tags.len());
        }
        for (k, v) in &info.tags {
            match f.tags.binary_search_by(|(fk, _)| fk.cmp(k)) {
                Ok(i) => {
                    let mut slot = Some(f.tags[i].1.clone());
                    if merge(&mut slot, &mut merged.tags_said_at[i], &Some(v.clone()), t) {
                        f.tags[i].1 = v.clone();
                        changed = true;
                    }
                }
                Err(i) => {
                    f.tags.insert(i, (k.clone(), v.clone()));
                    merged.tags_said_at.insert(i, t);
                    changed = true;
                }
            }
        }
        let new_ips = info
            .public_ips
            .iter()
            .any(|ip| !self.has_ip_edge(&info.instance_id, ip));
        // Most findings describe an instance the graph already knows just so: nothing to
        // relink.
        if !changed && !new_ips {
            return;
        }
        // Taken out while the links are made (they need `self`), and put back after: moved,
        // so that no placeholder is allocated.
        let (key, mut facts) = self
            .instances
            .remove_entry(info.instance_id.as_str())
            .expect("described above");
        let f = &facts.info;

        let inst = self.node(EntityKind::Instance, &f.instance_id);
        self.set_prop(inst, "instance_type", f.instance_type.as_deref());
        self.set_prop(inst, "account", facts.account.as_deref());
        self.set_prop(inst, "region", facts.region.as_deref());
        if let Some(v) = f.vcpus
            && self.detail >= Detail::Entities
        {
            self.graph[inst].props.insert("vcpus", v.to_string());
        }
        let (acct, region) = (facts.account.as_deref(), facts.region.as_deref());
        // Scoped names (groups, stacks) carry their account and region; the rest are ids.
        let scoped = |kind, n: &Option<Str>| {
            n.as_deref()
                .map(|n| EntityId::scoped(kind, acct, region, n).id)
        };
        let group = scoped(EntityKind::AutoScalingGroup, &f.auto_scaling_group);
        let stack = scoped(EntityKind::CloudFormationStack, &f.cloudformation_stack);
        // In the order of `LINK_SLOTS`.
        let targets = [
            group.as_deref(),
            f.launch_template.as_deref(),
            stack.as_deref(),
            f.instance_profile.as_deref(),
            f.ami.as_deref(),
            f.vpc.as_deref(),
            f.subnet.as_deref(),
        ];
        let mut linked = Vec::with_capacity(targets.len());
        let mut links = [u32::MAX; LINK_SLOTS.len()];
        let before = facts.merged.as_ref().expect("merged above").links;
        for (slot, ((kind, edge), target)) in LINK_SLOTS.into_iter().zip(targets).enumerate() {
            if let Some(t) = target {
                let t = self.node(kind, t);
                if self.detail != Detail::Matching {
                    self.edge(inst, t, edge);
                } else if before[slot] != t.index() as u32 {
                    // A link its facts did not make before: held in `links`, not in `edges`.
                    self.fact_links += 1;
                    self.bare.degree[inst.index()] += 1;
                    self.bare.degree[t.index()] += 1;
                }
                linked.push((t, edge));
                links[slot] = t.index() as u32;
            }
        }
        facts.merged.as_mut().expect("merged above").links = links;
        self.unlink_stale(inst, &linked, &before);
        for ip in &info.public_ips {
            let t = self.node(EntityKind::Ip, ip);
            self.edge(inst, t, EdgeKind::HasIp);
        }
        if let Some(lt) = &f.launch_template_version
            && self.detail >= Detail::Entities
        {
            self.graph[inst]
                .props
                .insert("launch_template_version", lt.clone());
        }
        self.regroup(&mut facts);
        self.instances.insert(key, facts);
    }

    /// Removes the links an instance's earlier facts made that its facts no longer make (a
    /// group in another region, an older AMI), and the entities only those links held: the
    /// graph says what the merged facts say, not which facts were met first.
    /// `linked`: what its facts link it to now; `before`: what they linked it to before, by
    /// [`LINK_SLOTS`] (read when no `petgraph` graph is kept).
    fn unlink_stale(
        &mut self,
        inst: NodeIndex,
        linked: &[(NodeIndex, EdgeKind)],
        before: &[u32; LINK_SLOTS.len()],
    ) {
        use petgraph::Direction::{Incoming, Outgoing};
        use petgraph::visit::EdgeRef;
        if self.detail == Detail::Matching {
            for (&(_, kind), &old) in LINK_SLOTS.iter().zip(before) {
                let target = NodeIndex::new(old as usize);
                if old == u32::MAX || linked.contains(&(target, kind)) {
                    continue;
                }
                self.fact_links -= 1;
                self.bare.degree[inst.index()] -= 1;
                self.bare.degree[target.index()] -= 1;
                if self.bare.degree[target.index()] == 0
                    && let Some((k, id)) = self.bare.entity[target.index()].take()
                {
                    self.entities[k as usize].remove(&id);
                }
            }
            return;
        }
        let stale: Vec<_> = self
            .graph
            .edges_directed(inst, Outgoing)
            .filter(|e| {
                FACT_LINKS.contains(e.weight()) && !linked.contains(&(e.target(), *e.weight()))
            })
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (e, target, kind) in stale {
            self.graph.remove_edge(e);
            self.edges.remove(&(inst, target, kind));
            let held = self.graph.edges_directed(target, Incoming).next().is_some()
                || self.graph.edges_directed(target, Outgoing).next().is_some();
            if held {
                continue;
            }
            if let Some(node) = self.graph.remove_node(target)
                && let Some(k) = EntityKind::parse(node.kind)
                && let Some(id) = node
                    .id
                    .strip_prefix(k.as_str())
                    .and_then(|r| r.strip_prefix(':'))
            {
                self.entities[k as usize].remove(id);
            }
        }
    }

    /// Recomputes one instance's group from its facts and moves it if the key changed.
    fn regroup(&mut self, facts: &mut InstanceFacts) {
        let Some(group) = self.group_key(facts) else {
            return;
        };
        let index = match self.group_index.get(&group) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.groups.len()).expect("fewer than 2^32 groups");
                self.groups.push(group.clone());
                self.group_members.push(BTreeSet::new());
                self.group_index.insert(group, i);
                i
            }
        };
        if facts.group == Some(index) {
            return;
        }
        let id = &facts.info.instance_id;
        if let Some(old) = facts.group.replace(index) {
            let members = &mut self.group_members[old as usize];
            members.remove(id);
            if members.is_empty() {
                let old = &self.groups[old as usize];
                if let Some(g) = self.key_groups.get_mut(&old.key) {
                    g.remove(old);
                }
            }
        }
        let group = &self.groups[index as usize];
        let members = &mut self.group_members[index as usize];
        // A key entity names the groups that have members: only a group's first member
        // (again) adds it.
        if members.is_empty() {
            self.key_groups
                .entry(group.key.clone())
                .or_default()
                .insert(group.clone());
        }
        members.insert(id.clone());
        if self.detail >= Detail::Entities
            && let Some(node) = self.lookup(EntityKind::Instance, id)
        {
            let label = group.to_string();
            self.graph[node].props.insert("group", label);
        }
    }

    fn group_key(&self, facts: &InstanceFacts) -> Option<GroupId> {
        let f = &facts.info;
        let (acct, region) = (facts.account.as_deref(), facts.region.as_deref());
        self.precedence.iter().find_map(|kind| {
            let e = match kind {
                EntityKind::AutoScalingGroup => f
                    .auto_scaling_group
                    .as_deref()
                    .map(|n| EntityId::scoped(*kind, acct, region, n)),
                EntityKind::LaunchTemplate => f
                    .launch_template
                    .as_deref()
                    .map(|n| EntityId::new(*kind, n)),
                EntityKind::CloudFormationStack => f
                    .cloudformation_stack
                    .as_deref()
                    .map(|n| EntityId::scoped(*kind, acct, region, n)),
                EntityKind::InstanceProfile => f
                    .instance_profile
                    .as_deref()
                    .map(|n| EntityId::new(*kind, n)),
                EntityKind::Ami => f.ami.as_deref().map(|n| EntityId::new(*kind, n)),
                EntityKind::Vpc => f.vpc.as_deref().map(|n| EntityId::new(*kind, n)),
                _ => None,
            };
            e.map(|key| GroupId {
                account: facts.account.clone(),
                key,
            })
        })
    }

    /// The instance group an entity belongs to: an instance's own; a principal's or access
    /// key's through the instance whose credentials they are; a key entity's (ASG, launch
    /// template…) when it names a group. Cheap: a few hash lookups.
    pub fn group_of(&self, e: &EntityId) -> Option<&GroupId> {
        match e.kind {
            EntityKind::Instance => self.instance_group(&e.id),
            EntityKind::Principal => self
                .principal_instance
                .get(&e.id)
                .and_then(|i| self.instance_group(i)),
            EntityKind::AccessKey => self
                .key_principal
                .get(&e.id)
                .and_then(|p| self.principal_instance.get(p))
                .and_then(|i| self.instance_group(i)),
            // A key entity names a group when exactly one account's instances use it.
            _ => self
                .key_groups
                .get(e)
                .filter(|g| g.len() == 1)
                .and_then(|g| g.iter().next()),
        }
    }

    fn has_ip_edge(&self, instance_id: &str, ip: &str) -> bool {
        let inst = self.lookup(EntityKind::Instance, instance_id);
        let ip = self.lookup(EntityKind::Ip, ip);
        match (inst, ip) {
            (Some(a), Some(b)) => self.edges.contains(&(a, b, EdgeKind::HasIp)),
            _ => false,
        }
    }

    /// What the graph knows of an instance (merged over all records).
    pub fn instance_info(&self, instance_id: &str) -> Option<&InstanceInfo> {
        self.instances.get(instance_id).map(|f| &*f.info)
    }

    /// The same, shared rather than copied (a sequence keeps one per member).
    pub fn instance_info_shared(&self, instance_id: &str) -> Option<&std::sync::Arc<InstanceInfo>> {
        self.instances.get(instance_id).map(|f| &f.info)
    }

    /// The tags the graph knows for an instance.
    pub fn instance_tags(&self, instance_id: &str) -> &[(Str, Str)] {
        self.instances
            .get(instance_id)
            .map_or(&[], |f| f.info.tags.as_slice())
    }

    /// When an instance was running, as far as records tell (unknown for an instance the
    /// graph does not know).
    pub fn instance_lifetime(&self, instance_id: &str) -> Lifetime {
        self.instances
            .get(instance_id)
            .map_or_else(Lifetime::default, |f| f.lifetime)
    }

    /// The region the graph knows for an instance.
    pub fn instance_region(&self, instance_id: &str) -> Option<&str> {
        self.instances
            .get(instance_id)
            .and_then(|f| f.region.as_deref())
    }

    /// Members of a group (empty when the group is unknown).
    pub fn members(&self, g: &GroupId) -> Option<&BTreeSet<Str>> {
        let index = *self.group_index.get(g)?;
        Some(&self.group_members[index as usize]).filter(|m| !m.is_empty())
    }

    /// Every group with its member instance ids, sorted.
    pub fn groups(&self) -> impl Iterator<Item = (&GroupId, &BTreeSet<Str>)> {
        let mut order: Vec<(&GroupId, &BTreeSet<Str>)> = self
            .groups
            .iter()
            .zip(&self.group_members)
            .filter(|(_, members)| !members.is_empty())
            .collect();
        // Group ids are unique.
        order.sort_unstable_by(|a, b| a.0.cmp(b.0));
        order.into_iter()
    }

    /// Whether an edge of `kind` goes from `from` to `to`.
    pub fn has_edge(&self, from: &EntityId, to: &EntityId, kind: EdgeKind) -> bool {
        assert!(
            self.sealed.is_none_or(|c| c.nodes.is_none()),
            "a sealed graph kept for matching has no edges to look up"
        );
        match (
            self.lookup(from.kind, &from.id),
            self.lookup(to.kind, &to.id),
        ) {
            (Some(a), Some(b)) => {
                self.edges.contains(&(a, b, kind))
                    || self.fact_link_edges().any(|e| e == (a, b, kind))
            }
            _ => false,
        }
    }

    /// The links of instances' facts in a graph kept for matching, which `edges` does not
    /// hold (none in a graph of more detail, whose `edges` does).
    fn fact_link_edges(&self) -> impl Iterator<Item = (NodeIndex, NodeIndex, EdgeKind)> + '_ {
        self.instances
            .iter()
            .filter(|_| self.detail == Detail::Matching)
            .filter_map(|(id, facts)| {
                Some((
                    self.lookup(EntityKind::Instance, id)?,
                    facts.merged.as_ref()?,
                ))
            })
            .flat_map(|(inst, merged)| {
                LINK_SLOTS
                    .iter()
                    .zip(merged.links)
                    .filter(|&(_, t)| t != u32::MAX)
                    .map(move |(&(_, kind), t)| (inst, NodeIndex::new(t as usize), kind))
            })
    }

    /// Nodes and edges, sorted by id, for exports. Group nodes and `in_group` edges are
    /// added from the current grouping. A graph kept for matching only has nodes without
    /// labels or properties, and none once sealed (a panic).
    pub fn snapshot(&self) -> (Vec<Cow<'_, Node>>, Vec<SnapshotEdge<'_>>) {
        assert!(
            self.sealed.is_none_or(|c| c.nodes.is_none()),
            "a sealed graph kept for matching has no nodes or edges to export"
        );
        // Nodes: the graph's own (with their index) and one per instance group.
        let mut nodes: Vec<(Cow<'_, Node>, Result<NodeIndex, usize>)> = match self.detail {
            Detail::Matching => self
                .bare
                .entity
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let (kind, id) = e.as_ref()?;
                    let node = Node {
                        id: EntityId::new(*kind, id.clone()).to_string(),
                        kind: kind.as_str(),
                        label: String::new(),
                        props: Props::new(),
                    };
                    Some((Cow::Owned(node), Ok(NodeIndex::new(i))))
                })
                .collect(),
            _ => self
                .graph
                .node_indices()
                .map(|i| (Cow::Borrowed(&self.graph[i]), Ok(i)))
                .collect(),
        };
        let mut group_edges: Vec<(NodeIndex, usize)> = Vec::new();
        let groups: Vec<_> = self.groups().collect();
        for (g, &(group, members)) in groups.iter().enumerate() {
            let mut props = Props::new();
            props.insert("key", group.key.to_string());
            if let Some(a) = &group.account {
                props.insert("account", a.to_string());
            }
            props.insert("members", members.len().to_string());
            for m in members {
                if let Some(i) = self.lookup(EntityKind::Instance, m) {
                    group_edges.push((i, g));
                }
            }
            nodes.push((
                Cow::Owned(Node {
                    id: group_node_id(group),
                    kind: "instance_group",
                    label: group.to_string(),
                    props,
                }),
                Err(g),
            ));
        }
        // Ids are unique, so an unstable sort gives the one order.
        nodes.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
        // Edges are sorted by the ranks of their ends in node order (the same order as by
        // their ids, without comparing strings).
        let bound = nodes
            .iter()
            .filter_map(|(_, origin)| origin.as_ref().ok().map(|i| i.index() + 1))
            .max()
            .unwrap_or(0);
        let mut rank_of_index = vec![0u32; bound];
        let mut rank_of_group = vec![0u32; groups.len()];
        for (rank, (_, origin)) in nodes.iter().enumerate() {
            match origin {
                Ok(i) => rank_of_index[i.index()] = rank as u32,
                Err(g) => rank_of_group[*g] = rank as u32,
            }
        }
        // Both ranks in one integer: one comparison per step of the sort.
        let pair = |a: u32, b: u32| (u64::from(a) << 32) | u64::from(b);
        // The set of edges is the graph's edges (`edge`, `unlink_stale`).
        let mut ranked: Vec<(u64, EdgeKind)> = self
            .edges
            .iter()
            .copied()
            .chain(self.fact_link_edges())
            .map(|(a, b, kind)| {
                (
                    pair(rank_of_index[a.index()], rank_of_index[b.index()]),
                    kind,
                )
            })
            .chain(group_edges.iter().map(|&(i, g)| {
                (
                    pair(rank_of_index[i.index()], rank_of_group[g]),
                    EdgeKind::InGroup,
                )
            }))
            .collect();
        ranked.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
        let nodes: Vec<Cow<'_, Node>> = nodes.into_iter().map(|(n, _)| n).collect();
        let edges = ranked
            .into_iter()
            .map(|(ab, k)| {
                let (a, b) = ((ab >> 32) as u32, ab as u32);
                let id = |r: u32| match &nodes[r as usize] {
                    Cow::Borrowed(n) => Cow::Borrowed(n.id.as_str()),
                    Cow::Owned(n) => Cow::Owned(n.id.clone()),
                };
                (id(a), id(b), k)
            })
            .collect();
        (nodes, edges)
    }

    fn lookup(&self, kind: EntityKind, id: &str) -> Option<NodeIndex> {
        self.entities[kind as usize].get(id).copied()
    }

    fn entity(&mut self, e: &EntityId) -> NodeIndex {
        self.node(e.kind, &e.id)
    }

    /// The node of an entity, added if new.
    fn node(&mut self, kind: EntityKind, id: &str) -> NodeIndex {
        if let Some(n) = self.lookup(kind, id) {
            return n;
        }
        let e = EntityId::new(kind, id);
        let n = if self.detail == Detail::Matching {
            let n = NodeIndex::new(self.bare.entity.len());
            self.bare.entity.push(Some((kind, e.id.clone())));
            self.bare.degree.push(0);
            n
        } else {
            self.graph.add_node(Node {
                id: e.to_string(),
                kind: kind.as_str(),
                label: e.label().to_string(),
                props: Props::new(),
            })
        };
        // The id moves into the map (a copy only where the bare nodes keep one too).
        self.entities[kind as usize].insert(e.id, n);
        n
    }

    fn edge(&mut self, a: NodeIndex, b: NodeIndex, kind: EdgeKind) {
        if a != b && self.edges.insert((a, b, kind)) {
            if self.detail == Detail::Matching {
                self.bare.degree[a.index()] += 1;
                self.bare.degree[b.index()] += 1;
            } else {
                self.graph.add_edge(a, b, kind);
            }
        }
    }

    /// Sets a property unless it already holds a smaller value; says whether it changed.
    fn set_prop_min(&mut self, n: NodeIndex, key: &'static str, value: Option<&str>) -> bool {
        let Some(v) = value.filter(|_| self.detail >= Detail::Entities) else {
            return false;
        };
        let props = &mut self.graph[n].props;
        match props.get(key) {
            Some(old) if old <= v => false,
            _ => {
                props.insert(key, v);
                true
            }
        }
    }

    fn set_prop(&mut self, n: NodeIndex, key: &'static str, value: Option<&str>) {
        if let Some(v) = value.filter(|_| self.detail >= Detail::Entities) {
            self.graph[n].props.insert(key, v);
        }
    }
}

/// The export node id of a group: `instance_group:ACCOUNT/kind/label`, and for a name that
/// is only unique within an account and region (Auto Scaling group, stack) with the region
/// too, `instance_group:ACCOUNT/kind/REGION/name`: one account may have a group of the same
/// name in several regions, and each is a group of its own.
pub fn group_node_id(g: &GroupId) -> String {
    let account = g.account.as_deref().unwrap_or("unknown-account");
    match g.key.kind {
        EntityKind::AutoScalingGroup | EntityKind::CloudFormationStack => {
            // The key's id is `ACCOUNT/REGION/name` (see `EntityId::scoped`).
            let place = g
                .key
                .id
                .split_once('/')
                .map_or(g.key.id.as_str(), |(_, r)| r);
            format!("instance_group:{account}/{}/{place}", g.key.kind.as_str())
        }
        _ => format!("instance_group:{account}/{g}"),
    }
}

/// Takes `new`, said at `t`, where nothing is known yet or where (`t`, `new`) is above
/// (`at`, the value held): the newest statement wins, the greatest value on a tie, so the
/// result is the same in any order. Says whether the value changed.
fn merge<T: Clone + Ord>(
    slot: &mut Option<T>,
    at: &mut Millis,
    new: &Option<T>,
    t: Millis,
) -> bool {
    let Some(v) = new else {
        return false;
    };
    let take = match slot {
        None => true,
        Some(old) => (t, v) > (*at, &*old),
    };
    if !take {
        return false;
    }
    *at = t;
    if slot.as_ref() == Some(v) {
        return false;
    }
    *slot = Some(v.clone());
    true
}

#[cfg(test)]
mod lifetime_tests {
    use super::Lifetime;

    #[test]
    fn an_instance_ran_in_a_span_unless_records_say_it_started_after_or_ended_before() {
        let life = |launched: Option<i64>, ended: Option<i64>| Lifetime { launched, ended };
        // Nothing known: running.
        assert!(Lifetime::default().overlaps(10, 20));
        // Launched before, at the end, after.
        assert!(life(Some(5), None).overlaps(10, 20));
        assert!(life(Some(20), None).overlaps(10, 20));
        assert!(!life(Some(21), None).overlaps(10, 20));
        // Ended before, at the start, during.
        assert!(!life(Some(1), Some(9)).overlaps(10, 20));
        assert!(life(Some(1), Some(10)).overlaps(10, 20));
        assert!(life(None, Some(15)).overlaps(10, 20));
        assert!(!life(None, Some(9)).overlaps(10, 20));
        // Launched again after its end (records that reuse an id): running since.
        assert!(life(Some(12), Some(9)).overlaps(10, 20));
        assert!(!life(Some(30), Some(9)).overlaps(10, 20));
    }
}

#[cfg(test)]
mod signal_key_tests {
    use super::{Held, SignalTable, SignalVersion, uuid_bits};
    use crate::signal::{RecordRef, Source};

    /// The table of signals has an entry for each record a run keeps (a million over a week
    /// of a busy trail): an event id without versions is its 16 bytes, and an entry with a
    /// version held stays this small.
    #[test]
    fn an_entry_of_the_table_of_signals_stays_small() {
        assert_eq!(std::mem::size_of::<[u64; 2]>(), 16);
        assert!(std::mem::size_of::<([u64; 2], SignalVersion)>() <= 48);
    }

    /// A record first held without an `updatedAt` (a plain event id), then met with one: the
    /// copy with one is a later version (as when the first was held with its time and
    /// source), and from then on its versions are compared as any finding's.
    #[test]
    fn a_plain_event_id_met_again_with_a_version_holds_that_version() {
        use crate::graph::{Added, EntityGraph};
        let id = "24b80cb9-8c25-4d29-ae50-61cb3aa143cc";
        let signal = |time: i64, updated_at: Option<i64>| crate::signal::Signal {
            time,
            account: None,
            region: None,
            source: Source::CloudTrail,
            kind: "ec2.amazonaws.com:RunInstances".into(),
            severity: 0.0,
            reference: RecordRef::EventId(id.into()),
            updated_at,
            actor: None,
            instances: Vec::new(),
            resources: Vec::new(),
            endpoints: Vec::new(),
            fields: crate::signal::Fields::default(),
        };
        let mut g = EntityGraph::new(Vec::new(), false);
        assert_eq!(g.add_signal(&signal(10, None)), Added::New);
        assert!(matches!(
            g.signals.held(&RecordRef::EventId(id.into())),
            Held::Plain
        ));
        assert_eq!(g.add_signal(&signal(20, None)), Added::Duplicate);
        assert_eq!(g.add_signal(&signal(10, Some(100))), Added::Updated);
        let Held::Version(v) = g.signals.held(&RecordRef::EventId(id.into())) else {
            panic!("held plain after a version was met");
        };
        assert_eq!((v.time, v.updated_at()), (10, Some(100)));
        // Without an `updatedAt`, or with an older one: not newer. A newer one is.
        assert_eq!(g.add_signal(&signal(30, None)), Added::Duplicate);
        assert_eq!(g.add_signal(&signal(30, Some(50))), Added::Duplicate);
        assert_eq!(g.add_signal(&signal(30, Some(200))), Added::Updated);
        assert_eq!(g.signals.len(), 1);
        assert_eq!(g.older_versions, 2);
    }

    #[test]
    fn an_event_id_is_held_as_its_bits_only_in_the_one_spelling_that_maps_back() {
        let id = "24b80cb9-8c25-4d29-ae50-61cb3aa143cc";
        let bits = uuid_bits(id).unwrap();
        assert_eq!(
            format!("{:016x}{:016x}", bits[0], bits[1]),
            id.replace('-', "")
        );
        // Other spellings of the same number, and texts that are no UUID, stay text.
        for other in [
            "24B80CB9-8C25-4D29-AE50-61CB3AA143CC",
            "24b80cb98c254d29ae5061cb3aa143cc",
            "{24b80cb9-8c25-4d29-ae50-61cb3aa143cc}",
            "24b80cb9-8c25-4d29-ae50-61cb3aa143c",
            "24b80cb9-8c25-4d29-ae50_61cb3aa143cc",
            "24b80cb9-8c25-4d29-ae50-61cb3aa143cg",
            "",
        ] {
            assert_eq!(uuid_bits(other), None, "{other}");
        }
        // One entry per reference: each found by itself and by nothing else.
        let event = |id: &str| RecordRef::EventId(id.into());
        let upper = id.to_uppercase();
        let refs = [
            event(id),
            event("24b80cb9-8c25-4d29-ae50-61cb3aa143cd"),
            event(&upper),
            RecordRef::Hash(id.into()),
        ];
        let mut table = SignalTable::default();
        for (i, r) in refs.iter().enumerate() {
            assert!(
                matches!(table.held(r), Held::None),
                "{r:?} found before it was put in"
            );
            table.hold(r, i as i64, None, Source::CloudTrail);
        }
        assert_eq!(table.len(), refs.len());
        assert_eq!(
            (table.plain.len(), table.event_ids.len(), table.others.len()),
            (2, 0, 2)
        );
        for (i, r) in refs.iter().enumerate() {
            match table.held(r) {
                Held::Plain => assert!(matches!(r, RecordRef::EventId(_)) && i < 2, "{r:?}"),
                Held::Version(v) => assert_eq!(v.time, i as i64, "{r:?}"),
                Held::None => panic!("{r:?} not found"),
            }
        }
    }
}
