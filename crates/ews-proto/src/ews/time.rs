//! xs:dateTime, written the way both reference clients read it: whole
//! seconds with a `Z` (exchangelib drops fractional-second timestamps).

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SSZ` for a time.
pub fn format_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn now_utc() -> String {
    format_utc(SystemTime::now())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `s` is a lexically valid xs:dateTime:
/// `-?YYYY-MM-DDThh:mm:ss(.s+)?(Z|(+|-)hh:mm)?` with field ranges checked.
pub fn is_xs_datetime(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    let Some((y, mo, d)) = three(date, '-') else {
        return false;
    };
    let num = |t: &str, len: usize| t.len() == len && t.bytes().all(|b| b.is_ascii_digit());
    if y.len() < 4 || !y.bytes().all(|b| b.is_ascii_digit()) || !num(mo, 2) || !num(d, 2) {
        return false;
    }
    let (mo, d): (u32, u32) = (mo.parse().unwrap_or(0), d.parse().unwrap_or(0));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return false;
    }
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let zone_ok = match zone {
        "" | "Z" => true,
        z => {
            let z = &z[1..];
            matches!(z.split_once(':'), Some((h, m)) if num(h, 2) && num(m, 2)
                && h.parse::<u32>().unwrap_or(99) <= 14 && m.parse::<u32>().unwrap_or(99) < 60)
        }
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    let Some((h, mi, se)) = three(hms, ':') else {
        return false;
    };
    if !num(h, 2) || !num(mi, 2) || !num(se, 2) {
        return false;
    }
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let (h, mi, se): (u32, u32, u32) = (
        h.parse().unwrap_or(99),
        mi.parse().unwrap_or(99),
        se.parse().unwrap_or(99),
    );
    zone_ok && frac_ok && (h < 24 || (h == 24 && mi == 0 && se == 0)) && mi < 60 && se < 60
}

/// `a<sep>b<sep>c`: exactly three parts (none of them containing `sep`).
fn three(s: &str, sep: char) -> Option<(&str, &str, &str)> {
    let mut parts = s.split(sep);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Some((a, b, c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn validates_lexical_form() {
        for ok in [
            "2026-01-01T12:00:00Z",
            "2026-01-01T12:00:00.123Z",
            "2026-01-01T12:00:00+02:00",
            "2026-01-01T12:00:00",
        ] {
            assert!(is_xs_datetime(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01 12:00:00Z",
            "yesterday",
            "2026-01-01T12:00:00.Z",
        ] {
            assert!(!is_xs_datetime(bad), "{bad}");
        }
        assert!(is_xs_datetime(&now_utc()));
    }
}
