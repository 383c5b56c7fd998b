//! The suite, written once: every check and event handler by name, with what
//! the README table, `--list`, the man pages, the multicall dispatch, the
//! packaging links and check_pg_health's `--check` derive from it. A new
//! check is its module and one row here.

use std::ffi::OsString;

use crate::check::Prepared;
use crate::check::{defaults_text, Check};
use crate::checks::*;
use crate::runner::{self, Program};
use pgvigil_kit::error::Error;

/// Parses a check's options as a `--check` of a combined run.
pub type PreparePart = fn(&[String]) -> Result<Prepared, Error>;

/// One program of the suite.
pub struct Entry {
    /// The short name: `locks`; `pgvigil locks` runs it.
    pub name: &'static str,
    /// The name it is installed and called by: `check_pg_locks`.
    pub binary: &'static str,
    /// One line for `pgvigil --list`.
    pub about: &'static str,
    /// What it measures, for the README table.
    pub measures: &'static str,
    /// What `-w`/`-c` apply to, for the README table; `{defaults}` stands
    /// for the defaults.
    pub thresholds: &'static str,
    /// `Check::DEFAULT_THRESHOLDS`.
    pub defaults: Option<(&'static str, &'static str)>,
    /// The options of one typical run, after the binary's name: help, the
    /// README and the man page show `binary example`.
    pub example: &'static str,
    /// Seconds between scheduled runs (`Check::INTERVAL`); 0 for a handler,
    /// which runs on a state change.
    pub interval: u32,
    /// Its command line, for help, man pages and the packaging tests.
    pub command: fn() -> clap::Command,
    /// Runs it with these arguments (the first being the name it was called
    /// by) and exits with its state.
    pub run: fn(Vec<OsString>) -> !,
    /// Parses its options as a `--check` of a combined run; None for what
    /// cannot run inside one.
    pub part: Option<PreparePart>,
}

impl Entry {
    /// `check_pg_locks -w 5,30s -c 20,5min`.
    pub fn example_line(&self) -> String {
        if self.example.is_empty() {
            self.binary.to_string()
        } else {
            format!("{} {}", self.binary, self.example)
        }
    }
}

macro_rules! suite {
    ($($name:ident => $check:ty {
        about: $about:literal,
        measures: $measures:literal,
        thresholds: $thresholds:literal,
        example: $example:literal,
    },)*) => {
        /// Every check, in the order the README and `--list` give them.
        pub static CHECKS: &[Entry] = &[$(Entry {
            name: stringify!($name),
            binary: concat!("check_pg_", stringify!($name)),
            about: $about,
            measures: $measures,
            thresholds: $thresholds,
            example: $example,
            interval: <$check as Check>::INTERVAL,
            defaults: <$check as Check>::DEFAULT_THRESHOLDS,
            command: || runner::command::<$check>(Program {
                binary: concat!("check_pg_", stringify!($name)),
                about: $about,
                example: $example,
            }),
            run: |args| runner::run::<$check>(Program {
                binary: concat!("check_pg_", stringify!($name)),
                about: $about,
                example: $example,
            }, args),
            // Every check but a combined run itself may be a part of one.
            part: if <$check as Check>::COMBINES {
                None
            } else {
                Some(|argv| runner::prepare::<$check>(concat!("check_pg_", stringify!($name)), argv))
            },
        },)*];
    };
}

suite! {
    alive => sessions::alive::Alive {
        about: "Whether the server accepts a session and answers a query, and how long that takes (connect included), with its version, role and uptime.",
        measures: "the server accepts a session and answers a query: response time (connect included), connect time, version, primary or standby, uptime; cannot connect is CRITICAL; a start less than `--min-uptime` ago is WARNING, a crash reset since the previous run (a backend died, every session ended, the postmaster stayed up: the checkpointer's start moved) CRITICAL once",
        thresholds: "the response time (default {defaults}, as check_pgsql)",
        example: "-w 500ms -c 2s --min-uptime 10min",
    },
    connections => sessions::connections::Connections {
        about: "Client connections against max_connections, less the slots reserved for superusers.",
        measures: "client connections against `max_connections` less reserved slots; per state (active, idle, idle in transaction, aborted, waiting on a lock); the session filters choose what is counted",
        thresholds: "a count, or `%` of usable slots (default {defaults})",
        example: "-w 80% -c 90%",
    },
    replication_lag => replication::replication_lag::ReplicationLag {
        about: "Replication lag, on a primary (each standby in pg_stat_replication) or on a standby (WAL received but not replayed).",
        measures: "on a primary: each standby's lag in bytes and time (`pg_stat_replication`; a standby silent past `wal_receiver_status_interval` while WAL waits for it lags by that silence); on a standby: WAL received but not replayed, and replay delay (never alarms on an idle primary), the time since the WAL receiver last heard from the primary (a stalled path leaves it `streaming` with a lag of 0), no WAL receiver (CRITICAL), replay paused (WARNING)",
        thresholds: "the unit decides: sizes to bytes, durations to time; `receipt_age=` to the receiver's silence (default `-w receipt_age=1min -c receipt_age=5min`)",
        example: "--min-standbys 1 -w 16MB,30s -c 1GB,5min",
    },
    role => replication::role::Role {
        about: "Whether the node is the primary or a standby, a timeline change since the previous run (a failover), and with --node the whole set: one primary, no split brain, every standby on the primary's timeline and of the same cluster.",
        measures: "whether the node is the primary or a standby (`--expect`), a role or timeline changed since the previous run (a promotion or failover, reported once); with `--node HOST[:PORT]` the whole set in one run: more than one primary (split brain) or none is CRITICAL, and so is a standby on another timeline than the primary's or of another cluster (system identifier); each node's role, timeline and replay lag; unreachable nodes named",
        thresholds: "nothing: CRITICAL for another role than expected, split brain, no primary, a standby on another timeline or cluster; WARNING for a change since the previous run or an unreachable node",
        example: "--expect primary --node db2 --node db3",
    },
    disk => storage::disk::Disk {
        about: "Usage of every filesystem holding the data directory, pg_wal and the tablespaces. Runs on the database host.",
        measures: "every filesystem holding the data directory, `pg_wal` and tablespaces (statvfs, on the database host), and the time left before each is full at the rate of its history (`time_left`, see Forecasts)",
        thresholds: "`%` used (default {defaults}), a size for bytes used, a duration as a lower bound on the time left (`7d:`)",
        example: "-w 80%,7d: -c 90%,1d:",
    },
    locks => sessions::locks::Locks {
        about: "Sessions blocked by other sessions' locks (pg_blocking_pids), and the longest wait.",
        measures: "sessions blocked by others (`pg_blocking_pids`), waiting locks, longest wait; names each blocked pid, its blocker and their queries; the session filters choose the blocked sessions judged; the shared lock table's use against `max_locks_per_transaction` × (`max_connections` + `max_prepared_transactions`), naming the pid that holds the most",
        thresholds: "a count to blocked sessions, a duration to the longest wait, `%` to the lock table's use",
        example: "-w 5,30s,50% -c 20,5min,80%",
    },
    long_running => sessions::long_running::LongRunning {
        about: "Age of the oldest open transaction (a long statement, or a session idle in transaction), with the longest statement and idle-in-transaction time.",
        measures: "the oldest open transaction: a long statement or a session idle in transaction (either holds locks and keeps vacuum from cleaning up); longest statement, longest idle in transaction, open transactions; names each session, oldest first; the session filters leave out a nightly `pg_dump` (`--exclude-app '^pg_dump$'`), a reporting role or autovacuum, and count what they left out",
        thresholds: "the oldest transaction's age (default {defaults})",
        example: "-w 5min -c 30min",
    },
    prepared_txns => sessions::prepared_txns::PreparedTxns {
        about: "Transactions left prepared (two-phase commit): how many, and the age of the oldest, naming gid, owner and database.",
        measures: "transactions left prepared (`PREPARE TRANSACTION`, two-phase commit): how many against `max_prepared_transactions`, the oldest one's age, each named by gid, owner, database and how many transactions it holds the xmin horizon back; no session shows them in `pg_stat_activity`, so long-running checks never see them",
        thresholds: "a duration to the oldest one's age, a count to how many (default {defaults})",
        example: "-w 5min -c 1h",
    },
    archiver => replication::archiver::Archiver {
        about: "WAL archiving: CRITICAL when archive_command fails, thresholds on the WAL files waiting to be archived.",
        measures: "failing `archive_command` (CRITICAL, naming the WAL file), `.ready` files waiting and the oldest one's age",
        thresholds: "a count to `.ready` files, a duration to the oldest's age",
        example: "-w 10,10min -c 50,1h",
    },
    wraparound => maintenance::wraparound::Wraparound {
        about: "Transaction ID and multixact ID age of the oldest database, against the 2^31 wraparound limit, naming what holds the xmin horizon back.",
        measures: "transaction ID and multixact age of every database (`pg_database`, one connection), against the 2^31 wraparound limit; when alerting, what holds the xmin horizon back: the oldest sessions' snapshots, prepared transactions, replication slots' `xmin`/`catalog_xmin`, standbys' feedback; the time left before new transactions are refused at the rate XIDs are used (`time_left`, see Forecasts)",
        thresholds: "a number to the oldest XID age, `%` to the share of the limit (default {defaults}), a duration as a lower bound on the time left (`30d:`)",
        example: "-w 50%,30d: -c 75%,3d:",
    },
    vacuum => maintenance::vacuum::Vacuum {
        about: "Tables that need VACUUM or ANALYZE: dead tuple share, statistics gone stale while the table changed, autovacuum disabled.",
        measures: "tables that need VACUUM (more than `--min-dead` dead tuples, default 1000, and a large dead share, unless autovacuum visited the table in the last three naptimes: what it left, an old snapshot holds, and the summary names the table) or ANALYZE (more than `--min-changes` rows changed since statistics that have gone stale); tables with autovacuum disabled and `autovacuum = off` (WARNING); autovacuum workers busy against `autovacuum_max_workers` and the longest-running one (all busy for hours leaves every other table waiting); with `-v` the running vacuums",
        thresholds: "`%` to the worst dead share, a duration to the oldest stale VACUUM/ANALYZE (default {defaults}); `workers=%` to the busy workers' share, `worker_age=` to the longest-running one",
        example: r#"--all-databases --exclude '^staging\.'"#,
    },
    bloat => maintenance::bloat::Bloat {
        about: "Estimated wasted space in tables and B-tree indexes, from pg_stats where the role may read them, else from pgstattuple.",
        measures: "estimated wasted space of tables and B-tree indexes over `--min-size` (default 10MB), from `pg_stats` where the role may read it, else measured with `pgstattuple` (which `pg_monitor` may call); UNKNOWN naming the grant or extension when neither is possible, never a silent zero",
        thresholds: "a size to wasted bytes, `%` to the wasted share (default {defaults})",
        example: "--all-databases -w 1GB,50% -c 10GB,80%",
    },
    indexes => maintenance::indexes::Indexes {
        about: "Invalid indexes (CRITICAL), unused and duplicate indexes, and tables read mostly by sequential scans.",
        measures: "invalid indexes (a failed `CREATE INDEX CONCURRENTLY`: CRITICAL, named), unused indexes over `--min-size` (no scan since the statistics reset, not unique, not backing a constraint), duplicate indexes (same table, columns, operator classes, expressions, predicate), tables read mostly by sequential scans",
        thresholds: "a count to unused + duplicate indexes",
        example: "--all-databases -w 1 -c 10",
    },
    replication_slots => replication::replication_slots::ReplicationSlots {
        about: "Replication slots: WAL each slot retains, wal_status (lost is CRITICAL, unreserved at least WARNING) and how long inactive slots have been inactive.",
        measures: "every slot: type, active or not, WAL it retains from `restart_lsn`, `wal_status` (13+: `lost` is CRITICAL, `unreserved` at least WARNING), `safe_wal_size`, how long it has been inactive (`inactive_since` on 17+, before that counted from the first run that saw it inactive); a logical slot's bytes spilled to `pg_replslot` and streamed since the previous run (`pg_stat_replication_slots`, 14+)",
        thresholds: "a size to WAL retained per slot, a duration to inactive time, `spill=SIZE`/`stream=SIZE` to bytes spilled/streamed since the previous run",
        example: "-w 1GB,1h -c 10GB,1d",
    },
    hit_ratio => rates::hit_ratio::HitRatio {
        about: "Buffer cache hit ratio over the interval since the previous run, in all and per database (counters kept in a state file).",
        measures: "buffer cache hit ratio over the interval since the previous run (`blks_hit`, `blks_read`), in all and per database; an interval with fewer than `--min-reads` block reads (default 1000) is not judged",
        thresholds: "lower bounds on the ratio (default {defaults})",
        example: "-w 95: -c 90:",
    },
    deadlocks => rates::deadlocks::Deadlocks {
        about: "Deadlocks since the previous run, in every database (the interval and counters are kept in a state file).",
        measures: "deadlocks since the previous run, per database",
        thresholds: "a count (default {defaults}: any deadlock warns)",
        example: "-w 0 -c 5",
    },
    subscriptions => replication::subscriptions::Subscriptions {
        about: "Logical replication subscriptions on the subscriber: disabled, apply worker not running, no message from the publisher, tables not ready, apply and sync errors since the previous run (15+).",
        measures: "logical replication on the subscriber, every subscription of the cluster: disabled (also by `disable_on_error`) or an apply worker not running is CRITICAL; the time since the publisher was last heard from, tables not yet synchronized (`pg_subscription_rel`, named with their state) and apply and sync errors since the previous run (`pg_stat_subscription_stats`, 15+)",
        thresholds: "a duration to the time since the last message, a count to new errors, `not_ready=N` to tables not ready (default {defaults})",
        example: "-w 0,1min -c 5min --exclude '^archive_'",
    },
    conflicts => rates::conflicts::Conflicts {
        about: "Queries on a hot standby cancelled by recovery conflicts since the previous run, per database and kind (snapshot, lock, buffer pin, deadlock, tablespace, logical slot).",
        measures: "queries on a hot standby cancelled by recovery conflicts since the previous run (`pg_stat_database_conflicts`), per database and kind: snapshot, lock, buffer pin, deadlock, tablespace, logical slot (16+)",
        thresholds: "a count to the conflicts of every kind together (default {defaults})",
        example: "-w 0 -c 10",
    },
    commit_ratio => rates::commit_ratio::CommitRatio {
        about: "Rolled-back transactions as a share of all that ended since the previous run (counters kept in a state file).",
        measures: "rolled-back transactions as a share of those that ended since the previous run (judged from `--min-transactions`, default 100); commits per second, in the databases `--rate-db` matches, for an application that stopped writing",
        thresholds: "`%` to the share, a number to the count of rollbacks, `commit_rate=` to commits per second (a lower bound: `commit_rate=1:`)",
        example: "-w 5%,commit_rate=1: -c 20%,commit_rate=0.1: --rate-db '^app$'",
    },
    temp_files => rates::temp_files::TempFiles {
        about: "Temporary files and bytes written since the previous run (counters kept in a state file).",
        measures: "temporary files and bytes written since the previous run (sorts and hashes that outgrew `work_mem`)",
        thresholds: "a number to files, a size to bytes",
        example: "-w 100,1GB -c 1000,10GB",
    },
    checksums => rates::checksums::Checksums {
        about: "Data checksum failures since the previous run (CRITICAL, naming the database and the last failure), and whether data checksums are enabled.",
        measures: "data checksum failures since the previous run (CRITICAL, naming the database and the last failure); whether data checksums are on (`--require-checksums` warns when off)",
        thresholds: "the count of new failures (default {defaults})",
        example: "--require-checksums",
    },
    checkpoints => rates::checkpoints::Checkpoints {
        about: "Share of requested (forced) checkpoints since the previous run, with their write and sync time (counters kept in a state file).",
        measures: "share of requested checkpoints since the previous run (`max_wal_size` too small), write and sync time; `pg_stat_bgwriter` up to 16, `pg_stat_checkpointer` from 17; judged only over `--min-checkpoints` (default 10), so one `CHECKPOINT` or base backup is no alert",
        thresholds: "`%` requested",
        example: "-w 30% -c 60%",
    },
    db_size => storage::db_size::DbSize {
        about: "Size of every database, and its growth per day since the previous run (sizes kept in a state file).",
        measures: "the size of every database, and its growth per day measured over at least `--growth-interval` (default 1h); with `-v` the largest tables; with `--limit`/`--total-limit` the time left before a database or all of them reach it (`time_left`, see Forecasts)",
        thresholds: "sizes to each database's size; `--growth`/`--growth-critical` to growth per day; a duration as a lower bound on the time left (`30d:`)",
        example: "-w 100GB -c 200GB --growth 5GB",
    },
    sequences => storage::sequences::Sequences {
        about: "How much of its range each sequence has used, against the owning column's type or its maxvalue (minvalue when descending), naming table.column and the values left.",
        measures: "every sequence's share of its range used, toward the owning column type's bound (a `serial` stops at 2^31 - 1) or `maxvalue`, whichever comes first (`minvalue` when descending), naming `table.column` and the values left; cycling sequences apart; a sequence whose value the role may not read is UNKNOWN naming the grant, never a silent 0%; the time left before each runs out at the rate of its `nextval()` calls (`time_left`, the least, see Forecasts)",
        thresholds: "`%` of the range used (default {defaults}), a duration as a lower bound on the time left (`30d:`)",
        example: "--all-databases -w 75%,30d: -c 90%,7d:",
    },
    relation_size => storage::relation_size::RelationSize {
        about: "The largest tables (total size), indexes and TOAST tables, each against size thresholds and its growth per day since the previous run.",
        measures: "the largest tables (total size: heap, TOAST and indexes), indexes and TOAST tables, each against size thresholds, and the growth per day of the `--top` largest since the previous run; `--kind`, `--include`/`--exclude` and `--all-databases` choose what is judged; a relation another session holds in ACCESS EXCLUSIVE mode is named as skipped; `--estimate` takes sizes from `pg_class.relpages` (as of the last VACUUM or ANALYZE) and opens nothing, for databases of 100,000 relations; with `--limit` the time left before each of the `--top` largest reaches it (`time_left`, the least, see Forecasts)",
        thresholds: "sizes to each relation's size; `--growth`/`--growth-critical` to its growth per day; a duration as a lower bound on the time left before `--limit` (`30d:`)",
        example: "--all-databases -w 50GB -c 200GB --growth 5GB",
    },
    wal => storage::wal::Wal {
        about: "How much WAL pg_wal holds, against what max_wal_size and wal_keep_size let it hold, WAL written per second, and what holds the rest: the archiver's backlog, the oldest slot, the checkpoint distance.",
        measures: "pg_wal's size and WAL files (`pg_ls_waldir()`) against what the settings let it hold while nothing is stuck (`max_wal_size` + `wal_keep_size`), WAL written (received, on a standby) per second since the previous run, and what holds the rest: the archiver's backlog, the slot retaining the most, the checkpoint distance; on the database host, the time left before pg_wal's filesystem is full at the rate of its history (`time_left`), and before pg_wal reaches that budget (`budget_time_left`, see Forecasts)",
        thresholds: "`%` of that budget (default {defaults}), a size to pg_wal's size, a count to its files, `rate=SIZE` to WAL per second, a duration as a lower bound on its filesystem's time left (`6h:`)",
        example: "-w 100%,rate=64MB,6h: -c 150%,1h:",
    },
    log => logs::log::Log {
        about: "New server log entries since the previous run (stderr, csvlog, jsonlog): errors, failed logins, deadlocks, slow statements, lock waits, temporary files, checkpoint warnings. Run it on the database host.",
        measures: "the server log entries written since the previous run, read incrementally on the database host (stderr with any `log_line_prefix`, csvlog, jsonlog; found from the server's settings or `--log` file/dir/pattern; rotation by rename, truncation and copytruncate followed): `lines`, `errors`, `fatals`, `panics`, `warnings`, `auth_failures`, `slow_statements`, `deadlocks`, `lock_waits`, `temp_files`, `checkpoint_warnings`; long output: failed logins by user and client, the most frequent errors and the slowest statements, normalized; with the server down it still reads `--log` or the location the last successful run found, and with `--log` plus `--prefix` it never connects (a log host)",
        thresholds: "ranges that name a count (`-w errors=50,auth_failures=3`), a bare range applies to `errors`; any PANIC is CRITICAL",
        example: "-w errors=50,auth_failures=3 -c errors=500,auth_failures=20 --slow 1s",
    },
    query => query::Query {
        about: "Runs a query and compares the number in its first column of the first row.",
        measures: "the number in the first column of the first row of your query",
        thresholds: "that number",
        example: r#"--query "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'" --label idle_tx -w 5 -c 20"#,
    },
    settings => configuration::settings::Settings {
        about: "The server's configuration: settings waiting for a restart, settings that differ from --expect, fsync or full_page_writes off, and with --changed what changed since the previous run.",
        measures: "the configuration: settings waiting for a restart (`pending_restart`), settings that differ from `--expect NAME=VALUE` (compared in the setting's unit as PostgreSQL reads it: `1s` = `1000ms`, `128MB` = 16384 pages), `fsync` or `full_page_writes` off; with `--changed`, what changed since the previous run (old and new values, reported once); `--ignore NAME` leaves a setting alone",
        thresholds: "nothing: WARNING for pending restart, a mismatch or a change; CRITICAL for unsafe settings",
        example: "--expect log_lock_waits=on --expect log_min_duration_statement=1s --changed",
    },
    version => configuration::version::Version {
        about: "The server's release against --min-version and --expect-major, a release changed since the previous run (reported once), and extensions not at the version the installed packages provide.",
        measures: "the server's release against `--min-version` (a minor release with a fix you need; one per major) and `--expect-major`, a release changed since the previous run (reported once), extensions whose installed version is not the default of the installed packages (`pg_available_extensions`), in every database with `--all-databases`; nothing is fetched from the network",
        thresholds: "nothing: WARNING below `--min-version`, for a change or an extension behind; CRITICAL for another major than `--expect-major`",
        example: "--min-version 16.4 --expect-major 16 --all-databases",
    },
    roles => configuration::roles::Roles {
        about: "Audit of roles: superusers not allowed, login passwords about to expire, CREATEROLE or BYPASSRLS outside an allow list, roles at their connection limit.",
        measures: "an audit of roles: superusers other than the bootstrap one and `--allow-superuser` (CRITICAL), login passwords about to expire (`rolvaliduntil`), CREATEROLE or BYPASSRLS outside `--allow-privileged` (WARNING), roles at their `CONNECTION LIMIT` (CRITICAL); `-v` lists every role",
        thresholds: "the time left before a password expires, as lower bounds (default {defaults})",
        example: "--allow-superuser postgres -w 14d: -c 2d:",
    },
    pgdata => configuration::pgdata::Pgdata {
        about: "The data directory's mode and owner, on the database host: what PostgreSQL checks only when it starts, and refuses to start with.",
        measures: "the data directory's permission bits and owner (stat on the database host, the path from `data_directory`): a mode other than `0700`, or `0750` with group access, or an owner other than the user the server runs as (the owner of `postmaster.pid`), is CRITICAL, as PostgreSQL refuses to start with them and looks only at its start",
        thresholds: "nothing: a wrong mode or owner is CRITICAL",
        example: "",
    },
    backup => tools::backup::Backup {
        about: "Freshness of backups: the newest pg_dump file in a directory (age, and size against the previous one), or a pgBackRest stanza's newest backups (age per type, the archive's last WAL).",
        measures: "backups are fresh: with `--dump-dir DIR [--pattern GLOB]` the newest dump's age and its size against the one before (`--max-shrink`, default 50%; an empty dump is CRITICAL; needs no server); with `--pgbackrest STANZA` the newest full, diff and incr backups from `pgbackrest info` and the archive's last WAL against the server's; a newest backup pgBackRest marked `error` (page checksum failures) and fewer good fulls than `--min-full` are WARNING",
        thresholds: "the age of the newest backup (default {defaults})",
        example: "--pgbackrest main -w 8d -c 15d",
    },
    patroni => tools::patroni::Patroni {
        about: "A Patroni cluster through its REST API: a leader, healthy replicas on the leader's timeline and their lag, maintenance mode, scheduled switchover or restart, a failover or a member gone since the previous run, the node's role.",
        measures: "a Patroni cluster through one node's REST API (`/patroni`, `/cluster`): no leader (read-only) or no answer is CRITICAL; replicas not running or streaming, on another timeline than the leader's or with unknown lag; maintenance mode (paused, since when), a scheduled switchover or restart, a new leader or timeline and a member gone since the previous run (once); the node's role (`--expect`)",
        thresholds: "a count to healthy replicas, a size to each replica's lag (default {defaults})",
        example: "--api http://db1:8008 --expect leader",
    },
    pgbouncer => tools::pgbouncer::Pgbouncer {
        about: "PgBouncer's pools from its admin console (database pgbouncer, as a stats_users role; usually -p 6432): clients waiting and the longest wait per pool, server connections against pool_size, clients against max_client_conn.",
        measures: "PgBouncer's pools through its admin console (database `pgbouncer`, a `stats_users` role): clients waiting and the longest wait per pool, server connections against `pool_size`, clients against `max_client_conn`",
        thresholds: "a count to waiting clients, a duration to the longest wait, `%` to clients of `max_client_conn` (default {defaults})",
        example: "-p 6432 -U monitor -w 5,10s -c 20,1min",
    },
    health => health::Health<Suite> {
        about: "Several checks of the suite in one run over one connection: the worst state, the non-OK checks first, one line and the perfdata (as check::label) of each.",
        measures: "several of the checks above in one run over one connection: a whole health check (alive, connections, replication_lag, disk, long_running, locks, archiver by default; disk skipped with a note when the server is elsewhere), or the `--check 'NAME OPTIONS'` you list; the worst state, the non-OK checks first, one long-output line per check, each check's perfdata as `check::label`",
        thresholds: "nothing of its own: each `--check` carries its plugin's `-w`/`-c` (and every other option of that plugin)",
        example: "--check 'connections -w 80% -c 90%' --check 'locks -w 5 -c 20'",
    },
}

/// The event handlers: actions a daemon runs when a service changes state.
pub static HANDLERS: &[Entry] = &[Entry {
    name: "connections",
    binary: crate::handlers::connections::NAME,
    about: crate::handlers::connections::ABOUT,
    measures: "",
    thresholds: "",
    defaults: None,
    example: "--idle-for 10min --max 20",
    interval: 0,
    command: crate::handlers::connections::command,
    run: crate::handlers::connections::main,
    part: None,
}];

/// Every program of the suite: the checks, then the handlers.
pub fn all() -> impl Iterator<Item = &'static Entry> {
    CHECKS.iter().chain(HANDLERS)
}

/// The program installed as `binary`, or named `name` after `pgvigil`.
pub fn find(called: &str) -> Option<&'static Entry> {
    all()
        .find(|e| e.binary == called)
        .or_else(|| CHECKS.iter().find(|e| e.name == called))
}

/// The registry as check_pg_health sees it: every check but itself, in
/// registry order.
pub struct Suite;

impl health::Parts for Suite {
    fn names() -> Vec<&'static str> {
        CHECKS
            .iter()
            .filter(|e| e.part.is_some())
            .map(|e| e.name)
            .collect()
    }

    fn prepare(name: &str, argv: &[String]) -> Option<Result<Prepared, Error>> {
        let entry = CHECKS.iter().find(|e| e.name == name)?;
        entry.part.map(|prepare| prepare(argv))
    }
}

/// An example's words as a shell splits them: spaces, '…' and "…" quoting.
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The README's table of plugins, as the README must hold it.
pub fn readme_table() -> String {
    let mut table =
        String::from("| plugin | measures | `-w`/`-c` apply to | example |\n|---|---|---|---|\n");
    for e in CHECKS {
        let defaults = format!("`{}`", defaults_text(e.defaults));
        table.push_str(&format!(
            "| `{}` | {} | {} | `{}` |\n",
            e.binary,
            e.measures,
            e.thresholds.replace("{defaults}", &defaults),
            e.example_line()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_spelled_alike() {
        let mut binaries: Vec<_> = all().map(|e| e.binary).collect();
        binaries.sort();
        binaries.dedup();
        assert_eq!(binaries.len(), CHECKS.len() + HANDLERS.len());
        for e in CHECKS {
            assert_eq!(e.binary, format!("check_pg_{}", e.name));
            assert_eq!((e.command)().get_name(), e.binary);
        }
        for e in HANDLERS {
            assert_eq!(e.binary, format!("handle_pg_{}", e.name));
        }
    }

    #[test]
    fn defaults_are_said_where_they_are_set_and_nowhere_else() {
        for e in CHECKS {
            let help = (e.command)().render_long_help().to_string();
            let rendered = defaults_text(e.defaults);
            match e.defaults {
                Some(_) => {
                    assert!(e.thresholds.contains("{defaults}"), "{}: row", e.binary);
                    assert!(help.contains(&rendered), "{}: help", e.binary);
                }
                None => assert!(!e.thresholds.contains("{defaults}"), "{}", e.binary),
            }
            assert!(!help.contains("{defaults}"), "{}", e.binary);
        }
    }

    #[test]
    fn every_example_parses_with_its_own_command_line() {
        for e in all() {
            let mut argv = vec![e.binary.to_string()];
            argv.extend(split_words(e.example));
            if let Err(err) = (e.command)().try_get_matches_from(&argv) {
                panic!("{}: example does not parse: {err}", e.binary);
            }
        }
    }

    #[test]
    fn a_combined_run_takes_every_check_but_itself() {
        use health::Parts;
        let names = Suite::names();
        assert!(!names.contains(&"health"));
        assert_eq!(names.len(), CHECKS.len() - 1);
        assert!(Suite::prepare("locks", &["-w".into(), "5".into()]).is_some_and(|p| p.is_ok()));
        assert!(Suite::prepare("nosuch", &[]).is_none());
    }
}
