-- append.lua: append one entry to a stream at most once per idempotency id,
-- link it into the stream's hash chain (chained streams), keep the workflow
-- context (CCWJ deltas), and announce the entry.
--
-- KEYS[1]  the stream
-- KEYS[2]  the idempotency record, when ARGV[2] ~= "0"
-- KEYS[n]  the context hash (the next key), when ARGV[7] ~= ""
-- KEYS[m]  the chain head (the next key), when ARGV[10] ~= ""
-- ARGV[1]  MAXLEN ~ retention
-- ARGV[2]  idempotency ttl in ms, "0" when the caller gave no id
-- ARGV[3]  fingerprint of the caller's payload
-- ARGV[4]  pub/sub channel
-- ARGV[5]  notice text before the entry id, ARGV[6] after it
-- ARGV[7]  context hash field, "" for none; ARGV[8] its value; ARGV[9] updated_at
-- ARGV[10] the prev_hash the entry was hashed with, "" when not chained
-- ARGV[11] the entry's hash ("" when not chained)
-- ARGV[12] the pub/sub command: "publish", or "spublish" (sharded; the
--          channel then shares the stream's slot)
-- ARGV[13…] the entry's field/value pairs (prev_hash and hash among them)
--
-- The chain head holds "<entry id> <hash> <length>" (entries.lua).
--
-- Returns {entry id, 0, length of the chain or ""} when appended, {first
-- entry id, 1, its timestamp} for a retry of the same payload, {first entry
-- id, 2, its timestamp} when the id was used for another payload (the
-- timestamp is "" once trimmed away), and {head entry id, 3, head hash}
-- when the chain head is not ARGV[10]: another writer appended meanwhile,
-- nothing was written, and the caller rehashes onto that head. The
-- idempotency check comes first, so a duplicate never extends the chain.
-- A retry of the same payload rewrites its idempotency record unchanged
-- (SET … KEEPTTL): that write makes a WAIT after the script cover the first
-- entry too (redis.wait_replicas), as WAIT counts a connection's writes.
-- A key of the wrong type, a malformed head, or a bad retention, ttl or
-- hash is an error and nothing is written: every check precedes the first
-- write, as a script does not roll back.

local idem = ARGV[2] ~= "0"
local chained = ARGV[10] ~= ""
local n = idem and 3 or 2
local ctxKey, headKey
if ARGV[7] ~= "" then
  ctxKey = KEYS[n]
  n = n + 1
end
if chained then
  headKey = KEYS[n]
end

if not string.match(ARGV[1], '^%d+$') or not string.match(ARGV[2], '^%d+$') or #ARGV[2] > 15 then
  return redis.error_reply('ERR append.lua: the retention and the idempotency ttl must be whole numbers')
end
if #ARGV < 14 or #ARGV % 2 ~= 0 then
  return redis.error_reply('ERR append.lua: the entry needs field/value pairs')
end
if chained and not (isHash(ARGV[10]) and isHash(ARGV[11])) then
  return redis.error_reply('ERR append.lua: prev_hash and hash must be 64 lowercase hex digits')
end
local bad = wrongType(KEYS[1], 'stream') or (idem and wrongType(KEYS[2], 'string')) or
  (ctxKey and wrongType(ctxKey, 'hash')) or (headKey and wrongType(headKey, 'string'))
if bad then
  return redis.error_reply(bad)
end
if ARGV[12] ~= 'publish' and ARGV[12] ~= 'spublish' then
  return redis.error_reply('ERR append.lua: the pub/sub command must be publish or spublish')
end
local steps = {{'xadd', KEYS[1], '*', 'f', 'v'}, {ARGV[12], ARGV[4], 'n'}}
if idem then
  steps[#steps + 1] = {'set', KEYS[2], 'v'}
end
if ctxKey then
  steps[#steps + 1] = {'hset', ctxKey, 'f', 'v'}
end
if headKey then
  steps[#steps + 1] = {'set', headKey, 'v'}
end
local denied = refuse(steps)
if denied then
  return denied
end

local headID, headHash, headLen = '', GENESIS, 0
if chained then
  headID, headHash, headLen = readHead(headKey)
  if not headID then
    return redis.error_reply('ERR append.lua: the chain head ' .. headKey .. ' is malformed')
  end
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
      redis.call('SET', KEYS[2], prev, 'KEEPTTL')
      return {id, 1, stamp(KEYS[1], id)}
    end
    return {id, 2, stamp(KEYS[1], id)}
  end
end

if chained and headHash ~= ARGV[10] then
  return {headID, 3, headHash}
end

local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 13))
if idem then
  redis.call('SET', KEYS[2], id .. ' ' .. ARGV[3], 'PX', ARGV[2])
end
if ctxKey then
  redis.call('HSET', ctxKey, ARGV[7], ARGV[8], 'last_delta_id', id, 'updated_at', ARGV[9])
end
local length = ''
if chained then
  length = string.format('%d', headLen + 1)
  redis.call('SET', headKey, id .. ' ' .. ARGV[11] .. ' ' .. length)
end
redis.call(ARGV[12], ARGV[4], ARGV[5] .. id .. ARGV[6])
return {id, 0, length}
