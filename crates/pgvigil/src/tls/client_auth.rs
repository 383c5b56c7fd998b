//! The client's side of TLS files: its certificate and key (sslcert,
//! sslkey, sslpassword) and the revocation lists (sslcrl, sslcrldir), read
//! with libpq's rules.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};

use crate::conninfo::TlsSettings;
use pgvigil_kit::error::Error;

/// The certificate chain and key to present, when the certificate file
/// exists (libpq sends none otherwise, even when sslcert names it).
pub fn identity(
    tls: &TlsSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, Error> {
    if tls.no_client_cert {
        return Ok(None);
    }
    let Some(cert_path) = tls.cert.as_deref() else {
        return Ok(None);
    };
    match std::fs::metadata(cert_path) {
        Ok(_) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "could not open certificate file \"{}\": {e}",
                cert_path.display()
            )))
        }
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            Error::Usage(format!(
                "could not read certificate file \"{}\": {e}",
                cert_path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "no certificate in certificate file \"{}\"",
            cert_path.display()
        )));
    }
    let key_path = tls.key.as_deref().ok_or_else(|| {
        Error::Usage(format!(
            "certificate present, but no private key file (sslkey) for \"{}\"",
            cert_path.display()
        ))
    })?;
    Ok(Some((
        certs,
        private_key(key_path, tls.key_password.as_deref())?,
    )))
}

/// The key, refused when others may read it (libpq's rule), decrypted with
/// sslpassword when it is an encrypted PKCS#8 key.
fn private_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, Error> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::Usage(format!(
            "certificate present, but not private key file \"{shown}\": {e}"
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "private key file \"{shown}\" is not a regular file"
        )));
    }
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mode = meta.mode();
    if (meta.uid() == euid && mode & 0o077 != 0) || (meta.uid() == 0 && mode & 0o037 != 0) {
        return Err(Error::Usage(format!(
            "private key file \"{shown}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root"
        )));
    }
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("could not read private key file \"{shown}\": {e}")))?;
    if contains(&text, b"Proc-Type: 4,ENCRYPTED") {
        return Err(Error::Usage(format!(
            "private key file \"{shown}\" is encrypted in OpenSSL's old format: convert it with \
             openssl pkcs8 -topk8 -v2 aes-256-cbc, then give its passphrase as sslpassword"
        )));
    }
    if contains(&text, b"ENCRYPTED PRIVATE KEY") {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return Err(Error::Usage(format!(
                "private key file \"{shown}\" is encrypted: give its passphrase as sslpassword \
                 (in a service file or the connection string), or keep the key unencrypted \
                 and readable by the monitoring user only"
            )));
        };
        return decrypt(&text, password).map_err(|why| {
            Error::Usage(format!(
                "could not decrypt private key file \"{shown}\": {why}"
            ))
        });
    }
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| Error::Usage(format!("could not load private key file \"{shown}\": {e}")))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2) decrypted with the passphrase.
fn decrypt(pem: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::Decode;
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_string())?;
    let (_, document) = pkcs8::der::Document::from_pem(text).map_err(|e| e.to_string())?;
    let encrypted =
        pkcs8::EncryptedPrivateKeyInfo::from_der(document.as_bytes()).map_err(|e| e.to_string())?;
    let plain = encrypted
        .decrypt(password)
        .map_err(|_| "wrong sslpassword, or a cipher this build lacks".to_string())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

/// The revocation lists of sslcrl and of every file in sslcrldir.
pub fn revocation_lists(
    tls: &TlsSettings,
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let mut lists = Vec::new();
    if let Some(file) = tls.crl.as_deref() {
        let read = CertificateRevocationListDer::pem_file_iter(file)
            .and_then(|l| l.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                Error::Usage(format!(
                    "could not load SSL certificate revocation list \"{}\": {e}",
                    file.display()
                ))
            })?;
        lists.extend(read);
    }
    if let Some(dir) = tls.crldir.as_deref() {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::Usage(format!(
                "could not read SSL certificate revocation list directory \"{}\": {e}",
                dir.display()
            ))
        })?;
        for entry in entries.flatten() {
            // OpenSSL's hashed directory: files that are not lists are skipped.
            if let Ok(read) = CertificateRevocationListDer::pem_file_iter(entry.path())
                .and_then(|l| l.collect::<Result<Vec<_>, _>>())
            {
                lists.extend(read);
            }
        }
    }
    Ok(lists)
}

/// Presents the one certificate whatever the server hints.
#[derive(Debug)]
pub struct Identity(pub std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
