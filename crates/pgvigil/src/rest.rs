//! JSON documents over HTTP(S), for the HA managers' REST APIs (Patroni).
//! TLS follows the suite's settings (PGSSLMODE, PGSSLROOTCERT), with libpq's
//! meanings: an https URL is at least encrypted, verify-ca/verify-full also
//! check the certificate against PGSSLROOTCERT.

use std::sync::Arc;
use std::time::Duration;

use crate::conninfo::{ConnSettings, SslMode};
use crate::error::Error;

/// A blocking client for one run: every request bounded by `timeout`.
pub struct Client {
    agent: ureq::Agent,
}

/// A request that got no usable answer: what an operator reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

impl Client {
    pub fn new(conn: &ConnSettings, https: bool, timeout: Duration) -> Result<Client, Error> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("pgvigil/", env!("CARGO_PKG_VERSION")));
        if https {
            let mode = match conn.sslmode {
                SslMode::VerifyCa | SslMode::VerifyFull => conn.sslmode,
                _ => SslMode::Require,
            };
            builder = builder.tls_config(Arc::new(crate::tls::client_config(conn, mode)?));
        }
        Ok(Client {
            agent: builder.build(),
        })
    }

    /// GET `url` as JSON. An error status with a JSON body (Patroni answers
    /// 503 with its document) is still a document.
    pub fn json(&self, url: &str) -> Result<serde_json::Value, Failure> {
        let response = match self.agent.get(url).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(t)) => {
                return Err(Failure(crate::output::one_line(&t.to_string())))
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
                crate::output::one_line(&start)
            ))
        })
    }
}
