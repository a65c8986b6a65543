//! Named lists of detection knowledge (high-risk APIs, high-powered instance types,
//! cryptomining finding types…), kept as files in `correlation-rules/lists/`, one list per
//! file named after it.
//!
//! Three layers, lowest first: the shipped files (built into the binary), the `lists/`
//! folder of a `--rules` folder, the configuration (`[lists.NAME]`, and the older
//! `rules.high_risk_apis` / `rules.high_powered_instance_types` keys). Each layer either
//! replaces a list (`values`) or extends it (`add`, `remove`). [`Lists`] hands the resolved
//! lists to the matcher, which alone decides from them (the ASFF sink reads its flags).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::RuleError;

/// The lists there are, with what each holds.
pub const NAMES: [(&str, &str); 4] = [
    (
        HIGH_RISK_APIS,
        "CloudTrail calls as `service:Api` (`iam:CreateAccessKey`, `cloudtrail:*Trail*`)",
    ),
    (
        HIGH_POWERED_INSTANCE_TYPES,
        "instance type patterns (`p*`, `*.metal*`)",
    ),
    (
        CRYPTOMINING_FINDING_TYPES,
        "GuardDuty finding type patterns (`CryptoCurrency:*`)",
    ),
    (
        MINING_POOL_DOMAINS,
        "domains of mining pools (a subdomain of one matches too)",
    ),
];
pub const HIGH_RISK_APIS: &str = "high_risk_apis";
pub const HIGH_POWERED_INSTANCE_TYPES: &str = "high_powered_instance_types";
pub const CRYPTOMINING_FINDING_TYPES: &str = "cryptomining_finding_types";
pub const MINING_POOL_DOMAINS: &str = "mining_pool_domains";

/// A set of domains that also holds their subdomains (`pool.supportxmr.com` is in a set that
/// holds `supportxmr.com`), matched without regard to case.
#[derive(Clone, Debug, Default)]
pub struct DomainSet(rustc_hash::FxHashSet<String>);

impl DomainSet {
    pub fn new<'a>(domains: impl Iterator<Item = &'a String>) -> DomainSet {
        DomainSet(
            domains
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        )
    }

    pub fn contains(&self, domain: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = d.as_str();
        loop {
            if self.0.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }
}

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_lists.rs"));
}

/// One change to a list: `values` replaces it, then `remove` takes values out and `add` puts
/// values in (once each).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEdit {
    /// The whole list, replacing what lower layers said.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Values added to the list of lower layers.
    #[serde(default)]
    pub add: Vec<String>,
    /// Values taken out of the list of lower layers.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A list file: an edit with where its values come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    #[allow(dead_code)]
    #[serde(default)]
    description: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    values: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    add: Vec<Spanned<String>>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
}

/// The resolved lists, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lists {
    lists: BTreeMap<String, Vec<String>>,
}

impl Lists {
    /// The shipped lists (`correlation-rules/lists/`), built into the binary.
    ///
    /// # Errors
    /// Only if a shipped list is broken (a test guards against that).
    pub fn builtin() -> Result<Lists, Vec<RuleError>> {
        let mut lists = Lists {
            lists: NAMES
                .iter()
                .map(|(n, _)| (n.to_string(), Vec::new()))
                .collect(),
        };
        let mut errors = Vec::new();
        for (name, text) in builtin::BUILTIN {
            lists.apply_file(&format!("built-in:lists/{name}"), name, text, &mut errors);
        }
        errors.is_empty().then_some(lists).ok_or(errors)
    }

    /// The shipped lists, then the `*.yaml` files of `dir` (a `--rules` folder's `lists/`;
    /// a missing folder changes nothing).
    ///
    /// # Errors
    /// Every problem of every file, each with its location.
    pub fn with_folder(mut self, dir: &Path) -> Result<Lists, Vec<RuleError>> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(self);
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
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match crate::local_file::read_to_string(&p, crate::local_file::RULE_MAX) {
                Ok(text) => self.apply_file(&file, name, &text, &mut errors),
                Err(e) => errors.push(error_at(&file, 1, 1, format!("cannot read: {e}"))),
            }
        }
        errors.is_empty().then_some(self).ok_or(errors)
    }

    fn apply_file(&mut self, file: &str, file_name: &str, text: &str, errors: &mut Vec<RuleError>) {
        let name = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
        if !self.lists.contains_key(name) {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            let hint = super::names::nearest(name, known.iter().copied())
                .map_or_else(String::new, |n| format!(" (did you mean {n}.yaml?)"));
            errors.push(error_at(
                file,
                1,
                1,
                format!(
                    "no list is named {name:?}{hint}; lists: {}",
                    known.join(", ")
                ),
            ));
            return;
        }
        let raw: ListFile = match serde_saphyr::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                let message = e.to_string();
                let first = message.lines().next().unwrap_or("").trim().to_string();
                errors.push(error_at(file, line, column, first));
                return;
            }
        };
        if raw.values.is_none() && raw.add.is_empty() && raw.remove.is_empty() {
            errors.push(error_at(
                file,
                1,
                1,
                "expected `values`, `add` or `remove`".into(),
            ));
            return;
        }
        let list = &self.lists[name];
        for r in &raw.remove {
            let base = raw.values.as_ref().map_or(list.clone(), |v| {
                v.iter().map(|s| s.value.clone()).collect()
            });
            if !base.contains(&r.value) {
                errors.push(error_at(
                    file,
                    r.referenced.line(),
                    r.referenced.column(),
                    format!("remove: {:?} is not in the list {name}", r.value),
                ));
            }
        }
        for v in raw.values.iter().flatten().chain(&raw.add) {
            if let Err(problem) = check_value(name, &v.value) {
                errors.push(error_at(
                    file,
                    v.referenced.line(),
                    v.referenced.column(),
                    problem,
                ));
            }
        }
        let edit = ListEdit {
            values: raw.values.map(|v| v.into_iter().map(|s| s.value).collect()),
            add: raw.add.into_iter().map(|s| s.value).collect(),
            remove: raw.remove.into_iter().map(|s| s.value).collect(),
        };
        self.apply(name, &edit);
    }

    /// Applies one edit to the named list (names are checked by the callers).
    pub fn apply(&mut self, name: &str, edit: &ListEdit) {
        let list = self.lists.entry(name.to_string()).or_default();
        // Membership by a set: the shipped pool list alone has thousands of values, which a
        // scan of the list per value made a quadratic cost of every start.
        if edit.values.is_some() {
            list.clear();
        }
        let removed: HashSet<&str> = edit.remove.iter().map(String::as_str).collect();
        list.retain(|x| !removed.contains(x.as_str()));
        let mut seen: HashSet<String> = list.iter().cloned().collect();
        let values = edit.values.iter().flatten();
        for x in values
            .filter(|x| !removed.contains(x.as_str()))
            .chain(&edit.add)
        {
            if seen.insert(x.clone()) {
                list.push(x.clone());
            }
        }
    }

    /// The list of this name (empty for a name no list has).
    pub fn get(&self, name: &str) -> &[String] {
        self.lists.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Checks one value of a list; the message says what was expected.
///
/// # Errors
/// What is wrong with the value.
pub fn check_value(list: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{list}: empty value"));
    }
    if list == HIGH_RISK_APIS && !value.contains(':') {
        return Err(format!(
            "{list}: {value:?} is not `service:Api` (e.g. \"iam:CreateAccessKey\")"
        ));
    }
    Ok(())
}

/// Whether `name` is a list.
pub fn is_list(name: &str) -> bool {
    NAMES.iter().any(|(n, _)| *n == name)
}

fn error_at(file: &str, line: u64, column: u64, message: String) -> RuleError {
    RuleError {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lists_load_and_each_list_has_a_file() {
        let l = Lists::builtin().expect("the shipped lists load");
        for (name, _) in NAMES {
            assert!(!l.get(name).is_empty(), "{name}");
        }
        assert!(
            l.get(HIGH_RISK_APIS)
                .iter()
                .any(|a| a == "cloudtrail:StopLogging")
        );
        assert!(l.get(HIGH_POWERED_INSTANCE_TYPES).iter().any(|a| a == "p*"));
    }

    #[test]
    fn domain_sets_hold_subdomains() {
        let l = Lists::builtin().unwrap();
        let pools = DomainSet::new(l.get(MINING_POOL_DOMAINS).iter());
        for (d, want) in [
            ("pool.supportxmr.com", true),
            ("POOL.SupportXMR.com.", true),
            ("xmr.pool.minergate.com", true),
            ("gulf.moneroocean.stream", true),
            ("example.com", false),
            ("com", false),
            ("amazonaws.com", false),
        ] {
            assert_eq!(pools.contains(d), want, "{d}");
        }
    }

    #[test]
    fn edits_replace_then_remove_then_add() {
        let mut l = Lists::builtin().unwrap();
        let before = l.get(HIGH_RISK_APIS).to_vec();
        l.apply(
            HIGH_RISK_APIS,
            &ListEdit {
                values: None,
                add: vec![
                    "iam:CreateServiceLinkedRole".into(),
                    "ssm:SendCommand".into(),
                ],
                remove: vec!["ssm:StartSession".into()],
            },
        );
        let after = l.get(HIGH_RISK_APIS);
        assert_eq!(
            after.len(),
            before.len(),
            "one out, one new in, one already there"
        );
        assert!(after.iter().any(|a| a == "iam:CreateServiceLinkedRole"));
        assert!(!after.iter().any(|a| a == "ssm:StartSession"));
        l.apply(
            HIGH_RISK_APIS,
            &ListEdit {
                values: Some(vec!["iam:CreateUser".into()]),
                add: vec!["iam:CreateUser".into()],
                remove: vec![],
            },
        );
        assert_eq!(l.get(HIGH_RISK_APIS), ["iam:CreateUser"]);
    }

    #[test]
    fn an_edit_keeps_first_mentions_in_order_and_adds_back_what_it_removes() {
        let mut l = Lists {
            lists: BTreeMap::new(),
        };
        let edit = |values: Option<&[&str]>, add: &[&str], remove: &[&str]| ListEdit {
            values: values.map(|v| v.iter().map(|x| x.to_string()).collect()),
            add: add.iter().map(|x| x.to_string()).collect(),
            remove: remove.iter().map(|x| x.to_string()).collect(),
        };
        l.apply("x", &edit(Some(&["b", "a", "b", "c", "a"]), &[], &["c"]));
        assert_eq!(l.get("x"), ["b", "a"]);
        l.apply("x", &edit(None, &["d", "a", "b", "d"], &["b"]));
        assert_eq!(l.get("x"), ["a", "d", "b"]);
        l.apply("x", &edit(Some(&["e"]), &["e", "f"], &["e"]));
        assert_eq!(l.get("x"), ["e", "f"]);
    }
}
