//! The names AWS publishes, which rules are checked against: CloudTrail event names by event
//! source (`data/event_names.tsv`, generated from botocore's service models and real
//! CloudTrail records by `data/gen_event_names.py`) and GuardDuty finding types
//! (`data/guardduty_finding_types.txt`, generated from the GuardDuty User Guide's pages and
//! real findings by `data/gen_guardduty_finding_types.py`). A name that is not there is a
//! `file:line:column` error that suggests the nearest known one.

use std::sync::OnceLock;

use rustc_hash::{FxHashMap, FxHashSet};

use super::compile::Glob;

const EVENT_NAMES: &str = include_str!("../../data/event_names.tsv");
const FINDING_TYPES: &str = include_str!("../../data/guardduty_finding_types.txt");

fn finding_types() -> &'static [&'static str] {
    static DATA: OnceLock<Vec<&'static str>> = OnceLock::new();
    DATA.get_or_init(|| {
        FINDING_TYPES
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// Checks a rule's `finding_types` entry (`*` wildcards). A pattern must match at least one
/// known type. A literal type that is not known is an error when a known one is within two
/// edits of it (a typo); one further from every known type is taken as newer than the list.
///
/// # Errors
/// What is wrong, with the nearest known type.
pub fn check_finding_type(t: &str) -> Result<(), String> {
    let known = finding_types();
    if t.contains('*') {
        let g = Glob::new(t);
        return if known.iter().any(|k| g.matches(k)) {
            Ok(())
        } else {
            Err(format!(
                "finding type pattern {t:?} matches no GuardDuty finding type"
            ))
        };
    }
    if known.contains(&t) {
        return Ok(());
    }
    let lower = t.to_ascii_lowercase();
    let close = known
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(t))
        .or_else(|| {
            known
                .iter()
                .copied()
                .map(|k| (distance(&lower, &k.to_ascii_lowercase()), k))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| k)
        });
    match close {
        Some(k) => Err(format!(
            "finding type {t:?} is not a GuardDuty finding type (did you mean {k:?}?)"
        )),
        None => Ok(()),
    }
}

/// Event source → its event names.
struct EventNames {
    by_source: FxHashMap<&'static str, FxHashSet<&'static str>>,
    sources: Vec<&'static str>,
}

fn event_names() -> &'static EventNames {
    static DATA: OnceLock<EventNames> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut by_source: FxHashMap<&str, FxHashSet<&str>> = FxHashMap::default();
        for line in EVENT_NAMES.lines().filter(|l| !l.starts_with('#')) {
            if let Some((src, names)) = line.split_once('\t') {
                by_source
                    .entry(src)
                    .or_default()
                    .extend(names.split(' ').filter(|n| !n.is_empty()));
            }
        }
        let mut sources: Vec<&str> = by_source.keys().copied().collect();
        sources.sort_unstable();
        EventNames { by_source, sources }
    })
}

/// Checks a rule's `events` entry (`eventSource:eventName` or `eventName`, `*` wildcards):
/// a literal source must be a known event source, a literal name one of its event names, and
/// a pattern must match at least one. The message names the nearest known name.
///
/// # Errors
/// What is wrong, with the nearest valid name when there is one.
/// The AWS event names of `source` (of every source when None; none for an unknown one).
pub fn event_names_of(source: Option<&str>) -> impl Iterator<Item = &'static str> {
    let data = event_names();
    let sources: Vec<&'static str> = match source {
        Some(s) => data.sources.iter().copied().filter(|x| *x == s).collect(),
        None => data.sources.clone(),
    };
    sources
        .into_iter()
        .flat_map(move |s| data.by_source[s].iter().copied())
}

pub fn check_event(source: Option<&str>, name: &str) -> Result<(), String> {
    let data = event_names();
    let sources: Vec<&str> = match source {
        Some(s) if !s.contains('*') => {
            if !data.by_source.contains_key(s) {
                return Err(format!(
                    "event source {s:?} is not an AWS event source{}",
                    hint(nearest(s, data.sources.iter().copied()))
                ));
            }
            vec![s]
        }
        Some(pattern) => {
            let g = Glob::new(pattern);
            let matching: Vec<&str> = data
                .sources
                .iter()
                .copied()
                .filter(|s| g.matches(s))
                .collect();
            if matching.is_empty() {
                return Err(format!(
                    "event source pattern {pattern:?} matches no AWS event source"
                ));
            }
            matching
        }
        None => data.sources.clone(),
    };
    let names = || {
        sources
            .iter()
            .flat_map(|s| data.by_source[s].iter().copied())
    };
    let of = match source {
        Some(s) => format!("event name of {s}"),
        None => "event name of any AWS API".to_string(),
    };
    if name.contains('*') {
        let g = Glob::new(name);
        if names().any(|n| g.matches(n)) {
            return Ok(());
        }
        return Err(format!("event name pattern {name:?} matches no {of}"));
    }
    if sources.iter().any(|s| data.by_source[s].contains(name)) {
        return Ok(());
    }
    Err(format!(
        "event name {name:?} is not an {of}{}",
        hint(nearest(name, names()))
    ))
}

fn hint(nearest: Option<&str>) -> String {
    nearest.map_or_else(String::new, |n| format!(" (did you mean {n:?}?)"))
}

/// The known name closest to `wrong`: the same name in another case first, else the one at the
/// smallest edit distance, if that is at most a third of the name's length.
pub fn nearest<'a>(wrong: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = wrong.to_ascii_lowercase();
    let limit = (wrong.chars().count() / 3).max(2);
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        if k.eq_ignore_ascii_case(wrong) {
            return Some(k);
        }
        let length_gap = k.len().abs_diff(wrong.len());
        if length_gap > limit || best.is_some_and(|(d, _)| length_gap >= d) {
            continue;
        }
        let d = distance(&lower, &k.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(bd, bk)| d < bd || (d == bd && k < bk)) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Optimal string alignment distance (Levenshtein with adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_of_the_models_and_of_cloudtrail() {
        for (src, name) in [
            (Some("ec2.amazonaws.com"), "RunInstances"),
            (Some("lambda.amazonaws.com"), "CreateFunction20150331"),
            (Some("lambda.amazonaws.com"), "UpdateFunctionCode20150331v2"),
            (Some("lambda.amazonaws.com"), "CreateFunction*"),
            (Some("ses.amazonaws.com"), "SendEmail"),
            (Some("signin.amazonaws.com"), "ConsoleLogin"),
            (Some("cloudtrail.amazonaws.com"), "*Trail*"),
            (Some("*"), "StopLogging"),
            (None, "RunInstances"),
            (None, "Create*"),
        ] {
            assert_eq!(check_event(src, name), Ok(()), "{src:?} {name}");
        }
    }

    #[test]
    fn typos_name_the_nearest_valid_name() {
        for (src, name, want) in [
            (Some("ec2.amazonaws.com"), "RunInstance", "\"RunInstances\""),
            (
                Some("ec2.amazonaws.com"),
                "runinstances",
                "\"RunInstances\"",
            ),
            (
                Some("ec2.amazonaws.com"),
                "RunInstacnes",
                "\"RunInstances\"",
            ),
            (
                Some("ec2.amazonaw.com"),
                "RunInstances",
                "\"ec2.amazonaws.com\"",
            ),
            (
                Some("cloudtrail.amazonaws.com"),
                "StopLoging",
                "\"StopLogging\"",
            ),
            (None, "CreateAccesKey", "\"CreateAccessKey\""),
        ] {
            let e = check_event(src, name).expect_err(name);
            assert!(e.contains(&format!("did you mean {want}?")), "{name}: {e}");
        }
        let e = check_event(Some("ec2.amazonaws.com"), "Lauch*").unwrap_err();
        assert!(
            e.contains("matches no event name of ec2.amazonaws.com"),
            "{e}"
        );
        let e = check_event(Some("ec2.amazonaws.com"), "CreateFunction").unwrap_err();
        assert!(
            e.contains("is not an event name of ec2.amazonaws.com"),
            "{e}"
        );
    }

    #[test]
    fn finding_types_typos_name_the_nearest_and_newer_types_pass() {
        for t in [
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            "CryptoCurrency:*",
            "*BitcoinDomainRequest*",
            "AttackSequence:EC2/CompromisedInstanceGroup",
            "Execution:Runtime/MaliciousFileExecuted",
            // Newer than the list and near none of its types.
            "Exfiltration:Bedrock/ModelWeightsCopiedOut",
        ] {
            assert_eq!(check_finding_type(t), Ok(()), "{t}");
        }
        for (t, want) in [
            (
                "CryptoCurrency:EC2/BitcoinTol.B!DNS",
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            ),
            (
                "cryptocurrency:ec2/bitcointool.b!dns",
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            ),
            ("Backdoor:EC2/C&CActivty.B", "Backdoor:EC2/C&CActivity.B"),
        ] {
            let e = check_finding_type(t).expect_err(t);
            assert!(e.contains(&format!("did you mean {want:?}?")), "{t}: {e}");
        }
        let e = check_finding_type("CryptoCurency:*").unwrap_err();
        assert!(e.contains("matches no GuardDuty finding type"), "{e}");
    }

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "acb", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(distance(a, b), d, "{a} {b}");
        }
    }
}
