//! payments-gateway: a gRPC service for mobile-money payins over Novasend.

pub mod api;
pub mod bench;
pub mod client;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod payments;
pub mod provider;
pub mod sandbox;
pub mod startup;
pub mod store;
pub mod telemetry;

/// The generated `payments.v1` types, client and server.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("payments.v1");

    /// For server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("payments_descriptor");

    use crate::domain::mask_phone;
    use std::fmt;

    // Hand-written so that phone numbers are masked wherever these are formatted.
    impl fmt::Debug for CreatePayinRequest {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CreatePayinRequest")
                .field("reference", &self.reference)
                .field("amount", &self.amount)
                .field("msisdn", &mask_phone(&self.msisdn))
                .field("customer_name", &self.customer_name)
                .field("country", &self.country)
                .field("currency", &self.currency)
                .field("account_id", &self.account_id)
                .field("success_url", &self.success_url)
                .field("failure_url", &self.failure_url)
                .field("idempotency_key", &self.idempotency_key)
                .finish()
        }
    }

    impl fmt::Debug for Customer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Customer")
                .field("name", &self.name)
                .field("phone_number", &mask_phone(&self.phone_number))
                .finish()
        }
    }

    impl fmt::Debug for Transaction {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Transaction")
                .field("reference", &self.reference)
                .field("status", &self.status)
                .field("phone_number", &mask_phone(&self.phone_number))
                .field("amount", &self.amount)
                .field("charged_amount", &self.charged_amount)
                .field("currency", &self.currency)
                .finish_non_exhaustive()
        }
    }

    impl fmt::Debug for Refund {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Refund")
                .field("reference", &self.reference)
                .field("original_reference", &self.original_reference)
                .field("amount", &self.amount)
                .field("status", &self.status)
                .field("refund_type", &self.refund_type)
                .field("customer_msisdn", &mask_phone(&self.customer_msisdn))
                .finish_non_exhaustive()
        }
    }
}
