//! A check's result and the text Nagios reads: one status line with perfdata,
//! then bounded long output.

use crate::perfdata::PerfData;
use crate::status::Status;

/// Nagios 4 keeps 8 KB of output and cuts the rest wherever it falls, perfdata
/// included; the text stays inside these bounds instead, whatever the server
/// holds (10,000 sessions, a 1 MB query text).
pub const MAX_DETAIL_LINES: usize = 20;
pub const OUTPUT_CAP: usize = 8000;
const SUMMARY_CAP: usize = 1000;
const PERFDATA_CAP: usize = 5000;
const LINE_CAP: usize = 300;

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

    /// A judge's UNKNOWN when what was measured cannot answer what the
    /// thresholds ask here, worded as a run that could not measure.
    pub fn cannot_measure(why: String) -> CheckResult {
        let error = crate::error::Error::CannotMeasure(why);
        let hint = error.hint("").unwrap_or_default();
        CheckResult::new(error.status(), error.to_string()).with_hint(hint)
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

    /// The full plugin output for a check whose display name is `check` (e.g.
    /// `CONNECTIONS`), within `OUTPUT_CAP` bytes.
    pub fn render(&self, check: &str) -> String {
        let mut out = format!(
            "PG_{check} {} - {}",
            self.status,
            clip(&one_line(&self.summary), SUMMARY_CAP)
        );
        let mut perf_left_out = 0;
        if !self.perfdata.is_empty() {
            out.push_str(" |");
            let mut used = 0;
            for item in &self.perfdata {
                let item = item.to_string();
                if used + item.len() + 1 > PERFDATA_CAP {
                    perf_left_out += 1;
                    continue;
                }
                used += item.len() + 1;
                out.push(' ');
                out.push_str(&item);
            }
        }
        let hint = self
            .hint
            .as_ref()
            .map(|h| format!("\nhint: {}", clip(&one_line(h), SUMMARY_CAP)));
        let note = (perf_left_out > 0).then(|| {
            format!("{perf_left_out} perfdata items left out to keep the output within 8 KB")
        });
        // A `|` would start perfdata in the long output.
        let mut lines = note.into_iter().chain(
            self.details
                .iter()
                .map(|l| clip(&one_line(l), LINE_CAP).replace('|', "/")),
        );
        let total = self.details.len() + usize::from(perf_left_out > 0);
        // Room for the hint and the count of lines left out.
        let reserve = hint.as_ref().map_or(0, String::len) + 40;
        let mut shown = 0;
        while shown < MAX_DETAIL_LINES {
            let Some(line) = lines.next() else { break };
            if out.len() + 1 + line.len() + reserve > OUTPUT_CAP {
                break;
            }
            out.push('\n');
            out.push_str(&line);
            shown += 1;
        }
        if total > shown {
            out.push_str(&format!("\n... and {} more", total - shown));
        }
        if let Some(hint) = hint {
            out.push_str(&hint);
        }
        out.push('\n');
        out
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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
    fn huge_summaries_lines_and_perfdata_stay_within_the_cap() {
        let query = format!("SELECT 'é{}' |\n", "x".repeat(100_000));
        let result = CheckResult::new(Status::Critical, query.clone())
            .perf((0..10_000).map(|i| PerfData::new(format!("session {i}"), 1.0, Unit::Seconds)))
            .details((0..10_000).map(|i| format!("pid {i}: {query}")))
            .with_hint("look at pg_stat_activity");
        let text = result.render("LONG_RUNNING");
        assert!(text.len() <= OUTPUT_CAP, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("PG_LONG_RUNNING CRITICAL - SELECT 'éxxx"));
        assert!(lines[0].contains("… | 'session 0'=1s 'session 1'=1s"));
        assert_eq!(lines[0].matches('|').count(), 1);
        assert!(lines[1].ends_with("perfdata items left out to keep the output within 8 KB"));
        assert!(lines[2].starts_with("pid 0: SELECT") && lines[2].ends_with("x…"));
        assert!(lines[lines.len() - 2].starts_with("... and "));
        assert_eq!(lines[lines.len() - 1], "hint: look at pg_stat_activity");
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
