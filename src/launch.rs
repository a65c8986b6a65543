//! Launches: every API call that buys compute, normalized.
//!
//! Which calls buy compute, and where each CloudTrail record keeps what was bought, is data:
//! `correlation-rules/launches/*.yaml` (built in, and read from a `--rules` folder's
//! `launches/` as well, where an entry for an event replaces the built-in one). Each entry
//! names field paths into `requestParameters` and `responseElements`; [`Catalog::extract`]
//! reads them into a [`Launch`] (what kind, how many, which instance types, the ids the API
//! returned, and the vCPUs, GPUs, accelerators and memory that buys, from
//! [`crate::instance_types::lookup`]). Who and where are the signal's actor, account and
//! region.
//!
//! A launch that names a launch template or an Auto Scaling group but no instance type takes
//! the type from the template's creation, or the group's, seen earlier in the input or kept
//! in the state's graph statements ([`Resolver`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::rules::RuleError;
use crate::rules::compile::Glob;
use crate::signal::{EntityKind, InstanceInfo, Signal, Str};
use crate::time::Millis;

/// The built-in catalog's file.
const BUILTIN: &str = include_str!("../correlation-rules/launches/compute-apis.yaml");
const BUILTIN_NAME: &str = "built-in:launches/compute-apis.yaml";

/// Largest count one call is believed to buy: more is a broken record, not a launch.
const MAX_COUNT: u64 = 1_000_000;

/// What one call bought.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    /// `instance`, `spot_request`, `fleet`, `task`, `training_job`, `function`… (the
    /// catalog's `kind`).
    pub kind: Str,
    /// Units bought: instances, tasks, nodes (1 for a function or a notebook).
    pub count: u32,
    /// The instance types, as the API names them (`p3.2xlarge`, `ml.p3.2xlarge`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<Str>,
    /// Ids the API returned for what it bought: instance ids, spot request and fleet ids,
    /// job ARNs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<Str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<Str>,
    /// Totals over every unit; None when no source says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerators: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// vCPUs (or memory) the record stated, which the instance types must not override.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stated_vcpus: bool,
}

impl Launch {
    /// For a person: `ec2:RequestSpotInstances 4×p3.16xlarge (sir-1, sir-2)`.
    pub fn describe(&self, api: Option<&str>) -> String {
        let mut out = format!(
            "{} {}×{}",
            api.unwrap_or(&self.kind),
            self.count,
            if self.instance_types.is_empty() {
                "?".to_string()
            } else {
                self.instance_types.join("|")
            }
        );
        if !self.resource_ids.is_empty() {
            out.push_str(&format!(" ({})", self.resource_ids.join(", ")));
        }
        out
    }

    /// Whether it bought something other than the EC2 instances a record lists (a spot
    /// request, a fleet, a group's capacity, tasks, jobs, a function).
    pub fn beyond_instances(&self) -> bool {
        self.resource_ids
            .iter()
            .any(|i| !crate::signal::is_instance_id(i))
            || self.resource_ids.is_empty()
    }

    /// Sets the totals from the instance types (the largest type when several may be used),
    /// keeping what the record stated.
    fn compute(&mut self) {
        let specs: Vec<_> = self
            .instance_types
            .iter()
            .filter_map(|t| crate::instance_types::lookup(t))
            .collect();
        let n = self.count;
        let largest = |f: fn(&crate::instance_types::InstanceSpec) -> Option<u32>| {
            specs
                .iter()
                .filter_map(f)
                .max()
                .map(|v| v.saturating_mul(n))
        };
        if !self.stated_vcpus {
            self.vcpus = largest(|s| s.vcpus);
        }
        self.gpus = largest(|s| s.gpus);
        self.accelerators = largest(|s| s.accelerators);
        if self.memory_mib.is_none() {
            self.memory_mib = specs
                .iter()
                .filter_map(|s| s.memory_mib)
                .max()
                .map(|m| m.saturating_mul(u64::from(n)));
        }
    }
}

/// A field path: `request.a.b[].c`.
#[derive(Clone, Debug, PartialEq)]
struct Path {
    response: bool,
    /// (key, walk the list under it).
    steps: Vec<(String, bool)>,
}

impl Path {
    fn parse(text: &str) -> Result<Path, String> {
        let mut parts = text.split('.');
        let response = match parts.next() {
            Some("request") => false,
            Some("response") => true,
            _ => {
                return Err(format!(
                    "path {text:?}: expected it to start with `request.` or `response.`"
                ));
            }
        };
        let mut steps = Vec::new();
        for p in parts {
            let (key, walk) = match p.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (p, false),
            };
            if key.is_empty() || key.contains(['[', ']', ' ']) {
                return Err(format!(
                    "path {text:?}: {p:?} is not a key (letters, digits, `_`, then `[]` for a list)"
                ));
            }
            steps.push((key.to_string(), walk));
        }
        if steps.is_empty() {
            return Err(format!("path {text:?}: names no key"));
        }
        Ok(Path { response, steps })
    }

    /// Every value at the path, in the request's or the response's JSON text. Only the
    /// values the path reaches are parsed (a `RunInstances` response is kilobytes; a path
    /// needs a few strings of it).
    fn values<'t>(&self, doc: &Doc<'t>) -> Vec<Value> {
        let Some(root) = (if self.response {
            doc.response
        } else {
            doc.request
        }) else {
            return Vec::new();
        };
        let mut at = vec![root.trim()];
        for (key, walk) in &self.steps {
            let mut next = Vec::new();
            for v in at {
                let Some(child) = doc.splits.member(v, key) else {
                    continue;
                };
                if *walk && child.starts_with('[') {
                    next.extend(doc.splits.elements(child));
                } else if child != "null" {
                    next.push(child);
                }
            }
            at = next;
        }
        at.into_iter()
            .filter(|v| *v != "null")
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect()
    }
}

/// A call's request and response text, with the objects and lists the paths went through
/// split once (every path of an entry starts from the same root).
struct Doc<'t> {
    request: Option<&'t str>,
    response: Option<&'t str>,
    splits: crate::normalize::raw_json::Splits<'t>,
}

impl<'t> Doc<'t> {
    fn new(request: Option<&'t str>, response: Option<&'t str>) -> Doc<'t> {
        Doc {
            request,
            response,
            splits: Default::default(),
        }
    }
}

/// EC2 writes some scalars as `{"value": …}` (`instanceType` in `RunInstances` and
/// `ModifyInstanceAttribute`): read through it.
fn scalar(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.len() == 1 => m.get("value").unwrap_or(v),
        _ => v,
    }
}

fn text(v: &Value) -> Option<Str> {
    match scalar(v) {
        Value::String(s) if !s.is_empty() => Some(Str::from(s.as_str())),
        Value::Number(n) => Some(Str::from(n.to_string())),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match scalar(v) {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite() && *n >= 0.0)
}

/// One catalog entry, compiled.
#[derive(Clone, Debug)]
struct Extractor {
    source: String,
    name: Glob,
    name_text: String,
    kind: Str,
    count: Vec<Path>,
    instance_types: Vec<Path>,
    ids: Vec<Path>,
    instance_ids: Vec<Path>,
    launch_template: Vec<Path>,
    auto_scaling_group: Vec<Path>,
    cpu_units: Vec<Path>,
    vcpus: Vec<Path>,
    memory_mib: Vec<Path>,
    only_if: Option<(Path, Vec<String>)>,
    requires: Vec<Path>,
    /// Where it was declared, for `rules check` and errors.
    origin: String,
}

/// The compute-buying APIs and how to read them.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    extractors: Vec<Extractor>,
    /// The literal event names, and whether some name is a pattern: most calls are ruled
    /// out by one hash lookup (this is asked of every CloudTrail record).
    literal_names: rustc_hash::FxHashSet<String>,
    has_patterns: bool,
}

/// The YAML shape of a catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    apis: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    event: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    count: Vec<Spanned<String>>,
    #[serde(default)]
    instance_types: Vec<Spanned<String>>,
    #[serde(default)]
    ids: Vec<Spanned<String>>,
    #[serde(default)]
    instance_ids: Vec<Spanned<String>>,
    #[serde(default)]
    launch_template: Vec<Spanned<String>>,
    #[serde(default)]
    auto_scaling_group: Vec<Spanned<String>>,
    #[serde(default)]
    cpu_units: Vec<Spanned<String>>,
    #[serde(default)]
    vcpus: Vec<Spanned<String>>,
    #[serde(default)]
    memory_mib: Vec<Spanned<String>>,
    #[serde(default)]
    only_if: Option<(Spanned<String>, Vec<String>)>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
}

fn compile_paths(
    errors: &mut Vec<RuleError>,
    file: &str,
    list: &[Spanned<String>],
    what: &str,
) -> Vec<Path> {
    list.iter()
        .filter_map(|p| {
            Path::parse(&p.value)
                .map_err(|m| errors.push(error_at(file, p, format!("{what}: {m}"))))
                .ok()
        })
        .collect()
}

fn error_at<T>(file: &str, span: &Spanned<T>, message: String) -> RuleError {
    RuleError {
        file: file.to_string(),
        line: span.referenced.line(),
        column: span.referenced.column(),
        message,
    }
}

impl Catalog {
    /// The catalog shipped in `correlation-rules/launches/`.
    ///
    /// # Errors
    /// Only if the shipped file is broken (a test guards against that).
    pub fn builtin() -> Result<Catalog, Vec<RuleError>> {
        Catalog::parse(BUILTIN, BUILTIN_NAME)
    }

    /// The built-in catalog, compiled once per process.
    ///
    /// # Panics
    /// If the shipped file is broken (a test guards against that).
    pub fn shared_builtin() -> std::sync::Arc<Catalog> {
        static BUILT: std::sync::OnceLock<std::sync::Arc<Catalog>> = std::sync::OnceLock::new();
        BUILT
            .get_or_init(|| {
                std::sync::Arc::new(
                    Catalog::builtin().expect("the shipped launch catalog is valid"),
                )
            })
            .clone()
    }

    /// Compiles one catalog file.
    ///
    /// # Errors
    /// Every problem, at its `file:line:column`.
    pub fn parse(text: &str, file: &str) -> Result<Catalog, Vec<RuleError>> {
        let raw: File = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("").trim();
            let first = first.strip_prefix("error:").unwrap_or(first).trim();
            let message = match first.strip_prefix("line ") {
                Some(rest) => rest.split_once(": ").map_or(first, |(_, m)| m).to_string(),
                None => first.to_string(),
            };
            vec![RuleError {
                file: file.to_string(),
                line,
                column,
                message,
            }]
        })?;
        let mut errors = Vec::new();
        let mut extractors: Vec<Extractor> = Vec::new();
        for e in &raw.apis {
            let mut paths =
                |list: &[Spanned<String>], what: &str| compile_paths(&mut errors, file, list, what);
            let count = paths(&e.count, "count");
            let instance_types = paths(&e.instance_types, "instance_types");
            let ids = paths(&e.ids, "ids");
            let instance_ids = paths(&e.instance_ids, "instance_ids");
            let launch_template = paths(&e.launch_template, "launch_template");
            let auto_scaling_group = paths(&e.auto_scaling_group, "auto_scaling_group");
            let cpu_units = paths(&e.cpu_units, "cpu_units");
            let vcpus = paths(&e.vcpus, "vcpus");
            let memory_mib = paths(&e.memory_mib, "memory_mib");
            let requires = paths(&e.requires, "requires");
            let only_if = e.only_if.as_ref().and_then(|(p, values)| {
                let path = compile_paths(&mut errors, file, std::slice::from_ref(p), "only_if");
                if values.is_empty() {
                    errors.push(error_at(
                        file,
                        p,
                        "only_if: expected [path, [values…]] with at least one value".into(),
                    ));
                }
                path.into_iter().next().map(|p| (p, values.clone()))
            });
            let Some((source, name)) = e.event.value.split_once(':') else {
                errors.push(error_at(
                    file,
                    &e.event,
                    format!(
                        "event {:?}: expected `eventSource:eventName` (e.g. ec2.amazonaws.com:RunInstances)",
                        e.event.value
                    ),
                ));
                continue;
            };
            if !source.ends_with(".amazonaws.com") || source.contains('*') || name.is_empty() {
                errors.push(error_at(
                    file,
                    &e.event,
                    format!(
                        "event {:?}: expected a service's eventSource (`….amazonaws.com`, no wildcard) and an event name",
                        e.event.value
                    ),
                ));
                continue;
            }
            // A call AWS does not make would silently never be a launch.
            if let Err(m) = crate::rules::names::check_event(Some(source), name) {
                errors.push(error_at(file, &e.event, format!("event: {m}")));
            }
            let kind = &e.kind.value;
            if kind.is_empty()
                || !kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                errors.push(error_at(
                    file,
                    &e.kind,
                    format!("kind {kind:?}: expected snake_case (e.g. training_job)"),
                ));
            }
            if e.instance_types.is_empty()
                && e.count.is_empty()
                && e.cpu_units.is_empty()
                && e.vcpus.is_empty()
                && e.memory_mib.is_empty()
                && e.auto_scaling_group.is_empty()
                && e.launch_template.is_empty()
            {
                errors.push(error_at(
                    file,
                    &e.kind,
                    "says nothing of what is bought: give count, instance_types, cpu_units, vcpus, memory_mib, launch_template or auto_scaling_group".into(),
                ));
            }
            if let Some(dup) = extractors
                .iter()
                .find(|x| x.source == source && x.name == Glob::new(name))
            {
                errors.push(error_at(
                    file,
                    &e.event,
                    format!(
                        "event {:?} is declared twice (also at {})",
                        e.event.value, dup.origin
                    ),
                ));
                continue;
            }
            extractors.push(Extractor {
                source: source.to_string(),
                name: Glob::new(name),
                name_text: name.to_string(),
                kind: Str::from(kind.as_str()),
                count,
                instance_types,
                ids,
                instance_ids,
                launch_template,
                auto_scaling_group,
                cpu_units,
                vcpus,
                memory_mib,
                only_if,
                requires,
                origin: format!(
                    "{file}:{}:{}",
                    e.event.referenced.line(),
                    e.event.referenced.column()
                ),
            });
        }
        if raw.apis.is_empty() {
            errors.push(RuleError {
                file: file.to_string(),
                line: 1,
                column: 1,
                message: "apis: the list is empty".into(),
            });
        }
        if errors.is_empty() {
            Ok(Catalog::indexed(extractors))
        } else {
            Err(errors)
        }
    }

    fn indexed(extractors: Vec<Extractor>) -> Catalog {
        Catalog {
            literal_names: extractors
                .iter()
                .filter_map(|x| x.name.literal().map(str::to_string))
                .collect(),
            has_patterns: extractors.iter().any(|x| x.name.literal().is_none()),
            extractors,
        }
    }

    /// This catalog with `other`'s entries added; an entry of `other` for an event this one
    /// has replaces it.
    pub fn extended(mut self, other: Catalog) -> Catalog {
        for x in other.extractors {
            self.extractors
                .retain(|have| !(have.source == x.source && have.name == x.name));
            self.extractors.push(x);
        }
        Catalog::indexed(self.extractors)
    }

    /// The built-in catalog, extended with the `*.yaml` files of `dir` (sorted by name)
    /// when the folder exists.
    ///
    /// # Errors
    /// Every problem of every file, at its location.
    pub fn load_dir(dir: &std::path::Path) -> Result<Catalog, Vec<RuleError>> {
        let mut catalog = Catalog::builtin()?;
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(catalog);
        };
        let mut paths: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        let mut errors = Vec::new();
        for p in paths {
            let file = p.display().to_string();
            match crate::local_file::read_to_string(&p, crate::local_file::RULE_MAX) {
                Ok(text) => match Catalog::parse(&text, &file) {
                    Ok(c) => catalog = catalog.extended(c),
                    Err(mut e) => errors.append(&mut e),
                },
                Err(e) => errors.push(RuleError {
                    file,
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    fn find(&self, source: &str, name: &str) -> Option<&Extractor> {
        if !self.has_patterns && !self.literal_names.contains(name) {
            return None;
        }
        self.extractors
            .iter()
            .rev()
            .find(|x| x.source == source && x.name.matches(name))
    }

    /// How many APIs the catalog has.
    pub fn len(&self) -> usize {
        self.extractors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.extractors.is_empty()
    }

    /// Whether a call of this event is in the catalog.
    pub fn covers(&self, source: &str, name: &str) -> bool {
        self.find(source, name).is_some()
    }

    /// The event name patterns of the catalog (for selectors with `launch: true`).
    pub fn event_names(&self) -> impl Iterator<Item = &Glob> {
        self.extractors.iter().map(|x| &x.name)
    }

    /// The `eventSource:eventName` of every entry, for a person.
    pub fn describe(&self) -> Vec<String> {
        self.extractors
            .iter()
            .map(|x| format!("{}:{} ({})", x.source, x.name_text, x.kind))
            .collect()
    }

    /// Makes the signal of a successful call of a catalogued API a launch: sets
    /// `fields.launch`, and adds the EC2 instances it started. Calls that failed, or that the
    /// entry's `only_if`/`requires` rule out, are left as they are.
    pub fn extract(&self, signal: &mut Signal, request: Option<&str>, response: Option<&str>) {
        if signal.fields.error_code.is_some() {
            return;
        }
        let (Some(source), Some(name)) = (
            signal.fields.event_source.as_deref(),
            signal.fields.event_name.as_deref(),
        ) else {
            return;
        };
        let Some(x) = self.find(source, name) else {
            return;
        };
        // Shapes differ between API versions and publishers: a part that cannot be read
        // costs what it would have given, never the record.
        let doc = Doc::new(request, response);
        let all =
            |paths: &[Path]| -> Vec<Value> { paths.iter().flat_map(|p| p.values(&doc)).collect() };
        let first = |paths: &[Path]| -> Vec<Value> {
            paths
                .iter()
                .map(|p| p.values(&doc))
                .find(|v| !v.is_empty())
                .unwrap_or_default()
        };
        if let Some((path, allowed)) = &x.only_if {
            let values = path.values(&doc);
            if !values
                .iter()
                .filter_map(text)
                .any(|v| allowed.iter().any(|a| a == v.as_str()))
            {
                return;
            }
        }
        if !x.requires.is_empty() && first(&x.requires).is_empty() {
            return;
        }
        let texts = |values: Vec<Value>| -> Vec<Str> {
            let mut out: Vec<Str> = Vec::new();
            for v in values.iter().filter_map(text) {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            out
        };
        let mut launch = Launch {
            kind: x.kind.clone(),
            instance_types: texts(all(&x.instance_types)),
            resource_ids: texts(all(&x.ids)),
            launch_template: texts(first(&x.launch_template)).into_iter().next(),
            auto_scaling_group: texts(first(&x.auto_scaling_group)).into_iter().next(),
            ..Launch::default()
        };
        let counted = first(&x.count);
        let count: u64 = if counted.is_empty() {
            (launch.resource_ids.len() as u64).max(1)
        } else if counted.iter().all(|v| v.is_number() || number(v).is_some()) {
            counted.iter().filter_map(number).map(|n| n as u64).sum()
        } else {
            counted.len() as u64
        };
        launch.count = count.min(MAX_COUNT) as u32;
        // Per-unit quantities: one value is per unit; one per unit is summed.
        let per_unit = |values: Vec<Value>, n: u32| -> Option<f64> {
            let nums: Vec<f64> = values.iter().filter_map(number).collect();
            match nums.as_slice() {
                [] => None,
                [one] => Some(one * f64::from(n)),
                many => Some(many.iter().sum()),
            }
        };
        if let Some(units) = per_unit(first(&x.cpu_units), launch.count) {
            launch.vcpus = Some((units / 1024.0).ceil().min(f64::from(u32::MAX)) as u32);
            launch.stated_vcpus = true;
        }
        if let Some(v) = first(&x.vcpus).iter().find_map(number) {
            launch.vcpus = Some(v.min(f64::from(u32::MAX)) as u32);
            launch.stated_vcpus = true;
        }
        launch.memory_mib = per_unit(first(&x.memory_mib), launch.count).map(|m| m as u64);
        launch.compute();
        if launch.count == 0 {
            // Scaled to nothing (desiredCapacity 0): no compute bought.
            return;
        }
        let region = signal.region.clone();
        if let Some(asg) = &launch.auto_scaling_group {
            let id = crate::signal::EntityId::scoped(
                EntityKind::AutoScalingGroup,
                signal.account.as_deref(),
                region.as_deref(),
                asg,
            );
            if !signal.resources.contains(&id) {
                signal.resources.push(id);
            }
        }
        for id in texts(all(&x.instance_ids)) {
            if !crate::signal::is_instance_id(&id)
                || signal.instances.iter().any(|i| i.instance_id == id)
            {
                continue;
            }
            signal.instances.push(InstanceInfo {
                instance_id: id,
                launched: true,
                instance_type: launch.instance_types.first().cloned(),
                launch_template: launch.launch_template.clone(),
                ..InstanceInfo::default()
            });
        }
        set_fields(signal, launch);
    }
}

/// Mirrors a launch into the fields rules already know (for calls `run_instances` did not
/// read itself), and keeps it on the signal.
fn set_fields(signal: &mut Signal, launch: Launch) {
    let f = &mut signal.fields;
    if f.requested_instance_type.is_none() {
        f.requested_instance_type = launch.instance_types.first().cloned();
    }
    let mut launch = launch;
    if f.launched_count.is_none() {
        f.launched_count = Some(launch.count);
        f.launched_vcpus = launch.vcpus;
    } else if f.launched_vcpus.is_some() {
        // `RunInstances` counted its instances' vCPUs from `cpuOptions`: the same totals.
        launch.vcpus = f.launched_vcpus;
    }
    f.launch = Some(Box::new(launch));
}

/// What an Auto Scaling group launches, as of a time: (time, its types, its template).
type GroupTypes = (Millis, Vec<Str>, Option<Str>);

/// Instance types of launch templates and Auto Scaling groups, learned in event-time order
/// from the calls that create or change them, to fill in launches that name one but no type.
#[derive(Debug, Default)]
pub struct Resolver {
    /// Launch template id or name → (time, type), by account.
    templates: BTreeMap<(Str, Str), Vec<(Millis, Str)>>,
    /// Auto Scaling group (scoped id) → (time, types, template).
    groups: BTreeMap<Str, Vec<GroupTypes>>,
}

impl Resolver {
    /// Learns what a signal says about templates and groups.
    pub fn learn(&mut self, s: &Signal) {
        if s.fields.error_code.is_some() {
            return;
        }
        let account = Str::from(s.account.as_deref().unwrap_or(""));
        let name = s.fields.event_name.as_deref().unwrap_or("");
        if matches!(name, "CreateLaunchTemplate" | "CreateLaunchTemplateVersion")
            && let Some(t) = s.fields.requested_instance_type.clone()
        {
            for r in s
                .resources
                .iter()
                .filter(|r| r.kind == EntityKind::LaunchTemplate)
            {
                let list = self
                    .templates
                    .entry((account.clone(), r.id.clone()))
                    .or_default();
                if !list.iter().any(|(at, have)| *at == s.time && *have == t) {
                    list.push((s.time, t.clone()));
                    list.sort();
                }
            }
        }
        // A group's types, or its template: from its launch, or (for a group created or
        // changed without capacity, which buys nothing) from the template the call names.
        let group = match s.fields.launch.as_deref() {
            Some(l) if l.kind == "auto_scaling_group" => {
                Some((l.instance_types.clone(), l.launch_template.clone()))
            }
            Some(_) => None,
            None if matches!(name, "CreateAutoScalingGroup" | "UpdateAutoScalingGroup") => s
                .resources
                .iter()
                .find(|r| r.kind == EntityKind::LaunchTemplate)
                .map(|lt| (Vec::new(), Some(lt.id.clone()))),
            None => None,
        };
        if let Some((types, template)) = group.filter(|(t, lt)| !t.is_empty() || lt.is_some()) {
            for r in s
                .resources
                .iter()
                .filter(|r| r.kind == EntityKind::AutoScalingGroup)
            {
                let list = self.groups.entry(r.id.clone()).or_default();
                let entry = (s.time, types.clone(), template.clone());
                if !list.contains(&entry) {
                    list.push(entry);
                    list.sort_by_key(|g| g.0);
                }
            }
        }
    }

    fn template_type(&self, account: &Str, template: &Str, at: Millis) -> Option<Str> {
        let list = self.templates.get(&(account.clone(), template.clone()))?;
        list.iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .or(list.first())
            .map(|(_, ty)| ty.clone())
    }

    /// Fills in the instance types of a launch that has none, from its template or group.
    /// Returns whether it changed the signal.
    pub fn resolve(&self, s: &mut Signal) -> bool {
        let Some(l) = s.fields.launch.as_deref() else {
            return false;
        };
        if !l.instance_types.is_empty() {
            return false;
        }
        let account = Str::from(s.account.as_deref().unwrap_or(""));
        let mut template = l.launch_template.clone();
        let mut types = Vec::new();
        if template.is_none()
            && let Some(asg) = s
                .resources
                .iter()
                .find(|r| r.kind == EntityKind::AutoScalingGroup)
            && let Some(list) = self.groups.get(&asg.id)
            && let Some((_, t, lt)) = list
                .iter()
                .rev()
                .find(|(at, _, _)| *at <= s.time)
                .or(list.first())
        {
            types.clone_from(t);
            template.clone_from(lt);
        }
        if types.is_empty()
            && let Some(lt) = &template
            && let Some(t) = self.template_type(&account, lt, s.time)
        {
            types.push(t);
        }
        if types.is_empty() {
            return false;
        }
        let mut l = s.fields.launch.take().map(|b| *b).unwrap_or_default();
        l.instance_types = types;
        l.compute();
        let f = &mut s.fields;
        if f.requested_instance_type.is_none() {
            f.requested_instance_type = l.instance_types.first().cloned();
        }
        if f.launched_vcpus.is_none() {
            f.launched_vcpus = l.vcpus;
        }
        for i in s.instances.iter_mut().filter(|i| i.launched) {
            if i.instance_type.is_none() {
                i.instance_type = l.instance_types.first().cloned();
                i.vcpus = i
                    .instance_type
                    .as_deref()
                    .and_then(crate::instance_types::vcpus);
            }
        }
        if f.launched_vcpus.is_some() && s.instances.iter().any(|i| i.launched) {
            let sum: u32 = s
                .instances
                .iter()
                .filter(|i| i.launched)
                .map(|i| i.vcpus.unwrap_or(0))
                .sum();
            f.launched_vcpus = Some(sum.max(l.vcpus.unwrap_or(0)));
        }
        f.launch = Some(Box::new(l));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_loads() {
        let c = Catalog::builtin().expect("the shipped catalog is valid");
        for (source, name) in [
            ("ec2.amazonaws.com", "RunInstances"),
            ("ec2.amazonaws.com", "CreateFleet"),
            ("ec2.amazonaws.com", "RequestSpotInstances"),
            ("ec2.amazonaws.com", "RequestSpotFleet"),
            ("autoscaling.amazonaws.com", "CreateAutoScalingGroup"),
            ("autoscaling.amazonaws.com", "UpdateAutoScalingGroup"),
            ("autoscaling.amazonaws.com", "SetDesiredCapacity"),
            ("ec2.amazonaws.com", "ModifyInstanceAttribute"),
            ("ecs.amazonaws.com", "RunTask"),
            ("ecs.amazonaws.com", "CreateService"),
            ("sagemaker.amazonaws.com", "CreateTrainingJob"),
            ("sagemaker.amazonaws.com", "CreateProcessingJob"),
            ("sagemaker.amazonaws.com", "CreateNotebookInstance"),
            ("sagemaker.amazonaws.com", "CreateEndpointConfig"),
            ("batch.amazonaws.com", "CreateComputeEnvironment"),
            ("eks.amazonaws.com", "CreateNodegroup"),
            ("lightsail.amazonaws.com", "CreateInstances"),
            ("lambda.amazonaws.com", "CreateFunction20150331"),
        ] {
            assert!(c.covers(source, name), "{source}:{name}");
        }
        assert!(!c.covers("lambda.amazonaws.com", "CreateFunctionUrlConfig"));
        assert!(!c.covers("ec2.amazonaws.com", "DescribeInstances"));
    }

    #[test]
    fn paths_walk_lists_and_single_objects() {
        let v = r#" {"a": {"item": [{"ids": {"item": "i-1"}}, {"ids": {"item": ["i-2", "i-3"]}},
            {"ids": null}, {"ids": {"item": null}}, "x", {"ids": {"item": "i-0", "item": ["i-4"]}}]},
            "b": {"value": "p3.2xlarge"}, "n": [1, 2.5, "3"], "e": "a\"b"} "#;
        let p = Path::parse("response.a.item[].ids.item[]").unwrap();
        let got: Vec<_> = p
            .values(&Doc::new(None, Some(v)))
            .iter()
            .filter_map(text)
            .collect();
        // The last of a key written twice, as a parsed object keeps it.
        assert_eq!(got, ["i-1", "i-2", "i-3", "i-4"]);
        assert!(
            p.values(&Doc::new(Some(v), None)).is_empty(),
            "a response path reads the response"
        );
        let one = |path: &str| Path::parse(path).unwrap().values(&Doc::new(None, Some(v)));
        assert_eq!(
            one("response.b")
                .iter()
                .filter_map(text)
                .collect::<Vec<_>>(),
            ["p3.2xlarge"]
        );
        assert_eq!(one("response.n").len(), 1, "a list not walked is one value");
        let nums: Vec<f64> = one("response.n[]").iter().filter_map(number).collect();
        assert_eq!(nums, [1.0, 2.5, 3.0]);
        assert_eq!(
            one("response.e")
                .iter()
                .filter_map(text)
                .collect::<Vec<_>>(),
            ["a\"b"]
        );
        assert!(one("response.missing").is_empty());
        assert!(
            one("response.a.item.ids").is_empty(),
            "a list is not an object"
        );
        assert!(
            Path::parse("request.a")
                .unwrap()
                .values(&Doc::new(Some("null"), None))
                .is_empty()
        );
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let text = "apis:\n  - event: ec2.amazonaws.com:CreateFleet\n    kind: fleet\n    count: [request.Target..Capacity]\n    instance_types: [responses.x]\n  - event: RunTask\n    kind: task\n    cpu_units: [request.cpu]\n";
        let errs = Catalog::parse(text, "x.yaml").unwrap_err();
        let shown: Vec<String> = errs
            .iter()
            .map(|e| format!("{}:{}:{}: {}", e.file, e.line, e.column, e.message))
            .collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with("x.yaml:4:13: count: path"),
            "{shown:#?}"
        );
        assert!(
            shown[1].starts_with("x.yaml:5:22: instance_types: path"),
            "{shown:#?}"
        );
        assert!(
            shown[2].starts_with("x.yaml:6:12: event \"RunTask\""),
            "{shown:#?}"
        );
        let unknown = Catalog::parse(
            "apis:\n  - event: ec2.amazonaws.com:CreateFleet\n    kinds: x\n",
            "y.yaml",
        )
        .unwrap_err();
        assert_eq!((unknown[0].line, unknown[0].column), (3, 5), "{unknown:?}");
        let twice = "apis:\n  - {event: \"ec2.amazonaws.com:CreateFleet\", kind: x, instance_types: [request.t]}\n  - {event: \"ec2.amazonaws.com:CreateFleet\", kind: x, instance_types: [request.t]}\n";
        let e = Catalog::parse(twice, "z.yaml").unwrap_err();
        assert_eq!(e[0].line, 3);
        assert!(
            e[0].message.contains("declared twice (also at z.yaml:2:"),
            "{e:?}"
        );
        // A call AWS does not make, misspelled: named, with the nearest real one.
        let typo = "apis:\n  - {event: \"gamelift.amazonaws.com:CreateFleetz\", kind: game_fleet, instance_types: [request.t]}\n";
        let e = Catalog::parse(typo, "t.yaml").unwrap_err();
        assert_eq!((e.len(), e[0].line), (1, 2), "{e:?}");
        assert!(
            e[0].message
                .contains("\"CreateFleetz\" is not an event name of gamelift.amazonaws.com")
                && e[0].message.contains("did you mean \"CreateFleet\"?"),
            "{e:?}"
        );
    }

    /// The launch of one call, decoded as the pipeline decodes it.
    fn launch_of(record: serde_json::Value) -> Option<Launch> {
        let bytes = serde_json::to_vec(&record).unwrap();
        let mut out = None;
        crate::normalize::decode_reader(
            bytes.as_slice(),
            &crate::normalize::DecodeOptions::default(),
            &mut |d| {
                if let crate::normalize::Decoded::Signal(_, s) = d {
                    out = s.fields.launch.map(|l| *l);
                }
            },
        );
        out
    }

    fn call(source: &str, name: &str, req: Value, resp: Value) -> Value {
        serde_json::json!({
            "eventVersion": "1.10", "eventTime": "2025-06-02T09:20:00Z", "eventSource": source,
            "eventName": name, "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "eventID": "00000000-0000-4000-8000-000000000001",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::111122223333:user/a", "accountId": "111122223333"},
            "requestParameters": req, "responseElements": resp
        })
    }

    #[test]
    fn fargate_tasks_count_cpu_units_and_memory() {
        let tasks = |cpu: &str| {
            serde_json::json!({"tasks": [
                {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/1", "cpu": cpu, "memory": "8192"},
                {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/2", "cpu": cpu, "memory": "8192"}]})
        };
        let l = launch_of(call(
            "ecs.amazonaws.com",
            "RunTask",
            serde_json::json!({"launchType": "FARGATE", "count": 2}),
            tasks("4096"),
        ))
        .expect("a Fargate RunTask is a launch");
        assert_eq!((l.kind.as_str(), l.count), ("task", 2));
        assert_eq!(l.vcpus, Some(8), "2 tasks x 4096 units / 1024");
        assert_eq!(l.memory_mib, Some(16384));
        assert_eq!(l.resource_ids.len(), 2);
        // Tasks placed on the cluster's own EC2 instances buy nothing.
        assert_eq!(
            launch_of(call(
                "ecs.amazonaws.com",
                "RunTask",
                serde_json::json!({"launchType": "EC2", "count": 2}),
                tasks("4096"),
            )),
            None
        );
    }

    #[test]
    fn a_function_is_a_launch_of_one_without_vcpus() {
        let l = launch_of(call(
            "lambda.amazonaws.com",
            "CreateFunction20150331",
            serde_json::json!({"functionName": "f", "memorySize": 512}),
            serde_json::json!({"functionArn": "arn:aws:lambda:us-east-1:1:function:f", "memorySize": 512}),
        ))
        .expect("a function is a launch");
        assert_eq!(
            (l.kind.as_str(), l.count, l.vcpus, l.memory_mib),
            ("function", 1, None, Some(512))
        );
        assert_eq!(l.resource_ids, ["arn:aws:lambda:us-east-1:1:function:f"]);
    }

    #[test]
    fn calls_that_buy_nothing_are_no_launch() {
        // Stratus Red Team's ModifyInstanceAttribute changes userData, not the type.
        let user_data = call(
            "ec2.amazonaws.com",
            "ModifyInstanceAttribute",
            serde_json::json!({"instanceId": "i-0123456789abcdef0", "userData": "<sensitiveDataRemoved>"}),
            serde_json::json!({"_return": true}),
        );
        assert_eq!(launch_of(user_data), None);
        let resize = call(
            "ec2.amazonaws.com",
            "ModifyInstanceAttribute",
            serde_json::json!({"instanceId": "i-0123456789abcdef0", "instanceType": {"value": "c5.4xlarge"}}),
            serde_json::json!({"_return": true}),
        );
        let l = launch_of(resize).expect("a type change is a launch");
        assert_eq!((l.count, l.vcpus), (1, Some(16)));
        assert_eq!(l.instance_types, ["c5.4xlarge"]);
        // A group's health-check change; a group scaled to zero; a failed call.
        for (name, req) in [
            (
                "UpdateAutoScalingGroup",
                serde_json::json!({"autoScalingGroupName": "g", "healthCheckType": "ELB"}),
            ),
            (
                "SetDesiredCapacity",
                serde_json::json!({"autoScalingGroupName": "g", "desiredCapacity": 0}),
            ),
        ] {
            assert_eq!(
                launch_of(call("autoscaling.amazonaws.com", name, req, Value::Null)),
                None,
                "{name}"
            );
        }
        let mut failed = call(
            "ec2.amazonaws.com",
            "RequestSpotInstances",
            serde_json::json!({"instanceCount": 4, "launchSpecification": {"instanceType": "p3.16xlarge"}}),
            Value::Null,
        );
        failed["errorCode"] = "Client.MaxSpotInstanceCountExceeded".into();
        assert_eq!(launch_of(failed), None);
    }

    #[test]
    fn counts_of_several_parts_add_up_and_the_largest_type_counts() {
        let l = launch_of(call(
            "sagemaker.amazonaws.com",
            "CreateEndpointConfig",
            serde_json::json!({"productionVariants": [
                {"instanceType": "ml.c5.xlarge", "initialInstanceCount": 2},
                {"instanceType": "ml.c5.4xlarge", "initialInstanceCount": 3}]}),
            serde_json::json!({"endpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/e"}),
        ))
        .unwrap();
        assert_eq!(l.count, 5);
        assert_eq!(l.instance_types, ["ml.c5.xlarge", "ml.c5.4xlarge"]);
        assert_eq!(
            l.vcpus,
            Some(80),
            "5 x 16, the largest type's vCPUs (an upper bound)"
        );
    }

    #[test]
    fn a_folder_adds_an_api_and_replaces_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("extra.yaml"),
            "apis:\n  - event: gamelift.amazonaws.com:CreateFleet\n    kind: game_fleet\n    instance_types: [request.eC2InstanceType]\n    ids: [response.fleetAttributes.fleetArn]\n  - event: lambda.amazonaws.com:CreateFunction20150331\n    kind: serverless\n    memory_mib: [request.memorySize]\n",
        )
        .unwrap();
        let c = Catalog::load_dir(dir.path()).expect("the folder's catalog loads");
        assert!(c.covers("gamelift.amazonaws.com", "CreateFleet"));
        assert!(
            c.covers("ec2.amazonaws.com", "RunInstances"),
            "built-in entries stay"
        );
        let kinds: Vec<String> = c.describe();
        assert!(
            kinds.contains(&"lambda.amazonaws.com:CreateFunction20150331 (serverless)".to_string()),
            "{kinds:?}"
        );
        assert!(
            !kinds.contains(&"lambda.amazonaws.com:CreateFunction20150331 (function)".to_string())
        );
        std::fs::write(
            dir.path().join("broken.yaml"),
            "apis:\n  - event: ec2.amazonaws.com:CreateFleet\n    kind: Bad-Kind\n    count: [request.n]\n",
        )
        .unwrap();
        let errs = Catalog::load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].file.ends_with("broken.yaml") && errs[0].line == 3 && errs[0].column == 11,
            "{errs:?}"
        );
        assert!(errs[0].message.contains("snake_case"), "{errs:?}");
    }

    #[test]
    fn a_launch_takes_the_template_version_in_force_when_it_was_made() {
        let template = |time: Millis, ty: &str| {
            let mut s = Signal {
                time,
                account: Some("111122223333".into()),
                region: Some("us-east-1".into()),
                source: crate::signal::Source::CloudTrail,
                kind: "ec2.amazonaws.com:CreateLaunchTemplateVersion".into(),
                severity: 0.0,
                reference: crate::signal::RecordRef::EventId(format!("lt-{time}").into()),
                updated_at: None,
                actor: None,
                instances: Vec::new(),
                resources: vec![crate::signal::EntityId::new(
                    EntityKind::LaunchTemplate,
                    "lt-1",
                )],
                endpoints: Vec::new(),
                fields: crate::signal::Fields::default(),
            };
            s.fields.event_name = Some("CreateLaunchTemplateVersion".into());
            s.fields.requested_instance_type = Some(ty.into());
            s
        };
        let mut r = Resolver::default();
        r.learn(&template(300, "p3.16xlarge"));
        r.learn(&template(100, "t3.micro"));
        let launch_at = |time: Millis| {
            let mut s = template(time, "unused");
            s.fields.event_name = Some("RequestSpotFleet".into());
            s.fields.requested_instance_type = None;
            s.fields.launch = Some(Box::new(Launch {
                kind: "fleet".into(),
                count: 2,
                launch_template: Some("lt-1".into()),
                ..Launch::default()
            }));
            assert!(r.resolve(&mut s));
            s.fields.launch.unwrap()
        };
        assert_eq!(launch_at(200).instance_types, ["t3.micro"]);
        let l = launch_at(400);
        assert_eq!(
            (l.instance_types[0].as_str(), l.vcpus),
            ("p3.16xlarge", Some(128))
        );
        // Before any version: the first one known.
        assert_eq!(launch_at(50).instance_types, ["t3.micro"]);
    }
}
