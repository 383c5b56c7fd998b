//! check_pg_version: the server's release against the minimum the operator
//! asks for (a minor release with a known corruption fix), the major it is
//! meant to run, a release that changed since the previous run, and
//! extensions left at their old SQL version after a package upgrade. The
//! minimums are the operator's input: nothing is fetched from the network.

use crate::check::{Check, Context, Judging};
use crate::checks::common::visit::Wording;
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::Findings;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Version;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Versions")]
pub struct Args {
    /// WARNING below this release (16.4); repeat for several majors: each
    /// server is held to the one of its own major, else to the lowest given
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    pub min_version: Vec<Release>,
    /// CRITICAL when the server's major release is not this one (16)
    #[arg(long, value_name = "MAJOR", value_parser = clap::value_parser!(u32).range(10..100))]
    pub expect_major: Option<u32>,
    /// Do not report extensions whose installed version differs from the available default
    #[arg(long)]
    pub no_extensions: bool,
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// A PostgreSQL release as `server_version_num` counts it: 16.4 is 160004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release(pub u32);

impl Release {
    pub fn major(self) -> u32 {
        self.0 / 10000
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 / 10000, self.0 % 10000)
    }
}

/// `16.4` or `16` (16.0); the majors since 10 have two parts.
pub fn parse_version(text: &str) -> Result<Release, String> {
    let bad = || format!("'{text}' is not a PostgreSQL release (e.g. 16.4)");
    let mut parts = text.trim().split('.');
    let major: u32 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let minor: u32 = match parts.next() {
        Some(m) => m.parse().map_err(|_| bad())?,
        None => 0,
    };
    if parts.next().is_some() || !(10..100).contains(&major) || minor > 9999 {
        return Err(bad());
    }
    Ok(Release(major * 10000 + minor))
}

const SQL: &str = "
SELECT current_setting('server_version_num')::int4 AS version_num,
       split_part(current_setting('server_version'), ' ', 1) AS version,
       extract(epoch FROM now())::float8 AS now";

// The release, and the extensions whose installed version is not the
// default of the files installed with the server (pg_available_extensions
// reads them): one row without an extension when none is behind.
const EXTENSIONS: &str = "
SELECT current_setting('server_version_num')::int4 AS version_num,
       split_part(current_setting('server_version'), ' ', 1) AS version,
       extract(epoch FROM now())::float8 AS now, x.*
FROM (SELECT 1) one LEFT JOIN (
  SELECT e.extname::text AS name, e.extversion AS installed, a.default_version AS available
    FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
   WHERE a.default_version IS DISTINCT FROM e.extversion
) x ON true
ORDER BY x.name";

/// What one run reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub release: Release,
    /// `16.4`, or `17beta1` as the server says it.
    pub version: String,
    /// The release the previous run saw, and how long ago, when it differs.
    pub changed_from: Option<(String, f64)>,
    /// Extensions not at the available default, per database visited.
    pub extensions: Visit<Vec<Extension>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub name: String,
    pub installed: String,
    pub available: String,
}

impl Check for Version {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[], None);
    const HINT: &'static str = "plan the minor upgrade (install the packages, restart: minor releases keep the data format) after reading the release notes for steps they require; for an extension run ALTER EXTENSION name UPDATE in each database listed";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  None: a release below --min-version is WARNING, another major than
  --expect-major CRITICAL, a release changed since the previous run WARNING
  once, and an extension whose installed version is not the default of the
  installed files WARNING, naming it and its database (--all-databases for
  every database).";
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, db, ctx)
    }

    /// The release against the options, the change since the previous run,
    /// and the extensions behind; each finding named, the worst first.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let args = judging.args;
        let mut findings = Findings::new();
        if let Some(major) = args.expect_major {
            if m.release.major() != major {
                findings.push(
                    Status::Critical,
                    format!("major {} where {major} is expected", m.release.major()),
                );
            }
        }
        if let Some(min) = minimum_for(m.release, &args.min_version) {
            if m.release < min {
                findings.push(
                    Status::Warning,
                    format!("{} is older than --min-version {min}", m.version),
                );
            }
        }
        if let Some((before, ago)) = &m.changed_from {
            findings.push(
                Status::Warning,
                format!(
                    "changed from {before} since the previous run {} ago (reported once)",
                    pretty_duration(*ago)
                ),
            );
        }
        let many = m.extensions.checked.len() > 1;
        let behind: Vec<String> = m
            .extensions
            .results()
            .flat_map(|(database, exts)| {
                exts.iter().map(move |e| {
                    let place = if many {
                        format!(" in {database}")
                    } else {
                        String::new()
                    };
                    format!(
                        "extension {} {} installed, {} available{place}",
                        e.name, e.installed, e.available
                    )
                })
            })
            .collect();
        if !behind.is_empty() {
            findings.push(
                Status::Warning,
                format!(
                    "{} not at the available version ({})",
                    count(behind.len(), "extension"),
                    behind.first().map_or("", String::as_str)
                ),
            );
        }
        let status = m.extensions.floor(findings.worst());
        let mut summary = findings.after(format!("PostgreSQL {}", m.version));
        summary.push_str(&m.extensions.unreachable_note());
        let perf = [
            PerfData::new("server_version_num", f64::from(m.release.0), Unit::Count),
            PerfData::new("extensions_behind", behind.len() as f64, Unit::Count).min(0.0),
        ];
        let mut details = m.extensions.unreachable_details();
        details.extend(behind);
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// The release as one row of `SQL` or `EXTENSIONS` gives it.
struct Server {
    release: Release,
    version: String,
    now: f64,
}

fn server(row: &postgres::Row) -> Result<Server, Error> {
    Ok(Server {
        release: Release(u32::try_from(get::<i32>(row, "version_num")?).unwrap_or(0)),
        version: get(row, "version")?,
        now: get(row, "now")?,
    })
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let mut seen = None;
    let extensions = if args.no_extensions {
        Visit::default()
    } else {
        let visit = databases::visit(&args.databases, db, &ctx.conn, ctx.timeout, |_, session| {
            let mut server_seen = None;
            let mut behind = Vec::new();
            for r in &session.query(EXTENSIONS)? {
                server_seen = Some(server(r)?);
                if let Some(name) = get::<Option<String>>(r, "name")? {
                    behind.push(Extension {
                        name,
                        installed: get(r, "installed")?,
                        available: get::<Option<String>>(r, "available")?.unwrap_or_default(),
                    });
                }
            }
            Ok((server_seen, behind))
        })?;
        visit.map(|(server_seen, behind)| {
            seen = seen.take().or(server_seen);
            behind
        })
    };
    let Server {
        release,
        version,
        now,
    } = match seen {
        Some(server) => server,
        None => server(&db.query_one(SQL)?)?,
    };
    // The release is kept only when it changes: a steady server writes nothing.
    let store = ctx.state_store(&args.state)?;
    let previous = match store.load() {
        Loaded::Found(s) => s.markers.get("version").cloned().map(|v| (v, s.taken_at)),
        Loaded::Missing | Loaded::Unusable(_) => None,
    };
    let changed_from = match &previous {
        Some((v, _)) if *v == version => None,
        Some((v, at)) => Some((v.clone(), (now - at).max(0.0))),
        None => None,
    };
    if previous.as_ref().map(|(v, _)| v) != Some(&version) {
        let mut snapshot = Snapshot {
            taken_at: now,
            ..Snapshot::default()
        };
        snapshot.markers.insert("version".into(), version.clone());
        store.save(&snapshot)?;
    }
    Ok(Measured {
        release,
        version,
        changed_from,
        extensions,
    })
}

/// The minimum that applies: the highest given for the server's major, else
/// the lowest given.
fn minimum_for(release: Release, minimums: &[Release]) -> Option<Release> {
    minimums
        .iter()
        .filter(|m| m.major() == release.major())
        .max()
        .or_else(|| minimums.iter().min())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, thresholds};

    fn args(argv: &[&str]) -> Args {
        crate::checks::testing::options(argv)
    }

    fn measured(version: &str) -> Measured {
        Measured {
            release: parse_version(version).unwrap(),
            version: version.into(),
            changed_from: None,
            extensions: Visit {
                checked: vec![("shop".into(), Vec::new())],
                unreachable: Vec::new(),
            },
        }
    }

    #[test]
    fn releases_parse_and_compare_as_the_server_counts_them() {
        assert_eq!(parse_version("16.4"), Ok(Release(160004)));
        assert_eq!(parse_version("17"), Ok(Release(170000)));
        assert_eq!(Release(120022).to_string(), "12.22");
        for bad in ["9.6.24", "16.x", "", "16.4.1", "1600"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
        let mins = [Release(150008), Release(160004)];
        assert_eq!(minimum_for(Release(160003), &mins), Some(Release(160004)));
        assert_eq!(minimum_for(Release(170000), &mins), Some(Release(150008)));
        assert_eq!(minimum_for(Release(140001), &mins), Some(Release(150008)));
        assert_eq!(minimum_for(Release(140001), &[]), None);
        let twice = [Release(160001), Release(160004)];
        assert_eq!(minimum_for(Release(160003), &twice), Some(Release(160004)));
    }

    #[test]
    fn an_old_minor_warns_and_a_wrong_major_is_critical() {
        let a = args(&["--min-version", "15.8", "--min-version", "16.4"]);
        let r = judge::<Version>(&measured("16.3"), &a, &thresholds::<Version>(None, None), 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "PostgreSQL 16.3; 16.3 is older than --min-version 16.4"
        );
        assert_eq!(
            judge::<Version>(&measured("16.4"), &a, &thresholds::<Version>(None, None), 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<Version>(&measured("17.0"), &a, &thresholds::<Version>(None, None), 0).status,
            Status::Ok
        );
        let a = args(&["--expect-major", "17", "--min-version", "16.4"]);
        let r = judge::<Version>(&measured("16.3"), &a, &thresholds::<Version>(None, None), 0);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "PostgreSQL 16.3; major 16 where 17 is expected; 16.3 is older than --min-version 16.4"
        );
        assert_eq!(
            perf(&r),
            ["server_version_num=160003", "extensions_behind=0;;;0"]
        );
    }

    #[test]
    fn a_change_and_extensions_behind_are_named() {
        let mut m = measured("16.4");
        m.changed_from = Some(("16.3".into(), 300.0));
        m.extensions.checked.push((
            "crm".into(),
            vec![Extension {
                name: "pg_trgm".into(),
                installed: "1.5".into(),
                available: "1.6".into(),
            }],
        ));
        let r = judge::<Version>(&m, &args(&[]), &thresholds::<Version>(None, None), 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "PostgreSQL 16.4; changed from 16.3 since the previous run 5 min 0 s ago (reported once); 1 extension not at the available version (extension pg_trgm 1.5 installed, 1.6 available in crm)"
        );
        assert_eq!(
            r.details,
            ["extension pg_trgm 1.5 installed, 1.6 available in crm"]
        );
    }
}
