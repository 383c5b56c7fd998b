//! JSON documents over HTTP(S), for the HA managers' REST APIs (Patroni).
//! TLS follows the connection's settings with libpq's meanings: an https
//! URL is at least encrypted; the certificate is checked against sslrootcert
//! under verify-ca/verify-full (or when that file exists), and against
//! --ca-file, host name included, when one is given; a client certificate
//! goes to an API that asks for one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conninfo::{ConnSettings, SslMode, TlsSettings};
use pgvigil_kit::error::Error;

/// A blocking client for one run: every request bounded by `timeout`.
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
}

/// A request that got no usable answer: what an operator reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

/// TLS files of the API's own, as check_patroni takes them.
#[derive(Debug, Clone, Default)]
pub struct Https {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Client {
    /// A client; `https` when the URL is https.
    pub fn new(
        conn: &ConnSettings,
        https: Option<Https>,
        timeout: Duration,
    ) -> Result<Client, Error> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("pgvigil/", env!("CARGO_PKG_VERSION")));
        if let Some(https) = https {
            for file in [&https.ca_file, &https.cert_file, &https.key_file]
                .into_iter()
                .flatten()
            {
                std::fs::metadata(file)
                    .map_err(|e| Error::Usage(format!("cannot read {}: {e}", file.display())))?;
            }
            let mut tls = match https.ca_file {
                Some(ca) => TlsSettings::for_https(SslMode::VerifyFull, Some(ca)),
                None => {
                    let mode = match conn.tls.mode {
                        SslMode::VerifyCa | SslMode::VerifyFull => conn.tls.mode,
                        _ => SslMode::Require,
                    };
                    TlsSettings::for_https(mode, conn.tls.rootcert.clone())
                }
            };
            tls.key = https.key_file.or_else(|| https.cert_file.clone());
            tls.cert = https.cert_file;
            builder = builder.tls_config(Arc::new(crate::tls::client_config(&tls)?));
        }
        Ok(Client {
            agent: builder.build(),
            timeout,
        })
    }

    /// GET `url` as JSON. An error status with a JSON body (Patroni answers
    /// 503 with its document) is still a document.
    pub fn json(&self, url: &str) -> Result<serde_json::Value, Failure> {
        let response = match self.agent.get(url).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(t)) => {
                return Err(Failure(transport_failure(&t, self.timeout)))
            }
        };
        let status = response.status();
        let body = response
            .into_string()
            .map_err(|e| Failure(format!("HTTP {status}, body unreadable: {e}")))?;
        serde_json::from_str(&body).map_err(|_| {
            let start: String = body.chars().take(80).collect();
            Failure(format!(
                "HTTP {status}, not JSON: {}",
                pgvigil_kit::output::one_line(&start)
            ))
        })
    }
}

/// `connection refused`, `timed out`: what went wrong, without ureq's
/// repetition of the URL the summary already names.
fn transport_failure(t: &ureq::Transport, timeout: Duration) -> String {
    use std::error::Error as _;
    if t.to_string().contains("timed out") {
        return format!("timed out after {:.1} s", timeout.as_secs_f64());
    }
    let cause = t
        .source()
        .map(|e| e.to_string())
        .or_else(|| t.message().map(str::to_string))
        .unwrap_or_else(|| t.kind().to_string());
    // "Connection refused (os error 111)" reads as "connection refused".
    let cause = match cause.split_once(" (os error ") {
        Some((text, _)) => text.to_string(),
        None => cause,
    };
    let cause = pgvigil_kit::output::one_line(&cause);
    let mut chars = cause.chars();
    let cause = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => cause,
    };
    match t.kind() {
        ureq::ErrorKind::Dns => format!("cannot resolve the host: {cause}"),
        ureq::ErrorKind::ConnectionFailed => format!("cannot connect: {cause}"),
        _ => cause,
    }
}
