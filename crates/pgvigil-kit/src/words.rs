//! How counts and shares read in status lines: `3 dumps`, `1 superuser`, `12.5%`.

/// `12%` with at most one decimal, for status lines.
pub fn percent_text(value: f64) -> String {
    format!(
        "{}%",
        crate::units::format_number(crate::units::round_to(value, 1))
    )
}

/// `s` when `n` is not one.
pub fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `3 dumps`, `1 superuser`: a count and its noun.
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", plural(n as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(0, "dump"), "0 dumps");
        assert_eq!(count(1, "dump"), "1 dump");
        assert_eq!(count(2, "dump"), "2 dumps");
        assert_eq!(plural(-1), "s");
        assert_eq!(percent_text(12.345), "12.3%");
        assert_eq!(percent_text(80.0), "80%");
    }
}
