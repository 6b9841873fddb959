//! Every check-then-act of the Redis store, each one Lua script, so replicas cannot race.

use redis::Script;
use std::sync::LazyLock;

/// Opens, replays or joins an idempotency record (KEYS[1]). Once the record is the caller's,
/// takes the reference claim KEYS[2] (when given) for the caller's key ARGV[5] unless another
/// key holds it, refreshing its expiry: 1 new, 2 already the key's, 0 another key's. A new
/// record keeps the create's provider ARGV[7]; a record taken over answers the one it kept.
/// On a cluster the claim lives in another slot: CLAIM_REFERENCE takes it next, and this
/// answers an empty claim.
pub static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'fp', 'state', 'lease', 'code', 'msg', 'body', 'provider')
local resumed = '1'
local provider = rec[7] or ''
if not rec[1] then
  local lease = now + tonumber(ARGV[3])
  if ARGV[7] then
    redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', 'owner', ARGV[2], 'lease', lease, 'provider', ARGV[7])
    provider = ARGV[7]
  else
    redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', 'owner', ARGV[2], 'lease', lease)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  resumed = '0'
else
  if rec[1] ~= ARGV[1] then return {'conflict'} end
  if rec[2] == 'done' then return {'done', rec[4], rec[5], rec[6]} end
  if rec[2] == 'running' and tonumber(rec[3]) > now then return {'running'} end
  -- released after a transient outcome, or its owner's lease ran out: take it over
  redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
end
if not ARGV[7] then return {'acquired', resumed} end
if not KEYS[2] then return {'acquired', resumed, '', provider} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[5] then return {'acquired', resumed, '0', provider} end
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
if holder then return {'acquired', resumed, '2', provider} end
return {'acquired', resumed, '1', provider}
",
    )
});

/// The reference claim KEYS[1] for the key ARGV[1], as in BEGIN: 1 new, 2 already the
/// key's, 0 another key's.
pub static CLAIM_REFERENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if holder then return 2 end
return 1
",
    )
});

pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local rec = redis.call('HMGET', KEYS[1], 'owner', 'lease')
if rec[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wanted = now + tonumber(ARGV[2])
if wanted > (tonumber(rec[2]) or 0) then redis.call('HSET', KEYS[1], 'lease', wanted) end
return 1
",
    )
});

/// Records a final outcome if its owner still holds the record: the one definition FINISH
/// and SAVE_PAYIN_FINISHING share.
const FINISH_FUNCTION: &str = r"
local function finish(record, owner, code, message, body, ttl)
  if redis.call('HGET', record, 'owner') ~= owner then return false end
  redis.call('HSET', record, 'state', 'done', 'code', code, 'msg', message, 'body', body)
  -- no owner at all, not an empty one: no name, not even '', matches a finished record
  redis.call('HDEL', record, 'owner', 'lease')
  redis.call('PEXPIRE', record, ttl)
  return true
end
";

pub static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FINISH_FUNCTION}
if finish(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then return 1 end
return 0
"
    ))
});

pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'released')
redis.call('HDEL', KEYS[1], 'owner', 'lease')
return 1
",
    )
});

pub static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// The refund-sent mark lives in the payin's own hash, so it expires with the payin and
/// with nothing else (contract §3).
pub static MARK_REFUND_SENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = redis.call('HGET', KEYS[1], 'refund_sent')
if v and v ~= ARGV[1] then return 0 end
if v then return 2 end
redis.call('HSET', KEYS[1], 'refund_sent', ARGV[1])
return 1
",
    )
});

pub static UNCLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// Compare-and-set of a payin: the one place its state changes. In the same atomic step it
/// keeps the provider-reference index, the reference claim's lifetime and the reconciler's
/// schedule, and announces the change. Answers 0 (someone wrote first) before writing.
const SAVE_PAYIN_STEPS: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
local current = v and tonumber(v) or 0
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4]) end
-- the reference stays claimed for as long as its payin is kept
redis.call('PEXPIRE', KEYS[4], ARGV[4])
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[5])
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], 'NX', now + tonumber(ARGV[9]), ARGV[5])
end
if ARGV[8] == '1' then redis.call('PUBLISH', ARGV[10], ARGV[3]) end
";

/// SAVE_PAYIN_STEPS: 1 saved, 0 not.
pub static SAVE_PAYIN: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{SAVE_PAYIN_STEPS}\nreturn 1\n")));

/// SAVE_PAYIN_STEPS, then FINISH of the record KEYS[5] for the owner ARGV[11] (code, message,
/// body and lifetime in ARGV[12..15]): the last write of a create and its record in one round
/// trip. 2 saved and finished, 1 saved only (the record is no longer the owner's), 0 neither.
pub static SAVE_PAYIN_FINISHING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FINISH_FUNCTION}{SAVE_PAYIN_STEPS}
if finish(KEYS[5], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]) then return 2 end
return 1
"
    ))
});

/// SAVE_PAYIN's part in the payin's own slot (a cluster): the compare-and-set of the payin
/// KEYS[1], the lifetime of its claim KEYS[2], the announcement. The index and the schedule,
/// in other slots, are written around it.
pub static SAVE_PAYIN_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'v')
local current = v and tonumber(v) or 0
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[5] == '1' then redis.call('PUBLISH', ARGV[6], ARGV[3]) end
return 1
",
    )
});

/// Drops a payin (KEYS[1]) still at version ARGV[1]; on a cluster its index and schedule
/// entry, in other slots, go next.
pub static DROP_PAYIN_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
});

/// Drops a payin (KEYS[1]) still at version ARGV[1], its provider-reference index KEYS[2]
/// when it still names the payin's reference ARGV[2], and its schedule entry in KEYS[3].
pub static DROP_PAYIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
",
    )
});

pub static CLAIM_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, reference in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), reference)
end
return due
",
    )
});

/// Schedules ARGV[2] ARGV[1] ms from now: ARGV[3] is XX (only if scheduled) or NX (only if
/// not).
pub static SCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], ARGV[3], now + tonumber(ARGV[1]), ARGV[2])
",
    )
});

/// Takes a poll lease, or tells how long the current one still runs (in ms).
pub static POLL_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -1 end
return redis.call('PTTL', KEYS[1])
",
    )
});

/// Readiness: a write Redis must accept (a read-only replica, a primary out of memory or
/// without its required replicas refuses it), which leaves nothing behind.
pub static READY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], '1', 'PX', 10000)
return redis.call('DEL', KEYS[1])
",
    )
});
