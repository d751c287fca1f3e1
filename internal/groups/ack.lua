-- ack.lua: acknowledge entries of a consumer group.
--
-- KEYS[1]  the stream: mcp:<stream>
-- ARGV[1]  group
-- ARGV[2…] entry ids (ms-seq), at most 100, each once
--
-- Returns {1 or 0 for each id}: 1 when it was pending in the group and is
-- now acknowledged, 0 when it was not pending (never delivered, already
-- acknowledged, or claimed and acknowledged by another consumer). A group
-- that does not exist is a NOGROUP error; so is a stream that does not.
-- Every check precedes the first write.

local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'stream' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. t .. ', not a stream')
end
if #ARGV < 2 or #ARGV > 101 then
  return redis.error_reply('ERR ack.lua: from 1 to 100 ids')
end
-- u64 says whether s is a decimal that fits 64 bits unsigned.
local function u64(s)
  return #s < 20 or (#s == 20 and s <= '18446744073709551615')
end
for i = 2, #ARGV do
  local ms, seq = string.match(ARGV[i], '^(%d+)%-(%d+)$')
  if not ms or not u64(ms) or not u64(seq) then
    return redis.error_reply('ERR ack.lua: ' .. ARGV[i] .. ' is not a stream id')
  end
end
if t == 'none' then
  return redis.error_reply("NOGROUP No such key '" .. KEYS[1] .. "' or consumer group '" .. ARGV[1] .. "'")
end
local r = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
  return redis.error_reply(r.err)
end

local denied = refuse({{'xack', KEYS[1], ARGV[1], ARGV[2]}})
if denied then
  return denied
end
local acked = {}
for i = 2, #ARGV do
  acked[i - 1] = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
end
return acked
