//! Where libpq (through OpenSSL) takes a server certificate that rustls alone would not:
//!
//! - A certificate that names no host of the connection's kind in its subjectAltName (no DNS
//!   name for a host name, no IP address for an address) is matched by its subject's common
//!   name, compared without case, a leading `*.` standing for exactly one label. rustls checks
//!   the subjectAltName only.
//! - A certificate that is itself in the root file (a self-signed server certificate, trusted
//!   as it is) is taken while it is valid, also when it is marked as an authority, as
//!   `openssl req -x509` marks it; rustls refuses an authority's certificate as a server's.
//!
//! `tls.rs` asks here when rustls says no.

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::CertificateError;
use x509_cert::der::oid::db::rfc4519::CN;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// Whether libpq would take `cert` for `host` by its common name.
pub fn common_name_matches(cert: &CertificateDer<'_>, host: &ServerName<'_>) -> bool {
    let Ok(cert) = Certificate::from_der(cert.as_ref()) else { return false };
    let (host, is_ip) = match host {
        ServerName::DnsName(d) => (d.as_ref().to_owned(), false),
        ServerName::IpAddress(ip) => (std::net::IpAddr::from(*ip).to_string(), true),
        _ => return false,
    };
    let tbs = &cert.tbs_certificate;
    if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
        let same_kind = san.0.iter().any(|n| match n {
            GeneralName::DnsName(_) => !is_ip,
            GeneralName::IpAddress(_) => is_ip,
            _ => false,
        });
        if same_kind {
            return false;
        }
    }
    tbs.subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == CN)
        .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
        .any(|cn| name_matches(cn, &host))
}

/// Why `cert` is not valid at `now`, if it is not.
pub fn validity_error(cert: &CertificateDer<'_>, now: UnixTime) -> Option<CertificateError> {
    let Ok(cert) = Certificate::from_der(cert.as_ref()) else { return Some(CertificateError::BadEncoding) };
    let validity = &cert.tbs_certificate.validity;
    let now = now.as_secs();
    if now < validity.not_before.to_unix_duration().as_secs() {
        return Some(CertificateError::NotValidYet);
    }
    if now > validity.not_after.to_unix_duration().as_secs() {
        return Some(CertificateError::Expired);
    }
    None
}

/// libpq's comparison of a certificate's name with the host name.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    // `*.example.com`: the host ends with `.example.com` and has one more label, without a dot.
    let Some(suffix) = pattern.strip_prefix('*').filter(|s| s.starts_with('.') && s.len() > 1) else {
        return false;
    };
    host.len() > suffix.len()
        && host.is_char_boundary(host.len() - suffix.len())
        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        && !host[..host.len() - suffix.len()].contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_stands_for_one_label_and_case_does_not_matter() {
        assert!(name_matches("db.Example.com", "DB.example.COM"));
        assert!(name_matches("*.example.com", "db.example.com"));
        assert!(!name_matches("*.example.com", "a.db.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", ".example.com"));
        assert!(!name_matches("db*.example.com", "db1.example.com"));
        assert!(!name_matches("*", "localhost"));
    }
}
