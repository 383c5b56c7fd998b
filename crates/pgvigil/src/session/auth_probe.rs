//! Asks a server which authentication it wants, and leaves without
//! answering: what require_auth must know before a password is sent, and
//! what names a method the driver lacks (GSSAPI, SSPI, Kerberos V5). The
//! server logs nothing for a client that leaves at that point.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::conninfo::{ConnSettings, Endpoint, SslMode};

/// What the server asked for first.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Nothing,
    Cleartext,
    Md5,
    Sasl,
    Gss,
    Sspi,
    KerberosV5,
    Scm,
    Other(i32),
}

impl Asked {
    /// require_auth's name for it.
    pub fn method(&self) -> &'static str {
        match self {
            Asked::Nothing => "none",
            Asked::Cleartext => "password",
            Asked::Md5 => "md5",
            Asked::Sasl => "scram-sha-256",
            Asked::Gss => "gss",
            Asked::Sspi => "sspi",
            Asked::KerberosV5 | Asked::Scm | Asked::Other(_) => "unknown",
        }
    }

    /// In libpq's words: "server requested …".
    pub fn describe(&self) -> String {
        match self {
            Asked::Nothing => "no authentication".into(),
            Asked::Cleartext => "a cleartext password".into(),
            Asked::Md5 => "a hashed password".into(),
            Asked::Sasl => "SASL (scram-sha-256) authentication".into(),
            Asked::Gss => "GSSAPI (Kerberos) authentication".into(),
            Asked::Sspi => "SSPI authentication".into(),
            Asked::KerberosV5 => "Kerberos V5 authentication".into(),
            Asked::Scm => "SCM credentials".into(),
            Asked::Other(code) => format!("authentication of type {code}"),
        }
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// The server's first authentication request to this user for this
/// database; TLS first when `tls` is given, as the real session will be.
pub fn ask(
    settings: &ConnSettings,
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Asked, String> {
    let limit = settings.connect_timeout.unwrap_or(Duration::from_secs(10));
    let mut stream: Box<dyn Stream> = if endpoint.is_socket() {
        let path = format!("{}/.s.PGSQL.{}", endpoint.host, endpoint.port);
        let s = UnixStream::connect(&path).map_err(|e| format!("{path}: {e}"))?;
        s.set_read_timeout(Some(limit)).ok();
        Box::new(s)
    } else {
        let host = endpoint.address();
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), endpoint.port))
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("cannot resolve {host}"))?;
        let s = TcpStream::connect_timeout(&addr, limit).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(limit)).ok();
        s.set_nodelay(true).ok();
        match tls {
            None => Box::new(s),
            Some(config) => start_tls(s, config, endpoint, settings.tls.mode)?,
        }
    };
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608i32.to_be_bytes());
    for (key, value) in [
        ("user", settings.user.as_str()),
        ("database", settings.dbname.as_str()),
        ("application_name", settings.application_name.as_str()),
    ] {
        startup.extend_from_slice(key.as_bytes());
        startup.push(0);
        startup.extend_from_slice(value.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut packet = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend(startup);
    stream.write_all(&packet).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    read_request(&mut stream)
}

fn start_tls(
    mut s: TcpStream,
    config: Arc<rustls::ClientConfig>,
    endpoint: &Endpoint,
    mode: SslMode,
) -> Result<Box<dyn Stream>, String> {
    // SSLRequest: length 8, code 80877103.
    s.write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
        .map_err(|e| e.to_string())?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).map_err(|e| e.to_string())?;
    if answer[0] != b'S' {
        if matches!(
            mode,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        ) {
            return Err("the server does not accept TLS, and sslmode requires it".into());
        }
        return Ok(Box::new(s));
    }
    let name = if endpoint.host.is_empty() || endpoint.is_socket() {
        endpoint.address()
    } else {
        endpoint.host.clone()
    };
    let name = ServerName::try_from(name).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, s);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| crate::tls::take_refusal().unwrap_or_else(|| e.to_string()))?;
    }
    Ok(Box::new(tls))
}

/// The first message: an authentication request, or the server's error.
fn read_request(stream: &mut Box<dyn Stream>) -> Result<Asked, String> {
    let mut header = [0u8; 5];
    stream
        .read_exact(&mut header)
        .map_err(|e| format!("no answer to the startup message: {e}"))?;
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if !(4..=65536).contains(&len) {
        return Err("not a PostgreSQL server's answer".into());
    }
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body).map_err(|e| e.to_string())?;
    match header[0] {
        b'R' if body.len() >= 4 => Ok(
            match i32::from_be_bytes([body[0], body[1], body[2], body[3]]) {
                0 => Asked::Nothing,
                2 => Asked::KerberosV5,
                3 => Asked::Cleartext,
                5 => Asked::Md5,
                6 => Asked::Scm,
                7 => Asked::Gss,
                9 => Asked::Sspi,
                10 => Asked::Sasl,
                code => Asked::Other(code),
            },
        ),
        b'E' => Err(error_message(&body)),
        _ => Err("not a PostgreSQL server's answer".into()),
    }
}

/// The M (message) field of an ErrorResponse.
fn error_message(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|field| field.strip_prefix(b"M"))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_else(|| "the server refused the connection".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_give_their_message() {
        let body = b"SFATAL\0C28000\0Mno pg_hba.conf entry for host\0\0";
        assert_eq!(error_message(body), "no pg_hba.conf entry for host");
        assert_eq!(error_message(b"\0"), "the server refused the connection");
    }

    #[test]
    fn methods_in_require_auth_words() {
        assert_eq!(Asked::Sasl.method(), "scram-sha-256");
        assert_eq!(Asked::Nothing.method(), "none");
        assert_eq!(Asked::Gss.describe(), "GSSAPI (Kerberos) authentication");
    }
}
