//! Relations under maintenance. ALTER TABLE, VACUUM FULL, TRUNCATE, REINDEX,
//! CLUSTER and LOCK TABLE hold ACCESS EXCLUSIVE, and opening such a relation
//! (pg_relation_size, pgstattuple) queues behind it for as long as it is
//! held, hours for a VACUUM FULL. The statements that open relations skip
//! those another session holds or waits for; the check names them with
//! their holder and judges the rest.

use crate::session::{get, Session};
use pgvigil_kit::error::Error;
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::plural;

/// An `oid[]` SQL expression: the relations of this database another
/// session holds, or waits for, in ACCESS EXCLUSIVE mode. A waiter counts:
/// a new lock request queues behind it too. A macro, so that statements
/// stay constants (`concat!`).
#[macro_export]
macro_rules! locked_relations {
    () => {
        "(SELECT coalesce(array_agg(l.relation), '{}') FROM pg_locks l
           WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
             AND l.pid <> pg_backend_pid()
             AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))"
    };
}

// Who holds (or waits for) each skipped relation (itself, its TOAST table
// or one of its indexes), the holder first.
const HOLDERS: &str = "
SELECT r.oid, coalesce(n.nspname::text || '.' || c.relname::text, r.oid::text) AS relation,
       l.pid, l.granted, coalesce(a.state, '') AS state, coalesce(left(a.query, 60), '') AS query,
       greatest(coalesce(extract(epoch FROM now() - a.xact_start), 0), 0)::float8 AS seconds
  FROM unnest($1::oid[]) r(oid)
  LEFT JOIN pg_class c ON c.oid = r.oid
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_locks l ON l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
        AND (l.relation = r.oid OR l.relation = c.reltoastrelid
             OR l.relation IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = r.oid))
        AND l.pid <> pg_backend_pid()
        AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 ORDER BY r.oid, l.granted DESC NULLS LAST, seconds DESC";

/// A relation skipped because another session holds or awaits ACCESS
/// EXCLUSIVE on it; no holder when it let go before it could be named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Locked {
    pub database: String,
    /// schema.name
    pub relation: String,
    pub holder: Option<Holder>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holder {
    pub pid: i32,
    /// Holds the lock (true) or waits for it.
    pub granted: bool,
    pub query: String,
    /// How long its transaction has been open.
    pub seconds: f64,
}

/// The holder of each of `oids` in the session's database.
pub fn holders(session: &mut Session, database: &str, oids: &[u32]) -> Result<Vec<Locked>, Error> {
    if oids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = session.query_with(HOLDERS, &[(&oids, postgres::types::Type::OID_ARRAY)])?;
    let mut found: Vec<(u32, Locked)> = Vec::new();
    for row in &rows {
        let oid: u32 = get(row, "oid")?;
        if found.iter().any(|(o, _)| *o == oid) {
            continue;
        }
        let holder = match get::<Option<i32>>(row, "pid")? {
            Some(pid) => Some(Holder {
                pid,
                granted: get::<Option<bool>>(row, "granted")?.unwrap_or(false),
                query: get(row, "query")?,
                seconds: get(row, "seconds")?,
            }),
            None => None,
        };
        found.push((
            oid,
            Locked {
                database: database.to_string(),
                relation: get(row, "relation")?,
                holder,
            },
        ));
    }
    Ok(found.into_iter().map(|(_, l)| l).collect())
}

impl Locked {
    /// `public.big skipped: pid 4242 holds ACCESS EXCLUSIVE on it, its
    /// transaction open 5 min (VACUUM FULL big)`.
    pub fn describe(&self, with_database: bool) -> String {
        let name = if with_database {
            format!("{}.{}", self.database, self.relation)
        } else {
            self.relation.clone()
        };
        match &self.holder {
            Some(h) => format!(
                "{name} skipped: pid {} {} ACCESS EXCLUSIVE on it, its transaction open {} ({})",
                h.pid,
                if h.granted { "holds" } else { "waits for" },
                pretty_duration(h.seconds),
                pgvigil_kit::output::one_line(&h.query)
            ),
            None => format!("{name} skipped: locked by another session when read"),
        }
    }
}

/// `; 1 relation skipped (locked by another session)`, or "".
pub fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        return String::new();
    }
    format!(
        "; {skipped} relation{} skipped (locked by another session)",
        plural(skipped as i64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_relation_names_its_holder() {
        let locked = Locked {
            database: "shop".into(),
            relation: "public.big".into(),
            holder: Some(Holder {
                pid: 4242,
                granted: true,
                query: "VACUUM FULL\n big".into(),
                seconds: 300.0,
            }),
        };
        assert_eq!(
            locked.describe(false),
            "public.big skipped: pid 4242 holds ACCESS EXCLUSIVE on it, its transaction open 5 min 0 s (VACUUM FULL big)"
        );
        let gone = Locked {
            holder: None,
            ..locked
        };
        assert_eq!(
            gone.describe(true),
            "shop.public.big skipped: locked by another session when read"
        );
        assert_eq!(
            skipped_note(2),
            "; 2 relations skipped (locked by another session)"
        );
        assert_eq!(skipped_note(0), "");
    }
}
