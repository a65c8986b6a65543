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
pub struct Members<'t> {
    text: &'t str,
    at: usize,
    done: bool,
    broken: bool,
}

impl<'t> Members<'t> {
    /// The members of `text`, which must start with `{` (after blanks).
    pub fn of(text: &'t str) -> Members<'t> {
        let b = text.as_bytes();
        let at = skip_space(b, 0);
        let open = b.get(at) == Some(&b'{');
        let mut m = Members {
            text,
            at: skip_space(b, at + 1),
            done: !open,
            broken: !open,
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
        at = value_end(b, start)?;
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

impl<'t> Iterator for Members<'t> {
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
        let end = value_end(b, start);
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
            .or_insert_with(|| Members::of(obj).collect());
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
            .or_insert_with(|| elements(list).collect())
            .clone()
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
