-- append.lua: append one entry to a stream at most once per idempotency id,
-- keep the workflow context (CCWJ deltas), and announce the entry.
--
-- KEYS[1]  the stream
-- KEYS[2]  the idempotency record, when ARGV[2] ~= "0"
-- KEYS[n]  the context hash (the next key), when ARGV[7] ~= ""
-- ARGV[1]  MAXLEN ~ retention
-- ARGV[2]  idempotency ttl in ms, "0" when the caller gave no id
-- ARGV[3]  fingerprint of the caller's payload
-- ARGV[4]  pub/sub channel
-- ARGV[5]  notice text before the entry id, ARGV[6] after it
-- ARGV[7]  context hash field, "" for none; ARGV[8] its value; ARGV[9] updated_at
-- ARGV[10…] the entry's field/value pairs
--
-- Returns {entry id, 0, ""} when appended, {first entry id, 1, its timestamp}
-- for a retry of the same payload, {first entry id, 2, its timestamp} when the
-- id was used for another payload (the timestamp is "" once trimmed away).
-- A key of the wrong type, or a bad retention or ttl, is an error and
-- nothing is written: every check precedes the first write, as a script
-- does not roll back.

local function wrongType(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want
  end
end

local idem = ARGV[2] ~= "0"
local ctxKey
if ARGV[7] ~= "" then
  ctxKey = idem and KEYS[3] or KEYS[2]
end

if not string.match(ARGV[1], '^%d+$') or not string.match(ARGV[2], '^%d+$') or #ARGV[2] > 15 then
  return redis.error_reply('ERR append.lua: the retention and the idempotency ttl must be whole numbers')
end
if #ARGV < 11 or #ARGV % 2 ~= 1 then
  return redis.error_reply('ERR append.lua: the entry needs field/value pairs')
end
local bad = wrongType(KEYS[1], 'stream') or (idem and wrongType(KEYS[2], 'string')) or
  (ctxKey and wrongType(ctxKey, 'hash'))
if bad then
  return redis.error_reply(bad)
end

local function stamp(id)
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if e[1] then
    local f = e[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'timestamp' then return f[i + 1] end
    end
  end
  return ''
end

if idem then
  local prev = redis.call('GET', KEYS[2])
  if prev then
    local sep = string.find(prev, ' ', 1, true)
    local id, fp = prev, ''
    if sep then
      id, fp = string.sub(prev, 1, sep - 1), string.sub(prev, sep + 1)
    end
    if fp == ARGV[3] then
      return {id, 1, stamp(id)}
    end
    return {id, 2, stamp(id)}
  end
end

local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 10))
if idem then
  redis.call('SET', KEYS[2], id .. ' ' .. ARGV[3], 'PX', ARGV[2])
end
if ctxKey then
  redis.call('HSET', ctxKey, ARGV[7], ARGV[8], 'last_delta_id', id, 'updated_at', ARGV[9])
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. ARGV[6])
return {id, 0, ""}
