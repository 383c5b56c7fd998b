//! `--all-databases`: table and index statistics live per database, so a
//! check that reads them visits each database that accepts connections, one
//! session at a time, all inside the one `-t` budget.

use regex::Regex;

use crate::conninfo::ConnSettings;
use crate::error::Error;
use crate::session::{get, Session};
use crate::status::Status;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Databases")]
pub struct DatabaseArgs {
    /// Check every database that accepts connections (templates excluded), one connection at a time [default: only the -d database]
    #[arg(long)]
    pub all_databases: bool,
    /// With --all-databases: only databases whose name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, requires = "all_databases")]
    pub include_db: Option<Regex>,
    /// With --all-databases: skip databases whose name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, requires = "all_databases")]
    pub exclude_db: Option<Regex>,
}

/// A regular expression option, refused with a one-line reason when invalid.
pub fn parse_regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| crate::output::one_line(&e.to_string()))
}

/// What visiting the databases found: each checked database's result, and
/// those that could not be reached with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit<T> {
    pub checked: Vec<(String, T)>,
    pub unreachable: Vec<(String, String)>,
}

impl<T> Default for Visit<T> {
    fn default() -> Visit<T> {
        Visit {
            checked: Vec::new(),
            unreachable: Vec::new(),
        }
    }
}

impl<T> Visit<T> {
    /// A database that could not be looked into makes the result at least
    /// WARNING: a silent skip would pass for a healthy database.
    pub fn floor(&self, status: Status) -> Status {
        if self.unreachable.is_empty() {
            status
        } else {
            status.worst(Status::Warning)
        }
    }

    /// `; 1 database unreachable (db3)` for the summary, empty when none.
    pub fn unreachable_note(&self) -> String {
        if self.unreachable.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = self.unreachable.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "; {} database{} unreachable ({})",
            names.len(),
            crate::words::plural(names.len() as i64),
            names.join(", ")
        )
    }

    /// One long-output line per unreachable database, with the reason.
    pub fn unreachable_details(&self) -> Vec<String> {
        self.unreachable
            .iter()
            .map(|(name, reason)| format!("database {name} not checked: {reason}"))
            .collect()
    }

    /// The checked databases' results, for a check that pools them.
    pub fn results(&self) -> impl Iterator<Item = (&str, &T)> {
        self.checked.iter().map(|(n, t)| (n.as_str(), t))
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

const DATABASES: &str = "
SELECT datname::text AS datname FROM pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY datname";

/// Runs `each` in the database of the session, or with `--all-databases` in
/// every database that accepts connections and passes the filters: the
/// session's own database over the session, each other over a new one that
/// is closed before the next opens.
pub fn visit<T>(
    args: &DatabaseArgs,
    db: &mut Session,
    conn: &ConnSettings,
    timeout: std::time::Duration,
    mut each: impl FnMut(&str, &mut Session) -> Result<T, Error>,
) -> Result<Visit<T>, Error> {
    let mut visit = Visit {
        checked: Vec::new(),
        unreachable: Vec::new(),
    };
    if !args.all_databases {
        let result = each(&conn.dbname, db)?;
        visit.checked.push((conn.dbname.clone(), result));
        return Ok(visit);
    }
    let mut names = Vec::new();
    for row in db.query(DATABASES)? {
        let name: String = get(&row, "datname")?;
        let included = args.include_db.as_ref().is_none_or(|r| r.is_match(&name));
        let excluded = args.exclude_db.as_ref().is_some_and(|r| r.is_match(&name));
        if included && !excluded {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(Error::Usage(
            "no database that accepts connections matches --include-db/--exclude-db".into(),
        ));
    }
    for name in names {
        if name == conn.dbname {
            let result = each(&name, db)?;
            visit.checked.push((name, result));
            continue;
        }
        match Session::connect(&conn.for_database(&name), timeout) {
            Ok(mut other) => {
                let result = each(&name, &mut other);
                other.close_in_background();
                visit.checked.push((name, result?));
            }
            Err(Error::Connect { reason, .. }) => visit.unreachable.push((name, reason)),
            Err(e) => return Err(e),
        }
    }
    Ok(visit)
}
