//! The checks, one module each, every one reading top to bottom as
//! query, measure, compare, report.

pub mod alive;
pub mod archiver;
pub mod bloat;
pub mod checkpoints;
pub mod checksums;
pub mod commit_ratio;
pub mod connections;
pub mod db_size;
pub mod deadlocks;
pub mod disk;
pub mod hit_ratio;
pub mod indexes;
pub mod locks;
pub mod log;
pub mod long_running;
pub mod query;
pub mod replication_lag;
pub mod replication_slots;
pub(crate) mod stat_database;
pub mod temp_files;
pub mod vacuum;
pub mod wraparound;

/// The command line of every plugin the suite ships, by binary name, for the
/// man pages and packaging; `plugins/` holds one binary for each.
pub fn plugin_commands() -> Vec<clap::Command> {
    use crate::cli::command;
    vec![
        command::<alive::Alive>("check_pg_alive"),
        command::<archiver::Archiver>("check_pg_archiver"),
        command::<bloat::Bloat>("check_pg_bloat"),
        command::<checkpoints::Checkpoints>("check_pg_checkpoints"),
        command::<checksums::Checksums>("check_pg_checksums"),
        command::<commit_ratio::CommitRatio>("check_pg_commit_ratio"),
        command::<connections::Connections>("check_pg_connections"),
        command::<db_size::DbSize>("check_pg_db_size"),
        command::<deadlocks::Deadlocks>("check_pg_deadlocks"),
        command::<disk::Disk>("check_pg_disk"),
        command::<hit_ratio::HitRatio>("check_pg_hit_ratio"),
        command::<indexes::Indexes>("check_pg_indexes"),
        command::<locks::Locks>("check_pg_locks"),
        command::<log::Log>("check_pg_log"),
        command::<long_running::LongRunning>("check_pg_long_running"),
        command::<query::Query>("check_pg_query"),
        command::<replication_lag::ReplicationLag>("check_pg_replication_lag"),
        command::<replication_slots::ReplicationSlots>("check_pg_replication_slots"),
        command::<temp_files::TempFiles>("check_pg_temp_files"),
        command::<vacuum::Vacuum>("check_pg_vacuum"),
        command::<wraparound::Wraparound>("check_pg_wraparound"),
    ]
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
