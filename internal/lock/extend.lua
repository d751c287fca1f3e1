-- extend.lua: set a new ttl on a lock only for the holder of its token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>
-- KEYS[2]  the owner label: mcp:owner:{mcp:locks:<resource>}
-- KEYS[3]  the fencing counter: mcp:fence:{mcp:locks:<resource>}
-- ARGV[1]  the caller's token
-- ARGV[2]  the new ttl in ms, counted from now
--
-- Returns {1, now ms, owner label, fencing token} when extended, {0, now ms}
-- when the token does not hold the lock; the lock is then left untouched.
-- While a token holds the lock the counter is its grant's fencing token. A key that is neither absent
-- nor a string is an error, and no ttl is changed: every check precedes the
-- first write.

local function wrongType(key)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= 'string' then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a string'
  end
end

-- The ttl: whole ms from 1, short enough that now + ttl cannot overflow.
if not string.match(ARGV[2], '^[1-9]%d*$') or #ARGV[2] > 15 then
  return redis.error_reply('ERR extend.lua: the ttl must be a whole number of ms from 1 to 15 digits')
end
local bad = wrongType(KEYS[1]) or wrongType(KEYS[2]) or wrongType(KEYS[3])
if bad then
  return redis.error_reply(bad)
end
local denied = refuse({{'pexpire', KEYS[1], '1'}, {'pexpire', KEYS[2], '1'}})
if denied then
  return denied
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, now}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, now, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '0'}
