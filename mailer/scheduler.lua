-- Which campaign a send slot serves next: start-time fair queuing over worker-slot time.
--
-- Each running campaign has a virtual time V (seconds of slot time it used, divided by its
-- weight). A slot serves the eligible campaign with the smallest V and charges it, in
-- advance, the estimated time of the chunk it is about to send (corrected afterwards by the
-- time it really took). Campaigns therefore share the slots in proportion to their weights,
-- a chunk at a time, and a campaign that was held (by its own rate limit, a domain limit or
-- an unreachable server) does not bank credit: its V is brought up to the system's virtual
-- time S when it is eligible again, so it cannot then crowd the others out.
--
-- KEYS: 1 active (hash campaign -> weight, published by the dispatcher)
--       2 virtual times (zset campaign -> V)
--       3 system virtual time S (string)
--       4 holds (zset campaign -> until, server time)
--       5 seconds per message (hash campaign -> moving average)
--       6 live limits (hash, see throttle.lua)
-- ARGV: 1 campaign charged last time ("" for none), 2 seconds it really took,
--       3 seconds estimated for it, 4 messages it sent, 5 largest chunk, 6 burst seconds,
--       7 "pick" or "charge", 8 seconds the chunk really took (for the cost per message)
-- Returns {campaign, estimate (microseconds), chunk size, wait (ms)}; campaign "" when none
-- is eligible, wait then says when the earliest hold ends.

local active, vt, sysv, holds, spm, limits = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local DEFAULT_SPM = 0.002

local function weight(c)
  return tonumber(redis.call('HGET', active, c) or '1') or 1
end

local prev = ARGV[1]
if prev ~= '' then
  local actual, estimate, sent = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if redis.call('ZSCORE', vt, prev) then
    redis.call('ZINCRBY', vt, (actual - estimate) / weight(prev), prev)
  end
  if sent > 0 then
    -- The cost per message learns from the chunk's real duration (ARGV[8]), even when the
    -- time charged was the usual cost (a batch's first, cold chunk of a campaign).
    local measured = tonumber(ARGV[8]) or actual
    local old = tonumber(redis.call('HGET', spm, prev) or DEFAULT_SPM)
    redis.call('HSET', spm, prev, string.format('%.9f', 0.8 * old + 0.2 * measured / sent))
  end
end
if ARGV[7] == 'charge' then
  return {'', 0, 0, 0}
end

local S = tonumber(redis.call('GET', sysv) or '0')
local best, best_v = nil, nil
local earliest = nil
local members = redis.call('HGETALL', active)
for i = 1, #members, 2 do
  local c = members[i]
  local until_ = tonumber(redis.call('ZSCORE', holds, c) or '0')
  if until_ > now then
    if earliest == nil or until_ < earliest then earliest = until_ end
  else
    local v = tonumber(redis.call('ZSCORE', vt, c) or '-1')
    if v < S then
      v = S
      redis.call('ZADD', vt, v, c)
    end
    if best == nil or v < best_v or (v == best_v and tonumber(c) < tonumber(best)) then
      best, best_v = c, v
    end
  end
end

if best == nil then
  local wait = 0
  if earliest ~= nil then wait = math.ceil((earliest - now) * 1000) end
  return {'', 0, 0, wait}
end

-- Chunk size: what the campaign's tightest live rate releases at once, at most ARGV[5].
local chunk = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local bound = nil
for _, field in ipairs({'global', 'campaign:' .. best}) do
  local rate = tonumber(redis.call('HGET', limits, field) or '0') or 0
  if rate > 0 and math.max(1, math.floor(rate * burst)) < chunk then
    chunk = math.max(1, math.floor(rate * burst))
    bound = rate
  end
end
if bound ~= nil then
  -- The rate releases a chunk only every chunk / rate seconds: keep the other slots off the
  -- campaign for half that long, or every idle slot would wake for each token and most
  -- would claim rows only to hand them back. Half, so that the bucket never fills up and
  -- no token goes unused.
  redis.call('ZADD', holds, now + 0.5 * chunk / bound, best)
end

local per_message = tonumber(redis.call('HGET', spm, best) or DEFAULT_SPM)
-- About a second's worth of messages at most: a slow campaign is served in small chunks,
-- which its other slots share (mailer.batch also cuts a chunk short after a second).
chunk = math.max(1, math.min(chunk, math.floor(1.0 / per_message)))
local estimate = chunk * per_message
redis.call('SET', sysv, string.format('%.9f', best_v))
redis.call('ZINCRBY', vt, estimate / weight(best), best)
return {best, math.floor(estimate * 1000000), chunk, 0}
