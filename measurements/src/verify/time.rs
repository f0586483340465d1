//! The few date computations verification needs: Intel's collateral dates are
//! RFC 3339 UTC timestamps ("2025-06-19T10:16:03Z").
#![deny(clippy::arithmetic_side_effects)]

/// Seconds since the Unix epoch of an RFC 3339 UTC timestamp (`Z` or `+00:00`,
/// optional fractional seconds, which are dropped). `None` for anything else.
pub fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u64> {
        let part = b.get(from..from.checked_add(len)?)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && (sep(10, b'T') || sep(10, b't'))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = b.get(19..)?;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = tail.get(digits..)?;
    }
    if !(rest == b"Z" || rest == b"z" || rest == b"+00:00") {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    days.checked_mul(86_400)?
        .checked_add(hour.checked_mul(3600)?)?
        .checked_add(min.checked_mul(60)?)?
        .checked_add(sec)
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (1970 or later), by counting whole years
/// and months: collateral dates are recent, so the loop is short.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    if y < 1970 {
        return None;
    }
    let mut days = 0u64;
    for year in 1970..y {
        days = days.checked_add(if is_leap(year) { 366 } else { 365 })?;
    }
    for month in 1..m {
        days = days.checked_add(days_in_month(y, month))?;
    }
    days.checked_add(d.checked_sub(1)?)
}

/// `secs` as an RFC 3339 UTC timestamp, for messages.
pub fn format_rfc3339_utc(secs: u64) -> String {
    let mut days = secs / 86_400;
    let rem = secs % 86_400;
    let mut year = 1970u64;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days = days.saturating_sub(len);
        year = year.saturating_add(1);
    }
    let mut month = 1u64;
    while month < 12 && days >= days_in_month(year, month) {
        days = days.saturating_sub(days_in_month(year, month));
        month = month.saturating_add(1);
    }
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        days.saturating_add(1),
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_collateral_dates() {
        // Values checked with `date -u -d ... +%s`.
        assert_eq!(parse_rfc3339_utc("2025-06-19T10:16:03Z"), Some(1750328163));
        assert_eq!(parse_rfc3339_utc("2025-07-19T10:16:03Z"), Some(1752920163));
        assert_eq!(
            parse_rfc3339_utc("2024-02-29T00:00:00.123Z"),
            Some(1709164800)
        );
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_rfc3339_utc("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2025-06-19 10:16:03Z"), None);
        assert_eq!(parse_rfc3339_utc("2025-06-19T10:16:03+01:00"), None);
        assert_eq!(parse_rfc3339_utc(""), None);
    }

    #[test]
    fn formats_round_trip() {
        for t in [0u64, 1709164800, 1751624190, 1752920163, 4102444800] {
            assert_eq!(parse_rfc3339_utc(&format_rfc3339_utc(t)), Some(t));
        }
    }
}
