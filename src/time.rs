//! Timestamps as the inputs write them, and as we write them back.
//!
//! Everything inside the tool is UTC milliseconds since the Unix epoch ([`Millis`]). Parsing is
//! hand-written because it runs once per record on the hot path, and because the inputs use
//! several forms: ISO-8601 (`2025-05-02T09:20:00Z`, `…00.123Z`, `…+02:00`), the
//! `YYYY-MM-DD HH:MM:SS[.fraction]` form some publishers rewrite CloudTrail times to, and
//! epoch seconds or milliseconds where the AWS models use numbers.

/// UTC milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Parses an ISO-8601 / RFC 3339 timestamp, or the same with a space instead of `T`. A missing
/// zone means UTC. Fractions of any length are accepted and truncated to milliseconds.
pub fn parse_timestamp(s: &str) -> Option<Millis> {
    let b = s.trim().as_bytes();
    if b.len() < 10 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0i64);
    let mut i = 10;
    if b.len() > 10 {
        if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
            return None;
        }
        if b.len() < 16 || b[13] != b':' {
            return None;
        }
        hour = digits(b, 11, 2)?;
        minute = digits(b, 14, 2)?;
        i = 16;
        if b.len() > 16 && b[16] == b':' {
            second = digits(b, 17, 2)?;
            i = 19;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
            i += 1;
            let start = i;
            let mut scale = 100i64;
            while i < b.len() && b[i].is_ascii_digit() {
                millis += i64::from(b[i] - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    let mut offset_minutes = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                let rest = &b[i + 1..];
                let (h, m) = match rest.len() {
                    2 => (digits(rest, 0, 2)?, 0),
                    4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                    5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                    _ => return None,
                };
                offset_minutes = sign * (h * 60 + m);
            }
            _ => return None,
        }
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1_000 + millis)
}

/// Interprets a JSON number from a field the AWS models type as a timestamp. Values past
/// the year 33658 in seconds are taken to be milliseconds (CloudTrail `launchTime` is epoch
/// milliseconds, GuardDuty and LookupEvents use epoch seconds with a fraction).
pub fn from_epoch_number(n: f64) -> Option<Millis> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    if n >= 1.0e12 {
        Some(n as i64)
    } else {
        Some((n * 1000.0).round() as i64)
    }
}

/// Formats as RFC 3339 with milliseconds and `Z`, the form ASFF and our outputs use.
pub fn format_rfc3339(t: Millis) -> String {
    let secs = t.div_euclid(1000);
    let ms = t.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses a duration like `250ms`, `90s`, `15m`, `8h`, `1d`, or a sum such as `1h30m`, into
/// milliseconds.
///
/// # Errors
/// A message saying what was expected.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    let expected = || format!("expected a duration like \"15m\", \"8h\" or \"1d\", found {s:?}");
    let t = s.trim();
    if t.is_empty() {
        return Err(expected());
    }
    let mut total: Millis = 0;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(expected()),
        };
        let n: Millis = num.parse().map_err(|_| expected())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(expected)?)
            .ok_or_else(expected)?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(expected());
    }
    Ok(total)
}

/// Formats milliseconds as the shortest duration text (`8h`, `1h30m`, `45s`).
pub fn format_duration(ms: Millis) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms / 1000;
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if ms % 1000 != 0 {
        out.push_str(&format!("{}ms", ms % 1000));
    }
    out
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_the_inputs_use() {
        let base = 1_746_177_600_000; // 2025-05-02T09:20:00Z
        let cases = [
            ("2025-05-02T09:20:00Z", Some(base)),
            ("2025-05-02T09:20:00.123Z", Some(base + 123)),
            ("2025-05-02T09:20:00.1234567Z", Some(base + 123)),
            ("2025-05-02 09:20:00", Some(base)),
            ("2025-05-02 09:20:00.000000000", Some(base)),
            ("2025-05-02 09:20:00.721", Some(base + 721)),
            ("2025-05-02T11:20:00+02:00", Some(base)),
            ("2025-05-02T04:20:00-0500", Some(base)),
            ("2025-05-02T09:20Z", Some(base)),
            ("2025-05-02", Some(base - (9 * 3600 + 20 * 60) * 1000)),
            ("redacted", None),
            ("...", None),
            ("2025-02-30T00:00:00Z", None),
            ("2025-05-02T25:00:00Z", None),
            ("2025-05-02T09:20:00Zjunk", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_timestamp(input), want, "input {input:?}");
        }
    }

    #[test]
    fn epoch_numbers_in_seconds_or_millis() {
        assert_eq!(from_epoch_number(1746177600.0), Some(1_746_177_600_000));
        assert_eq!(from_epoch_number(1636625755.218), Some(1_636_625_755_218));
        assert_eq!(from_epoch_number(1734374467000.0), Some(1_734_374_467_000));
        assert_eq!(from_epoch_number(-1.0), None);
    }

    #[test]
    fn durations() {
        for (s, want) in [
            ("15m", Ok(900_000)),
            ("8h", Ok(28_800_000)),
            ("1d", Ok(86_400_000)),
            ("1h30m", Ok(5_400_000)),
            ("90s", Ok(90_000)),
            ("250ms", Ok(250)),
            ("1m30s250ms", Ok(90_250)),
        ] {
            assert_eq!(parse_duration(s), want, "{s}");
            let ms = want.clone().unwrap();
            assert_eq!(parse_duration(&format_duration(ms)), want, "{s}");
        }
        for bad in ["", "15", "h", "1w", "-1h", "1.5h", "5sm", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "2025-05-02T09:20:00.123Z",
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(format_rfc3339(t), s);
        }
    }
}
