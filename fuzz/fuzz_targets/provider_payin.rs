//! Novasend payin responses, both shapes: `parse_payin` answers Ok or Err for any bytes, and
//! what it accepts is consistent (a provider reference, a lower-case status, masked failures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use payments_gateway::provider::novasend::fuzzing::parse_payin;

fuzz_target!(|data: &[u8]| {
    let Ok(payin) = parse_payin(data) else {
        return;
    };
    assert!(!payin.provider_reference.is_empty());
    assert!(payin.reference.as_ref().is_none_or(|r| !r.is_empty()));
    assert_eq!(
        payin.provider_status,
        payin.provider_status.to_ascii_lowercase()
    );
    if let Some(failure) = &payin.failure {
        assert!(!has_phone_number(&failure.message), "{:?}", failure.message);
    }
    // Deriving the status and formatting for logs never panic.
    assert_eq!(payin.provider, "novasend");
    let _ = payin.progress();
    let _ = format!("{:?}", payin.customer_phone);
});

/// A run of 8 or more ASCII digits: a phone number that should have been masked.
fn has_phone_number(text: &str) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 8
    })
}
