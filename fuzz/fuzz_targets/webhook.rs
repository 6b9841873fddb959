//! Webhook bodies and signatures: `read_trigger` reads any bytes without panicking, and the
//! signature check never panics, accepts what `sign` produces and refuses any other digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payments_gateway::provider::WebhookSecrets;
use payments_gateway::provider::novasend::webhook::{read_trigger, sign, signature_is_valid};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    if let Some(trigger) = read_trigger(data) {
        for (i, reference) in trigger.references.iter().enumerate() {
            assert!(!reference.is_empty());
            assert!(
                !trigger.references[..i].contains(reference),
                "duplicate reference"
            );
        }
        assert!(trigger.references.len() <= 6);
    }

    // The secret is the input's first line, the body the rest, and arbitrary signature
    // strings are taken from the input itself.
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0);
    let (secret, body) = data.split_at(split);
    let secret = SecretString::from(String::from_utf8_lossy(secret).into_owned());
    let secrets = WebhookSecrets::one(secret.clone());
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), text.lines().last().unwrap_or("")] {
        if signature_is_valid(&secrets, body, Some(candidate)) {
            // Only the right digest, in any case and with surrounding whitespace, passes.
            assert_eq!(
                candidate.trim().to_ascii_lowercase(),
                sign(&secret, body),
                "an arbitrary signature verified"
            );
        }
    }

    let signature = sign(&secret, body);
    assert_eq!(signature.len(), 64);
    assert!(signature_is_valid(&secrets, body, Some(&signature)));
    assert!(signature_is_valid(
        &secrets,
        body,
        Some(&signature.to_ascii_uppercase())
    ));
    assert!(signature_is_valid(
        &secrets,
        body,
        Some(&format!(" {signature}\n"))
    ));
    assert!(!signature_is_valid(&secrets, body, None));
    // One changed hex digit, a truncated or an extended digest: refused.
    let position = data
        .first()
        .map_or(0, |&b| usize::from(b) % signature.len());
    let mut flipped = signature.clone().into_bytes();
    flipped[position] = if flipped[position] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(!signature_is_valid(&secrets, body, Some(&flipped)));
    assert!(!signature_is_valid(&secrets, body, Some(&signature[..62])));
    assert!(!signature_is_valid(
        &secrets,
        body,
        Some(&format!("{signature}00"))
    ));
    assert!(!signature_is_valid(&secrets, body, Some("")));
    // The same digest does not verify another body.
    let mut other = body.to_vec();
    other.push(b' ');
    assert!(!signature_is_valid(&secrets, &other, Some(&signature)));
});
