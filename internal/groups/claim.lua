-- claim.lua: hand entries of a stream to one consumer of a group.
--
-- KEYS[1]  the stream: mcp:<stream>
-- KEYS[2]  its dead letters: mcp:dead_letter:{mcp:<stream>}
-- ARGV[1]  group
-- ARGV[2]  consumer
-- ARGV[3]  count: most entries to hand out, 1 to 100
-- ARGV[4]  reclaim idle, ms: an entry pending that long with any consumer is reclaimed
-- ARGV[5]  where a group made by this call starts: '$' (new entries only) or '0' (all)
-- ARGV[6]  max deliveries: an idle entry delivered that many times is not
--          delivered again but moved to the dead letters
-- ARGV[7]  MAXLEN ~ of the dead letters
-- ARGV[8]  channel of the dead letters' notices
-- ARGV[9]  'publish' or 'spublish'
-- ARGV[10] the stream's name, for the notices
-- ARGV[11] now (RFC 3339, the server's clock): dead_lettered_at
--
-- In this order: the group is made when missing (XGROUP CREATE … MKSTREAM);
-- entries pending longer than the reclaim idle (XPENDING IDLE, at most
-- count of them, oldest id first) are either moved to the dead letters
-- (XADD + XACK, announced) when they were delivered max deliveries times,
-- or claimed (XCLAIM, which counts a delivery); then new entries fill the
-- rest of count (XREADGROUP >). Everything is read, and every argument,
-- key type and right checked, before the first write, as a script does
-- not roll back.
--
-- Returns {created, entries, dead, newest}:
--   created  1 when this call made the group, else 0
--   entries  {id, {field, value, …}, delivery count, consumer it was
--            pending with ('' for a new entry)} for each entry handed out
--   dead     {id, dead-letter entry id ('' when the entry was trimmed from
--            the stream: it is only acknowledged), deliveries, consumer}
--   newest   the stream's newest entry id ('0-0' when empty): a wait for
--            new entries starts after it
--
-- A dead letter holds original_id, group, consumer (the last one it was
-- delivered to), delivery_count, dead_lettered_at and then the entry's own
-- fields; an own field named like one of those five is kept as
-- original_<name>. An entry with more fields than one XADD can pass from
-- Lua keeps its own fields in the stream only (fields_omitted: how many).

local function integer(s, lo, hi)
  local n = tonumber(s)
  return string.match(s, '^%d+$') and n and n >= lo and n <= hi
end

if not integer(ARGV[3], 1, 100) or not integer(ARGV[4], 0, 1e15) or not integer(ARGV[6], 1, 1e6)
  or not integer(ARGV[7], 1, 1e15) or (ARGV[5] ~= '$' and ARGV[5] ~= '0')
  or (ARGV[9] ~= 'publish' and ARGV[9] ~= 'spublish') then
  return redis.error_reply('ERR claim.lua: bad arguments')
end
local group, consumer, count, idle, maxDeliveries = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[6])

for _, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= 'stream' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a stream')
  end
end

-- Reads. The group exists when XPENDING answers for it.
local exists = false
if redis.call('TYPE', KEYS[1]).ok == 'stream' then
  local r = redis.pcall('XPENDING', KEYS[1], group)
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'NOGROUP', 1, true) then
      return redis.error_reply(r.err)
    end
  else
    exists = true
  end
end

local reserved = {original_id = true, group = true, consumer = true, delivery_count = true, dead_lettered_at = true}
-- Lua passes at most some 8000 values to one call.
local maxFields = 3900

local claim, dead = {}, {}
local deliveries, owners = {}, {}
if exists then
  local pending = redis.call('XPENDING', KEYS[1], group, 'IDLE', idle, '-', '+', count)
  for _, p in ipairs(pending) do
    local id, owner, n = p[1], p[2], tonumber(p[4])
    if n >= maxDeliveries then
      local e = redis.call('XRANGE', KEYS[1], id, id)
      local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'original_id', id, 'group', group,
        'consumer', owner, 'delivery_count', n, 'dead_lettered_at', ARGV[11]}
      if #e == 0 then
        args = nil
      elseif #e[1][2] / 2 > maxFields then
        args[#args + 1] = 'fields_omitted'
        args[#args + 1] = #e[1][2] / 2
      else
        local f = e[1][2]
        for i = 1, #f, 2 do
          local name = f[i]
          if reserved[name] then
            name = 'original_' .. name
          end
          args[#args + 1] = name
          args[#args + 1] = f[i + 1]
        end
      end
      dead[#dead + 1] = {id = id, owner = owner, n = n, args = args}
    else
      claim[#claim + 1] = id
      deliveries[id], owners[id] = n, owner
    end
  end
end

local denied = refuse({
  {'xgroup', 'create', KEYS[1], group, ARGV[5], 'MKSTREAM'},
  {'xclaim', KEYS[1], group, consumer, '0', '0-1'},
  {'xreadgroup', 'GROUP', group, consumer, 'STREAMS', KEYS[1], '>'},
  {'xack', KEYS[1], group, '0-1'},
  {'xadd', KEYS[2], '*', 'f', 'v'},
  {ARGV[9], ARGV[8], 'n'},
})
if denied then
  return denied
end

-- Writes.
local created = 0
if not exists then
  redis.call('XGROUP', 'CREATE', KEYS[1], group, ARGV[5], 'MKSTREAM')
  created = 1
end

local moved = {}
for _, d in ipairs(dead) do
  local dlid = ''
  if d.args then
    dlid = redis.call(unpack(d.args))
  end
  redis.call('XACK', KEYS[1], group, d.id)
  if d.args then
    redis.call(ARGV[9], ARGV[8], cjson.encode({stream = ARGV[10], key = KEYS[2], id = dlid, original_id = d.id,
      group = group, consumer = d.owner, delivery_count = d.n}))
  end
  moved[#moved + 1] = {d.id, dlid, d.n, d.owner}
end

local entries = {}
if #claim > 0 then
  -- An entry trimmed from the stream meanwhile is not returned, and
  -- XCLAIM drops it from the group's pending entries.
  local got = redis.call('XCLAIM', KEYS[1], group, consumer, idle, unpack(claim))
  for _, e in ipairs(got) do
    entries[#entries + 1] = {e[1], e[2], deliveries[e[1]] + 1, owners[e[1]]}
  end
end
if #entries < count then
  local got = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #entries, 'STREAMS', KEYS[1], '>')
  if got then
    for _, e in ipairs(got[1][2]) do
      entries[#entries + 1] = {e[1], e[2], 1, ''}
    end
  end
end

local newest = '0-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  newest = last[1][1]
end
return {created, entries, moved, newest}
