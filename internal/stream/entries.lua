-- entries.lua, put before append.lua and append_batch.lua (after the
-- prelude): what both need to check and read a stream's keys.
--
-- The chain head holds "<entry id> <hash> <length>"; no head is the genesis
-- hash (64 zeros) and length 0.

local GENESIS = string.rep('0', 64)

-- wrongType is the WRONGTYPE text for key when it holds another type than
-- want, or nil.
local function wrongType(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want
  end
end

-- isHash: s is 64 lowercase hex digits.
local function isHash(s)
  return #s == 64 and not string.find(s, '[^0-9a-f]')
end

-- readHead returns the chain head at key: its entry id, hash and length
-- ('', GENESIS, 0 when there is none), or nil when it is malformed.
local function readHead(key)
  local h = redis.call('GET', key)
  if not h then
    return '', GENESIS, 0
  end
  local i, hh, l = string.match(h, '^(%S+) (%x+) (%d+)$')
  if not i or not isHash(hh) then
    return nil
  end
  return i, hh, tonumber(l)
end

-- stamp is the timestamp field of the entry id of stream key, or '' once
-- trimmed away.
local function stamp(key, id)
  local e = redis.call('XRANGE', key, id, id)
  if e[1] then
    local f = e[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'timestamp' then return f[i + 1] end
    end
  end
  return ''
end
