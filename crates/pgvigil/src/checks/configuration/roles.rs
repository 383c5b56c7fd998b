//! check_pg_roles: an audit of roles against what the operator allows:
//! unexpected superusers, passwords about to expire, CREATEROLE or
//! BYPASSRLS outside an allow list, roles at their connection limit.

use crate::session::get;
use crate::units::pretty_duration;
use crate::words::count;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Roles;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Roles")]
pub struct Args {
    /// A role that may be superuser (repeatable); the bootstrap superuser always may
    #[arg(long = "allow-superuser", value_name = "ROLE")]
    pub superusers: Vec<String>,
    /// A role that may have CREATEROLE or BYPASSRLS (repeatable)
    #[arg(long = "allow-privileged", value_name = "ROLE")]
    pub privileged: Vec<String>,
}

// pg_roles is readable by every role (passwords masked); sessions per role
// need pg_read_all_stats (pg_monitor) to count other roles' sessions.
const SQL: &str = "
SELECT r.rolname::text AS name, r.oid = 10 AS bootstrap, r.rolsuper, r.rolinherit,
       r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolcanlogin, r.rolconnlimit,
       r.rolvaliduntil::text AS valid_until,
       extract(epoch FROM r.rolvaliduntil - now())::float8 AS expires_in,
       coalesce(s.sessions, 0) AS sessions,
       ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON m.roleid = b.oid
             WHERE m.member = r.oid ORDER BY 1) AS member_of,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all
FROM pg_roles r
LEFT JOIN (SELECT usesysid, count(*) AS sessions FROM pg_stat_get_activity(NULL)
           WHERE backend_type = 'client backend' GROUP BY usesysid) s ON s.usesysid = r.oid
WHERE r.rolname !~ '^pg_'
ORDER BY 1";

struct Role {
    name: String,
    bootstrap: bool,
    superuser: bool,
    inherit: bool,
    createrole: bool,
    createdb: bool,
    bypassrls: bool,
    login: bool,
    connlimit: i32,
    valid_until: Option<String>,
    expires_in: Option<f64>,
    sessions: i64,
    member_of: Vec<String>,
}

impl Check for Roles {
    const DISPLAY: &'static str = "ROLES";
    const ABOUT: &'static str = "Audit of roles: superusers not allowed, login passwords about to expire, CREATEROLE or BYPASSRLS outside an allow list, roles at their connection limit.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Seconds],
        bare: None,
        labels: &[],
    };
    const HINT: &'static str = "review the roles named above with \\du or SELECT * FROM pg_roles: ALTER ROLE ... NOSUPERUSER / NOCREATEROLE / NOBYPASSRLS where not needed, rotate the password and set a new VALID UNTIL, raise CONNECTION LIMIT or find the sessions piling up";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the time left before a login role's password expires
  (rolvaliduntil), as lower bounds: -w 7d: -c 1d: (the default). An expired
  password is below any bound. A superuser other than the bootstrap superuser
  and the --allow-superuser roles is CRITICAL, as is a role at its connection
  limit (its next session is refused); CREATEROLE or BYPASSRLS on a role
  outside --allow-privileged is WARNING.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("7d:", "1d:"));
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let rows = db.query(SQL)?;
        let mut roles = Vec::new();
        let mut sees_all = true;
        for row in &rows {
            sees_all = get(row, "sees_all")?;
            roles.push(Role {
                name: get(row, "name")?,
                bootstrap: get(row, "bootstrap")?,
                superuser: get(row, "rolsuper")?,
                inherit: get(row, "rolinherit")?,
                createrole: get(row, "rolcreaterole")?,
                createdb: get(row, "rolcreatedb")?,
                bypassrls: get(row, "rolbypassrls")?,
                login: get(row, "rolcanlogin")?,
                connlimit: get(row, "rolconnlimit")?,
                valid_until: get(row, "valid_until")?,
                expires_in: get(row, "expires_in")?,
                sessions: get(row, "sessions")?,
                member_of: get(row, "member_of")?,
            });
        }
        let allowed = |list: &[String], name: &str| list.iter().any(|a| a == name);

        // Measure: each rule's offenders.
        let superusers: Vec<&Role> = roles
            .iter()
            .filter(|r| r.superuser && !r.bootstrap && !allowed(&args.superusers, &r.name))
            .collect();
        let privileged: Vec<&Role> = roles
            .iter()
            .filter(|r| !r.superuser && (r.createrole || r.bypassrls))
            .filter(|r| !allowed(&args.privileged, &r.name))
            .collect();
        // Infinity and no expiry alike never expire.
        let expiring: Vec<(&Role, f64)> = roles
            .iter()
            .filter(|r| r.login)
            .filter_map(|r| Some((r, r.expires_in.filter(|s| s.is_finite())?)))
            .collect();
        let at_limit: Vec<&Role> = roles
            .iter()
            .filter(|r| sees_all && r.connlimit >= 0 && r.sessions >= i64::from(r.connlimit))
            .filter(|r| r.login)
            .collect();

        // Compare
        let t = &ctx.thresholds;
        let expiry_states: Vec<Status> = expiring
            .iter()
            .map(|(_, left)| t.status(&[(Unit::Seconds, *left)]))
            .collect();
        let mut status: Status = expiry_states.iter().copied().collect();
        if !privileged.is_empty() {
            status = status.worst(Status::Warning);
        }
        if !superusers.is_empty() || !at_limit.is_empty() {
            status = status.worst(Status::Critical);
        }

        // Report
        let names = |list: &[&Role]| {
            list.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut findings = Vec::new();
        if !superusers.is_empty() {
            findings.push(format!(
                "{} not allowed: {}",
                count(superusers.len(), "superuser"),
                names(&superusers)
            ));
        }
        for role in &at_limit {
            findings.push(format!(
                "{} at its connection limit ({} of {}): its next session is refused",
                role.name, role.sessions, role.connlimit
            ));
        }
        for ((role, left), state) in expiring.iter().zip(&expiry_states) {
            if *state != Status::Ok {
                findings.push(if *left <= 0.0 {
                    format!(
                        "password of {} expired {} ago",
                        role.name,
                        pretty_duration(-left)
                    )
                } else {
                    format!(
                        "password of {} expires in {}",
                        role.name,
                        pretty_duration(*left)
                    )
                });
            }
        }
        for role in &privileged {
            let what: Vec<&str> = [
                ("CREATEROLE", role.createrole),
                ("BYPASSRLS", role.bypassrls),
            ]
            .iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| *name)
            .collect();
            findings.push(format!(
                "{} has {} (not allowed)",
                role.name,
                what.join(" and ")
            ));
        }
        let login = roles.iter().filter(|r| r.login).count();
        let summary = if findings.is_empty() {
            let supers = roles.iter().filter(|r| r.superuser).count();
            format!(
                "{}, {} login; {} as allowed; no password expiring, no role at its connection limit",
                count(roles.len(), "role"),
                login,
                count(supers, "superuser")
            )
        } else {
            findings.join("; ")
        };
        let mut details = Vec::new();
        if !sees_all {
            details.push(format!(
                "role \"{}\" cannot see other roles' sessions (needs pg_monitor): connection limits not checked",
                ctx.conn.user
            ));
        }
        if ctx.verbose > 0 {
            details.extend(roles.iter().map(describe));
        }
        let soonest = expiring
            .iter()
            .map(|(_, left)| *left)
            .fold(None, |min: Option<f64>, v| {
                Some(min.map_or(v, |m| m.min(v)))
            });
        let mut perfdata = vec![
            PerfData::new("roles", roles.len() as f64, Unit::Count).min(0.0),
            PerfData::new("login_roles", login as f64, Unit::Count).min(0.0),
            PerfData::new(
                "unexpected_superusers",
                superusers.len() as f64,
                Unit::Count,
            )
            .min(0.0),
            PerfData::new(
                "unexpected_privileged",
                privileged.len() as f64,
                Unit::Count,
            )
            .min(0.0),
            PerfData::new("at_connection_limit", at_limit.len() as f64, Unit::Count).min(0.0),
        ];
        if let Some(left) = soonest {
            perfdata.push(
                PerfData::new("password_expires_in", left.round(), Unit::Seconds).thresholds(t),
            );
        }
        Ok(CheckResult::new(status, summary)
            .perf(perfdata)
            .details(details))
    }
}

/// One role as the -v listing shows it.
fn describe(r: &Role) -> String {
    let mut attributes = Vec::new();
    for (name, has) in [
        ("superuser", r.superuser),
        ("login", r.login),
        ("createrole", r.createrole),
        ("createdb", r.createdb),
        ("bypassrls", r.bypassrls),
        ("noinherit", !r.inherit),
    ] {
        if has {
            attributes.push(name);
        }
    }
    let mut line = format!("{}: {}", r.name, attributes.join(", "));
    if r.connlimit >= 0 {
        line.push_str(&format!(
            "; connection limit {} ({} in use)",
            r.connlimit, r.sessions
        ));
    }
    if let Some(until) = &r.valid_until {
        line.push_str(&format!("; valid until {until}"));
    }
    if !r.member_of.is_empty() {
        line.push_str(&format!("; member of {}", r.member_of.join(", ")));
    }
    line
}
