//! Caller authentication: `authorization: Bearer <token>` against PAYMENTS_AUTH_TOKENS.
//! Applied to PaymentsService only; health and reflection stay open for probes and tools.

use crate::domain::Language;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tonic::{Request, Status};

/// The interceptor: with no token configured every call passes.
#[derive(Clone)]
pub struct BearerAuth {
    tokens: Arc<Vec<SecretString>>,
}

impl BearerAuth {
    pub fn new(tokens: Vec<SecretString>) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }

    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(request);
        }
        let language = request
            .metadata()
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .map(Language::from_accept_language)
            .unwrap_or_default();
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(Status::unauthenticated(language.pick(
                "missing bearer token: send `authorization: Bearer <token>`",
                "jeton manquant : envoyez `authorization: Bearer <jeton>`",
            )));
        };
        // Every configured token is compared, each in constant time, so timing tells nothing.
        let mut accepted = false;
        for token in self.tokens.iter() {
            accepted |= constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes());
        }
        if accepted {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                language.pick("invalid bearer token", "jeton invalide"),
            ))
        }
    }
}

/// Compares without an early exit; only the lengths may differ in timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = value {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn accepts_only_configured_tokens() {
        let auth = BearerAuth::new(vec![
            SecretString::from("alpha-token"),
            SecretString::from("beta-token"),
        ]);
        assert!(auth.check(with_auth(Some("Bearer alpha-token"))).is_ok());
        assert!(auth.check(with_auth(Some("Bearer beta-token"))).is_ok());
        for bad in [
            None,
            Some("Bearer alpha"),
            Some("Bearer alpha-token-x"),
            Some("Basic alpha-token"),
            Some("alpha-token"),
        ] {
            let status = auth.check(with_auth(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
            assert!(!status.message().contains("alpha-token"));
        }
        assert!(BearerAuth::new(vec![]).check(with_auth(None)).is_ok());
    }
}
