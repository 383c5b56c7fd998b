//! libpq's connection keywords, and the two ways of writing them in one
//! string: `key=value …` and `postgresql://user@host:port/db?key=value`.

use std::collections::BTreeMap;

use pgvigil_kit::error::Error;

/// Every keyword libpq 18 knows, with the environment variable that fills it
/// when nothing else set it.
pub const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("service", Some("PGSERVICE")),
    ("servicefile", Some("PGSERVICEFILE")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("replication", None),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslpassword", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("require_auth", Some("PGREQUIREAUTH")),
];

/// The keyword's canonical spelling, or a usage error naming it.
pub fn known(keyword: &str) -> Result<&'static str, Error> {
    KEYWORDS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == keyword)
        .ok_or_else(|| Error::Usage(format!("invalid connection option \"{keyword}\"")))
}

/// Settings by keyword; a later value of a keyword replaces an earlier one.
/// Hand-written Debug: a password must never reach a log through `{:?}`.
#[derive(Clone, Default, PartialEq)]
pub struct Params(BTreeMap<&'static str, String>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_secret(k) { "<hidden>" } else { v.as_str() };
                (k, shown)
            }))
            .finish()
    }
}

/// Keywords whose values are secrets.
pub fn is_secret(keyword: &str) -> bool {
    matches!(keyword, "password" | "sslpassword")
}

impl Params {
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.0.get(keyword).map(String::as_str)
    }

    /// The value, when set and not empty (libpq's "use the default").
    pub fn value(&self, keyword: &str) -> Option<&str> {
        self.get(keyword).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, keyword: &str, value: impl Into<String>) -> Result<(), Error> {
        self.0.insert(known(keyword)?, value.into());
        Ok(())
    }

    /// Sets the keyword only when nothing set it before (services, environment).
    pub fn fill(&mut self, keyword: &'static str, value: impl Into<String>) {
        self.0.entry(keyword).or_insert_with(|| value.into());
    }

    /// Sets each of `other`'s keywords that nothing set before.
    pub fn fill_from(&mut self, other: Params) {
        for (keyword, value) in other.0 {
            self.fill(keyword, value);
        }
    }

    /// Every keyword of `other` replaces this one's.
    pub fn merge(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    pub fn is_set(&self, keyword: &str) -> bool {
        self.0.contains_key(keyword)
    }
}

/// psql's rule for `-d`: a value with `=`, or a URI, is a connection string.
pub fn is_connection_string(text: &str) -> bool {
    text.contains('=') || uri_rest(text).is_some()
}

/// A connection string in either form.
pub fn parse(text: &str) -> Result<Params, Error> {
    match uri_rest(text) {
        Some(rest) => parse_uri(rest),
        None => parse_key_values(text),
    }
}

fn uri_rest(text: &str) -> Option<&str> {
    text.strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
}

/// `key = value` pairs separated by white space; a value is bare (a
/// backslash escapes the next character) or single-quoted (`\'`, `\\`).
pub fn parse_key_values(text: &str) -> Result<Params, Error> {
    let bad = |why: String| Error::Usage(format!("{why} in connection info string"));
    let mut params = Params::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(bad(format!("missing \"=\" after \"{key}\"")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated quoted string".into())),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad("unterminated quoted string".into())),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        params.set(&key, value)?;
    }
}

/// `[user[:password]@][host[:port][,…]][/dbname][?key=value[&…]]`, the part
/// after the scheme, percent-decoded as libpq decodes it.
fn parse_uri(rest: &str) -> Result<Params, Error> {
    let mut params = Params::default();
    let (before_query, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    // The user part ends at the first '@', as in libpq: an '@' in a
    // password is written %40.
    let (userinfo, hostlist) = match authority.find('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            params.set("user", decode(user)?)?;
        }
        if let Some(password) = password {
            // The error must not show the password it could not decode.
            let password = decode(password).map_err(|_| {
                Error::Usage("invalid percent-encoding in the URI's password".into())
            })?;
            params.set("password", password)?;
        }
    }
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostlist.split(',') {
            let (host, port) = split_host_port(spec)?;
            hosts.push(decode(host)?);
            ports.push(decode(port.unwrap_or(""))?);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            params.set("host", hosts.join(","))?;
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.set("port", ports.join(","))?;
        }
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        params.set("dbname", decode(path)?)?;
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::Usage(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{pair}\""
            )));
        };
        let key = decode(key)?;
        let value = match decode(value) {
            Err(_) if is_secret(&key) => {
                return Err(Error::Usage(format!(
                    "invalid percent-encoding in the URI's {key}"
                )))
            }
            decoded => decoded?,
        };
        // JDBC's spelling, which libpq also takes.
        if key == "ssl" && value == "true" {
            params.set("sslmode", "require")?;
        } else {
            params.set(&key, value)?;
        }
    }
    Ok(params)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(spec: &str) -> Result<(&str, Option<&str>), Error> {
    if let Some(inner) = spec.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return Err(Error::Usage(format!(
                "end of IPv6 host address not found in URI: \"{spec}\""
            )));
        };
        let host = &inner[..end];
        if host.is_empty() {
            return Err(Error::Usage(format!(
                "IPv6 host address may not be empty in URI: \"{spec}\""
            )));
        }
        return match &inner[end + 1..] {
            "" => Ok((host, None)),
            after => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(Error::Usage(format!(
                    "unexpected character after IPv6 host address in URI: \"{spec}\""
                ))),
            },
        };
    }
    Ok(match spec.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (spec, None),
    })
}

/// Percent-decoding; `%00` and a malformed escape are errors, as in libpq.
pub fn decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit());
            match hex {
                Some(0) => {
                    return Err(Error::Usage(format!(
                        "forbidden value %00 in percent-encoded value: \"{text}\""
                    )))
                }
                Some(b) => out.push(b),
                None => {
                    return Err(Error::Usage(format!(
                        "invalid percent-encoded token: \"{text}\""
                    )))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::Usage(format!("percent-encoded value is not UTF-8: \"{text}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &Params, k: &str) -> Option<String> {
        p.get(k).map(str::to_string)
    }

    #[test]
    fn key_values_with_quotes_escapes_and_spaces() {
        let p = parse(r"host=db1 port = 5433 dbname='my db' user=o\'neil password='it''s'")
            .unwrap_err();
        // '…''…' is not an escape in libpq: the second quote opens a new value.
        assert!(matches!(p, Error::Usage(_)), "{p:?}");
        let p = parse(r"host=db1 port = 5433 dbname='my \'db\'' user=o\ neil").unwrap();
        assert_eq!(get(&p, "host").as_deref(), Some("db1"));
        assert_eq!(get(&p, "port").as_deref(), Some("5433"));
        assert_eq!(get(&p, "dbname").as_deref(), Some("my 'db'"));
        assert_eq!(get(&p, "user").as_deref(), Some("o neil"));
        let p = parse("dbname='' host=x").unwrap();
        assert_eq!(get(&p, "dbname").as_deref(), Some(""));
    }

    #[test]
    fn key_value_errors_name_the_fault() {
        assert_eq!(
            parse("host=x bogus=1").unwrap_err(),
            Error::Usage("invalid connection option \"bogus\"".into())
        );
        assert_eq!(
            parse("host=x port").unwrap_err(),
            Error::Usage("missing \"=\" after \"port\" in connection info string".into())
        );
        assert_eq!(
            parse("host='x").unwrap_err(),
            Error::Usage("unterminated quoted string in connection info string".into())
        );
    }

    #[test]
    fn uris_in_full() {
        let p = parse(
            "postgresql://mon:s%40cret@db1:5433,[::1]:5434,db3/app%20db?sslmode=verify-full&target_session_attrs=primary",
        )
        .unwrap();
        assert_eq!(get(&p, "user").as_deref(), Some("mon"));
        assert_eq!(get(&p, "password").as_deref(), Some("s@cret"));
        assert_eq!(get(&p, "host").as_deref(), Some("db1,::1,db3"));
        assert_eq!(get(&p, "port").as_deref(), Some("5433,5434,"));
        assert_eq!(get(&p, "dbname").as_deref(), Some("app db"));
        assert_eq!(get(&p, "sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get(&p, "target_session_attrs").as_deref(), Some("primary"));
        assert!(!format!("{p:?}").contains("s@cret"));
    }

    #[test]
    fn uris_short_and_odd() {
        assert_eq!(parse("postgres://").unwrap(), Params::default());
        let p = parse("postgresql:///app?host=%2Fvar%2Frun%2Fpostgresql").unwrap();
        assert_eq!(get(&p, "dbname").as_deref(), Some("app"));
        assert_eq!(get(&p, "host").as_deref(), Some("/var/run/postgresql"));
        let p = parse("postgresql://%2Ftmp:5555").unwrap();
        assert_eq!(get(&p, "host").as_deref(), Some("/tmp"));
        assert_eq!(get(&p, "port").as_deref(), Some("5555"));
        let p = parse("postgresql://h?ssl=true").unwrap();
        assert_eq!(get(&p, "sslmode").as_deref(), Some("require"));
        assert!(is_connection_string("postgres://h"));
        assert!(is_connection_string("host=h"));
        assert!(!is_connection_string("app"));
    }

    #[test]
    fn errors_never_show_a_password() {
        for uri in [
            "postgresql://u:hunter2%zz@h/db",
            "postgresql://u@h/db?password=hunter2%zz",
            "postgresql://u@h/db?sslpassword=hunter2%0",
        ] {
            let err = parse(uri).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn uri_errors() {
        for bad in [
            "postgresql://h/db?nokey",
            "postgresql://h/db?bogus=1",
            "postgresql://[::1/db",
            "postgresql://[::1]x/db",
            "postgresql://h/d%zz",
            "postgresql://h/d%00",
            "postgresql://h/d%4",
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad}");
        }
    }
}
