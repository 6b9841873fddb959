//! The HUB2 sandbox's state machine, each outcome read back through the gateway's own HUB2
//! reader, so that the sandbox and §9's table agree.

use super::*;
use crate::domain::{NextActionKind, PayinStatus};
use crate::provider::hub2::wire::parse_intent;
use serde_json::json;

const STEP: Duration = Duration::from_secs(2);

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn intent(msisdn: &str) -> Intent {
    Intent::new(
        "m_sandbox",
        "order-1".into(),
        msisdn.into(),
        1500,
        "XOF".into(),
        now(),
    )
}

fn attempt(msisdn: &str, operator: &str) -> Attempt {
    Attempt {
        id: new_id("pa"),
        operator: operator.into(),
        country: "CI".into(),
        msisdn: msisdn.into(),
        status: AttemptStatus::Pending,
        success_url: String::new(),
        failure_url: String::new(),
        created_at: now(),
    }
}

/// An intent with its attempt made through `operator`.
fn paying(msisdn: &str, operator: &str) -> Intent {
    let mut intent = intent(msisdn);
    let action = ActionKind::for_operator(operator).unwrap();
    assert_eq!(
        intent.attempt(attempt(msisdn, operator), action, now()),
        Ok("payment_intent.action_required")
    );
    intent
}

/// The gateway's reading of the intent: its status and next action.
fn read(intent: &Intent) -> (PayinStatus, Option<NextActionKind>, String) {
    let body = intent
        .to_json("http://sandbox.test/hub2/pay/tok")
        .to_string();
    let payin = parse_intent(body.as_bytes()).unwrap().payin;
    let action = payin.next_action.as_ref().map(|a| a.kind);
    (payin.status, action, payin.payment_url)
}

#[test]
fn a_new_intent_is_the_seed_document_s_and_waits_for_payment() {
    let intent = intent("+2250700000042");
    let body = intent.to_json("unused");
    for field in [
        "id",
        "merchantId",
        "createdAt",
        "updatedAt",
        "token",
        "purchaseReference",
        "customerReference",
        "status",
        "amount",
        "currency",
        "payments",
        "mode",
    ] {
        assert!(body.get(field).is_some(), "{field} is missing");
    }
    assert!(body["id"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(body["status"], "payment_required");
    assert_eq!(body["payments"], json!([]));
    assert_eq!(body["mode"], "sandbox");
    assert!(body.get("nextAction").is_none());
    assert_eq!(read(&intent).0, PayinStatus::Pending);
}

#[test]
fn each_operator_asks_for_its_next_action() {
    let cases = [
        ("orange", NextActionKind::Otp, ""),
        ("mtn", NextActionKind::Ussd, ""),
        (
            "moov",
            NextActionKind::Redirect,
            "http://sandbox.test/hub2/pay/tok",
        ),
        (
            "wave",
            NextActionKind::Redirect,
            "http://sandbox.test/hub2/pay/tok",
        ),
    ];
    for (operator, kind, payment_url) in cases {
        let intent = paying("+2250700000042", operator);
        assert_eq!(
            read(&intent),
            (
                PayinStatus::AwaitingConfirmation,
                Some(kind),
                payment_url.to_owned()
            ),
            "{operator}"
        );
        let body = intent.to_json("http://sandbox.test/hub2/pay/tok");
        assert_eq!(body["payments"][0]["status"], "pending");
        assert_eq!(body["payments"][0]["provider"], operator);
    }
    let otp = paying("+2250700000042", "orange").to_json("");
    assert!(
        otp["nextAction"]["message"]
            .as_str()
            .unwrap()
            .contains(OTP_CODE)
    );
    let ussd = paying("+2250700000042", "mtn").to_json("");
    assert!(
        ussd["nextAction"]["message"]
            .as_str()
            .unwrap()
            .contains("*133#")
    );
    assert_eq!(ActionKind::for_operator("airtel"), None);
}

#[test]
fn one_attempt_per_intent_and_none_on_a_canceled_one() {
    let mut intent = paying("+2250700000042", "orange");
    let again = intent.attempt(attempt("+2250700000042", "orange"), ActionKind::Otp, now());
    assert_eq!(again, Err(AttemptRefused::AlreadyAttempted));
    let mut canceled = self::intent("+2250700000042");
    assert!(canceled.advance(Step::Expire, now()).is_some());
    let late = canceled.attempt(attempt("+2250700000042", "mtn"), ActionKind::Ussd, now());
    assert_eq!(
        late,
        Err(AttemptRefused::NotPayable(IntentStatus::Canceled))
    );
}

#[test]
fn the_right_code_accepts_a_wrong_one_changes_nothing() {
    let mut intent = paying("+2250700000042", "orange");
    assert_eq!(
        intent.authenticate("000000", now()),
        Err(CodeRefused::Wrong)
    );
    assert_eq!(intent.status, IntentStatus::ActionRequired);
    assert_eq!(
        intent.authenticate(OTP_CODE, now()),
        Ok("payment_intent.processing")
    );
    assert_eq!(read(&intent).0, PayinStatus::Processing);
    assert_eq!(read(&intent).1, None, "no next action once processing");
    assert_eq!(
        intent.authenticate(OTP_CODE, now()),
        Err(CodeRefused::NotExpected)
    );
    assert_eq!(intent.plan_after_accept(STEP), vec![(STEP, Step::Complete)]);
    assert_eq!(
        intent.advance(Step::Complete, now()),
        Some("payment_intent.succeeded")
    );
    assert_eq!(read(&intent).0, PayinStatus::Succeeded);
    assert_eq!(intent.to_json("")["payments"][0]["status"], "successful");
    // A code is only for OTP intents.
    let mut ussd = paying("+2250700000042", "mtn");
    assert_eq!(
        ussd.authenticate(OTP_CODE, now()),
        Err(CodeRefused::NotExpected)
    );
}

#[test]
fn the_payer_page_accepts_or_declines() {
    let mut accepted = paying("+2250700000042", "moov");
    assert!(accepted.advance(Step::Accept, now()).is_some());
    assert!(
        accepted.advance(Step::Decline, now()).is_none(),
        "answered once"
    );
    assert_eq!(read(&accepted).0, PayinStatus::Processing);

    let mut declined = paying("+2250700000042", "mtn");
    assert_eq!(
        declined.advance(Step::Decline, now()),
        Some("payment_intent.payment_failed")
    );
    let body = declined.to_json("");
    assert_eq!(body["status"], "payment_required");
    assert_eq!(body["lastPaymentFailure"]["code"], "payment_declined");
    assert_eq!(body["payments"][0]["status"], "failed");
    assert_eq!(read(&declined).0, PayinStatus::Failed);
    assert!(
        declined.advance(Step::Expire, now()).is_none(),
        "a failed intent does not expire"
    );
}

/// Each magic ending plays its steps by itself; the last state maps to §9's status.
#[test]
fn magic_endings_play_their_scenario_and_map_onto_the_table() {
    let cases = [
        ("0000", PayinStatus::Succeeded),
        ("0001", PayinStatus::Failed),
        ("0002", PayinStatus::Expired),
        ("0003", PayinStatus::Failed),
    ];
    for (ending, expected) in cases {
        let msisdn = format!("+22507000{ending}");
        let mut intent = paying(&msisdn, "mtn");
        let plan = intent.plan_after_attempt(STEP);
        assert!(!plan.is_empty(), "{ending}");
        for (delay, step) in plan {
            assert_eq!(delay, STEP);
            assert!(intent.advance(step, now()).is_some(), "{ending}: {step:?}");
        }
        assert_eq!(read(&intent).0, expected, "{ending}");
        assert!(intent.is_final(), "{ending}");
    }
    let expired = {
        let mut intent = paying("+2250700000002", "orange");
        intent.advance(Step::Expire, now());
        intent.to_json("")
    };
    assert_eq!(expired["status"], "canceled");
    assert_eq!(expired["payments"][0]["status"], "canceled");
    assert!(expired.get("lastPaymentFailure").is_none());
    let failed = {
        let mut intent = paying("+2250700000003", "orange");
        for (_, step) in intent.plan_after_attempt(STEP) {
            intent.advance(step, now());
        }
        intent.to_json("")
    };
    assert_eq!(failed["lastPaymentFailure"]["code"], "insufficient_funds");
}

#[test]
fn silent_numbers_never_expire_and_others_wait_for_their_payer() {
    let mut silent = paying("+2250700000004", "orange");
    assert!(silent.plan_after_attempt(STEP).is_empty());
    assert!(silent.advance(Step::Expire, now()).is_none());
    assert_eq!(read(&silent).0, PayinStatus::AwaitingConfirmation);

    let mut waiting = paying("+2250700000042", "wave");
    assert!(waiting.plan_after_attempt(STEP).is_empty());
    assert_eq!(
        waiting.advance(Step::Expire, now()),
        Some("payment_intent.canceled")
    );
    assert_eq!(read(&waiting).0, PayinStatus::Expired);
    // A payer whose transaction fails: accepted, then the failure.
    let failing = paying("+2250700000003", "moov");
    assert_eq!(failing.plan_after_accept(STEP), vec![(STEP, Step::Fail)]);
}

#[test]
fn intents_are_found_by_id_and_token() {
    let mut intents = Intents::default();
    let intent = intent("+2250700000042");
    let (id, token) = (intent.id.clone(), intent.token.clone());
    intents.insert(intent);
    assert_eq!(intents.by_token(&token).unwrap().id, id);
    assert!(intents.by_token(&id).is_none(), "an id is not a token");
    assert!(intents.get_mut(&id).is_some());
    assert_eq!(intents.get(&id).unwrap().masked_payer(), "**********0042");
}
