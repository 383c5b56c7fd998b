//! check_pg_pgbouncer: PgBouncer's pools, from its admin console: clients
//! waiting for a server connection and for how long, server connections in
//! use against pool_size, and all clients against max_client_conn.

use std::collections::BTreeMap;

use crate::check::{Check, Context, Judging};
use crate::session::Session;
use crate::session::TextRow;
use pgvigil_kit::judge::Findings;
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Pgbouncer;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// What one run reads from the console: the application's pools, and the
/// client connections against max_client_conn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub pools: Vec<Pool>,
    pub clients: f64,
    pub max_clients: f64,
}

/// One pool: a database and user pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    pub name: String,
    pub active: f64,
    pub waiting: f64,
    pub servers: f64,
    pub pool_size: Option<f64>,
    /// The longest a client has waited, in seconds.
    pub maxwait: f64,
}

impl Check for Pgbouncer {
    const UNITS: UnitSpec = UnitSpec::of(
        &[Unit::Count, Unit::Seconds, Unit::Percent],
        Some(Unit::Count),
    );
    const HINT: &'static str = "clients wait because every server connection of the pool is busy: look at the long transactions behind it (check_pg_long_running), raise pool_size (or reserve_pool) if the server has room, or use transaction pooling; SHOW POOLS and SHOW CLIENTS on the console show who waits";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to each pool: a count to its clients waiting for a server
  connection (cl_waiting), a duration to its longest wait (maxwait); a
  percentage to all clients against max_client_conn.
  Default: {defaults}.
  The check connects to the console database pgbouncer, whatever -d says, as a
  role listed in stats_users.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> =
        Some(("5,10s,80%", "20,1min,95%"));
    const CONSOLE: Option<&'static str> = Some("pgbouncer");
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, _ctx: &Context) -> Result<Self::Measured, Error> {
        measure(db)
    }

    /// Each pool's clients waiting (a count) and longest wait (a duration),
    /// and all clients against max_client_conn (a percentage), against
    /// `-w`/`-c`; the pools in trouble first.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let t = judging.thresholds;
        let (measured, clients, max_clients) = (&m.pools, m.clients, m.max_clients);
        let clients_pct = if max_clients > 0.0 {
            clients * 100.0 / max_clients
        } else {
            100.0
        };
        let judged: Vec<Status> = measured
            .iter()
            .map(|p| t.status(&[(Unit::Count, p.waiting), (Unit::Seconds, p.maxwait)]))
            .collect();
        let status = judged
            .iter()
            .copied()
            .fold(t.status(&[(Unit::Percent, clients_pct)]), Status::worst);

        let describe = |p: &Pool| {
            let size = p.pool_size.map_or(String::new(), |s| format!(" of {s}"));
            format!(
                "{}: {} waiting (longest {}), {} active; {}{size} server connections",
                p.name,
                p.waiting,
                pretty_duration(p.maxwait),
                p.active,
                p.servers
            )
        };
        let mut pools = Findings::new();
        pools.extend(measured.iter().zip(&judged).map(|(p, s)| (*s, describe(p))));
        let alerts = pools.alerts();
        let waiting = measured.iter().map(|p| p.waiting).fold(0.0, |a, b| a + b);
        let longest = measured.iter().map(|p| p.maxwait).fold(0.0, f64::max);
        let totals = format!(
            "{clients} of {max_clients} client connections ({})",
            percent_text(clients_pct)
        );
        let summary = if alerts.is_empty() {
            format!(
                "{} pool{}, {waiting} clients waiting (longest {}); {totals}",
                measured.len(),
                plural(measured.len() as i64),
                pretty_duration(longest)
            )
        } else {
            format!("{}; {totals}", alerts.join("; "))
        };
        let details = measured
            .iter()
            .zip(&judged)
            .map(|(p, s)| format!("{s} {}", describe(p)));
        let mut perfdata = vec![
            PerfData::new("clients", clients, Unit::Count)
                .min(0.0)
                .max(max_clients),
            PerfData::new("clients_pct", percent(clients_pct), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            PerfData::new("waiting", waiting, Unit::Count).min(0.0),
            PerfData::new("maxwait", longest, Unit::Seconds).min(0.0),
        ];
        for p in measured {
            perfdata.push(
                PerfData::new(format!("{} waiting", p.name), p.waiting, Unit::Count)
                    .thresholds(t)
                    .min(0.0),
            );
            perfdata.push(
                PerfData::new(format!("{} maxwait", p.name), p.maxwait, Unit::Seconds)
                    .thresholds(t)
                    .min(0.0),
            );
            let mut servers =
                PerfData::new(format!("{} servers", p.name), p.servers, Unit::Count).min(0.0);
            if let Some(size) = p.pool_size {
                servers = servers.max(size);
            }
            perfdata.push(servers);
        }
        CheckResult::new(status, summary)
            .perf(perfdata)
            .details(details)
    }
}

/// The console's answers one run reads.
#[derive(Debug, Clone, Default)]
pub struct Console {
    pub pools: Vec<TextRow>,
    pub databases: Vec<TextRow>,
    pub config: Vec<TextRow>,
    pub lists: Vec<TextRow>,
}

fn measure(db: &mut Session) -> Result<Measured, Error> {
    // The console answers one SHOW at a time.
    let console = Console {
        pools: db.simple_query("SHOW POOLS")?,
        databases: db.simple_query("SHOW DATABASES")?,
        config: db.simple_query("SHOW CONFIG")?,
        lists: db.simple_query("SHOW LISTS")?,
    };
    read_console(&console)
}

/// The pools and client counts in the console's rows; a missing column or
/// a value that is not a number is an UNKNOWN naming it.
pub fn read_console(console: &Console) -> Result<Measured, Error> {
    let Console {
        pools,
        databases,
        config,
        lists,
    } = console;
    let pool_sizes: BTreeMap<String, f64> = databases
        .iter()
        .map(|row| Ok((text(row, "name")?, row.number("pool_size")?)))
        .collect::<Result<_, Error>>()?;
    let mut measured = Vec::new();
    for row in pools {
        let database = text(row, "database")?;
        // The console itself is a pool; it is not the application's.
        if database == "pgbouncer" {
            continue;
        }
        let maxwait =
            row.number("maxwait")? + row.number("maxwait_us").unwrap_or(0.0) / 1_000_000.0;
        measured.push(Pool {
            name: format!("{database}/{}", text(row, "user")?),
            active: row.number("cl_active")?,
            waiting: row.number("cl_waiting")?,
            servers: row.number("sv_active")?
                + row.number("sv_used")?
                + row.number("sv_tested")?
                + row.number("sv_login")?
                + row.number("sv_idle")?,
            pool_size: pool_sizes.get(&database).copied(),
            maxwait,
        });
    }
    let setting = |key: &str| -> Result<f64, Error> {
        config
            .iter()
            .find(|r| r.text("key").ok().flatten() == Some(key))
            .ok_or_else(|| Error::Query(format!("SHOW CONFIG has no {key}")))?
            .number("value")
    };
    let max_clients = setting("max_client_conn")?;
    let clients = lists
        .iter()
        .find(|r| r.text("list").ok().flatten() == Some("used_clients"))
        .ok_or_else(|| Error::Query("SHOW LISTS has no used_clients".into()))?
        .number("items")?;
    Ok(Measured {
        pools: measured,
        clients,
        max_clients,
    })
}

fn text(row: &TextRow, column: &str) -> Result<String, Error> {
    Ok(row.text(column)?.unwrap_or_default().to_string())
}

fn percent(value: f64) -> f64 {
    pgvigil_kit::units::round_to(value, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn pool(name: &str, waiting: f64, maxwait: f64) -> Pool {
        Pool {
            name: name.into(),
            active: 3.0,
            waiting,
            servers: 2.0,
            pool_size: Some(20.0),
            maxwait,
        }
    }

    fn measured(pools: Vec<Pool>, clients: f64) -> Measured {
        Measured {
            pools,
            clients,
            max_clients: 100.0,
        }
    }

    #[test]
    fn default_thresholds_per_pool_and_for_all_clients() {
        let t = thresholds::<Pgbouncer>(None, None);
        let at = |waiting: f64, maxwait: f64, clients: f64| {
            judge::<Pgbouncer>(
                &measured(vec![pool("app/app", waiting, maxwait)], clients),
                &options(&[]),
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(5.0, 10.0, 80.0), Status::Ok);
        assert_eq!(at(6.0, 0.0, 0.0), Status::Warning);
        assert_eq!(at(0.0, 10.5, 0.0), Status::Warning);
        assert_eq!(at(0.0, 0.0, 81.0), Status::Warning);
        assert_eq!(at(21.0, 0.0, 0.0), Status::Critical);
        assert_eq!(at(0.0, 61.0, 0.0), Status::Critical);
        assert_eq!(at(0.0, 0.0, 96.0), Status::Critical);
    }

    #[test]
    fn the_pools_in_trouble_lead_the_line() {
        let t = thresholds::<Pgbouncer>(None, None);
        let m = measured(
            vec![
                pool("a/app", 0.0, 0.0),
                pool("b/app", 7.0, 2.0),
                pool("c/app", 30.0, 90.5),
            ],
            40.0,
        );
        let r = reported::<Pgbouncer>(judge::<Pgbouncer>(&m, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "c/app: 30 waiting (longest 1 min 31 s), 3 active; 2 of 20 server connections; b/app: 7 waiting (longest 2 s), 3 active; 2 of 20 server connections; 40 of 100 client connections (40%)"
        );
        assert_eq!(r.details.len(), 3);
        assert!(r.details[0].starts_with("OK a/app: 0 waiting"));
        assert!(r
            .hint
            .unwrap()
            .starts_with("clients wait because every server connection"));
    }

    #[test]
    fn quiet_pools_and_no_pool() {
        let t = thresholds::<Pgbouncer>(None, None);
        let r = judge::<Pgbouncer>(
            &measured(vec![pool("a/app", 1.0, 0.25)], 3.0),
            &options(&[]),
            &t,
            0,
        );
        assert_eq!(
            r.summary,
            "1 pool, 1 clients waiting (longest 250 ms); 3 of 100 client connections (3%)"
        );
        assert_eq!(
            perf(&r)[..4],
            [
                "clients=3;;;0;100",
                "clients_pct=3%;80;95;0;100",
                "waiting=1;;;0",
                "maxwait=0.25s;;;0"
            ]
        );
        let none = Measured {
            max_clients: 0.0,
            ..Measured::default()
        };
        // A console that allows no client at all is full.
        assert_eq!(
            judge::<Pgbouncer>(&none, &options(&[]), &t, 0).status,
            Status::Critical
        );
    }
}
