-- Take send tokens for a chunk of messages from every bucket that applies, atomically.
--
-- GCRA (generic cell rate algorithm): a bucket is one number, its theoretical arrival time
-- (TAT). A message may go when max(TAT, now) + T - now <= tau, with T = 1 / rate and tau
-- the burst tolerance; taking it moves TAT to max(TAT, now) + T. Time is the Redis server's
-- clock, so the limits hold across any number of worker hosts whatever their clocks say.
--
-- KEYS[1]      hash of live rates published by the dispatcher (field -> messages/s)
-- KEYS[2..]    one key per bucket, in the order of spec.buckets
-- ARGV[1]      JSON: {
--   "burst": seconds of tokens a full bucket holds (tau = burst, at least one message),
--   "buckets": [{"name": "global", "field": "global", "rate": 250, "shared": true}, ...],
--   "messages": [0, 3, 0, ...]  -- per message, the index (1-based) of its domain bucket
--                                  in "buckets", or 0 for none
-- }
-- A bucket's rate is the live one from KEYS[1] when that field exists, else "rate" (the
-- caller's value from the database); 0 or missing means "no limit".
--
-- Returns {granted, wait_ms, limited_by, stopped_at}: the 1-based positions of the messages
-- that may go now; how long until the next refused one could go; the name of the bucket that
-- refused (or ""); and the position where a shared bucket ran out (messages before it that
-- were refused were refused by their domain's bucket only), or #messages + 1.

local spec = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local buckets = {}
for i, b in ipairs(spec.buckets) do
  local rate = tonumber(b.rate) or 0
  if b.field then
    local live = redis.call('HGET', KEYS[1], b.field)
    if live then rate = tonumber(live) end
  end
  if rate > 0 then
    local T = 1 / rate
    local tau = math.max(T, spec.burst)
    local tat = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if tat < now then tat = now end
    buckets[i] = {name = b.name, key = KEYS[i + 1], T = T, tau = tau, tat = tat,
                  shared = b.shared, touched = false}
  end
end

local function fits(b)
  return b == nil or (b.tat + b.T - now) <= b.tau + 1e-9
end

local function wait_for(b)
  return math.max(0, b.tat + b.T - b.tau - now)
end

local granted = {}
local wait = nil
local limited_by = ''
local stopped_at = #spec.messages + 1
for position, domain in ipairs(spec.messages) do
  local blocked = nil
  for i, b in pairs(buckets) do
    if b.shared and not fits(b) then blocked = b break end
  end
  if blocked then
    -- A shared bucket (global, campaign, server) is empty: nothing later can go either.
    wait = wait_for(blocked)
    limited_by = blocked.name
    stopped_at = position
    break
  end
  local d = nil
  if domain > 0 then d = buckets[domain] end
  if d ~= nil and not fits(d) then
    local w = wait_for(d)
    if wait == nil or w < wait then
      wait = w
      limited_by = d.name
    end
  else
    for i, b in pairs(buckets) do
      if b.shared or b == d then
        b.tat = b.tat + b.T
        b.touched = true
      end
    end
    granted[#granted + 1] = position
  end
end

for i, b in pairs(buckets) do
  if b.touched then
    local ttl = math.ceil((b.tat - now + b.tau) * 1000) + 1000
    redis.call('SET', b.key, string.format('%.6f', b.tat), 'PX', ttl)
  end
end

return {granted, math.ceil((wait or 0) * 1000), limited_by, stopped_at}
