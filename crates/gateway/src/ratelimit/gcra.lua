-- GCRA in one atomic step, on Redis's own clock, so that every gateway
-- sharing this Redis shares one quota exactly.
-- KEYS[1]: the bucket. ARGV[1]: emission interval T (microseconds).
-- ARGV[2]: burst tolerance tau = T * burst (microseconds).
-- Returns {allowed (0|1), remaining, retry_after_us, reset_us}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > tau then
  return {0, 0, ahead - tau, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(ahead / 1000))
return {1, math.floor((tau - ahead) / interval), 0, ahead}
