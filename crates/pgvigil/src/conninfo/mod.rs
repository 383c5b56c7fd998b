//! Where and as whom to connect, resolved with libpq's rules: the options,
//! with a connection string or URI in `-d` expanded in place as psql expands
//! it, then the service file, then the environment, then the defaults.

pub mod keywords;
pub mod pgpass;
pub mod service;
mod values;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use keywords::Params;
use pgvigil_kit::error::Error;
pub use values::{ChannelBinding, RequireAuth, SslMode, TargetSessionAttrs, TlsVersions};

#[derive(Clone, Default, clap::Args)]
#[command(
    next_help_heading = "Connection (libpq's rules: a connection string or URI in -d, a service, then PGHOST, PGPORT, … as psql)"
)]
pub struct ConnArgs {
    /// Host names, IP addresses or Unix socket directories, comma-separated, tried in order [default: PGHOST, else /var/run/postgresql then localhost]
    #[arg(short = 'H', long, value_name = "HOST[,HOST…]")]
    pub host: Option<String>,
    /// Port, or one port per host [default: PGPORT, else 5432]
    #[arg(short = 'p', long, value_name = "PORT[,PORT…]")]
    pub port: Option<String>,
    /// Database, or a connection string ('host=… sslmode=…') or URI (postgresql://…) whose settings override -H, -p and -U as in psql [default: PGDATABASE, else postgres]
    #[arg(short = 'd', long, value_name = "NAME|CONNINFO")]
    pub dbname: Option<String>,
    /// User [default: PGUSER, else the operating-system user]
    #[arg(short = 'U', long, value_name = "USER")]
    pub username: Option<String>,
    /// File whose first line is the password [default: PGPASSWORD, else PGPASSFILE or ~/.pgpass]
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Service in the connection service file (PGSERVICEFILE or ~/.pg_service.conf, then PGSYSCONFDIR/pg_service.conf) [default: PGSERVICE]
    #[arg(long, visible_alias = "dbservice", value_name = "NAME")]
    pub service: Option<String>,
    /// disable, allow, prefer, require, verify-ca or verify-full [default: PGSSLMODE, else prefer]
    #[arg(long, value_name = "MODE")]
    pub sslmode: Option<String>,
    /// CA certificates the server's must chain to, or 'system' [default: PGSSLROOTCERT, else ~/.postgresql/root.crt]
    #[arg(long, value_name = "FILE")]
    pub sslrootcert: Option<String>,
    /// Client certificate, for a 'cert' line in pg_hba.conf [default: PGSSLCERT, else ~/.postgresql/postgresql.crt]
    #[arg(long, value_name = "FILE")]
    pub sslcert: Option<String>,
    /// The client certificate's private key, readable by its owner only [default: PGSSLKEY, else ~/.postgresql/postgresql.key]
    #[arg(long, value_name = "FILE")]
    pub sslkey: Option<String>,
}

// Hand-written: a connection string in -d may hold a password.
impl std::fmt::Debug for ConnArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dbname = self.dbname.as_deref().map(|d| {
            if keywords::is_connection_string(d) {
                "<connection string>"
            } else {
                d
            }
        });
        f.debug_struct("ConnArgs")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &dbname)
            .field("username", &self.username)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// One server to try: a host name or socket directory, the address to use
/// instead of resolving the name (hostaddr), and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
}

impl Endpoint {
    pub fn is_socket(&self) -> bool {
        self.hostaddr.is_none() && self.host.starts_with('/')
    }

    /// The address the connection goes to: hostaddr when given.
    pub fn address(&self) -> String {
        match self.hostaddr {
            Some(addr) => addr.to_string(),
            None => self.host.clone(),
        }
    }

    /// `socket /tmp/.s.PGSQL.5432`, `db1:5432`, `db1 (10.0.0.1):5432`.
    pub fn describe(&self) -> String {
        match (self.is_socket(), self.hostaddr) {
            (true, _) => format!("socket {}/.s.PGSQL.{}", self.host, self.port),
            (false, Some(addr)) if !self.host.is_empty() => {
                format!("{} ({addr}):{}", self.host, self.port)
            }
            (false, _) => format!("{}:{}", self.address(), self.port),
        }
    }
}

/// TLS as libpq's ssl* settings ask for it, the defaults filled in.
#[derive(Clone, PartialEq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// CA certificates to check the server's against, `system` for the
    /// operating system's; under allow/prefer/require only when the file exists.
    pub rootcert: Option<PathBuf>,
    /// The client certificate and key, used when the certificate file exists.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The passphrase of an encrypted key (sslpassword).
    pub key_password: Option<String>,
    pub crl: Option<PathBuf>,
    pub crldir: Option<PathBuf>,
    /// Send the host name in the handshake (sslsni).
    pub sni: bool,
    pub versions: TlsVersions,
    /// TLS from the first byte, without asking (sslnegotiation=direct).
    pub direct: bool,
    /// Never present a client certificate (sslcertmode=disable).
    pub no_client_cert: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .field("rootcert", &self.rootcert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Whether the server's certificate is checked against `rootcert`:
    /// always under verify-*, and under the weaker modes when the file is
    /// there (libpq's rule, kept for servers set up before verify-ca).
    pub fn verifies_chain(&self) -> bool {
        match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Disable => false,
            _ => self
                .rootcert
                .as_deref()
                .is_some_and(|r| r.as_os_str() != "system" && r.is_file()),
        }
    }

    /// Plain HTTPS settings for a client of another service (Patroni's API):
    /// encrypted, the chain checked when a CA is given, the name too under verify-full.
    pub fn for_https(mode: SslMode, rootcert: Option<PathBuf>) -> TlsSettings {
        TlsSettings {
            mode,
            rootcert,
            cert: None,
            key: None,
            key_password: None,
            crl: None,
            crldir: None,
            sni: true,
            versions: TlsVersions::default(),
            direct: false,
            no_client_cert: false,
        }
    }
}

/// Everything needed to open the connection, resolved.
#[derive(Clone, PartialEq)]
pub struct ConnSettings {
    /// The servers to try, in order.
    pub endpoints: Vec<Endpoint>,
    pub dbname: String,
    pub user: String,
    /// A password given outright (option, connection string, service,
    /// PGPASSWORD); otherwise the password file is asked for each host.
    pub password: Option<String>,
    pub passfile: Option<PathBuf>,
    pub tls: TlsSettings,
    pub channel_binding: ChannelBinding,
    pub target_session_attrs: TargetSessionAttrs,
    /// Try the hosts in random order (load_balance_hosts=random).
    pub load_balance: bool,
    pub require_auth: Option<RequireAuth>,
    /// Bounds each host's attempt, as in libpq.
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
    /// Server options given by the user (options, PGOPTIONS), sent before
    /// the suite's own, which therefore win.
    pub options: Option<String>,
    pub keepalives: Keepalives,
}

/// TCP keepalive settings (keepalives, keepalives_idle, …, tcp_user_timeout).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keepalives {
    pub off: bool,
    pub idle: Option<Duration>,
    pub interval: Option<Duration>,
    pub count: Option<u32>,
    pub user_timeout: Option<Duration>,
}

// Hand-written so that a password can never reach a log through `{:?}`.
impl std::fmt::Debug for ConnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSettings")
            .field("endpoints", &self.endpoints)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls)
            .field("target_session_attrs", &self.target_session_attrs)
            .finish_non_exhaustive()
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
        let params = gather(args, &env)?;
        values::settings(&params, plugin, &env)
    }

    /// The same settings for another database of the same server.
    pub fn for_database(&self, dbname: &str) -> ConnSettings {
        let mut settings = self.clone();
        settings.dbname = dbname.to_string();
        settings
    }

    /// The same settings for another node of the same cluster (a standby
    /// of this primary): same role, database and TLS, another host and port.
    pub fn for_node(&self, host: &str, port: u16) -> ConnSettings {
        let mut settings = self.clone();
        settings.endpoints = vec![Endpoint {
            host: host.to_string(),
            hostaddr: None,
            port,
        }];
        settings.target_session_attrs = TargetSessionAttrs::Any;
        settings
    }

    /// The first endpoint's port, for a node named without one.
    pub fn port(&self) -> u16 {
        self.endpoints[0].port
    }

    /// The addresses connected to (hostaddr when given), in order.
    pub fn hosts(&self) -> Vec<String> {
        self.endpoints.iter().map(Endpoint::address).collect()
    }

    /// The password for one endpoint: the one given, else the password
    /// file's line for that host, port, database and user.
    pub fn password_for(&self, endpoint: &Endpoint) -> Option<String> {
        if self.password.is_some() {
            return self.password.clone();
        }
        let file = self.passfile.as_deref()?;
        let host = if endpoint.host.is_empty() {
            endpoint.address()
        } else {
            endpoint.host.clone()
        };
        pgpass::password_from_file(
            file,
            &pgpass::Lookup {
                host: &host,
                port: endpoint.port,
                dbname: &self.dbname,
                user: &self.user,
            },
        )
    }

    /// True when every host is a Unix socket directory.
    pub fn is_unix_socket(&self) -> bool {
        self.endpoints.iter().all(Endpoint::is_socket)
    }

    /// How error messages name the server: `socket /tmp/.s.PGSQL.5432` or `db1:5432`.
    pub fn target(&self) -> String {
        self.endpoints
            .iter()
            .map(Endpoint::describe)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// The keywords from the options, `-d`, the service and the environment,
/// each source filling only what the ones before it left unset.
fn gather(args: &ConnArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Params, Error> {
    let mut params = Params::default();
    // psql passes these before the database name, so a connection string
    // given as the database overrides them; empty options count as unset.
    let options = [
        ("host", &args.host),
        ("port", &args.port),
        ("user", &args.username),
        ("service", &args.service),
        ("sslmode", &args.sslmode),
        ("sslrootcert", &args.sslrootcert),
        ("sslcert", &args.sslcert),
        ("sslkey", &args.sslkey),
    ];
    for (keyword, value) in options {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            params.set(keyword, value)?;
        }
    }
    if let Some(path) = &args.password_file {
        params.set("password", read_password_file(path)?)?;
    }
    if let Some(dbname) = args.dbname.as_deref().filter(|d| !d.is_empty()) {
        if keywords::is_connection_string(dbname) {
            params.merge(keywords::parse(dbname)?);
        } else {
            params.set("dbname", dbname)?;
        }
    }
    let service = params
        .get("service")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| env("PGSERVICE"));
    if let Some(service) = service {
        let servicefile = params
            .get("servicefile")
            .map(str::to_string)
            .or_else(|| env("PGSERVICEFILE"));
        let home = env("HOME").map(PathBuf::from);
        let files = service::files(
            servicefile.as_deref(),
            home.as_deref(),
            env("PGSYSCONFDIR").as_deref(),
        );
        params.fill_from(service::lookup(&service, &files)?);
    }
    for (keyword, var) in keywords::KEYWORDS {
        if let Some(value) = var.and_then(env) {
            params.fill(keyword, value);
        }
    }
    Ok(params)
}

fn read_password_file(path: &Path) -> Result<String, Error> {
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
    // SAFETY: geteuid cannot fail.
    crate::filesystem::user_name(unsafe { libc::geteuid() })
}

#[cfg(test)]
mod tests;
