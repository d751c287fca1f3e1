-- acquire.lua: take a lock if it is free, with a fencing token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>, holding the owner token
-- KEYS[2]  the fencing counter: {mcp:locks:<resource>}:fence (never expires)
-- KEYS[3]  the owner label: {mcp:locks:<resource>}:owner (same expiry as the lock)
-- ARGV[1]  token minted by the server
-- ARGV[2]  ttl in ms
-- ARGV[3]  owner label, "" for none
--
-- Returns {1, fencing token, now ms} when taken, {0, remaining ttl ms, now ms,
-- holder's owner label} when held by another. The lock is taken by one
-- SET NX PX; the counter only ever grows, across expiries and restarts.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  if ARGV[3] ~= '' then
    redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  else
    redis.call('DEL', KEYS[3])
  end
  return {1, fence, now}
end
local ttl = redis.call('PTTL', KEYS[1])
local owner = redis.call('GET', KEYS[3]) or ''
return {0, ttl, now, owner}
