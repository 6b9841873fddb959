//! Domain → protobuf.

use crate::domain::{
    self, ConfirmationStatus, NextAction, NextActionKind, PayinStatus, RefundStatus, RefundType,
    TransactionStatus,
};
use crate::proto as pb;
use chrono::{DateTime, Utc};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn payin_status(status: PayinStatus) -> pb::PayinStatus {
    match status {
        PayinStatus::Pending => pb::PayinStatus::Pending,
        PayinStatus::AwaitingConfirmation => pb::PayinStatus::AwaitingConfirmation,
        PayinStatus::Processing => pb::PayinStatus::Processing,
        PayinStatus::Succeeded => pb::PayinStatus::Succeeded,
        PayinStatus::Failed => pb::PayinStatus::Failed,
        PayinStatus::Declined => pb::PayinStatus::Declined,
        PayinStatus::Expired => pb::PayinStatus::Expired,
    }
}

fn confirmation_status(status: ConfirmationStatus) -> pb::ConfirmationStatus {
    match status {
        ConfirmationStatus::None => pb::ConfirmationStatus::None,
        ConfirmationStatus::Pending => pb::ConfirmationStatus::Pending,
        ConfirmationStatus::Accepted => pb::ConfirmationStatus::Accepted,
        ConfirmationStatus::Declined => pb::ConfirmationStatus::Declined,
        ConfirmationStatus::Expired => pb::ConfirmationStatus::Expired,
    }
}

fn transaction_status(status: Option<TransactionStatus>) -> pb::TransactionStatus {
    match status {
        Some(TransactionStatus::Completed) => pb::TransactionStatus::Completed,
        Some(TransactionStatus::Failed) => pb::TransactionStatus::Failed,
        // A transaction Novasend reports without a known status is not final yet.
        Some(TransactionStatus::Pending) | None => pb::TransactionStatus::Pending,
    }
}

/// The provider a request names: `None` when unspecified; a value the proto does not know
/// becomes a name no provider has (the router refuses it).
pub fn requested_provider(value: i32) -> Option<String> {
    match pb::Provider::try_from(value) {
        Ok(pb::Provider::Unspecified) => None,
        Ok(named) => Some(
            named
                .as_str_name()
                .trim_start_matches("PROVIDER_")
                .to_ascii_lowercase(),
        ),
        Err(_) => Some(format!("provider #{value}")),
    }
}

/// The proto's name for a provider: `novasend` → PROVIDER_NOVASEND.
fn provider(name: &str) -> pb::Provider {
    pb::Provider::from_str_name(&format!("PROVIDER_{}", name.to_ascii_uppercase()))
        .unwrap_or(pb::Provider::Unspecified)
}

fn next_action(action: &NextAction) -> pb::NextAction {
    let kind = match action.kind {
        NextActionKind::Redirect => pb::NextActionType::Redirect,
        NextActionKind::Ussd => pb::NextActionType::Ussd,
        NextActionKind::Otp => pb::NextActionType::Otp,
    };
    pb::NextAction {
        r#type: kind as i32,
        message: action.message.clone(),
        url: action.url.clone(),
    }
}

pub fn payin(p: &domain::Payin) -> pb::Payin {
    pb::Payin {
        reference: p.reference.clone(),
        provider: provider(&p.provider) as i32,
        next_action: p.next_action.as_ref().map(next_action),
        provider_reference: p.provider_reference.clone(),
        status: payin_status(p.status) as i32,
        provider_status: p.provider_status.clone(),
        confirmation_required: p.confirmation_required,
        confirmation_status: confirmation_status(p.confirmation_status) as i32,
        payment_url: p.payment_url.clone(),
        customer: Some(pb::Customer {
            name: p.customer_name.clone(),
            phone_number: p.customer_phone.expose().to_owned(),
        }),
        amount: p.amount,
        fee: p.fee,
        charged_amount: p.charged_amount,
        currency: p.currency.clone(),
        country: p.country.clone(),
        account_id: p.account_id.clone(),
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
        transaction: p.transaction.as_ref().map(|t| pb::Transaction {
            reference: t.reference.clone(),
            status: transaction_status(t.status) as i32,
            customer_name: t.customer_name.clone(),
            phone_number: t.phone_number.expose().to_owned(),
            amount: t.amount.clone(),
            fees: t.fees.clone(),
            charged_amount: t.charged_amount.clone(),
            currency: t.currency.clone(),
            processed_at: t.processed_at.map(timestamp),
        }),
        failure: p.failure.as_ref().map(|f| pb::Failure {
            code: f.code.clone(),
            message: f.message.clone(),
        }),
        refund: p.refund.as_ref().map(refund),
    }
}

pub fn refund(r: &domain::Refund) -> pb::Refund {
    pb::Refund {
        reference: r.reference.clone(),
        original_reference: r.original_reference.clone(),
        amount: r.amount,
        fee: r.fee,
        currency: r.currency.clone(),
        status: match r.status {
            RefundStatus::Pending => pb::RefundStatus::Pending,
            RefundStatus::Processing => pb::RefundStatus::Processing,
            RefundStatus::Completed => pb::RefundStatus::Completed,
            RefundStatus::Failed => pb::RefundStatus::Failed,
        } as i32,
        reason: r.reason.clone(),
        refund_type: match r.refund_type {
            RefundType::Full => pb::RefundType::Full,
            RefundType::Partial => pb::RefundType::Partial,
        } as i32,
        customer_msisdn: r.customer_msisdn.expose().to_owned(),
        customer_name: r.customer_name.clone(),
        external_reference: r.external_reference.clone(),
        created_at: r.created_at.map(timestamp),
        transaction: r.transaction.as_ref().map(|t| pb::RefundTransaction {
            reference: t.reference.clone(),
            status: t.status.clone(),
            processed_at: t.processed_at.map(timestamp),
        }),
    }
}
