-- append_batch.lua: append a batch of entries to one stream at once, each at
-- most once per idempotency id, linked into the stream's hash chain (chained
-- streams) in batch order, keeping the workflow context (CCWJ deltas), and
-- announce each entry appended. All or nothing: every check below precedes
-- the first write, as a script does not roll back.
--
-- KEYS[1]  the stream
-- KEYS[2]  the chain head, when ARGV[6] ~= ""
-- KEYS[n…] per entry, in order: its idempotency record (when its ARGV[e]
--          ~= "-"), then its context hash (when its ARGV[e+3] ~= "")
-- ARGV[1]  MAXLEN ~ retention
-- ARGV[2]  idempotency ttl in ms
-- ARGV[3]  pub/sub channel
-- ARGV[4]  the pub/sub command: "publish", or "spublish" (sharded; the
--          channel then shares the stream's slot)
-- ARGV[5]  notice text before the entry id
-- ARGV[6]  the chain head hash the first new entry was hashed onto, "" when
--          not chained
-- ARGV[7]  the number of entries
-- ARGV[8…] per entry, from its index e:
--   ARGV[e]    "-" when the entry has no idempotency id; else what the caller
--              expects: "new", or "dup" (a chained stream's entries that
--              are duplicates carry no chain link)
--   ARGV[e+1]  fingerprint of the entry's payload
--   ARGV[e+2]  notice text after the entry id
--   ARGV[e+3]  context hash field, "" for none; ARGV[e+4] its value;
--              ARGV[e+5] updated_at
--   ARGV[e+6]  k, the number of field/value arguments that follow
--   ARGV[e+7…e+6+k] the entry's field/value pairs; on a chained stream an
--              entry expected new ends with prev_hash, <p>, hash, <h>, each
--              p the head or the hash of the new entry before it
--
-- The chain head holds "<entry id> <hash> <length>" (entries.lua).
--
-- Returns {state, head hash, chain length before the batch, then per entry
-- its state, id and timestamp}. The entry states: 0 new (the id it was
-- given once written), 1 a retry of the same payload (the first entry's id
-- and timestamp; "" once trimmed away), 2 an id used for another payload
-- (the same). The batch states:
--   0  written: each entry new was appended, each duplicate's record was
--      rewritten unchanged (SET … KEEPTTL, so a WAIT after the script
--      covers the first entries too, as append.lua does)
--   1  nothing written, on a chained stream: the duplicates are not those
--      expected, or the head is not ARGV[6] (another writer appended); the
--      caller relinks the new entries onto the head returned and calls again
--   2  nothing written: an entry's id was used for another payload
-- On a stream that is not chained the script classifies the entries itself
-- and never answers 1. A key of the wrong type, a malformed head or a bad
-- argument is an error, and nothing is written.



local function fail(msg)
  return redis.error_reply('ERR append_batch.lua: ' .. msg)
end

if not string.match(ARGV[1], '^%d+$') or not string.match(ARGV[2], '^%d+$') or #ARGV[2] > 15 or ARGV[2] == '0' then
  return fail('the retention and the idempotency ttl must be whole numbers, the ttl above 0')
end
if ARGV[4] ~= 'publish' and ARGV[4] ~= 'spublish' then
  return fail('the pub/sub command must be publish or spublish')
end
local chained = ARGV[6] ~= ''
if chained and not isHash(ARGV[6]) then
  return fail('the chain head hash must be 64 lowercase hex digits')
end
if not string.match(ARGV[7], '^%d+$') or tonumber(ARGV[7]) < 1 then
  return fail('the batch needs at least one entry')
end
local n = tonumber(ARGV[7])

-- Read the batch: one table per entry, the arguments checked.
local ents = {}
local a, k = 8, chained and 3 or 2
local prev = ARGV[6]
local expectNew = 0
for i = 1, n do
  if a + 6 > #ARGV then
    return fail('entry ' .. i .. ' is cut short')
  end
  local e = {expect = ARGV[a], fp = ARGV[a + 1], tail = ARGV[a + 2], cf = ARGV[a + 3], cv = ARGV[a + 4], cu = ARGV[a + 5]}
  if e.expect ~= '-' and e.expect ~= 'new' and e.expect ~= 'dup' then
    return fail('entry ' .. i .. ' expects neither "-", "new" nor "dup"')
  end
  local c = ARGV[a + 6]
  if not string.match(c, '^%d+$') or tonumber(c) < 2 or tonumber(c) % 2 ~= 0 or a + 6 + tonumber(c) > #ARGV then
    return fail('entry ' .. i .. ' needs field/value pairs')
  end
  e.first, e.last = a + 7, a + 6 + tonumber(c)
  if e.expect ~= '-' then
    e.idemKey = KEYS[k]
    k = k + 1
  end
  if e.cf ~= '' then
    e.ctxKey = KEYS[k]
    k = k + 1
  end
  if chained and e.expect ~= 'dup' then
    local l = e.last
    if l - e.first < 5 or ARGV[l - 3] ~= 'prev_hash' or ARGV[l - 1] ~= 'hash' or ARGV[l - 2] ~= prev or not isHash(ARGV[l]) then
      return fail('entry ' .. i .. ' is not linked onto the one before it')
    end
    prev = ARGV[l]
  end
  if e.expect ~= 'dup' then
    expectNew = expectNew + 1
  end
  ents[i] = e
  a = e.last + 1
end
if a ~= #ARGV + 1 or k ~= #KEYS + 1 then
  return fail('the arguments do not match the entries: ' .. #KEYS .. ' keys and ' .. #ARGV .. ' arguments')
end
local headKey = chained and KEYS[2] or nil

local bad = wrongType(KEYS[1], 'stream') or (headKey and wrongType(headKey, 'string'))
if bad then
  return redis.error_reply(bad)
end
local steps = {{'xadd', KEYS[1], '*', 'f', 'v'}, {ARGV[4], ARGV[3], 'n'}}
if headKey then
  steps[#steps + 1] = {'set', headKey, 'v'}
end
for i = 1, n do
  local e = ents[i]
  bad = (e.idemKey and wrongType(e.idemKey, 'string')) or (e.ctxKey and wrongType(e.ctxKey, 'hash'))
  if bad then
    return redis.error_reply(bad)
  end
  if e.idemKey then
    steps[#steps + 1] = {'set', e.idemKey, 'v'}
  end
  if e.ctxKey then
    steps[#steps + 1] = {'hset', e.ctxKey, 'f', 'v'}
  end
end
local denied = refuse(steps)
if denied then
  return denied
end

local headID, headHash, headLen = '', GENESIS, 0
if headKey then
  headID, headHash, headLen = readHead(headKey)
  if not headID then
    return fail('the chain head ' .. headKey .. ' is malformed')
  end
end

-- Classify every entry by its idempotency record, before any write.
local reply = {0, headHash, string.format('%d', headLen)}
local conflict, mismatch = false, false
for i = 1, n do
  local e = ents[i]
  e.state, e.id, e.ts = 0, '', ''
  if e.idemKey then
    local rec = redis.call('GET', e.idemKey)
    if rec then
      local sep = string.find(rec, ' ', 1, true)
      local id, fp = rec, ''
      if sep then
        id, fp = string.sub(rec, 1, sep - 1), string.sub(rec, sep + 1)
      end
      e.rec, e.id, e.ts = rec, id, stamp(KEYS[1], id)
      if fp == e.fp then
        e.state = 1
      else
        e.state, conflict = 2, true
      end
    end
  end
  if chained and ((e.state == 1) ~= (e.expect == 'dup')) then
    mismatch = true
  end
end
local function answer(state)
  reply[1] = state
  for i = 1, n do
    local e = ents[i]
    reply[#reply + 1] = e.state
    reply[#reply + 1] = e.id
    reply[#reply + 1] = e.ts
  end
  return reply
end
if conflict then
  return answer(2)
end
if chained and (mismatch or (expectNew > 0 and headHash ~= ARGV[6])) then
  return answer(1)
end

local added, lastID = 0, ''
for i = 1, n do
  local e = ents[i]
  if e.state == 1 then
    redis.call('SET', e.idemKey, e.rec, 'KEEPTTL')
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, e.first, e.last))
    if e.idemKey then
      redis.call('SET', e.idemKey, id .. ' ' .. e.fp, 'PX', ARGV[2])
    end
    if e.ctxKey then
      redis.call('HSET', e.ctxKey, e.cf, e.cv, 'last_delta_id', id, 'updated_at', e.cu)
    end
    redis.call(ARGV[4], ARGV[3], ARGV[5] .. id .. e.tail)
    e.id, added, lastID = id, added + 1, id
  end
end
if headKey and added > 0 then
  redis.call('SET', headKey, lastID .. ' ' .. prev .. ' ' .. string.format('%d', headLen + added))
  reply[2] = prev
end
return answer(0)
