//! Settings: one [`Config`] with defaults, optionally read from a TOML file (`--config`).
//!
//! The file is checked strictly (unknown keys are errors, with line and column) and then
//! validated by a pure function into the runtime settings the pipeline uses. This is the
//! only place that turns configuration text into settings.

use std::path::Path;

use serde::Deserialize;

use crate::graph::DEFAULT_GROUP_PRECEDENCE;
use crate::matcher::MatchOptions;
use crate::signal::EntityKind;
use crate::sources::file::ReadOptions;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How input files are read and decoded.
    pub input: InputConfig,
    /// How the entity graph groups instances.
    pub graph: GraphConfig,
    /// How rules match.
    pub rules: RulesConfig,
    /// What state (`--state`) keeps between runs.
    pub state: StateConfig,
    /// Defaults of the baseline conditions (`first_seen`, `launch_rate_outlier`).
    pub baselines: BaselinesConfig,
    /// AWS mode (`correlator run`).
    pub aws: AwsConfig,
    /// Edits of the detection lists (`[lists.high_risk_apis]` with `values`, `add`,
    /// `remove`), over the shipped lists and those of the `--rules` folder.
    pub lists: std::collections::BTreeMap<String, crate::rules::lists::ListEdit>,
    /// Not a section: what the environment says about where the process runs.
    #[serde(skip)]
    pub host: HostEnvironment,
    /// Where each value came from, for messages (filled by [`Config::load_with_env`]).
    #[serde(skip)]
    pub origins: Origins,
}

/// Where configuration values came from, and the environment settings that are not keys of
/// the file: read here so that no other module reads the environment.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// `section.key` → the file or the environment variable that set it.
    pub keys: std::collections::BTreeMap<String, String>,
    /// `CORRELATOR_RECORD_CALLS`: append `Service:Operation` of every AWS call to this file
    /// (the IAM policy test compares them with what the deploy grants).
    pub record_calls: Option<std::path::PathBuf>,
}

/// `[aws]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Regions to read; empty means the SDK's region (`AWS_REGION`, the profile).
    pub regions: Vec<String>,
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`, …); empty means the one the regions'
    /// names give (`cn-…` is `aws-cn`), and at run time the caller's (STS).
    pub partition: String,
    /// Any of `guardduty`, `securityhub`, `cloudtrail` (the `LookupEvents` API),
    /// `cloudtrail_s3` (a trail's log files, `trail`, found by listing) and `sqs` (the trail's
    /// log files announced by S3 notifications in the queue `queue`).
    pub sources: Vec<String>,
    /// The `sqs` source's queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
    pub queue: String,
    /// Messages one run receives at most (the rest wait for the next run).
    pub queue_max_messages: usize,
    /// How long a received message stays hidden from other receivers, like `10m`; the run
    /// renews it every half of that while it works.
    pub queue_visibility_timeout: String,
    /// How long a receive waits for messages, like `2s` (at most 20 seconds); the first
    /// receive that gets none ends the reading.
    pub queue_wait: String,
    /// The trail's S3 folder holding the account folders: `s3://bucket/AWSLogs/`, or
    /// `s3://bucket/AWSLogs/o-ORGID/` for an organization trail.
    pub trail: String,
    /// Trail log objects read at a time.
    pub trail_concurrency: usize,
    /// The regions whose trail folders are read; empty means every region folder the trail
    /// holds (found by listing, whatever `regions` says).
    pub trail_regions: Vec<String>,
    /// How late a trail object may arrive behind the newest one read in its folder, like
    /// `15m` (CloudTrail delivers within about 15 minutes): each folder's listing starts this
    /// far behind the time in the newest object name read.
    pub trail_overlap: String,
    /// Write each emitted sequence's HTML report and graph here (`s3://bucket/prefix/`) and
    /// link them from its finding (`SourceUrl`, `ProductFields`); empty: no reports.
    pub reports: String,
    /// How far back a first run (no state yet) reads, like `24h`.
    pub lookback: String,
    /// How far behind its checkpoint each poll starts again, like `10m`.
    pub overlap: String,
    /// Where the state lives: a local path or `s3://bucket/key`.
    pub state: String,
    /// Where findings go: `securityhub`, `file` (`sink_file`) or `stdout`.
    pub sink: String,
    pub sink_file: String,
    /// The Security Hub region findings are written to; empty means the first region.
    pub securityhub_region: String,
    /// Attempts per AWS call (the SDK retries throttling and 5xx with backoff and jitter).
    pub max_attempts: u32,
    /// First retry backoff, like `1s`.
    pub initial_backoff: String,
    /// An AWS call attempt that takes longer is abandoned and retried, like `30s`.
    pub attempt_timeout: String,
    /// `BatchImportFindings` calls per second.
    pub sink_calls_per_second: f64,
    /// `LookupEvents` calls per second and region (the API allows 2).
    pub cloudtrail_calls_per_second: f64,
    /// How long CloudTrail may take to make an event visible to `LookupEvents`, like `15m`:
    /// each poll resumes from its own start time minus this delay (and `overlap`); events
    /// that come later than that are counted as late.
    pub cloudtrail_delivery_delay: String,
    /// How long a run's claim on the state lasts unless renewed, like `5m`; a run renews it
    /// every third of that while it works.
    pub lease: String,
    /// `i/n`: correlate only the accounts of shard i of n (by a stable hash of the account
    /// id), with a state of the shard's own; empty: every account.
    pub shard: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            regions: Vec::new(),
            partition: String::new(),
            sources: vec!["guardduty".into(), "cloudtrail".into()],
            queue: String::new(),
            queue_max_messages: 20_000,
            queue_visibility_timeout: "10m".into(),
            queue_wait: "2s".into(),
            trail: String::new(),
            trail_concurrency: 8,
            trail_regions: Vec::new(),
            trail_overlap: "15m".into(),
            reports: String::new(),
            lookback: "24h".into(),
            overlap: "10m".into(),
            state: "correlator-state.json".into(),
            sink: "securityhub".into(),
            sink_file: String::new(),
            securityhub_region: String::new(),
            max_attempts: 5,
            initial_backoff: "1s".into(),
            attempt_timeout: "30s".into(),
            sink_calls_per_second: 10.0,
            cloudtrail_calls_per_second: 2.0,
            cloudtrail_delivery_delay: "15m".into(),
            lease: "5m".into(),
            shard: String::new(),
        }
    }
}

/// Sections whose keys environment variables `CORRELATOR_<SECTION>_<KEY>` set.
const SECTIONS: [&str; 6] = ["input", "graph", "rules", "state", "baselines", "aws"];

/// Keys that hold lists: an environment value without a comma is a list of one.
const LIST_KEYS: [&str; 6] = [
    "aws.regions",
    "aws.sources",
    "aws.trail_regions",
    "graph.group_key_precedence",
    "rules.high_powered_instance_types",
    "rules.high_risk_apis",
];

/// `[baselines]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselinesConfig {
    /// How long an account is learned (from its first launch seen) before baseline
    /// conditions report anything, like `14d`.
    pub learning_period: String,
    /// Launch-rate outliers lie above the launcher's mean + k·σ instances per bucket.
    pub launch_rate_k: f64,
    /// ... and need at least this many instances in the bucket.
    pub launch_rate_min_instances: u64,
    /// The launch-rate bucket, like `10m`.
    pub launch_rate_bucket: String,
    /// Values (regions, AMIs, instance types, launchers) not seen for this long are
    /// forgotten, like `90d`.
    pub retention: String,
}

impl Default for BaselinesConfig {
    fn default() -> Self {
        let d = crate::baseline::BaselineOptions::default();
        BaselinesConfig {
            learning_period: crate::time::format_duration(d.learning_period),
            launch_rate_k: d.k,
            launch_rate_min_instances: d.min_instances,
            launch_rate_bucket: crate::time::format_duration(d.bucket),
            retention: crate::time::format_duration(d.retention),
        }
    }
}

/// `[state]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// What records said about an instance (its group, who launched it, its sessions) is kept
    /// for later runs while some record names the instance within this, like `30d`.
    pub graph_retention: String,
    /// What records said about an instance that ended (a `TerminateInstances`, a Spot
    /// interruption) is let go this long after its end, like `2d`, however recently a record
    /// named it (and never later than `graph_retention` would); at least the longest rule
    /// window plus `rules.lag` is kept whatever this says.
    pub terminated_retention: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            graph_retention: "30d".into(),
            terminated_retention: "2d".into(),
        }
    }
}

/// `[rules]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// How late a record may arrive (behind the newest one read) and still be matched in
    /// event-time order, like `1h`. Records of several files and regions interleave.
    pub lag: String,
    /// Replaces the list `high_powered_instance_types` (instance types rules call
    /// high-powered; `*` matches any text); `[lists.high_powered_instance_types]` can also
    /// extend it.
    pub high_powered_instance_types: Option<Vec<String>>,
    /// Replaces the list `high_risk_apis` (CloudTrail calls as `service:Api` with `*`
    /// wildcards); `[lists.high_risk_apis]` can also extend it.
    pub high_risk_apis: Option<Vec<String>>,
    /// Signals kept per sequence (findings show at most 100).
    pub max_signals_per_sequence: usize,
    /// Let archived GuardDuty findings feed rules (they are left out by default).
    pub include_archived_findings: bool,
    /// A folder of Sigma rules for CloudTrail (`*.yml`, read recursively) whose matches
    /// become `sigma:<id>` signals; empty: none (`--sigma DIR` overrides it).
    pub sigma: String,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            lag: "1h".into(),
            high_powered_instance_types: None,
            high_risk_apis: None,
            max_signals_per_sequence: 200,
            include_archived_findings: false,
            sigma: String::new(),
        }
    }
}

/// `[input]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Decoder threads; 0 means one per core.
    pub threads: usize,
    /// Largest single record accepted, in MiB; larger ones are reported and skipped.
    pub max_record_mib: usize,
    /// Largest trail object read from S3, in MiB once decompressed (a body is held whole while
    /// it is decoded); a larger one is not read and stays pending, reported by every run.
    pub max_object_mib: usize,
    /// Keep GuardDuty sample findings (`service.additionalInfo.sample: true`), which are
    /// ignored by default because they name placeholder resources.
    pub keep_sample_findings: bool,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            threads: 0,
            max_record_mib: 64,
            max_object_mib: 1024,
            keep_sample_findings: false,
        }
    }
}

/// `[graph]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Which keys name an instance group, most specific first. Any of
    /// `auto_scaling_group`, `launch_template`, `cloudformation_stack`, `instance_profile`,
    /// `ami`, `vpc`; an instance with none of the listed keys belongs to no group.
    pub group_key_precedence: Vec<String>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            group_key_precedence: DEFAULT_GROUP_PRECEDENCE
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
        }
    }
}

/// Settings after validation.
#[derive(Clone, Debug)]
pub struct Settings {
    pub read: ReadOptions,
    pub group_precedence: Vec<EntityKind>,
    pub matching: MatchOptions,
    pub include_archived_findings: bool,
    /// `rules.sigma`: the folder of Sigma rules to load, if any.
    pub sigma: Option<std::path::PathBuf>,
    /// How long the state keeps graph statements.
    pub graph_retention: crate::time::Millis,
    /// How long after an instance's termination the state keeps what records said of it.
    pub terminated_retention: crate::time::Millis,
    pub aws: AwsSettings,
    /// `aws.shard`: only this shard's accounts are correlated (None: every account).
    pub shard: Option<crate::shard::Shard>,
    /// What is valid but doubtful (a region newer than the known list), for the log.
    pub warnings: Vec<String>,
}

/// `[aws]` after validation.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub regions: Vec<String>,
    /// From `aws.partition` or the regions' names; None: the caller's, at run time.
    pub partition: Option<String>,
    /// Where every AWS call is recorded (`CORRELATOR_RECORD_CALLS`), if anywhere.
    pub record_calls: Option<std::path::PathBuf>,
    /// The sources of `aws.sources`, each once, in the order they are polled.
    pub sources: Vec<crate::sources::SourceConfig>,
    pub reports: Option<String>,
    pub lookback: crate::time::Millis,
    pub overlap: crate::time::Millis,
    pub state: String,
    /// Where findings go (`aws.sink`, `aws.sink_file`).
    pub sink: crate::sinks::SinkConfig,
    /// The region findings are written for (`aws.securityhub_region`); None: the first region.
    pub securityhub_region: Option<String>,
    pub retry: RetryOptions,
    pub lease: crate::time::Millis,
    /// What the process's environment says about where it runs (for the state's lease).
    pub host: HostEnvironment,
}

/// How clients retry.
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff; later ones grow exponentially, with jitter.
    pub initial_backoff: std::time::Duration,
    /// An attempt that takes longer is abandoned and retried.
    pub attempt_timeout: std::time::Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 5,
            initial_backoff: std::time::Duration::from_secs(1),
            attempt_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Where the process runs, from its environment: handed to the S3 state's lease, which
/// records who holds the state so that a later run can tell whether the holder is gone.
#[derive(Clone, Debug, Default)]
pub struct HostEnvironment {
    /// `ECS_CONTAINER_METADATA_URI_V4`: set by ECS in every container of a task.
    pub ecs_metadata_uri: Option<String>,
    /// `HOSTNAME`, when exported.
    pub hostname: Option<String>,
}

/// A configuration that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config `{path}`: {message}")]
    Parse { path: String, message: String },
    #[error("config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads a TOML file, or returns the defaults when `path` is None.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`] (with line and column).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, std::env::vars())
    }

    /// Reads a TOML file (or the defaults), then applies `CORRELATOR_<SECTION>_<KEY>`
    /// variables from `env` over it (`CORRELATOR_AWS_REGIONS=us-east-1,eu-west-1`,
    /// `CORRELATOR_RULES_LAG=2h`). A value is read as TOML when it parses as TOML, else as
    /// text; text with commas is a list.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`] (with line and column, or the
    /// variable's name).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(path) => (
                crate::local_file::read_to_string(path, crate::local_file::CONFIG_MAX).map_err(
                    |source| ConfigError::Read {
                        path: path.display().to_string(),
                        source,
                    },
                )?,
                path.display().to_string(),
            ),
            None => (String::new(), "defaults".to_string()),
        };
        // The file alone first, so that its mistakes are reported with line and column.
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: origin.clone(),
            message,
        })?;
        let mut doc: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: origin.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut origins = Origins::default();
        for (section, table) in &doc {
            for key in table.as_table().into_iter().flat_map(|t| t.keys()) {
                origins
                    .keys
                    .insert(format!("{section}.{key}"), format!("`{origin}`"));
            }
        }
        let file_doc = doc.clone();
        let mut names = Vec::new();
        let mut host = HostEnvironment::default();
        let mut applied: Vec<(String, &'static str, String, toml::Value)> = Vec::new();
        for (name, value) in env {
            match name.as_str() {
                "ECS_CONTAINER_METADATA_URI_V4" if !value.is_empty() => {
                    host.ecs_metadata_uri = Some(value.clone());
                }
                "HOSTNAME" if !value.is_empty() => host.hostname = Some(value.clone()),
                "CORRELATOR_RECORD_CALLS" => {
                    origins.record_calls = Some(std::path::PathBuf::from(value));
                    continue;
                }
                _ => {}
            }
            let Some(rest) = name.strip_prefix("CORRELATOR_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = SECTIONS
                .iter()
                .find_map(|s| rest.strip_prefix(&format!("{s}_")).map(|k| (*s, k)))
            else {
                continue;
            };
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| {
                    if value.contains(',')
                        || LIST_KEYS.contains(&format!("{section}.{key}").as_str())
                    {
                        toml::Value::Array(
                            value
                                .split(',')
                                .map(|v| toml::Value::String(v.trim().to_string()))
                                .filter(|v| v.as_str() != Some(""))
                                .collect(),
                        )
                    } else {
                        toml::Value::String(value.clone())
                    }
                });
            let table = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(t) = table.as_table_mut() {
                t.insert(key.to_string(), parsed.clone());
            }
            origins
                .keys
                .insert(format!("{section}.{key}"), name.clone());
            applied.push((name.clone(), section, key.to_string(), parsed));
            names.push(name);
        }
        match Config::deserialize(toml::Value::Table(doc)) {
            Ok(mut config) => {
                config.origins = origins;
                config.host = host;
                Ok(config)
            }
            Err(e) => {
                // Name the variables whose values do not fit (each over the file alone);
                // the file itself parsed above.
                let culprits: Vec<String> = applied
                    .iter()
                    .filter(|(_, section, key, value)| {
                        let mut one = file_doc.clone();
                        let table = one
                            .entry(*section)
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        if let Some(t) = table.as_table_mut() {
                            t.insert(key.clone(), value.clone());
                        }
                        Config::deserialize(toml::Value::Table(one)).is_err()
                    })
                    .map(|(name, section, key, _)| format!("{name} ({section}.{key})"))
                    .collect();
                let names = if culprits.is_empty() { names } else { culprits };
                let origin = if names.is_empty() {
                    origin
                } else {
                    format!("{origin} with {}", names.join(", "))
                };
                Err(ConfigError::Parse {
                    path: origin,
                    message: e.to_string().trim_end().to_string(),
                })
            }
        }
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Checks every setting and reports every problem at once. No I/O.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing each problem.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let allowed = DEFAULT_GROUP_PRECEDENCE;
        let mut precedence = Vec::new();
        for name in &self.graph.group_key_precedence {
            match EntityKind::parse(name).filter(|k| allowed.contains(k)) {
                Some(k) if precedence.contains(&k) => problems.push(format!(
                    "graph.group_key_precedence: `{name}` is listed twice"
                )),
                Some(k) => precedence.push(k),
                None => problems.push(format!(
                    "graph.group_key_precedence: unknown key `{name}` (expected one of {})",
                    allowed.map(|k| k.as_str()).join(", ")
                )),
            }
        }
        if self.graph.group_key_precedence.is_empty() {
            problems.push("graph.group_key_precedence: must name at least one key".into());
        }
        if self.input.max_record_mib == 0 || self.input.max_record_mib > 1024 {
            problems.push(format!(
                "input.max_record_mib: {} is out of range (expected 1 to 1024)",
                self.input.max_record_mib
            ));
        }
        if self.input.max_object_mib == 0 || self.input.max_object_mib > 16384 {
            problems.push(format!(
                "input.max_object_mib: {} is out of range (expected 1 to 16384)",
                self.input.max_object_mib
            ));
        }
        let lag = match crate::time::parse_duration(&self.rules.lag) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("rules.lag: {e}"));
                0
            }
        };
        // The older `[rules]` keys replace their list; `[lists.NAME]` edits come after them.
        let mut list_edits: Vec<(String, crate::rules::lists::ListEdit)> = Vec::new();
        for (key, values) in [
            (
                crate::rules::lists::HIGH_POWERED_INSTANCE_TYPES,
                &self.rules.high_powered_instance_types,
            ),
            (
                crate::rules::lists::HIGH_RISK_APIS,
                &self.rules.high_risk_apis,
            ),
        ] {
            if let Some(v) = values {
                for x in v {
                    if let Err(e) = crate::rules::lists::check_value(key, x) {
                        problems.push(format!("rules.{e}"));
                    }
                }
                list_edits.push((
                    key.to_string(),
                    crate::rules::lists::ListEdit {
                        values: Some(v.clone()),
                        ..Default::default()
                    },
                ));
            }
        }
        for (name, edit) in &self.lists {
            if !crate::rules::lists::is_list(name) {
                let names: Vec<&str> = crate::rules::lists::NAMES.iter().map(|(n, _)| *n).collect();
                problems.push(format!(
                    "lists.{name}: no list is named {name:?} (lists: {})",
                    names.join(", ")
                ));
                continue;
            }
            for x in edit.values.iter().flatten().chain(&edit.add) {
                if let Err(e) = crate::rules::lists::check_value(name, x) {
                    problems.push(format!("lists.{e}"));
                }
            }
            list_edits.push((name.clone(), edit.clone()));
        }
        let graph_retention = match crate::time::parse_duration(&self.state.graph_retention) {
            Ok(r) if r > 0 => r,
            Ok(_) => {
                problems.push("state.graph_retention: must be longer than 0".into());
                0
            }
            Err(e) => {
                problems.push(format!("state.graph_retention: {e}"));
                0
            }
        };
        fn positive(problems: &mut Vec<String>, text: &str, what: &str) -> crate::time::Millis {
            match crate::time::parse_duration(text) {
                Ok(d) if d > 0 => d,
                Ok(_) => {
                    problems.push(format!("{what}: must be longer than 0"));
                    1
                }
                Err(e) => {
                    problems.push(format!("{what}: {e}"));
                    1
                }
            }
        }
        let reported = problems.len();
        let terminated_retention = positive(
            &mut problems,
            &self.state.terminated_retention,
            "state.terminated_retention",
        );
        if problems.len() == reported && terminated_retention < lag {
            problems.push(format!(
                "state.terminated_retention: must be at least rules.lag ({}): a record that \
                 arrives late may still name the instance",
                self.rules.lag
            ));
        }
        let b = &self.baselines;
        let baseline = crate::baseline::BaselineOptions {
            learning_period: positive(
                &mut problems,
                &b.learning_period,
                "baselines.learning_period",
            ),
            k: b.launch_rate_k,
            min_instances: b.launch_rate_min_instances,
            bucket: positive(
                &mut problems,
                &b.launch_rate_bucket,
                "baselines.launch_rate_bucket",
            ),
            retention: positive(&mut problems, &b.retention, "baselines.retention"),
        };
        if !(b.launch_rate_k.is_finite() && b.launch_rate_k > 0.0) {
            problems.push(format!(
                "baselines.launch_rate_k: {} is not a number above 0",
                b.launch_rate_k
            ));
        }
        if b.launch_rate_min_instances == 0 {
            problems.push("baselines.launch_rate_min_instances: must be at least 1".into());
        }
        let a = &self.aws;
        let lookback = positive(&mut problems, &a.lookback, "aws.lookback");
        let lease = positive(&mut problems, &a.lease, "aws.lease");
        let cloudtrail_delivery_delay = crate::time::parse_duration(&a.cloudtrail_delivery_delay)
            .unwrap_or_else(|e| {
                problems.push(format!("aws.cloudtrail_delivery_delay: {e}"));
                0
            });
        let attempt_timeout = positive(&mut problems, &a.attempt_timeout, "aws.attempt_timeout");
        let overlap = crate::time::parse_duration(&a.overlap).unwrap_or_else(|e| {
            problems.push(format!("aws.overlap: {e}"));
            0
        });
        let trail_overlap = crate::time::parse_duration(&a.trail_overlap).unwrap_or_else(|e| {
            problems.push(format!("aws.trail_overlap: {e}"));
            0
        });
        let queue_visibility = crate::time::parse_duration(&a.queue_visibility_timeout)
            .unwrap_or_else(|e| {
                problems.push(format!("aws.queue_visibility_timeout: {e}"));
                0
            });
        let queue_wait = crate::time::parse_duration(&a.queue_wait).unwrap_or_else(|e| {
            problems.push(format!("aws.queue_wait: {e}"));
            0
        });
        let initial_backoff = crate::time::parse_duration(&a.initial_backoff).unwrap_or_else(|e| {
            problems.push(format!("aws.initial_backoff: {e}"));
            0
        });
        let mut warnings = Vec::new();
        let partition = check_regions(a, &mut problems, &mut warnings);
        let shard = if a.shard.trim().is_empty() {
            None
        } else {
            a.shard
                .parse::<crate::shard::Shard>()
                .map_err(|e| problems.push(format!("aws.shard: {e}")))
                .ok()
        };
        let aws = crate::config::AwsSettings {
            regions: a.regions.clone(),
            partition,
            record_calls: self.origins.record_calls.clone(),
            sources: crate::sources::SourceConfig::from_keys(
                a,
                cloudtrail_delivery_delay,
                trail_overlap,
                (queue_visibility, queue_wait),
            ),
            reports: (!a.reports.is_empty()).then(|| a.reports.clone()),
            lookback,
            overlap,
            // Each shard keeps a state of its own.
            state: shard.map_or_else(|| a.state.clone(), |sh| sh.state_location(&a.state)),
            sink: crate::sinks::SinkConfig::from_keys(a).unwrap_or_else(|e| {
                problems.push(e);
                crate::sinks::SinkConfig::Stdout
            }),
            securityhub_region: (!a.securityhub_region.is_empty())
                .then(|| a.securityhub_region.clone()),
            retry: RetryOptions {
                max_attempts: a.max_attempts,
                initial_backoff: std::time::Duration::from_millis(initial_backoff.max(0) as u64),
                attempt_timeout: std::time::Duration::from_millis(attempt_timeout.max(1) as u64),
            },
            lease,
            host: self.host.clone(),
        };
        for src in &a.sources {
            if !crate::sources::SourceConfig::NAMES.contains(&src.as_str()) {
                problems.push(format!(
                    "aws.sources: unknown source {src:?} (expected guardduty, securityhub, cloudtrail, cloudtrail_s3 or sqs)"
                ));
            }
        }
        let has = |name: &str| a.sources.iter().any(|s| s == name);
        if has("sqs") {
            if let Err(e) = crate::sources::queue::check_queue_url(&a.queue) {
                problems.push(format!("aws.queue: {e} (needed by the sqs source)"));
            }
            if has("cloudtrail_s3") {
                problems.push(
                    "aws.sources: cloudtrail_s3 and sqs read the same trail objects (by listing, or as their notifications announce them): name one"
                        .into(),
                );
            }
            if !a.shard.trim().is_empty() {
                problems.push(
                    "aws.shard: the sqs source takes every account's notifications from one queue, which shards cannot divide: shard with the cloudtrail_s3 source, or run one unsharded task per queue"
                        .into(),
                );
            }
            // SQS takes 0 to 12 hours; less than a few seconds leaves no time to renew.
            if !(5_000..=12 * 3_600_000).contains(&queue_visibility) {
                problems.push(format!(
                    "aws.queue_visibility_timeout: {:?} is out of range (expected 5s to 12h)",
                    a.queue_visibility_timeout
                ));
            }
            if !(0..=20_000).contains(&queue_wait) {
                problems.push(format!(
                    "aws.queue_wait: {:?} is out of range (expected 0s to 20s)",
                    a.queue_wait
                ));
            }
            if a.queue_max_messages == 0 || a.queue_max_messages > 1_000_000 {
                problems.push(format!(
                    "aws.queue_max_messages: {} is out of range (expected 1 to 1000000)",
                    a.queue_max_messages
                ));
            }
        }
        if (has("sqs") && !a.trail.is_empty()) || has("cloudtrail_s3") {
            let folder = a
                .trail
                .strip_prefix("s3://")
                .and_then(|r| r.split_once('/'));
            match folder {
                Some((bucket, prefix))
                    if !bucket.is_empty() && (prefix.is_empty() || prefix.ends_with('/')) => {}
                _ => problems.push(format!(
                    "aws.trail: {:?} is not an s3://bucket/folder/ location (the cloudtrail_s3 source reads the trail there, the sqs source only objects under it; e.g. \"s3://my-trail/AWSLogs/\")",
                    a.trail
                )),
            }
        }
        if !a.reports.is_empty() {
            let folder = a
                .reports
                .strip_prefix("s3://")
                .and_then(|r| r.split_once('/'));
            if !matches!(folder, Some((b, p)) if !b.is_empty() && (p.is_empty() || p.ends_with('/')))
            {
                problems.push(format!(
                    "aws.reports: {:?} is not an s3://bucket/folder/ location",
                    a.reports
                ));
            }
        }
        for r in &a.trail_regions {
            if r.is_empty() || r.contains('/') {
                problems.push(format!(
                    "aws.trail_regions: {r:?} is not a region folder name (like \"eu-north-1\")"
                ));
            }
        }
        if a.trail_concurrency == 0 || a.trail_concurrency > 64 {
            problems.push(format!(
                "aws.trail_concurrency: {} is out of range (expected 1 to 64)",
                a.trail_concurrency
            ));
        }
        if a.sources.is_empty() {
            problems.push("aws.sources: name at least one source".into());
        }
        if let Err(e) = check_location(&a.state) {
            problems.push(format!("aws.state: {e}"));
        }
        if !a.sink_file.is_empty()
            && let Err(e) = check_local_path(&a.sink_file)
        {
            problems.push(format!("aws.sink_file: {e}"));
        }
        if a.state.is_empty() {
            problems.push("aws.state: give a path or s3://bucket/key".into());
        }
        if a.max_attempts == 0 || a.max_attempts > 20 {
            problems.push(format!(
                "aws.max_attempts: {} is out of range (expected 1 to 20)",
                a.max_attempts
            ));
        }
        for (what, v) in [
            ("aws.sink_calls_per_second", a.sink_calls_per_second),
            (
                "aws.cloudtrail_calls_per_second",
                a.cloudtrail_calls_per_second,
            ),
        ] {
            if !(v.is_finite() && v > 0.0) {
                problems.push(format!("{what}: {v} is not a number above 0"));
            }
        }
        if self.rules.max_signals_per_sequence == 0 {
            problems.push("rules.max_signals_per_sequence: must be at least 1".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(self.origins.label(problems)));
        }
        let mut read = ReadOptions {
            threads: self.input.threads,
            max_object_bytes: self.input.max_object_mib << 20,
            ..ReadOptions::default()
        };
        read.decode.max_record_bytes = self.input.max_record_mib << 20;
        read.decode.keep_sample_findings = self.input.keep_sample_findings;
        Ok(Settings {
            read,
            group_precedence: precedence,
            matching: MatchOptions {
                lag,
                lists: list_edits,
                max_signals_per_sequence: self.rules.max_signals_per_sequence,
                baseline,
            },
            include_archived_findings: self.rules.include_archived_findings,
            sigma: (!self.rules.sigma.trim().is_empty())
                .then(|| std::path::PathBuf::from(self.rules.sigma.trim())),
            graph_retention,
            terminated_retention,
            aws,
            shard,
            warnings: self.origins.label(warnings),
        })
    }
}

impl Origins {
    /// Prefixes each `section.key: message` with where the key's value came from: the file
    /// (`` `c.toml`: aws.regions: … ``) or the variable (`CORRELATOR_AWS_REGIONS: aws.regions:
    /// …`). Defaults get no prefix.
    fn label(&self, messages: Vec<String>) -> Vec<String> {
        messages
            .into_iter()
            .map(|m| {
                let key = m.split_once(':').map_or("", |(k, _)| k);
                match self.keys.get(key) {
                    Some(origin) => format!("{origin}: {m}"),
                    None => m,
                }
            })
            .collect()
    }
}

/// Checks `aws.regions`, `aws.securityhub_region` and `aws.partition`, and returns the
/// partition they give (None: no region configured, the SDK's region decides at run time).
/// A name that is not shaped like a region is an error; a region newer than the known list
/// (`data/partitions.json`) is a warning, since a run must still read it.
fn check_regions(
    a: &AwsConfig,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    use crate::regions::{self, Region};
    let configured = (!a.partition.is_empty()).then(|| a.partition.clone());
    if let Some(p) = &configured
        && !regions::is_partition(p)
    {
        problems.push(format!(
            "aws.partition: unknown partition {p:?} (expected one of {})",
            regions::partition_ids().join(", ")
        ));
    }
    let mut derived: Vec<(String, &'static str)> = Vec::new();
    let named = a.regions.iter().map(|r| ("aws.regions", r)).chain(
        (!a.securityhub_region.is_empty())
            .then_some(("aws.securityhub_region", &a.securityhub_region)),
    );
    for (key, r) in named {
        match regions::classify(r) {
            Region::Known(p) => derived.push((r.clone(), p)),
            Region::Unknown(p) => {
                warnings.push(format!(
                    "{key}: {r:?} is not a region this build knows (newer than its list, or a typo); it is used as given, in partition {p}"
                ));
                derived.push((r.clone(), p));
            }
            Region::NoPartition if configured.is_some() => warnings.push(format!(
                "{key}: {r:?} is not a region of any known partition; it is used as given, in aws.partition"
            )),
            Region::NoPartition => problems.push(format!(
                "{key}: {r:?} is not a region of any known partition (set aws.partition if it is new)"
            )),
            Region::Invalid => problems.push(format!(
                "{key}: {r:?} is not a region name (expected a name like \"us-east-1\")"
            )),
        }
    }
    let mut partitions: Vec<&str> = derived.iter().map(|(_, p)| *p).collect();
    partitions.sort_unstable();
    partitions.dedup();
    if let Some(p) = &configured {
        for (r, rp) in &derived {
            if rp != p {
                problems.push(format!(
                    "aws.partition: {p:?} does not hold region {r:?} (a region of {rp})"
                ));
            }
        }
        return Some(p.clone());
    }
    if partitions.len() > 1 {
        let list: Vec<String> = derived.iter().map(|(r, p)| format!("{r} in {p}")).collect();
        problems.push(format!(
            "aws.regions: regions of several partitions ({}); one run reads one partition",
            list.join(", ")
        ));
    }
    partitions.first().map(|p| p.to_string())
}

/// Whether text looks like a URL: `scheme:` at the start (`s3:`, `https:`), or `s3//`.
fn looks_like_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("s3/") || lower.starts_with("s3\\") {
        return true;
    }
    match text.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() >= 2
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Checks a state location: a local path or `s3://bucket/key`. Near-misses of `s3://`
/// (`s3:/bucket/key`, `S3://…`, `s3:bucket`, `s3//bucket`) and other URLs are errors, never
/// local paths.
///
/// # Errors
/// A message saying what was expected.
pub fn check_location(text: &str) -> Result<(), String> {
    if text.starts_with("s3://") {
        return text.parse::<crate::state::S3Location>().map(|_| ());
    }
    if looks_like_url(text) {
        return Err(format!(
            "{text:?} is neither a local path nor an s3://bucket/key location (expected \"s3://\" exactly)"
        ));
    }
    Ok(())
}

/// Checks a local file path: anything URL-like is an error (it would be created as a folder
/// named `s3:` or `https:`).
///
/// # Errors
/// A message saying what was expected.
pub fn check_local_path(text: &str) -> Result<(), String> {
    if looks_like_url(text) {
        return Err(format!(
            "{text:?} looks like a URL; expected a local file path"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Config::default().validate().unwrap();
        assert_eq!(s.group_precedence, DEFAULT_GROUP_PRECEDENCE.to_vec());
    }

    #[test]
    fn custom_precedence() {
        let c = Config::parse("[graph]\ngroup_key_precedence = [\"instance_profile\", \"vpc\"]\n")
            .unwrap();
        assert_eq!(
            c.validate().unwrap().group_precedence,
            vec![EntityKind::InstanceProfile, EntityKind::Vpc]
        );
    }

    #[test]
    fn environment_variables_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[aws]\nregions = [\"us-east-1\"]\nlookback = \"6h\"\n",
        )
        .unwrap();
        let env = [
            ("CORRELATOR_AWS_REGIONS", "eu-west-1,ap-southeast-3"),
            ("CORRELATOR_AWS_STATE", "s3://bucket/state.json"),
            ("CORRELATOR_RULES_LAG", "2h"),
            ("CORRELATOR_AWS_MAX_ATTEMPTS", "3"),
            ("CORRELATOR_CONFIG", "ignored.toml"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let c = Config::load_with_env(Some(&path), env).unwrap();
        assert_eq!(c.aws.regions, ["eu-west-1", "ap-southeast-3"]);
        assert_eq!(c.aws.lookback, "6h");
        assert_eq!(c.aws.state, "s3://bucket/state.json");
        assert_eq!(c.aws.max_attempts, 3);
        assert_eq!(c.rules.lag, "2h");
        let s = c.validate().unwrap();
        assert_eq!(s.matching.lag, 7_200_000);
        let bad =
            [("CORRELATOR_AWS_REGION", "us-east-1")].map(|(k, v)| (k.to_string(), v.to_string()));
        let e = Config::load_with_env(None, bad).unwrap_err().to_string();
        assert!(e.contains("CORRELATOR_AWS_REGION"), "{e}");
        assert!(e.contains("unknown field `region`"), "{e}");
    }

    #[test]
    fn aws_settings_are_checked() {
        let c = Config::parse(
            "[aws]\nsources = [\"guardduty\", \"vpcflow\"]\nsink = \"file\"\nstate = \"s3://bucket\"\n",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("unknown source \"vpcflow\""), "{e}");
        assert!(e.contains("aws.sink_file: needed"), "{e}");
        assert!(e.contains("aws.state:"), "{e}");
        let c = Config::parse(
            "[aws]\ntrail_regions = [\"eu-north-1\", \"eu/x\"]\ncloudtrail_delivery_delay = \"soon\"\n",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("aws.trail_regions: \"eu/x\""), "{e}");
        assert!(e.contains("aws.cloudtrail_delivery_delay:"), "{e}");
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn issue_12_region_names_are_checked_without_aws() {
        /// (regions, partition, error expected, warning expected, partition given)
        type Case<'a> = (
            &'a [&'a str],
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: [Case<'_>; 9] = [
            (&["us-east-1", "eu-west-1"], "", None, None, Some("aws")),
            (
                &["us-esat1"],
                "",
                Some("\"us-esat1\" is not a region name"),
                None,
                None,
            ),
            (&["US-EAST-1"], "", Some("is not a region name"), None, None),
            (
                &["ap-southeast-9"],
                "",
                None,
                Some("\"ap-southeast-9\" is not a region this build knows"),
                Some("aws"),
            ),
            (
                &["cn-north-1", "cn-northwest-1"],
                "",
                None,
                None,
                Some("aws-cn"),
            ),
            (&["us-gov-west-1"], "", None, None, Some("aws-us-gov")),
            (
                &["us-east-1", "cn-north-1"],
                "",
                Some("regions of several partitions (us-east-1 in aws, cn-north-1 in aws-cn)"),
                None,
                None,
            ),
            (
                &["cn-north-1"],
                "aws",
                Some("aws.partition: \"aws\" does not hold region \"cn-north-1\""),
                None,
                None,
            ),
            (
                &["zz-east-1"],
                "",
                Some("not a region of any known partition"),
                None,
                None,
            ),
        ];
        for (regions, partition, error, warning, given) in cases {
            let mut c = Config::default();
            c.aws.regions = regions.iter().map(|r| r.to_string()).collect();
            c.aws.partition = partition.to_string();
            match (c.validate(), error) {
                (Ok(s), None) => {
                    assert_eq!(s.aws.partition.as_deref(), given, "{regions:?}");
                    match warning {
                        Some(w) => assert!(
                            s.warnings.iter().any(|x| x.contains(w)),
                            "{regions:?}: {:?}",
                            s.warnings
                        ),
                        None => assert!(s.warnings.is_empty(), "{regions:?}: {:?}", s.warnings),
                    }
                }
                (Err(e), Some(want)) => {
                    let e = e.to_string();
                    assert!(e.contains(want), "{regions:?}: {e}");
                }
                (Ok(_), Some(want)) => panic!("{regions:?}: valid, expected {want:?}"),
                (Err(e), None) => panic!("{regions:?}: {e}"),
            }
        }
        let mut c = Config::default();
        c.aws.regions = vec!["us-east-1".into()];
        c.aws.securityhub_region = "us-east1".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("aws.securityhub_region: \"us-east1\" is not a region name"),
            "{e}"
        );
    }

    #[test]
    fn issue_12_near_misses_of_s3_are_errors_not_local_paths() {
        for bad in [
            "s3:/bucket/state.json",
            "s3:bucket/state.json",
            "S3://bucket/state.json",
            "s3//bucket/state.json",
            "s3:///state.json",
            "s3://bucket/",
            "s3a://bucket/state.json",
            "https://bucket.s3.amazonaws.com/state.json",
        ] {
            let mut c = Config::default();
            c.aws.state = bad.into();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("aws.state:"), "{bad}: {e}");
            assert!(check_location(bad).is_err(), "{bad}");
        }
        for good in [
            "s3://bucket/state.json",
            "correlator-state.json",
            "/var/lib/correlator/state.json",
            "./s3-state.json",
            "C:\\state\\state.json",
        ] {
            assert_eq!(check_location(good), Ok(()), "{good}");
        }
        let mut c = Config::default();
        c.aws.sink = "file".into();
        c.aws.sink_file = "s3:/bucket/findings.json".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("aws.sink_file: \"s3:/bucket/findings.json\" looks like a URL"),
            "{e}"
        );
    }

    #[test]
    fn issue_12_value_errors_name_the_file_or_variable_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[aws]\nregions = [\"us-east1\"]\nstate = \"s3:/bucket/state.json\"\n",
        )
        .unwrap();
        let file = path.display().to_string();
        let e = Config::load_with_env(Some(&path), env(&[("CORRELATOR_AWS_LEASE", "soon")]))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("`{file}`: aws.regions: \"us-east1\"")),
            "{e}"
        );
        assert!(
            e.contains(&format!("`{file}`: aws.state: \"s3:/bucket/state.json\"")),
            "{e}"
        );
        assert!(e.contains("CORRELATOR_AWS_LEASE: aws.lease:"), "{e}");
        // A variable overrides the file, and then is named instead.
        let c = Config::load_with_env(
            Some(&path),
            env(&[("CORRELATOR_AWS_REGIONS", "eu-west-1,euwest2")]),
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("CORRELATOR_AWS_REGIONS: aws.regions: \"euwest2\""),
            "{e}"
        );
        // A value of the wrong type names its variable among several.
        let e = Config::load_with_env(
            None,
            env(&[
                ("CORRELATOR_AWS_LEASE", "2h"),
                ("CORRELATOR_AWS_MAX_ATTEMPTS", "many"),
                ("CORRELATOR_RULES_LAG", "2h"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("with CORRELATOR_AWS_MAX_ATTEMPTS (aws.max_attempts)"),
            "{e}"
        );
        assert!(!e.contains("CORRELATOR_RULES_LAG"), "{e}");
        // Unset keys have no origin; the call recorder is handed on, not read elsewhere.
        let c =
            Config::load_with_env(None, env(&[("CORRELATOR_RECORD_CALLS", "/tmp/calls")])).unwrap();
        let s = c.validate().unwrap();
        assert_eq!(
            s.aws.record_calls.as_deref(),
            Some(std::path::Path::new("/tmp/calls"))
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Config::parse("[graph]\ngroup_by = 1\n").unwrap_err();
        assert!(e.contains("unknown field `group_by`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let c =
            Config::parse("[graph]\ngroup_key_precedence = [\"asg\", \"vpc\", \"vpc\"]\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("unknown key `asg`"), "{e}");
        assert!(e.contains("`vpc` is listed twice"), "{e}");
        let c = Config::parse("[state]\nterminated_retention = \"0h\"\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("state.terminated_retention: must be longer than 0"),
            "{e}"
        );
        let c = Config::parse("[state]\nterminated_retention = \"a week\"\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("state.terminated_retention:"), "{e}");
        let c = Config::parse("[state]\nterminated_retention = \"30m\"\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("must be at least rules.lag (1h)"), "{e}");
    }

    #[test]
    fn issue_15_the_sink_and_sources_are_built_from_the_aws_keys() {
        use crate::sinks::SinkConfig;
        use crate::sources::{QueueConfig, SourceConfig};
        // (the [aws] keys, the sink, or the error it gives)
        let sinks: [(&str, Result<SinkConfig, &str>); 7] = [
            (
                "",
                Ok(SinkConfig::SecurityHub {
                    region: None,
                    calls_per_second: 10.0,
                }),
            ),
            (
                "sink = \"securityhub\"\nsecurityhub_region = \"eu-west-1\"\nsink_calls_per_second = 4.0",
                Ok(SinkConfig::SecurityHub {
                    region: Some("eu-west-1".into()),
                    calls_per_second: 4.0,
                }),
            ),
            (
                "sink = \"file\"\nsink_file = \"out/findings.json\"",
                Ok(SinkConfig::File("out/findings.json".into())),
            ),
            ("sink = \"stdout\"", Ok(SinkConfig::Stdout)),
            (
                "sink = \"file\"",
                Err("aws.sink_file: needed when aws.sink is \"file\""),
            ),
            (
                "sink = \"kafka\"",
                Err("aws.sink: unknown sink \"kafka\" (expected securityhub, file or stdout)"),
            ),
            (
                "sink = \"Security Hub\"",
                Err("aws.sink: unknown sink \"Security Hub\""),
            ),
        ];
        for (keys, expected) in sinks {
            let c = Config::parse(&format!("[aws]\n{keys}\n")).unwrap();
            match (c.validate(), expected) {
                (Ok(s), Ok(sink)) => assert_eq!(s.aws.sink, sink, "{keys}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{keys}: {e}"),
                (got, want) => panic!("{keys}: got {got:?}, expected {want:?}"),
            }
        }
        // Sources: each once, in the order they are polled, whatever order the keys give.
        let sources: [(&str, Vec<SourceConfig>); 5] = [
            (
                "",
                vec![
                    SourceConfig::GuardDuty,
                    SourceConfig::CloudTrailLookup {
                        calls_per_second: 2.0,
                        delivery_delay: 15 * 60_000,
                    },
                ],
            ),
            (
                "sources = [\"cloudtrail_s3\", \"securityhub\", \"guardduty\", \"guardduty\"]\ntrail = \"s3://t/AWSLogs/\"\ntrail_regions = [\"eu-north-1\"]\ntrail_concurrency = 3",
                vec![
                    SourceConfig::GuardDuty,
                    SourceConfig::SecurityHub,
                    SourceConfig::CloudTrailS3 {
                        trail: "s3://t/AWSLogs/".into(),
                        regions: vec!["eu-north-1".into()],
                        concurrency: 3,
                        overlap: 15 * 60_000,
                    },
                ],
            ),
            (
                "sources = [\"cloudtrail\"]\ncloudtrail_calls_per_second = 1.5\ncloudtrail_delivery_delay = \"5m\"",
                vec![SourceConfig::CloudTrailLookup {
                    calls_per_second: 1.5,
                    delivery_delay: 5 * 60_000,
                }],
            ),
            (
                "sources = [\"sqs\", \"guardduty\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/111122223333/trail\"\ntrail = \"s3://t/AWSLogs/\"\nqueue_wait = \"0s\"",
                vec![
                    SourceConfig::GuardDuty,
                    SourceConfig::Sqs(QueueConfig {
                        queue: "https://sqs.eu-west-1.amazonaws.com/111122223333/trail".into(),
                        trail: Some(("t".into(), "AWSLogs/".into())),
                        regions: Vec::new(),
                        concurrency: 8,
                        max_messages: 20_000,
                        visibility: 10 * 60_000,
                        wait: 0,
                    }),
                ],
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"http://127.0.0.1:5000/123456789012/q\"\nqueue_max_messages = 5\nqueue_visibility_timeout = \"30s\"",
                vec![SourceConfig::Sqs(QueueConfig {
                    queue: "http://127.0.0.1:5000/123456789012/q".into(),
                    trail: None,
                    regions: Vec::new(),
                    concurrency: 8,
                    max_messages: 5,
                    visibility: 30_000,
                    wait: 2_000,
                })],
            ),
        ];
        for (keys, expected) in sources {
            let s = Config::parse(&format!("[aws]\n{keys}\n"))
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{keys}: {e}"));
            assert_eq!(s.aws.sources, expected, "{keys}");
            let names: Vec<&str> = s.aws.sources.iter().map(SourceConfig::name).collect();
            assert!(
                names.iter().all(|n| SourceConfig::NAMES.contains(n)),
                "{keys}: {names:?}"
            );
        }
        let e = Config::parse("[aws]\nsources = [\"guardduty\", \"vpcflow\"]\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("aws.sources: unknown source \"vpcflow\""), "{e}");
        for (keys, msg) in [
            ("sources = [\"sqs\"]", "aws.queue: \"\" is not a queue URL"),
            (
                "sources = [\"sqs\", \"cloudtrail_s3\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\ntrail = \"s3://t/\"",
                "cloudtrail_s3 and sqs read the same trail objects",
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\nshard = \"1/2\"",
                "shards cannot divide",
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\nqueue_visibility_timeout = \"1s\"",
                "aws.queue_visibility_timeout: \"1s\" is out of range",
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\nqueue_wait = \"21s\"",
                "aws.queue_wait: \"21s\" is out of range",
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\nqueue_max_messages = 0",
                "aws.queue_max_messages: 0 is out of range",
            ),
            (
                "sources = [\"sqs\"]\nqueue = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\ntrail = \"s3://t\"",
                "aws.trail: \"s3://t\" is not an s3://bucket/folder/ location",
            ),
        ] {
            let e = Config::parse(&format!("[aws]\n{keys}\n"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains(msg), "{keys}: {e}");
        }
    }
}
