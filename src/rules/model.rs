//! The rule file format, as serde structs. `correlation-rules/README.md` documents it for rule
//! writers; [`super::compile`] checks what serde cannot (names that must exist, patterns,
//! durations) and turns a rule into its runtime form.
//!
//! Values that later checks may reject are [`Spanned`], so every error can point at a line
//! and column.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// kebab-case, equal to the file name without `.yaml`.
    pub id: Spanned<String>,
    pub title: String,
    pub description: String,
    /// `INFORMATIONAL`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub severity: Spanned<String>,
    /// 0–100: how sure a match is an attack, before weak signals raise it.
    #[serde(default)]
    pub confidence: Option<Spanned<u8>>,
    /// MITRE ATT&CK tactics and techniques.
    #[serde(default)]
    pub attack: Attack,
    /// ASFF `Types`: `namespace/category/classifier`.
    pub types: Vec<Spanned<String>>,
    /// What an analyst should do; becomes the finding's remediation text.
    pub runbook: String,
    /// A URL for the remediation (optional).
    #[serde(default)]
    pub runbook_url: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    /// `finding` (written to Security Hub) or `weak_signal` (fed to other rules only).
    #[serde(default)]
    pub emit: Option<Spanned<String>>,
    /// Named selectors; a signal that matches one becomes a stage of the rule.
    pub stages: Vec<Stage>,
    /// `instance_group`, `principal`, `account` or `access_key`.
    pub group_by: Spanned<String>,
    /// Sliding window in event time, like `24h`.
    pub window: Spanned<String>,
    pub condition: Condition,
    #[serde(default)]
    pub allowlist: Allowlist,
    /// After a sequence, later matches for the same group within this time extend it
    /// instead of opening a new one.
    #[serde(default)]
    pub suppress: Option<Spanned<String>>,
    /// Overrides of the `[baselines]` settings for this rule's `first_seen` and
    /// `launch_rate_outlier` conditions.
    #[serde(default)]
    pub baseline: Option<BaselineSection>,
    /// Which rules' sequences this rule's sequences absorb when both are about one attack
    /// (see `correlation-rules/README.md`, Roll-up).
    #[serde(default)]
    pub rollup: Option<RollupSection>,
    /// Inline tests: records and the expected verdict.
    #[serde(default)]
    pub tests: Vec<RuleTest>,
}

/// `rollup:` of a rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupSection {
    /// Rule ids, `*` matching any text, whose sequences this rule's sequences may absorb;
    /// default `["*"]`, an empty list absorbs nothing.
    #[serde(default)]
    pub absorbs: Option<Vec<Spanned<String>>>,
}

/// `baseline:` of a rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSection {
    /// No alerts until an account has been learned this long, like `14d`.
    #[serde(default)]
    pub learning_period: Option<Spanned<String>>,
    /// Launch-rate outliers lie above mean + k·σ.
    #[serde(default)]
    pub k: Option<Spanned<f64>>,
    /// Launch-rate outliers need at least this many instances in one bucket.
    #[serde(default)]
    pub min_instances: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    #[serde(default)]
    pub tactics: Vec<String>,
    /// `T1496 - Resource Hijacking`, as GuardDuty writes them.
    #[serde(default)]
    pub techniques: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: Spanned<String>,
    /// Weak stages join a sequence and raise its confidence, but never satisfy the condition.
    #[serde(default)]
    pub weak: bool,
    /// Absent stages must have no signal in the group's window when a sequence opens.
    #[serde(default)]
    pub absent: Option<Spanned<bool>>,
    pub select: Selector,
}

/// Everything a signal must satisfy to be selected (all given parts must hold).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// `guardduty`, `securityhub`, `cloudtrail`.
    #[serde(default)]
    pub source: Vec<Spanned<String>>,
    /// GuardDuty finding types, `*` matching any text (`CryptoCurrency:*`).
    #[serde(default)]
    pub finding_types: Vec<Spanned<String>>,
    /// CloudTrail events as `eventSource:eventName` or `eventName`, with `*` wildcards.
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    /// Signals of other rules (`rule:<id>` kinds), by rule id.
    #[serde(default)]
    pub rules: Vec<Spanned<String>>,
    /// Only CloudTrail calls in the configured list of high-risk APIs.
    #[serde(default)]
    pub high_risk_api: bool,
    /// Only launches with a value the account has never launched with (after learning):
    /// any of `region`, `ami`, `instance_type`, `principal`.
    #[serde(default)]
    pub first_seen: Vec<Spanned<String>>,
    /// Only launches that bring their launcher's instances in the current bucket above its
    /// own mean + k·σ.
    #[serde(default)]
    pub launch_rate_outlier: bool,
    /// Only launches: successful calls of an API in the launch catalog
    /// (`correlation-rules/launches/`), whatever API bought the compute.
    #[serde(default)]
    pub launch: bool,
    /// Signals of the loaded Sigma rules (`sigma:<id>` kinds).
    #[serde(default)]
    pub sigma: Option<SigmaSelect>,
    /// Field conditions.
    #[serde(default, rename = "where")]
    pub conditions: Vec<FieldCondition>,
}

/// `sigma:` of a selector: which Sigma rules' matches it takes (every part given must hold;
/// `{}` takes them all).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaSelect {
    /// Sigma rule ids; each must be loaded.
    #[serde(default)]
    pub ids: Vec<Spanned<String>>,
    /// Sigma tags (`attack.impact`, `attack.t1496`, `*` matching any text); one must match.
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    /// `informational`, `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    pub level_at_least: Option<Spanned<String>>,
}

/// One test of a named field (exactly one operator; `negate` inverts the result), or a group
/// of conditions: `any` (one of them holds), `all` (every one holds) or `not` (it does not
/// hold), nested as deep as a rule needs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    #[serde(default)]
    pub field: Option<Spanned<String>>,
    #[serde(default)]
    pub any: Option<Spanned<Vec<FieldCondition>>>,
    #[serde(default)]
    pub all: Option<Spanned<Vec<FieldCondition>>>,
    #[serde(default)]
    pub not: Option<Spanned<Box<FieldCondition>>>,
    #[serde(default)]
    pub equals: Option<Spanned<ScalarValue>>,
    #[serde(default)]
    pub one_of: Option<Spanned<Vec<ScalarValue>>>,
    #[serde(default)]
    pub prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub suffix: Option<Spanned<String>>,
    #[serde(default)]
    pub contains: Option<Spanned<String>>,
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub gt: Option<Spanned<f64>>,
    #[serde(default)]
    pub gte: Option<Spanned<f64>>,
    #[serde(default)]
    pub lt: Option<Spanned<f64>>,
    #[serde(default)]
    pub lte: Option<Spanned<f64>>,
    #[serde(default)]
    pub exists: Option<Spanned<bool>>,
    /// The value is an instance type in the configured high-powered list.
    #[serde(default)]
    pub high_powered: Option<Spanned<bool>>,
    #[serde(default)]
    pub negate: bool,
}

/// A YAML scalar to compare with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// When the signals of one group in one window are a sequence. All given parts must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// At least this many distinct (non-weak) stages.
    #[serde(default)]
    pub distinct_stages: Option<Spanned<u32>>,
    /// Stages that must each have matched.
    #[serde(default)]
    pub require: Vec<Spanned<String>>,
    /// Stages whose first matches must come in this order.
    #[serde(default)]
    pub ordered: Vec<Spanned<String>>,
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
}

/// `count` of matched signals, `distinct` values of a field, or `sum` of a field, over one
/// stage (or all non-weak stages), at least `at_least`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default)]
    pub count: bool,
    #[serde(default)]
    pub distinct: Option<Spanned<String>>,
    #[serde(default)]
    pub sum: Option<Spanned<String>>,
    #[serde(default)]
    pub stage: Option<Spanned<String>>,
    pub at_least: Spanned<f64>,
}

/// Signals to leave out of the rule entirely.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    /// Principal ids or ARNs (`*` wildcards).
    #[serde(default)]
    pub principals: Vec<Spanned<String>>,
    /// IAM role names or ARNs behind role sessions (`*` wildcards).
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    /// `userIdentity.invokedBy` service principals (`autoscaling.amazonaws.com`).
    #[serde(default)]
    pub invoked_by: Vec<Spanned<String>>,
    #[serde(default)]
    pub accounts: Vec<Spanned<String>>,
    /// Instance tags `key: value` (`*` wildcards in values): a signal about, or by the
    /// credentials of, an instance with such a tag is left out.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// An inline rule test.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    /// CloudTrail records or findings, written as YAML (any shape the decoders read).
    pub records: Vec<serde_json::Value>,
    pub expect: Expect,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How many sequences the rule yields on the records.
    pub sequences: usize,
    /// When given: how many signals the (single) sequence holds.
    #[serde(default)]
    pub signals: Option<usize>,
    /// When given: the group key of every sequence (`auto_scaling_group/web-asg`).
    #[serde(default)]
    pub group: Option<String>,
}
