//! The key layout of a CloudTrail trail in S3, and the cursor a run keeps per account and
//! region folder (AWS mode reads the objects: `crate::aws::sources`).
//!
//! A trail writes `<prefix>[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/` followed by
//! `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz` (AWS CloudTrail User Guide,
//! "Finding your CloudTrail log files"; the organization trail adds the `o-ORGID/` folder).
//! Within a region folder the keys sort by day and, within a day, by the time in the file
//! name, so a listing with `start-after` the last key read returns what came since, across
//! day, month and year folders alike.
//!
//! CloudTrail delivers an object up to about 15 minutes after the time in its name, so an
//! object may appear behind the newest key read. The cursor is therefore the newest key read
//! moved back by the overlap (`aws.trail_overlap`): the next listing starts there, and the
//! keys already read in the overlap (`seen`) are passed over. Per folder the state keeps one
//! key, the keys of the overlap (about `overlap / 5 minutes` per trail writing to the folder),
//! and the objects still pending: its size does not grow with the objects read.

use std::collections::BTreeSet;

use crate::time::Millis;

/// The checkpoint of a region folder (`…/ACCOUNT/CloudTrail/REGION/`).
pub fn checkpoint_key(folder: &str) -> String {
    format!("{CHECKPOINT_PREFIX}{folder}")
}

/// The checkpoints of trail folders start with this.
pub const CHECKPOINT_PREFIX: &str = "aws/cloudtrail_s3/";

/// The region folder of a log object's key: up to and including `/CloudTrail/REGION/`.
pub fn folder_of(key: &str) -> Option<&str> {
    const MARK: &str = "/CloudTrail/";
    let at = key.find(MARK)? + MARK.len();
    let region_end = key[at..].find('/')? + at + 1;
    (region_end > at + 1).then(|| &key[..region_end])
}

/// `YYYY/MM/DD` of a log object's key.
pub fn day_of(key: &str) -> Option<String> {
    let rest = &key[folder_of(key)?.len()..];
    let day = rest.get(0..10)?;
    let b = day.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (digits(0..4) && b[4] == b'/' && digits(5..7) && b[7] == b'/' && digits(8..10))
        .then(|| day.to_string())
}

/// The account and region of a region folder (`…/ACCOUNT/CloudTrail/REGION/`).
pub fn account_region(folder: &str) -> Option<(&str, &str)> {
    let inner = folder.strip_suffix('/')?;
    let (before, region) = inner.rsplit_once("/CloudTrail/")?;
    let account = before.rsplit('/').next()?;
    Some((account, region))
}

/// The time in a log file's name (`…_YYYYMMDDTHHmmZ_…`), to the minute.
pub fn name_time(key: &str) -> Option<Millis> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        if !(b[..8].iter().chain(&b[9..13]).all(u8::is_ascii_digit)) {
            return None;
        }
        crate::time::parse_timestamp(&format!(
            "{}-{}-{}T{}:{}:00Z",
            &part[0..4],
            &part[4..6],
            &part[6..8],
            &part[9..11],
            &part[11..13]
        ))
    })
}

/// A key of `folder` that sorts after every log file named before the minute of `t` and
/// before every one named at it or later; a listing `start-after` it reads from `t` on.
pub fn key_at(folder: &str, t: Millis) -> String {
    let text = crate::time::format_rfc3339(t);
    let day = format!("{}/{}/{}/", &text[0..4], &text[5..7], &text[8..10]);
    match account_region(folder) {
        Some((account, region)) => format!(
            "{folder}{day}{account}_CloudTrail_{region}_{}{}{}T{}{}Z",
            &text[0..4],
            &text[5..7],
            &text[8..10],
            &text[11..13],
            &text[14..16]
        ),
        // Not a folder of the documented layout: the whole day.
        None => format!("{folder}{day}"),
    }
}

/// Where the listing of a folder starts after `last`, the newest key read: `overlap` earlier
/// by the time in its name; a name with no time moves back to the start of its day, a key
/// with no day not at all.
pub fn back_off(folder: &str, last: &str, overlap: Millis) -> String {
    match (name_time(last), day_of(last)) {
        (Some(t), _) => key_at(folder, t.saturating_sub(overlap)),
        (None, Some(day)) => format!("{folder}{day}/"),
        (None, None) => last.to_string(),
    }
}

/// A folder's cursor after a run: `after` never moves back; `seen` keeps the keys read after
/// it. `read` are the keys this run read; `listed` every key it listed or tried (read,
/// failed, or pending), which the cursor moves past (the failed ones stay pending).
pub fn advance(
    folder: &str,
    after: Option<&str>,
    seen: &BTreeSet<String>,
    read: &[String],
    listed: &[String],
    overlap: Millis,
) -> (Option<String>, BTreeSet<String>) {
    let last = seen
        .iter()
        .chain(read)
        .chain(listed)
        .filter(|k| k.starts_with(folder))
        .max();
    let moved = last.map(|l| back_off(folder, l, overlap));
    let after = match (after, moved) {
        (Some(a), Some(m)) => Some(if m.as_str() > a { m } else { a.to_string() }),
        (a, m) => m.or_else(|| a.map(str::to_string)),
    };
    let seen = seen
        .iter()
        .chain(read)
        .filter(|k| after.as_deref().is_none_or(|a| k.as_str() > a))
        .cloned()
        .collect();
    (after, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/";

    fn key(day: &str, stamp: &str) -> String {
        format!("{F}{day}/111122223333_CloudTrail_us-east-1_{stamp}_AbCd.json.gz")
    }

    fn t(s: &str) -> Millis {
        crate::time::parse_timestamp(s).unwrap()
    }

    #[test]
    fn the_layout_is_read_from_keys() {
        let k = key("2025/05/02", "20250502T0920Z");
        for (what, got, want) in [
            (
                "folder",
                folder_of(&k).map(str::to_string),
                Some(F.to_string()),
            ),
            ("day", day_of(&k), Some("2025/05/02".to_string())),
            (
                "digest folder",
                folder_of("AWSLogs/1/CloudTrail-Digest/us-east-1/x").map(str::to_string),
                None,
            ),
            ("no day", day_of(&format!("{F}x.json")), None),
        ] {
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(account_region(F), Some(("111122223333", "us-east-1")));
        assert_eq!(name_time(&k), Some(t("2025-05-02T09:20:00Z")));
        assert_eq!(name_time(&format!("{F}2025/05/02/notes.json")), None);
    }

    #[test]
    fn key_at_sorts_between_the_files_of_the_minute_before_and_its_own() {
        let at = key_at(F, t("2025-05-02T09:20:42Z"));
        assert!(key("2025/05/02", "20250502T0919Z") < at);
        assert!(at < key("2025/05/02", "20250502T0920Z"));
        assert!(
            at < key("2025/05/03", "20250503T0000Z"),
            "later days sort after"
        );
        assert!(
            key("2025/05/01", "20250501T2359Z") < at,
            "earlier days before"
        );
    }

    #[test]
    fn the_cursor_moves_back_by_the_overlap_across_day_month_and_year_ends() {
        for (last, want) in [
            (
                key("2025/05/02", "20250502T0920Z"),
                key_at(F, t("2025-05-02T09:05:00Z")),
            ),
            (
                key("2025/05/03", "20250503T0005Z"),
                key_at(F, t("2025-05-02T23:50:00Z")),
            ),
            (
                key("2026/01/01", "20260101T0010Z"),
                key_at(F, t("2025-12-31T23:55:00Z")),
            ),
        ] {
            let got = back_off(F, &last, 15 * 60_000);
            assert_eq!(got, want, "{last}");
            assert!(got < last, "{last}");
        }
        assert!(key_at(F, t("2025-12-31T23:55:00Z")).contains("/2025/12/31/"));
        // No time in the name: the start of its day.
        assert_eq!(
            back_off(F, &format!("{F}2025/05/02/odd.json"), 15 * 60_000),
            format!("{F}2025/05/02/")
        );
    }

    #[test]
    fn advancing_keeps_only_the_overlap_and_never_moves_back() {
        let m = 60_000;
        let old: Vec<String> = (0..12)
            .map(|i| {
                key(
                    "2025/05/02",
                    &format!("20250502T{:02}{:02}Z", 8 + i / 12, (i % 12) * 5),
                )
            })
            .collect();
        let (after, seen) = advance(F, None, &BTreeSet::new(), &old, &old, 15 * m);
        assert_eq!(after, Some(key_at(F, t("2025-05-02T08:40:00Z"))));
        assert_eq!(seen.len(), 4, "08:40, 08:45, 08:50, 08:55: {seen:?}");
        // A run that reads nothing new keeps the cursor.
        let (again, kept) = advance(F, after.as_deref(), &seen, &[], &[], 15 * m);
        assert_eq!((&again, &kept), (&after, &seen));
        // A late object behind the newest key (in the overlap) moves nothing back.
        let late = key("2025/05/02", "20250502T0842Z");
        let (a2, s2) = advance(
            F,
            after.as_deref(),
            &seen,
            std::slice::from_ref(&late),
            std::slice::from_ref(&late),
            15 * m,
        );
        assert_eq!(a2, after);
        assert!(s2.contains(&late));
        // A failed object is passed by the cursor (it is pending) but not seen.
        let failed = key("2025/05/02", "20250502T1000Z");
        let (a3, s3) = advance(
            F,
            a2.as_deref(),
            &s2,
            &[],
            std::slice::from_ref(&failed),
            15 * m,
        );
        assert_eq!(a3, Some(key_at(F, t("2025-05-02T09:45:00Z"))));
        assert!(s3.is_empty(), "{s3:?}");
    }
}
