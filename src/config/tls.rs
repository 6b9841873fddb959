//! PAYMENTS_TLS_*: TLS, and mTLS with a client CA, on the gRPC port.

use super::ServeArgs;
use secrecy::SecretString;

/// PEM material for TLS on the gRPC port.
#[derive(Clone)]
pub struct TlsConfig {
    pub cert: Vec<u8>,
    pub key: SecretString,
    /// With a client CA, callers must present a certificate (mTLS).
    pub client_ca: Option<Vec<u8>>,
}

pub(super) fn read_tls(args: &ServeArgs) -> Result<Option<TlsConfig>, Vec<String>> {
    let read = |variable: &str, path: &Option<String>| -> Result<Option<Vec<u8>>, String> {
        match path.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(path) => std::fs::read(path)
                .map(Some)
                .map_err(|e| format!("{variable}: cannot read `{path}`: {}", e.kind())),
        }
    };
    let mut errors = Vec::new();
    let cert = read("PAYMENTS_TLS_CERT", &args.tls_cert)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let key = read("PAYMENTS_TLS_KEY", &args.tls_key)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let client_ca = read("PAYMENTS_TLS_CLIENT_CA", &args.tls_client_ca)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    for (variable, pem) in [
        ("PAYMENTS_TLS_CERT", &cert),
        ("PAYMENTS_TLS_KEY", &key),
        ("PAYMENTS_TLS_CLIENT_CA", &client_ca),
    ] {
        if pem.as_ref().is_some_and(|p| !p.starts_with(b"-----BEGIN")) {
            errors.push(format!("{variable}: not a PEM file"));
        }
    }
    match (cert, key) {
        _ if !errors.is_empty() => Err(errors),
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            cert,
            key: SecretString::from(String::from_utf8_lossy(&key).into_owned()),
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err(vec![
            "PAYMENTS_TLS_CLIENT_CA: needs PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY".into(),
        ]),
        (None, Some(_)) => Err(vec![
            "PAYMENTS_TLS_CERT: required with PAYMENTS_TLS_KEY".into(),
        ]),
        (Some(_), None) => Err(vec![
            "PAYMENTS_TLS_KEY: required with PAYMENTS_TLS_CERT".into(),
        ]),
    }
}
