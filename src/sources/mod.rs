//! Where records come from: files and folders on disk ([`file`]), or, in AWS mode, the
//! sources the configuration names ([`SourceConfig`]): the GuardDuty, Security Hub and
//! CloudTrail APIs and a trail's S3 objects, polled by `crate::aws::sources`, whose response
//! bodies go to the same decoders.

pub mod file;
pub mod queue;
pub mod trail;

use crate::config::Settings;
use crate::rules::RuleSet;
use crate::time::Millis;

/// One source of `aws.sources`, checked, with the keys it reads.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    /// GuardDuty `ListFindings`/`GetFindings`, per region.
    GuardDuty,
    /// Security Hub `GetFindings` (other products' findings), per region.
    SecurityHub,
    /// CloudTrail `LookupEvents`, per region.
    CloudTrailLookup {
        /// `aws.cloudtrail_calls_per_second`.
        calls_per_second: f64,
        /// `aws.cloudtrail_delivery_delay`.
        delivery_delay: Millis,
    },
    /// A trail's log objects in S3, every account and region folder it holds.
    CloudTrailS3 {
        /// `aws.trail`: `s3://bucket/folder/`.
        trail: String,
        /// `aws.trail_regions`; empty: every region folder of the trail.
        regions: Vec<String>,
        /// `aws.trail_concurrency`.
        concurrency: usize,
        /// `aws.trail_overlap`.
        overlap: Millis,
    },
    /// The trail's log objects (and EventBridge events of findings and calls) announced by
    /// the messages of an SQS queue ([`queue`]).
    Sqs(QueueConfig),
}

/// The `sqs` source's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// `aws.queue`: the queue's URL.
    pub queue: String,
    /// `aws.trail`, when set: only objects under it are read (bucket, folder).
    pub trail: Option<(String, String)>,
    /// `aws.trail_regions`; empty: every region.
    pub regions: Vec<String>,
    /// `aws.trail_concurrency`: objects fetched at a time.
    pub concurrency: usize,
    /// `aws.queue_max_messages`: messages one run receives at most.
    pub max_messages: usize,
    /// `aws.queue_visibility_timeout`: how long a received message stays hidden from
    /// other receivers, renewed while the run works.
    pub visibility: Millis,
    /// `aws.queue_wait`: how long a receive waits for messages (long polling); a receive
    /// that gets none ends the reading.
    pub wait: Millis,
}

impl SourceConfig {
    /// The names `aws.sources` takes, in the order sources are polled.
    pub const NAMES: [&'static str; 5] = [
        "guardduty",
        "securityhub",
        "cloudtrail",
        "cloudtrail_s3",
        "sqs",
    ];

    /// The sources `aws.sources` names, each once, in the order of [`Self::NAMES`] (unknown
    /// names are the validation's to report). `delivery_delay` and `trail_overlap` are the
    /// parsed `aws.cloudtrail_delivery_delay` and `aws.trail_overlap`, `queue` the parsed
    /// `aws.queue_visibility_timeout` and `aws.queue_wait`.
    pub fn from_keys(
        a: &crate::config::AwsConfig,
        delivery_delay: Millis,
        trail_overlap: Millis,
        queue: (Millis, Millis),
    ) -> Vec<SourceConfig> {
        Self::NAMES
            .iter()
            .filter(|n| a.sources.iter().any(|s| s == *n))
            .map(|n| match *n {
                "guardduty" => SourceConfig::GuardDuty,
                "securityhub" => SourceConfig::SecurityHub,
                "cloudtrail" => SourceConfig::CloudTrailLookup {
                    calls_per_second: a.cloudtrail_calls_per_second,
                    delivery_delay,
                },
                "sqs" => SourceConfig::Sqs(QueueConfig {
                    queue: a.queue.clone(),
                    trail: a
                        .trail
                        .strip_prefix("s3://")
                        .and_then(|r| r.split_once('/'))
                        .map(|(b, p)| (b.to_string(), p.to_string())),
                    regions: a.trail_regions.clone(),
                    concurrency: a.trail_concurrency,
                    max_messages: a.queue_max_messages,
                    visibility: queue.0,
                    wait: queue.1,
                }),
                _ => SourceConfig::CloudTrailS3 {
                    trail: a.trail.clone(),
                    regions: a.trail_regions.clone(),
                    concurrency: a.trail_concurrency,
                    overlap: trail_overlap,
                },
            })
            .collect()
    }

    /// Its `aws.sources` name, which is also its checkpoints' name.
    pub fn name(&self) -> &'static str {
        match self {
            SourceConfig::GuardDuty => "guardduty",
            SourceConfig::SecurityHub => "securityhub",
            SourceConfig::CloudTrailLookup { .. } => "cloudtrail",
            SourceConfig::CloudTrailS3 { .. } => "cloudtrail_s3",
            SourceConfig::Sqs(_) => "sqs",
        }
    }

    /// Whether it is polled in each of `aws.regions` (the trail and the queue hold every
    /// region's logs).
    pub fn per_region(&self) -> bool {
        !matches!(
            self,
            SourceConfig::CloudTrailS3 { .. } | SourceConfig::Sqs(_)
        )
    }
}

/// The exact CloudTrail event names the rules need, with those the entity graph learns from
/// and the launch catalog's, or None when some selector needs a pattern (then every
/// management event is read).
pub fn needed_event_names(rules: &RuleSet, settings: &Settings) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for r in &rules.rules {
        for st in &r.stages {
            let sel = &st.selector;
            for (_, name) in &sel.events {
                add(name.literal()?);
            }
            if let Some(sg) = &sel.sigma {
                // The calls the selected Sigma rules can match, if their names narrow them.
                for name in rules
                    .sigma
                    .event_names(sg.selected.iter().map(String::as_str))?
                {
                    add(&name);
                }
            }
            if sel.launch && sel.events.is_empty() {
                for name in rules.launches.event_names() {
                    add(name.literal()?);
                }
            }
            if sel.high_risk_api {
                let lists = settings.matching.lists(&rules.lists);
                for api in lists.get(crate::rules::lists::HIGH_RISK_APIS) {
                    let name = api.split_once(':').map_or(api.as_str(), |(_, n)| n);
                    if name.contains('*') {
                        return None;
                    }
                    add(name);
                }
            }
            let cloudtrail_only = sel.sources == [crate::signal::Source::CloudTrail];
            if cloudtrail_only && sel.events.is_empty() && !sel.high_risk_api {
                // Any CloudTrail call: no name narrows it.
                return None;
            }
        }
        if r.uses_baselines() {
            // Every launch teaches the baselines.
            add("StartInstances");
            for name in rules.launches.event_names() {
                add(name.literal()?);
            }
        }
    }
    // What the graph learns from (which group an instance's launch put it in, when it ended,
    // what a launch template holds), whatever the rules select: a rule on a group needs its
    // members' groups, a finding its members, a launch its template's instance types.
    for name in crate::normalize::cloudtrail::GRAPH_EVENT_NAMES {
        add(name);
    }
    for name in rules.launches.event_names() {
        add(name.literal()?);
    }
    names.sort();
    Some(names)
}
