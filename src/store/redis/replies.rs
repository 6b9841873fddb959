//! What the scripts answer, read into the store's types.

use super::{number, utf8};
use crate::store::{Acquired, Begin, Claim, StoreError, StoredOutcome};

/// BEGIN's answer, for the attempt `owner`.
pub(super) fn parse_begin(reply: Vec<Vec<u8>>, owner: String) -> Result<Begin, StoreError> {
    let mut parts = reply.into_iter();
    let tag = parts.next().map(utf8).transpose()?.unwrap_or_default();
    match tag.as_str() {
        "acquired" => {
            let resumed = parts.next().is_some_and(|flag| flag == b"1");
            // Empty: the claim is taken next, in its own slot (a cluster).
            let reference = parts
                .next()
                .filter(|claimed| !claimed.is_empty())
                .map(|claimed| Ok::<_, StoreError>(Claim::from_script(number(claimed)?)))
                .transpose()?;
            let provider = parts
                .next()
                .map(utf8)
                .transpose()?
                .filter(|p| !p.is_empty());
            Ok(Begin::Acquired(Acquired {
                owner,
                resumed,
                reference,
                provider,
            }))
        }
        "conflict" => Ok(Begin::Conflict),
        "running" => Ok(Begin::InFlight),
        "done" => {
            let (Some(code), Some(message), Some(body)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(StoreError::Corrupt(
                    "finished record lacks its outcome".into(),
                ));
            };
            let code = i32::try_from(number(code)?)
                .map_err(|_| StoreError::Corrupt("stored code is out of range".into()))?;
            Ok(Begin::Replay(StoredOutcome {
                code,
                message: utf8(message)?,
                body,
            }))
        }
        other => Err(StoreError::Corrupt(format!(
            "unknown begin reply `{other}`"
        ))),
    }
}
