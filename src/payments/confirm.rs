//! ConfirmPayin: the payer's one-time code, for a payin whose next action asks for one (§9).

use super::{Payments, PaymentsError};
use crate::domain::{ConfirmPayinCommand, Language, NextActionKind, ObservationSource, Payin};
use crate::provider::ProviderFailure;
use crate::store::attempt::Attempt;

impl Payments {
    /// Sends the code to the payin's provider and keeps what it answers. A payin that does
    /// not wait for a code is FAILED_PRECONDITION, with nothing sent; a retry after an unknown
    /// outcome first reads the payin, and if it no longer waits for a code, that earlier
    /// attempt landed: its payin is the answer.
    pub async fn confirm(
        &self,
        command: &ConfirmPayinCommand,
        attempt: &Attempt,
        language: Language,
    ) -> Result<Payin, PaymentsError> {
        let reference = command.reference.as_str();
        let payin = self.settled(reference, language).await?;
        let waits_for_code = payin
            .next_action
            .as_ref()
            .is_some_and(|action| action.kind == NextActionKind::Otp);
        if !waits_for_code {
            return match attempt.resumed() {
                true => Ok(payin),
                false => Err(PaymentsError::NotConfirmable),
            };
        }
        let provider = self.provider_of(Some(&payin))?;
        attempt.fence().await?;
        match provider
            .confirm(&payin.provider_reference, &command.code, language)
            .await
        {
            Ok(observed) => {
                self.upsert(reference, observed, ObservationSource::Api)
                    .await
            }
            Err(e) if e.may_have_acted() => {
                tracing::warn!(reference, error = %e, "confirmation outcome unknown");
                Err(PaymentsError::OutcomeUnknown)
            }
            Err(e) => Err(ProviderFailure::of(&**provider)(e).into()),
        }
    }
}
