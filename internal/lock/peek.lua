-- peek.lua: what a lock is now, read without writing and without its token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>
-- KEYS[2]  the owner label: mcp:owner:{mcp:locks:<resource>}
-- KEYS[3]  the fencing counter: mcp:fence:{mcp:locks:<resource>}
--
-- Returns {remaining ttl ms, owner label, fencing counter, now ms}: the ttl
-- is PTTL's (-2: not held; -1: held without an expiry, set outside this
-- server). The lock's value, the owner token, is never read: whoever may
-- read a lock's state may not thereby release it. While the lock is held
-- the counter is its grant's fencing token (only a grant advances it).

local left = redis.call('PTTL', KEYS[1])
local owner = ''
if left ~= -2 and redis.call('TYPE', KEYS[2]).ok == 'string' then
  owner = redis.call('GET', KEYS[2])
end
local fence = '0'
if redis.call('TYPE', KEYS[3]).ok == 'string' then
  fence = redis.call('GET', KEYS[3])
end
local t = redis.call('TIME')
return {left, owner, fence, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
