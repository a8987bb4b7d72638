-- enqueue: records a new job as pending and puts it at the back of the waiting line, unless as
-- many jobs as the cap already wait (in line or waiting out a retry delay).
-- The job is numbered by acceptance (the `accepted` counter) in the `created` index that
-- listings read, newest first.
-- KEYS: job hash, waiting, delayed, created, accepted. ARGV: record JSON (timestamps are set
-- here), max queued.
-- Returns the stored record JSON, or false when the line is full (nothing is stored).
local key, waiting, delayed, created, accepted = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local max = tonumber(ARGV[2])
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('job id already exists')
end
if redis.call('LLEN', waiting) + redis.call('ZCARD', delayed) >= max then
  return false
end
local rec = cjson.decode(ARGV[1])
local now = now_ms()
rec.created_at_ms = now
save(key, rec, now)
redis.call('RPUSH', waiting, rec.id)
redis.call('ZADD', created, redis.call('INCR', accepted), rec.id)
return redis.call('HGET', key, 'record')
