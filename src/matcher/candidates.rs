//! Which stages could select a signal, looked up by what the signal names: its event name,
//! its finding type, or the rule that made it.
//!
//! The reading threads ask [`Matcher::wants`](super::Matcher::wants) of every record, and
//! almost every record is a call or finding no stage names: one hash lookup rules it out,
//! where trying each stage's selector in turn cost more than a tenth of decoding. The stages
//! found are a superset of those that select the signal; their selectors still decide.

use rustc_hash::FxHashMap;

use crate::rules::RuleSet;
use crate::rules::compile::{CallReach, Glob, PatternSet};
use crate::signal::{Signal, Source};

/// A stage of a rule: indexes into [`RuleSet::rules`] and the rule's stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageRef {
    pub rule: usize,
    pub stage: usize,
}

/// The stages of a rule set by what they select on.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Stages naming an event name without wildcards, by that name.
    by_event: FxHashMap<String, Vec<StageRef>>,
    /// Stages naming an event name pattern.
    event_globs: Vec<(Glob, StageRef)>,
    /// Stages naming a finding type without wildcards, by that type.
    by_finding_type: FxHashMap<String, Vec<StageRef>>,
    /// Stages naming a finding type pattern.
    finding_globs: Vec<(Glob, StageRef)>,
    /// Stages selecting the weak signals of a rule, by its id.
    by_rule: FxHashMap<String, Vec<StageRef>>,
    /// Stages selecting the matches of a Sigma rule, by its id.
    by_sigma: FxHashMap<String, Vec<StageRef>>,
    /// Stages that name no kind of signal (they select by source and conditions): tried on
    /// every signal that is not a weak signal.
    any_kind: Vec<StageRef>,
}

impl Candidates {
    pub fn new(rules: &RuleSet) -> Candidates {
        let mut c = Candidates::default();
        for (ri, rule) in rules.rules.iter().enumerate() {
            for (si, stage) in rule.stages.iter().enumerate() {
                let at = StageRef {
                    rule: ri,
                    stage: si,
                };
                let sel = &stage.selector;
                let no_kind = sel.finding_types.is_empty()
                    && sel.events.is_empty()
                    && sel.rules.is_empty()
                    && sel.sigma.is_none();
                if no_kind && sel.launch {
                    // `launch: true` names the catalog's calls.
                    for name in rules.launches.event_names() {
                        match name.literal() {
                            Some(n) => c.by_event.entry(n.into()).or_default().push(at),
                            None => c.event_globs.push((name.clone(), at)),
                        }
                    }
                    continue;
                }
                if no_kind {
                    c.any_kind.push(at);
                    continue;
                }
                for g in &sel.finding_types {
                    match g.literal() {
                        Some(t) => c.by_finding_type.entry(t.into()).or_default().push(at),
                        None => c.finding_globs.push((g.clone(), at)),
                    }
                }
                // The event source is left to the selector: the name alone narrows enough.
                for (_, name) in &sel.events {
                    match name.literal() {
                        Some(n) => c.by_event.entry(n.into()).or_default().push(at),
                        None => c.event_globs.push((name.clone(), at)),
                    }
                }
                for r in &sel.rules {
                    c.by_rule.entry(r.clone()).or_default().push(at);
                }
                for id in sel.sigma.iter().flat_map(|sg| &sg.selected) {
                    c.by_sigma.entry(id.clone()).or_default().push(at);
                }
            }
        }
        c
    }

    /// The CloudTrail calls these stages may select (see
    /// [`normalize::CallFilter`](crate::normalize::CallFilter)): the event names and patterns
    /// stages name, and what the stages that name no kind may take (every call, or the
    /// high-risk APIs in `high_risk`, from any actor or from instances only).
    pub fn call_filter(
        &self,
        rules: &RuleSet,
        high_risk: &PatternSet,
    ) -> crate::normalize::CallFilter {
        let mut f = crate::normalize::CallFilter {
            names: self.by_event.keys().cloned().collect(),
            patterns: self.event_globs.iter().map(|(g, _)| g.clone()).collect(),
            high_risk: high_risk.clone(),
            ..Default::default()
        };
        for at in &self.any_kind {
            match rules.rules[at.rule].stages[at.stage].selector.call_reach() {
                CallReach::None => {}
                CallReach::All { instances_only } => {
                    f.instance_all = true;
                    f.all |= !instances_only;
                }
                CallReach::HighRisk { instances_only } => {
                    f.high_risk_by_instance = true;
                    f.high_risk_by_anyone |= !instances_only;
                }
            }
        }
        f
    }

    /// Whether `f` holds for some stage that could select `s` (each tried at most once per
    /// way the signal names it). Mirrors the kind test of
    /// [`Selector::matches`](crate::rules::compile::Selector::matches): a weak signal
    /// (`rule:<id>`) only reaches stages naming its rule, a Sigma match (`sigma:<id>`) those
    /// whose `sigma:` selects its rule; other signals reach the stages
    /// naming their finding type or (CloudTrail calls) their event name, and those naming
    /// no kind.
    pub fn any(&self, s: &Signal, mut f: impl FnMut(StageRef) -> bool) -> bool {
        if let Some(id) = s.kind.strip_prefix("rule:") {
            return self
                .by_rule
                .get(id)
                .is_some_and(|list| list.iter().any(|&at| f(at)));
        }
        if let Some(id) = s.kind.strip_prefix("sigma:") {
            return self
                .by_sigma
                .get(id)
                .is_some_and(|list| list.iter().any(|&at| f(at)));
        }
        if self.any_kind.iter().any(|&at| f(at)) {
            return true;
        }
        if let Some(t) = s.fields.finding_type.as_deref()
            && named(&self.by_finding_type, &self.finding_globs, t, &mut f)
        {
            return true;
        }
        s.source == Source::CloudTrail
            && s.fields.event_source.is_some()
            && s.fields
                .event_name
                .as_deref()
                .is_some_and(|name| named(&self.by_event, &self.event_globs, name, &mut f))
    }
}

/// Whether `f` holds for a stage naming `key` exactly or by a pattern.
fn named(
    exact: &FxHashMap<String, Vec<StageRef>>,
    patterns: &[(Glob, StageRef)],
    key: &str,
    f: &mut impl FnMut(StageRef) -> bool,
) -> bool {
    exact
        .get(key)
        .is_some_and(|list| list.iter().any(|&at| f(at)))
        || patterns.iter().any(|(g, at)| g.matches(key) && f(*at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::matcher::{Matcher, weak_signal};
    use crate::normalize::{self, Decoded};
    use std::sync::Arc;

    /// Every signal the fixtures and the rules' inline tests decode to, and the weak signal
    /// each rule would make of it.
    fn signals(rules: &RuleSet) -> Vec<Signal> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let (files, _) = crate::sources::file::collect_files(&[root]);
        let mut bytes: Vec<Vec<u8>> = Vec::new();
        for f in &files {
            bytes.push(std::fs::read(&f.path).expect("reading a fixture"));
        }
        for rule in &rules.rules {
            for t in &rule.tests {
                for r in &t.records {
                    bytes.push(serde_json::to_vec(r).expect("a test record"));
                }
            }
        }
        let mut out = Vec::new();
        for b in &bytes {
            let opts = normalize::DecodeOptions::default();
            normalize::decode_reader(b.as_slice(), &opts, &mut |d| {
                if let Decoded::Signal(_, s) = d {
                    out.push(*s);
                }
            });
        }
        let weak: Vec<Signal> = out
            .iter()
            .flat_map(|s| rules.rules.iter().map(|r| weak_signal(r, s, &[])))
            .collect();
        out.extend(weak);
        out
    }

    /// Every stage whose selector takes a signal is among the signal's candidates.
    #[test]
    fn candidates_include_every_selecting_stage() {
        let rules = Arc::new(RuleSet::builtin().expect("the shipped rules load"));
        let settings = Config::default().validate().expect("default config");
        let m = Matcher::new(rules.clone(), settings.matching.clone());
        let c = Candidates::new(&rules);
        let ctx = m.select_ctx(None);
        let all = signals(&rules);
        assert!(all.len() > 200, "{} signals", all.len());
        let mut selected = 0;
        for s in &all {
            for (ri, rule) in rules.rules.iter().enumerate() {
                for (si, stage) in rule.stages.iter().enumerate() {
                    if !stage.selector.matches(s, &ctx) {
                        continue;
                    }
                    selected += 1;
                    let want = StageRef {
                        rule: ri,
                        stage: si,
                    };
                    assert!(
                        c.any(s, |at| at == want),
                        "stage {} of {} selects {} ({:?}) but is not among its candidates",
                        stage.name,
                        rule.id,
                        s.kind,
                        s.reference
                    );
                }
            }
        }
        assert!(
            selected > 50,
            "only {selected} selections: the cases test little"
        );
    }
}
