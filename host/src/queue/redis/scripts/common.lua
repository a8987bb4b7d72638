-- Shared by every script (prepended at compile time): the server clock and record helpers.
-- Deadlines use the Redis server's clock, so hosts with skewed clocks agree.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The decoded record of a job hash, or nil.
local function load(key)
  local raw = redis.call('HGET', key, 'record')
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

-- Stores the record and its status field, stamped with `now`.
local function save(key, rec, now)
  rec.updated_at_ms = now
  redis.call('HSET', key, 'record', cjson.encode(rec), 'status', rec.status)
end

-- The sorted set of finished jobs by finish time, which the sweeper expires. Its key sits next
-- to `counts` (same prefix), which every script that finishes a job already has.
local function finished_key(counts)
  return string.sub(counts, 1, -#'counts' - 1) .. 'finished'
end

-- Whether `worker` holds the job now.
local function holds(key, worker)
  local f = redis.call('HMGET', key, 'status', 'worker')
  return f[1] == 'processing' and f[2] == worker
end

-- Ends a job as failed with `message` (the caller has dropped its lease).
local function fail_now(key, rec, message, now, counts)
  rec.status = 'failed'
  rec.message = message
  rec.worker = cjson.null
  save(key, rec, now)
  redis.call('HDEL', key, 'worker')
  redis.call('HINCRBY', counts, 'failed', 1)
  redis.call('ZADD', finished_key(counts), now, rec.id)
end

-- After an infrastructure failure of a held job (a reported retry or an expired lease): back in
-- line after `delay` ms, or failed and dead when out of retries, or failed as cancelled when a
-- cancel was asked for. The caller has dropped the lease.
local function retry_or_bury(key, id, rec, message, delay, max, now, waiting, delayed, dead, counts)
  if rec.cancel_requested then
    fail_now(key, rec, 'cancelled', now, counts)
    return 'failed'
  end
  if rec.infra_retries >= max then
    fail_now(key, rec, 'gave up after ' .. max .. ' infrastructure retries: ' .. message, now, counts)
    redis.call('RPUSH', dead, id)
    return 'dead'
  end
  rec.infra_retries = rec.infra_retries + 1
  rec.status = 'pending'
  rec.message = message
  rec.worker = cjson.null
  save(key, rec, now)
  redis.call('HDEL', key, 'worker')
  if delay > 0 then
    redis.call('ZADD', delayed, now + delay, id)
  else
    redis.call('RPUSH', waiting, id)
  end
  return 'requeued'
end

-- Moves up to `limit` delayed jobs that are due into the waiting line, earliest first.
local function promote_due(waiting, delayed, now, limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', delayed, id)
    redis.call('RPUSH', waiting, id)
  end
end

-- The lease state a holder sees: 'held', 'cancel', 'stop' (held; end the search early) or
-- 'lost'. A cancel wins over a stop.
local function lease_state(key, worker)
  local f = redis.call('HMGET', key, 'status', 'worker', 'cancel', 'stop')
  if f[1] ~= 'processing' or f[2] ~= worker then
    return 'lost'
  end
  if f[3] == '1' then
    return 'cancel'
  end
  if f[4] == '1' then
    return 'stop'
  end
  return 'held'
end

