//! One read-only connection to the monitored server, and the mapping of the
//! driver's errors onto what an operator needs to read.

mod auth_probe;
mod connect;
pub mod databases;
pub mod locked;
pub mod relations;

use std::error::Error as _;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::{FromSql, ToSql, Type};
use postgres::{Client, Row};

use crate::conninfo::ConnSettings;
use pgvigil_kit::error::Error;
use pgvigil_kit::timeout::{set_phase, Phase};

pub struct Session {
    client: Client,
    user: String,
    /// How long a statement waits for a lock another session holds.
    lock_timeout: Duration,
    started: Instant,
    connected_in: Duration,
    /// The server ended the session (FATAL, terminate, network error).
    lost: bool,
}

impl Session {
    /// Connects with the session pinned read-only, every statement bounded
    /// by `statement_timeout`, and every lock wait by a short `lock_timeout`
    /// (see `lock_timeout`), all set in the startup packet: no extra round
    /// trip.
    pub fn connect(settings: &ConnSettings, statement_timeout: Duration) -> Result<Session, Error> {
        Session::open(settings, Some(statement_timeout), Duration::ZERO)
    }

    /// Like `connect`, but a server at its connection limit (for the role,
    /// the database or the server: SQLSTATE 53300) is asked again for up to
    /// `patience`: a session the check itself just closed may not have left
    /// the server yet, and would otherwise make a database look unreachable.
    pub fn connect_patiently(
        settings: &ConnSettings,
        statement_timeout: Duration,
        patience: Duration,
    ) -> Result<Session, Error> {
        Session::open(settings, Some(statement_timeout), patience)
    }

    /// Connects to an admin console such as PgBouncer's, which refuses the
    /// `options` startup parameter and speaks only the simple protocol
    /// (`simple_query`). The `-t` watchdog still bounds the run.
    pub fn connect_console(settings: &ConnSettings) -> Result<Session, Error> {
        Session::open(settings, None, Duration::ZERO)
    }

    fn open(
        settings: &ConnSettings,
        statement_timeout: Option<Duration>,
        patience: Duration,
    ) -> Result<Session, Error> {
        set_phase(Phase::Connecting);
        let started = Instant::now();
        let lock_wait = lock_timeout(statement_timeout.unwrap_or_default());
        let client = connect::first_fitting(settings, statement_timeout, lock_wait, patience)
            .map_err(|failure| match failure {
                connect::Failure::Refused(e) => e,
                connect::Failure::Hosts(reasons) => Error::Connect {
                    target: settings.target(),
                    reason: connect::combine(settings, reasons),
                },
                // PgBouncer's answer to a role it lists in neither stats_users
                // nor admin_users: a missing grant, not a server that is down.
                connect::Failure::NotAllowed => Error::Privilege(format!(
                    "the console refused role \"{}\": list it in PgBouncer's stats_users",
                    settings.user
                )),
            })?;
        Ok(Session {
            client,
            user: settings.user.clone(),
            lock_timeout: lock_wait,
            started,
            connected_in: started.elapsed(),
            lost: false,
        })
    }

    /// How long connecting took: TCP or socket, TLS, authentication, backend start.
    pub fn connected_in(&self) -> Duration {
        self.connected_in
    }

    /// True once the server has ended the session (shutdown, terminate).
    pub fn is_closed(&self) -> bool {
        self.lost || self.client.is_closed()
    }

    /// Maps a failed statement's error, noting when it ended the session.
    /// The server cancelling the statement at its statement_timeout (the
    /// run's -t) ends the run as the watchdog would: same line, -t's state.
    fn failed(&mut self, error: &postgres::Error) -> Error {
        if is_statement_timeout(error) {
            pgvigil_kit::timeout::expire();
        }
        let fatal = match error.as_db_error() {
            Some(db) => matches!(db.severity(), "FATAL" | "PANIC"),
            None => std::iter::successors(error.source(), |e| (*e).source())
                .any(|e| e.is::<std::io::Error>()),
        };
        self.lost |= fatal || error.is_closed();
        query_error(error, &self.user)
    }

    /// Ends the plugin's own session without waiting for the server to tear
    /// the backend down, which the driver's close does (2 to 3 ms, a third
    /// of a whole run). The socket closes as the process exits right after;
    /// outside a transaction the server takes that as a normal end and logs
    /// nothing more than it does for a Terminate message.
    pub fn leave(self) {
        std::mem::forget(self);
    }

    /// Ends a session the run is done with while the run goes on: the
    /// Terminate goes out and the wait for the backend to exit happens on
    /// a thread of its own, so the next database's session need not wait.
    pub fn close_in_background(self) {
        std::thread::spawn(move || drop(self));
    }

    /// Time since connecting began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs one statement in a single round trip (unnamed statement, no
    /// parameters) and returns its typed rows.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Row>, Error> {
        self.query_with(sql, &[])
    }

    /// Like `query`, with typed parameters for values that come from options.
    pub fn query_with(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        set_phase(Phase::Querying);
        let mut retried = false;
        loop {
            match self.client.query_typed(sql, params) {
                Ok(rows) => return Ok(rows),
                // A lock taken between the statement's look at pg_locks and
                // its read: once more, the lock is then in pg_locks and the
                // statements that guard their reads skip that relation.
                Err(e) if is_lock_timeout(&e) && !retried => retried = true,
                Err(e) if is_lock_timeout(&e) => {
                    let reason = e
                        .as_db_error()
                        .map_or(String::new(), |d| d.message().to_string());
                    return Err(Error::Query(format!(
                        "another session holds a lock on what this check reads (waited lock_timeout, {} ms, twice): {reason}; see check_pg_locks",
                        self.lock_timeout.as_millis()
                    )));
                }
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }

    /// Runs a command through the simple query protocol and returns its rows
    /// as text by column name: what an admin console (PgBouncer's SHOW)
    /// answers. Checks of the server itself use `query`.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<TextRow>, Error> {
        set_phase(Phase::Querying);
        let messages = match self.client.simple_query(sql) {
            Ok(messages) => messages,
            Err(e) => return Err(self.failed(&e)),
        };
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => Some(TextRow {
                    values: row
                        .columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.name().to_string(), row.get(i).map(String::from)))
                        .collect(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Like `query`, for statements that return exactly one row.
    pub fn query_one(&mut self, sql: &str) -> Result<Row, Error> {
        let mut rows = self.query(sql)?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(Error::Query(format!("expected one row, got {n}"))),
        }
    }
}

/// One row of a simple-protocol answer: every value as text, or NULL.
#[derive(Debug, Clone)]
pub struct TextRow {
    values: Vec<(String, Option<String>)>,
}

impl TextRow {
    /// A row from column names and texts (None for NULL), as the console
    /// sends it.
    pub fn new(values: Vec<(String, Option<String>)>) -> TextRow {
        TextRow { values }
    }

    /// The column's text; a missing column is an UNKNOWN naming it.
    pub fn text(&self, column: &str) -> Result<Option<&str>, Error> {
        self.values
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, v)| v.as_deref())
            .ok_or_else(|| Error::Query(format!("no column {column} in the answer")))
    }

    /// The column as a finite number; NULL, `inf`, `NaN` or text that is
    /// not a number is an UNKNOWN.
    pub fn number(&self, column: &str) -> Result<f64, Error> {
        let text = self.text(column)?.unwrap_or_default();
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Error::Query(format!("column {column} is not a number: '{text}'")))
    }
}

/// Reads a column, turning a type surprise into an UNKNOWN instead of a panic.
pub fn get<'a, T: Column<'a>>(row: &'a Row, column: &str) -> Result<T, Error> {
    T::read(row, column)
}

fn try_get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, Error> {
    row.try_get(column)
        .map_err(|e| Error::Query(format!("column {column}: {}", chain(&e))))
}

/// What a column may be read as. Text is decoded lossily: names and query
/// texts made in a SQL_ASCII database may hold any bytes, and one such name
/// must never turn a whole check UNKNOWN.
pub trait Column<'a>: Sized {
    fn read(row: &'a Row, column: &str) -> Result<Self, Error>;
}

/// Text of any text type (text, name, varchar, char), bytes not UTF-8 as U+FFFD.
struct Lossy(String);

impl<'a> FromSql<'a> for Lossy {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Lossy(String::from_utf8_lossy(raw).into_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        <String as FromSql>::accepts(ty)
    }
}

impl<'a> Column<'a> for String {
    fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
        try_get::<Lossy>(row, column).map(|t| t.0)
    }
}

impl<'a> Column<'a> for Option<String> {
    fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
        try_get::<Option<Lossy>>(row, column).map(|t| t.map(|t| t.0))
    }
}

impl<'a> Column<'a> for Vec<String> {
    fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
        try_get::<Vec<Lossy>>(row, column).map(|v| v.into_iter().map(|t| t.0).collect())
    }
}

impl<'a> Column<'a> for Option<Vec<String>> {
    fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
        try_get::<Option<Vec<Lossy>>>(row, column)
            .map(|v| v.map(|v| v.into_iter().map(|t| t.0).collect()))
    }
}

/// Every other type as the driver reads it.
macro_rules! column_as_driver_reads_it {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> Column<'a> for $t {
            fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
                try_get(row, column)
            }
        }
        impl<'a> Column<'a> for Option<$t> {
            fn read(row: &'a Row, column: &str) -> Result<Self, Error> {
                try_get(row, column)
            }
        }
    )*};
}

column_as_driver_reads_it!(
    bool,
    i16,
    i32,
    i64,
    u32,
    f32,
    f64,
    &'a [u8],
    Vec<i32>,
    Vec<u32>,
    Vec<i64>
);

/// The driver's error and its causes on one line, without repeats.
pub(crate) fn chain(error: &postgres::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The lock wait a session allows: a tenth of its statement's time, between
/// 100 ms and 1 s. A catalog read that queues behind ALTER TABLE or VACUUM
/// FULL gives up well before `-t`, so the check can judge the rest.
pub fn lock_timeout(statement_timeout: Duration) -> Duration {
    (statement_timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// SQLSTATE 57014 for statement_timeout (not a cancel request).
fn is_statement_timeout(error: &postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.code() == &SqlState::QUERY_CANCELED && db.message().contains("statement timeout")
    })
}

fn is_lock_timeout(error: &postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.code() == &SqlState::LOCK_NOT_AVAILABLE)
}

fn query_error(error: &postgres::Error, user: &str) -> Error {
    match error.as_db_error() {
        Some(db) if db.code() == &SqlState::INSUFFICIENT_PRIVILEGE => Error::Privilege(format!(
            "{}: role \"{user}\" needs the pg_monitor role (GRANT pg_monitor TO \"{user}\")",
            db.message()
        )),
        Some(db) => Error::Query(db.message().to_string()),
        None if error.is_closed() => Error::Query("the server closed the connection".into()),
        None => Error::Query(chain(error)),
    }
}
