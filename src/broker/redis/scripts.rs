//! The Lua scripts the Redis broker runs. Each runs atomically on one Redis
//! instance; every key a script touches is passed in `KEYS` and hashes to the
//! same instance (they share the channel or key name).

/// Appends to a channel's capped stream and publishes, in one step, so
/// offsets are contiguous. KEYS: stream, meta. ARGV: pub/sub channel,
/// payload, max length, TTL seconds, refreshed TTL seconds (see below),
/// epoch to use if the channel has none. Returns `{epoch, offset}`. The
/// published message is `"<epoch> <offset>\n"` followed by the payload.
///
/// Expiry: both keys' expiry is refreshed only when the stream would live
/// less than TTL seconds more (or has none: it was just created), and then
/// set to the refreshed TTL (a little longer). History therefore lives at
/// least TTL seconds after the last event, at most the refreshed TTL, and
/// a busy inbox pays one `TTL` read per event instead of two `EXPIRE`
/// writes. Both keys always get the same deadline in the same call.
pub const PUBLISH: &str = r"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('hset', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('del', KEYS[1])
end
local off = redis.call('hincrby', KEYS[2], 'o', 1)
redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[3], off .. '-1', 'd', ARGV[2])
if redis.call('ttl', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('expire', KEYS[1], ARGV[5])
  redis.call('expire', KEYS[2], ARGV[5])
end
redis.call('publish', ARGV[1], epoch .. ' ' .. off .. '\n' .. ARGV[2])
return {epoch, off}
";

/// [`PUBLISH`] of one payload on many channels of one instance, in one
/// step. KEYS: stream 1, meta 1, stream 2, meta 2, ... ARGV: payload, max
/// length, TTL seconds, refreshed TTL seconds (expiry as in [`PUBLISH`]),
/// epoch prefix for channels that have none (the channel's index is
/// appended), then the pub/sub channel of each pair. Returns
/// `{{epoch, offset}, ...}` in KEYS order.
pub const PUBLISH_MANY: &str = r"
local out = {}
local ttl = tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
  local s, m = KEYS[2 * i - 1], KEYS[2 * i]
  local epoch = redis.call('hget', m, 'e')
  if not epoch then
    epoch = ARGV[5] .. i
    redis.call('hset', m, 'e', epoch, 'o', 0)
    redis.call('del', s)
  end
  local off = redis.call('hincrby', m, 'o', 1)
  redis.call('xadd', s, 'MAXLEN', ARGV[2], off .. '-1', 'd', ARGV[1])
  if redis.call('ttl', s) < ttl then
    redis.call('expire', s, ARGV[4])
    redis.call('expire', m, ARGV[4])
  end
  redis.call('publish', ARGV[5 + i], epoch .. ' ' .. off .. '\n' .. ARGV[1])
  out[i] = {epoch, off}
end
return out
";

/// Reads a channel's position and the entries after an offset. KEYS:
/// stream, meta. ARGV: after, limit, epoch to use if the channel has none,
/// TTL seconds. Returns `{epoch, top, entries}` (entries as XRANGE gives them).
pub const HISTORY: &str = r"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('hset', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('del', KEYS[1])
  redis.call('expire', KEYS[2], ARGV[4])
end
local top = tonumber(redis.call('hget', KEYS[2], 'o') or '0')
local entries = {}
if tonumber(ARGV[2]) > 0 and top > tonumber(ARGV[1]) then
  entries = redis.call('xrange', KEYS[1], '(' .. ARGV[1] .. '-1', '+', 'COUNT', ARGV[2])
end
return {epoch, top, entries}
";

/// A token bucket: KEYS[1] a hash {t: tokens, a: last refill, ms};
/// ARGV capacity, tokens per millisecond. Takes one token if there is
/// one (returns 1, else 0); the clock is Redis's own (TIME), so nodes'
/// clocks do not matter. The key expires once the bucket would be full.
pub const TOKEN_BUCKET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = cap
  at = now
end
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(now))
local ttl = 3600000
if rate > 0 then
  ttl = math.min(ttl, math.ceil((cap - tokens) / rate) + 1000)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return ok
";

/// Takes or renews a lease. KEYS: lease. ARGV: holder, TTL ms. Returns 1
/// when the holder has the lease now, else 0.
pub const LEASE: &str = r"
local cur = redis.call('get', KEYS[1])
if not cur then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Gives a lease up if the holder has it. KEYS: lease. ARGV: holder.
pub const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
end
return 1
";

/// Adds a node's presence record. KEYS: node set, last seen. ARGV: node,
/// now ms, expiry ms, last-seen TTL seconds, set TTL ms. Returns how many
/// other nodes had the key online before.
pub const PRESENCE_JOIN: &str = r"
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[2])
local before = redis.call('zcard', KEYS[1])
redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[5])
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[4])
return before
";

/// Removes a node's presence record. KEYS: node set, last seen. ARGV: node,
/// now ms, last-seen TTL seconds. Returns how many nodes still have it online.
pub const PRESENCE_LEAVE: &str = r"
redis.call('zrem', KEYS[1], ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[2])
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
return redis.call('zcard', KEYS[1])
";
