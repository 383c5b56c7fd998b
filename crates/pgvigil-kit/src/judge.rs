//! The roll-up every judge shares: findings, each with its own state, become
//! one state (the worst) and detail lines (worst first), so no check sorts or
//! folds states by hand.

use crate::status::Status;

/// One thing a judge found: its state and the line that names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub status: Status,
    pub line: String,
}

impl Finding {
    pub fn new(status: Status, line: impl Into<String>) -> Finding {
        Finding {
            status,
            line: line.into(),
        }
    }
}

/// The worst of the states, OK for none.
pub fn worst(states: impl IntoIterator<Item = Status>) -> Status {
    states.into_iter().fold(Status::Ok, Status::worst)
}

/// Orders `items` worst state first; items of the same state keep their
/// order, so sorting by a second key (size, age) first gives worst, then
/// largest.
pub fn worst_first<T>(items: &mut [T], status: impl Fn(&T) -> Status) {
    items.sort_by_key(|i| std::cmp::Reverse(status(i).rank()));
}

/// The findings' overall state and their lines, worst first; findings of the
/// same state keep the order they were found in (usually the fetch's order,
/// which puts the largest value first).
pub fn roll_up(mut findings: Vec<Finding>) -> (Status, Vec<String>) {
    let status = worst(findings.iter().map(|f| f.status));
    worst_first(&mut findings, |f| f.status);
    (status, findings.into_iter().map(|f| f.line).collect())
}

/// The overall state of all findings, and the lines of those that are not
/// OK, worst first; every line when `verbose`.
pub fn alerting_lines(findings: Vec<Finding>, verbose: bool) -> (Status, Vec<String>) {
    let status = worst(findings.iter().map(|f| f.status));
    let kept = findings
        .into_iter()
        .filter(|f| verbose || f.status != Status::Ok)
        .collect();
    (status, roll_up(kept).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_first_keeps_the_found_order_within_a_state() {
        let (status, lines) = roll_up(vec![
            Finding::new(Status::Ok, "a"),
            Finding::new(Status::Warning, "b"),
            Finding::new(Status::Critical, "c"),
            Finding::new(Status::Warning, "d"),
            Finding::new(Status::Unknown, "e"),
        ]);
        assert_eq!(status, Status::Critical);
        assert_eq!(lines, ["c", "e", "b", "d", "a"]);
    }

    #[test]
    fn quiet_runs_show_only_what_alerts() {
        let found = vec![
            Finding::new(Status::Ok, "a"),
            Finding::new(Status::Warning, "b"),
        ];
        assert_eq!(
            alerting_lines(found.clone(), false),
            (Status::Warning, vec!["b".to_string()])
        );
        assert_eq!(alerting_lines(found, true).1, ["b", "a"]);
    }

    #[test]
    fn nothing_found_is_ok() {
        assert_eq!(worst([]), Status::Ok);
        assert_eq!(roll_up(vec![]), (Status::Ok, vec![]));
    }
}
