//! The payer's side: the page behind a payment link, plain HTML forms, no JavaScript. One
//! renderer for both simulated providers; each says what its page shows.

use super::state::SandboxPayin;

/// What a payment page shows.
pub struct Page<'a> {
    /// The `<title>`: which provider the sandbox is standing in for.
    pub title: &'a str,
    /// Where the page lives; Accept and Decline post to `{path}/accept` and `{path}/decline`.
    pub path: String,
    /// Label, element id (empty: none) and value, in order.
    pub rows: Vec<(&'static str, &'static str, String)>,
    /// Empty while the payer can still answer (the buttons are shown); otherwise what
    /// happened.
    pub state: String,
    /// Where "Back to the merchant" leads once answered (empty: no link).
    pub back: String,
}

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

pub fn render_page(page: &Page<'_>) -> String {
    let path = escape(&page.path);
    let actions = if page.state.is_empty() {
        format!(
            r#"<form method="post" action="{path}/accept"><button id="accept" type="submit">Accept</button></form>
<form method="post" action="{path}/decline"><button id="decline" type="submit">Decline</button></form>"#
        )
    } else {
        let link = if page.back.is_empty() {
            String::new()
        } else {
            format!(
                r#"<p><a href="{}">Back to the merchant</a></p>"#,
                escape(&page.back)
            )
        };
        format!(r#"<p id="state">{}</p>{link}"#, escape(&page.state))
    };
    let rows: String = page
        .rows
        .iter()
        .map(|(label, id, value)| {
            let id = if id.is_empty() {
                String::new()
            } else {
                format!(r#" id="{id}""#)
            };
            format!("<dt>{label}</dt><dd{id}>{}</dd>\n", escape(value))
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} sandbox — confirm your payment</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}dl{{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}}dt{{color:#555}}form{{display:inline-block;margin-right:1rem}}button{{font-size:1.1rem;padding:.5rem 1.5rem}}</style>
</head><body>
<h1>Confirm your payment</h1>
<p>Sandbox page: no real money moves.</p>
<dl>
{rows}</dl>
{actions}
</body></html>
"#,
        title = escape(page.title),
    )
}

/// A Novasend payin's page.
pub fn render(payin: &SandboxPayin) -> String {
    let state = match (
        payin.confirmation_status,
        payin.status,
        payin.transaction.as_ref().map(|t| t.status),
    ) {
        (_, _, Some("completed")) => "Payment completed. Thank you!",
        (_, _, Some(_)) => "The payment failed.",
        ("declined", _, _) => "You declined this payment.",
        ("expired", _, _) | (_, "expired", _) => "This payment request has expired.",
        ("accepted", _, _) => "Accepted — the payment is being processed.",
        _ => "",
    };
    let succeeded = payin
        .transaction
        .as_ref()
        .is_some_and(|t| t.status == "completed");
    let money = |amount: i64| format!("{amount} {}", payin.currency);
    render_page(&Page {
        title: "Novasend",
        path: format!("/pay/{}", payin.token),
        rows: vec![
            ("Payer", "payer", payin.masked_payer()),
            ("Name", "", payin.customer_name.clone()),
            ("Merchant reference", "", payin.merchant_reference.clone()),
            ("Amount", "amount", money(payin.amount)),
            ("Fee", "fee", money(payin.fee)),
            ("Total", "total", money(payin.amount + payin.fee)),
        ],
        state: state.to_owned(),
        back: match succeeded {
            true => payin.success_url.clone(),
            false => payin.failure_url.clone(),
        },
    })
}
