//! The payer's side: the page behind `paymentUrl`, plain HTML forms, no JavaScript.

use super::state::SandboxPayin;

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

pub fn render(payin: &SandboxPayin) -> String {
    let token = escape(&payin.token);
    let state = match (
        payin.confirmation_status,
        payin.status,
        payin.transaction.as_ref().map(|t| t.status),
    ) {
        (_, _, Some("completed")) => "Payment completed. Thank you!".to_owned(),
        (_, _, Some(_)) => "The payment failed.".to_owned(),
        ("declined", _, _) => "You declined this payment.".to_owned(),
        ("expired", _, _) | (_, "expired", _) => "This payment request has expired.".to_owned(),
        ("accepted", _, _) => "Accepted — the payment is being processed.".to_owned(),
        _ => String::new(),
    };
    let actions = if state.is_empty() {
        format!(
            r#"<form method="post" action="/pay/{token}/accept"><button id="accept" type="submit">Accept</button></form>
<form method="post" action="/pay/{token}/decline"><button id="decline" type="submit">Decline</button></form>"#
        )
    } else {
        let succeeded = payin
            .transaction
            .as_ref()
            .is_some_and(|t| t.status == "completed");
        let back = if succeeded {
            &payin.success_url
        } else {
            &payin.failure_url
        };
        let link = if back.is_empty() {
            String::new()
        } else {
            format!(
                r#"<p><a href="{}">Back to the merchant</a></p>"#,
                escape(back)
            )
        };
        format!(r#"<p id="state">{}</p>{link}"#, escape(&state))
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Novasend sandbox — confirm your payment</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}dl{{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}}dt{{color:#555}}form{{display:inline-block;margin-right:1rem}}button{{font-size:1.1rem;padding:.5rem 1.5rem}}</style>
</head><body>
<h1>Confirm your payment</h1>
<p>Sandbox page: no real money moves.</p>
<dl>
<dt>Payer</dt><dd id="payer">{payer}</dd>
<dt>Name</dt><dd>{name}</dd>
<dt>Merchant reference</dt><dd>{reference}</dd>
<dt>Amount</dt><dd id="amount">{amount} {currency}</dd>
<dt>Fee</dt><dd id="fee">{fee} {currency}</dd>
<dt>Total</dt><dd id="total">{total} {currency}</dd>
</dl>
{actions}
</body></html>
"#,
        payer = escape(&payin.masked_payer()),
        name = escape(&payin.customer_name),
        reference = escape(&payin.merchant_reference),
        amount = payin.amount,
        fee = payin.fee,
        total = payin.amount + payin.fee,
        currency = escape(&payin.currency),
    )
}
