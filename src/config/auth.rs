//! PAYMENTS_AUTH_TOKENS: the bearer tokens callers must send.

use super::ServeArgs;
use super::parse::read_secret;
use secrecy::{ExposeSecret, SecretString};

/// Empty: no caller authentication.
pub(super) fn read_auth_tokens(args: &ServeArgs) -> Result<Vec<SecretString>, Vec<String>> {
    match read_secret(
        "PAYMENTS_AUTH_TOKENS",
        &args.auth_tokens,
        &args.auth_tokens_file,
    ) {
        Ok(Some(tokens)) => {
            let tokens: Vec<SecretString> = tokens
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| SecretString::from(t.to_owned()))
                .collect();
            if tokens.is_empty() {
                return Err(vec!["PAYMENTS_AUTH_TOKENS: set but holds no token".into()]);
            }
            Ok(tokens)
        }
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(vec![e]),
    }
}
