//! check_pg_roles: an audit of roles against what the operator allows:
//! unexpected superusers, passwords about to expire, CREATEROLE or
//! BYPASSRLS outside an allow list, roles at their connection limit.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::Findings;
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

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

/// What one run reads: every role but the predefined pg_* ones, and
/// whether the monitoring role (`user`) sees other roles' sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub roles: Vec<Role>,
    pub sees_all: bool,
    pub user: String,
}

/// One role's attributes, password expiry (seconds left; None for never)
/// and sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Role {
    pub name: String,
    pub bootstrap: bool,
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub bypassrls: bool,
    pub login: bool,
    pub connlimit: i32,
    pub valid_until: Option<String>,
    pub expires_in: Option<f64>,
    pub sessions: i64,
    pub member_of: Vec<String>,
}

impl Check for Roles {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Seconds], None);
    const HINT: &'static str = "review the roles named above with \\du or SELECT * FROM pg_roles: ALTER ROLE ... NOSUPERUSER / NOCREATEROLE / NOBYPASSRLS where not needed, rotate the password and set a new VALID UNTIL, raise CONNECTION LIMIT or find the sessions piling up";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the time left before a login role's password expires
  (rolvaliduntil), as lower bounds: {defaults} (the default). An expired
  password is below any bound. A superuser other than the bootstrap superuser
  and the --allow-superuser roles is CRITICAL, as is a role at its connection
  limit (its next session is refused); CREATEROLE or BYPASSRLS on a role
  outside --allow-privileged is WARNING.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("7d:", "1d:"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(db, &ctx.conn.user)
    }

    /// Superusers other than the bootstrap one and the allowed ones, and roles
    /// at their connection limit, are CRITICAL; CREATEROLE or BYPASSRLS outside
    /// the allow list WARNING; the time left before each login role's password
    /// expires against `-w`/`-c` (lower bounds).
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args, verbose) = (judging.thresholds, judging.args, judging.verbose);
        let (roles, sees_all) = (&m.roles, m.sees_all);
        let allowed = |list: &[String], name: &str| list.iter().any(|a| a == name);

        // Each rule's offenders.
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

        let mut findings = Findings::new();
        findings.add(superusers_found(&superusers));
        findings.extend(at_limit.iter().map(|role| at_connection_limit(role)));
        findings.extend(
            expiring
                .iter()
                .filter_map(|(role, left)| password_expiry(role, *left, t)),
        );
        findings.extend(privileged.iter().map(|role| privileges(role)));
        let status = findings.worst();
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
            findings.texts().join("; ")
        };
        let mut details = Vec::new();
        if !sees_all {
            details.push(format!(
                    "role \"{}\" cannot see other roles' sessions (needs pg_monitor): connection limits not checked",
                    m.user
                ));
        }
        if verbose > 0 {
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
        CheckResult::new(status, summary)
            .perf(perfdata)
            .details(details)
    }
}

/// CRITICAL for superusers other than the bootstrap one and those allowed.
fn superusers_found(superusers: &[&Role]) -> Option<(Status, String)> {
    if superusers.is_empty() {
        return None;
    }
    let names: Vec<&str> = superusers.iter().map(|r| r.name.as_str()).collect();
    Some((
        Status::Critical,
        format!(
            "{} not allowed: {}",
            count(superusers.len(), "superuser"),
            names.join(", ")
        ),
    ))
}

/// CRITICAL: the role's next session is refused.
fn at_connection_limit(role: &Role) -> (Status, String) {
    (
        Status::Critical,
        format!(
            "{} at its connection limit ({} of {}): its next session is refused",
            role.name, role.sessions, role.connlimit
        ),
    )
}

/// The time left before a login role's password expires, against the
/// thresholds (lower bounds); None while it is far enough.
fn password_expiry(role: &Role, left: f64, t: &Thresholds) -> Option<(Status, String)> {
    let state = t.status(&[(Unit::Seconds, left)]);
    (state != Status::Ok).then(|| {
        let text = if left <= 0.0 {
            format!(
                "password of {} expired {} ago",
                role.name,
                pretty_duration(-left)
            )
        } else {
            format!(
                "password of {} expires in {}",
                role.name,
                pretty_duration(left)
            )
        };
        (state, text)
    })
}

/// WARNING for CREATEROLE or BYPASSRLS outside --allow-privileged.
fn privileges(role: &Role) -> (Status, String) {
    let what: Vec<&str> = [
        ("CREATEROLE", role.createrole),
        ("BYPASSRLS", role.bypassrls),
    ]
    .iter()
    .filter(|(_, has)| *has)
    .map(|(name, _)| *name)
    .collect();
    (
        Status::Warning,
        format!("{} has {} (not allowed)", role.name, what.join(" and ")),
    )
}

fn measure(db: &mut Session, user: &str) -> Result<Measured, Error> {
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
    Ok(Measured {
        roles,
        sees_all,
        user: user.to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn role(name: &str) -> Role {
        Role {
            name: name.into(),
            inherit: true,
            login: true,
            connlimit: -1,
            ..Role::default()
        }
    }

    fn measured(roles: Vec<Role>) -> Measured {
        let mut postgres = role("postgres");
        postgres.bootstrap = true;
        postgres.superuser = true;
        let mut all = vec![postgres];
        all.extend(roles);
        Measured {
            roles: all,
            sees_all: true,
            user: "nagios".into(),
        }
    }

    fn args(superusers: &[&str], privileged: &[&str]) -> Args {
        Args {
            superusers: superusers.iter().map(|s| s.to_string()).collect(),
            privileged: privileged.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_clean_server_is_ok() {
        let r = judge::<Roles>(
            &measured(vec![role("app")]),
            &args(&[], &[]),
            &thresholds::<Roles>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "2 roles, 2 login; 1 superuser as allowed; no password expiring, no role at its connection limit"
        );
        assert!(r.details.is_empty());
    }

    #[test]
    fn default_expiry_bounds_are_7_and_1_day_left() {
        let t = thresholds::<Roles>(None, None);
        let at = |left: f64| {
            let mut app = role("app");
            app.expires_in = Some(left);
            judge::<Roles>(&measured(vec![app]), &args(&[], &[]), &t, 0)
        };
        assert_eq!(at(7.0 * 86400.0).status, Status::Ok);
        assert_eq!(at(7.0 * 86400.0 - 1.0).status, Status::Warning);
        assert_eq!(at(86399.0).status, Status::Critical);
        let expired = at(-3600.0);
        assert_eq!(expired.status, Status::Critical);
        assert_eq!(expired.summary, "password of app expired 1 h 0 min ago");
        assert_eq!(
            perf(&expired)[5],
            "password_expires_in=-3600s;604800:;86400:"
        );
        // Infinity never expires; a role that cannot log in is not judged.
        let mut never = role("app");
        never.expires_in = Some(f64::INFINITY);
        let mut nologin = role("group");
        nologin.login = false;
        nologin.expires_in = Some(-1.0);
        assert_eq!(
            judge::<Roles>(&measured(vec![never, nologin]), &args(&[], &[]), &t, 0).status,
            Status::Ok
        );
    }

    #[test]
    fn unexpected_superusers_and_full_roles_are_critical_privileges_warn() {
        let t = thresholds::<Roles>(None, None);
        let mut admin = role("admin");
        admin.superuser = true;
        let mut ops = role("ops");
        ops.createrole = true;
        ops.bypassrls = true;
        let mut app = role("app");
        app.connlimit = 2;
        app.sessions = 2;
        let m = measured(vec![admin, ops.clone(), app]);
        let r = reported::<Roles>(judge::<Roles>(&m, &args(&[], &[]), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "1 superuser not allowed: admin; app at its connection limit (2 of 2): its next session is refused; ops has CREATEROLE and BYPASSRLS (not allowed)"
        );
        assert!(r.hint.unwrap().starts_with("review the roles named above"));
        let r = judge::<Roles>(&measured(vec![ops]), &args(&[], &[]), &t, 0);
        assert_eq!(r.status, Status::Warning);
        let mut allowed = role("admin");
        allowed.superuser = true;
        assert_eq!(
            judge::<Roles>(&measured(vec![allowed]), &args(&["admin"], &[]), &t, 0).status,
            Status::Ok
        );
    }

    #[test]
    fn blind_to_sessions_says_so_and_verbose_lists_every_role() {
        let t = thresholds::<Roles>(None, None);
        let mut app = role("app");
        app.connlimit = 1;
        app.sessions = 0;
        app.member_of = vec!["readers".into()];
        app.valid_until = Some("2027-01-01 00:00:00+00".into());
        let mut m = measured(vec![app]);
        m.sees_all = false;
        let r = judge::<Roles>(&m, &args(&[], &[]), &t, 1);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details,
            [
                "role \"nagios\" cannot see other roles' sessions (needs pg_monitor): connection limits not checked",
                "postgres: superuser, login",
                "app: login; connection limit 1 (0 in use); valid until 2027-01-01 00:00:00+00; member of readers"
            ]
        );
    }
}
