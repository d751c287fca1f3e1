-- migrate_fence.lua: carry a lock's fencing counter over from its earlier
-- name, never letting it go backwards: the counter kept is the larger of
-- the two, and the earlier key is deleted. Both keys hash on the lock key's
-- name, so they share a cluster slot.
--
-- KEYS[1]  the earlier name: {mcp:locks:<resource>}:fence
-- KEYS[2]  the current name: mcp:fence:{mcp:locks:<resource>}
-- ARGV[1]  "1" to only report what would be kept (a dry run)
--
-- Returns {earlier, current, kept}: the two counters ("" when absent) and
-- the value the current key holds afterwards. A counter that is not an
-- integer is an error and nothing is written.

local old = redis.call('GET', KEYS[1])
local new = redis.call('GET', KEYS[2])
local function count(key, v)
  if not v then
    return 0
  end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < 0 then
    return nil, redis.error_reply('ERR migrate_fence.lua: ' .. key .. ' holds ' .. v .. ', not a fencing counter')
  end
  return n
end
local o, err = count(KEYS[1], old)
if err then
  return err
end
local n, err2 = count(KEYS[2], new)
if err2 then
  return err2
end
if not old then
  return {'', new or '', new or ''}
end
local kept = old
if new and n > o then
  kept = new
end
if ARGV[1] ~= '1' then
  redis.call('SET', KEYS[2], kept)
  redis.call('DEL', KEYS[1])
end
return {old, new or '', kept}
