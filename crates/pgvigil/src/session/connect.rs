//! Opening the session as libpq does: each host in turn (or in random
//! order), each with its own password and time limit, TLS tried and
//! dropped as allow and prefer say, and a host kept only when it is what
//! target_session_attrs asks for.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::auth_probe;
use super::chain;
use crate::conninfo::{ChannelBinding, ConnSettings, Endpoint, SslMode, TargetSessionAttrs};
use pgvigil_kit::error::Error;

/// Why no session was opened.
pub enum Failure {
    /// A setting that cannot work anywhere (a client key that cannot be read).
    Refused(Error),
    /// Each host tried, and why it was not used.
    Hosts(Vec<(Endpoint, String)>),
    /// PgBouncer's console refused the role (only a console session says so).
    NotAllowed,
}

/// How one host's attempt ended.
enum Attempt {
    Failed(String),
    NotAllowed,
}

/// The kind of server one pass over the hosts accepts.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
}

/// The first host that answers and is what the settings ask for.
pub fn first_fitting(
    settings: &ConnSettings,
    statement_timeout: Option<Duration>,
    lock_wait: Duration,
    patience: Duration,
) -> Result<Client, Failure> {
    let tls = match settings.tls.mode {
        SslMode::Disable => None,
        _ if settings.is_unix_socket() => None,
        _ => Some(Arc::new(
            crate::tls::client_config(&settings.tls).map_err(Failure::Refused)?,
        )),
    };
    let mut order = settings.endpoints.clone();
    if settings.load_balance {
        shuffle(&mut order);
    }
    // A console (PgBouncer's) has no recovery state to ask about.
    let console = statement_timeout.is_none();
    let passes: &[Want] = match settings.target_session_attrs {
        _ if console => &[Want::Any],
        TargetSessionAttrs::Any => &[Want::Any],
        TargetSessionAttrs::ReadWrite => &[Want::ReadWrite],
        TargetSessionAttrs::ReadOnly => &[Want::ReadOnly],
        TargetSessionAttrs::Primary => &[Want::Primary],
        TargetSessionAttrs::Standby => &[Want::Standby],
        TargetSessionAttrs::PreferStandby => &[Want::Standby, Want::Any],
    };
    let mut reasons = Vec::new();
    for want in passes {
        // The last pass's reasons are the ones that explain the failure.
        reasons.clear();
        for endpoint in &order {
            let attempt = Attempt::run(
                settings,
                endpoint,
                tls.as_ref(),
                Limits {
                    statement_timeout,
                    lock_wait,
                    patience,
                },
                *want,
            );
            match attempt {
                Ok(client) => return Ok(client),
                Err(Attempt::NotAllowed) => return Err(Failure::NotAllowed),
                Err(Attempt::Failed(reason)) => reasons.push((endpoint.clone(), reason)),
            }
        }
    }
    Err(Failure::Hosts(reasons))
}

/// One host's reason as it was; several hosts' each after its name.
pub fn combine(settings: &ConnSettings, reasons: Vec<(Endpoint, String)>) -> String {
    if settings.endpoints.len() == 1 && reasons.len() == 1 {
        return reasons
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .unwrap_or_default();
    }
    reasons
        .into_iter()
        .map(|(endpoint, reason)| format!("{}: {reason}", endpoint.describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How an attempt uses TLS.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    Plain,
    Tls,
    /// TLS when the server offers it, else plain on the same connection.
    TlsIfOffered,
}

#[derive(Clone, Copy)]
struct Limits {
    statement_timeout: Option<Duration>,
    lock_wait: Duration,
    patience: Duration,
}

impl Attempt {
    fn run(
        settings: &ConnSettings,
        endpoint: &Endpoint,
        tls: Option<&Arc<rustls::ClientConfig>>,
        limits: Limits,
        want: Want,
    ) -> Result<Client, Attempt> {
        // libpq never uses TLS on Unix sockets, whatever sslmode says.
        let tls = tls.filter(|_| !endpoint.is_socket());
        if let Some(required) = &settings.require_auth {
            let tls_first = tls.filter(|_| settings.tls.mode != SslMode::Allow);
            let asked =
                auth_probe::ask(settings, endpoint, tls_first.cloned()).map_err(Attempt::Failed)?;
            if !required.allows(asked.method()) {
                return Err(Attempt::Failed(format!(
                    "authentication method requirement \"{}\" failed: server requested {}",
                    required.methods.join(","),
                    asked.describe()
                )));
            }
        }
        // The TLS uses to try, in order: allow tries without first; prefer
        // takes TLS when the server offers it, and tries again without when
        // the server refused a session that did use TLS.
        let plan: &[Use] = match (tls.is_some(), settings.tls.mode) {
            (false, _) => &[Use::Plain],
            (true, SslMode::Allow) => &[Use::Plain, Use::Tls],
            (true, SslMode::Prefer) => &[Use::TlsIfOffered, Use::Plain],
            (true, _) => &[Use::Tls],
        };
        let mut first_reason: Option<String> = None;
        for (i, &with) in plan.iter().enumerate() {
            let config = config_for(settings, endpoint, with, limits, want);
            let connector = tls
                .filter(|_| with != Use::Plain)
                .map(|c| MakeRustlsConnect::new((**c).clone()));
            crate::tls::take_handshake();
            match connect_patiently(&config, connector, limits.patience) {
                Ok(mut client) => {
                    return match fits(&mut client, want) {
                        Ok(()) => Ok(client),
                        Err(reason) => Err(Attempt::Failed(reason)),
                    }
                }
                Err(e) => {
                    if limits.statement_timeout.is_none()
                        && e.as_db_error()
                            .is_some_and(|db| db.message() == "not allowed")
                    {
                        return Err(Attempt::NotAllowed);
                    }
                    let reason = reason(&e, settings, endpoint);
                    // Another try is worth it when the server said no to this
                    // kind of session (prefer: only if it was a TLS one).
                    let retry = i + 1 < plan.len()
                        && e.as_db_error().is_some()
                        && (with != Use::TlsIfOffered || crate::tls::take_handshake());
                    if !retry {
                        return Err(Attempt::Failed(pick(first_reason, reason)));
                    }
                    first_reason = Some(reason);
                }
            }
        }
        Err(Attempt::Failed(first_reason.unwrap_or_default()))
    }
}

/// Of the two tries' reasons, the one that says more than that pg_hba.conf
/// has no line for that kind of connection.
fn pick(first: Option<String>, last: String) -> String {
    match first {
        Some(first)
            if last.contains("no pg_hba.conf entry") && !first.contains("no pg_hba.conf entry") =>
        {
            first
        }
        _ => last,
    }
}

fn config_for(
    settings: &ConnSettings,
    endpoint: &Endpoint,
    with: Use,
    limits: Limits,
    want: Want,
) -> Config {
    let mut config = Config::new();
    if endpoint.is_socket() {
        config.host_path(&endpoint.host);
    } else if endpoint.host.is_empty() {
        config.host(&endpoint.address());
    } else {
        config.host(&endpoint.host);
    }
    if let Some(addr) = endpoint.hostaddr {
        config.hostaddr(addr);
    }
    config
        .port(endpoint.port)
        .user(&settings.user)
        .dbname(&settings.dbname)
        .application_name(&settings.application_name);
    let mut options: Vec<String> = settings.options.iter().cloned().collect();
    if let Some(timeout) = limits.statement_timeout {
        // Read-only from the first statement, unless the server's own
        // default must be read first (read-write, read-only): then it is
        // set right after that read, in the same round trip.
        if !matches!(want, Want::ReadWrite | Want::ReadOnly) {
            options.push("-c default_transaction_read_only=on".into());
        }
        options.push(format!(
            "-c statement_timeout={} -c lock_timeout={}",
            timeout.as_millis(),
            limits.lock_wait.as_millis()
        ));
    }
    if !options.is_empty() {
        config.options(&options.join(" "));
    }
    if let Some(password) = settings.password_for(endpoint) {
        config.password(password);
    }
    if let Some(timeout) = settings.connect_timeout {
        config.connect_timeout(timeout);
    }
    let keep = &settings.keepalives;
    config.keepalives(!keep.off);
    if let Some(idle) = keep.idle {
        config.keepalives_idle(idle);
    }
    if let Some(interval) = keep.interval {
        config.keepalives_interval(interval);
    }
    if let Some(count) = keep.count {
        config.keepalives_retries(count);
    }
    if let Some(timeout) = keep.user_timeout {
        config.tcp_user_timeout(timeout);
    }
    config.channel_binding(match settings.channel_binding {
        ChannelBinding::Disable => postgres::config::ChannelBinding::Disable,
        ChannelBinding::Prefer => postgres::config::ChannelBinding::Prefer,
        ChannelBinding::Require => postgres::config::ChannelBinding::Require,
    });
    config.ssl_mode(match with {
        Use::Plain => postgres::config::SslMode::Disable,
        Use::Tls => postgres::config::SslMode::Require,
        Use::TlsIfOffered => postgres::config::SslMode::Prefer,
    });
    if with == Use::Tls && settings.tls.direct {
        config.ssl_negotiation(postgres::config::SslNegotiation::Direct);
    }
    config
}

/// Connects; a server at its connection limit (SQLSTATE 53300) is asked
/// again for up to `patience`: a session the check itself just closed may
/// not have left the server yet.
fn connect_patiently(
    config: &Config,
    connector: Option<MakeRustlsConnect>,
    patience: Duration,
) -> Result<Client, postgres::Error> {
    let started = Instant::now();
    loop {
        let attempt = match &connector {
            None => config.connect(NoTls),
            Some(connector) => config.connect(connector.clone()),
        };
        match attempt {
            Err(e)
                if e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
                    && started.elapsed() < patience =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            attempt => return attempt,
        }
    }
}

/// Whether the server is in recovery (primary, standby).
const RECOVERY: &str = "SELECT pg_is_in_recovery()::text, ''";

/// The same and whether its sessions are read-only by default (read-write,
/// read-only); the session is pinned read-only in the same round trip.
const RECOVERY_AND_READ_ONLY: &str =
    "SELECT pg_is_in_recovery()::text, current_setting('transaction_read_only'); \
     SET default_transaction_read_only = on";

/// Whether the server is what this pass wants, asked in one round trip;
/// for read-write and read-only the session is pinned read-only in it.
fn fits(client: &mut Client, want: Want) -> Result<(), String> {
    let asked = match want {
        Want::Any => return Ok(()),
        Want::Primary | Want::Standby => client.simple_query(RECOVERY),
        Want::ReadWrite | Want::ReadOnly => client.simple_query(RECOVERY_AND_READ_ONLY),
    };
    let messages =
        asked.map_err(|e| format!("cannot ask whether it is a primary: {}", chain(&e)))?;
    let (recovery, read_only) = messages
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => {
                Some((row.get(0) == Some("true"), row.get(1) == Some("on")))
            }
            _ => None,
        })
        .ok_or("no answer to whether it is a primary")?;
    let verdict = match want {
        Want::Primary if recovery => Some("is a standby (in recovery), not the primary"),
        Want::Standby if !recovery => Some("is the primary, not a standby"),
        Want::ReadWrite if read_only => Some("is read-only (transaction_read_only on)"),
        Want::ReadOnly if !read_only => Some("accepts writes (transaction_read_only off)"),
        _ => None,
    };
    match verdict {
        Some(why) => Err(format!("{why}, and target_session_attrs asks otherwise")),
        None => Ok(()),
    }
}

/// The hosts in random order (load_balance_hosts=random): a seed from the
/// clock and the process is enough to spread monitoring runs.
fn shuffle(endpoints: &mut [Endpoint]) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ ((std::process::id() as u64) << 32) | 1;
    for i in (1..endpoints.len()).rev() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        endpoints.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// What went wrong with one host, in an operator's words.
fn reason(error: &postgres::Error, settings: &ConnSettings, endpoint: &Endpoint) -> String {
    if let Some(db) = error.as_db_error() {
        if db.code() == &SqlState::TOO_MANY_CONNECTIONS {
            return format!(
                "{}: the server is out of connection slots (max_connections); from PostgreSQL 16, \
                 reserved_connections and GRANT pg_use_reserved_connections TO \"{}\" keep monitoring working",
                db.message(),
                settings.user
            );
        }
        return db.message().to_string();
    }
    if let Some(why) = crate::tls::take_refusal() {
        return why;
    }
    let text = chain(error);
    if text.contains("password missing") {
        return "the server asks for a password and none was given \
                (set PGPASSWORD, PGPASSFILE or ~/.pgpass, or use --password-file or a service)"
            .into();
    }
    if text.contains("unsupported authentication method") {
        return unsupported_method(settings, endpoint);
    }
    if text.contains("server did not use channel binding") {
        return "channel_binding=require, but the server did not use channel binding \
                (it needs TLS and a scram-sha-256 password)"
            .into();
    }
    if text.contains("server does not support TLS") {
        return "the server does not accept TLS, and sslmode requires it".into();
    }
    let io_kind = std::iter::successors(error.source(), |e| (*e).source())
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(|e| e.kind());
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (is the server running and accepting connections there?)".into()
        }
        Some(std::io::ErrorKind::NotFound) if endpoint.is_socket() => {
            "no such socket (is the server running locally on this port?)".into()
        }
        Some(std::io::ErrorKind::PermissionDenied) => format!("permission denied ({text})"),
        _ if text.contains("timeout") => match settings.connect_timeout {
            Some(t) => format!("no answer within {} s (connect_timeout)", t.as_secs()),
            None => "no answer from server".into(),
        },
        _ => text,
    }
}

/// The driver says only "unsupported authentication method": ask the
/// server which, and name the way out.
fn unsupported_method(settings: &ConnSettings, endpoint: &Endpoint) -> String {
    let tls = match settings.tls.mode {
        SslMode::Disable | SslMode::Allow => None,
        _ if endpoint.is_socket() => None,
        _ => crate::tls::client_config(&settings.tls).ok().map(Arc::new),
    };
    let method = auth_probe::ask(settings, endpoint, tls)
        .map(|asked| asked.describe())
        .unwrap_or_else(|_| "Kerberos V5, GSSAPI or SSPI authentication".into());
    format!(
        "the server requested {method}, which pgvigil does not support: give the monitoring role \
         a 'cert' (client certificate) or 'scram-sha-256' line in pg_hba.conf"
    )
}
