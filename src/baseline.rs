//! Baselines learned from the stream: what each account launches, where, with what, and by
//! whom, and how many instances each launcher starts in a bucket of time.
//!
//! Rules use them through two selector conditions (see `correlation-rules/README.md`):
//!
//! - `first_seen: [region, ami, instance_type, principal]`: a launch (a call of any API in
//!   the launch catalog, see [`crate::launch`], or `StartInstances`) whose region, AMI, instance type or launching principal the account has
//!   never launched with before, once the account's learning period is over;
//! - `launch_rate_outlier: true`: a launch that brings its launcher's instances in the current
//!   bucket (10 minutes by default) above the mean + k·σ of that launcher's own earlier
//!   buckets, and to at least a minimum count. Instances are counted, not API calls.
//!
//! An account starts learning at the first successful launch seen in it; nothing is reported
//! while it learns. The launcher is the IAM role behind a role session (sessions come and go;
//! the role is what has a history), else the principal's ARN.
//!
//! Baselines are folded over signals in event-time order. The state keeps the fold as of the
//! horizon; the signals after it are folded again when the next run replays them, so split
//! runs learn exactly what one run learns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::signal::{Actor, Signal, Source, Str};
use crate::time::Millis;

/// The launch facts rules can ask about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Region,
    Ami,
    InstanceType,
    Principal,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Region,
        Dimension::Ami,
        Dimension::InstanceType,
        Dimension::Principal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Region => "region",
            Dimension::Ami => "ami",
            Dimension::InstanceType => "instance_type",
            Dimension::Principal => "principal",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Settings (`[baselines]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineOptions {
    /// How long an account learns before anything is reported.
    pub learning_period: Millis,
    /// The launch-rate outlier fires above mean + k·σ.
    pub k: f64,
    /// ... and only from this many instances in one bucket.
    pub min_instances: u64,
    /// The launch-rate bucket.
    pub bucket: Millis,
    /// Values not seen for this long are forgotten (and would be new again).
    pub retention: Millis,
}

impl Default for BaselineOptions {
    fn default() -> Self {
        BaselineOptions {
            learning_period: 14 * 86_400_000,
            k: 4.0,
            min_instances: 5,
            bucket: 600_000,
            retention: 90 * 86_400_000,
        }
    }
}

/// A rule's overrides of [`BaselineOptions`] (its `baseline:` section).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BaselineParams {
    pub learning_period: Option<Millis>,
    pub k: Option<f64>,
    pub min_instances: Option<u64>,
}

/// A successful launch, as the baselines see it.
#[derive(Debug)]
pub struct Launch<'a> {
    pub account: &'a str,
    /// Who launched: the IAM role of a role session, else the principal.
    pub launcher: Str,
    /// Values per [`Dimension`].
    pub values: [Vec<Str>; 4],
    /// Instances started.
    pub instances: u64,
}

/// A [`Launch`] that owns its account: what the matcher keeps of a launch no rule can report
/// (see `matcher::Learned`), to learn it in its turn.
#[derive(Clone, Debug)]
pub struct OwnedLaunch {
    pub account: Str,
    pub launcher: Str,
    pub values: [Vec<Str>; 4],
    pub instances: u64,
}

impl Launch<'_> {
    pub fn to_owned_launch(&self) -> OwnedLaunch {
        OwnedLaunch {
            account: Str::from(self.account),
            launcher: self.launcher.clone(),
            values: self.values.clone(),
            instances: self.instances,
        }
    }
}

/// The launch a signal is, if it is one: a successful call of an API in the launch catalog
/// (`correlation-rules/launches/`: `RunInstances`, fleets, spot requests, Auto Scaling
/// capacity, ECS tasks, SageMaker jobs…; see [`crate::launch`]), or a `StartInstances`.
pub fn launch_of(s: &Signal) -> Option<Launch<'_>> {
    let (account, name, actor) = launch_head(s)?;
    let launcher = launcher_of(actor)?;
    let mut values: [Vec<Str>; 4] = Default::default();
    let mut push = |d: Dimension, v: &str| {
        let list = &mut values[d as usize];
        if !v.is_empty() && !list.iter().any(|x| x == v) {
            list.push(Str::from(v));
        }
    };
    if let Some(r) = s.region.as_deref() {
        push(Dimension::Region, r);
    }
    for i in &s.instances {
        if let Some(a) = i.ami.as_deref() {
            push(Dimension::Ami, a);
        }
        if let Some(t) = i.instance_type.as_deref() {
            push(Dimension::InstanceType, t);
        }
    }
    if let Some(t) = s.fields.requested_instance_type.as_deref() {
        push(Dimension::InstanceType, t);
    }
    if let Some(l) = s.fields.launch.as_deref() {
        for t in &l.instance_types {
            push(Dimension::InstanceType, t);
        }
    }
    push(Dimension::Principal, &launcher);
    let started = s.instances.iter().filter(|i| i.launched).count() as u64;
    let instances = match (name, s.fields.launch.as_deref()) {
        ("RunInstances", _) => u64::from(s.fields.launched_count.unwrap_or(0)).max(started),
        (_, Some(l)) => u64::from(l.count).max(started),
        _ => s.instances.len() as u64,
    }
    .max(1);
    Some(Launch {
        account,
        launcher,
        values,
        instances,
    })
}

/// Whether the signal is a launch ([`launch_of`] would return one), without building it:
/// asked of every record on the reading threads.
pub fn is_launch(s: &Signal) -> bool {
    launch_head(s).is_some_and(|(_, _, actor)| launcher_of(actor).is_some())
}

/// The account, event name and actor of a successful launch.
fn launch_head(s: &Signal) -> Option<(&str, &str, &Actor)> {
    // A Sigma rule's match on a launch is not another launch.
    if s.source != Source::CloudTrail || s.fields.error_code.is_some() || crate::sigma::is_match(s)
    {
        return None;
    }
    let name = s.fields.event_name.as_deref()?;
    let started = s.fields.event_source.as_deref() == Some("ec2.amazonaws.com")
        && (name == "RunInstances" || name == "StartInstances");
    if !started && s.fields.launch.is_none() {
        return None;
    }
    Some((s.account.as_deref()?, name, s.actor.as_ref()?))
}

/// The launcher of a call: for a role session the role (`arn:PARTITION:iam::ACCOUNT:role/NAME`,
/// from the session ARN, so records with and without `sessionContext` agree); else the
/// principal's ARN, id, or the invoking service.
pub fn launcher_of(actor: &Actor) -> Option<Str> {
    if let Some(arn) = actor.arn.as_deref()
        && let Some((head, rest)) = crate::signal::split_assumed_role(arn)
    {
        let account = head.rsplit(':').next().unwrap_or("");
        let partition = crate::regions::partition_of_arn(arn).unwrap_or("aws");
        let role = rest.split('/').next().unwrap_or(rest);
        let mut launcher =
            Str::with_capacity(4 + partition.len() + 7 + account.len() + 6 + role.len());
        for part in ["arn:", partition, ":iam::", account, ":role/", role] {
            launcher.push_str(part);
        }
        return Some(launcher);
    }
    actor
        .role_arn
        .as_deref()
        .or(actor.arn.as_deref())
        .or(actor.principal_id.as_deref())
        .or(actor.invoked_by.as_deref())
        .filter(|s| !s.is_empty())
        .map(Str::from)
}

/// What the baselines know, per account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baselines {
    pub accounts: BTreeMap<Str, AccountBaseline>,
}

/// One account's launches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBaseline {
    /// The first launch seen: learning starts here.
    #[serde(with = "crate::state::time_text")]
    pub learning_since: Millis,
    /// When learning ends with the configured learning period (rules may set their own).
    #[serde(with = "crate::state::time_text")]
    pub learning_until: Millis,
    /// Values launched with, and when each was last seen.
    #[serde(default)]
    pub regions: BTreeMap<Str, LastSeen>,
    #[serde(default)]
    pub amis: BTreeMap<Str, LastSeen>,
    #[serde(default)]
    pub instance_types: BTreeMap<Str, LastSeen>,
    #[serde(default)]
    pub principals: BTreeMap<Str, LastSeen>,
    /// Per launcher: instances per bucket.
    #[serde(default)]
    pub launch_rates: BTreeMap<Str, LaunchRate>,
}

/// When a value was last seen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LastSeen(#[serde(with = "crate::state::time_text")] pub Millis);

/// A launcher's history: running sums over finished buckets that had launches, and the
/// bucket being filled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRate {
    /// Finished buckets with at least one launch.
    pub buckets: u64,
    pub sum: f64,
    pub sum_squares: f64,
    /// Start of the bucket being filled.
    #[serde(with = "crate::state::time_text")]
    pub current_bucket: Millis,
    pub current_instances: u64,
}

impl LaunchRate {
    /// History (buckets, mean, σ) as of a launch at bucket `b`: the bucket being filled counts
    /// as finished once a later bucket starts.
    fn history(&self, b: Millis) -> (u64, f64, f64) {
        let (mut n, mut sum, mut sq) = (self.buckets, self.sum, self.sum_squares);
        if self.current_instances > 0 && self.current_bucket < b {
            let c = self.current_instances as f64;
            n += 1;
            sum += c;
            sq += c * c;
        }
        if n == 0 {
            return (0, 0.0, 0.0);
        }
        let mean = sum / n as f64;
        let var = (sq / n as f64 - mean * mean).max(0.0);
        (n, mean, var.sqrt())
    }

    fn add(&mut self, b: Millis, instances: u64) {
        if b > self.current_bucket {
            if self.current_instances > 0 {
                let c = self.current_instances as f64;
                self.buckets += 1;
                self.sum += c;
                self.sum_squares += c * c;
            }
            self.current_bucket = b;
            self.current_instances = 0;
        }
        self.current_instances += instances;
    }
}

/// What the baselines say about one launch, before it is learned.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub time: Millis,
    /// When the account started learning; None when this is its first launch.
    pub learning_since: Option<Millis>,
    /// Per [`Dimension`]: the values never seen in the account before.
    pub new: [Vec<Str>; 4],
    /// Instances of the launcher in this launch's bucket, this launch included.
    pub bucket_instances: u64,
    /// The launcher's earlier buckets: how many, their mean and standard deviation.
    pub history: (u64, f64, f64),
}

impl Facts {
    /// Whether the account was still learning at this launch.
    pub fn learning(&self, period: Millis) -> bool {
        self.learning_since
            .is_none_or(|since| self.time < since.saturating_add(period))
    }

    /// The dimensions of `dims` with a new value, unless learning.
    pub fn first_seen(&self, dims: &[Dimension], period: Millis) -> Vec<Dimension> {
        if self.learning(period) {
            return Vec::new();
        }
        dims.iter()
            .copied()
            .filter(|d| !self.new[d.index()].is_empty())
            .collect()
    }

    /// The threshold a bucket must pass, and whether this launch passes it.
    pub fn rate_outlier(&self, k: f64, min: u64, period: Millis) -> (f64, bool) {
        let (_, mean, sd) = self.history;
        let threshold = mean + k * sd.max(1.0);
        let hit = !self.learning(period)
            && self.bucket_instances >= min
            && self.bucket_instances as f64 > threshold;
        (threshold, hit)
    }

    /// Why a first-seen condition held, for a person.
    pub fn describe_first_seen(&self, dims: &[Dimension]) -> Vec<String> {
        dims.iter()
            .map(|d| {
                format!(
                    "first {} seen in the account: {}",
                    d.as_str().replace('_', " "),
                    self.new[d.index()].join(", ")
                )
            })
            .collect()
    }

    /// Why a launch-rate condition held, for a person.
    pub fn describe_rate(&self, k: f64, bucket: Millis) -> String {
        let (n, mean, sd) = self.history;
        format!(
            "{} instance(s) in {} by one launcher, above its threshold {:.1} (mean {:.1} + {k} x max(sd {:.1}, 1) over {n} earlier bucket(s) with launches)",
            self.bucket_instances,
            crate::time::format_duration(bucket),
            mean + k * sd.max(1.0),
            mean,
            sd,
        )
    }
}

impl Baselines {
    /// The facts of a launch before it is learned; None when the signal is not a launch.
    pub fn facts(&self, s: &Signal, opts: &BaselineOptions) -> Option<Facts> {
        Some(self.facts_of(&launch_of(s)?, s.time, opts))
    }

    /// The facts of launch `l` at `time`, before it is learned.
    pub fn facts_of(&self, l: &Launch<'_>, time: Millis, opts: &BaselineOptions) -> Facts {
        let acct = self.accounts.get(l.account);
        // What has not been seen for the retention period is forgotten (the state drops it).
        let since = time.saturating_sub(opts.retention);
        let mut new: [Vec<Str>; 4] = Default::default();
        for d in Dimension::ALL {
            for v in &l.values[d.index()] {
                let known = acct.is_some_and(|a| a.values(d).get(v).is_some_and(|t| t.0 >= since));
                if !known {
                    new[d.index()].push(v.clone());
                }
            }
        }
        let b = bucket(time, opts.bucket);
        let rate = acct
            .and_then(|a| a.launch_rates.get(&l.launcher))
            .filter(|r| r.current_bucket.saturating_add(opts.bucket) >= since);
        let history = rate.map_or((0, 0.0, 0.0), |r| r.history(b));
        let already = rate
            .filter(|r| r.current_bucket == b)
            .map_or(0, |r| r.current_instances);
        Facts {
            time,
            learning_since: acct.map(|a| a.learning_since),
            new,
            bucket_instances: already + l.instances,
            history,
        }
    }

    /// Learns a signal (anything but a launch is ignored). Signals must come in event-time
    /// order.
    pub fn observe(&mut self, s: &Signal, opts: &BaselineOptions) {
        if let Some(l) = launch_of(s) {
            self.learn(l, s.time, opts);
        }
    }

    /// Learns launch `l` at `time`. Launches must come in event-time order.
    pub fn learn(&mut self, l: Launch<'_>, time: Millis, opts: &BaselineOptions) {
        let a = self
            .accounts
            .entry(Str::from(l.account))
            .or_insert_with(|| AccountBaseline {
                learning_since: time,
                learning_until: time.saturating_add(opts.learning_period),
                ..AccountBaseline::default()
            });
        let mut values = l.values;
        for d in Dimension::ALL {
            let map = a.values_mut(d);
            for v in std::mem::take(&mut values[d.index()]) {
                let seen = map.entry(v).or_insert(LastSeen(time));
                seen.0 = seen.0.max(time);
            }
        }
        let rate = a.launch_rates.entry(l.launcher).or_default();
        if rate.current_bucket.saturating_add(opts.bucket) < time.saturating_sub(opts.retention) {
            *rate = LaunchRate::default();
        }
        rate.add(bucket(time, opts.bucket), l.instances);
    }

    /// Forgets values and launchers not seen since `before`.
    pub fn expire(&mut self, before: Millis, opts: &BaselineOptions) {
        for a in self.accounts.values_mut() {
            for d in Dimension::ALL {
                a.values_mut(d).retain(|_, seen| seen.0 >= before);
            }
            a.launch_rates
                .retain(|_, r| r.current_bucket.saturating_add(opts.bucket) >= before);
        }
    }
}

impl AccountBaseline {
    fn values(&self, d: Dimension) -> &BTreeMap<Str, LastSeen> {
        match d {
            Dimension::Region => &self.regions,
            Dimension::Ami => &self.amis,
            Dimension::InstanceType => &self.instance_types,
            Dimension::Principal => &self.principals,
        }
    }

    fn values_mut(&mut self, d: Dimension) -> &mut BTreeMap<Str, LastSeen> {
        match d {
            Dimension::Region => &mut self.regions,
            Dimension::Ami => &mut self.amis,
            Dimension::InstanceType => &mut self.instance_types,
            Dimension::Principal => &mut self.principals,
        }
    }
}

fn bucket(t: Millis, size: Millis) -> Millis {
    t.div_euclid(size.max(1)) * size.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Actor, InstanceInfo};

    const DAY: Millis = 86_400_000;

    fn launch(t: Millis, region: &str, role: &str, n: usize, itype: &str) -> Signal {
        Signal {
            time: t,
            account: Some("111122223333".into()),
            region: Some(region.into()),
            source: Source::CloudTrail,
            kind: "ec2.amazonaws.com:RunInstances".into(),
            severity: 0.0,
            reference: crate::signal::RecordRef::EventId(format!("e-{t}-{role}").into()),
            updated_at: None,
            actor: Some(Box::new(Actor {
                arn: Some(format!("arn:aws:sts::111122223333:assumed-role/{role}/s-{t}").into()),
                ..Actor::default()
            })),
            instances: (0..n)
                .map(|i| InstanceInfo {
                    instance_id: format!("i-{t:x}{i}").into(),
                    ami: Some("ami-1".into()),
                    instance_type: Some(itype.into()),
                    launched: true,
                    ..InstanceInfo::default()
                })
                .collect(),
            resources: vec![],
            endpoints: vec![],
            fields: crate::signal::Fields {
                event_source: Some("ec2.amazonaws.com".into()),
                event_name: Some("RunInstances".into()),
                launched_count: Some(n as u32),
                ..Default::default()
            },
        }
    }

    #[test]
    fn issue_17_every_compute_api_is_a_launch_counted_by_its_units() {
        // A SageMaker training job of 8 ml.p3.2xlarge: no EC2 instance in the record.
        let mut job = launch(0, "us-east-1", "ml", 0, "unused");
        job.kind = "sagemaker.amazonaws.com:CreateTrainingJob".into();
        job.fields = crate::signal::Fields {
            event_source: Some("sagemaker.amazonaws.com".into()),
            event_name: Some("CreateTrainingJob".into()),
            launch: Some(Box::new(crate::launch::Launch {
                kind: "training_job".into(),
                count: 8,
                instance_types: vec!["ml.p3.2xlarge".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(is_launch(&job));
        let l = launch_of(&job).expect("a training job is a launch");
        assert_eq!(l.instances, 8);
        assert_eq!(l.values[Dimension::InstanceType.index()], ["ml.p3.2xlarge"]);
        assert_eq!(l.values[Dimension::Region.index()], ["us-east-1"]);
        // The same call without a launch (it failed, or bought nothing) teaches nothing.
        job.fields.launch = None;
        assert!(!is_launch(&job));
    }

    #[test]
    fn sessions_of_one_role_are_one_launcher() {
        let a = launch(0, "us-east-1", "ci", 1, "t3.micro");
        let b = launch(5, "us-east-1", "ci", 1, "t3.micro");
        let (la, lb) = (launch_of(&a).unwrap(), launch_of(&b).unwrap());
        assert_eq!(la.launcher, "arn:aws:iam::111122223333:role/ci");
        assert_eq!(la.launcher, lb.launcher);
        let mut failed = a.clone();
        failed.fields.error_code = Some("Client.VcpuLimitExceeded".into());
        assert!(
            launch_of(&failed).is_none(),
            "a failed launch starts nothing"
        );
    }

    #[test]
    fn first_seen_waits_for_the_learning_period_and_forgets_after_retention() {
        let opts = BaselineOptions::default();
        let mut b = Baselines::default();
        let first = launch(0, "us-east-1", "ci", 1, "t3.micro");
        assert!(
            b.facts(&first, &opts)
                .unwrap()
                .learning(opts.learning_period)
        );
        b.observe(&first, &opts);
        // A new region while learning: no first-seen.
        let early = launch(3 * DAY, "eu-west-1", "ci", 1, "t3.micro");
        let f = b.facts(&early, &opts).unwrap();
        assert!(
            f.first_seen(&[Dimension::Region], opts.learning_period)
                .is_empty()
        );
        b.observe(&early, &opts);
        // After learning: eu-west-1 is known, ap-southeast-3 is new.
        let known = launch(20 * DAY, "eu-west-1", "ci", 1, "t3.micro");
        let f = b.facts(&known, &opts).unwrap();
        assert!(
            f.first_seen(&Dimension::ALL, opts.learning_period)
                .is_empty()
        );
        let new = launch(20 * DAY, "ap-southeast-3", "ci", 1, "p3.16xlarge");
        let f = b.facts(&new, &opts).unwrap();
        assert_eq!(
            f.first_seen(&Dimension::ALL, opts.learning_period),
            vec![Dimension::Region, Dimension::InstanceType]
        );
        assert!(f.describe_first_seen(&[Dimension::Region])[0].contains("ap-southeast-3"));
        // A region not seen for longer than the retention is new again.
        let late = launch(
            3 * DAY + opts.retention + DAY,
            "eu-west-1",
            "ci",
            1,
            "t3.micro",
        );
        let f = b.facts(&late, &opts).unwrap();
        assert_eq!(
            f.first_seen(&[Dimension::Region], opts.learning_period),
            vec![Dimension::Region]
        );
    }

    #[test]
    fn launch_rate_counts_instances_per_bucket_against_the_launchers_history() {
        let opts = BaselineOptions::default();
        let mut b = Baselines::default();
        for d in 0..20 {
            b.observe(&launch(d * DAY, "us-east-1", "ci", 2, "t3.micro"), &opts);
        }
        let (k, min, lp) = (opts.k, opts.min_instances, opts.learning_period);
        // Two calls of three in one bucket: six instances, above 2 + 4·1.
        let one = launch(30 * DAY, "us-east-1", "ci", 3, "t3.micro");
        let f = b.facts(&one, &opts).unwrap();
        assert_eq!(f.bucket_instances, 3);
        assert!(!f.rate_outlier(k, min, lp).1);
        b.observe(&one, &opts);
        let two = launch(30 * DAY + 60_000, "us-east-1", "ci", 4, "t3.micro");
        let f = b.facts(&two, &opts).unwrap();
        assert_eq!(f.bucket_instances, 7);
        assert_eq!(f.history.0, 20);
        let (threshold, hit) = f.rate_outlier(k, min, lp);
        assert!((threshold - 6.0).abs() < 1e-9, "{threshold}");
        assert!(hit);
        // The same count in the next bucket starts again from that bucket's own launches.
        b.observe(&two, &opts);
        let next = launch(30 * DAY + 11 * 60_000, "us-east-1", "ci", 2, "t3.micro");
        let f = b.facts(&next, &opts).unwrap();
        assert_eq!(f.bucket_instances, 2);
        assert_eq!(f.history.0, 21, "the finished bucket joined the history");
        // A new launcher with no history: the minimum count decides.
        let fresh = launch(30 * DAY, "us-east-1", "stolen", 4, "t3.micro");
        let f = b.facts(&fresh, &opts).unwrap();
        assert!(
            !f.rate_outlier(k, min, lp).1,
            "4 instances are under the minimum of 5"
        );
        let fresh = launch(30 * DAY, "us-east-1", "stolen", 9, "t3.micro");
        assert!(b.facts(&fresh, &opts).unwrap().rate_outlier(k, min, lp).1);
        // "A launcher with no history needs more than k instances (and at least
        // min_instances)": with k = 10, 8 instances are over the minimum and not over k, 11 are.
        let eight = launch(30 * DAY, "us-east-1", "stolen", 8, "t3.micro");
        assert!(
            !b.facts(&eight, &opts)
                .unwrap()
                .rate_outlier(10.0, min, lp)
                .1
        );
        let eleven = launch(30 * DAY, "us-east-1", "stolen", 11, "t3.micro");
        assert!(
            b.facts(&eleven, &opts)
                .unwrap()
                .rate_outlier(10.0, min, lp)
                .1
        );
    }

    #[test]
    fn baselines_round_trip_as_json() {
        let opts = BaselineOptions::default();
        let mut b = Baselines::default();
        b.observe(&launch(0, "us-east-1", "ci", 2, "t3.micro"), &opts);
        b.observe(&launch(DAY, "us-east-1", "ci", 3, "t3.micro"), &opts);
        let text = serde_json::to_string(&b).unwrap();
        assert!(
            text.contains("\"learning_since\":\"1970-01-01T00:00:00.000Z\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Baselines>(&text).unwrap(), b);
    }
}
