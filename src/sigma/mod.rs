//! Sigma rules as signals: detection rules for AWS CloudTrail (`logsource: {product: aws,
//! service: cloudtrail}`, the format of SigmaHQ's `rules/cloud/aws/cloudtrail/`) loaded from a
//! folder (`--sigma DIR`, `[rules] sigma`), evaluated with the rsigma engine on the CloudTrail
//! records as they are read, each match handed on as a signal of kind `sigma:<id>` that
//! sequence rules select (`select: {sigma: {ids, tags, level_at_least}}`).
//!
//! A match is a copy of the record's own signal (same actor, instances, account and region, so
//! it groups by principal and by the actor's instance group like the call itself) with the
//! Sigma rule's id as its kind, its level as severity and its title. Its `attack.*` tags are
//! the tactics and techniques the finding's indicators show.
//!
//! Records are read a second time for the engine, each member parsed only when a rule looks
//! under it ([`event::LazyEvent`]); only records a loaded rule can match get there: a rule whose detection requires a literal `eventName` (or
//! `eventSource`) value names the calls it can match, and the reading threads hand the engine
//! only those (see [`SigmaSet::may_match`]). A rule without such a literal (keywords, only
//! wildcards or modifiers on those fields, a `not` around them) turns the shortcut off: then
//! every CloudTrail record is evaluated.
//!
//! Sigma correlation rules and filters are rejected at load, with the file named: sequence
//! rules (windows, group-by, conditions) do what they would, on the same signals.

#[cfg(feature = "sigma")]
mod event;

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::rules::RuleError;
use crate::signal::{Signal, Str};

/// Whether a signal is a Sigma rule's match (`sigma:<id>`), made from a record's own signal.
pub fn is_match(s: &Signal) -> bool {
    s.kind.starts_with("sigma:")
}

/// A Sigma rule's `level`, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const NAMES: &str = "informational, low, medium, high or critical";

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The signal's severity on GuardDuty's 0-10 scale: the middle of the band of the same
    /// name (Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10).
    pub fn severity(self) -> f64 {
        match self {
            Level::Informational => 0.5,
            Level::Low => 2.0,
            Level::Medium => 5.0,
            Level::High => 8.0,
            Level::Critical => 9.5,
        }
    }
}

/// What a rule's detection requires of a record's `eventName` or `eventSource` (compared
/// without case, as Sigma compares): a match has its name in `names` or its source in
/// `sources`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    pub names: Vec<String>,
    pub sources: Vec<String>,
}

impl Reach {
    #[cfg(feature = "sigma")]
    fn union(mut self, other: Reach) -> Reach {
        for n in other.names {
            if !self.names.contains(&n) {
                self.names.push(n);
            }
        }
        for s in other.sources {
            if !self.sources.contains(&s) {
                self.sources.push(s);
            }
        }
        self
    }
}

/// One loaded Sigma detection rule: what its signals carry.
#[derive(Clone, Debug)]
pub struct SigmaRule {
    pub id: String,
    pub title: String,
    pub level: Level,
    /// As written, lowercase (`attack.impact`, `attack.t1496`).
    pub tags: Vec<String>,
    /// From `attack.<tactic>` tags: `Impact`, `Defense Evasion`.
    pub tactics: Vec<String>,
    /// From `attack.tNNNN[.NNN]` tags: `T1496`, `T1562.008`.
    pub techniques: Vec<String>,
    /// The file it came from.
    pub file: String,
    /// The calls it can match; None: any.
    pub reach: Option<Reach>,
}

/// The loaded Sigma rules and their engines.
///
/// Besides one rsigma engine with every rule, the compiled rules are grouped by the calls
/// they can match: the rules per literal event name (lowercase), per literal event source,
/// and those that name no call. A record is evaluated by the rules of its name and source
/// (and the last), each rule on its own, so it is tested only against the rules it can match,
/// and only the fields those rules read are looked at: with a hundred rules loaded, a
/// `ListBuckets` call meets the one rule about `ListBuckets`. (The engine's own index over
/// every rule would read the indexed fields of each record again to find what the call
/// already says; it serves [`SigmaSet::evaluate_every_rule`], the check of the narrowing.)
#[derive(Default)]
pub struct SigmaSet {
    pub rules: Vec<SigmaRule>,
    by_id: FxHashMap<String, usize>,
    /// Some rule has no literal event name or source: every record is evaluated.
    every_record: bool,
    #[cfg(feature = "sigma")]
    engines: Engines,
}

/// The engines of a [`SigmaSet`]: one over every rule, and the compiled rules (indices into
/// `compiled`, in load order) grouped by the calls they can match.
#[cfg(feature = "sigma")]
#[derive(Default)]
struct Engines {
    all: Option<rsigma_eval::Engine>,
    /// Each rule compiled, in the order of [`SigmaSet::rules`].
    compiled: Vec<rsigma_eval::CompiledRule>,
    by_name: FxHashMap<String, Vec<usize>>,
    by_source: FxHashMap<String, Vec<usize>>,
    any_call: Vec<usize>,
}

impl std::fmt::Debug for SigmaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigmaSet")
            .field("rules", &self.rules.len())
            .field("every_record", &self.every_record)
            .finish()
    }
}

/// A CloudTrail field name, lowercased into `buf` without allocating (names longer than the
/// buffer are returned as None: no literal the rules hold is that long).
#[cfg(feature = "sigma")]
fn lower<'a>(s: &str, buf: &'a mut [u8; 128]) -> Option<&'a str> {
    let b = s.as_bytes();
    let out = buf.get_mut(..b.len())?;
    out.copy_from_slice(b);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

impl SigmaSet {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn get(&self, id: &str) -> Option<&SigmaRule> {
        self.by_id.get(id).map(|&i| &self.rules[i])
    }

    /// Whether every CloudTrail record must be evaluated (some rule names no literal call).
    pub fn every_record(&self) -> bool {
        self.every_record
    }

    /// The rules a call with this event source and name can match, by index, compiled (a rule
    /// may come twice, by its name and by its source).
    #[cfg(feature = "sigma")]
    fn rules_for<'a>(
        &'a self,
        source: &str,
        name: &str,
    ) -> impl Iterator<Item = (usize, &'a rsigma_eval::CompiledRule)> {
        let e = &self.engines;
        let mut buf = [0u8; 128];
        let by_name = lower(name, &mut buf).and_then(|n| e.by_name.get(n));
        let by_source = if e.by_source.is_empty() {
            None
        } else {
            lower(source, &mut buf).and_then(|s| e.by_source.get(s))
        };
        by_name
            .into_iter()
            .flatten()
            .chain(by_source.into_iter().flatten())
            .chain(&e.any_call)
            .map(|&i| (i, &e.compiled[i]))
    }

    /// Whether a loaded rule can match a call with this event source and name: the reading
    /// shortcut, decided before the record is parsed for the engine.
    #[cfg(feature = "sigma")]
    pub fn may_match(&self, source: &str, name: &str) -> bool {
        self.rules_for(source, name).next().is_some()
    }

    /// Without the `sigma` feature no rule loads, so nothing matches.
    #[cfg(not(feature = "sigma"))]
    pub fn may_match(&self, _source: &str, _name: &str) -> bool {
        false
    }

    /// The rules that match a CloudTrail record (its JSON text, with the event source and
    /// name read from it), in load order: only the rules that can match that call are tried.
    /// `keys`: the record's top-level keys as the caller's parse found them
    /// ([`Record::keys`](crate::normalize::cloudtrail::Record::keys)), so the record is not
    /// split again.
    #[cfg(feature = "sigma")]
    pub fn evaluate(
        &self,
        source: &str,
        name: &str,
        record: &str,
        keys: Option<&[&str]>,
    ) -> Vec<usize> {
        let mut rules = self.rules_for(source, name).peekable();
        if rules.peek().is_none() {
            return Vec::new();
        }
        let Some(event) = event::LazyEvent::parse_knowing(record, keys) else {
            return Vec::new();
        };
        let mut selections = Vec::new();
        let mut hits: Vec<usize> = rules
            .filter(|(_, rule)| matches(rule, &event, &mut selections))
            .map(|(i, _)| i)
            .collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    /// The rules that match a CloudTrail record, every rule tried by the rsigma engine (what
    /// [`SigmaSet::evaluate`] finds, without narrowing by the call: to check the narrowing).
    #[cfg(feature = "sigma")]
    pub fn evaluate_every_rule(&self, record: &str) -> Vec<usize> {
        let (Some(engine), Some(event)) = (
            &self.engines.all,
            event::LazyEvent::parse_knowing(record, None),
        ) else {
            return Vec::new();
        };
        let mut hits: Vec<usize> = engine
            .evaluate(&event)
            .iter()
            .filter(|r| r.is_detection())
            .filter_map(|r| r.header.rule_id.as_deref())
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    /// Without the `sigma` feature no rule loads, so nothing matches.
    #[cfg(not(feature = "sigma"))]
    pub fn evaluate(
        &self,
        _source: &str,
        _name: &str,
        _record: &str,
        _keys: Option<&[&str]>,
    ) -> Vec<usize> {
        Vec::new()
    }

    /// Without the `sigma` feature no rule loads, so nothing matches.
    #[cfg(not(feature = "sigma"))]
    pub fn evaluate_every_rule(&self, _record: &str) -> Vec<usize> {
        Vec::new()
    }

    /// The signal of rule `i`'s match on the record `s` was decoded from.
    pub fn signal(&self, i: usize, s: &Signal) -> Signal {
        let rule = &self.rules[i];
        let mut m = s.derived(
            "sigma",
            &rule.id,
            rule.level.severity(),
            Str::from(rule.title.as_str()),
        );
        // What the call bought stays with the call's own signal: the baselines and the
        // compute totals count it once.
        m.fields.launch = None;
        m
    }

    /// The event names the rules with `ids` can match, or None when one of them is not
    /// narrowed by event name (for the event-name filters of CloudTrail's LookupEvents).
    pub fn event_names<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            let reach = self.get(id)?.reach.as_ref()?;
            if !reach.sources.is_empty() {
                return None;
            }
            out.extend(reach.names.iter().cloned());
        }
        Some(out)
    }

    /// Loads every `*.yml` and `*.yaml` file under `dir` (recursively, sorted by path).
    ///
    /// # Errors
    /// Every problem of every file, each naming the file: YAML or Sigma syntax, a rule that is
    /// not for CloudTrail, without `id` or `level`, an id used twice, correlation rules and
    /// filters (not supported), and a build without the `sigma` feature.
    pub fn load_dir(dir: &Path) -> Result<SigmaSet, Vec<RuleError>> {
        let err = |message: String| RuleError {
            file: dir.display().to_string(),
            line: 1,
            column: 1,
            message,
        };
        let mut paths = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            let rd = std::fs::read_dir(&d)
                .map_err(|e| vec![err(format!("cannot read Sigma rules folder: {e}"))])?;
            for e in rd.filter_map(|e| e.ok()) {
                let p = e.path();
                if p.is_dir() {
                    pending.push(p);
                } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                    paths.push(p);
                }
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(vec![err(
                "no Sigma rule files (*.yml, *.yaml) in the Sigma rules folder".into(),
            )]);
        }
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match crate::local_file::read_to_string(&p, crate::local_file::RULE_MAX) {
                Ok(text) => files.push((p.display().to_string(), text)),
                Err(e) => errors.push(RuleError {
                    file: p.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match SigmaSet::from_texts(files) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Loads Sigma rules from (file name, text) pairs.
    ///
    /// # Errors
    /// As [`SigmaSet::load_dir`].
    #[cfg(not(feature = "sigma"))]
    pub fn from_texts(files: Vec<(String, String)>) -> Result<SigmaSet, Vec<RuleError>> {
        Err(files
            .into_iter()
            .take(1)
            .map(|(file, _)| RuleError {
                file,
                line: 1,
                column: 1,
                message:
                    "this correlator was built without Sigma support (the `sigma` cargo feature)"
                        .into(),
            })
            .collect())
    }

    /// Loads Sigma rules from (file name, text) pairs.
    ///
    /// # Errors
    /// As [`SigmaSet::load_dir`].
    #[cfg(feature = "sigma")]
    pub fn from_texts(files: Vec<(String, String)>) -> Result<SigmaSet, Vec<RuleError>> {
        let mut set = SigmaSet::default();
        let mut engine = rsigma_eval::Engine::new();
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in files {
            let at = |key: &str, message: String| RuleError {
                file: file.clone(),
                line: line_of(&text, key),
                column: 1,
                message,
            };
            // The parser says where YAML broke ("at line 4 column 106"): point there.
            let placed = |message: String| {
                let (line, column) = yaml_place(&message).unwrap_or((1, 1));
                RuleError {
                    file: file.clone(),
                    line,
                    column,
                    message,
                }
            };
            let collection = match rsigma_parser::parse_sigma_yaml(&text) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(placed(format!("not a valid Sigma file: {e}")));
                    continue;
                }
            };
            for e in &collection.errors {
                errors.push(placed(format!("not a valid Sigma rule: {e}")));
            }
            for c in &collection.correlations {
                errors.push(at(
                    "correlation:",
                    format!(
                        "Sigma correlation rule {:?} ({} over {}): correlation rules are not supported; select the detection rules' signals in a sequence rule instead (`select: {{sigma: {{ids: [...]}}}}` with group_by, window and condition)",
                        c.title,
                        correlation_type(c),
                        c.rules.join(", ")
                    ),
                ));
            }
            for f in &collection.filters {
                errors.push(at(
                    "filter:",
                    format!(
                        "Sigma filter {:?}: filters are not supported; write the exclusion into the rule's condition (`and not filter`)",
                        f.title
                    ),
                ));
            }
            if collection.rules.is_empty()
                && collection.correlations.is_empty()
                && collection.filters.is_empty()
                && collection.errors.is_empty()
            {
                errors.push(at("", "no Sigma detection rule in the file".into()));
            }
            for rule in &collection.rules {
                let ls = &rule.logsource;
                if ls.product.as_deref() != Some("aws")
                    || ls.service.as_deref() != Some("cloudtrail")
                {
                    errors.push(at(
                        "logsource:",
                        format!(
                            "Sigma rule {:?}: logsource must be `product: aws` and `service: cloudtrail` (found product {:?}, service {:?}): only CloudTrail records are evaluated",
                            rule.title,
                            ls.product.as_deref().unwrap_or(""),
                            ls.service.as_deref().unwrap_or("")
                        ),
                    ));
                    continue;
                }
                let Some(id) = rule.id.clone().filter(|i| !i.trim().is_empty()) else {
                    errors.push(at(
                        "title:",
                        format!(
                            "Sigma rule {:?} has no `id`: its signals are `sigma:<id>`, which sequence rules select",
                            rule.title
                        ),
                    ));
                    continue;
                };
                if id.contains(['/', ' ']) {
                    errors.push(at(
                        "id:",
                        format!("Sigma rule id {id:?}: expected no spaces or slashes (a UUID, or kebab-case)"),
                    ));
                    continue;
                }
                let Some(level) = rule
                    .level
                    .map(|l| Level::parse(l.as_str()).unwrap_or(Level::Informational))
                else {
                    errors.push(at(
                        "title:",
                        format!(
                            "Sigma rule {id}: no `level` (expected {}): it is the signal's severity",
                            Level::NAMES
                        ),
                    ));
                    continue;
                };
                if let Some(&other) = set.by_id.get(&id) {
                    errors.push(at(
                        "id:",
                        format!(
                            "Sigma rule id {id} is used by {} too",
                            set.rules[other].file
                        ),
                    ));
                    continue;
                }
                if let Err(e) = engine.add_rule(rule) {
                    errors.push(at(
                        "detection:",
                        format!("Sigma rule {id}: detection does not compile: {e}"),
                    ));
                    continue;
                }
                // Literal event names and sources must be AWS's (as the rules' `events` are).
                let mut named_wrong = false;
                for (value, problem) in name_problems(&rule.detection) {
                    let (line, column) = place_of(&text, &value);
                    errors.push(RuleError {
                        file: file.clone(),
                        line,
                        column,
                        message: format!("Sigma rule {id}: {problem}"),
                    });
                    named_wrong = true;
                }
                if named_wrong {
                    continue;
                }
                let tags: Vec<String> = rule.tags.iter().map(|t| t.to_ascii_lowercase()).collect();
                let (tactics, techniques) = attack_of(&tags);
                let reach = rule_reach(&rule.detection);
                set.by_id.insert(id.clone(), set.rules.len());
                accepted.push(rule.clone());
                set.rules.push(SigmaRule {
                    id,
                    title: rule.title.clone(),
                    level,
                    tags,
                    tactics,
                    techniques,
                    file: file.clone(),
                    reach,
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // The narrowed rule lists (see [`SigmaSet`]); the rules compiled in `engine` above
        // compile again, as that engine compiles them (no processing pipeline).
        let e = &mut set.engines;
        for (i, (rule, parsed)) in set.rules.iter().zip(&accepted).enumerate() {
            let compiled = rsigma_eval::compile_rule(parsed)
                .expect("a rule that compiled once compiles again");
            e.compiled.push(compiled);
            match &rule.reach {
                None => {
                    set.every_record = true;
                    e.any_call.push(i);
                }
                Some(reach) => {
                    let mut names: Vec<String> =
                        reach.names.iter().map(|n| n.to_ascii_lowercase()).collect();
                    names.sort();
                    names.dedup();
                    for n in names {
                        e.by_name.entry(n).or_default().push(i);
                    }
                    let mut sources: Vec<String> = reach
                        .sources
                        .iter()
                        .map(|n| n.to_ascii_lowercase())
                        .collect();
                    sources.sort();
                    sources.dedup();
                    for s in sources {
                        e.by_source.entry(s).or_default().push(i);
                    }
                }
            }
        }
        e.all = Some(engine);
        Ok(set)
    }
}

/// Whether a compiled rule matches: one of its conditions holds, decided by the engine's own
/// condition evaluator. `evaluate_rule` decides the same and then evaluates the matching
/// condition again to build a result (the rule's title, tags, description and log source
/// copied, the fields that matched collected), all of which a match here throws away.
/// `selections`: scratch space for the names of the detections that held.
#[cfg(feature = "sigma")]
fn matches(
    rule: &rsigma_eval::CompiledRule,
    event: &impl rsigma_eval::Event,
    selections: &mut Vec<String>,
) -> bool {
    rule.conditions.iter().any(|condition| {
        selections.clear();
        rsigma_eval::compiler::eval_condition(condition, &rule.detections, event, selections)
    })
}

#[cfg(feature = "sigma")]
fn correlation_type(c: &rsigma_parser::CorrelationRule) -> String {
    serde_json::to_value(c.correlation_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "correlation".into())
}

/// Where `value` first appears in `text` (1-based line and column), else the top.
#[cfg(feature = "sigma")]
fn place_of(text: &str, value: &str) -> (u64, u64) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(value).map(|c| (i as u64 + 1, c as u64 + 1)))
        .unwrap_or((1, 1))
}

/// The literal `eventSource` and `eventName` values of every selection (plain values, no
/// modifiers) that are not AWS's, checked as the rules' `events` are (`data/event_names.tsv`),
/// with the nearest valid name; a name is checked against its selection's one literal source
/// when it has one. Sigma compares without case, and so does this check.
#[cfg(feature = "sigma")]
fn name_problems(d: &rsigma_parser::Detections) -> Vec<(String, String)> {
    use rsigma_parser::Detection;
    fn walk(det: &Detection, out: &mut Vec<(String, String)>) {
        match det {
            Detection::AllOf(items) => {
                let literal = |field: &str| -> Vec<String> {
                    items
                        .iter()
                        .filter(|i| {
                            i.field.name.as_deref() == Some(field) && i.field.modifiers.is_empty()
                        })
                        .flat_map(|i| i.values.iter().filter_map(plain))
                        .collect()
                };
                let sources = literal("eventSource");
                for s in &sources {
                    if let Err(p) = crate::rules::names::check_event(Some(s), "*") {
                        out.push((s.clone(), p));
                    }
                }
                let source = match sources.as_slice() {
                    [one] => Some(one.as_str()),
                    _ => None,
                };
                for n in literal("eventName") {
                    let ok = crate::rules::names::check_event(source, &n).or_else(|e| {
                        // The same name in another case is what CloudTrail logs.
                        crate::rules::names::check_event(
                            source,
                            &case_of(source, &n).ok_or(e.clone())?,
                        )
                        .map_err(|_| e)
                    });
                    if let Err(p) = ok {
                        out.push((n, p));
                    }
                }
            }
            Detection::AnyOf(subs) => subs.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<&String> = d.named.keys().collect();
    names.sort();
    for n in names {
        walk(&d.named[n], &mut out);
    }
    out
}

/// An AWS event name equal to `name` but for case, if there is one.
#[cfg(feature = "sigma")]
fn case_of(source: Option<&str>, name: &str) -> Option<String> {
    crate::rules::names::event_names_of(source)
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(str::to_string)
}

/// `(line, column)` of a YAML parser message that says "at line L column C".
#[cfg(feature = "sigma")]
fn yaml_place(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind("at line ")? + "at line ".len()..];
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// The line (1-based) where a top-level `key` starts, else 1.
#[cfg(feature = "sigma")]
fn line_of(text: &str, key: &str) -> u64 {
    if key.is_empty() {
        return 1;
    }
    text.lines()
        .position(|l| l.starts_with(key))
        .map_or(1, |i| i as u64 + 1)
}

/// ATT&CK tactics and techniques of `attack.*` tags: `attack.t1562.008` is technique
/// `T1562.008`, `attack.defense-evasion` tactic `Defense Evasion`; groups (`attack.g0001`) and
/// software (`attack.s0002`) are neither.
pub fn attack_of(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    for t in tags {
        let Some(rest) = t.strip_prefix("attack.") else {
            continue;
        };
        let mut chars = rest.chars();
        let first = chars.next();
        let numbered = chars.next().is_some_and(|c| c.is_ascii_digit());
        match first {
            Some('t') if numbered => {
                let id = rest.to_ascii_uppercase();
                if !techniques.contains(&id) {
                    techniques.push(id);
                }
            }
            Some('g' | 's') if numbered => {}
            Some(_) => {
                let name = rest
                    .split(['-', '_'])
                    .map(|w| {
                        if w == "and" {
                            return w.to_string();
                        }
                        let mut c = w.chars();
                        c.next().map_or_else(String::new, |f| {
                            f.to_ascii_uppercase().to_string() + c.as_str()
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                if !tactics.contains(&name) {
                    tactics.push(name);
                }
            }
            None => {}
        }
    }
    (tactics, techniques)
}

/// What a rule's conditions (any of them may match) require, or None.
#[cfg(feature = "sigma")]
fn rule_reach(d: &rsigma_parser::Detections) -> Option<Reach> {
    let mut out: Option<Reach> = None;
    for c in &d.conditions {
        let r = condition_reach(c, d)?;
        out = Some(match out {
            None => r,
            Some(o) => o.union(r),
        });
    }
    out
}

#[cfg(feature = "sigma")]
fn condition_reach(
    c: &rsigma_parser::ConditionExpr,
    d: &rsigma_parser::Detections,
) -> Option<Reach> {
    use rsigma_parser::{ConditionExpr, Quantifier, SelectorPattern};
    match c {
        ConditionExpr::Identifier(name) => detection_reach(d.named.get(name)?),
        // Every part must match: any narrowed part narrows the whole.
        ConditionExpr::And(parts) => parts.iter().find_map(|p| condition_reach(p, d)),
        // Any part may match: narrowed only if every part is.
        ConditionExpr::Or(parts) => parts
            .iter()
            .map(|p| condition_reach(p, d))
            .try_fold(Reach::default(), |acc, r| Some(acc.union(r?))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let mut names: Vec<&String> = d
                .named
                .keys()
                .filter(|n| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => crate::rules::compile::Glob::new(p).matches(n),
                })
                .collect();
            names.sort();
            let mut reaches = names.iter().map(|n| detection_reach(&d.named[*n]));
            match quantifier {
                Quantifier::All => reaches.flatten().next(),
                Quantifier::Any | Quantifier::Count(_) => {
                    if names.is_empty() {
                        return None;
                    }
                    reaches.try_fold(Reach::default(), |acc, r| Some(acc.union(r?)))
                }
            }
        }
    }
}

/// What a match of one named detection requires: a mapping (all items) is narrowed by an
/// `eventName` or `eventSource` item of plain strings without modifiers or wildcards; a list of
/// mappings (any) only if each is.
#[cfg(feature = "sigma")]
fn detection_reach(d: &rsigma_parser::Detection) -> Option<Reach> {
    use rsigma_parser::Detection;
    match d {
        Detection::AllOf(items) => {
            let mut by_source = None;
            for item in items {
                let Some(field) = item.field.name.as_deref() else {
                    continue;
                };
                let wanted = field == "eventName" || field == "eventSource";
                if !wanted || !item.field.modifiers.is_empty() || item.values.is_empty() {
                    continue;
                }
                let Some(values) = item.values.iter().map(plain).collect::<Option<Vec<_>>>() else {
                    continue;
                };
                if field == "eventName" {
                    return Some(Reach {
                        names: values,
                        sources: Vec::new(),
                    });
                }
                by_source.get_or_insert(Reach {
                    names: Vec::new(),
                    sources: values,
                });
            }
            by_source
        }
        Detection::AnyOf(subs) => subs
            .iter()
            .map(detection_reach)
            .try_fold(Reach::default(), |acc, r| Some(acc.union(r?))),
        _ => None,
    }
}

/// A value without wildcards.
#[cfg(feature = "sigma")]
fn plain(v: &rsigma_parser::value::SigmaValue) -> Option<String> {
    use rsigma_parser::value::{SigmaValue, StringPart};
    match v {
        SigmaValue::String(s) => {
            let mut out = String::new();
            for p in &s.parts {
                match p {
                    StringPart::Plain(t) => out.push_str(t),
                    StringPart::Special(_) => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(all(test, feature = "sigma"))]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SigmaSet, Vec<RuleError>> {
        SigmaSet::from_texts(vec![("r.yml".into(), text.into())])
    }

    const HEAD: &str =
        "title: t\nid: r1\nlogsource:\n  product: aws\n  service: cloudtrail\nlevel: high\n";

    #[test]
    fn reach_follows_the_condition() {
        for (detection, want) in [
            (
                "selection:\n    eventName: [StopLogging, DeleteTrail]\n  condition: selection",
                Some((vec!["StopLogging", "DeleteTrail"], vec![])),
            ),
            (
                "selection:\n    eventSource: cloudtrail.amazonaws.com\n  condition: selection",
                Some((vec![], vec!["cloudtrail.amazonaws.com"])),
            ),
            (
                "selection:\n    eventName|startswith: Delete\n  condition: selection",
                None,
            ),
            (
                "selection:\n    eventName: 'Delete*'\n  condition: selection",
                None,
            ),
            (
                "selection:\n    eventName: StopLogging\n  filter:\n    userIdentity.type: AWSService\n  condition: selection and not filter",
                Some((vec!["StopLogging"], vec![])),
            ),
            (
                "selection:\n    eventName: StopLogging\n  other:\n    userAgent: x\n  condition: selection or other",
                None,
            ),
            (
                "sel_a:\n    eventName: StopLogging\n  sel_b:\n    eventName: DeleteTrail\n  condition: 1 of sel_*",
                Some((vec!["StopLogging", "DeleteTrail"], vec![])),
            ),
            (
                "sel_a:\n    - eventName: StopLogging\n    - eventSource: sts.amazonaws.com\n  condition: sel_a",
                Some((vec!["StopLogging"], vec!["sts.amazonaws.com"])),
            ),
            (
                "selection:\n    eventName: StopLogging\n  condition: not selection",
                None,
            ),
        ] {
            let text = format!("{HEAD}detection:\n  {detection}\n");
            let set = load(&text).unwrap_or_else(|e| panic!("{detection}: {e:?}"));
            let got = set.rules[0].reach.clone().map(|r| (r.names, r.sources));
            let want = want.map(|(n, s): (Vec<&str>, Vec<&str>)| {
                (
                    n.into_iter().map(String::from).collect::<Vec<_>>(),
                    s.into_iter().map(String::from).collect::<Vec<_>>(),
                )
            });
            assert_eq!(set.every_record(), want.is_none(), "{detection}");
            assert_eq!(got, want, "{detection}");
        }
    }

    #[test]
    fn shortcut_is_case_blind_like_sigma() {
        let text = format!(
            "{HEAD}detection:\n  selection:\n    eventName: StopLogging\n  condition: selection\n"
        );
        let set = load(&text).unwrap();
        assert!(set.may_match("cloudtrail.amazonaws.com", "StopLogging"));
        assert!(set.may_match("x", "stoplogging"));
        assert!(!set.may_match("cloudtrail.amazonaws.com", "StartLogging"));
        let rec = r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"stoplogging"}"#;
        assert_eq!(
            set.evaluate("cloudtrail.amazonaws.com", "stoplogging", rec, None),
            vec![0]
        );
        assert_eq!(set.evaluate_every_rule(rec), vec![0]);
        // Only the engines of the call are tried.
        assert!(
            set.evaluate("cloudtrail.amazonaws.com", "StartLogging", rec, None)
                .is_empty()
        );
    }

    #[test]
    fn event_names_are_checked_against_aws_names() {
        let rule = |source: &str, name: &str| {
            format!(
                "{HEAD}detection:\n  selection:\n    eventSource: {source}\n    eventName: {name}\n  condition: selection\n"
            )
        };
        for (source, name, want) in [
            ("ec2.amazonaws.com", "RunInstances", None),
            ("ec2.amazonaws.com", "runinstances", None),
            ("lambda.amazonaws.com", "CreateFunction20150331", None),
            (
                "ec2.amazonaws.com",
                "RunInstnaces",
                Some((10, "did you mean \"RunInstances\"")),
            ),
            (
                "ec2.amazonaws.con",
                "RunInstances",
                Some((9, "did you mean \"ec2.amazonaws.com\"")),
            ),
            (
                "iam.amazonaws.com",
                "RunInstances",
                Some((10, "is not an event name of iam.amazonaws.com")),
            ),
        ] {
            let text = rule(source, name);
            match (load(&text), want) {
                (Ok(_), None) => {}
                (Err(e), Some((line, w))) => {
                    let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
                    assert!(
                        all.iter().any(|m| m.contains(w)),
                        "{source}:{name}: {all:?}"
                    );
                    assert_eq!(e[0].line, line, "{source}:{name}: {e:?}");
                }
                (got, want) => panic!("{source}:{name}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn tags_name_tactics_and_techniques() {
        let tags: Vec<String> = [
            "attack.impact",
            "attack.t1496",
            "attack.defense-evasion",
            "attack.t1562.008",
            "attack.command-and-control",
            "attack.g0139",
            "cve.2021-1",
        ]
        .map(String::from)
        .to_vec();
        let (tactics, techniques) = attack_of(&tags);
        assert_eq!(
            tactics,
            ["Impact", "Defense Evasion", "Command and Control"]
        );
        assert_eq!(techniques, ["T1496", "T1562.008"]);
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        for (text, want) in [
            ("title: [unclosed\n", "not a valid Sigma"),
            (
                "title: t\nid: x\nlogsource:\n  product: windows\ndetection:\n  s:\n    a: b\n  condition: s\nlevel: low\n",
                "logsource must be",
            ),
            (
                "title: t\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  s:\n    a: b\n  condition: s\nlevel: low\n",
                "has no `id`",
            ),
            (
                "title: t\nid: x\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  s:\n    a: b\n  condition: s\n",
                "no `level`",
            ),
            (
                "title: many\nid: c1\ncorrelation:\n  type: event_count\n  rules: [x]\n  group-by: [a]\n  timespan: 1h\n  condition:\n    gte: 3\nlevel: high\n",
                "correlation rules are not supported",
            ),
        ] {
            let e = load(text).expect_err(text);
            let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
            assert!(
                all.iter()
                    .any(|m| m.contains(want) && m.starts_with("r.yml:")),
                "{text}: {all:?}"
            );
        }
    }
}
