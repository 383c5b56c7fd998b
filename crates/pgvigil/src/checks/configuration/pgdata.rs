//! check_pg_pgdata: the data directory's mode and owner, on the database
//! host. PostgreSQL checks both only when it starts: a chmod or chown made
//! while it runs goes unnoticed until the next start, which then fails, or
//! leaves the cluster's files open to other users meanwhile.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::check::{Check, Context, Judging};
use crate::filesystem;
use crate::session::{get, Session};
use pgvigil_kit::judge::Findings;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Pgdata;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// A file's owner, by id and (when the system knows it) name.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub uid: u32,
    pub name: Option<String>,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// What one run reads of the data directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub path: String,
    /// The permission bits (`0o700`).
    pub mode: u32,
    pub owner: Owner,
    /// Who the server runs as: the owner of postmaster.pid, which the
    /// postmaster writes; None when there is none to read.
    pub server: Option<Owner>,
}

impl Check for Pgdata {
    const UNITS: UnitSpec = UnitSpec::of(&[], None);
    const INTERVAL: u32 = 3600;
    const HINT: &'static str = "restore what initdb set, as root on the database host: chmod 0700 (or 0750 with group access) and chown -R to the server's user; PostgreSQL refuses to start otherwise, and find who changed it";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  Nothing to set: the data directory's mode other than 0700 or 0750 (group
  access, initdb --allow-group-access), or an owner other than the user the
  server runs as (the owner of postmaster.pid), is CRITICAL: PostgreSQL
  checks both only when it starts, and refuses to start with them. Runs on
  the database host (NRPE, Icinga agent), connecting through the local
  socket; the directory comes from the server (data_directory, which
  pg_monitor may read).";
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
        let hosts = ctx.conn.hosts();
        if let Some(host) = hosts.iter().find(|h| !filesystem::is_local_host(h)) {
            return Err(Error::CannotMeasure(format!(
                "{host} is not this machine: run check_pg_pgdata on the database host and connect through the local socket"
            )));
        }
        let row = db.query_one("SELECT current_setting('data_directory') AS path")?;
        let path: String = get(&row, "path")?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            Error::CannotMeasure(format!("cannot look at the data directory {path}: {e}"))
        })?;
        let owner = |uid: u32| Owner {
            uid,
            name: filesystem::user_name(uid),
        };
        let server = std::fs::metadata(Path::new(&path).join("postmaster.pid"))
            .ok()
            .map(|pid| owner(pid.uid()));
        Ok(Measured {
            mode: meta.mode() & 0o7777,
            owner: owner(meta.uid()),
            server,
            path,
        })
    }

    /// The mode and the owner against what PostgreSQL accepts at its start.
    fn judge(m: &Measured, _judging: &Judging<Args>) -> CheckResult {
        let (mode, owner) = (wrong_mode(m.mode), wrong_owner(m));
        // 1 when the rule found something, for a graph of when it did.
        let flag = |label: &str, found: bool| {
            PerfData::new(label, f64::from(u8::from(found)), Unit::Count)
                .min(0.0)
                .max(1.0)
        };
        let perf = [
            flag("wrong_mode", mode.is_some()),
            flag("wrong_owner", owner.is_some()),
        ];
        let mut findings = Findings::new();
        findings.add(mode);
        findings.add(owner);
        let base = format!(
            "data directory {} mode {:04o}, owned by {}",
            m.path, m.mode, m.owner
        );
        CheckResult::new(findings.worst(), findings.after(base)).perf(perf)
    }
}

/// CRITICAL for a mode PostgreSQL refuses at its start: anything but 0700,
/// or 0750 for group access.
fn wrong_mode(mode: u32) -> Option<(Status, String)> {
    if matches!(mode, 0o700 | 0o750) {
        return None;
    }
    let open = if mode & 0o007 != 0 {
        "other users may enter it; "
    } else if mode & 0o020 != 0 {
        "its group may write in it; "
    } else {
        ""
    };
    Some((
        Status::Critical,
        format!("{open}the server refuses to start unless it is 0700 or 0750"),
    ))
}

/// CRITICAL when the directory is not the server's user's.
fn wrong_owner(m: &Measured) -> Option<(Status, String)> {
    let server = m.server.as_ref()?;
    (server.uid != m.owner.uid).then(|| {
        (
            Status::Critical,
            format!(
                "the server runs as {server}: it refuses to start on a data directory it does not own"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn measured(mode: u32, owner: u32, server: Option<u32>) -> Measured {
        let named = |uid: u32| Owner {
            uid,
            name: (uid == 999).then(|| "postgres".to_string()),
        };
        Measured {
            path: "/var/lib/postgresql/17/main".into(),
            mode,
            owner: named(owner),
            server: server.map(named),
        }
    }

    fn judged(m: &Measured) -> CheckResult {
        reported::<Pgdata>(judge::<Pgdata>(
            m,
            &options(&[]),
            &thresholds::<Pgdata>(None, None),
            0,
        ))
    }

    #[test]
    fn what_initdb_sets_is_ok() {
        for mode in [0o700, 0o750] {
            let r = judged(&measured(mode, 999, Some(999)));
            assert_eq!(r.status, Status::Ok);
            assert!(r.hint.is_none());
        }
        let r = judged(&measured(0o700, 999, Some(999)));
        assert_eq!(
            r.summary,
            "data directory /var/lib/postgresql/17/main mode 0700, owned by postgres"
        );
        assert_eq!(perf(&r), ["wrong_mode=0;;;0;1", "wrong_owner=0;;;0;1"]);
    }

    #[test]
    fn any_other_mode_is_critical_and_says_who_may_get_in() {
        let r = judged(&measured(0o755, 999, Some(999)));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "data directory /var/lib/postgresql/17/main mode 0755, owned by postgres; other users may enter it; the server refuses to start unless it is 0700 or 0750"
        );
        assert_eq!(perf(&r)[0], "wrong_mode=1;;;0;1");
        assert!(r.hint.unwrap().starts_with("restore what initdb set"));
        assert!(judged(&measured(0o770, 999, Some(999)))
            .summary
            .contains("its group may write in it"));
        assert_eq!(
            judged(&measured(0o710, 999, Some(999))).status,
            Status::Critical
        );
    }

    #[test]
    fn an_owner_other_than_the_servers_is_critical() {
        let r = judged(&measured(0o700, 0, Some(999)));
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.ends_with(
                "owned by uid 0; the server runs as postgres: it refuses to start on a data directory it does not own"
            ),
            "{}",
            r.summary
        );
        assert_eq!(perf(&r)[1], "wrong_owner=1;;;0;1");
        // Without postmaster.pid to read, the owner is not judged.
        assert_eq!(judged(&measured(0o700, 0, None)).status, Status::Ok);
    }
}
