//! `payments-gateway client …`: a human-friendly client of a running service.

use crate::domain::mask_phone;
use crate::proto::payments_service_client::PaymentsServiceClient;
use crate::proto::{self as pb};
use clap::{Args, Subcommand};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The service's gRPC address.
    #[arg(
        long,
        env = "PAYMENTS_CLIENT_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// Bearer token, when the service asks for one.
    #[arg(long, env = "PAYMENTS_CLIENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Language of error messages: en or fr.
    #[arg(long, default_value = "en")]
    pub lang: String,
    #[command(subcommand)]
    pub command: ClientCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Start a payin.
    Create {
        #[arg(long)]
        reference: String,
        #[arg(long)]
        amount: i64,
        /// The payer's number, E.164 (+225…).
        #[arg(long)]
        msisdn: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "CI")]
        country: String,
        #[arg(long, default_value = "")]
        currency: String,
        #[arg(long, default_value = "")]
        account_id: String,
        #[arg(long, default_value = "")]
        success_url: String,
        #[arg(long, default_value = "")]
        failure_url: String,
        /// The provider (`novasend`, `hub2`); by default the service routes by country.
        #[arg(long)]
        provider: Option<String>,
        /// The payer's operator (`orange`, `mtn`, `moov`, `wave`); HUB2 needs it.
        #[arg(long, default_value = "")]
        operator: String,
        /// Idempotency key; by default `create-<reference>`, so running the same command
        /// again is a safe replay.
        #[arg(long)]
        key: Option<String>,
    },
    /// Show a payin.
    Get {
        reference: String,
        /// Ask Novasend now instead of the cache.
        #[arg(long)]
        refresh: bool,
    },
    /// Print each update of a payin as it arrives, until a final status.
    Watch { reference: String },
    /// Refund a succeeded payin.
    Refund {
        reference: String,
        #[arg(long)]
        reason: String,
        /// Partial amount; the whole payin by default.
        #[arg(long, default_value_t = 0)]
        amount: i64,
        #[arg(long, default_value = "")]
        external_reference: String,
        /// Idempotency key; by default `refund-<reference>`.
        #[arg(long)]
        key: Option<String>,
    },
    /// Give the one-time code the payer received, when the next action is OTP.
    Confirm {
        reference: String,
        #[arg(long)]
        code: String,
        /// Idempotency key; by default a new one each time (a key derived from the code
        /// would let anyone who sees it find the code back).
        #[arg(long)]
        key: Option<String>,
    },
}

/// Runs one client command; the error is what to print.
pub async fn run(args: ClientArgs) -> Result<(), String> {
    let channel = Endpoint::from_shared(args.addr.clone())
        .map_err(|e| format!("bad --addr: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot reach the service at {}: {e}", args.addr))?;
    let mut client = PaymentsServiceClient::new(channel);
    match args.command {
        ClientCommand::Create {
            ref reference,
            amount,
            ref msisdn,
            ref name,
            ref country,
            ref currency,
            ref account_id,
            ref success_url,
            ref failure_url,
            ref provider,
            ref operator,
            ref key,
        } => {
            let key = key.clone().unwrap_or_else(|| format!("create-{reference}"));
            let provider = match provider.as_deref() {
                None => pb::Provider::Unspecified,
                Some(name) => {
                    pb::Provider::from_str_name(&format!("PROVIDER_{}", name.to_ascii_uppercase()))
                        .ok_or_else(|| format!("no provider is called `{name}` (novasend, hub2)"))?
                }
            };
            let payin = client
                .create_payin(with_metadata(
                    &args,
                    pb::CreatePayinRequest {
                        reference: reference.clone(),
                        amount,
                        msisdn: msisdn.clone(),
                        customer_name: name.clone(),
                        country: country.clone(),
                        currency: currency.clone(),
                        account_id: account_id.clone(),
                        success_url: success_url.clone(),
                        failure_url: failure_url.clone(),
                        idempotency_key: key.clone(),
                        provider: provider as i32,
                        operator: operator.clone(),
                    },
                ))
                .await
                .map_err(describe)?
                .into_inner();
            println!("{}", show_payin(&payin));
            println!("  idempotency key  {key}");
            let reference = &payin.reference;
            let otp = Some(pb::NextActionType::Otp);
            let how = match payin.next_action.as_ref().map(|a| a.r#type()) {
                kind if kind == otp => format!(
                    "The payer's one-time code goes in with: payments-gateway client confirm {reference} --code <code>"
                ),
                _ if !payin.payment_url.is_empty() => {
                    format!("The payer confirms at {}", payin.payment_url)
                }
                _ => String::new(),
            };
            if !how.is_empty() {
                println!("\n{how}\nFollow it with: payments-gateway client watch {reference}");
            }
        }
        ClientCommand::Get {
            ref reference,
            refresh,
        } => {
            let payin = client
                .get_payin(with_metadata(
                    &args,
                    pb::GetPayinRequest {
                        reference: reference.clone(),
                        refresh,
                    },
                ))
                .await
                .map_err(describe)?
                .into_inner();
            println!("{}", show_payin(&payin));
        }
        ClientCommand::Watch { ref reference } => {
            watch(
                &mut client,
                with_metadata(
                    &args,
                    pb::StreamPayinUpdatesRequest {
                        reference: reference.clone(),
                    },
                ),
            )
            .await?
        }
        ClientCommand::Confirm {
            ref reference,
            ref code,
            ref key,
        } => {
            let key = key
                .clone()
                .unwrap_or_else(|| format!("confirm-{reference}-{}", uuid::Uuid::new_v4()));
            let payin = client
                .confirm_payin(with_metadata(
                    &args,
                    pb::ConfirmPayinRequest {
                        reference: reference.clone(),
                        code: code.clone(),
                        idempotency_key: key,
                    },
                ))
                .await
                .map_err(describe)?
                .into_inner();
            println!("{}", show_payin(&payin));
        }
        ClientCommand::Refund {
            ref reference,
            ref reason,
            amount,
            ref external_reference,
            ref key,
        } => {
            let key = key.clone().unwrap_or_else(|| format!("refund-{reference}"));
            let refund = client
                .refund(with_metadata(
                    &args,
                    pb::RefundRequest {
                        reference: reference.clone(),
                        reason: reason.clone(),
                        external_reference: external_reference.clone(),
                        amount,
                        idempotency_key: key,
                    },
                ))
                .await
                .map_err(describe)?
                .into_inner();
            println!(
                "refund {}  {}  {} {} ({}) of payin {}",
                refund.reference,
                name(refund.status().as_str_name(), "REFUND_STATUS_"),
                refund.amount,
                refund.currency,
                name(refund.refund_type().as_str_name(), "REFUND_TYPE_").to_lowercase(),
                reference
            );
        }
    }
    Ok(())
}

async fn watch(
    client: &mut PaymentsServiceClient<Channel>,
    request: Request<pb::StreamPayinUpdatesRequest>,
) -> Result<(), String> {
    let mut updates = client
        .stream_payin_updates(request)
        .await
        .map_err(describe)?
        .into_inner();
    loop {
        match updates.message().await {
            Ok(Some(update)) => {
                let payin = update.payin.clone().unwrap_or_default();
                let at = update
                    .observed_at
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
                    .map(|t| t.format("%H:%M:%S").to_string())
                    .unwrap_or_default();
                println!(
                    "#{:<3} {at}  {:<9} {:<22} confirmation {:<9} transaction {}",
                    update.sequence,
                    name(update.source().as_str_name(), "UPDATE_SOURCE_"),
                    name(payin.status().as_str_name(), "PAYIN_STATUS_"),
                    name(
                        payin.confirmation_status().as_str_name(),
                        "CONFIRMATION_STATUS_"
                    )
                    .to_lowercase(),
                    payin
                        .transaction
                        .as_ref()
                        .map_or("none".to_owned(), |t| name(
                            t.status().as_str_name(),
                            "TRANSACTION_STATUS_"
                        )
                        .to_lowercase()),
                );
            }
            Ok(None) => {
                println!("final status reached");
                return Ok(());
            }
            Err(status) => return Err(describe(status)),
        }
    }
}

fn with_metadata<T>(args: &ClientArgs, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(lang) = args.lang.parse() {
        request.metadata_mut().insert("accept-language", lang);
    }
    if let Some(token) = &args.token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_owned()
}

/// A payin as a few aligned lines; the payer's number masked.
pub fn show_payin(payin: &pb::Payin) -> String {
    let customer = payin.customer.clone().unwrap_or_default();
    let mut lines = vec![
        format!(
            "payin {}  {}",
            payin.reference,
            name(payin.status().as_str_name(), "PAYIN_STATUS_")
        ),
        format!(
            "  amount           {} {} (fee {}, charged {})",
            payin.amount, payin.currency, payin.fee, payin.charged_amount
        ),
        format!(
            "  customer         {} {}",
            customer.name,
            mask_phone(&customer.phone_number)
        ),
        format!(
            "  {:<16} {} ({}, confirmation {})",
            name(payin.provider().as_str_name(), "PROVIDER_").to_lowercase(),
            payin.provider_reference,
            payin.provider_status,
            name(
                payin.confirmation_status().as_str_name(),
                "CONFIRMATION_STATUS_"
            )
            .to_lowercase()
        ),
    ];
    if !payin.payment_url.is_empty() {
        lines.push(format!("  payment page     {}", payin.payment_url));
    }
    if let Some(action) = &payin.next_action {
        let kind = name(action.r#type().as_str_name(), "NEXT_ACTION_TYPE_").to_lowercase();
        let detail = [action.message.as_str(), action.url.as_str()]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!("  next action      {kind}: {detail}"));
    }
    if let Some(t) = &payin.transaction {
        lines.push(format!(
            "  transaction      {} {} ({} {})",
            t.reference,
            name(t.status().as_str_name(), "TRANSACTION_STATUS_").to_lowercase(),
            t.charged_amount,
            t.currency
        ));
    }
    if let Some(f) = &payin.failure {
        lines.push(format!("  failure          {}: {}", f.code, f.message));
    }
    if let Some(r) = &payin.refund {
        lines.push(format!(
            "  refund           {} {} {}",
            r.reference,
            r.amount,
            name(r.status().as_str_name(), "REFUND_STATUS_")
        ));
    }
    lines.join("\n")
}

/// An error status as a human reads it, with its field violations.
fn describe(status: Status) -> String {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    text
}
