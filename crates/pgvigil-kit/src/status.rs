//! The four plugin states and how they combine.

use std::fmt;

/// A plugin state. The order of the variants is severity order for
/// aggregation: UNKNOWN ranks between WARNING and CRITICAL, as the
/// Monitoring Plugins guidelines do when several results are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// Severity for aggregation: OK, WARNING, UNKNOWN, CRITICAL.
    pub fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }

    /// The more severe of two states.
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// Parses a state name as `-t 20:critical` spells it.
    pub fn parse(text: &str) -> Option<Status> {
        match text.to_ascii_lowercase().as_str() {
            "ok" => Some(Status::Ok),
            "warning" | "warn" => Some(Status::Warning),
            "critical" | "crit" => Some(Status::Critical),
            "unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromIterator<Status> for Status {
    fn from_iter<I: IntoIterator<Item = Status>>(iter: I) -> Status {
        iter.into_iter().fold(Status::Ok, Status::worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_guidelines() {
        assert_eq!(Status::Ok.exit_code(), 0);
        assert_eq!(Status::Warning.exit_code(), 1);
        assert_eq!(Status::Critical.exit_code(), 2);
        assert_eq!(Status::Unknown.exit_code(), 3);
    }

    #[test]
    fn worst_of_ranks_critical_above_unknown_above_warning() {
        assert_eq!(Status::Ok.worst(Status::Warning), Status::Warning);
        assert_eq!(Status::Warning.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Unknown.worst(Status::Critical), Status::Critical);
        assert_eq!(Status::Critical.worst(Status::Ok), Status::Critical);
        let all: Status = [Status::Ok, Status::Warning, Status::Ok]
            .into_iter()
            .collect();
        assert_eq!(all, Status::Warning);
        assert_eq!(std::iter::empty().collect::<Status>(), Status::Ok);
    }

    #[test]
    fn parses_state_names() {
        assert_eq!(Status::parse("CRITICAL"), Some(Status::Critical));
        assert_eq!(Status::parse("warn"), Some(Status::Warning));
        assert_eq!(Status::parse("bogus"), None);
    }
}
