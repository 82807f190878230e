//! Human-readable durations, sizes and times as docker prints them
//! (`github.com/docker/go-units` and Go's `time.Time.String`).

use chrono::{DateTime, Local, TimeZone};

/// go-units `HumanDuration`: "Less than a second", "1 second", "N seconds",
/// "About a minute", "N minutes", "About an hour", "N hours", "N days",
/// "N weeks", "N months", "N years".
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // d.Round(time.Hour).Hours()
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// "N units ago" for a Unix timestamp (seconds), relative to now.
pub fn since(unix_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let delta_ms = (now - unix_secs.saturating_mul(1000)).max(0) as u64;
    format!(
        "{} ago",
        human_duration(std::time::Duration::from_millis(delta_ms))
    )
}

/// Go's `%.*g` for the precisions go-units uses.
fn go_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(&mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `HumanSizeWithPrecision` (decimal units: B, kB, MB, ...).
pub fn human_size_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), UNITS[i])
}

/// go-units `HumanSize` (precision 4).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize` (binary units: B, KiB, MiB, ...).
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(size, 4), UNITS[i])
}

/// Go's `time.Unix(secs, 0).String()` in local time: "2006-01-02 15:04:05 -0700 MST".
pub fn go_time_string(unix_secs: i64) -> String {
    match Local.timestamp_opt(unix_secs, 0).single() {
        Some(t) => go_time_fmt(&t),
        None => String::new(),
    }
}

fn go_time_fmt(t: &DateTime<Local>) -> String {
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        // chrono has no zone abbreviations; Go prints the abbreviation or the offset.
        t.format("%:::z").to_string()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// Parses an RFC 3339 timestamp (as the API returns) into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_like_go_units() {
        let s = |n: u64| human_duration(Duration::from_secs(n));
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(s(1), "1 second");
        assert_eq!(s(5), "5 seconds");
        assert_eq!(s(59), "59 seconds");
        assert_eq!(s(60), "About a minute");
        assert_eq!(s(119), "About a minute");
        assert_eq!(s(120), "2 minutes");
        assert_eq!(s(59 * 60), "59 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(5400), "2 hours"); // 1.5h rounds to 2
        assert_eq!(s(47 * 3600), "47 hours");
        assert_eq!(s(48 * 3600), "2 days");
        assert_eq!(s(13 * 86400), "13 days");
        assert_eq!(s(14 * 86400), "2 weeks");
        assert_eq!(s(59 * 86400), "8 weeks");
        assert_eq!(s(60 * 86400), "2 months");
        assert_eq!(s(729 * 86400), "24 months");
        assert_eq!(s(730 * 86400), "2 years");
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(1234.0, 3), "1.23kB");
        assert_eq!(human_size_precision(4_400_000.0, 3), "4.4MB");
        assert_eq!(human_size_precision(12_000_000.0, 3), "12MB");
        assert_eq!(human_size_precision(123_456_789.0, 3), "123MB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(bytes_size(8.0 * 1024.0 * 1024.0 * 1024.0), "8GiB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_rfc3339("2024-01-02T03:04:05.123456789Z"),
            Some(1704164645)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
