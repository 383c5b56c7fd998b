//! TLS over TCP with libpq's sslmode meanings, in pure Rust (rustls with
//! ring). Linking OpenSSL cost every run more CPU in the dynamic loader,
//! resolving libssl and libcrypto symbols, than the whole check did.

mod client_auth;

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::conninfo::{SslMode, TlsSettings};
use pgvigil_kit::error::Error;

/// The rustls configuration for libpq's ssl* settings (any mode but
/// disable), for PostgreSQL sessions and for the HTTPS APIs the suite
/// reads (Patroni's).
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig, Error> {
    let provider = Arc::new(ring::default_provider());
    let check = if tls.verifies_chain() {
        let root = tls.rootcert.as_deref().ok_or_else(|| {
            Error::Usage("sslmode verify-ca/verify-full needs a root certificate (sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt)".into())
        })?;
        let roots = root_certificates(root)?;
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(roots.iter().cloned());
        let mut builder =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone());
        let crls = client_auth::revocation_lists(tls)?;
        if !crls.is_empty() {
            builder = builder.with_crls(crls);
        }
        let chain = builder
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up TLS: {e}")))?;
        Check::Chain {
            chain,
            roots,
            host: tls.mode == SslMode::VerifyFull,
        }
    } else {
        // require/prefer/allow without a root certificate encrypt without
        // checking who answers, as libpq does.
        Check::EncryptOnly
    };
    let verifier = Arc::new(Verifier {
        provider: provider.clone(),
        check,
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.versions {
        v if v.only_13 => &[&rustls::version::TLS13],
        v if v.only_12 => &[&rustls::version::TLS12],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let key_provider = provider.key_provider;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::Usage(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_auth::identity(tls)? {
        Some((certs, key)) => {
            let key = key_provider
                .load_private_key(key)
                .map_err(|e| Error::Usage(format!("cannot use the client key: {e}")))?;
            let certified = rustls::sign::CertifiedKey::new(certs, key);
            // Only a key of another certificate is refused here: an old
            // (version 1) certificate, which webpki cannot parse, is the
            // server's to judge, as with libpq.
            if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
                certified.keys_match()
            {
                return Err(Error::Usage(format!(
                    "the client key is not the key of certificate {}",
                    tls.cert.as_deref().unwrap_or(Path::new("")).display()
                )));
            }
            builder.with_client_cert_resolver(Arc::new(client_auth::Identity(Arc::new(certified))))
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = tls.sni;
    Ok(config)
}

/// The CAs in PGSSLROOTCERT; "system" asks for the operating system's trust
/// store, as in libpq.
fn root_certificates(root: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = if root.as_os_str() == "system" {
        rustls_native_certs::load_native_certs().certs
    } else {
        let unreadable =
            |e: &dyn std::fmt::Display| format!("root certificate {}: {e}", root.display());
        std::fs::metadata(root).map_err(|e| {
            Error::Usage(format!(
                "cannot read {}; provide the file, use sslrootcert=system for the operating system's CAs, or a weaker sslmode",
                unreadable(&e)
            ))
        })?;
        CertificateDer::pem_file_iter(root)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| Error::Usage(format!("bad {}", unreadable(&e))))?
    };
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "no certificate in root certificate {}",
            root.display()
        )));
    }
    Ok(certs)
}

/// Whatever the mode, the handshake must be signed by the key of the
/// certificate presented, so the session is encrypted to whoever holds it.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    check: Check,
}

/// What is checked of the certificate itself.
#[derive(Debug)]
enum Check {
    /// require/prefer/allow: nothing.
    EncryptOnly,
    /// verify-ca: the chain to a root; verify-full: the host name too.
    Chain {
        chain: Arc<WebPkiServerVerifier>,
        roots: Vec<CertificateDer<'static>>,
        host: bool,
    },
}

/// A server certificate that is itself in PGSSLROOTCERT is trusted as
/// OpenSSL (libpq) trusts it: the setup PostgreSQL's documentation shows,
/// a self-signed server.crt copied to the client's root.crt. webpki refuses
/// it when it is marked as a CA, as `openssl req -x509` marks it.
fn trusted_directly(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
    check_host: bool,
) -> Result<ServerCertVerified, rustls::Error> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(end_entity)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let validity = &cert.tbs_certificate.validity;
    let now = now.as_secs();
    if now < validity.not_before.to_unix_duration().as_secs() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > validity.not_after.to_unix_duration().as_secs() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    if check_host {
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
    }
    Ok(ServerCertVerified::assertion())
}

/// Why the server's certificate was refused, in an operator's words: rustls
/// reports only the kind of fault, as debug text.
static REFUSAL: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

thread_local! {
    /// Whether a server certificate reached this thread's verifier: the
    /// driver connects on the calling thread, so this tells whether the
    /// last attempt used TLS (prefer falls back to plain otherwise).
    static HANDSHAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a TLS handshake reached the certificate since the last call.
pub fn take_handshake() -> bool {
    HANDSHAKE.with(|h| h.replace(false))
}

/// The reason the last handshake refused the server's certificate, once.
pub fn take_refusal() -> Option<String> {
    REFUSAL.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Names the dates or the host names at fault, which rustls leaves out or
/// prints as debug text.
fn describe(
    why: &CertificateError,
    end_entity: &CertificateDer<'_>,
    server: &ServerName<'_>,
) -> String {
    use x509_cert::der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(end_entity) else {
        return format!("{why:?}");
    };
    let validity = &cert.tbs_certificate.validity;
    match why {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the server's certificate expired at {}", validity.not_after)
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!(
                "the server's certificate is not valid before {}",
                validity.not_before
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate is for {}, not {} (verify-full checks the host name)",
                certificate_names(&cert).join(", "),
                server.to_str()
            )
        }
        CertificateError::UnknownIssuer => {
            "the server's certificate is not signed by a certificate in sslrootcert (UnknownIssuer)"
                .to_string()
        }
        CertificateError::Revoked => {
            "the server's certificate is revoked (in sslcrl or sslcrldir)".to_string()
        }
        CertificateError::UnknownRevocationStatus => {
            "no revocation list in sslcrl or sslcrldir covers the server's certificate".to_string()
        }
        other => format!("{other:?}"),
    }
}

/// The DNS names and addresses a certificate is for (its subjectAltName).
fn certificate_names(cert: &x509_cert::Certificate) -> Vec<String> {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let san_oid = x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.29.17");
    let mut names = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id != san_oid {
            continue;
        }
        let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
            continue;
        };
        for name in san.0 {
            match name {
                GeneralName::DnsName(dns) => names.push(dns.to_string()),
                GeneralName::IpAddress(octets) => match octets.as_bytes() {
                    [a, b, c, d] => names.push(std::net::Ipv4Addr::new(*a, *b, *c, *d).to_string()),
                    bytes => {
                        if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
                            names.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                },
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.push("no host name".into());
    }
    names
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        HANDSHAKE.with(|h| h.set(true));
        let Check::Chain { chain, roots, host } = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        let verdict = if roots.iter().any(|r| r.as_ref() == end_entity.as_ref()) {
            trusted_directly(end_entity, server_name, now, *host)
        } else {
            match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                // The name is checked last, once the chain is known good.
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) if !host => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        };
        if let Err(rustls::Error::InvalidCertificate(why)) = &verdict {
            *REFUSAL.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(describe(why, end_entity, server_name));
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
