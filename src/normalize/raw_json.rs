//! Reading JSON text that was parsed already without parsing it again: the members of an
//! object and the elements of an array as slices of the text, found by skipping over strings
//! and brackets. Readers that need a few values of a large document (a Sigma rule's fields, a
//! launch's paths) take them from here and parse only those values.
//!
//! The text is trusted to be JSON (a parse accepted it before); on text that is not, the
//! iterators stop early and nothing panics.

use std::borrow::Cow;

/// The index of the quote that closes the string opening at `start`.
pub fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        let k = at + memchr::memchr2(b'"', b'\\', b.get(at..)?)?;
        if b[k] == b'\\' {
            at = k + 2;
        } else {
            return Some(k);
        }
    }
}

pub fn skip_space(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The index just after the value starting at `at`.
pub fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => string_end(b, at).map(|e| e + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *b.get(i)? {
                    b'"' => i = string_end(b, i)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

/// Where the objects and lists of texts end: the address just after each closing bracket, by
/// the address of its opening one. Found in one scan of the outermost text, so that reading a
/// path down nested levels steps over what lies below instead of scanning it again at every
/// level (a `RunInstances` response's instance list lies four levels down).
#[derive(Default)]
pub struct Ends {
    ends: rustc_hash::FxHashMap<usize, usize>,
    /// The extents (first and one-past-last address) of the texts scanned.
    scanned: Vec<(usize, usize)>,
}

impl Ends {
    /// Whether the objects and lists of `text` are known.
    fn covers(&self, text: &str) -> bool {
        let (start, end) = extent(text);
        self.scanned.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// Finds the ends of the objects and lists in `text` (trusted to be JSON, as everywhere
    /// here: on text that is not, the brackets left open are not recorded, and those are
    /// scanned when read, as without this).
    fn scan(&mut self, text: &str) {
        let b = text.as_bytes();
        let base = text.as_ptr() as usize;
        let mut open: Vec<usize> = Vec::new();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match c {
                b'"' => match string_end(b, i) {
                    Some(e) => i = e,
                    None => break,
                },
                b'{' | b'[' => open.push(i),
                b'}' | b']' => match open.pop() {
                    Some(o) => {
                        self.ends.insert(base + o, base + i + 1);
                    }
                    None => break,
                },
                _ => {}
            }
            i += 1;
        }
        self.scanned.push(extent(text));
    }

    /// The index just after the object or list opening at `at` in `text`, if known.
    fn end_of(&self, text: &str, at: usize) -> Option<usize> {
        let base = text.as_ptr() as usize;
        let end = *self.ends.get(&(base + at))?;
        (end <= base + text.len()).then(|| end - base)
    }
}

/// The first and one-past-last address of `text`.
fn extent(text: &str) -> (usize, usize) {
    let start = text.as_ptr() as usize;
    (start, start + text.len())
}

/// [`value_end`] of the value at `at` in `text`, taking an object's or list's end from `ends`
/// when it holds it.
fn value_end_in(text: &str, at: usize, ends: Option<&Ends>) -> Option<usize> {
    let b = text.as_bytes();
    if matches!(b.get(at), Some(b'{' | b'['))
        && let Some(end) = ends.and_then(|e| e.end_of(text, at))
    {
        return Some(end);
    }
    value_end(b, at)
}

/// The text of the value of member `i` of a JSON object's text (which a parse accepted), from
/// all its keys as written, in order (slices of the text, as a parse that borrows them finds
/// them): the value lies between the colon after its key and the comma before the next key
/// (the closing brace after the last), so nothing is scanned but the blanks around it. None
/// when the keys around it are not such slices of `text` (then split it with [`Members`]).
pub fn member_at<'t>(text: &'t str, keys: &[&'t str], i: usize) -> Option<&'t str> {
    let b = text.as_bytes();
    let base = text.as_ptr() as usize;
    // The offsets of a key's quotes.
    let quotes = |k: &str| -> Option<(usize, usize)> {
        let start = (k.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(k.len())?;
        (start > 0 && b.get(start - 1) == Some(&b'"') && b.get(end) == Some(&b'"'))
            .then_some((start - 1, end))
    };
    let back_over_space = |mut at: usize| {
        while at > 0 && b[at - 1].is_ascii_whitespace() {
            at -= 1;
        }
        at
    };
    let (_, end_quote) = quotes(keys.get(i)?)?;
    let colon = skip_space(b, end_quote + 1);
    if b.get(colon) != Some(&b':') {
        return None;
    }
    let start = skip_space(b, colon + 1);
    let end = match keys.get(i + 1) {
        Some(next) => {
            let (open_quote, _) = quotes(next)?;
            if open_quote <= end_quote {
                return None;
            }
            let comma = back_over_space(open_quote).checked_sub(1)?;
            if b.get(comma) != Some(&b',') {
                return None;
            }
            back_over_space(comma)
        }
        // Where the object closes: its last non-blank byte.
        None => {
            let close = back_over_space(text.len()).checked_sub(1)?;
            if b.get(close) != Some(&b'}') {
                return None;
            }
            back_over_space(close)
        }
    };
    if end <= start {
        return None;
    }
    text.get(start..end)
}

/// Every member of a JSON object's text from all its keys as written ([`member_at`] for each).
#[cfg(test)]
fn members_by_keys<'t>(text: &'t str, keys: &[&'t str]) -> Option<Vec<(Cow<'t, str>, &'t str)>> {
    (0..keys.len())
        .map(|i| Some((Cow::Borrowed(keys[i]), member_at(text, keys, i)?)))
        .collect()
}

/// The members of a JSON object's text as written: keys (unescaped when they hold an escape)
/// and the text of their values, found by skipping over strings and brackets, not by parsing:
/// the record was parsed as JSON already, and a value is parsed (and checked) when a rule reads
/// it. Ends at the closing brace; `broken` says whether the text ended otherwise.
pub struct Members<'t, 'e> {
    text: &'t str,
    at: usize,
    done: bool,
    broken: bool,
    /// Where the objects and lists in `text` end, when they were found already.
    ends: Option<&'e Ends>,
}

impl<'t> Members<'t, 'static> {
    /// The members of `text`, which must start with `{` (after blanks).
    pub fn of(text: &'t str) -> Members<'t, 'static> {
        Members::with_ends(text, None)
    }
}

impl<'t, 'e> Members<'t, 'e> {
    /// [`Members::of`], stepping over the nested objects and lists whose ends `ends` holds
    /// instead of scanning them.
    fn with_ends(text: &'t str, ends: Option<&'e Ends>) -> Members<'t, 'e> {
        let b = text.as_bytes();
        let at = skip_space(b, 0);
        let open = b.get(at) == Some(&b'{');
        let mut m = Members {
            text,
            at: skip_space(b, at + 1),
            done: !open,
            broken: !open,
            ends,
        };
        if open && b.get(m.at) == Some(&b'}') {
            m.at += 1;
            m.done = true;
        }
        m
    }

    fn next_member(&mut self) -> Option<(Cow<'t, str>, &'t str)> {
        // Every index below is at an ASCII delimiter, so every slice is at a character
        // boundary.
        let (text, b) = (self.text, self.text.as_bytes());
        let mut at = self.at;
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let end = string_end(b, at)?;
        let raw = text.get(at + 1..end)?;
        let key = if raw.contains('\\') {
            Cow::Owned(serde_json::from_str::<String>(text.get(at..=end)?).ok()?)
        } else {
            Cow::Borrowed(raw)
        };
        at = skip_space(b, end + 1);
        if b.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_space(b, at + 1);
        at = value_end_in(text, start, self.ends)?;
        let value = text.get(start..at)?;
        at = skip_space(b, at);
        match b.get(at) {
            Some(b',') => self.at = skip_space(b, at + 1),
            Some(b'}') => {
                self.at = at + 1;
                self.done = true;
            }
            _ => return None,
        }
        Some((key, value))
    }

    /// Whether only blanks follow the closing brace.
    pub fn ends_the_text(&self) -> bool {
        !self.broken && skip_space(self.text.as_bytes(), self.at) == self.text.len()
    }
}

impl<'t> Iterator for Members<'t, '_> {
    type Item = (Cow<'t, str>, &'t str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let member = self.next_member();
        if member.is_none() {
            self.done = true;
            self.broken = true;
        }
        member
    }
}

/// The text of the elements of a JSON array's text, found as [`Members`] finds members.
pub fn elements(text: &str) -> impl Iterator<Item = &str> {
    elements_with_ends(text, None)
}

/// [`elements`], stepping over the nested objects and lists whose ends `ends` holds.
fn elements_with_ends<'t>(text: &'t str, ends: Option<&Ends>) -> impl Iterator<Item = &'t str> {
    let b = text.as_bytes();
    let mut at = skip_space(b, 0);
    let mut done = b.get(at) != Some(&b'[');
    at = skip_space(b, at + 1);
    if b.get(at) == Some(&b']') {
        done = true;
    }
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = at;
        let end = value_end_in(text, start, ends);
        let Some(end) = end else {
            done = true;
            return None;
        };
        let next = skip_space(b, end);
        match b.get(next) {
            Some(b',') => at = skip_space(b, next + 1),
            _ => done = true,
        }
        text.get(start..end)
    })
}

/// An object's members as written: (key, the text of its value).
pub type MemberList<'t> = Vec<(Cow<'t, str>, &'t str)>;

/// The objects and lists of one document, each split at most once (known by its text's
/// extent), for readers that follow several paths through the same document: a launch's
/// paths through one call's request and response, the lists a Sigma field's path crosses.
#[derive(Default)]
pub struct Splits<'t> {
    objects: std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize), MemberList<'t>>>,
    lists: std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize), Vec<&'t str>>>,
    /// The ends of the objects and lists of the texts split so far (the first text a split
    /// reaches is scanned for all of them at once).
    ends: std::cell::RefCell<Ends>,
}

impl<'t> Splits<'t> {
    /// The value of the member `key` of the object whose text is `obj` (the last, when it is
    /// written twice, as a parsed object keeps it); None when `obj` is not an object or has no
    /// such member.
    pub fn member(&self, obj: &'t str, key: &str) -> Option<&'t str> {
        if !obj.starts_with('{') {
            return None;
        }
        let mut objects = self.objects.borrow_mut();
        let members = objects
            .entry((obj.as_ptr() as usize, obj.len()))
            .or_insert_with(|| {
                let ends = self.ends_of(obj);
                Members::with_ends(obj, Some(&ends)).collect()
            });
        members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// The elements of the list whose text is `list` (none when it is not a list).
    pub fn elements(&self, list: &'t str) -> Vec<&'t str> {
        self.lists
            .borrow_mut()
            .entry((list.as_ptr() as usize, list.len()))
            .or_insert_with(|| {
                let ends = self.ends_of(list);
                elements_with_ends(list, Some(&ends)).collect()
            })
            .clone()
    }

    /// The ends of the objects and lists in `text`, scanned first if no text scanned so far
    /// holds it.
    fn ends_of(&self, text: &str) -> std::cell::Ref<'_, Ends> {
        if !self.ends.borrow().covers(text) {
            self.ends.borrow_mut().scan(text);
        }
        self.ends.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of `text` as a borrowing parse finds them.
    fn keys_of(text: &str) -> Vec<&str> {
        let mut de = serde_json::Deserializer::from_str(text);
        crate::normalize::cloudtrail::parse_top_level(&mut de, true)
            .unwrap()
            .unwrap()
            .keys
            .unwrap()
    }

    #[test]
    fn members_by_keys_are_the_members_a_split_finds() {
        for text in [
            r#"{"a":1,"b":"x,\"y\"","c":{"d":[1,{"e":"}"}]},"f":null}"#,
            " {\n  \"a\" : [ 1 , 2 ] ,\n\t\"b\":true , \"a\":\"again\"\n}\n ",
            r#"{"only":{}}"#,
            "{}",
        ] {
            let split: Vec<_> = Members::of(text).collect();
            assert_eq!(members_by_keys(text, &keys_of(text)), Some(split), "{text}");
        }
    }

    /// Every object and list reachable in `text`, split by `splits` (which steps over nested
    /// values by the ends it found) and by a plain scan of each, the same way.
    fn same_splits<'t>(splits: &Splits<'t>, text: &'t str) {
        if text.starts_with('{') {
            let plain: Vec<_> = Members::of(text).collect();
            for (k, v) in &plain {
                let last = plain.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| *v);
                assert_eq!(splits.member(text, k), last, "{k} in {text}");
                same_splits(splits, v);
            }
        } else if text.starts_with('[') {
            let plain: Vec<_> = elements(text).collect();
            assert_eq!(splits.elements(text), plain, "{text}");
            for v in plain {
                same_splits(splits, v);
            }
        }
    }

    /// JSON texts with nested values, brackets and escapes inside strings, and a key twice.
    const NESTED: [&str; 5] = [
        r#"{"a":{"b":[1,{"c":"]}\"{["},[],{}],"d":"x"},"e":[[["deep"]]],"a":{"again":true}}"#,
        r#"[ {"k" : [ "}" , { "l" : "\\" } ] } , 2 , "[" , null ]"#,
        r#"{"reservationId":"r-1","instancesSet":{"items":[{"instanceId":"i-1","instanceType":"p3.16xlarge","placement":{"availabilityZone":"us-east-1a"},"tagSet":{"items":[{"key":"Name","value":"{not json}"}]}},{"instanceId":"i-2","instanceType":"p3.16xlarge"}]}}"#,
        "{}",
        "[]",
    ];

    /// Texts that end before they close (not JSON: nothing here takes such text, but nothing
    /// may differ on it).
    const UNCLOSED: [&str; 4] = [
        r#"{"a":{"b":2},"c":[1"#,
        r#"{"x":[1,{"b":2}],"a":[1,{"b":2}"#,
        r#"[{"a":1},{"b""#,
        r#"]{"a":[2]}"#,
    ];

    /// Every bracket that opens a value in `text` (outside strings), with where `value_end`
    /// says that value ends.
    fn openers(text: &str) -> Vec<(usize, Option<usize>)> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'"' => match string_end(b, i) {
                    Some(e) => i = e,
                    None => break,
                },
                b'{' | b'[' => out.push((i, value_end(b, i))),
                _ => {}
            }
            i += 1;
        }
        out
    }

    #[test]
    fn one_scan_finds_where_every_value_ends() {
        for text in NESTED {
            let mut ends = Ends::default();
            ends.scan(text);
            assert!(ends.covers(text) && ends.covers(&text[1..]));
            let found = openers(text);
            assert!(!found.is_empty());
            for (at, end) in found {
                assert!(end.is_some(), "{text} at {at}");
                assert_eq!(ends.end_of(text, at), end, "{text} at {at}");
                // Asked through a part of the text that holds the value: the same end.
                let part = &text[at..];
                assert_eq!(ends.end_of(part, 0), end.map(|e| e - at), "{text} at {at}");
            }
            // An end beyond a shorter part is not that part's.
            if let Some(&(at, Some(end))) = openers(text).first() {
                assert_eq!(ends.end_of(&text[..end - 1], at), None);
            }
        }
        for text in UNCLOSED {
            let mut ends = Ends::default();
            ends.scan(text);
            for (at, end) in openers(text) {
                // Known only where it is what a scan finds; else the scan is done again.
                let known = ends.end_of(text, at);
                assert!(known.is_none() || known == end, "{text} at {at}");
            }
        }
    }

    #[test]
    fn splits_that_step_over_nested_values_find_what_a_scan_finds() {
        for text in NESTED {
            // One splits object per document, as a launch's paths share one.
            same_splits(&Splits::default(), text);
            if let Some((_, inner)) = Members::of(text)
                .next()
                .or_else(|| elements(text).next().map(|e| (Cow::Borrowed(""), e)))
            {
                // A path that starts below the document's top: its own text is scanned then.
                same_splits(&Splits::default(), inner);
                // And then the whole document, with the same splits.
                let splits = Splits::default();
                same_splits(&splits, inner);
                same_splits(&splits, text);
            }
        }
    }

    #[test]
    fn an_unclosed_text_is_split_as_a_scan_splits_it() {
        for text in UNCLOSED {
            let splits = Splits::default();
            same_splits(&splits, text);
            let plain = Members::of(text).count() + elements(text).count();
            if !text.starts_with(']') {
                assert!(plain > 0, "{text}: the test must split something");
            }
        }
    }

    #[test]
    fn keys_that_are_not_the_texts_are_refused() {
        let text = r#"{"a":1,"b":2}"#;
        let keys = keys_of(text);
        let elsewhere = String::from(text);
        let other_keys = keys_of(&elsewhere);
        for (keys, why) in [
            (vec![keys[1], keys[0]], "out of order"),
            (vec![other_keys[0], other_keys[1]], "another text's"),
            (vec![&text[2..3], &text[1..2]], "not keys"),
        ] {
            assert_eq!(members_by_keys(text, &keys), None, "{why}");
        }
    }
}
