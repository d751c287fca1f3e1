-- window.lua: an exact sliding-window rate limit decision.
--
-- KEYS[1]  the subject's window: mcp:rate:<policy>:<subject>, a sorted set
--          holding one member per unit of cost, scored by its time in µs
-- ARGV[1]  limit: units allowed in any window
-- ARGV[2]  window in µs
-- ARGV[3]  cost of this request, 1 to limit
-- ARGV[4]  a nonce unique to this request
--
-- Returns {allowed (1/0), remaining, retry_after µs, reset_after µs}. Time is
-- Redis's own (TIME). The key always gets an expiry: it lives only as long
-- as its newest member counts. Bad arguments, or a key that is not a
-- sorted set, are an error and nothing is written: every check precedes the
-- first write, as a script does not roll back.

local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not limit or limit < 1 or not window or window < 1 or not cost or cost < 1 or cost > limit then
  return redis.error_reply('ERR window.lua: bad arguments')
end
local held = redis.call('TYPE', KEYS[1]).ok
if held ~= 'none' and held ~= 'zset' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. held .. ', not a zset')
end
local denied = refuse({{'zremrangebyscore', KEYS[1], '0', '1'}, {'zadd', KEYS[1], '0', 'm'}, {'pexpire', KEYS[1], '1'}})
if denied then
  return denied
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local allowed, retry = 0, 0
if used + cost <= limit then
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
  end
  used = used + cost
  allowed = 1
else
  -- The oldest (used + cost - limit) units must leave the window first.
  local k = used + cost - limit - 1
  local e = redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')
  retry = tonumber(e[2]) + window - now
end
local reset = 0
if used > 0 then
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  reset = tonumber(newest[2]) + window - now
  redis.call('PEXPIRE', KEYS[1], math.floor(reset / 1000) + 1)
end
return {allowed, limit - used, retry, reset}
