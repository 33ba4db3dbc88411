-- An SMTP server's adaptive rate: cut in half when it complains of too much mail, raised
-- step by step while it does not (additive increase, multiplicative decrease).
--
-- KEYS[1]  hash: server key -> JSON state {rate, ceiling, cut_at, raised_at, since, reply, limit}
-- KEYS[2]  hash of live rates the throttle reads (mailer.throttle.limits_key)
-- ARGV[1]  "cut" or "raise"
-- ARGV[2]  JSON: for "cut": {server, field, limit, measured, reply, floor, every, factor};
--          for "raise": {servers: [{server, field, limit}], hold, step}
--
-- Time is the Redis server's clock, as for the buckets. Returns the new rates as JSON.

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local args = cjson.decode(ARGV[2])

local function publish(field, rate)
  redis.call('HSET', KEYS[2], field, string.format('%.3f', rate))
  if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], 30000) end
end

if ARGV[1] == 'cut' then
  local raw = redis.call('HGET', KEYS[1], args.server)
  local state = raw and cjson.decode(raw) or nil
  if state and now - state.cut_at < args.every then
    -- One cut per complaint episode: the replies of messages already on their way
    -- describe the rate that was just cut.
    return cjson.encode({rate = state.rate, cut = false})
  end
  local limit = tonumber(args.limit) or 0
  local measured = tonumber(args.measured) or 0
  -- Cut from the rate it was really sending at (below its limit, if something else held
  -- it back), or from its limit when nothing was measured yet.
  local base
  if state then
    base = state.rate
  elseif measured > 0 then
    base = limit > 0 and math.min(limit, measured) or measured
  else
    base = limit > 0 and limit or 2 * args.floor
  end
  local rate = math.max(args.floor, base * args.factor)
  state = {
    rate = rate,
    -- How far the rate may come back: the server's own limit, or, for a server without
    -- one, what it was sending when it first complained.
    ceiling = state and state.ceiling or (limit > 0 and limit or base),
    cut_at = now,
    raised_at = now,
    since = state and state.since or now,
    reply = args.reply,
    limit = limit,
  }
  redis.call('HSET', KEYS[1], args.server, cjson.encode(state))
  redis.call('EXPIRE', KEYS[1], 86400)
  publish(args.field, rate)
  return cjson.encode({rate = rate, cut = true})
end

-- "raise": every server in back-off that has not complained for `hold` seconds gets `step`
-- of its ceiling per second back; at the ceiling, the back-off ends.
local rates = {}
for _, s in ipairs(args.servers) do
  local raw = redis.call('HGET', KEYS[1], s.server)
  if raw then
    local state = cjson.decode(raw)
    local limit = tonumber(s.limit) or 0
    if limit > 0 and state.ceiling > limit then
      -- Its limit was lowered meanwhile: never come back above it.
      state.ceiling = limit
      state.rate = math.min(state.rate, limit)
    end
    if now - state.cut_at >= args.hold then
      local gain = state.ceiling * args.step * (now - state.raised_at)
      state.rate = math.min(state.ceiling, state.rate + math.max(gain, 0))
      state.raised_at = now
    end
    if state.rate >= state.ceiling - 1e-9 then
      redis.call('HDEL', KEYS[1], s.server)
      rates[s.server] = limit
    else
      redis.call('HSET', KEYS[1], s.server, cjson.encode(state))
      rates[s.server] = state.rate
    end
  end
end
return cjson.encode(rates)
