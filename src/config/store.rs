//! PAYMENTS_REDIS_URL: where the service keeps shared state.

use super::ServeArgs;
use secrecy::SecretString;

/// Where the service keeps shared state.
#[derive(Clone)]
pub enum StoreConfig {
    Redis(SecretString),
    InProcess,
}

pub(super) fn read_store(args: &ServeArgs) -> Result<StoreConfig, Vec<String>> {
    match args.redis_url.as_deref().filter(|u| !u.is_empty()) {
        None => Ok(StoreConfig::InProcess),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Ok(StoreConfig::Redis(SecretString::from(url.to_owned())))
        }
        Some(_) => Err(vec![
            "PAYMENTS_REDIS_URL: must start with redis:// or rediss://".into(),
        ]),
    }
}
