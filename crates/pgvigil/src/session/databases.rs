//! `--all-databases`: table and index statistics live per database, so a
//! check that reads them visits each database that accepts connections, a
//! few at a time (`--jobs`), all inside the one `-t` budget.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use regex::Regex;

use crate::conninfo::ConnSettings;
use crate::session::{get, Session};
use pgvigil_kit::error::Error;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Databases")]
pub struct DatabaseArgs {
    /// Check every database that accepts connections (templates excluded) [default: only the -d database]
    #[arg(long)]
    pub all_databases: bool,
    /// With --all-databases: how many databases to look into at once, each over a session of its own that closes when done; the check's first session stays open besides, so at most N+1 sessions at once
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=32), requires = "all_databases")]
    pub jobs: u16,
    /// With --all-databases: only databases whose name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, requires = "all_databases")]
    pub include_db: Option<Regex>,
    /// With --all-databases: skip databases whose name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, requires = "all_databases")]
    pub exclude_db: Option<Regex>,
}

/// A regular expression option, refused with a one-line reason when invalid.
pub fn parse_regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| pgvigil_kit::output::one_line(&e.to_string()))
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
    /// The same visit with each database's result turned into another.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Visit<U> {
        Visit {
            checked: self.checked.into_iter().map(|(n, t)| (n, f(t))).collect(),
            unreachable: self.unreachable,
        }
    }

    /// The checked databases' results, for a check that pools them.
    pub fn results(&self) -> impl Iterator<Item = (&str, &T)> {
        self.checked.iter().map(|(n, t)| (n.as_str(), t))
    }
}

const DATABASES: &str = "
SELECT datname::text AS datname FROM pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY datname";

/// How long a visit waits for a connection slot the server says is taken:
/// the backend of a session just closed here can outlive its close by a few
/// milliseconds, and a role's CONNECTION LIMIT counts it until it is gone.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// What became of one database of a visit: what the check (or a failed
/// connection other than a refusal) gave, or why it could not be reached.
enum Outcome<T> {
    Checked(Result<T, Error>),
    Unreachable(String),
}

/// Runs `each` in the database of the session, or with `--all-databases` in
/// every database that accepts connections and passes the filters: the
/// session's own database over the session, the others over up to `--jobs`
/// sessions at once, each closed before its worker opens the next. The
/// result is in database-name order and the same as one at a time: the
/// first failure in that order is the error.
pub fn visit<T: Send>(
    args: &DatabaseArgs,
    db: &mut Session,
    conn: &ConnSettings,
    timeout: std::time::Duration,
    each: impl Fn(&str, &mut Session) -> Result<T, Error> + Sync,
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
    let outcomes: Vec<Mutex<Option<Outcome<T>>>> = names.iter().map(|_| Mutex::new(None)).collect();
    if let Some(own) = names.iter().position(|n| *n == conn.dbname) {
        let found = each(&names[own], db)?;
        *outcomes[own].lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Outcome::Checked(Ok(found)));
    }
    let others: Vec<usize> = (0..names.len())
        .filter(|&i| names[i] != conn.dbname)
        .collect();
    let next = AtomicUsize::new(0);
    // A failure ends the visit as it would one at a time: no new database
    // is started once one has failed.
    let failed = AtomicBool::new(false);
    let crowded = AtomicBool::new(false);
    let worker = || loop {
        if failed.load(Ordering::SeqCst) {
            return;
        }
        let Some(&i) = others.get(next.fetch_add(1, Ordering::SeqCst)) else {
            return;
        };
        let target = conn.for_database(&names[i]);
        // Once a wait has run its course the slots are taken for good (other
        // sessions of the role): the rest are not waited for.
        let patience = if crowded.load(Ordering::SeqCst) {
            std::time::Duration::ZERO
        } else {
            PATIENCE
        };
        let started = std::time::Instant::now();
        let connected = Session::connect_patiently(&target, timeout, patience);
        if connected.is_err() && started.elapsed() >= PATIENCE {
            crowded.store(true, Ordering::SeqCst);
        }
        let outcome = match connected {
            Ok(mut session) => {
                let result = each(&names[i], &mut session);
                drop(session);
                Outcome::Checked(result)
            }
            Err(Error::Connect { reason, .. }) => Outcome::Unreachable(reason),
            Err(e) => Outcome::Checked(Err(e)),
        };
        if matches!(outcome, Outcome::Checked(Err(_))) {
            failed.store(true, Ordering::SeqCst);
        }
        *outcomes[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    };
    let jobs = usize::from(args.jobs.max(1)).min(others.len());
    if jobs <= 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(worker);
            }
        });
    }
    for (name, outcome) in names.into_iter().zip(outcomes) {
        match outcome.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Outcome::Checked(result)) => visit.checked.push((name, result?)),
            Some(Outcome::Unreachable(reason)) => visit.unreachable.push((name, reason)),
            // Not started: an earlier database failed, and that is the error.
            None => {}
        }
    }
    Ok(visit)
}
