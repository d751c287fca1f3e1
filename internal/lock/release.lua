-- release.lua: delete a lock only for the holder of its token.
--
-- KEYS[1]  the lock: mcp:locks:<resource>
-- KEYS[2]  the owner label: mcp:owner:{mcp:locks:<resource>}
-- KEYS[3]  the fencing counter: mcp:fence:{mcp:locks:<resource>}
-- ARGV[1]  the caller's token
-- ARGV[2]  channel to announce the release on; "" announces nothing (with
--          sharded pub/sub the caller announces it, as the channel is not
--          in the lock's slot)
-- ARGV[3]  the notice
--
-- Returns {1, owner label, fencing token} when released, {0} when the token
-- does not hold the lock (wrong, empty, foreign or expired); the lock is
-- then left untouched. Only a grant advances the counter, so while a token
-- holds the lock the counter is that grant's fencing token. A key that
-- is neither absent nor a string is an error, and nothing is deleted or
-- announced: every check precedes the first write.

local function wrongType(key)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= 'string' then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a string'
  end
end

local bad = wrongType(KEYS[1]) or wrongType(KEYS[2]) or wrongType(KEYS[3])
if bad then
  return redis.error_reply(bad)
end
local steps = {{'del', KEYS[1], KEYS[2]}}
if ARGV[2] ~= '' then
  steps[2] = {'publish', ARGV[2], 'n'}
end
local denied = refuse(steps)
if denied then
  return denied
end
if ARGV[1] == '' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
local owner = redis.call('GET', KEYS[2]) or ''
local fence = redis.call('GET', KEYS[3]) or '0'
redis.call('DEL', KEYS[1], KEYS[2])
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return {1, owner, fence}
