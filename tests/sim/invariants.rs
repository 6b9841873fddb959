//! The money-safety invariants, checked on what was recorded and on the sandbox's journal.
//! I5 (GetPayin equals the provider) needs live calls and lives in truth.rs.

use super::calls::{DEADLINE, HANG_GRACE, is_deadline, is_transient_code};
use super::clients::is_contract_code;
use super::record::{Answer, CallRecord, Op, ReferenceInfo, Step, StreamEnd, StreamRecord};
use super::truth::ProviderTruth;
use payments_gateway::proto::{ConfirmationStatus, PayinStatus, TransactionStatus};
use payments_gateway::sandbox::JournalEntry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tonic::{Code, Status};

pub type Violations = BTreeMap<&'static str, Vec<String>>;

/// I1: at most one payin created upstream per reference — distinct idempotency keys among
/// the creates the sandbox processed and did not reject as invalid (a 409 "reference
/// already used" counts: only the provider's own check stopped a second payin).
pub fn at_most_one_payin(
    journal: &[JournalEntry],
    refs: &HashMap<String, ReferenceInfo>,
) -> Vec<String> {
    let mut keys: BTreeMap<&str, BTreeMap<&str, Vec<u16>>> = BTreeMap::new();
    for entry in journal.iter().filter(|e| e.operation == "create") {
        if !matches!(entry.http_status, 400 | 422) {
            keys.entry(&entry.reference)
                .or_default()
                .entry(&entry.idempotency_key)
                .or_default()
                .push(entry.http_status);
        }
    }
    keys.into_iter()
        .filter(|(reference, keys)| keys.len() > 1 && !wipe_exempt(refs, reference))
        .map(|(reference, keys)| {
            format!(
                "{reference}: {} provider keys created it: {keys:?}",
                keys.len()
            )
        })
        .collect()
}

/// I2: at most one refund sent upstream per payin (distinct provider keys), and never more
/// than the payin amount.
pub fn at_most_one_refund(
    journal: &[JournalEntry],
    refs: &HashMap<String, ReferenceInfo>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut keys: BTreeMap<&str, BTreeMap<&str, Vec<u16>>> = BTreeMap::new();
    for entry in journal.iter().filter(|e| e.operation == "refund") {
        let payin = entry.payin_reference.as_deref().unwrap_or(&entry.reference);
        keys.entry(payin)
            .or_default()
            .entry(&entry.idempotency_key)
            .or_default()
            .push(entry.http_status);
        let refunded = (200..300).contains(&entry.http_status);
        if let (true, Some(amount), Some(limit)) = (refunded, entry.amount, entry.payin_amount)
            && amount > limit
        {
            violations.push(format!(
                "{payin}: refunded {amount}, more than the payin's {limit}"
            ));
        }
    }
    violations.extend(
        keys.into_iter()
            .filter(|(payin, keys)| keys.len() > 1 && !wipe_exempt(refs, payin))
            .map(|(payin, keys)| {
                format!(
                    "{payin}: refunds under {} provider keys (statuses {keys:?})",
                    keys.len()
                )
            }),
    );
    violations
}

fn wipe_exempt(refs: &HashMap<String, ReferenceInfo>, reference: &str) -> bool {
    refs.get(reference).is_some_and(|info| info.wipe_exempt)
}

/// I3: every call answered, with a contract code, within its deadline. A replica killed
/// during the call cannot answer: its transport errors are not held against the service.
pub fn every_call_answered(calls: &[CallRecord]) -> Vec<String> {
    let mut violations = Vec::new();
    for call in calls {
        let what = describe_call(call);
        match &call.answer {
            None if !call.disrupted => violations.push(format!(
                "{what}: no answer after {:?} (deadline {DEADLINE:?} + {HANG_GRACE:?})",
                call.elapsed
            )),
            Some(answer)
                if !call.disrupted
                    && !is_contract_code(answer.code)
                    && !is_deadline(&Status::new(answer.code, answer.message.clone())) =>
            {
                violations.push(format!(
                    "{what}: not a contract code: {}",
                    answer.describe()
                ));
            }
            _ => {}
        }
    }
    violations
}

fn describe_call(call: &CallRecord) -> String {
    format!(
        "{:?} {} key={} replica {} at t={:.1}s",
        call.op,
        call.reference,
        call.key.as_deref().unwrap_or("-"),
        call.replica,
        call.started.as_secs_f64()
    )
}

fn status_rank(status: i32) -> i32 {
    match PayinStatus::try_from(status).unwrap_or(PayinStatus::Unspecified) {
        PayinStatus::Unspecified | PayinStatus::Pending => 0,
        PayinStatus::AwaitingConfirmation => 1,
        PayinStatus::Processing => 2,
        _ => 3,
    }
}

fn confirmation_rank(confirmation: i32) -> i32 {
    match ConfirmationStatus::try_from(confirmation).unwrap_or(ConfirmationStatus::Unspecified) {
        ConfirmationStatus::Unspecified | ConfirmationStatus::None => 0,
        ConfirmationStatus::Pending => 1,
        _ => 2,
    }
}

fn transaction_rank(transaction: Option<i32>) -> i32 {
    match transaction
        .map(|t| TransactionStatus::try_from(t).unwrap_or(TransactionStatus::Unspecified))
    {
        None | Some(TransactionStatus::Unspecified) => 0,
        Some(TransactionStatus::Pending) => 1,
        Some(_) => 2,
    }
}

fn is_terminal(status: i32) -> bool {
    status_rank(status) == 3
}

/// Whether `next` moves any component backwards from `previous`, or changes a final one.
fn moves_backwards(previous: &Step, next: &Step) -> Option<&'static str> {
    if status_rank(next.status) < status_rank(previous.status)
        || (is_terminal(previous.status) && previous.status != next.status)
    {
        return Some("status");
    }
    if confirmation_rank(next.confirmation) < confirmation_rank(previous.confirmation)
        || (confirmation_rank(previous.confirmation) == 2
            && previous.confirmation != next.confirmation)
    {
        return Some("confirmation");
    }
    if transaction_rank(next.transaction) < transaction_rank(previous.transaction)
        || (transaction_rank(previous.transaction) == 2 && previous.transaction != next.transaction)
    {
        return Some("transaction");
    }
    None
}

fn show(step: &Step) -> String {
    format!(
        "#{} {:?}/{:?}/{:?}",
        step.sequence,
        PayinStatus::try_from(step.status).unwrap_or(PayinStatus::Unspecified),
        ConfirmationStatus::try_from(step.confirmation).unwrap_or(ConfirmationStatus::Unspecified),
        step.transaction
            .map(|t| TransactionStatus::try_from(t).unwrap_or(TransactionStatus::Unspecified))
    )
}

/// I4: no stream moves backwards (status, then confirmation, then transaction); each ends
/// with OK after its terminal status, or with a contract error.
pub fn streams_move_forward(streams: &[StreamRecord], truth: &ProviderTruth) -> Vec<String> {
    let mut violations = Vec::new();
    for stream in streams {
        let what = format!("stream {} on replica {}", stream.reference, stream.replica);
        let mut complain = |problem: String| violations.push(format!("{what}: {problem}"));
        for (i, step) in stream.steps.iter().enumerate() {
            if step.sequence != i as u64 + 1 {
                complain(format!(
                    "message {} carries sequence {}",
                    i + 1,
                    step.sequence
                ));
            }
        }
        for pair in stream.steps.windows(2) {
            if is_terminal(pair[0].status) {
                complain(format!(
                    "a message after the terminal one: {} then {}",
                    show(&pair[0]),
                    show(&pair[1])
                ));
            } else if let Some(component) = moves_backwards(&pair[0], &pair[1]) {
                complain(format!(
                    "{component} moved backwards: {} then {}",
                    show(&pair[0]),
                    show(&pair[1])
                ));
            }
        }
        let last_terminal = stream.steps.last().is_some_and(|s| is_terminal(s.status));
        let upstream_terminal = truth
            .get(&stream.reference)
            .is_some_and(|(_, s)| status_rank(*s as i32) == 3);
        match &stream.end {
            StreamEnd::Ok if !last_terminal => {
                complain("ended OK without a terminal status".into())
            }
            StreamEnd::Error(code, message)
                if !stream.disrupted && (!is_contract_code(*code) || *code == Code::Ok) =>
            {
                complain(format!(
                    "ended with {code:?} \"{message}\", not a contract code"
                ))
            }
            StreamEnd::StillOpen if last_terminal => {
                complain("still open after its terminal message".into())
            }
            StreamEnd::StillOpen if stream.steps.is_empty() => complain("no snapshot, ever".into()),
            StreamEnd::StillOpen if upstream_terminal => complain(format!(
                "still open after quiescence at {}, while the payin is terminal upstream",
                show(stream.steps.last().expect("a message"))
            )),
            _ => {}
        }
    }
    violations
}

/// I6: for each (operation, key), within one Redis lifetime, every definitive answer equals
/// the first one byte for byte.
pub fn replays_are_identical(calls: &[CallRecord]) -> Vec<String> {
    let mut groups: BTreeMap<(Op, &str, u32), Vec<&CallRecord>> = BTreeMap::new();
    for call in calls {
        let (Some(key), Some(epoch), Some(answer)) = (&call.key, call.epoch, &call.answer) else {
            continue;
        };
        let transport_error = call.disrupted && answer.code != Code::Ok;
        if answer.is_definitive() && !transport_error && !is_transient_code(answer.code) {
            groups.entry((call.op, key, epoch)).or_default().push(call);
        }
    }
    let mut violations = Vec::new();
    for ((op, key, _), mut answers) in groups {
        answers.sort_by_key(|c| c.started);
        let first = answers[0].answer.as_ref().expect("answered");
        let different: BTreeSet<String> = answers[1..]
            .iter()
            .filter_map(|c| c.answer.as_ref())
            .filter(|a| a.replay_bytes() != first.replay_bytes())
            .map(|a| a.describe())
            .collect();
        if !different.is_empty() {
            violations.push(format!(
                "{op:?} key {key}: first answer {}, later {different:?}",
                first.describe()
            ));
        }
    }
    violations
}

/// I5, the other way round: a payin the provider created (a 2xx create in its journal) was
/// never answered, for good, as something else to the key that created it. Contract §3:
/// nothing that may exist upstream is recorded as INTERNAL or ALREADY_EXISTS. References
/// created before a Redis wipe are left out (contract §10).
pub fn created_upstream_is_never_denied(
    journal: &[JournalEntry],
    calls: &[CallRecord],
    refs: &HashMap<String, ReferenceInfo>,
    wipes: u32,
) -> Vec<String> {
    let created: BTreeSet<&str> = journal
        .iter()
        .filter(|e| e.operation == "create" && (200..300).contains(&e.http_status))
        .map(|e| e.reference.as_str())
        .collect();
    let mut violations = Vec::new();
    for reference in created {
        if refs
            .get(reference)
            .is_none_or(|info| info.first_epoch != wipes)
        {
            continue;
        }
        let answers: Vec<(&CallRecord, &Answer)> = calls
            .iter()
            .filter(|c| c.op == Op::Create && c.reference == reference)
            .filter_map(|c| c.answer.as_ref().map(|a| (c, a)))
            .filter(|(c, a)| !(c.disrupted && a.code != Code::Ok))
            .collect();
        if answers.iter().any(|(_, a)| a.code == Code::Ok) {
            continue;
        }
        let first_key = format!("{reference}-create-1");
        let denied = answers
            .iter()
            .rev()
            .find(|(c, a)| c.key.as_deref() == Some(&first_key) && a.is_definitive());
        if let Some((call, answer)) = denied {
            violations.push(format!(
                "{reference}: the provider created it, yet key {first_key} was answered {} for good (t={:.1}s) and no call ever answered OK",
                answer.describe(),
                call.started.as_secs_f64()
            ));
        }
    }
    violations
}
