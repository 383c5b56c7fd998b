//! What every judge shares: the worst of several states, details ordered
//! worst first, and findings gathered with their states, so no check folds
//! or sorts states by hand.

use crate::status::Status;

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

/// What a judge found, each with its state: pushed in the order found, read
/// back worst first (ties keep that order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    found: Vec<(Status, String)>,
}

impl Findings {
    pub fn new() -> Findings {
        Findings::default()
    }

    pub fn push(&mut self, status: Status, text: impl Into<String>) {
        self.found.push((status, text.into()));
    }

    /// Adds what one rule found, if anything: the shape of a judge split
    /// into one function per finding.
    pub fn add(&mut self, finding: Option<(Status, String)>) {
        self.found.extend(finding);
    }

    /// Every rule's finding, in order.
    pub fn extend(&mut self, findings: impl IntoIterator<Item = (Status, String)>) {
        self.found.extend(findings);
    }

    /// The worst state found, OK for nothing.
    pub fn worst(&self) -> Status {
        worst(self.found.iter().map(|(s, _)| *s))
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Every finding's text, worst first.
    pub fn texts(&self) -> Vec<&str> {
        let mut found: Vec<&(Status, String)> = self.found.iter().collect();
        worst_first(&mut found, |(s, _)| *s);
        found.into_iter().map(|(_, text)| text.as_str()).collect()
    }

    /// The texts of what is not OK, worst first.
    pub fn alerts(&self) -> Vec<&str> {
        let mut found: Vec<&(Status, String)> = self
            .found
            .iter()
            .filter(|(s, _)| *s != Status::Ok)
            .collect();
        worst_first(&mut found, |(s, _)| *s);
        found.into_iter().map(|(_, text)| text.as_str()).collect()
    }

    /// `base`, then every finding worst first, each after `; `: a summary.
    pub fn after(&self, base: impl Into<String>) -> String {
        let mut summary = base.into();
        for text in self.texts() {
            summary.push_str("; ");
            summary.push_str(text);
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_first_keeps_the_found_order_within_a_state() {
        let mut found = vec![
            (Status::Ok, "a"),
            (Status::Warning, "b"),
            (Status::Critical, "c"),
            (Status::Warning, "d"),
            (Status::Unknown, "e"),
        ];
        assert_eq!(worst(found.iter().map(|f| f.0)), Status::Critical);
        worst_first(&mut found, |f| f.0);
        let lines: Vec<&str> = found.iter().map(|f| f.1).collect();
        assert_eq!(lines, ["c", "e", "b", "d", "a"]);
    }

    #[test]
    fn nothing_found_is_ok() {
        assert_eq!(worst([]), Status::Ok);
        let none = Findings::new();
        assert_eq!(none.worst(), Status::Ok);
        assert_eq!(none.after("PostgreSQL 17.2"), "PostgreSQL 17.2");
    }

    #[test]
    fn findings_read_back_worst_first_in_the_order_found() {
        let mut f = Findings::new();
        f.push(Status::Warning, "a restart is pending");
        f.add(None);
        f.add(Some((Status::Critical, "split brain".to_string())));
        f.push(Status::Ok, "replica healthy");
        f.push(Status::Warning, "db3 unreachable");
        assert_eq!(f.worst(), Status::Critical);
        assert_eq!(
            f.texts(),
            [
                "split brain",
                "a restart is pending",
                "db3 unreachable",
                "replica healthy"
            ]
        );
        assert_eq!(
            f.alerts(),
            ["split brain", "a restart is pending", "db3 unreachable"]
        );
        assert_eq!(
            f.after("2 nodes"),
            "2 nodes; split brain; a restart is pending; db3 unreachable; replica healthy"
        );
    }
}
