//! What several checks read of the catalog besides their own statement, and
//! the privilege that decides whether what they see is whole.

use std::collections::BTreeMap;

use pgvigil_kit::error::Error;
use pgvigil_kit::{CheckResult, Status};

use crate::session::{get, Session};

/// Without pg_read_all_stats (part of pg_monitor) other roles' sessions show
/// up with their details nulled, which would make a check quietly wrong.
pub fn require_stats_visibility(sees_all: bool, user: &str) -> Result<(), Error> {
    if sees_all {
        Ok(())
    } else {
        Err(Error::Privilege(format!(
            "role \"{user}\" cannot see other roles' sessions: it needs the pg_monitor role (GRANT pg_monitor TO \"{user}\")"
        )))
    }
}

/// Database names by oid. Checks read them only for the long output: the main
/// statement then stays clear of catalog joins, which a new backend pays for.
pub fn database_names(db: &mut Session) -> Result<std::collections::BTreeMap<u32, String>, Error> {
    db.query("SELECT oid, datname::text AS datname FROM pg_database")?
        .iter()
        .map(|r| Ok((get(r, "oid")?, get(r, "datname")?)))
        .collect()
}

/// The closer look of the checks that count sessions: the database names,
/// read only where the long output lists them (an alert, or `-v`) and not
/// read already for a filter. Returns whether it read them.
pub fn name_databases(
    names: &mut BTreeMap<u32, String>,
    first: &CheckResult,
    verbose: u8,
    db: &mut Session,
) -> Result<bool, Error> {
    if !names.is_empty() || (verbose == 0 && first.status == Status::Ok) {
        return Ok(false);
    }
    *names = database_names(db)?;
    Ok(true)
}
