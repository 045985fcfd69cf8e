-- One rate-limit decision, atomically: every limit of every policy of one request.
-- Mirrors algorithms.py (the memory backend) line by line; times in microseconds.
--
-- KEYS[i]   one counter key per limit
-- ARGV[1]   now in microseconds, or "" to use the Redis server clock (TIME): one clock for all gateways
-- ARGV[1 + 4*(i-1) + 1 .. + 4]   algorithm, count, window_us, burst   for KEYS[i]
--
-- Returns {allowed (1/0), remaining_1, reset_us_1, retry_us_1, remaining_2, ...}.
-- A request rejected by any limit consumes nothing.

local now
if ARGV[1] ~= "" then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local EPSILON_US = 0.5

local function num(x)
  return string.format('%.17g', x)
end

local allowed = 1
local out = {}
local writes = {}

for i = 1, #KEYS do
  local a = 1 + 4 * (i - 1)
  local algo, limit, window, burst = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local key = KEYS[i]
  local ok, remaining, reset, retry, ttl, write

  if algo == 'fixed-window' then
    local idx = math.floor(now / window)
    local state = redis.call('HMGET', key, 'w', 'c')
    local count = 0
    if state[1] and tonumber(state[1]) == idx then count = tonumber(state[2]) end
    reset = (idx + 1) * window - now
    if count + 1 <= limit then
      ok, remaining, retry, ttl = true, limit - count - 1, 0, reset
      write = {'HSET', key, 'w', num(idx), 'c', num(count + 1)}
    else
      ok, remaining, retry, ttl = false, 0, reset, reset
    end

  elseif algo == 'sliding-window' then
    local idx = math.floor(now / window)
    local state = redis.call('HMGET', key, 'w', 'c', 'p')
    local cur, prev = 0, 0
    if state[1] then
      local w = tonumber(state[1])
      if w == idx then
        cur, prev = tonumber(state[2]), tonumber(state[3])
      elseif w == idx - 1 then
        prev = tonumber(state[2])
      end
    end
    local elapsed = now - idx * window
    local weight = (window - elapsed) / window
    local estimate = prev * weight + cur
    reset = window - elapsed
    ttl = 2 * window - elapsed
    if estimate + 1 <= limit then
      ok, remaining, retry = true, math.floor(limit - estimate - 1), 0
      write = {'HSET', key, 'w', num(idx), 'c', num(cur + 1), 'p', num(prev)}
    else
      ok, remaining = false, 0
      if cur + 1 <= limit then
        retry = math.ceil(window * (prev - (limit - cur - 1)) / prev - elapsed)
      else
        retry = math.ceil(reset + window * (cur - (limit - 1)) / cur)
      end
      if retry < 1 then retry = 1 end
    end

  elseif algo == 'gcra' then
    local interval = window / limit
    local slack = (burst - 1) * interval
    local stored = redis.call('GET', key)
    local diff = 0
    if stored then
      local s = tonumber(stored)
      if s > now then diff = s - now end
    end
    if diff <= slack + EPSILON_US then
      ok = true
      remaining = math.floor((slack - diff + EPSILON_US) / interval)
      reset = math.ceil(diff + interval)
      retry, ttl = 0, reset
      write = {'SET', key, num(now + diff + interval)}
    else
      ok, remaining = false, 0
      retry = math.ceil(diff - slack)
      if retry < 1 then retry = 1 end
      reset = math.ceil(diff)
      ttl = reset
    end

  else
    return redis.error_reply('unknown algorithm ' .. tostring(algo))
  end

  if not ok then allowed = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
  if write then writes[#writes + 1] = {write, key, ttl} end
end

if allowed == 1 then
  for _, w in ipairs(writes) do
    redis.call(unpack(w[1]))
    redis.call('PEXPIRE', w[2], math.ceil(w[3] / 1000) + 1)
  end
end

table.insert(out, 1, allowed)
return out
