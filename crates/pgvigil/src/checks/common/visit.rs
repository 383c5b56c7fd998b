//! How the checks that visit every database word what the visit found: a
//! database left unvisited raises the state and is named, and relations are
//! named with their database when there are several.

use pgvigil_kit::status::Status;
use pgvigil_kit::words::plural;

use crate::session::databases::Visit;

/// The wording of a visit, for the judges.
pub trait Wording {
    /// A database that could not be looked into makes the result at least
    /// WARNING: a silent skip would pass for a healthy database.
    fn floor(&self, status: Status) -> Status;
    /// `; 1 database unreachable (db3)` for the summary, empty when none.
    fn unreachable_note(&self) -> String;
    /// One long-output line per unreachable database, with the reason.
    fn unreachable_details(&self) -> Vec<String>;
}

impl<T> Wording for Visit<T> {
    fn floor(&self, status: Status) -> Status {
        if self.unreachable.is_empty() {
            status
        } else {
            status.worst(Status::Warning)
        }
    }

    fn unreachable_note(&self) -> String {
        if self.unreachable.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = self.unreachable.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "; {} database{} unreachable ({})",
            names.len(),
            plural(names.len() as i64),
            names.join(", ")
        )
    }

    fn unreachable_details(&self) -> Vec<String> {
        self.unreachable
            .iter()
            .map(|(name, reason)| format!("database {name} not checked: {reason}"))
            .collect()
    }
}

/// `schema.name`, or `database.schema.name` when several databases were
/// visited, for the long output of the checks that visit them.
pub fn qualified(database: &str, schema: &str, name: &str, many: bool) -> String {
    if many {
        format!("{database}.{schema}.{name}")
    } else {
        format!("{schema}.{name}")
    }
}
