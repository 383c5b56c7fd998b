//! The checks, one module each, every one reading top to bottom as
//! query, measure, compare, report.

pub mod alive;
pub mod archiver;
pub mod backup;
pub mod bloat;
pub mod checkpoints;
pub mod checksums;
pub mod commit_ratio;
pub mod connections;
pub mod db_size;
pub mod deadlocks;
pub mod disk;
pub mod health;
pub mod hit_ratio;
pub mod indexes;
pub mod locks;
pub mod log;
pub mod long_running;
pub mod pgbouncer;
pub mod query;
pub mod replication_lag;
pub mod replication_slots;
pub mod roles;
pub mod settings;
pub(crate) mod stat_database;
pub mod temp_files;
pub mod vacuum;
pub mod wraparound;

/// Every check by its short name, once: the plugins' command lines for the
/// man pages, and the checks check_pg_health can run.
macro_rules! suite {
    ($($name:literal => $check:ty,)*) => {
        /// The command line of every plugin the suite ships, by binary name,
        /// for the man pages and packaging; `plugins/` holds one binary for each.
        pub fn plugin_commands() -> Vec<clap::Command> {
            use crate::cli::command;
            vec![
                $(command::<$check>(concat!("check_pg_", $name)),)*
                command::<health::Health>("check_pg_health"),
            ]
        }

        /// The checks a combined run may name.
        pub const PART_NAMES: &[&str] = &[$($name),*];

        /// Check `name` with its options parsed, for a combined run; None
        /// when there is no such check.
        pub(crate) fn prepare_part(
            name: &str,
            argv: &[String],
        ) -> Option<Result<crate::cli::Prepared, crate::Error>> {
            match name {
                $($name => Some(crate::cli::prepare::<$check>(concat!("check_pg_", $name), argv)),)*
                _ => None,
            }
        }
    };
}

suite! {
    "alive" => alive::Alive,
    "archiver" => archiver::Archiver,
    "backup" => backup::Backup,
    "bloat" => bloat::Bloat,
    "checkpoints" => checkpoints::Checkpoints,
    "checksums" => checksums::Checksums,
    "commit_ratio" => commit_ratio::CommitRatio,
    "connections" => connections::Connections,
    "db_size" => db_size::DbSize,
    "deadlocks" => deadlocks::Deadlocks,
    "disk" => disk::Disk,
    "hit_ratio" => hit_ratio::HitRatio,
    "indexes" => indexes::Indexes,
    "locks" => locks::Locks,
    "log" => log::Log,
    "long_running" => long_running::LongRunning,
    "pgbouncer" => pgbouncer::Pgbouncer,
    "query" => query::Query,
    "replication_lag" => replication_lag::ReplicationLag,
    "replication_slots" => replication_slots::ReplicationSlots,
    "roles" => roles::Roles,
    "settings" => settings::Settings,
    "temp_files" => temp_files::TempFiles,
    "vacuum" => vacuum::Vacuum,
    "wraparound" => wraparound::Wraparound,
}

/// `12%` with at most one decimal, for status lines.
pub(crate) fn percent_text(value: f64) -> String {
    format!(
        "{}%",
        crate::units::format_number(crate::units::round_to(value, 1))
    )
}

/// `s` when `n` is not one.
pub(crate) fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `3 dumps`, `1 superuser`: a count and its noun.
pub(crate) fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", plural(n as i64))
}

/// Without pg_read_all_stats (part of pg_monitor) other roles' sessions show
/// up with their details nulled, which would make a check quietly wrong.
pub(crate) fn require_stats_visibility(sees_all: bool, user: &str) -> Result<(), crate::Error> {
    if sees_all {
        Ok(())
    } else {
        Err(crate::Error::Privilege(format!(
            "role \"{user}\" cannot see other roles' sessions: it needs the pg_monitor role (GRANT pg_monitor TO \"{user}\")"
        )))
    }
}

/// Database names by oid. Checks read them only for the long output: the main
/// statement then stays clear of catalog joins, which a new backend pays for.
pub(crate) fn database_names(
    db: &mut crate::Session,
) -> Result<std::collections::BTreeMap<u32, String>, crate::Error> {
    use crate::session::get;
    db.query("SELECT oid, datname::text AS datname FROM pg_database")?
        .iter()
        .map(|r| Ok((get(r, "oid")?, get(r, "datname")?)))
        .collect()
}

/// The state store of this check against this server and database.
pub(crate) fn state_store(
    ctx: &crate::Context,
    state: &crate::state::StateArgs,
) -> Result<crate::state::Store, crate::Error> {
    let key = format!("{} {} {}", ctx.plugin, ctx.conn.target(), ctx.conn.dbname);
    crate::state::Store::open(state, &key, &|k| std::env::var(k).ok())
}
