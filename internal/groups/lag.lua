-- lag.lua: count the entries a consumer group has not been handed yet,
-- for a group whose lag Redis cannot tell (XINFO GROUPS answers nil) or
-- does not track (the embedded Redis). It only reads.
--
-- KEYS[1]  the stream: mcp:<stream>
-- ARGV[1]  the group's last delivered id
-- ARGV[2]  most entries to count
--
-- Returns how many entries follow ARGV[1], or -1 when more than ARGV[2]
-- do. Pages of 100, so its memory does not grow with the count.

local n, start, limit = 0, '(' .. ARGV[1], tonumber(ARGV[2])
while true do
  local r = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 100)
  n = n + #r
  if n > limit then
    return -1
  end
  if #r < 100 then
    return n
  end
  start = '(' .. r[#r][1]
end
