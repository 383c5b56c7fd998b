//! A check's result and the text Nagios reads: one status line with perfdata,
//! then bounded long output.

use crate::perfdata::PerfData;
use crate::status::Status;

/// Nagios 4 keeps 8 KB of output; this many detail lines stay well inside it.
pub const MAX_DETAIL_LINES: usize = 20;

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub status: Status,
    pub summary: String,
    pub perfdata: Vec<PerfData>,
    pub details: Vec<String>,
    /// What to look at or run next; shown after the details when not OK.
    pub hint: Option<String>,
    /// The checks a combined run (check_pg_health) is made of.
    pub parts: Vec<Part>,
}

/// One check of a combined run, by its short name (`connections`).
#[derive(Debug, Clone)]
pub struct Part {
    pub check: String,
    pub result: CheckResult,
}

impl CheckResult {
    pub fn new(status: Status, summary: impl Into<String>) -> CheckResult {
        CheckResult {
            status,
            summary: summary.into(),
            perfdata: Vec::new(),
            details: Vec::new(),
            hint: None,
            parts: Vec::new(),
        }
    }

    /// Sets the next step an operator should take on this result.
    pub fn with_hint(mut self, hint: impl Into<String>) -> CheckResult {
        self.hint = Some(hint.into());
        self
    }

    pub fn perf(mut self, perfdata: impl IntoIterator<Item = PerfData>) -> CheckResult {
        self.perfdata.extend(perfdata);
        self
    }

    pub fn details(mut self, details: impl IntoIterator<Item = String>) -> CheckResult {
        self.details.extend(details);
        self
    }

    /// The full plugin output for a check whose display name is `check` (e.g. `CONNECTIONS`).
    pub fn render(&self, check: &str) -> String {
        let mut out = format!("PG_{check} {} - {}", self.status, one_line(&self.summary));
        if !self.perfdata.is_empty() {
            out.push_str(" | ");
            let items: Vec<String> = self.perfdata.iter().map(|p| p.to_string()).collect();
            out.push_str(&items.join(" "));
        }
        let shown = self.details.len().min(MAX_DETAIL_LINES);
        for line in &self.details[..shown] {
            out.push('\n');
            // A `|` would start perfdata in the long output.
            out.push_str(&one_line(line).replace('|', "/"));
        }
        if self.details.len() > shown {
            out.push_str(&format!("\n... and {} more", self.details.len() - shown));
        }
        if let Some(hint) = &self.hint {
            out.push_str("\nhint: ");
            out.push_str(&one_line(hint));
        }
        out.push('\n');
        out
    }
}

/// Folds anything multi-line (server messages, query text) onto one line, without `|`.
pub fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Unit;

    #[test]
    fn status_line_then_long_output() {
        let result = CheckResult::new(Status::Warning, "85 of 97 connections used (88%)")
            .perf([PerfData::new("connections", 85.0, Unit::Count)
                .min(0.0)
                .max(97.0)])
            .details(["db1: 80".to_string(), "db2: 5".to_string()]);
        assert_eq!(
            result.render("CONNECTIONS"),
            "PG_CONNECTIONS WARNING - 85 of 97 connections used (88%) | connections=85;;;0;97\ndb1: 80\ndb2: 5\n"
        );
    }

    #[test]
    fn summary_is_kept_to_one_line_without_pipes() {
        let result = CheckResult::new(Status::Unknown, "ERROR:  oops\nLINE 1: a | b");
        assert_eq!(
            result.render("QUERY"),
            "PG_QUERY UNKNOWN - ERROR: oops LINE 1: a / b\n"
        );
    }

    #[test]
    fn long_output_is_bounded() {
        let lines = (0..30).map(|i| format!("line {i}"));
        let text = CheckResult::new(Status::Ok, "x")
            .details(lines)
            .render("LOCKS");
        assert_eq!(text.lines().count(), 1 + MAX_DETAIL_LINES + 1);
        assert!(text.ends_with("... and 10 more\n"));
    }

    #[test]
    fn the_hint_ends_the_long_output_even_when_it_is_cut() {
        let text = CheckResult::new(Status::Critical, "x")
            .details((0..30).map(|i| format!("line {i}")))
            .with_hint("run this")
            .render("LOCKS");
        assert!(text.ends_with("... and 10 more\nhint: run this\n"));
    }
}
