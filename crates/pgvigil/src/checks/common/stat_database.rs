//! What the rate checks share: pg_stat_database read once per run, every
//! database's counters kept in the state store, and the interval since the
//! previous run worked out.

use crate::check::Context;
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::rates::{self, Interval, Rates};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::{CheckResult, Error, PerfData, Status};

// The row without a database name counts shared catalogs (checksum failures
// among them).
const SQL: &str = "
SELECT extract(epoch FROM now())::float8 AS now, pg_postmaster_start_time()::text AS started,
       current_setting('data_checksums') = 'on' AS data_checksums,
       pg_is_in_recovery() AS in_recovery,
       coalesce(d.datname::text, '(shared catalogs)') AS datname,
       coalesce(d.stats_reset::text, '') AS stats_reset,
       d.blks_hit::float8 AS blks_hit, d.blks_read::float8 AS blks_read,
       d.deadlocks::float8 AS deadlocks,
       d.xact_commit::float8 AS xact_commit, d.xact_rollback::float8 AS xact_rollback,
       d.temp_files::float8 AS temp_files, d.temp_bytes::float8 AS temp_bytes,
       coalesce(d.checksum_failures, 0)::float8 AS checksum_failures,
       to_char(d.checksum_last_failure, 'YYYY-MM-DD HH24:MI:SS TZ') AS checksum_last_failure
FROM pg_stat_database d ORDER BY d.datname NULLS LAST";

/// One database's row.
pub struct Database {
    pub name: String,
    pub checksum_last_failure: Option<String>,
    values: Vec<(&'static str, f64)>,
}

impl Database {
    pub fn value(&self, column: &str) -> f64 {
        self.values
            .iter()
            .find(|(c, _)| *c == column)
            .map_or(0.0, |(_, v)| *v)
    }
}

pub struct Sample {
    pub data_checksums: bool,
    pub in_recovery: bool,
    pub databases: Vec<Database>,
    pub rates: Rates,
}

impl Sample {
    /// Growth of `column` in database `name` over the interval.
    pub fn delta(&self, name: &str, column: &str) -> Option<f64> {
        self.rates.delta(&counter(name, column))
    }

    /// The growth of `column` summed over the databases that had a previous value.
    pub fn total_delta(&self, column: &str) -> f64 {
        self.databases
            .iter()
            .filter_map(|d| self.delta(&d.name, column))
            .sum()
    }

    /// The counter summed over every database, since each one's last reset.
    pub fn total(&self, column: &str) -> f64 {
        self.databases.iter().map(|d| d.value(column)).sum()
    }

    /// The raw counters as perfdata, by label and column, for graphs that
    /// derive their own rates.
    pub fn counters(&self, labels: &[(&str, &str)]) -> Vec<PerfData> {
        labels
            .iter()
            .map(|(label, column)| PerfData::counter(*label, self.total(column)))
            .collect()
    }

    /// On a run with nothing to compare with, what every rate check says:
    /// OK, why, and the raw counters.
    pub fn baseline(&self, counters: &[PerfData]) -> Option<CheckResult> {
        match &self.rates.interval {
            Interval::Baseline { why } => {
                Some(CheckResult::new(Status::Ok, why.clone()).perf(counters.to_vec()))
            }
            _ => None,
        }
    }
}

fn counter(database: &str, column: &str) -> String {
    format!("{database}/{column}")
}

/// Reads pg_stat_database, keeps the `columns` this check counts, and
/// compares them with the previous run's.
pub fn sample(
    db: &mut Session,
    ctx: &Context,
    state: &StateArgs,
    columns: &[&'static str],
) -> Result<Sample, Error> {
    let rows = db.query(SQL)?;
    from_rows(&rows, ctx, state, columns)
}

/// Like `sample`, from the rows of a statement of the check's own that
/// gives the same columns as `SQL` and its counters (pg_stat_database
/// joined to another per-database view).
pub fn from_rows(
    rows: &[postgres::Row],
    ctx: &Context,
    state: &StateArgs,
    columns: &[&'static str],
) -> Result<Sample, Error> {
    let first = rows
        .first()
        .ok_or_else(|| Error::Query("pg_stat_database is empty".into()))?;
    let mut snapshot = Snapshot {
        taken_at: get(first, "now")?,
        ..Snapshot::default()
    };
    snapshot
        .markers
        .insert("postmaster".into(), get(first, "started")?);
    let data_checksums: bool = get(first, "data_checksums")?;
    let in_recovery: bool = get(first, "in_recovery")?;
    let mut databases = Vec::new();
    for row in rows {
        let name: String = get(row, "datname")?;
        let mut values = Vec::new();
        for column in columns {
            let value: f64 = get(row, column)?;
            snapshot.counters.insert(counter(&name, column), value);
            values.push((*column, value));
        }
        snapshot
            .markers
            .insert(format!("database {name}"), get(row, "stats_reset")?);
        databases.push(Database {
            name,
            checksum_last_failure: get(row, "checksum_last_failure")?,
            values,
        });
    }
    let store = ctx.state_store(state)?;
    let rates = rates::advance(&store, snapshot)?;
    Ok(Sample {
        data_checksums,
        in_recovery,
        databases,
        rates,
    })
}

/// Samples as a run would make them, for the judges' unit tests.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use pgvigil_kit::rates::Interval;

    /// A database's counters: column, then the value (or the previous run's
    /// value and this run's).
    type Now<'a> = (&'a str, &'a [(&'static str, f64)]);
    type Change<'a> = (&'a str, &'a [(&'static str, f64, f64)]);

    /// A first run: nothing to compare with.
    pub fn baseline(databases: &[Now]) -> Sample {
        let rows: Vec<_> = databases.iter().map(|(n, c)| (*n, c.to_vec())).collect();
        let (current, databases) = snapshot(&rows);
        Sample {
            data_checksums: true,
            in_recovery: true,
            databases,
            rates: Rates {
                current,
                interval: Interval::Baseline {
                    why: "first run, baseline saved".into(),
                },
            },
        }
    }

    /// A run `seconds` after the previous one.
    pub fn measured(seconds: f64, databases: &[Change]) -> Sample {
        let pick = |after: bool| -> Vec<_> {
            databases
                .iter()
                .map(|(n, cols)| {
                    let values = cols
                        .iter()
                        .map(|(c, b, a)| (*c, if after { *a } else { *b }))
                        .collect();
                    (*n, values)
                })
                .collect()
        };
        let (current, databases) = snapshot(&pick(true));
        let (previous, _) = snapshot(&pick(false));
        Sample {
            data_checksums: true,
            in_recovery: true,
            databases,
            rates: Rates {
                current,
                interval: Interval::Measured { seconds, previous },
            },
        }
    }

    fn snapshot(databases: &[(&str, Vec<(&'static str, f64)>)]) -> (Snapshot, Vec<Database>) {
        let mut snapshot = Snapshot::default();
        let mut rows = Vec::new();
        for (name, values) in databases {
            for (column, value) in values {
                snapshot.counters.insert(counter(name, column), *value);
            }
            rows.push(Database {
                name: name.to_string(),
                checksum_last_failure: None,
                values: values.clone(),
            });
        }
        (snapshot, rows)
    }
}
