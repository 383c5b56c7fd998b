//! Each keyword's value read as libpq reads it, with libpq's defaults and
//! its words for a bad value.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::keywords::Params;
use super::{os_user_name, pgpass, ConnSettings, Endpoint, Keepalives, TlsSettings};
use pgvigil_kit::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    PreferStandby,
}

/// The TLS versions allowed; rustls speaks 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsVersions {
    pub only_13: bool,
    pub only_12: bool,
}

/// The authentication methods the server may ask for (require_auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// `!method,…`: any method but these.
    pub negated: bool,
    pub methods: Vec<String>,
}

impl RequireAuth {
    const METHODS: [&'static str; 6] = ["password", "md5", "gss", "sspi", "scram-sha-256", "none"];

    fn parse(text: &str) -> Result<RequireAuth, Error> {
        let mut negated = None;
        let mut methods = Vec::new();
        for item in text.split(',') {
            let (neg, method) = match item.strip_prefix('!') {
                Some(m) => (true, m),
                None => (false, item),
            };
            if *negated.get_or_insert(neg) != neg {
                return Err(Error::Usage(format!(
                    "negative require_auth method \"{item}\" cannot be mixed with non-negative methods"
                )));
            }
            if !Self::METHODS.contains(&method) {
                return Err(Error::Usage(format!(
                    "invalid require_auth value: \"{method}\" (password, md5, gss, sspi, scram-sha-256, none, each may start with !)"
                )));
            }
            methods.push(method.to_string());
        }
        Ok(RequireAuth {
            negated: negated.unwrap_or(false),
            methods,
        })
    }

    /// Whether the server may use `method` (one of METHODS).
    pub fn allows(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method) != self.negated
    }
}

fn invalid(keyword: &str, value: &str, allowed: &str) -> Error {
    Error::Usage(format!("invalid {keyword} value: \"{value}\" ({allowed})"))
}

fn choose<T: Copy>(keyword: &str, value: &str, table: &[(&str, T)]) -> Result<T, Error> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            invalid(keyword, value, &names.join(", "))
        })
}

/// The keyword's value from `table`, or `default` when it is unset.
fn keyword<T: Copy>(
    params: &Params,
    name: &str,
    default: T,
    table: &[(&str, T)],
) -> Result<T, Error> {
    params
        .value(name)
        .map_or(Ok(default), |v| choose(name, v, table))
}

fn integer(keyword: &str, value: &str) -> Result<i64, Error> {
    value.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "invalid integer value \"{value}\" for connection option \"{keyword}\""
        ))
    })
}

/// The resolved settings from the keywords gathered.
pub fn settings(
    params: &Params,
    plugin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConnSettings, Error> {
    let home = env("HOME").map(PathBuf::from);
    let in_home = |file: &str| home.as_ref().map(|h| h.join(".postgresql").join(file));

    let endpoints = endpoints(
        params.value("host"),
        params.value("hostaddr"),
        params.get("port"),
    )?;
    let user = match params.value("user") {
        Some(user) => user.to_string(),
        None => os_user_name()
            .ok_or_else(|| Error::Usage("no user name: give -U/--username or set PGUSER".into()))?,
    };
    // psql would use the user name; a monitoring role rarely has a
    // database of its own, and every cluster has postgres (as the peers assume).
    let dbname = params.value("dbname").unwrap_or("postgres").to_string();

    let rootcert = params
        .value("sslrootcert")
        .map(PathBuf::from)
        .or_else(|| in_home("root.crt"));
    let system_roots = rootcert
        .as_deref()
        .is_some_and(|r| r.as_os_str() == "system");
    let modes = [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];
    let mode = match params.value("sslmode") {
        Some(mode) => choose("sslmode", mode, &modes)?,
        // The operating system's CAs say nothing about which host they vouch for.
        None if system_roots => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system_roots && mode != SslMode::VerifyFull && mode != SslMode::Disable {
        let name = modes
            .iter()
            .find(|(_, m)| *m == mode)
            .map_or("", |(n, _)| n);
        return Err(Error::Usage(format!(
            "weak sslmode \"{name}\" may not be used with sslrootcert=system (use \"verify-full\")"
        )));
    }
    let versions = tls_versions(
        params.value("ssl_min_protocol_version"),
        params.value("ssl_max_protocol_version"),
    )?;
    let direct = keyword(
        params,
        "sslnegotiation",
        false,
        &[("postgres", false), ("direct", true)],
    )?;
    if direct && matches!(mode, SslMode::Disable | SslMode::Allow | SslMode::Prefer) {
        return Err(Error::Usage(
            "weak sslmode may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")".into(),
        ));
    }
    let no_client_cert = match params.value("sslcertmode") {
        None => false,
        Some("require") => {
            return Err(Error::Usage(
                "sslcertmode=require is not supported: pgvigil cannot tell whether the server asked for a certificate; use a 'cert' line in pg_hba.conf".into(),
            ))
        }
        Some(v) => choose("sslcertmode", v, &[("allow", false), ("disable", true)])?,
    };
    keyword(
        params,
        "sslcompression",
        false,
        &[("0", false), ("1", true)],
    )?;
    let crl = params
        .value("sslcrl")
        .map(PathBuf::from)
        .or_else(|| in_home("root.crl").filter(|p| p.is_file()));
    let tls = TlsSettings {
        mode,
        rootcert,
        cert: params
            .value("sslcert")
            .map(PathBuf::from)
            .or_else(|| in_home("postgresql.crt")),
        key: params
            .value("sslkey")
            .map(PathBuf::from)
            .or_else(|| in_home("postgresql.key")),
        key_password: params.get("sslpassword").map(str::to_string),
        crl,
        crldir: params.value("sslcrldir").map(PathBuf::from),
        sni: keyword(params, "sslsni", true, &[("0", false), ("1", true)])?,
        versions,
        direct,
        no_client_cert,
    };

    let channel_binding = keyword(
        params,
        "channel_binding",
        ChannelBinding::Prefer,
        &[
            ("disable", ChannelBinding::Disable),
            ("prefer", ChannelBinding::Prefer),
            ("require", ChannelBinding::Require),
        ],
    )?;
    let target_session_attrs = keyword(
        params,
        "target_session_attrs",
        TargetSessionAttrs::Any,
        &[
            ("any", TargetSessionAttrs::Any),
            ("read-write", TargetSessionAttrs::ReadWrite),
            ("read-only", TargetSessionAttrs::ReadOnly),
            ("primary", TargetSessionAttrs::Primary),
            ("standby", TargetSessionAttrs::Standby),
            ("prefer-standby", TargetSessionAttrs::PreferStandby),
        ],
    )?;
    let load_balance = keyword(
        params,
        "load_balance_hosts",
        false,
        &[("disable", false), ("random", true)],
    )?;
    let require_auth = params
        .value("require_auth")
        .map(RequireAuth::parse)
        .transpose()?;
    if require_auth
        .as_ref()
        .is_some_and(|r| !r.negated && r.methods.iter().all(|m| m == "gss" || m == "sspi"))
    {
        return Err(Error::Usage(format!(
            "require_auth={} cannot be met: pgvigil has no GSSAPI or SSPI (see --help, Connecting)",
            params.value("require_auth").unwrap_or_default()
        )));
    }
    refuse_what_cannot_be_honoured(params)?;

    let connect_timeout = match params.value("connect_timeout") {
        None => None,
        Some(text) => {
            let secs = integer("connect_timeout", text)?;
            // libpq: zero or negative waits indefinitely, under 2 s means 2 s.
            (secs > 0).then(|| Duration::from_secs(secs.max(2) as u64))
        }
    };
    let seconds = |k: &str| -> Result<Option<Duration>, Error> {
        params
            .value(k)
            .map(|v| integer(k, v).map(|s| Duration::from_secs(s.max(0) as u64)))
            .transpose()
    };
    let keepalives = Keepalives {
        off: params
            .value("keepalives")
            .map(|v| integer("keepalives", v))
            .transpose()?
            == Some(0),
        idle: seconds("keepalives_idle")?,
        interval: seconds("keepalives_interval")?,
        count: params
            .value("keepalives_count")
            .map(|v| integer("keepalives_count", v).map(|c| c.clamp(0, u32::MAX as i64) as u32))
            .transpose()?,
        user_timeout: params
            .value("tcp_user_timeout")
            .map(|v| {
                integer("tcp_user_timeout", v).map(|ms| Duration::from_millis(ms.max(0) as u64))
            })
            .transpose()?,
    };
    let passfile = params
        .value("passfile")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pgpass")));

    Ok(ConnSettings {
        endpoints,
        dbname,
        user,
        password: params.get("password").map(str::to_string),
        passfile,
        tls,
        channel_binding,
        target_session_attrs,
        load_balance,
        require_auth,
        connect_timeout,
        application_name: params
            .value("application_name")
            .unwrap_or(plugin)
            .to_string(),
        options: params.value("options").map(str::to_string),
        keepalives,
    })
}

/// Settings a monitoring session cannot honour: said plainly, never ignored.
fn refuse_what_cannot_be_honoured(params: &Params) -> Result<(), Error> {
    if let Some(mode) = params.value("gssencmode") {
        choose(
            "gssencmode",
            mode,
            &[("disable", ()), ("prefer", ()), ("require", ())],
        )?;
        if mode == "require" {
            return Err(Error::Usage(
                "gssencmode=require cannot be met: pgvigil has no GSSAPI; encrypt with TLS instead (sslmode=verify-full)".into(),
            ));
        }
    }
    if let Some(value) = params.value("replication") {
        if !matches!(value, "0" | "false" | "off" | "no") {
            return Err(Error::Usage(
                "replication connections are not for monitoring: leave out \"replication\"".into(),
            ));
        }
    }
    if params.value("requirepeer").is_some() {
        return Err(Error::Usage(
            "requirepeer is not supported: the driver does not expose the socket's peer; restrict the socket directory's permissions instead".into(),
        ));
    }
    if let Some(v) = params.value("min_protocol_version") {
        if v != "3.0" {
            return Err(invalid(
                "min_protocol_version",
                v,
                "the driver speaks protocol 3.0",
            ));
        }
    }
    if let Some(v) = params.value("max_protocol_version") {
        choose(
            "max_protocol_version",
            v,
            &[("3.0", ()), ("3.2", ()), ("latest", ())],
        )?;
    }
    Ok(())
}

fn tls_versions(min: Option<&str>, max: Option<&str>) -> Result<TlsVersions, Error> {
    let table = [
        ("TLSv1", 10),
        ("TLSv1.1", 11),
        ("TLSv1.2", 12),
        ("TLSv1.3", 13),
    ];
    let min = min
        .map(|v| choose("ssl_min_protocol_version", v, &table))
        .transpose()?
        .unwrap_or(12);
    let max = max
        .map(|v| choose("ssl_max_protocol_version", v, &table))
        .transpose()?
        .unwrap_or(13);
    if min > max {
        return Err(Error::Usage(
            "invalid SSL protocol version range: ssl_min_protocol_version is above ssl_max_protocol_version".into(),
        ));
    }
    if max < 12 {
        return Err(Error::Usage(
            "ssl_max_protocol_version below TLSv1.2 cannot be met: pgvigil's TLS speaks 1.2 and 1.3 only".into(),
        ));
    }
    Ok(TlsVersions {
        only_13: min == 13,
        only_12: max == 12,
    })
}

/// The servers to try: host and hostaddr lists of equal length (either may
/// be missing), and one port for all or one per host.
fn endpoints(
    host: Option<&str>,
    hostaddr: Option<&str>,
    port: Option<&str>,
) -> Result<Vec<Endpoint>, Error> {
    let addrs: Vec<Option<IpAddr>> = match hostaddr {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|a| {
                if a.is_empty() {
                    return Ok(None);
                }
                a.parse()
                    .map(Some)
                    .map_err(|_| Error::Usage(format!("could not parse network address \"{a}\"")))
            })
            .collect::<Result<_, _>>()?,
    };
    let hosts: Vec<String> = match host {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None if !addrs.is_empty() => vec![String::new(); addrs.len()],
        None => vec![
            pgpass::DEFAULT_SOCKET_DIR.to_string(),
            "localhost".to_string(),
        ],
    };
    if !addrs.is_empty() && addrs.len() != hosts.len() {
        return Err(Error::Usage(format!(
            "could not match {} host names to {} hostaddr values",
            hosts.len(),
            addrs.len()
        )));
    }
    let ports: Vec<&str> = port.unwrap_or("").split(',').collect();
    if ports.len() != 1 && ports.len() != hosts.len() {
        return Err(Error::Usage(format!(
            "could not match {} port numbers to {} hosts",
            ports.len(),
            hosts.len()
        )));
    }
    let mut endpoints = Vec::with_capacity(hosts.len());
    for (i, host) in hosts.into_iter().enumerate() {
        let hostaddr = addrs.get(i).copied().flatten();
        let text = ports[if ports.len() == 1 { 0 } else { i }];
        let port = if text.is_empty() {
            5432
        } else {
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::Usage(format!("invalid port '{text}'")))?
        };
        // An empty entry is the default, as in libpq.
        let host = if host.is_empty() && hostaddr.is_none() {
            pgpass::DEFAULT_SOCKET_DIR.to_string()
        } else {
            host
        };
        endpoints.push(Endpoint {
            host,
            hostaddr,
            port,
        });
    }
    Ok(endpoints)
}
