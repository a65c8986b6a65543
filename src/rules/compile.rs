//! Rule file → runtime [`Rule`]: every name resolved, every pattern compiled, every problem
//! reported with `file:line:column` and what was expected.

use regex::Regex;
use serde_saphyr::Spanned;

use super::fields::{Field, FieldContext, Value};
use super::model::{self, RuleFile, ScalarValue};
use crate::baseline::{BaselineOptions, BaselineParams, Dimension, Facts};
use crate::signal::{Signal, Source};
use crate::time::{self, Millis};

/// A problem in a rule, pointing at the place in its file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// A `*` wildcard pattern (case-sensitive; `*` matches any text, also empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<String>,
    anchored_start: bool,
    anchored_end: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            parts: pattern.split('*').map(str::to_string).collect(),
            anchored_start: !pattern.starts_with('*'),
            anchored_end: !pattern.ends_with('*'),
        }
    }

    /// The text the pattern matches when it has no wildcard.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        if self.parts.len() == 1 {
            return self.parts[0] == s;
        }
        let mut rest = s;
        let last = self.parts.len() - 1;
        for (i, part) in self.parts.iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            if i == 0 && self.anchored_start {
                match rest.strip_prefix(part.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i == last && self.anchored_end {
                return rest.len() >= part.len() && rest.ends_with(part.as_str());
            } else {
                match rest.find(part.as_str()) {
                    Some(at) => rest = &rest[at + part.len()..],
                    None => return false,
                }
            }
        }
        true
    }
}

/// Patterns matched often (per record): the exact ones in a hash set, the wildcard ones
/// tried in turn.
#[derive(Clone, Debug, Default)]
pub struct PatternSet {
    exact: rustc_hash::FxHashSet<String>,
    wildcard: Vec<Glob>,
}

impl PatternSet {
    pub fn new<'p>(patterns: impl IntoIterator<Item = &'p str>) -> PatternSet {
        let mut set = PatternSet::default();
        for p in patterns {
            if p.contains('*') {
                set.wildcard.push(Glob::new(p));
            } else {
                set.exact.insert(p.to_string());
            }
        }
        set
    }

    pub fn matches(&self, s: &str) -> bool {
        self.exact.contains(s) || self.wildcard.iter().any(|g| g.matches(s))
    }
}

/// ASFF severity labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Label {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Informational => "INFORMATIONAL",
            Label::Low => "LOW",
            Label::Medium => "MEDIUM",
            Label::High => "HIGH",
            Label::Critical => "CRITICAL",
        }
    }

    /// GuardDuty's numeric scale (for signals and `FindingProviderFields`).
    pub fn score(self) -> f64 {
        match self {
            Label::Informational => 0.0,
            Label::Low => 2.0,
            Label::Medium => 5.0,
            Label::High => 8.0,
            Label::Critical => 9.0,
        }
    }
}

/// What a rule's match is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Emit {
    Finding,
    WeakSignal,
}

/// What a rule groups signals by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    InstanceGroup,
    Principal,
    Account,
    AccessKey,
    /// Any normalized field: one group per value (per element of a list field); signals
    /// without the field are not grouped by the rule.
    Field(Field),
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::InstanceGroup => "instance_group",
            GroupBy::Principal => "principal",
            GroupBy::Account => "account",
            GroupBy::AccessKey => "access_key",
            GroupBy::Field(f) => f.name(),
        }
    }
}

impl serde::Serialize for GroupBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A compiled field condition.
#[derive(Clone, Debug)]
pub struct Cond {
    pub field: Field,
    pub op: Op,
    pub negate: bool,
}

#[derive(Clone, Debug)]
pub enum Op {
    Equals(ScalarValue),
    OneOf(Vec<ScalarValue>),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Exists(bool),
    HighPowered(bool),
}

impl Cond {
    pub fn eval(&self, s: &Signal, ctx: &FieldContext<'_>) -> bool {
        let v = self.field.get(s, ctx);
        let hit = match (&self.op, &v) {
            (Op::Exists(want), v) => (*v != Value::Absent) == *want,
            (_, Value::Absent) => false,
            (op, Value::List(items)) => items.iter().any(|i| op_text(op, i, ctx)),
            (op, Value::Text(t)) => op_text(op, t, ctx),
            (op, Value::Number(n)) => op_number(op, *n),
            (op, Value::Bool(b)) => match op {
                Op::Equals(ScalarValue::Bool(x)) => b == x,
                Op::OneOf(xs) => xs.contains(&ScalarValue::Bool(*b)),
                _ => false,
            },
        };
        hit != self.negate
    }
}

/// A compiled `where` entry: a field condition, or a group of them.
#[derive(Clone, Debug)]
pub enum Check {
    Field(Cond),
    /// One of them holds.
    Any(Vec<Check>),
    /// Every one holds.
    All(Vec<Check>),
    /// It does not hold.
    Not(Box<Check>),
}

impl Check {
    pub fn eval(&self, s: &Signal, ctx: &FieldContext<'_>) -> bool {
        match self {
            Check::Field(c) => c.eval(s, ctx),
            Check::Any(list) => list.iter().any(|c| c.eval(s, ctx)),
            Check::All(list) => list.iter().all(|c| c.eval(s, ctx)),
            Check::Not(c) => !c.eval(s, ctx),
        }
    }
}

fn op_text(op: &Op, t: &str, ctx: &FieldContext<'_>) -> bool {
    match op {
        Op::Equals(ScalarValue::Text(x)) => t == x,
        Op::Equals(ScalarValue::Number(x)) => t.parse::<f64>().is_ok_and(|n| n == *x),
        Op::Equals(ScalarValue::Bool(_)) => false,
        Op::OneOf(xs) => xs.iter().any(|x| match x {
            ScalarValue::Text(x) => t == x,
            ScalarValue::Number(x) => t.parse::<f64>().is_ok_and(|n| n == *x),
            ScalarValue::Bool(_) => false,
        }),
        Op::Prefix(p) => t.starts_with(p.as_str()),
        Op::Suffix(p) => t.ends_with(p.as_str()),
        Op::Contains(p) => t.contains(p.as_str()),
        Op::Regex(r) => r.is_match(t),
        Op::HighPowered(want) => ctx.is_high_powered(t) == *want,
        Op::Gt(_) | Op::Gte(_) | Op::Lt(_) | Op::Lte(_) => {
            t.parse::<f64>().is_ok_and(|n| op_number(op, n))
        }
        Op::Exists(_) => true,
    }
}

fn op_number(op: &Op, n: f64) -> bool {
    match op {
        Op::Gt(x) => n > *x,
        Op::Gte(x) => n >= *x,
        Op::Lt(x) => n < *x,
        Op::Lte(x) => n <= *x,
        Op::Equals(ScalarValue::Number(x)) => n == *x,
        Op::OneOf(xs) => xs.contains(&ScalarValue::Number(n)),
        _ => false,
    }
}

/// A compiled selector.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub sources: Vec<Source>,
    pub finding_types: Vec<Glob>,
    /// (event source glob or None, event name glob).
    pub events: Vec<(Option<Glob>, Glob)>,
    pub rules: Vec<String>,
    pub high_risk_api: bool,
    /// `where`: field conditions and `any`/`all`/`not` groups, all of which must hold.
    pub conditions: Vec<Check>,
    /// Launch dimensions of which one must be new to the account.
    pub first_seen: Vec<Dimension>,
    pub launch_rate_outlier: bool,
    /// Only launches (signals with `fields.launch`).
    pub launch: bool,
    /// Signals of Sigma rules (`sigma:<id>`).
    pub sigma: Option<SigmaSelector>,
    /// The rule's overrides of the baseline settings.
    pub baseline: BaselineParams,
}

/// A compiled `sigma:` selector. What it selects depends on the Sigma rules loaded:
/// [`SigmaSelector::resolve`] lists their ids in `selected`.
#[derive(Clone, Debug, Default)]
pub struct SigmaSelector {
    /// Ids named, with where (line, column).
    pub ids: Vec<(String, u64, u64)>,
    /// Tag patterns, lowercase.
    pub tags: Vec<Glob>,
    pub level_at_least: Option<crate::sigma::Level>,
    /// Ids of the loaded Sigma rules it selects.
    pub selected: rustc_hash::FxHashSet<String>,
}

impl SigmaSelector {
    /// Selects the loaded rules that satisfy every part; returns the named ids not loaded.
    pub fn resolve(&mut self, set: &crate::sigma::SigmaSet) -> Vec<(String, u64, u64)> {
        let missing = self
            .ids
            .iter()
            .filter(|(id, _, _)| set.get(id).is_none())
            .cloned()
            .collect();
        self.selected = set
            .rules
            .iter()
            .filter(|r| self.ids.is_empty() || self.ids.iter().any(|(id, _, _)| *id == r.id))
            .filter(|r| {
                self.tags.is_empty()
                    || r.tags
                        .iter()
                        .any(|t| self.tags.iter().any(|g| g.matches(t)))
            })
            .filter(|r| self.level_at_least.is_none_or(|l| r.level >= l))
            .map(|r| r.id.clone())
            .collect();
        missing
    }
}

/// Settings selectors depend on.
pub struct SelectContext<'a> {
    pub fields: FieldContext<'a>,
    /// `service:Api` globs (`iam:CreateAccessKey`, `cloudtrail:*Trail*`).
    pub high_risk_apis: &'a PatternSet,
    /// GuardDuty finding types that report cryptocurrency mining.
    pub cryptomining_finding_types: &'a [Glob],
    /// Domains of mining pools.
    pub mining_pool_domains: &'a super::lists::DomainSet,
    /// The Sigma rules loaded: what their matches' tags say.
    pub sigma: &'a crate::sigma::SigmaSet,
    /// What the baselines say about the signal; None before matching (on the reading
    /// threads), where baseline conditions hold for every launch.
    pub baseline: Option<BaselineContext<'a>>,
}

/// The baseline facts of the signal being matched, and the settings to judge them by.
#[derive(Clone, Copy)]
pub struct BaselineContext<'a> {
    pub facts: Option<&'a Facts>,
    pub opts: &'a BaselineOptions,
}

/// What a selector's baseline conditions found, for a person.
pub fn baseline_notes(sel: &Selector, ctx: &SelectContext<'_>) -> Vec<String> {
    let Some(BaselineContext {
        facts: Some(f),
        opts,
    }) = ctx.baseline
    else {
        return Vec::new();
    };
    let lp = sel.baseline.learning_period.unwrap_or(opts.learning_period);
    let mut out = f.describe_first_seen(&f.first_seen(&sel.first_seen, lp));
    if sel.launch_rate_outlier {
        out.push(f.describe_rate(sel.baseline.k.unwrap_or(opts.k), opts.bucket));
    }
    out
}

/// `iam:CreateAccessKey` for a CloudTrail signal.
pub fn api_name(s: &Signal) -> Option<crate::signal::Str> {
    Some(api_of(
        s.fields.event_source.as_deref()?,
        s.fields.event_name.as_deref()?,
    ))
}

/// `iam:CreateAccessKey` for the call `CreateAccessKey` to `iam.amazonaws.com`.
pub fn api_of(source: &str, name: &str) -> crate::signal::Str {
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    // Short names stay inline: no allocation per record on the reading threads.
    let mut api = crate::signal::Str::with_capacity(service.len() + 1 + name.len());
    api.push_str(service);
    api.push(':');
    api.push_str(name);
    api
}

/// Which CloudTrail calls a selector that names no kind of signal may take, judged by its
/// sources and the conditions that can be read without a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallReach {
    /// No call (it takes other sources only).
    None,
    /// Calls of the high-risk APIs.
    HighRisk { instances_only: bool },
    /// Any call.
    All { instances_only: bool },
}

impl Selector {
    /// For a selector that names no kind: which calls it may take, and whether only calls
    /// made with an instance's role credentials (an `actor.instance_id exists` condition).
    /// Lets the reading threads count the other calls without building their signals.
    pub fn call_reach(&self) -> CallReach {
        if !self.sources.is_empty() && !self.sources.contains(&Source::CloudTrail) {
            return CallReach::None;
        }
        let instances_only = self.conditions.iter().any(|c| {
            matches!(c, Check::Field(c)
                if c.field == Field::ActorInstanceId && matches!(c.op, Op::Exists(true)) && !c.negate)
        });
        if self.high_risk_api {
            CallReach::HighRisk { instances_only }
        } else {
            CallReach::All { instances_only }
        }
    }
}

impl Selector {
    pub fn matches(&self, s: &Signal, ctx: &SelectContext<'_>) -> bool {
        if !self.sources.is_empty() && !self.sources.contains(&s.source) {
            return false;
        }
        // A rule's weak signal copies the fields of the signal it is about, but only
        // selectors that name its rule take it; so for a Sigma rule's match and `sigma:`.
        let sigma_id = s.kind.strip_prefix("sigma:");
        if sigma_id.is_some() && self.sigma.is_none() {
            return false;
        }
        let derived = sigma_id.is_some() || s.kind.starts_with("rule:");
        if derived && self.rules.is_empty() && self.sigma.is_none() {
            return false;
        }
        let by_kind = !self.finding_types.is_empty()
            || !self.events.is_empty()
            || !self.rules.is_empty()
            || self.sigma.is_some();
        if by_kind {
            let finding = !derived
                && s.fields
                    .finding_type
                    .as_deref()
                    .is_some_and(|t| self.finding_types.iter().any(|g| g.matches(t)));
            let event = match (
                s.fields.event_source.as_deref(),
                s.fields.event_name.as_deref(),
            ) {
                (Some(src), Some(name)) if s.source == Source::CloudTrail && !derived => self
                    .events
                    .iter()
                    .any(|(gs, gn)| gn.matches(name) && gs.as_ref().is_none_or(|g| g.matches(src))),
                _ => false,
            };
            let rule = s
                .kind
                .strip_prefix("rule:")
                .is_some_and(|id| self.rules.iter().any(|r| r == id));
            let sigma = sigma_id.is_some_and(|id| {
                self.sigma
                    .as_ref()
                    .is_some_and(|sel| sel.selected.contains(id))
            });
            if !(finding || event || rule || sigma) {
                return false;
            }
        }
        if self.launch && s.fields.launch.is_none() {
            return false;
        }
        // Field conditions first: they are cheap, and usually rule the signal out.
        if !self.conditions.iter().all(|c| c.eval(s, &ctx.fields)) {
            return false;
        }
        if (!self.first_seen.is_empty() || self.launch_rate_outlier) && !self.baseline_holds(s, ctx)
        {
            return false;
        }
        if self.high_risk_api {
            let Some(api) = (s.source == Source::CloudTrail)
                .then(|| api_name(s))
                .flatten()
            else {
                return false;
            };
            if !ctx.high_risk_apis.matches(&api) {
                return false;
            }
        }
        true
    }
}

impl Selector {
    /// Whether the baseline conditions hold: on the reading threads (no facts yet) for any
    /// launch, in matching by what the baselines knew before the signal.
    fn baseline_holds(&self, s: &Signal, ctx: &SelectContext<'_>) -> bool {
        let Some(b) = ctx.baseline else {
            return crate::baseline::is_launch(s);
        };
        b.facts.is_some_and(|f| self.baseline_holds_for(f, b.opts))
    }

    /// Whether the baseline conditions hold for a launch the baselines say `f` of: what is
    /// left to judge of a launch that every other condition selected on the reading threads.
    pub fn baseline_holds_for(&self, f: &Facts, opts: &BaselineOptions) -> bool {
        let lp = self
            .baseline
            .learning_period
            .unwrap_or(opts.learning_period);
        if !self.first_seen.is_empty() && f.first_seen(&self.first_seen, lp).is_empty() {
            return false;
        }
        if self.launch_rate_outlier {
            let k = self.baseline.k.unwrap_or(opts.k);
            let min = self.baseline.min_instances.unwrap_or(opts.min_instances);
            if !f.rate_outlier(k, min, lp).1 {
                return false;
            }
        }
        true
    }

    pub fn uses_baselines(&self) -> bool {
        !self.first_seen.is_empty() || self.launch_rate_outlier
    }
}

/// A compiled stage.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    pub weak: bool,
    /// A signal of this stage in the group's window keeps a sequence from opening; its
    /// signals never join one.
    pub absent: bool,
    pub selector: Selector,
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    Count,
    Distinct(Field),
    Sum(Field),
}

#[derive(Clone, Debug)]
pub struct Threshold {
    pub measure: Measure,
    /// Stage index, or None for every non-weak stage.
    pub stage: Option<usize>,
    pub at_least: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Condition {
    pub distinct_stages: Option<u32>,
    pub require: Vec<usize>,
    pub ordered: Vec<usize>,
    pub thresholds: Vec<Threshold>,
}

/// Compiled allowlist.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub principals: Vec<Glob>,
    pub roles: Vec<Glob>,
    pub invoked_by: Vec<Glob>,
    pub accounts: Vec<String>,
    pub tags: Vec<(String, Glob)>,
}

impl Allowlist {
    /// Whether the signal is allowlisted, given the tags of the instances it concerns.
    pub fn allows(&self, s: &Signal, tags: &[(&str, &str)]) -> bool {
        if let Some(a) = &s.account
            && self.accounts.iter().any(|x| x == a.as_str())
        {
            return true;
        }
        if let Some(actor) = &s.actor {
            let principal_hit = [actor.principal_id.as_deref(), actor.arn.as_deref()]
                .into_iter()
                .flatten()
                .any(|p| self.principals.iter().any(|g| g.matches(p)));
            let role_hit = actor.role_arn.as_deref().is_some_and(|r| {
                let name = r.rsplit('/').next().unwrap_or(r);
                self.roles.iter().any(|g| g.matches(r) || g.matches(name))
            });
            let invoked_hit = actor
                .invoked_by
                .as_deref()
                .is_some_and(|i| self.invoked_by.iter().any(|g| g.matches(i)));
            if principal_hit || role_hit || invoked_hit {
                return true;
            }
        }
        tags.iter()
            .any(|(k, v)| self.tags.iter().any(|(tk, tv)| tk == k && tv.matches(v)))
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
            && self.roles.is_empty()
            && self.invoked_by.is_empty()
            && self.accounts.is_empty()
            && self.tags.is_empty()
    }
}

/// A loaded, checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    /// Where it came from (a path, or `built-in:<file>`).
    pub origin: String,
    pub title: String,
    pub description: String,
    pub severity: Label,
    pub confidence: u8,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
    pub types: Vec<String>,
    pub runbook: String,
    pub runbook_url: Option<String>,
    pub references: Vec<String>,
    pub emit: Emit,
    pub stages: Vec<Stage>,
    pub group_by: GroupBy,
    pub window: Millis,
    pub condition: Condition,
    pub allowlist: Allowlist,
    pub suppress: Millis,
    /// Overrides of the baseline settings.
    pub baseline: BaselineParams,
    /// Rule id patterns whose sequences this rule's sequences may absorb (roll-up).
    pub absorbs: Vec<String>,
    pub tests: Vec<model::RuleTest>,
}

impl Rule {
    /// Rule ids whose signals this rule selects.
    pub fn depends_on(&self) -> impl Iterator<Item = &str> {
        self.stages
            .iter()
            .flat_map(|s| s.selector.rules.iter().map(String::as_str))
    }

    /// Whether a stage asks the baselines.
    pub fn uses_baselines(&self) -> bool {
        self.stages.iter().any(|s| s.selector.uses_baselines())
    }

    /// Whether this rule's sequences may absorb sequences of rule `id` (roll-up).
    pub fn may_absorb(&self, id: &str) -> bool {
        self.absorbs.iter().any(|p| Glob::new(p).matches(id))
    }

    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }
}

const ASFF_NAMESPACES: [&str; 5] = [
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
];

/// Collects problems while compiling one file.
struct Errors<'a> {
    file: &'a str,
    list: Vec<RuleError>,
}

impl Errors<'_> {
    fn at<T>(&mut self, span: &Spanned<T>, message: impl Into<String>) {
        self.list.push(RuleError {
            file: self.file.to_string(),
            line: span.referenced.line(),
            column: span.referenced.column(),
            message: message.into(),
        });
    }

    fn top(&mut self, message: impl Into<String>) {
        self.list.push(RuleError {
            file: self.file.to_string(),
            line: 1,
            column: 1,
            message: message.into(),
        });
    }
}

fn duration<T: AsRef<str>>(errs: &mut Errors<'_>, s: &Spanned<T>, what: &str) -> Millis {
    match time::parse_duration(s.value.as_ref()) {
        Ok(d) if d > 0 => d,
        Ok(_) => {
            errs.at(s, format!("{what}: must be longer than zero"));
            0
        }
        Err(e) => {
            errs.at(s, format!("{what}: {e}"));
            0
        }
    }
}

/// Parses one rule file's text. `file` names it in errors; `file_stem` is its name without
/// `.yaml`, which must equal the id.
///
/// # Errors
/// Every problem found, each with its location.
pub fn compile(text: &str, file: &str, file_stem: Option<&str>) -> Result<Rule, Vec<RuleError>> {
    let raw: RuleFile = match serde_saphyr::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = e.to_string();
            // The crate's message repeats the location and a snippet; keep the first line,
            // without its own "error: line L column C:" prefix.
            let first = message.lines().next().unwrap_or("").trim();
            let first = first.strip_prefix("error:").unwrap_or(first).trim();
            let message = match first.strip_prefix("line ") {
                Some(rest) => rest.split_once(": ").map_or(first, |(_, m)| m).to_string(),
                None => first.to_string(),
            };
            return Err(vec![RuleError {
                file: file.to_string(),
                line,
                column,
                message,
            }]);
        }
    };
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };
    let id = raw.id.value.clone();
    let kebab = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if !kebab {
        errs.at(
            &raw.id,
            format!("id {id:?}: expected kebab-case (lowercase letters, digits, `-`)"),
        );
    }
    if let Some(stem) = file_stem
        && stem != id
    {
        errs.at(&raw.id, format!("id {id:?} must equal the file name {stem:?} (one rule per file, named after its id)"));
    }
    let severity = match raw.severity.value.as_str() {
        "INFORMATIONAL" => Label::Informational,
        "LOW" => Label::Low,
        "MEDIUM" => Label::Medium,
        "HIGH" => Label::High,
        "CRITICAL" => Label::Critical,
        other => {
            errs.at(
                &raw.severity,
                format!(
                    "severity {other:?}: expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL"
                ),
            );
            Label::Medium
        }
    };
    let confidence = match &raw.confidence {
        Some(c) if c.value > 100 => {
            errs.at(c, "confidence: expected 0 to 100");
            50
        }
        Some(c) => c.value,
        None => 50,
    };
    if raw.title.is_empty() || raw.title.len() > 256 {
        errs.top("title: expected 1 to 256 characters");
    }
    if raw.description.is_empty() {
        errs.top("description: must not be empty");
    }
    if raw.types.is_empty() {
        errs.top("types: expected at least one ASFF type (namespace/category/classifier)");
    }
    for t in &raw.types {
        let ns = t.value.split('/').next().unwrap_or("");
        if !ASFF_NAMESPACES.contains(&ns) {
            errs.at(
                t,
                format!(
                    "type {:?}: the namespace must be one of {}",
                    t.value,
                    ASFF_NAMESPACES.join(", ")
                ),
            );
        }
    }
    let emit = match raw.emit.as_ref().map(|e| e.value.as_str()) {
        None | Some("finding") => Emit::Finding,
        Some("weak_signal") => Emit::WeakSignal,
        Some(other) => {
            errs.at(
                raw.emit.as_ref().unwrap_or(&raw.id),
                format!("emit {other:?}: expected `finding` or `weak_signal`"),
            );
            Emit::Finding
        }
    };
    let group_by = match raw.group_by.value.as_str() {
        "instance_group" => GroupBy::InstanceGroup,
        "principal" => GroupBy::Principal,
        "account" => GroupBy::Account,
        "access_key" => GroupBy::AccessKey,
        other => match Field::parse(other) {
            Some(f) => GroupBy::Field(f),
            None => {
                let names: Vec<&str> = Field::ALL.iter().map(|(_, n, _)| *n).collect();
                errs.at(
                    &raw.group_by,
                    format!(
                        "group_by {other:?}: expected instance_group, principal, account, access_key or a field ({})",
                        names.join(", ")
                    ),
                );
                GroupBy::InstanceGroup
            }
        },
    };
    let window = duration(&mut errs, &raw.window, "window");
    let suppress = raw
        .suppress
        .as_ref()
        .map_or(0, |s| duration(&mut errs, s, "suppress"));

    if raw.stages.is_empty() {
        errs.top("stages: expected at least one stage");
    }
    let mut stages = Vec::new();
    for st in &raw.stages {
        if stages.iter().any(|s: &Stage| s.name == st.name.value) {
            errs.at(
                &st.name,
                format!("stage {:?} is defined twice", st.name.value),
            );
        }
        let absent = st.absent.as_ref().is_some_and(|a| a.value);
        if let Some(a) = st.absent.as_ref().filter(|_| absent && st.weak) {
            errs.at(
                a,
                format!(
                    "stage {:?}: a stage is weak (joins) or absent (must not occur), not both",
                    st.name.value
                ),
            );
        }
        stages.push(Stage {
            name: st.name.value.clone(),
            weak: st.weak,
            absent,
            selector: selector(&mut errs, &st.select),
        });
    }
    if !stages.is_empty() && stages.iter().all(|s| s.weak || s.absent) {
        errs.top("stages: at least one stage must be neither weak nor absent");
    }
    let stage_ref = |errs: &mut Errors<'_>, s: &Spanned<String>| -> usize {
        match stages.iter().position(|x| x.name == s.value) {
            Some(i) if stages[i].absent => {
                errs.at(
                    s,
                    format!(
                        "stage {:?} is absent: the condition counts the stages that occur (an absent stage already must not)",
                        s.value
                    ),
                );
                i
            }
            Some(i) if stages[i].weak => {
                errs.at(
                    s,
                    format!(
                        "stage {:?} is weak: it joins a sequence but never counts toward the condition (a condition naming it never holds)",
                        s.value
                    ),
                );
                i
            }
            Some(i) => i,
            None => {
                let names: Vec<&str> = stages.iter().map(|x| x.name.as_str()).collect();
                errs.at(
                    s,
                    format!("unknown stage {:?} (stages: {})", s.value, names.join(", ")),
                );
                0
            }
        }
    };
    let c = &raw.condition;
    let mut condition = Condition {
        distinct_stages: c.distinct_stages.as_ref().map(|d| d.value),
        ..Condition::default()
    };
    if let Some(d) = &c.distinct_stages {
        let strong = stages.iter().filter(|s| !s.weak && !s.absent).count() as u32;
        if d.value == 0 || d.value > strong {
            errs.at(
                d,
                format!(
                    "distinct_stages: expected 1 to {strong} (the number of stages neither weak nor absent)"
                ),
            );
        }
    }
    for s in &c.require {
        let i = stage_ref(&mut errs, s);
        condition.require.push(i);
    }
    for s in &c.ordered {
        let i = stage_ref(&mut errs, s);
        condition.ordered.push(i);
    }
    for t in &c.thresholds {
        let measure_count =
            usize::from(t.count) + usize::from(t.distinct.is_some()) + usize::from(t.sum.is_some());
        if measure_count != 1 {
            errs.at(
                &t.at_least,
                "threshold: give exactly one of `count: true`, `distinct: FIELD`, `sum: FIELD`",
            );
        }
        let measure = if let Some(f) = &t.distinct {
            Measure::Distinct(field(&mut errs, f))
        } else if let Some(f) = &t.sum {
            let fld = field(&mut errs, f);
            if Field::parse(&f.value).is_some() && !fld.is_numeric() {
                errs.at(f, format!("sum: field {:?} is not numeric", f.value));
            }
            Measure::Sum(fld)
        } else {
            Measure::Count
        };
        let stage = t.stage.as_ref().map(|s| stage_ref(&mut errs, s));
        if t.at_least.value <= 0.0 || !t.at_least.value.is_finite() {
            errs.at(&t.at_least, "at_least: expected a number above zero");
        }
        condition.thresholds.push(Threshold {
            measure,
            stage,
            at_least: t.at_least.value,
        });
    }
    if condition.distinct_stages.is_none()
        && condition.require.is_empty()
        && condition.ordered.is_empty()
        && condition.thresholds.is_empty()
    {
        errs.top("condition: give at least one of distinct_stages, require, ordered, thresholds");
    }
    let a = &raw.allowlist;
    let allowlist = Allowlist {
        principals: a.principals.iter().map(|g| Glob::new(&g.value)).collect(),
        roles: a.roles.iter().map(|g| Glob::new(&g.value)).collect(),
        invoked_by: a.invoked_by.iter().map(|g| Glob::new(&g.value)).collect(),
        accounts: a.accounts.iter().map(|g| g.value.clone()).collect(),
        tags: a
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Glob::new(v)))
            .collect(),
    };
    for acct in &a.accounts {
        if acct.value.len() != 12 || !acct.value.bytes().all(|b| b.is_ascii_digit()) {
            errs.at(
                acct,
                format!("account {:?}: expected 12 digits", acct.value),
            );
        }
    }
    let mut baseline = BaselineParams::default();
    if let Some(b) = &raw.baseline {
        if let Some(lp) = &b.learning_period {
            baseline.learning_period = Some(duration(&mut errs, lp, "baseline.learning_period"));
        }
        if let Some(k) = &b.k {
            if !(k.value.is_finite() && k.value > 0.0) {
                errs.at(k, "baseline.k: expected a number above zero");
            }
            baseline.k = Some(k.value);
        }
        if let Some(m) = &b.min_instances {
            if m.value == 0 {
                errs.at(m, "baseline.min_instances: expected at least 1");
            }
            baseline.min_instances = Some(m.value);
        }
        if !stages.iter().any(|s| s.selector.uses_baselines()) {
            errs.top("baseline: no stage uses `first_seen` or `launch_rate_outlier`");
        }
    }
    for st in &mut stages {
        st.selector.baseline = baseline.clone();
    }
    let absorbs = match raw.rollup.as_ref().and_then(|r| r.absorbs.as_ref()) {
        None => vec!["*".to_string()],
        Some(list) => {
            for p in list {
                let ok = !p.value.is_empty()
                    && p.value.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*'
                    });
                if !ok {
                    errs.at(
                        p,
                        format!(
                            "rollup.absorbs {:?}: expected a rule id (kebab-case, `*` matching any text)",
                            p.value
                        ),
                    );
                }
            }
            list.iter().map(|p| p.value.clone()).collect()
        }
    };
    if raw.rollup.is_some() && emit == Emit::WeakSignal {
        errs.top("rollup: a weak_signal rule writes no finding, so it absorbs nothing");
    }
    if !errs.list.is_empty() {
        return Err(errs.list);
    }
    Ok(Rule {
        id,
        origin: file.to_string(),
        title: raw.title,
        description: raw.description,
        severity,
        confidence,
        tactics: raw.attack.tactics,
        techniques: raw.attack.techniques,
        types: raw.types.into_iter().map(|t| t.value).collect(),
        runbook: raw.runbook,
        runbook_url: raw.runbook_url,
        references: raw.references,
        emit,
        stages,
        group_by,
        window,
        condition,
        allowlist,
        suppress,
        baseline,
        absorbs,
        tests: raw.tests,
    })
}

fn field(errs: &mut Errors<'_>, f: &Spanned<String>) -> Field {
    Field::parse(&f.value).unwrap_or_else(|| {
        let names: Vec<&str> = Field::ALL.iter().map(|(_, n, _)| *n).collect();
        errs.at(
            f,
            format!("unknown field {:?} (fields: {})", f.value, names.join(", ")),
        );
        Field::Kind
    })
}

fn selector(errs: &mut Errors<'_>, s: &model::Selector) -> Selector {
    let mut out = Selector {
        high_risk_api: s.high_risk_api,
        launch_rate_outlier: s.launch_rate_outlier,
        launch: s.launch,
        ..Selector::default()
    };
    for d in &s.first_seen {
        match Dimension::parse(&d.value) {
            Some(dim) if !out.first_seen.contains(&dim) => out.first_seen.push(dim),
            Some(_) => errs.at(d, format!("first_seen: {:?} is listed twice", d.value)),
            None => errs.at(
                d,
                format!(
                    "first_seen {:?}: expected region, ami, instance_type or principal",
                    d.value
                ),
            ),
        }
    }
    for src in &s.source {
        match src.value.as_str() {
            "guardduty" => out.sources.push(Source::GuardDuty),
            "securityhub" => out.sources.push(Source::SecurityHub),
            "cloudtrail" => out.sources.push(Source::CloudTrail),
            other => errs.at(
                src,
                format!("source {other:?}: expected guardduty, securityhub or cloudtrail"),
            ),
        }
    }
    for t in &s.finding_types {
        if !t.value.contains(':') && t.value != "*" {
            errs.at(t, format!("finding type {:?}: expected ThreatPurpose:ResourceType/ThreatFamily (wildcards allowed, e.g. \"CryptoCurrency:*\")", t.value));
        } else if t.value != "*"
            && let Err(problem) = super::names::check_finding_type(&t.value)
        {
            errs.at(t, problem);
        }
        out.finding_types.push(Glob::new(&t.value));
    }
    for e in &s.events {
        if e.value.is_empty() {
            errs.at(e, "event: expected `eventSource:eventName` or `eventName`");
        }
        let (src, name) = match e.value.split_once(':') {
            Some((src, name)) => (Some(src), name),
            None => (None, e.value.as_str()),
        };
        if !e.value.is_empty()
            && let Err(problem) = super::names::check_event(src, name)
        {
            errs.at(e, format!("event {:?}: {problem}", e.value));
        }
        out.events.push((src.map(Glob::new), Glob::new(name)));
    }
    for r in &s.rules {
        out.rules.push(r.value.clone());
    }
    if let Some(sg) = &s.sigma {
        let mut sel = SigmaSelector::default();
        for id in &sg.ids {
            if id.value.trim().is_empty() {
                errs.at(id, "sigma.ids: expected a Sigma rule id");
            }
            sel.ids.push((
                id.value.clone(),
                id.referenced.line(),
                id.referenced.column(),
            ));
        }
        for t in &sg.tags {
            if t.value.trim().is_empty() {
                errs.at(t, "sigma.tags: expected a tag like \"attack.impact\"");
            }
            sel.tags.push(Glob::new(&t.value.to_ascii_lowercase()));
        }
        if let Some(l) = &sg.level_at_least {
            match crate::sigma::Level::parse(&l.value) {
                Some(level) => sel.level_at_least = Some(level),
                None => errs.at(
                    l,
                    format!(
                        "sigma.level_at_least {:?}: expected {}",
                        l.value,
                        crate::sigma::Level::NAMES
                    ),
                ),
            }
        }
        out.sigma = Some(sel);
    }
    for c in &s.conditions {
        out.conditions.extend(check(errs, c, 0));
    }
    out
}

/// How deep `any`, `all` and `not` may nest.
const MAX_NESTING: usize = 16;

/// Compiles one `where` entry; None when it has an error (reported).
fn check(errs: &mut Errors<'_>, c: &model::FieldCondition, depth: usize) -> Option<Check> {
    let groups = [c.any.is_some(), c.all.is_some(), c.not.is_some()]
        .iter()
        .filter(|&&g| g)
        .count();
    let group_span = |c: &model::FieldCondition| -> Option<(u64, u64)> {
        let r = c
            .any
            .as_ref()
            .map(|g| g.referenced)
            .or(c.all.as_ref().map(|g| g.referenced))
            .or(c.not.as_ref().map(|g| g.referenced))?;
        Some((r.line(), r.column()))
    };
    if groups > 0 {
        let (line, column) = group_span(c).unwrap_or((1, 1));
        let mut err = |message: String| {
            errs.list.push(RuleError {
                file: errs.file.to_string(),
                line,
                column,
                message,
            });
        };
        if groups > 1 || c.field.is_some() {
            err("a condition group: expected exactly one of `any`, `all` or `not`, with no `field` beside it".into());
            return None;
        }
        if depth >= MAX_NESTING {
            err(format!(
                "conditions nested deeper than {MAX_NESTING} levels"
            ));
            return None;
        }
        if c.negate {
            err("`negate` applies to a field condition; put a group inside `not` instead".into());
            return None;
        }
        if let Some(not) = &c.not {
            return check(errs, &not.value, depth + 1).map(|inner| Check::Not(Box::new(inner)));
        }
        let (list, any) = match (&c.any, &c.all) {
            (Some(l), _) => (l, true),
            (_, Some(l)) => (l, false),
            _ => unreachable!("one group is given"),
        };
        if list.value.is_empty() {
            errs.at(
                list,
                format!(
                    "{}: expected at least one condition",
                    if any { "any" } else { "all" }
                ),
            );
            return None;
        }
        let inner: Vec<Check> = list
            .value
            .iter()
            .filter_map(|c| check(errs, c, depth + 1))
            .collect();
        if inner.len() != list.value.len() {
            return None;
        }
        return Some(if any {
            Check::Any(inner)
        } else {
            Check::All(inner)
        });
    }
    let Some(name) = &c.field else {
        errs.top("a condition: expected `field` with one operator, or one of `any`, `all`, `not`");
        return None;
    };
    let fld = field(errs, name);
    let mut ops = Vec::new();
    if let Some(v) = &c.equals {
        ops.push(Op::Equals(v.value.clone()));
    }
    if let Some(v) = &c.one_of {
        if v.value.is_empty() {
            errs.at(v, "one_of: expected at least one value");
        }
        ops.push(Op::OneOf(v.value.clone()));
    }
    if let Some(v) = &c.prefix {
        ops.push(Op::Prefix(v.value.clone()));
    }
    if let Some(v) = &c.suffix {
        ops.push(Op::Suffix(v.value.clone()));
    }
    if let Some(v) = &c.contains {
        ops.push(Op::Contains(v.value.clone()));
    }
    if let Some(v) = &c.regex {
        match Regex::new(&v.value) {
            Ok(r) => ops.push(Op::Regex(r)),
            Err(e) => {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or("").trim();
                let last = last.strip_prefix("error:").unwrap_or(last).trim();
                errs.at(v, format!("regex {:?} does not compile: {last}", v.value));
                return None;
            }
        }
    }
    for (v, make) in [
        (&c.gt, Op::Gt as fn(f64) -> Op),
        (&c.gte, Op::Gte),
        (&c.lt, Op::Lt),
        (&c.lte, Op::Lte),
    ] {
        if let Some(v) = v {
            ops.push(make(v.value));
        }
    }
    if let Some(v) = &c.exists {
        ops.push(Op::Exists(v.value));
    }
    if let Some(v) = &c.high_powered {
        ops.push(Op::HighPowered(v.value));
    }
    if ops.len() != 1 {
        errs.at(
            name,
            format!(
                "condition on {:?}: expected exactly one operator (equals, one_of, prefix, suffix, contains, regex, gt, gte, lt, lte, exists, high_powered), found {}",
                name.value,
                ops.len()
            ),
        );
        return None;
    }
    Some(Check::Field(Cond {
        field: fld,
        op: ops.remove(0),
        negate: c.negate,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_sets_match_exact_and_wildcard_patterns() {
        let set = PatternSet::new([
            "iam:CreateAccessKey",
            "lambda:CreateFunction*",
            "*:StopLogging",
        ]);
        for (s, want) in [
            ("iam:CreateAccessKey", true),
            ("iam:CreateAccessKeys", false),
            ("lambda:CreateFunction20150331", true),
            ("cloudtrail:StopLogging", true),
            ("ec2:RunInstances", false),
        ] {
            assert_eq!(set.matches(s), want, "{s}");
        }
    }

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("p*", "p3.16xlarge", true),
            ("p*", "m5.large", false),
            ("*.24xlarge", "c5.24xlarge", true),
            ("*.metal*", "c6i.metal", true),
            ("*.metal*", "m7i.metal-48xl", true),
            (
                "CryptoCurrency:*",
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                true,
            ),
            ("*Trail*", "DeleteTrail", true),
            ("iam:*Key*", "iam:CreateAccessKey", true),
            ("RunInstances", "RunInstances", true),
            ("RunInstances", "RunInstancesX", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("*", "", true),
        ] {
            assert_eq!(Glob::new(p).matches(s), want, "{p} ~ {s}");
        }
    }
}
