//! `pgvigil setup-check`: can this role do every check's full job on this
//! server? One run lists each gap with the SQL that closes it, instead of a
//! new user meeting each missing grant as one UNKNOWN at a time.

use std::path::Path;

use crate::conninfo::{ConnArgs, ConnSettings};
use crate::session::{get, Session};
use pgvigil_kit::error::Error;

#[derive(Debug, clap::Parser)]
#[command(
    name = "pgvigil setup-check",
    about = "Whether the monitoring role can do every check's full job on this server, with the SQL that fixes each gap. Exits 0 when all is in place, 1 otherwise, 3 when it cannot tell."
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
}

const ROLE: &str = "
SELECT current_user::text AS role, r.rolsuper AS superuser,
       current_setting('server_version_num')::int4 AS version,
       current_setting('server_version') AS release
FROM pg_roles r WHERE r.rolname = current_user";

// Membership (MEMBER) and use of the privileges (USAGE, which needs
// INHERIT) of the predefined roles some checks need; a role the server
// does not have (pg_read_all_data before 14) has no row.
const GRANTS: &str = "
SELECT r.rolname::text AS name, pg_has_role(current_user, r.oid, 'MEMBER') AS member,
       pg_has_role(current_user, r.oid, 'USAGE') AS usage
FROM pg_roles r
WHERE r.rolname IN ('pg_monitor', 'pg_read_all_data', 'pg_use_reserved_connections', 'pg_signal_backend')";

const SETTINGS: &str = "
SELECT name, setting FROM pg_settings
WHERE name IN ('track_counts', 'logging_collector', 'log_line_prefix',
               'reserved_connections', 'data_directory', 'log_directory')";

// What this database holds that a role may not read: sequences (their
// values) and tables (their pg_stats), and whether pgstattuple is here.
const DATABASE: &str = "
SELECT current_database()::text AS database,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND NOT pg_is_other_temp_schema(n.oid)
          -- has_sequence_privilege() raises on any other relation
          AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(c.oid, 'SELECT') END
       )::int8 AS hidden_sequences,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT pg_is_other_temp_schema(n.oid)
          AND NOT has_table_privilege(c.oid, 'SELECT'))::int8 AS hidden_tables,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple') AS pgstattuple,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgstattuple') AS pgstattuple_available";

/// What the server says of the role, as one run reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub role: String,
    pub superuser: bool,
    pub version: i32,
    pub release: String,
    pub database: String,
    /// Predefined role: (member, its privileges in use).
    pub grants: Vec<(String, bool, bool)>,
    pub settings: Vec<(String, String)>,
    pub hidden_sequences: i64,
    pub hidden_tables: i64,
    pub pgstattuple: bool,
    pub pgstattuple_available: bool,
    /// The log directory, as check_pg_log finds it (log_directory under
    /// data_directory), when the role may see those settings.
    pub log_dir: Option<String>,
    /// Whether this process can read the newest file there: None when the
    /// directory is not on this host.
    pub log_readable: Option<Result<String, String>>,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The checks it concerns.
    pub checks: &'static str,
    /// Whether it is in place.
    pub ok: bool,
    pub what: String,
    /// The SQL (or the step) that closes the gap.
    pub fix: Option<String>,
}

fn setting<'a>(f: &'a Facts, name: &str) -> Option<&'a str> {
    f.settings
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn grant(f: &Facts, name: &str) -> Option<(bool, bool)> {
    f.grants
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, m, u)| (*m, *u))
}

fn quoted(role: &str) -> String {
    format!("\"{}\"", role.replace('"', "\"\""))
}

/// Every finding, in place or not, from what the server said: one rule a
/// function, in the report's order.
pub fn judge(f: &Facts) -> Vec<Finding> {
    let role = quoted(&f.role);
    if f.superuser {
        return vec![finding(
            "every check",
            true,
            format!("{role} is a superuser: it may do everything, and far more than monitoring needs; a role with pg_monitor is the safer choice"),
            None,
        )];
    }
    let mut out = vec![
        monitor_role(f, &role),
        sequences(f, &role),
        bloat_statistics(f, &role),
    ];
    out.extend(reserved_connections(f, &role));
    out.push(signal_backend(f, &role));
    out.push(track_counts(f));
    out.push(logging_collector(f));
    out.push(log_prefix(f));
    out.extend(log_access(f, &role));
    out
}

/// A finding; the fix is kept only for what is not in place.
fn finding(checks: &'static str, ok: bool, what: String, fix: Option<String>) -> Finding {
    Finding {
        checks,
        ok,
        what,
        fix: if ok { None } else { fix },
    }
}

/// pg_monitor, and its privileges inherited.
fn monitor_role(f: &Facts, role: &str) -> Finding {
    let (member, usage) = grant(f, "pg_monitor").unwrap_or((false, false));
    finding(
        "every check",
        usage,
        match (member, usage) {
            (_, true) => "member of pg_monitor, its privileges inherited".into(),
            (true, false) => "member of pg_monitor but does not inherit its privileges (NOINHERIT): sessions, statistics and settings of other roles stay hidden".into(),
            _ => "not a member of pg_monitor: other roles' sessions, the statistics and pg_ls_waldir() stay hidden".into(),
        },
        Some(if member {
            format!("ALTER ROLE {role} INHERIT;")
        } else {
            format!("GRANT pg_monitor TO {role};")
        }),
    )
}

fn reads_all_data(f: &Facts) -> bool {
    grant(f, "pg_read_all_data").is_some_and(|(_, u)| u)
}

/// Every sequence's value readable, for check_pg_sequences.
fn sequences(f: &Facts, role: &str) -> Finding {
    let fix = if f.version >= 140000 {
        format!("GRANT pg_read_all_data TO {role};")
    } else {
        format!(
            "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};  -- and each other schema"
        )
    };
    finding(
        "check_pg_sequences",
        reads_all_data(f) || f.hidden_sequences == 0,
        if f.hidden_sequences == 0 {
            format!(
                "every sequence's value in database {} is readable",
                f.database
            )
        } else {
            format!(
                "{} sequence{} in database {} whose value the role may not read",
                f.hidden_sequences,
                if f.hidden_sequences == 1 { "" } else { "s" },
                f.database
            )
        },
        Some(fix),
    )
}

/// Every table's statistics readable, or pgstattuple, for check_pg_bloat.
fn bloat_statistics(f: &Facts, role: &str) -> Finding {
    let tables_fix = if f.version >= 140000 {
        format!("GRANT pg_read_all_data TO {role};")
    } else {
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};  -- and each other schema")
    };
    let tables = pgvigil_kit::words::count(f.hidden_tables as usize, "table");
    finding(
        "check_pg_bloat",
        f.hidden_tables == 0 || f.pgstattuple || reads_all_data(f),
        if f.hidden_tables == 0 {
            format!("pg_stats shows every table of database {}", f.database)
        } else if f.pgstattuple {
            format!(
                "{tables} whose statistics are hidden in database {}, measured with pgstattuple instead",
                f.database
            )
        } else {
            format!(
                "{tables} of database {} whose statistics (pg_stats) the role may not read, and no pgstattuple to measure them",
                f.database
            )
        },
        Some(if f.pgstattuple_available {
            format!(
                "CREATE EXTENSION pgstattuple;  -- in database {}, or: {tables_fix}",
                f.database
            )
        } else {
            tables_fix
        }),
    )
}

/// On 16+: a slot to connect with once max_connections is reached.
fn reserved_connections(f: &Facts, role: &str) -> Option<Finding> {
    if f.version < 160000 {
        return None;
    }
    let reserved = setting(f, "reserved_connections")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let may = grant(f, "pg_use_reserved_connections").is_some_and(|(_, u)| u);
    Some(finding(
        "check_pg_alive, check_pg_connections",
        may && reserved > 0,
        match (may, reserved) {
            (true, r) if r > 0 => format!("may use the {r} reserved connections when all others are taken"),
            (true, _) => "member of pg_use_reserved_connections, but reserved_connections is 0".into(),
            _ => "cannot connect once max_connections is reached: not a member of pg_use_reserved_connections".into(),
        },
        Some(if may {
            "ALTER SYSTEM SET reserved_connections = 3;  -- then restart".into()
        } else if reserved > 0 {
            format!("GRANT pg_use_reserved_connections TO {role};")
        } else {
            format!("GRANT pg_use_reserved_connections TO {role}; ALTER SYSTEM SET reserved_connections = 3;  -- then restart")
        }),
    ))
}

/// pg_signal_backend, for the event handler to act.
fn signal_backend(f: &Facts, role: &str) -> Finding {
    let signals = grant(f, "pg_signal_backend").is_some_and(|(_, u)| u);
    finding(
        "handle_pg_connections",
        signals,
        if signals {
            "may terminate other roles' idle sessions (pg_signal_backend)".into()
        } else {
            "may not terminate other roles' sessions: the handler can only report (pg_signal_backend)".into()
        },
        Some(format!("GRANT pg_signal_backend TO {role};")),
    )
}

fn on(f: &Facts, name: &str) -> bool {
    setting(f, name) == Some("on")
}

/// track_counts on, for the statistics several checks read.
fn track_counts(f: &Facts) -> Finding {
    finding(
        "check_pg_vacuum, check_pg_indexes, check_pg_hit_ratio",
        on(f, "track_counts"),
        format!(
            "track_counts is {}",
            setting(f, "track_counts").unwrap_or("unknown")
        ),
        Some("ALTER SYSTEM SET track_counts = on; SELECT pg_reload_conf();".into()),
    )
}

/// The logging collector on, for check_pg_log to find the log.
fn logging_collector(f: &Facts) -> Finding {
    finding(
        "check_pg_log",
        on(f, "logging_collector"),
        format!(
            "logging_collector is {}",
            setting(f, "logging_collector").unwrap_or("unknown")
        ),
        Some("ALTER SYSTEM SET logging_collector = on;  -- then restart".into()),
    )
}

/// A time on every log line.
fn log_prefix(f: &Facts) -> Finding {
    let prefix = setting(f, "log_line_prefix").unwrap_or_default();
    let timed = prefix.contains("%m") || prefix.contains("%t") || prefix.contains("%n");
    finding(
        "check_pg_log",
        timed,
        if timed {
            format!("log_line_prefix '{prefix}' puts a time on every line")
        } else {
            format!("log_line_prefix '{prefix}' puts no time on the lines: what check_pg_log reports cannot be placed in time")
        },
        Some(
            "ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d ';  SELECT pg_reload_conf();"
                .into(),
        ),
    )
}

/// With the collector on: where the log is, and whether it is readable here.
fn log_access(f: &Facts, role: &str) -> Option<Finding> {
    if !on(f, "logging_collector") {
        return None;
    }
    Some(match (&f.log_dir, &f.log_readable) {
        (None, _) => finding(
            "check_pg_log",
            false,
            "may not see where the log is (data_directory and log_directory need pg_read_all_settings, part of pg_monitor)".into(),
            Some(format!("GRANT pg_monitor TO {role};")),
        ),
        (Some(dir), Some(Ok(file))) => finding(
            "check_pg_log",
            true,
            format!("the log in {dir} is readable here ({file})"),
            None,
        ),
        (Some(dir), Some(Err(why))) => finding(
            "check_pg_log",
            false,
            format!("the log in {dir} is not readable here: {why}"),
            Some("ALTER SYSTEM SET log_file_mode = '0640'; SELECT pg_reload_conf();  -- new files get the mode; add this user to the server's group".into()),
        ),
        (Some(dir), None) => finding(
            "check_pg_log",
            true,
            format!("the log directory {dir} is not on this host: run check_pg_log, and this check to test its access, on the database host"),
            None,
        ),
    })
}

/// The report and its exit code: 0 all in place, 1 gaps.
pub fn render(f: &Facts, target: &str, findings: &[Finding]) -> (String, i32) {
    let gaps = findings.iter().filter(|x| !x.ok).count();
    let mut text = format!(
        "pgvigil setup-check: role \"{}\" on {target} (PostgreSQL {}, database {}): {}\n",
        f.role,
        f.release,
        f.database,
        match gaps {
            0 => "every check can do its full job".to_string(),
            1 => "1 gap".to_string(),
            n => format!("{n} gaps"),
        }
    );
    for x in findings {
        text.push_str(&format!(
            "{:<7} {}: {}\n",
            if x.ok { "OK" } else { "MISSING" },
            x.checks,
            x.what
        ));
        if let Some(fix) = &x.fix {
            text.push_str(&format!("        fix: {fix}\n"));
        }
    }
    (text, if gaps == 0 { 0 } else { 1 })
}

/// Whether the newest file of the log directory can be read from here
/// (its name); None when the directory is not on this host.
fn readable(dir: &Path) -> Option<Result<String, String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(pgvigil_kit::output::one_line(&e.to_string()))),
    };
    let newest = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max();
    Some(match newest {
        None => Err("no log file there yet".into()),
        Some((_, path)) => std::fs::File::open(&path)
            .map(|_| path.display().to_string())
            .map_err(|e| {
                format!(
                    "{}: {}",
                    path.display(),
                    pgvigil_kit::output::one_line(&e.to_string())
                )
            }),
    })
}

pub fn fetch(db: &mut Session) -> Result<Facts, Error> {
    let row = db.query_one(ROLE)?;
    let mut f = Facts {
        role: get(&row, "role")?,
        superuser: get(&row, "superuser")?,
        version: get(&row, "version")?,
        release: get(&row, "release")?,
        ..Facts::default()
    };
    for r in db.query(GRANTS)? {
        f.grants
            .push((get(&r, "name")?, get(&r, "member")?, get(&r, "usage")?));
    }
    for r in db.query(SETTINGS)? {
        f.settings.push((get(&r, "name")?, get(&r, "setting")?));
    }
    let row = db.query_one(DATABASE)?;
    f.database = get(&row, "database")?;
    f.hidden_sequences = get(&row, "hidden_sequences")?;
    f.hidden_tables = get(&row, "hidden_tables")?;
    f.pgstattuple = get(&row, "pgstattuple")?;
    f.pgstattuple_available = get(&row, "pgstattuple_available")?;
    if let (Some(data), Some(log)) = (setting(&f, "data_directory"), setting(&f, "log_directory")) {
        let dir = Path::new(data).join(log);
        f.log_readable = readable(&dir);
        f.log_dir = Some(dir.display().to_string());
    }
    Ok(f)
}

/// Runs `pgvigil setup-check ARGS…` and exits: 0 all in place, 1 gaps, 3
/// when it cannot tell (bad options, no connection).
pub fn main(args: Vec<std::ffi::OsString>) -> ! {
    use clap::Parser;
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            print!("{e}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("pgvigil setup-check: {}", crate::runner::one_line_clap(&e));
            std::process::exit(3)
        }
    };
    let result =
        ConnSettings::resolve(&cli.conn, "pgvigil-setup-check", &|k| std::env::var(k).ok())
            .and_then(|conn| {
                let mut db = Session::connect(&conn, std::time::Duration::from_secs(30))?;
                Ok((conn.target(), fetch(&mut db)?))
            });
    match result {
        Ok((target, facts)) => {
            let (text, code) = render(&facts, &target, &judge(&facts));
            print!("{text}");
            std::process::exit(code)
        }
        Err(e) => {
            println!("pgvigil setup-check: {e}");
            std::process::exit(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> Facts {
        Facts {
            role: "watch".into(),
            version: 160004,
            release: "16.4".into(),
            database: "app".into(),
            grants: vec![
                ("pg_monitor".into(), false, false),
                ("pg_read_all_data".into(), false, false),
                ("pg_use_reserved_connections".into(), false, false),
                ("pg_signal_backend".into(), false, false),
            ],
            settings: vec![
                ("track_counts".into(), "on".into()),
                ("logging_collector".into(), "on".into()),
                ("log_line_prefix".into(), "%m [%p] ".into()),
                ("reserved_connections".into(), "0".into()),
            ],
            hidden_sequences: 2,
            hidden_tables: 3,
            pgstattuple_available: true,
            ..Facts::default()
        }
    }

    #[test]
    fn a_bare_role_gets_every_gap_with_its_sql() {
        let f = bare();
        let findings = judge(&f);
        let (text, code) = render(&f, "db1:5432", &findings);
        assert_eq!(code, 1);
        assert!(text.starts_with("pgvigil setup-check: role \"watch\" on db1:5432 (PostgreSQL 16.4, database app): 6 gaps\n"), "{text}");
        for fix in [
            "fix: GRANT pg_monitor TO \"watch\";",
            "fix: GRANT pg_read_all_data TO \"watch\";",
            "fix: CREATE EXTENSION pgstattuple;",
            "fix: GRANT pg_use_reserved_connections TO \"watch\"; ALTER SYSTEM SET reserved_connections = 3;",
            "fix: GRANT pg_signal_backend TO \"watch\";",
        ] {
            assert!(text.contains(fix), "{fix} in:\n{text}");
        }
        assert!(
            text.contains("MISSING check_pg_log: may not see where the log is"),
            "{text}"
        );
    }

    #[test]
    fn noinherit_membership_is_named() {
        let mut f = bare();
        f.grants[0] = ("pg_monitor".into(), true, false);
        let first = &judge(&f)[0];
        assert!(!first.ok);
        assert!(first.what.contains("NOINHERIT"));
        assert_eq!(first.fix.as_deref(), Some("ALTER ROLE \"watch\" INHERIT;"));
    }

    #[test]
    fn all_in_place_exits_0_and_a_superuser_is_told_it_is_too_much() {
        let mut f = bare();
        f.grants = f
            .grants
            .iter()
            .map(|(n, _, _)| (n.clone(), true, true))
            .collect();
        f.settings[3].1 = "3".into();
        f.log_dir = Some("/var/lib/postgresql/16/main/log".into());
        f.log_readable = Some(Ok("postgresql.log".into()));
        let (text, code) = render(&f, "db1:5432", &judge(&f));
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("every check can do its full job"));
        let su = Facts {
            superuser: true,
            ..bare()
        };
        let (text, code) = render(&su, "db1:5432", &judge(&su));
        assert_eq!(code, 0);
        assert!(text.contains("is a superuser"), "{text}");
        assert!(text.contains("a role with pg_monitor is the safer choice"));
    }

    #[test]
    fn before_14_sequences_need_grants_per_schema() {
        let mut f = bare();
        f.version = 130000;
        f.grants
            .retain(|(n, _, _)| n != "pg_read_all_data" && n != "pg_use_reserved_connections");
        let text = render(&f, "x", &judge(&f)).0;
        assert!(text.contains("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO \"watch\""));
        assert!(!text.contains("reserved"), "{text}");
    }
}
