//! The bodies sent to Novasend: a payin session and a refund.

use crate::domain::CreatePayinCommand;
use crate::provider::RefundOrder;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionBody<'a> {
    reference: &'a str,
    amount: i64,
    msisdn: &'a str,
    customer_name: &'a str,
    country: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    account_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<Action<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Action<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    success_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    failure_url: &'a str,
}

impl<'a> CreateSessionBody<'a> {
    pub fn new(command: &'a CreatePayinCommand) -> Self {
        let has_action = !command.success_url.is_empty() || !command.failure_url.is_empty();
        Self {
            reference: command.reference.as_str(),
            amount: command.amount,
            msisdn: command.msisdn.expose(),
            customer_name: &command.customer_name,
            country: &command.country,
            account_id: &command.account_id,
            action: has_action.then_some(Action {
                success_url: &command.success_url,
                failure_url: &command.failure_url,
            }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    external_reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
}

impl<'a> RefundBody<'a> {
    pub fn new(order: &'a RefundOrder) -> Self {
        Self {
            reason: &order.reason,
            external_reference: &order.external_reference,
            amount: order.partial_amount,
        }
    }
}
