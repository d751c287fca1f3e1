-- acquire.lua: take a lock if it is free, with a fencing token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>, holding the owner token
-- KEYS[2]  the fencing counter: mcp:fence:{mcp:locks:<resource>} (never expires)
-- KEYS[3]  the owner label: mcp:owner:{mcp:locks:<resource>} (same expiry as the lock)
-- ARGV[1]  token minted by the server
-- ARGV[2]  ttl in ms
-- ARGV[3]  owner label, "" for none
-- ARGV[4]  channel to announce a grant on; "" announces nothing (with
--          sharded pub/sub the caller announces it, as the channel is not
--          in the lock's slot)
-- ARGV[5]  the notice up to its fencing token: '{…,"fencing_token":'; the
--          script appends the token and '}'
--
-- Returns {1, fencing token, now ms} when taken, {0, remaining ttl ms, now ms,
-- holder's owner label} when held by another. The lock is taken by one
-- SET NX PX. The counter only ever grows: across expiries, and across
-- restarts as long as Redis keeps its data (a Redis restart keeps it only
-- with persistence, AOF or RDB; the embedded Redis keeps nothing).
--
-- A key that is neither absent nor a string, or a counter INCR cannot grow,
-- is an error and nothing is written: every check precedes the first write,
-- as a script does not roll back.

local function wrongType(key)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= 'string' then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a string'
  end
end

-- growable says whether INCR takes s: a decimal int64 in Redis's strict
-- form (no sign but '-', no leading zero, no spaces) below the maximum.
local function growable(s)
  local neg, digits = string.match(s, '^(%-?)(%d+)$')
  if not digits or (#digits > 1 and string.sub(digits, 1, 1) == '0') or (neg == '-' and digits == '0') then
    return false
  end
  if #digits ~= 19 then
    return #digits < 19
  end
  if neg == '-' then
    return digits <= '9223372036854775808'
  end
  return digits < '9223372036854775807'
end

-- The ttl: whole ms from 1, short enough that now + ttl cannot overflow.
if not string.match(ARGV[2], '^[1-9]%d*$') or #ARGV[2] > 15 then
  return redis.error_reply('ERR acquire.lua: the ttl must be a whole number of ms from 1 to 15 digits')
end
local bad = wrongType(KEYS[1]) or wrongType(KEYS[2]) or wrongType(KEYS[3])
if bad then
  return redis.error_reply(bad)
end
local counter = redis.call('GET', KEYS[2])
if counter and not growable(counter) then
  return redis.error_reply('ERR ' .. KEYS[2] .. ' holds a string that is not an integer INCR can grow')
end

local channel = ARGV[4] or ''
local steps = {{'set', KEYS[1], 'v'}, {'incr', KEYS[2]}, {'set', KEYS[3], 'v'}, {'del', KEYS[3]}}
if channel ~= '' then
  steps[5] = {'publish', channel, 'n'}
end
local denied = refuse(steps)
if denied then
  return denied
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  if ARGV[3] ~= '' then
    redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  else
    redis.call('DEL', KEYS[3])
  end
  if channel ~= '' then
    -- The counter's own text: a Lua number prints large ones inexactly.
    redis.call('PUBLISH', channel, ARGV[5] .. redis.call('GET', KEYS[2]) .. '}')
  end
  return {1, fence, now}
end
local left = redis.call('PTTL', KEYS[1])
local owner = redis.call('GET', KEYS[3]) or ''
return {0, left, now, owner}
