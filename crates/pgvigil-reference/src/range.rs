//! Range semantics straight from the guidelines' table.

/// `start:end` alerts outside [start, end], both ends inclusive; `@` inverts;
/// a missing start is 0, `~` is -infinity, a missing end is +infinity; `N`
/// alone is `0:N`.
pub fn alerts(start: Option<f64>, tilde: bool, end: Option<f64>, at: bool, value: f64) -> bool {
    let low = if tilde {
        f64::NEG_INFINITY
    } else {
        start.unwrap_or(0.0)
    };
    let high = end.unwrap_or(f64::INFINITY);
    let outside = value < low || value > high;
    outside != at
}

/// A range text split by the grammar alone: `[@][start|~]:[end]` or `[@]end`.
/// Returns (start, tilde, end, at), or `None` when a part is not a number or
/// start is above end.
pub fn parse(text: &str) -> Option<(Option<f64>, bool, Option<f64>, bool)> {
    let (at, body) = match text.strip_prefix('@') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // A plain decimal: an optional minus, digits, at most one point.
    let number = |s: &str| -> Option<f64> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        let ok = digits.bytes().any(|b| b.is_ascii_digit())
            && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().filter(|b| *b == b'.').count() <= 1;
        ok.then(|| s.parse::<f64>().ok())
            .flatten()
            .filter(|v| v.is_finite())
    };
    let (start, tilde, end) = match body.split_once(':') {
        None => (None, false, Some(number(body)?)),
        Some((s, e)) => {
            let (start, tilde) = match s {
                "~" => (None, true),
                "" => (None, false),
                s => (Some(number(s)?), false),
            };
            let end = if e.is_empty() { None } else { Some(number(e)?) };
            (start, tilde, end)
        }
    };
    let low = if tilde {
        f64::NEG_INFINITY
    } else {
        start.unwrap_or(0.0)
    };
    if low > end.unwrap_or(f64::INFINITY) {
        return None;
    }
    Some((start, tilde, end, at))
}
