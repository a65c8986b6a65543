//! A CloudTrail record as the Sigma engine reads it, parsed only as far as the rules look.
//!
//! The engine's own JSON event wants the whole record as a `serde_json::Value`: every key and
//! string copied into a tree of maps, about 80 % of the cost of evaluating a record whose rules
//! look at three fields. [`LazyEvent`] finds a top-level member when a rule asks for a field
//! under it (borrowed text, no copy: from the keys the decoder's parse found, between one key
//! and the next, or by splitting the record once) and reads only the value the field names
//! (`userIdentity.type` splits `userIdentity` only), then answers through the engine's own
//! JSON event, so a field means what it means to the engine: a flat key equal to the whole
//! path first, then the dotted path, every element of an array followed, `[N]` an index. Keyword
//! searches and anything else that needs the whole record parse it whole, once.

use std::borrow::Cow;
use std::cell::OnceCell;

use rsigma_eval::{Event, EventValue, JsonEvent};
use serde_json::Value;

use crate::normalize::raw_json::{self, Members, Splits};

/// One top-level member: its key and the text of its value.
struct Member<'a> {
    key: Cow<'a, str>,
    raw: &'a str,
}

/// Where a record's top-level members are found.
enum Tops<'a, 'k> {
    /// The keys as the decoder's parse found them (slices of the text, in order): a member's
    /// value is found when a rule asks for it, between its key and the next
    /// ([`raw_json::member_at`]). The split, when the keys turn out not to say (they always
    /// do for keys a parse of this text found), made once.
    Keys(&'k [&'a str], OnceCell<Option<Vec<Member<'a>>>>),
    /// The record split into its members.
    Split(Vec<Member<'a>>),
}

/// A JSON object record, read as far as the rules look (see the module documentation).
pub struct LazyEvent<'a, 'k> {
    text: &'a str,
    tops: Tops<'a, 'k>,
    whole: OnceCell<Value>,
    /// Nested objects and lists split once: the lists a dotted path crosses, and what a path
    /// with an index or an escape reads.
    splits: Splits<'a>,
}

/// The top-level members of a record that is one JSON object, or None.
fn split_members(text: &str) -> Option<Vec<Member<'_>>> {
    let mut members = Members::of(text);
    let mut out = Vec::with_capacity(24);
    out.extend(members.by_ref().map(|(key, raw)| Member { key, raw }));
    members.ends_the_text().then_some(out)
}

/// Whether `keys` can be the keys of `text` as a parse that borrows them finds them: slices of
/// it, in order (each one after the one before).
fn keys_of_text(text: &str, keys: &[&str]) -> bool {
    let (start, end) = (text.as_ptr() as usize, text.as_ptr() as usize + text.len());
    let mut after = start;
    keys.iter().all(|k| {
        let at = k.as_ptr() as usize;
        let ok = at > after && at + k.len() < end;
        after = at + k.len();
        ok
    })
}

/// A value's text as the engine sees the value: strings without an escape borrowed, numbers
/// as integers when they are, objects and arrays parsed.
fn leaf(text: &str) -> EventValue<'_> {
    let b = text.as_bytes();
    match b.first() {
        Some(b'"') => match text.get(1..text.len() - 1) {
            Some(inner) if !inner.contains('\\') => EventValue::Str(Cow::Borrowed(inner)),
            _ => serde_json::from_str::<String>(text)
                .map_or(EventValue::Null, |s| EventValue::Str(Cow::Owned(s))),
        },
        Some(b't') => EventValue::Bool(true),
        Some(b'f') => EventValue::Bool(false),
        Some(b'n') => EventValue::Null,
        Some(b'{' | b'[') => serde_json::from_str::<Value>(text)
            .map_or(EventValue::Null, |v| owned(EventValue::from(&v))),
        _ => match serde_json::from_str::<serde_json::Number>(text) {
            Ok(n) => match n.as_i64() {
                Some(i) => EventValue::Int(i),
                None => EventValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Err(_) => EventValue::Null,
        },
    }
}

/// A value made independent of the tree it was read from.
fn owned(v: EventValue<'_>) -> EventValue<'static> {
    match v {
        EventValue::Str(s) => EventValue::Str(Cow::Owned(s.into_owned())),
        EventValue::Int(n) => EventValue::Int(n),
        EventValue::Float(f) => EventValue::Float(f),
        EventValue::Bool(b) => EventValue::Bool(b),
        EventValue::Null => EventValue::Null,
        EventValue::Array(items) => EventValue::Array(items.into_iter().map(owned).collect()),
        EventValue::Map(entries) => EventValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), owned(v)))
                .collect(),
        ),
    }
}

impl<'a, 'k> LazyEvent<'a, 'k> {
    /// Splits a record (a JSON object) into its members; None when it is not one.
    #[cfg(test)]
    pub fn parse(text: &'a str) -> Option<LazyEvent<'a, 'k>> {
        LazyEvent::parse_knowing(text, None)
    }

    /// [`LazyEvent::parse`], with the record's top-level keys as written, in order (slices of
    /// `text`, as the decoder's parse found them: [`Record::keys`]), which give each member
    /// when it is asked for, without a scan. The text must then be a JSON object a parse
    /// accepted.
    ///
    /// [`Record::keys`]: crate::normalize::cloudtrail::Record::keys
    pub fn parse_knowing(text: &'a str, keys: Option<&'k [&'a str]>) -> Option<LazyEvent<'a, 'k>> {
        let tops = match keys {
            Some(keys) if keys_of_text(text, keys) => Tops::Keys(keys, OnceCell::new()),
            _ => Tops::Split(split_members(text)?),
        };
        Some(LazyEvent {
            text,
            tops,
            whole: OnceCell::new(),
            splits: Splits::default(),
        })
    }

    /// The members, split (for keys that did not say where they lie).
    fn split(&self) -> &[Member<'a>] {
        match &self.tops {
            Tops::Split(members) => members,
            Tops::Keys(_, split) => split
                .get_or_init(|| split_members(self.text))
                .as_deref()
                .unwrap_or_default(),
        }
    }

    /// The text of the member named `key` (the last one, when a key is written twice, as a
    /// parsed object keeps it).
    fn member(&self, key: &str) -> Option<&'a str> {
        if let Tops::Keys(keys, _) = &self.tops {
            let i = keys.iter().rposition(|k| *k == key)?;
            if let Some(raw) = raw_json::member_at(self.text, keys, i) {
                return Some(raw);
            }
        }
        self.split()
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| m.raw)
    }

    /// Every top-level key, as written (unescaped).
    fn keys(&self) -> impl Iterator<Item = &str> {
        let (keys, split) = match &self.tops {
            Tops::Keys(keys, _) => (&keys[..], &[][..]),
            Tops::Split(members) => (&[][..], &members[..]),
        };
        keys.iter()
            .copied()
            .chain(split.iter().map(|m| m.key.as_ref()))
    }

    /// Every value the steps lead to from the value whose text is `at`.
    fn follow(&self, at: &'a str, steps: &[Step<'_>], out: &mut Vec<EventValue<'a>>) {
        let Some((step, rest)) = steps.split_first() else {
            out.push(leaf(at));
            return;
        };
        match (step, at.as_bytes().first()) {
            (Step::Key(k), Some(b'{')) => {
                if let Some(next) = self.splits.member(at, k) {
                    self.follow(next, rest, out);
                }
            }
            (Step::Key(_), Some(b'[')) => {
                for item in self.splits.elements(at) {
                    self.follow(item, steps, out);
                }
            }
            (Step::Index(i), Some(b'[')) => {
                let items = self.splits.elements(at);
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&at) {
                    self.follow(items[at as usize], rest, out);
                }
            }
            _ => {}
        }
    }

    /// [`LazyEvent::follow`] for a dotted path of keys (no index, no escape; the keys after
    /// the one that led to `at`), without making its steps.
    fn follow_keys(&self, at: &'a str, path: Option<&str>, out: &mut Vec<EventValue<'a>>) {
        let Some(path) = path else {
            out.push(leaf(at));
            return;
        };
        let (key, rest) = match path.split_once('.') {
            Some((key, rest)) => (key, Some(rest)),
            None => (path, None),
        };
        match at.as_bytes().first() {
            // One scan to the end of the object (the last of a key written twice counts, as
            // in a parsed object), nothing kept: a rule reads one or two fields of an object.
            Some(b'{') => {
                let found = Members::of(at).filter(|(k, _)| k == key).last();
                if let Some((_, next)) = found {
                    self.follow_keys(next, rest, out);
                }
            }
            Some(b'[') => {
                for item in self.splits.elements(at) {
                    self.follow_keys(item, Some(path), out);
                }
            }
            _ => {}
        }
    }

    fn parse_whole(&self) -> Value {
        serde_json::from_str(self.text).unwrap_or(Value::Null)
    }

    /// The whole record, parsed (keywords, and paths that start with no key).
    fn whole(&self) -> JsonEvent<'_> {
        JsonEvent::borrow(self.whole.get_or_init(|| self.parse_whole()))
    }
}

/// One step of a field path: a key (followed into every element of an array) or an index
/// into an array (`[2]`, `[-1]` from the end; one element).
enum Step<'p> {
    Key(Cow<'p, str>),
    Index(i64),
}

/// A field path's steps: `a.b[0][1].c` is `a`, `b`, 0, 1, `c`; a bracket group that is not an
/// integer is part of the key (and `\[`, `\]` stand for the brackets themselves).
fn steps(path: &str) -> Vec<Step<'_>> {
    use rsigma_parser::fieldpath::{first_unescaped, unescape_brackets};
    let mut out = Vec::new();
    for part in path.split('.') {
        let indices = first_unescaped(part, b'[').and_then(|at| {
            let mut found = Vec::new();
            let mut rest = &part[at..];
            while !rest.is_empty() {
                let inner = rest.strip_prefix('[')?;
                let close = inner.find(']')?;
                found.push(inner[..close].parse::<i64>().ok()?);
                rest = &inner[close + 1..];
            }
            Some((at, found))
        });
        match indices {
            Some((at, found)) => {
                if at > 0 {
                    out.push(Step::Key(unescape_brackets(&part[..at])));
                }
                out.extend(found.into_iter().map(Step::Index));
            }
            None => out.push(Step::Key(unescape_brackets(part))),
        }
    }
    out
}

/// One value, or an array of all when a path crossed arrays and led to several.
fn one_or_all(mut found: Vec<EventValue<'_>>) -> Option<EventValue<'_>> {
    match found.len() {
        0 => None,
        1 => found.pop(),
        _ => Some(EventValue::Array(found)),
    }
}

impl Event for LazyEvent<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        // A key equal to the whole path comes first, as it does for the engine.
        if let Some(raw) = self.member(path) {
            return Some(leaf(raw));
        }
        if !path.contains(['.', '[', '\\']) {
            return None;
        }
        let mut found = Vec::new();
        // A dotted path of keys only (most are: `userIdentity.type`), followed as it is.
        if !path.contains(['[', '\\']) {
            let (root, rest) = path.split_once('.')?;
            self.follow_keys(self.member(root)?, Some(rest), &mut found);
            return one_or_all(found);
        }
        let steps = steps(path);
        match steps.split_first() {
            // The first key from the members already found.
            Some((Step::Key(root), rest)) => self.follow(self.member(root)?, rest, &mut found),
            _ => self.follow(self.text, &steps, &mut found),
        }
        one_or_all(found)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.whole().any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.whole()
            .visit_string_values(&mut |s| out.push(Cow::Owned(s.to_string())));
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.whole().visit_string_values(visit);
    }

    fn to_json(&self) -> Value {
        self.whole().to_json()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        Some(self.keys().map(Cow::Borrowed).collect())
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        for k in self.keys() {
            visit(k);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the engine could ask for reads the same from the lazy event as from the
    /// engine's own JSON event.
    #[test]
    fn fields_read_as_the_engines_json_event_reads_them() {
        let record = r#"{"eventName":"RunInstances","eventSource":"ec2.amazonaws.com",
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/i-1",
              "sessionContext":{"sessionIssuer":{"userName":"r"}}},
            "requestParameters":{"instancesSet":{"items":[{"imageId":"ami-1"},{"imageId":"ami-2"}]},
              "tagSpecificationSet":{"items":[]}, "n": 3, "f": 1.5, "b": true, "z": null},
            "a.b":"flat","a":{"b":"nested"},
            "weird\"key":"x","items":[{"id":"i-1"},{"id":"i-2"}],
            "dup":"first","dup":"second",
            "esc":"line\nbreak \u00e9",
            "nums":{"u":18446744073709551615,"neg":-5,"exp":1e3,"f":-0.25,"z":0},
            "m":[[1,2],[3],[]], "e":{}, "x":{"k\"q":{"a":1},"d":1,"d":2,"s":"t\"u"},
            "deep":[{"a":[{"b":"one"},{"b":"two"}]},{"a":{"b":"three"}}]}"#;
        let full: Value = serde_json::from_str(record).unwrap();
        let engine = JsonEvent::borrow(&full);
        let lazy = LazyEvent::parse(record).unwrap();
        for path in [
            "eventName",
            "eventname",
            "userIdentity.type",
            "userIdentity.sessionContext.sessionIssuer.userName",
            "userIdentity",
            "userIdentity.missing",
            "missing.type",
            "requestParameters.instancesSet.items.imageId",
            "requestParameters.instancesSet.items[1].imageId",
            "requestParameters.instancesSet.items[-1].imageId",
            "requestParameters.instancesSet.items[7].imageId",
            "requestParameters.tagSpecificationSet.items",
            "requestParameters.n",
            "requestParameters.f",
            "requestParameters.b",
            "requestParameters.z",
            "a.b",
            "a",
            "weird\"key",
            "items.id",
            "items[0].id",
            "items[0]",
            "dup",
            "esc",
            "nums",
            "nums.u",
            "nums.neg",
            "nums.exp",
            "nums.f",
            "nums.z",
            "m",
            "m[0]",
            "m[0][1]",
            "m[-1]",
            "m[2][0]",
            "e",
            "e.a",
            "x.k\"q.a",
            "x.d",
            "x.s",
            "x",
            "deep.a.b",
            "deep[0].a[1].b",
            "deep.a",
            "requestParameters",
            "requestParameters.instancesSet",
            "requestParameters.instancesSet.items",
            "eventName.x",
            "eventName[0]",
            ".eventName",
            "[0]",
            "",
        ] {
            assert_eq!(lazy.get_field(path), engine.get_field(path), "{path:?}");
        }
        let mut strings = (Vec::new(), Vec::new());
        lazy.visit_string_values(&mut |s| strings.0.push(s.to_string()));
        engine.visit_string_values(&mut |s| strings.1.push(s.to_string()));
        assert_eq!(strings.0, strings.1);
        assert_eq!(lazy.to_json(), engine.to_json());
        let mut keys = lazy
            .top_level_keys()
            .unwrap()
            .into_iter()
            .map(|k| k.into_owned())
            .collect::<Vec<_>>();
        keys.dedup();
        keys.sort();
        keys.dedup();
        let mut want: Vec<String> = full.as_object().unwrap().keys().cloned().collect();
        want.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn members_found_by_their_keys_read_as_a_split_reads_them() {
        let text = r#"{"a":1,"requestParameters":{"x":[1,{"y":"}"}]},"b":"c","responseElements":null,"d":{"e":"f"}}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let first = crate::normalize::cloudtrail::parse_top_level(&mut de, true)
            .unwrap()
            .unwrap();
        // A key with an escape is no slice of the text: the record is split instead.
        let escaped = r#"{"a\u0062":1,"b":"c"}"#;
        let mut de = serde_json::Deserializer::from_str(escaped);
        let none = crate::normalize::cloudtrail::parse_top_level(&mut de, true)
            .unwrap()
            .unwrap();
        assert_eq!(none.keys, None);
        assert_eq!(
            LazyEvent::parse_knowing(escaped, None)
                .unwrap()
                .member("ab"),
            Some("1")
        );
        for keys in [first.keys.as_deref(), None, Some(&["a"][..])] {
            let lazy = LazyEvent::parse_knowing(text, keys).unwrap();
            assert_eq!(
                lazy.keys().collect::<Vec<_>>(),
                ["a", "requestParameters", "b", "responseElements", "d"],
                "{keys:?}"
            );
            assert_eq!(lazy.member("d"), Some(r#"{"e":"f"}"#));
            assert_eq!(
                lazy.get_field("requestParameters.x.y"),
                Some(EventValue::Str(Cow::Borrowed("}")))
            );
            assert_eq!(
                lazy.get_field("b"),
                Some(EventValue::Str(Cow::Borrowed("c")))
            );
        }
    }

    #[test]
    fn a_record_that_is_not_an_object_is_not_an_event() {
        for bad in [
            "[1,2]",
            "{\"a\":",
            "\"x\"",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{\"a\":1} {}",
            "{\"a\":\"unclosed}",
            "{\"a\":{\"b\":[1,2}",
            "{a:1}",
            "",
        ] {
            assert!(LazyEvent::parse(bad).is_none(), "{}", bad);
        }
        for good in [
            "{}",
            " { } ",
            "{\"a\" : [ {\"b\":\"}]\\\"\"} ] , \"c\":-1.5e3 }",
        ] {
            let lazy = LazyEvent::parse(good).unwrap();
            let full: Value = serde_json::from_str(good).unwrap();
            assert_eq!(lazy.to_json(), full);
            assert_eq!(
                lazy.get_field("a.b"),
                JsonEvent::borrow(&full).get_field("a.b")
            );
        }
    }

    /// Every path to every value of the published CloudTrail records (and its parent paths,
    /// with and without indices) reads the same from the lazy event as from the engine's.
    #[test]
    fn the_published_records_read_as_the_engine_reads_them() {
        fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        let p = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        out.push(p.clone());
                        paths(child, &p, out);
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate().take(3) {
                        let p = format!("{prefix}[{i}]");
                        out.push(p.clone());
                        paths(child, &p, out);
                        // And through the array, as a rule writes it.
                        paths(child, prefix, out);
                    }
                }
                _ => {}
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
        let mut checked = 0;
        for file in [
            "stratus-red-team/all-detonations.jsonl",
            "panther-test-events/cloudtrail-test-events.jsonl",
        ] {
            let text = std::fs::read_to_string(root.join(file)).expect("the shared real data");
            for line in text.lines() {
                let full: Value = serde_json::from_str(line).unwrap();
                let engine = JsonEvent::borrow(&full);
                // As the decoder hands records over: with the keys its parse found.
                let mut de = serde_json::Deserializer::from_str(line);
                let first = crate::normalize::cloudtrail::parse_top_level(&mut de, true)
                    .unwrap()
                    .unwrap();
                let keys = first.keys.as_deref();
                assert!(keys.is_some_and(|k| !k.is_empty()), "{line}");
                let lazy = LazyEvent::parse_knowing(line, keys).unwrap();
                let plain = LazyEvent::parse(line).unwrap();
                assert!(matches!(lazy.tops, Tops::Keys(..)), "{line}");
                assert_eq!(
                    lazy.keys().map(|k| (k, lazy.member(k))).collect::<Vec<_>>(),
                    plain
                        .split()
                        .iter()
                        .map(|m| (m.key.as_ref(), Some(m.raw)))
                        .collect::<Vec<_>>()
                );
                let mut all = Vec::new();
                paths(&full, "", &mut all);
                all.sort();
                all.dedup();
                for path in &all {
                    assert_eq!(
                        lazy.get_field(path),
                        engine.get_field(path),
                        "{path}: {line}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked} paths");
    }
}
