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
}

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
    /// How long what records said about instances and sessions (their groups, who launched
    /// them) is kept for later runs, like `30d`.
    pub graph_retention: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            graph_retention: "30d".into(),
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
    /// Instance types rules call high-powered (`high_powered` conditions,
    /// `launched_high_powered_*` fields); `*` matches any text.
    pub high_powered_instance_types: Vec<String>,
    /// CloudTrail calls rules call high-risk (`high_risk_api` selectors), as
    /// `service:Api` with `*` wildcards (`iam:CreateAccessKey`, `cloudtrail:*Trail*`).
    pub high_risk_apis: Vec<String>,
    /// Signals kept per sequence (findings show at most 100).
    pub max_signals_per_sequence: usize,
    /// Let archived GuardDuty findings feed rules (they are left out by default).
    pub include_archived_findings: bool,
}

/// Accelerated-computing families (GPU, ML accelerators, FPGA) and the largest sizes of any
/// family: what cryptominers launch. No AWS list exists; see FORMATS.md §4.1.
pub const DEFAULT_HIGH_POWERED: [&str; 20] = [
    "p*",
    "g*",
    "trn*",
    "inf*",
    "dl*",
    "f1.*",
    "f2.*",
    "vt1.*",
    "hpc*",
    "*.metal*",
    "*.12xlarge",
    "*.16xlarge",
    "*.18xlarge",
    "*.24xlarge",
    "*.32xlarge",
    "*.48xlarge",
    "*.56xlarge",
    "*.96xlarge",
    "*.112xlarge",
    "*.224xlarge",
];

/// API calls that change who can do what, hide activity, open the network, or run code on
/// instances: what GuardDuty's attack sequences call high-risk.
pub const DEFAULT_HIGH_RISK_APIS: [&str; 36] = [
    "cloudtrail:DeleteTrail",
    "cloudtrail:StopLogging",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "guardduty:DeleteDetector",
    "guardduty:UpdateDetector",
    "guardduty:DisassociateFromMasterAccount",
    "guardduty:DisassociateFromAdministratorAccount",
    "organizations:LeaveOrganization",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateRole",
    "iam:AddUserToGroup",
    "sts:GetFederationToken",
    "ec2:CreateKeyPair",
    "ec2:ImportKeyPair",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:ModifyInstanceAttribute",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:DeleteFlowLogs",
    "ec2:GetPasswordData",
    "ssm:SendCommand",
    "ssm:StartSession",
    "lambda:CreateFunction*",
    "lambda:UpdateFunctionCode*",
    "autoscaling:UpdateAutoScalingGroup",
];

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            lag: "1h".into(),
            high_powered_instance_types: DEFAULT_HIGH_POWERED
                .iter()
                .map(|s| s.to_string())
                .collect(),
            high_risk_apis: DEFAULT_HIGH_RISK_APIS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_signals_per_sequence: 200,
            include_archived_findings: false,
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
    /// Keep GuardDuty sample findings (`service.additionalInfo.sample: true`), which are
    /// ignored by default because they name placeholder resources.
    pub keep_sample_findings: bool,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            threads: 0,
            max_record_mib: 64,
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
    /// How long the state keeps graph statements.
    pub graph_retention: crate::time::Millis,
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
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
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
        let lag = match crate::time::parse_duration(&self.rules.lag) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("rules.lag: {e}"));
                0
            }
        };
        if self
            .rules
            .high_powered_instance_types
            .iter()
            .any(|p| p.is_empty())
        {
            problems.push("rules.high_powered_instance_types: empty pattern".into());
        }
        for api in &self.rules.high_risk_apis {
            if !api.contains(':') {
                problems.push(format!(
                    "rules.high_risk_apis: {api:?} is not `service:Api` (e.g. \"iam:CreateAccessKey\")"
                ));
            }
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
        let mut positive = |text: &str, what: &str| match crate::time::parse_duration(text) {
            Ok(d) if d > 0 => d,
            Ok(_) => {
                problems.push(format!("{what}: must be longer than 0"));
                1
            }
            Err(e) => {
                problems.push(format!("{what}: {e}"));
                1
            }
        };
        let b = &self.baselines;
        let baseline = crate::baseline::BaselineOptions {
            learning_period: positive(&b.learning_period, "baselines.learning_period"),
            k: b.launch_rate_k,
            min_instances: b.launch_rate_min_instances,
            bucket: positive(&b.launch_rate_bucket, "baselines.launch_rate_bucket"),
            retention: positive(&b.retention, "baselines.retention"),
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
        if self.rules.max_signals_per_sequence == 0 {
            problems.push("rules.max_signals_per_sequence: must be at least 1".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let mut read = ReadOptions {
            threads: self.input.threads,
            ..ReadOptions::default()
        };
        read.decode.max_record_bytes = self.input.max_record_mib << 20;
        read.decode.keep_sample_findings = self.input.keep_sample_findings;
        Ok(Settings {
            read,
            group_precedence: precedence,
            matching: MatchOptions {
                lag,
                high_powered_instance_types: self.rules.high_powered_instance_types.clone(),
                high_risk_apis: self.rules.high_risk_apis.clone(),
                max_signals_per_sequence: self.rules.max_signals_per_sequence,
                baseline,
            },
            include_archived_findings: self.rules.include_archived_findings,
            graph_retention,
        })
    }
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
    fn errors_name_the_problem() {
        let e = Config::parse("[graph]\ngroup_by = 1\n").unwrap_err();
        assert!(e.contains("unknown field `group_by`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let c =
            Config::parse("[graph]\ngroup_key_precedence = [\"asg\", \"vpc\", \"vpc\"]\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("unknown key `asg`"), "{e}");
        assert!(e.contains("`vpc` is listed twice"), "{e}");
    }
}
