//! Where and as whom to connect: command-line options first, then the libpq
//! environment, then psql's defaults.

pub mod pgpass;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

#[derive(Debug, Clone, clap::Args)]
#[command(
    next_help_heading = "Connection (unset options fall back to PGHOST, PGPORT, … as psql does)"
)]
pub struct ConnArgs {
    /// Host name, IP address, or Unix socket directory [default: PGHOST, else /var/run/postgresql then localhost]
    #[arg(short = 'H', long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port [default: PGPORT, else 5432]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<String>,
    /// Database [default: PGDATABASE, else postgres]
    #[arg(short = 'd', long, value_name = "NAME")]
    pub dbname: Option<String>,
    /// User [default: PGUSER, else the operating-system user]
    #[arg(short = 'U', long, value_name = "USER")]
    pub username: Option<String>,
    /// File whose first line is the password [default: PGPASSWORD, else PGPASSFILE or ~/.pgpass]
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, Error> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Usage(format!(
                    "invalid PGSSLMODE '{other}' (disable, allow, prefer, require, verify-ca, verify-full)"
                )))
            }
        })
    }
}

/// Everything needed to open the connection, resolved.
#[derive(Clone, PartialEq)]
pub struct ConnSettings {
    /// Host names or socket directories, tried in order.
    pub hosts: Vec<String>,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
    /// The password file the password came from, if it did: another
    /// database may match another line of it.
    pub passfile: Option<PathBuf>,
}

// Hand-written so that a password can never reach a log through `{:?}`.
impl std::fmt::Debug for ConnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSettings")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl ConnSettings {
    /// Resolves the settings from options and an environment lookup (injected
    /// so that tests need not touch the process environment).
    pub fn resolve(
        args: &ConnArgs,
        plugin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnSettings, Error> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let hosts: Vec<String> = match args.host.clone().or_else(|| env("PGHOST")) {
            Some(list) => list.split(',').map(|h| h.trim().to_string()).collect(),
            None => vec![
                pgpass::DEFAULT_SOCKET_DIR.to_string(),
                "localhost".to_string(),
            ],
        };
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(Error::Usage("invalid -H/--host: empty host name".into()));
        }
        let port_text = args.port.clone().or_else(|| env("PGPORT"));
        let port = match port_text {
            None => 5432,
            Some(text) => text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::Usage(format!("invalid port '{text}'")))?,
        };
        let user = match args.username.clone().or_else(|| env("PGUSER")) {
            Some(user) => user,
            None => os_user_name().ok_or_else(|| {
                Error::Usage("no user name: give -U/--username or set PGUSER".into())
            })?,
        };
        // psql would use the user name; a monitoring role rarely has a
        // database of its own, and every cluster has postgres (as the peers assume).
        let dbname = args
            .dbname
            .clone()
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| "postgres".to_string());
        let sslmode = match env("PGSSLMODE") {
            Some(mode) => SslMode::parse(&mode)?,
            None => SslMode::Prefer,
        };
        let home = env("HOME").map(PathBuf::from);
        let sslrootcert = env("PGSSLROOTCERT")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".postgresql/root.crt")));
        let connect_timeout = match env("PGCONNECT_TIMEOUT") {
            None => None,
            Some(text) => {
                let secs: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| Error::Usage(format!("invalid PGCONNECT_TIMEOUT '{text}'")))?;
                // libpq: zero or negative means wait indefinitely, under 2 s means 2 s.
                (secs > 0).then(|| Duration::from_secs(secs.max(2) as u64))
            }
        };
        let application_name = env("PGAPPNAME").unwrap_or_else(|| plugin.to_string());

        let mut passfile = None;
        let password = match &args.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => env("PGPASSWORD").or_else(|| {
                let file = env("PGPASSFILE")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".pgpass")))?;
                let password = pgpass_lookup(&file, &hosts[0], port, &dbname, &user);
                passfile = Some(file);
                password
            }),
        };

        Ok(ConnSettings {
            hosts,
            port,
            dbname,
            user,
            password,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name,
            passfile,
        })
    }

    /// The same settings for another database of the same server; a password
    /// from a password file is looked up again, as its lines may name databases.
    pub fn for_database(&self, dbname: &str) -> ConnSettings {
        let mut settings = self.clone();
        settings.dbname = dbname.to_string();
        if let Some(file) = &self.passfile {
            settings.password = pgpass_lookup(file, &self.hosts[0], self.port, dbname, &self.user);
        }
        settings
    }

    /// The same settings for another node of the same cluster (a standby
    /// of this primary): same role, database and TLS, another host and port.
    pub fn for_node(&self, host: &str, port: u16) -> ConnSettings {
        let mut settings = self.clone();
        settings.hosts = vec![host.to_string()];
        settings.port = port;
        if let Some(file) = &self.passfile {
            settings.password = pgpass_lookup(file, host, port, &self.dbname, &self.user);
        }
        settings
    }

    /// True when every host is a Unix socket directory.
    pub fn is_unix_socket(&self) -> bool {
        self.hosts.iter().all(|h| h.starts_with('/'))
    }

    /// How error messages name the server: `socket /tmp port 5432` or `db1:5432`.
    pub fn target(&self) -> String {
        let hosts = self
            .hosts
            .iter()
            .map(|h| {
                if h.starts_with('/') {
                    format!("socket {h}/.s.PGSQL.{}", self.port)
                } else {
                    format!("{h}:{}", self.port)
                }
            })
            .collect::<Vec<_>>();
        hosts.join(" or ")
    }
}

fn pgpass_lookup(
    file: &std::path::Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let lookup = pgpass::Lookup {
        host,
        port,
        dbname,
        user,
    };
    pgpass::password_from_file(file, &lookup)
}

fn read_password_file(path: &PathBuf) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --password-file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// The effective user's login name, as libpq takes the default user.
fn os_user_name() -> Option<String> {
    // SAFETY: getpwuid_r fills our buffer; we read the name only on success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name);
        Some(name.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args() -> ConnArgs {
        ConnArgs {
            host: None,
            port: None,
            dbname: None,
            username: None,
            password_file: None,
        }
    }

    fn resolve(args: &ConnArgs, vars: &[(&str, &str)]) -> Result<ConnSettings, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnSettings::resolve(args, "check_pg_test", &|k| map.get(k).cloned())
    }

    #[test]
    fn psql_defaults_when_nothing_is_set() {
        let s = resolve(&args(), &[("PGUSER", "mon")]).unwrap();
        assert_eq!(s.hosts, vec!["/var/run/postgresql", "localhost"]);
        assert_eq!(s.port, 5432);
        // Not psql's user name: the database every cluster has.
        assert_eq!(s.dbname, "postgres");
        assert_eq!(s.sslmode, SslMode::Prefer);
        assert_eq!(s.application_name, "check_pg_test");
        assert_eq!(s.password, None);
    }

    #[test]
    fn environment_is_honoured() {
        let s = resolve(
            &args(),
            &[
                ("PGHOST", "db1,db2"),
                ("PGPORT", "6432"),
                ("PGDATABASE", "app"),
                ("PGUSER", "mon"),
                ("PGPASSWORD", "pw"),
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", "/etc/ca.pem"),
                ("PGCONNECT_TIMEOUT", "1"),
                ("PGAPPNAME", "nagios"),
            ],
        )
        .unwrap();
        assert_eq!(s.hosts, vec!["db1", "db2"]);
        assert_eq!(
            (s.port, s.dbname.as_str(), s.user.as_str()),
            (6432, "app", "mon")
        );
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.application_name, "nagios");
        assert!(
            !format!("{s:?}").contains("pw\""),
            "password must not be printed"
        );
    }

    #[test]
    fn options_beat_the_environment() {
        let mut a = args();
        a.host = Some("/tmp".into());
        a.port = Some("5555".into());
        a.username = Some("alice".into());
        a.dbname = Some("db".into());
        let s = resolve(&a, &[("PGHOST", "x"), ("PGPORT", "1"), ("PGUSER", "bob")]).unwrap();
        assert_eq!(
            (s.hosts[0].as_str(), s.port, s.user.as_str()),
            ("/tmp", 5555, "alice")
        );
        assert!(s.is_unix_socket());
        assert_eq!(s.target(), "socket /tmp/.s.PGSQL.5555");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let mut a = args();
        a.port = Some("http".into());
        assert_eq!(
            resolve(&a, &[("PGUSER", "u")]).unwrap_err(),
            Error::Usage("invalid port 'http'".into())
        );
        assert!(matches!(
            resolve(&args(), &[("PGUSER", "u"), ("PGSSLMODE", "maybe")]),
            Err(Error::Usage(_))
        ));
    }
}
