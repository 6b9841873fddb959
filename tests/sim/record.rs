//! What the simulation saw: every call and its answer, every stream message, every fault,
//! and the events (replica kills, Redis wipes) that the invariants must take into account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Create,
    Get,
    Refund,
}

/// A call's answer as the caller received it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: Code,
    pub message: String,
    /// `grpc-status-details-bin` of an error.
    pub details: Vec<u8>,
    /// The encoded response message of an OK.
    pub body: Vec<u8>,
}

impl Answer {
    /// The answers a key replays (contract §3): a success or a definitive error.
    pub fn is_definitive(&self) -> bool {
        matches!(
            self.code,
            Code::Ok
                | Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::AlreadyExists
                | Code::NotFound
                | Code::Internal
        )
    }

    /// What a replay must repeat byte for byte.
    pub fn replay_bytes(&self) -> Vec<u8> {
        if self.code == Code::Ok {
            return self.body.clone();
        }
        let mut bytes = format!("{:?}\n{}\n", self.code, self.message).into_bytes();
        bytes.extend_from_slice(&self.details);
        bytes
    }

    pub fn describe(&self) -> String {
        if self.code == Code::Ok {
            // FNV-1a: enough to tell two bodies of the same length apart in a report.
            let hash = self.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("OK ({} bytes, fnv {hash:016x})", self.body.len())
        } else {
            format!("{:?} \"{}\"", self.code, self.message)
        }
    }
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    pub op: Op,
    pub reference: String,
    pub key: Option<String>,
    pub replica: usize,
    pub started: Duration,
    pub elapsed: Duration,
    /// None: no answer within the deadline and its grace (a hang).
    pub answer: Option<Answer>,
    /// The replica was down or killed while the call ran: its transport errors are not
    /// the service's answers.
    pub disrupted: bool,
    /// The Redis wipe epoch, when no wipe happened while the call ran.
    pub epoch: Option<u32>,
}

/// One stream message, reduced to what may never move backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub sequence: u64,
    pub status: i32,
    pub confirmation: i32,
    pub transaction: Option<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    Ok,
    Error(Code, String),
    /// Still open when the simulation ended.
    StillOpen,
}

#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub reference: String,
    pub replica: usize,
    pub steps: Vec<Step>,
    pub end: StreamEnd,
    pub disrupted: bool,
}

/// Per reference: the wipe epoch of its first create, and whether a Redis wipe may have
/// let a new-key behaviour through (contract §10: what the store forgets it cannot know).
#[derive(Debug, Clone, Default)]
pub struct ReferenceInfo {
    pub first_epoch: u32,
    pub wipe_exempt: bool,
}

pub struct Recorder {
    pub start: Instant,
    calls: Mutex<Vec<CallRecord>>,
    streams: Mutex<Vec<StreamRecord>>,
    faults: Mutex<Vec<String>>,
    references: Mutex<HashMap<String, ReferenceInfo>>,
    wipes: AtomicU32,
    kills: Vec<AtomicU32>,
    down: Vec<AtomicU32>,
}

impl Recorder {
    pub fn new(replicas: usize) -> Self {
        Recorder {
            start: Instant::now(),
            calls: Mutex::default(),
            streams: Mutex::default(),
            faults: Mutex::default(),
            references: Mutex::default(),
            wipes: AtomicU32::new(0),
            kills: (0..replicas).map(|_| AtomicU32::new(0)).collect(),
            down: (0..replicas).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn call(&self, record: CallRecord) {
        lock(&self.calls).push(record);
    }

    pub fn stream(&self, record: StreamRecord) {
        lock(&self.streams).push(record);
    }

    pub fn fault(&self, what: String) {
        let line = format!("t={:>5.1}s {what}", self.now().as_secs_f64());
        lock(&self.faults).push(line);
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.calls).clone()
    }

    pub fn streams(&self) -> Vec<StreamRecord> {
        lock(&self.streams).clone()
    }

    pub fn faults(&self) -> Vec<String> {
        lock(&self.faults).clone()
    }

    pub fn references(&self) -> HashMap<String, ReferenceInfo> {
        lock(&self.references).clone()
    }

    pub fn wipes(&self) -> u32 {
        self.wipes.load(Ordering::SeqCst)
    }

    /// Redis is about to lose its data.
    pub fn wiped(&self) {
        self.wipes.fetch_add(1, Ordering::SeqCst);
    }

    /// The first create of a reference is starting.
    pub fn first_create(&self, reference: &str) {
        lock(&self.references)
            .entry(reference.to_owned())
            .or_insert_with(|| ReferenceInfo {
                first_epoch: self.wipes(),
                wipe_exempt: false,
            });
    }

    /// Whether a new key may still be tried on this reference: no wipe since its first create.
    pub fn new_key_allowed(&self, reference: &str) -> bool {
        lock(&self.references)
            .get(reference)
            .is_some_and(|info| info.first_epoch == self.wipes())
    }

    /// A new-key behaviour on this reference ended; a wipe meanwhile exempts it from I1/I2.
    pub fn new_key_done(&self, reference: &str) {
        let wipes = self.wipes();
        if let Some(info) = lock(&self.references).get_mut(reference) {
            info.wipe_exempt |= info.first_epoch != wipes;
        }
    }

    /// A mark to compare after a call: the replica's kills so far, and whether it is down.
    pub fn replica_mark(&self, replica: usize) -> (u32, bool) {
        (
            self.kills[replica].load(Ordering::SeqCst),
            self.down[replica].load(Ordering::SeqCst) > 0,
        )
    }

    pub fn disrupted_since(&self, replica: usize, mark: (u32, bool)) -> bool {
        mark.1 || self.replica_mark(replica) != mark
    }

    pub fn replica_killed(&self, replica: usize) {
        self.down[replica].store(1, Ordering::SeqCst);
        self.kills[replica].fetch_add(1, Ordering::SeqCst);
    }

    pub fn replica_serving(&self, replica: usize) {
        self.down[replica].store(0, Ordering::SeqCst);
    }

    pub fn is_down(&self, replica: usize) -> bool {
        self.down[replica].load(Ordering::SeqCst) > 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
