-- extend.lua: set a new ttl on a lock only for the holder of its token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>
-- KEYS[2]  the owner label: {mcp:locks:<resource>}:owner
-- ARGV[1]  the caller's token
-- ARGV[2]  the new ttl in ms, counted from now
--
-- Returns {1, now ms} when extended, {0, now ms} when the token does not hold
-- the lock; the lock is then left untouched.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, now}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, now}
