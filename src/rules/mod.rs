//! Correlation rules: the YAML format ([`model`]), checking and compiling ([`compile`]),
//! the named fields they select on ([`fields`]), and loading a rule set from a folder or from
//! the rules built into the binary.
//!
//! The YAML crate stays behind this module: nothing else parses YAML.

pub mod compile;
pub mod fields;
pub mod lists;
pub mod model;
pub mod names;

use std::path::Path;

pub use compile::{Emit, GroupBy, Label, Rule, RuleError};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
}

/// Rules in evaluation order: a rule comes after every rule whose signals it selects.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// The compute-buying APIs whose calls are launches (`launch: true` selects them).
    pub launches: std::sync::Arc<crate::launch::Catalog>,
    /// The shipped lists, edited by the `lists/` folder of a `--rules` folder (the
    /// configuration edits them further: [`crate::matcher::MatchOptions::lists`]).
    pub lists: lists::Lists,
    /// The Sigma rules loaded (`--sigma`, `[rules] sigma`; none by default): their matches are
    /// `sigma:<id>` signals, which `sigma:` selectors take (see [`RuleSet::with_sigma`]).
    pub sigma: std::sync::Arc<crate::sigma::SigmaSet>,
}

impl RuleSet {
    /// The rules shipped in `correlation-rules/`, built into the binary.
    ///
    /// # Errors
    /// Only if a shipped rule is broken (a test guards against that).
    pub fn builtin() -> Result<RuleSet, Vec<RuleError>> {
        let files = builtin::BUILTIN
            .iter()
            .map(|(name, text)| (format!("built-in:{name}"), stem(name), text.to_string()));
        RuleSet::from_texts(files)
    }

    /// Every `*.yaml` file of a folder (not recursive), sorted by name.
    ///
    /// # Errors
    /// Every problem of every file, each with its location.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let err = |message: String| {
            vec![RuleError {
                file: dir.display().to_string(),
                line: 1,
                column: 1,
                message,
            }]
        };
        let rd =
            std::fs::read_dir(dir).map_err(|e| err(format!("cannot read rules folder: {e}")))?;
        let mut paths: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(err("no rule files (*.yaml) in the rules folder".into()));
        }
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match crate::local_file::read_to_string(&p, crate::local_file::RULE_MAX) {
                Ok(text) => {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    files.push((p.display().to_string(), stem(name), text));
                }
                Err(e) => errors.push(RuleError {
                    file: p.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        // The folder's `launches/` adds compute-buying APIs to the built-in ones.
        let launches = match crate::launch::Catalog::load_dir(&dir.join("launches")) {
            Ok(c) => std::sync::Arc::new(c),
            Err(mut e) => {
                errors.append(&mut e);
                crate::launch::Catalog::shared_builtin()
            }
        };
        let lists = lists::Lists::builtin().and_then(|l| l.with_folder(&dir.join("lists")));
        if let Err(mut e) = lists.clone() {
            errors.append(&mut e);
        }
        match RuleSet::from_texts(files.into_iter()) {
            Ok(mut set) if errors.is_empty() => {
                set.launches = launches;
                if let Ok(l) = lists {
                    set.lists = l;
                }
                Ok(set)
            }
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Compiles (file, stem, text) triples, checks ids are unique, references resolve and
    /// there are no cycles, and orders the rules.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_texts(
        files: impl Iterator<Item = (String, String, String)>,
    ) -> Result<RuleSet, Vec<RuleError>> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for (file, stem, text) in files {
            match compile::compile(&text, &file, Some(&stem)) {
                Ok(r) => rules.push(r),
                Err(mut e) => errors.append(&mut e),
            }
        }
        let top = |r: &Rule, message: String| RuleError {
            file: r.origin.clone(),
            line: 1,
            column: 1,
            message,
        };
        for (i, r) in rules.iter().enumerate() {
            if rules[..i].iter().any(|o| o.id == r.id) {
                errors.push(top(
                    r,
                    format!("rule id {:?} is used by another file too", r.id),
                ));
            }
            for p in r.absorbs.iter().filter(|p| !p.contains('*')) {
                if !rules.iter().any(|o| &o.id == p) {
                    errors.push(top(
                        r,
                        format!("rollup.absorbs names rule {p:?}, which is not loaded"),
                    ));
                }
            }
            for dep in r.depends_on() {
                match rules.iter().find(|o| o.id == dep) {
                    None => errors.push(top(
                        r,
                        format!("selects signals of rule {dep:?}, which is not loaded"),
                    )),
                    // Only a weak-signal rule's sequences become signals; a selector of a
                    // finding rule's would never match anything.
                    Some(o) if o.emit == Emit::Finding => errors.push(top(
                        r,
                        format!(
                            "selects the weak signals of rule {dep:?}, which writes findings and makes no weak signal (to join its findings, roll them up: `rollup.absorbs`)"
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Topological order (Kahn), keeping file order among independent rules.
        let mut ordered: Vec<Rule> = Vec::with_capacity(rules.len());
        let mut pending = rules;
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|r| r.depends_on().all(|d| ordered.iter().any(|o| o.id == d)));
            match ready {
                Some(i) => ordered.push(pending.remove(i)),
                None => {
                    let ids: Vec<&str> = pending.iter().map(|r| r.id.as_str()).collect();
                    return Err(pending
                        .iter()
                        .map(|r| {
                            top(
                                r,
                                format!(
                                    "rules select each other's signals in a cycle: {}",
                                    ids.join(", ")
                                ),
                            )
                        })
                        .collect());
                }
            }
        }
        Ok(RuleSet {
            rules: ordered,
            launches: crate::launch::Catalog::shared_builtin(),
            lists: lists::Lists::builtin()?,
            sigma: Default::default(),
        })
    }

    /// Attaches the Sigma rules (an empty set when none are configured) and works out which
    /// of them each `sigma:` selector takes.
    ///
    /// # Errors
    /// A `sigma.ids` entry naming a Sigma rule that is not loaded, at its place in the rule.
    pub fn with_sigma(mut self, set: crate::sigma::SigmaSet) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        for rule in &mut self.rules {
            for stage in &mut rule.stages {
                let Some(sel) = stage.selector.sigma.as_mut() else {
                    continue;
                };
                for (id, line, column) in sel.resolve(&set) {
                    errors.push(RuleError {
                        file: rule.origin.clone(),
                        line,
                        column,
                        message: format!(
                            "sigma.ids: Sigma rule {id:?} is not loaded ({})",
                            if set.is_empty() {
                                "no Sigma rules are: give their folder with --sigma DIR or `[rules] sigma`".to_string()
                            } else {
                                format!("{} Sigma rule(s) are", set.len())
                            }
                        ),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.sigma = std::sync::Arc::new(set);
        Ok(self)
    }

    /// A rule set of only the named rules (in the same order). The rules are shared, not
    /// recompiled.
    pub fn subset(&self, ids: &[String]) -> RuleSet {
        RuleSet {
            rules: self
                .rules
                .iter()
                .filter(|r| ids.contains(&r.id))
                .cloned()
                .collect(),
            launches: self.launches.clone(),
            lists: self.lists.clone(),
            sigma: self.sigma.clone(),
        }
    }

    /// The longest window of any rule (0 without rules).
    pub fn longest_window(&self) -> crate::time::Millis {
        self.rules.iter().map(|r| r.window).max().unwrap_or(0)
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn stem(name: &str) -> String {
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}
