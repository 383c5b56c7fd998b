//! Which sessions a session check judges: by user, database and application
//! name (regexes, matched here so that no SQL is built from what a user
//! typed) and by backend type. A nightly pg_dump or a reporting role is left
//! out by name; what was left out is counted, so a filter never hides
//! silently.

use regex::Regex;

use crate::session::databases::parse_regex;
use pgvigil_kit::words::plural;

/// Every client session unless told otherwise; autovacuum workers,
/// walsenders and the others only when asked for.
pub const CLIENT_BACKEND: &str = "client backend";

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Sessions")]
pub struct SessionFilter {
    /// Only sessions of users whose name matches REGEX (repeatable: any may match)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include_user: Vec<Regex>,
    /// Leave out sessions of users whose name matches REGEX (repeatable)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude_user: Vec<Regex>,
    /// Only sessions connected to databases whose name matches REGEX (repeatable)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include_db: Vec<Regex>,
    /// Leave out sessions connected to databases whose name matches REGEX (repeatable)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude_db: Vec<Regex>,
    /// Only sessions whose application_name matches REGEX (repeatable)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include_app: Vec<Regex>,
    /// Leave out sessions whose application_name matches REGEX, e.g. '^pg_dump$' (repeatable)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude_app: Vec<Regex>,
    /// Backend types judged, as pg_stat_activity.backend_type names them ('autovacuum worker', walsender, …), or all (repeatable) [default: client backend]
    #[arg(long, value_name = "TYPE", value_parser = parse_backend_type)]
    pub backend_type: Vec<String>,
}

fn parse_backend_type(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "an empty backend type (client backend, autovacuum worker, walsender, …, or all)"
                .into(),
        );
    }
    // Hyphens for spaces, so that a type needs no quoting in a command line.
    Ok(text.replace('-', " "))
}

/// One session, or a group of alike sessions, as the filters see it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Who<'a> {
    pub user: &'a str,
    pub database: &'a str,
    pub app: &'a str,
    pub backend_type: &'a str,
}

impl Who<'_> {
    /// `app@shop, psql`; a backend type other than a client's leads
    /// (`autovacuum worker, @shop`): what a filter would be written from.
    pub fn label(&self) -> String {
        let mut label = format!("{}@{}", self.user, self.database);
        if !self.backend_type.is_empty() && self.backend_type != CLIENT_BACKEND {
            label = format!("{}, {label}", self.backend_type);
        }
        if !self.app.is_empty() {
            label = format!("{label}, {}", pgvigil_kit::output::one_line(self.app));
        }
        label
    }
}

/// What the filters make of one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Judged,
    /// Of a judged type, left out by a name filter: counted as excluded.
    Excluded,
    /// Of a type not judged: neither judged nor counted.
    OtherType,
}

/// A database's name from its oid, "" when not bound to one or unknown.
pub fn database_name(names: &std::collections::BTreeMap<u32, String>, datid: Option<u32>) -> &str {
    datid.and_then(|d| names.get(&d)).map_or("", String::as_str)
}

impl SessionFilter {
    /// Whether the session is judged, left out by name, or of another type.
    pub fn verdict(&self, who: &Who) -> Verdict {
        if !self.judges_type(who.backend_type) {
            Verdict::OtherType
        } else if self.keeps_names(who) {
            Verdict::Judged
        } else {
            Verdict::Excluded
        }
    }

    /// Whether the session's backend type is one judged.
    pub fn judges_type(&self, backend_type: &str) -> bool {
        if self.backend_type.is_empty() {
            return backend_type == CLIENT_BACKEND;
        }
        self.backend_type
            .iter()
            .any(|t| t == "all" || t == backend_type)
    }

    /// Whether a session of a judged type passes the name filters.
    pub fn keeps_names(&self, who: &Who) -> bool {
        kept(&self.include_user, &self.exclude_user, who.user)
            && kept(&self.include_db, &self.exclude_db, who.database)
            && kept(&self.include_app, &self.exclude_app, who.app)
    }

    /// Whether a database name is needed to judge a session.
    pub fn reads_databases(&self) -> bool {
        !self.include_db.is_empty() || !self.exclude_db.is_empty()
    }

    /// What the filters leave out, for the long output: `user !~ ^report`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, include, exclude) in [
            ("user", &self.include_user, &self.exclude_user),
            ("database", &self.include_db, &self.exclude_db),
            ("application", &self.include_app, &self.exclude_app),
        ] {
            parts.extend(include.iter().map(|r| format!("{what} ~ {r}")));
            parts.extend(exclude.iter().map(|r| format!("{what} !~ {r}")));
        }
        parts.join(", ")
    }

    /// `2 sessions excluded by filters (application !~ ^pg_dump$)`, or None
    /// when none was.
    pub fn excluded_line(&self, excluded: i64) -> Option<String> {
        (excluded > 0).then(|| {
            format!(
                "{excluded} session{} excluded by filters ({})",
                plural(excluded),
                self.describe()
            )
        })
    }
}

fn kept(include: &[Regex], exclude: &[Regex], name: &str) -> bool {
    (include.is_empty() || include.iter().any(|r| r.is_match(name)))
        && !exclude.iter().any(|r| r.is_match(name))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A filter from `--flag value` pairs, as a command line gives them.
    pub fn filter(options: &[(&str, &str)]) -> SessionFilter {
        let mut f = SessionFilter::default();
        for (flag, value) in options {
            let regex = || parse_regex(value).unwrap();
            match *flag {
                "include-user" => f.include_user.push(regex()),
                "exclude-user" => f.exclude_user.push(regex()),
                "include-db" => f.include_db.push(regex()),
                "exclude-db" => f.exclude_db.push(regex()),
                "include-app" => f.include_app.push(regex()),
                "exclude-app" => f.exclude_app.push(regex()),
                "backend-type" => f.backend_type.push(parse_backend_type(value).unwrap()),
                other => panic!("no such filter {other}"),
            }
        }
        f
    }

    fn who<'a>(user: &'a str, database: &'a str, app: &'a str) -> Who<'a> {
        Who {
            user,
            database,
            app,
            backend_type: CLIENT_BACKEND,
        }
    }

    #[test]
    fn client_backends_unless_types_are_named() {
        let none = SessionFilter::default();
        assert!(none.judges_type("client backend"));
        assert!(!none.judges_type("autovacuum worker"));
        let f = filter(&[
            ("backend-type", "autovacuum-worker"),
            ("backend-type", "walsender"),
        ]);
        assert!(f.judges_type("autovacuum worker"));
        assert!(f.judges_type("walsender"));
        assert!(!f.judges_type("client backend"));
        assert!(filter(&[("backend-type", "all")]).judges_type("checkpointer"));
        assert!(parse_backend_type(" ").is_err());
    }

    #[test]
    fn includes_any_excludes_any_on_each_name() {
        let f = filter(&[
            ("include-user", "^app"),
            ("include-user", "^report$"),
            ("exclude-app", "^pg_dump$"),
            ("exclude-db", "^template"),
        ]);
        assert!(f.keeps_names(&who("app_rw", "shop", "psql")));
        assert!(f.keeps_names(&who("report", "shop", "")));
        assert!(!f.keeps_names(&who("nagios", "shop", "psql")));
        assert!(!f.keeps_names(&who("app_rw", "shop", "pg_dump")));
        assert!(!f.keeps_names(&who("app_rw", "template1", "psql")));
        assert!(f.reads_databases());
        assert!(!filter(&[("exclude-app", "x")]).reads_databases());
        assert_eq!(
            f.excluded_line(2).unwrap(),
            "2 sessions excluded by filters (user ~ ^app, user ~ ^report$, database !~ ^template, application !~ ^pg_dump$)"
        );
        assert_eq!(f.excluded_line(0), None);
    }
}
