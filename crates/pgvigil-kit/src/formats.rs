//! `--format`: the same result as Nagios text, as one JSON object, or as
//! OpenMetrics for node_exporter's textfile collector. The exit code never
//! depends on the format, so scripts keep branching on it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::output::CheckResult;
use crate::perfdata::PerfData;
use crate::units::Unit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Nagios,
    Json,
    OpenMetrics,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim().to_ascii_lowercase().as_str() {
            "nagios" => Some(Format::Nagios),
            "json" => Some(Format::Json),
            "openmetrics" => Some(Format::OpenMetrics),
            _ => None,
        }
    }
}

/// Who printed the result: the check's short name (`connections`), which
/// its status line gives upper-cased after `PG_` (`PG_CONNECTIONS`).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub check: &'a str,
}

pub fn render(result: &CheckResult, source: Source, format: Format) -> String {
    match format {
        Format::Nagios => result.render(&source.check.to_ascii_uppercase()),
        Format::Json => json(result, source),
        Format::OpenMetrics => openmetrics(result, source),
    }
}

#[derive(Serialize)]
struct JsonResult<'a> {
    check: &'a str,
    state: String,
    exit_code: i32,
    summary: String,
    details: &'a [String],
    hint: Option<&'a str>,
    perfdata: Vec<JsonPerf<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<JsonResult<'a>>,
}

#[derive(Serialize)]
struct JsonPerf<'a> {
    label: &'a str,
    value: Option<f64>,
    unit: &'static str,
    warn: Option<&'a str>,
    crit: Option<&'a str>,
    min: Option<f64>,
    max: Option<f64>,
}

fn json_result<'a>(result: &'a CheckResult, check: &'a str) -> JsonResult<'a> {
    JsonResult {
        check,
        state: result.status.to_string(),
        exit_code: result.status.exit_code(),
        summary: crate::output::one_line(&result.summary),
        details: &result.details,
        hint: result.hint.as_deref(),
        perfdata: result
            .perfdata
            .iter()
            .map(|p| JsonPerf {
                label: &p.label,
                // JSON has no NaN or infinity.
                value: Some(p.value).filter(|v| v.is_finite()),
                unit: p.unit.uom(),
                warn: p.warning.as_deref(),
                crit: p.critical.as_deref(),
                min: p.min,
                max: p.max,
            })
            .collect(),
        checks: result
            .parts
            .iter()
            .map(|part| json_result(&part.result, &part.check))
            .collect(),
    }
}

fn json(result: &CheckResult, source: Source) -> String {
    let mut text = serde_json::to_string(&json_result(result, source.check))
        .unwrap_or_else(|e| format!("{{\"check\":\"{}\",\"error\":\"{e}\"}}", source.check));
    text.push('\n');
    text
}

/// One metric family: its samples in the order the check reported them.
struct Family {
    unit: Option<&'static str>,
    help: String,
    samples: Vec<(String, f64)>,
}

fn openmetrics(result: &CheckResult, source: Source) -> String {
    // The checks behind this result: itself, or the parts of a combined run.
    let checks: Vec<(&str, &CheckResult)> = if result.parts.is_empty() {
        vec![(source.check, result)]
    } else {
        let mut all = vec![(source.check, result)];
        all.extend(result.parts.iter().map(|p| (p.check.as_str(), &p.result)));
        all
    };
    let mut out = String::from(
        "# TYPE pgvigil_check_state gauge\n\
         # HELP pgvigil_check_state The check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n",
    );
    for (check, r) in &checks {
        let _ = writeln!(
            out,
            "pgvigil_check_state{{check=\"{}\"}} {}",
            escape_label_value(check),
            r.status.exit_code()
        );
    }
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let measured = if result.parts.is_empty() {
        checks
    } else {
        checks[1..].to_vec()
    };
    for (check, r) in measured {
        for p in &r.perfdata {
            let (name, unit, value) = metric(check, p);
            let family = families.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                Family {
                    unit,
                    help: format!("{check}: perfdata '{}'", p.label),
                    samples: Vec::new(),
                }
            });
            family.samples.push((p.label.clone(), value));
        }
    }
    for name in order {
        let family = &families[&name];
        let _ = writeln!(out, "# TYPE {name} gauge");
        if let Some(unit) = family.unit {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
        // Labels folding onto one name stay apart by their perfdata label.
        let labelled = family.samples.len() > 1;
        for (label, value) in &family.samples {
            let labels = if labelled {
                format!("{{perfdata=\"{}\"}}", escape_label_value(label))
            } else {
                String::new()
            };
            let _ = writeln!(out, "{name}{labels} {}", sample_value(*value));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `pgvigil_<check>_<label>` with the OpenMetrics base unit as suffix;
/// percentages become ratios, as Prometheus expects.
fn metric(check: &str, p: &PerfData) -> (String, Option<&'static str>, f64) {
    let mut label = sanitize(&p.label);
    if p.unit == Unit::Percent {
        for suffix in ["_pct", "_percent", "_ratio"] {
            if let Some(stem) = label.strip_suffix(suffix) {
                label = stem.to_string();
            }
        }
    }
    let base = format!("pgvigil_{}_{label}", sanitize(check));
    let (unit, value) = match p.unit {
        Unit::Seconds => (Some("seconds"), p.value),
        Unit::Bytes => (Some("bytes"), p.value),
        Unit::Percent => (Some("ratio"), p.value / 100.0),
        Unit::Count | Unit::Counter => (None, p.value),
    };
    let name = match unit {
        Some(unit) if !base.ends_with(&format!("_{unit}")) => format!("{base}_{unit}"),
        _ => base,
    };
    (name, unit, value)
}

/// A metric name part: lower-case letters, digits and single underscores.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    // Reserved suffixes would make a gauge read as a counter or histogram.
    for reserved in ["_total", "_created", "_count", "_sum", "_bucket", "_info"] {
        if out.ends_with(reserved) {
            out.push_str("_value");
        }
    }
    if out.is_empty() {
        out.push_str("value");
    }
    out
}

fn sample_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        crate::units::format_number(value)
    }
}

fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;

    fn sample() -> CheckResult {
        CheckResult::new(Status::Warning, "85 of 100 connections used (85%)")
            .perf([
                PerfData::new("connections", 85.0, Unit::Count)
                    .min(0.0)
                    .max(100.0),
                PerfData::new("used", 85.0, Unit::Percent),
                PerfData::new("time", 0.002, Unit::Seconds),
            ])
            .details(["postgres: 85".to_string()])
            .with_hint("look at idle sessions")
    }

    const SOURCE: Source = Source {
        check: "connections",
    };

    #[test]
    fn json_has_every_field() {
        let text = render(&sample(), SOURCE, Format::Json);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["check"], "connections");
        assert_eq!(v["state"], "WARNING");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["hint"], "look at idle sessions");
        assert_eq!(v["perfdata"][0]["label"], "connections");
        assert_eq!(v["perfdata"][0]["max"], 100.0);
        assert_eq!(v["perfdata"][1]["unit"], "%");
        assert!(v["perfdata"][0]["warn"].is_null());
    }

    #[test]
    fn openmetrics_names_carry_base_units() {
        let text = render(&sample(), SOURCE, Format::OpenMetrics);
        assert!(text.contains("pgvigil_check_state{check=\"connections\"} 1\n"));
        assert!(text.contains("pgvigil_connections_connections 85\n"));
        assert!(text.contains("# UNIT pgvigil_connections_used_ratio ratio\n"));
        assert!(text.contains("pgvigil_connections_used_ratio 0.85\n"));
        assert!(text.contains("pgvigil_connections_time_seconds 0.002\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn names_are_sanitized_and_never_doubled() {
        assert_eq!(sanitize("standby1 lag_bytes"), "standby1_lag_bytes");
        assert_eq!(sanitize("Wait Events/total"), "wait_events_total_value");
        assert_eq!(sanitize("'--'"), "value");
        let p = PerfData::new("lag_seconds", 1.0, Unit::Seconds);
        assert_eq!(metric("x", &p).0, "pgvigil_x_lag_seconds");
        let p = PerfData::new("connections_pct", 50.0, Unit::Percent);
        assert_eq!(metric("x", &p).0, "pgvigil_x_connections_ratio");
    }

    #[test]
    fn colliding_names_stay_apart() {
        let r = CheckResult::new(Status::Ok, "ok").perf([
            PerfData::new("a b", 1.0, Unit::Count),
            PerfData::new("a-b", 2.0, Unit::Count),
        ]);
        let text = render(&r, SOURCE, Format::OpenMetrics);
        assert!(text.contains("pgvigil_connections_a_b{perfdata=\"a b\"} 1\n"));
        assert!(text.contains("pgvigil_connections_a_b{perfdata=\"a-b\"} 2\n"));
    }
}
