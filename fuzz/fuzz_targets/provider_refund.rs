//! Novasend refund responses and error bodies: `parse_refund` and `parse_error` never panic,
//! and error messages never carry an unmasked phone number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payments_gateway::provider::novasend::fuzzing::{parse_error, parse_refund};

fuzz_target!(|data: &[u8]| {
    if let Ok(refund) = parse_refund(data) {
        assert!(!refund.reference.is_empty());
        let _ = format!("{:?}", refund.customer_msisdn);
    }
    let status = 400 + u16::from(data.first().copied().unwrap_or(0));
    let (message, correlation_id) = parse_error(data, status);
    assert!(!message.is_empty());
    assert!(!has_phone_number(&message), "{message:?}");
    assert!(correlation_id.is_none_or(|c| !c.is_empty()));
});

/// A run of 8 or more ASCII digits: a phone number that should have been masked.
fn has_phone_number(text: &str) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 8
    })
}
