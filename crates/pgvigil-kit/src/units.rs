//! Units a metric can be measured in, and the suffixes thresholds may carry.

/// The base unit of a measured value. Values are always held in base units
/// (bytes, seconds, percent) so that thresholds and perfdata line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Count,
    Percent,
    Bytes,
    Seconds,
    /// An ever-growing count of events (perfdata `c`); never thresholded.
    Counter,
}

impl Unit {
    /// The perfdata unit of measure.
    pub fn uom(self) -> &'static str {
        match self {
            Unit::Count => "",
            Unit::Percent => "%",
            Unit::Bytes => "B",
            Unit::Seconds => "s",
            Unit::Counter => "c",
        }
    }

    /// How the unit is named in an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Unit::Count => "a plain number",
            Unit::Percent => "a percentage (%)",
            Unit::Bytes => "a size (B, kB, MB, GB, TB)",
            Unit::Seconds => "a duration (ms, s, min, h, d)",
            Unit::Counter => "a counter",
        }
    }
}

/// Splits `16MB` into the number and the unit it is given in, with the
/// factor to base units. `None` for the unit means a bare number.
pub fn parse_quantity(text: &str) -> Result<(f64, Option<Unit>), String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() || c == '%')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number = number.trim();
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number"))?;
    if suffix.is_empty() {
        return Ok((value, None));
    }
    let (unit, factor) = suffix_factor(suffix).ok_or_else(|| {
        format!("unknown unit '{suffix}' in '{text}' (known: % B kB MB GB TB ms s min h d)")
    })?;
    Ok((value * factor, Some(unit)))
}

fn suffix_factor(suffix: &str) -> Option<(Unit, f64)> {
    const KIB: f64 = 1024.0;
    let found = match suffix.to_ascii_lowercase().as_str() {
        "%" => (Unit::Percent, 1.0),
        "b" => (Unit::Bytes, 1.0),
        "kb" | "k" => (Unit::Bytes, KIB),
        "mb" => (Unit::Bytes, KIB * KIB),
        "gb" => (Unit::Bytes, KIB * KIB * KIB),
        "tb" => (Unit::Bytes, KIB * KIB * KIB * KIB),
        "us" => (Unit::Seconds, 1e-6),
        "ms" => (Unit::Seconds, 1e-3),
        "s" | "sec" => (Unit::Seconds, 1.0),
        "min" => (Unit::Seconds, 60.0),
        "h" => (Unit::Seconds, 3600.0),
        "d" => (Unit::Seconds, 86400.0),
        _ => return None,
    };
    Some(found)
}

/// A size option such as `--min-size 10MB` (a bare number is bytes), for clap.
pub fn parse_size_option(text: &str) -> Result<u64, String> {
    match parse_quantity(text)? {
        (value, None | Some(Unit::Bytes)) if value >= 0.0 => Ok(value as u64),
        (_, None | Some(Unit::Bytes)) => Err(format!("'{text}' is negative")),
        _ => Err(format!("'{text}' is not a size (B, kB, MB, GB, TB)")),
    }
}

/// A duration option such as `--growth-interval 1h` (a bare number is seconds), for clap.
pub fn parse_duration_option(text: &str) -> Result<f64, String> {
    match parse_quantity(text)? {
        (value, None | Some(Unit::Seconds)) if value >= 0.0 => Ok(value),
        (_, None | Some(Unit::Seconds)) => Err(format!("'{text}' is negative")),
        _ => Err(format!("'{text}' is not a duration (ms, s, min, h, d)")),
    }
}

/// Formats a number for perfdata and ranges: no exponent, no trailing zeros.
pub fn format_number(value: f64) -> String {
    format_decimals(value, 6)
}

/// Formats a threshold bound: as many decimals as an operator may type, so
/// the range printed in perfdata is the one applied (`5.0450396`, not `5.04504`).
pub fn format_bound(value: f64) -> String {
    format_decimals(value, 12)
}

fn format_decimals(value: f64, decimals: usize) -> String {
    // -0 (an empty float sum is -0) prints as 0.
    let value = if value == 0.0 { 0.0 } else { value };
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.decimals$}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" {
            "0".to_string()
        } else {
            text.to_string()
        }
    }
}

/// Rounds to `decimals` places, so perfdata carries no false precision.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Formats a byte count the way pg_size_pretty does, for status lines.
pub fn pretty_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 * 10.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", value.round(), UNITS[unit])
}

/// Formats seconds for status lines: `850 ms`, `42 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub fn pretty_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        return format!("{} ms", (seconds * 1000.0).round());
    }
    if seconds < 60.0 {
        return format!("{} s", format_number((seconds * 10.0).round() / 10.0));
    }
    let s = seconds.round() as u64;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {sec} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_1024_based() {
        assert_eq!(
            parse_quantity("16MB"),
            Ok((16.0 * 1048576.0, Some(Unit::Bytes)))
        );
        assert_eq!(parse_quantity("1kB"), Ok((1024.0, Some(Unit::Bytes))));
        assert_eq!(
            parse_quantity("1.5GB"),
            Ok((1.5 * 1073741824.0, Some(Unit::Bytes)))
        );
        assert_eq!(parse_quantity("2TB").unwrap().0, 2.0 * 1024f64.powi(4));
        assert_eq!(parse_quantity("10B"), Ok((10.0, Some(Unit::Bytes))));
    }

    #[test]
    fn parses_durations_to_seconds() {
        assert_eq!(parse_quantity("250ms"), Ok((0.25, Some(Unit::Seconds))));
        assert_eq!(parse_quantity("30s"), Ok((30.0, Some(Unit::Seconds))));
        assert_eq!(parse_quantity("5min"), Ok((300.0, Some(Unit::Seconds))));
        assert_eq!(parse_quantity("2h"), Ok((7200.0, Some(Unit::Seconds))));
        assert_eq!(parse_quantity("1d"), Ok((86400.0, Some(Unit::Seconds))));
    }

    #[test]
    fn parses_percent_and_bare_numbers() {
        assert_eq!(parse_quantity("80%"), Ok((80.0, Some(Unit::Percent))));
        assert_eq!(parse_quantity("-3.5"), Ok((-3.5, None)));
    }

    #[test]
    fn rejects_unknown_units_and_garbage() {
        assert!(parse_quantity("10XB")
            .unwrap_err()
            .contains("unknown unit 'XB'"));
        assert!(parse_quantity("abc").unwrap_err().contains("not a number"));
        assert!(parse_quantity("").is_err());
        assert!(parse_quantity("inf").is_err());
        assert!(
            parse_quantity("1m").is_err(),
            "m is ambiguous: minutes or MB"
        );
    }

    #[test]
    fn formats_numbers_without_exponent_or_trailing_zeros() {
        assert_eq!(format_number(16777216.0), "16777216");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(77.6), "77.6");
        assert_eq!(format_number(-0.0000001), "0");
        assert_eq!(format_number(1.0 / 3.0), "0.333333");
    }

    #[test]
    fn pretty_prints_for_humans() {
        assert_eq!(pretty_bytes(512.0), "512 bytes");
        assert_eq!(pretty_bytes(16.0 * 1048576.0), "16 MB");
        assert_eq!(pretty_duration(0.25), "250 ms");
        assert_eq!(pretty_duration(42.0), "42 s");
        assert_eq!(pretty_duration(200.0), "3 min 20 s");
        assert_eq!(pretty_duration(7500.0), "2 h 5 min");
        assert_eq!(pretty_duration(90000.0), "1 d 1 h");
    }
}
