//! TLS to PostgreSQL as libpq sets it up (rustls, with ring's cryptography): which `sslmode`
//! verifies what, and which files it reads. The files are read at each connection attempt, as
//! libpq reads them, so a certificate replaced on disk is taken by the next attempt.
//!
//! - `disable`: never TLS. `allow`: plain first, TLS if the server refuses that. `prefer` (the
//!   default): TLS first, plain if the server has no TLS or the TLS attempt fails. `require`,
//!   `verify-ca`, `verify-full`: TLS or nothing. None of them uses TLS over a Unix socket (the
//!   server has none there), as libpq.
//! - The server's certificate is checked against `sslrootcert` (default
//!   `~/.postgresql/root.crt`; `system`: the system's trusted roots). `verify-ca` checks the
//!   chain, `verify-full` also the host name. The other modes check the chain when the root file
//!   exists (so `require` with a root file is `verify-ca`, as libpq) and nothing otherwise; the
//!   two `verify` modes fail without it.
//! - `sslcert`/`sslkey` (default `~/.postgresql/postgresql.crt` and `.key`): a client
//!   certificate, sent when the certificate file exists; its key must not be readable by others.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(format!("invalid sslmode value: \"{other}\"")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Where the trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file; `None`: the default file, but there is no home directory to find it in.
    File(Option<PathBuf>),
    /// `sslrootcert=system`: the system's trusted roots (OpenSSL's files; `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` move them).
    System,
}

/// The TLS settings of a connection, after the string, the environment and libpq's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    pub root_cert: RootCert,
    /// The client certificate and its key (`None`: no home directory for the default).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `sslsni`: send the host name in the handshake (never for an IP address).
    pub sni: bool,
}

/// How far a connection checks the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Nothing: encrypted, but anyone could be at the other end.
    Nothing,
    /// The chain up to a trusted root.
    Chain,
    /// The chain, and that the certificate is for the host name connected to.
    ChainAndName,
}

impl Tls {
    /// libpq's choices from the settings (`mode`: the string's or `PGSSLMODE`, if either set
    /// one): `sslrootcert=system` makes `verify-full` the default and refuses weaker modes.
    pub fn new(
        mode: Option<SslMode>,
        root_cert: RootCert,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        sni: bool,
    ) -> Result<Tls, String> {
        let mode = match (mode, &root_cert) {
            (None, RootCert::System) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
            (Some(m), RootCert::System) if m != SslMode::VerifyFull => {
                return Err(format!(
                    "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                    m.name()
                ))
            }
            (Some(m), _) => m,
        };
        Ok(Tls { mode, root_cert, cert, key, sni })
    }

    /// The root certificates, as a phrase for messages.
    pub fn roots_described(&self) -> String {
        match &self.root_cert {
            RootCert::System => "the system's trusted roots".to_owned(),
            RootCert::File(Some(p)) => format!("root certificate file \"{}\"", p.display()),
            RootCert::File(None) => "no root certificate file".to_owned(),
        }
    }

    /// A rustls configuration for one connection attempt, reading the files now.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (roots, trusted) = match self.roots()? {
            Some((roots, trusted)) => (Some(roots), trusted),
            None => (None, Vec::new()),
        };
        let check = match (self.mode, &roots) {
            (SslMode::VerifyFull, _) => Check::ChainAndName,
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let webpki = match roots {
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("could not use {}: {e}", self.roots_described()))?,
            ),
            None => None,
        };
        let verifier = Verifier { check, webpki, trusted, provider: provider.clone() };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let mut config = match self.identity()? {
            Some((chain, key)) => {
                let cert = self.cert.as_deref().unwrap_or(Path::new(""));
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("could not use certificate file \"{}\": {e}", cert.display()))?
            }
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = self.sni;
        // As libpq since PostgreSQL 17, which a server of that age requires with
        // sslnegotiation=direct; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The trusted roots, or `None` when the mode goes without (libpq looks for the file with
    /// `stat` and verifies only when it is there, except in the verify modes). With the file's
    /// certificates as they are.
    #[allow(clippy::type_complexity)]
    fn roots(&self) -> Result<Option<(RootCertStore, Vec<CertificateDer<'static>>)>, String> {
        const HINT: &str = "either provide the file, use the system's trusted roots with sslrootcert=system, or \
                            change sslmode to disable server certificate verification";
        let path = match &self.root_cert {
            RootCert::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                    return Err(format!(
                        "could not load the system's trusted root certificates (sslrootcert=system): {}",
                        if errors.is_empty() { "none found".to_owned() } else { errors.join("; ") }
                    ));
                }
                return Ok(Some((roots, Vec::new())));
            }
            RootCert::File(None) if self.mode.verifies() => {
                return Err(format!("could not get home directory to locate root certificate file; {HINT}"));
            }
            RootCert::File(None) => return Ok(None),
            RootCert::File(Some(p)) => p,
        };
        if std::fs::metadata(path).is_err() {
            if self.mode.verifies() {
                return Err(format!("root certificate file \"{}\" does not exist; {HINT}", path.display()));
            }
            return Ok(None);
        }
        let read_error =
            |e: &dyn std::fmt::Display| format!("could not read root certificate file \"{}\": {e}", path.display());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| read_error(&e))?;
        let mut roots = RootCertStore::empty();
        for cert in &certs {
            roots.add(cert.clone()).map_err(|e| read_error(&e))?;
        }
        if roots.is_empty() {
            return Err(read_error(&"no certificate in it"));
        }
        Ok(Some((roots, certs)))
    }

    /// The client certificate chain and key, when the certificate file exists (libpq's rules,
    /// messages and permission check for the key).
    fn identity(&self) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
        let Some(cert) = self.cert.as_deref().filter(|p| std::fs::metadata(p).is_ok()) else {
            return Ok(None);
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("could not read certificate file \"{}\": {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("could not read certificate file \"{}\": no certificate in it", cert.display()));
        }
        let key = self.key.as_deref().unwrap_or(Path::new(""));
        let meta = std::fs::metadata(key)
            .map_err(|_| format!("certificate present, but not private key file \"{}\"", key.display()))?;
        if !meta.is_file() {
            return Err(format!("private key file \"{}\" is not a regular file", key.display()));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let mode = meta.mode();
        if (meta.uid() == me && mode & 0o077 != 0) || (meta.uid() == 0 && mode & 0o037 != 0) {
            return Err(format!(
                "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less \
                 if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
                key.display()
            ));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            let encrypted = std::fs::read_to_string(key).is_ok_and(|t| t.contains("ENCRYPTED"));
            let why =
                if encrypted { "encrypted keys (sslpassword) are not supported".to_owned() } else { e.to_string() };
            format!("could not load private key file \"{}\": {why}", key.display())
        })?;
        Ok(Some((chain, key_der)))
    }
}

/// Checks the server's certificate as far as the mode asks; the handshake's signatures are
/// always checked (a connection that verifies nothing is still encrypted to whoever answered).
#[derive(Debug)]
struct Verifier {
    check: Check,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// The root file's certificates (none for the system's roots).
    trusted: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
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
        let Some(webpki) = self.webpki.as_ref().filter(|_| self.check != Check::Nothing) else {
            return Ok(ServerCertVerified::assertion());
        };
        let verified = if self.trusted.iter().any(|t| t.as_ref() == end_entity.as_ref()) {
            // Trusted as it is (`tls_libpq.rs`): its dates, then its name.
            match crate::tls_libpq::validity_error(end_entity, now) {
                Some(e) => Err(rustls::Error::InvalidCertificate(e)),
                None if self.check == Check::Chain => Ok(()),
                None => rustls::server::ParsedCertificate::try_from(end_entity)
                    .and_then(|cert| rustls::client::verify_server_name(&cert, server_name)),
            }
        } else {
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).map(|_| ())
        };
        match verified {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            // The chain was good (the name is checked last): verify-ca stops there, and
            // verify-full takes the common name when the certificate names no host otherwise.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain || crate::tls_libpq::common_name_matches(end_entity, server_name) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a TLS handshake failed, in words, from rustls's error.
pub(crate) fn explain(e: &rustls::Error, host: &str, tls: &Tls) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                format!(
                    "the server's certificate is not signed by a certificate authority in {}",
                    tls.roots_described()
                )
            }
            CertificateError::NotValidForName => {
                format!("the server's certificate does not match host name \"{host}\"")
            }
            CertificateError::NotValidForNameContext { presented, .. } => {
                // rustls lists the names as `DnsName("a")`, `IpAddress(1.2.3.4)`.
                let names: Vec<String> = presented
                    .iter()
                    .map(|n| {
                        let inner = n.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).unwrap_or(n);
                        format!("\"{}\"", inner.trim_matches('"'))
                    })
                    .collect();
                if names.is_empty() {
                    format!("the server's certificate has no subjectAltName and its common name does not match host name \"{host}\"")
                } else {
                    format!("the server's certificate for {} does not match host name \"{host}\"", names.join(", "))
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet".to_owned()
            }
            CertificateError::Revoked => "the server's certificate was revoked".to_owned(),
            // webpki's CaUsedAsEndEntity, which rustls passes on as an "other" error.
            CertificateError::Other(e) if format!("{e:?}").contains("CaUsedAsEndEntity") => format!(
                "the server's certificate is an authority's (self-signed?) and is not itself in {}",
                tls.roots_described()
            ),
            other => format!("the server's certificate was not accepted: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => format!("the server ended the TLS handshake: {alert:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_names_postgresql_as_libpq_17_does_for_direct_negotiation() {
        let tls = Tls::new(Some(SslMode::Require), RootCert::File(None), None, None, false).unwrap();
        let config = tls.client_config().unwrap();
        assert_eq!(config.alpn_protocols, [b"postgresql".to_vec()]);
        assert!(!config.enable_sni);
    }
}
