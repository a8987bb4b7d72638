-- enqueue: records a new job as pending and puts it at the back of the waiting line.
-- KEYS: job hash, waiting. ARGV: record JSON (timestamps are set here).
-- Returns the stored record JSON.
local key, waiting = KEYS[1], KEYS[2]
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('job id already exists')
end
local rec = cjson.decode(ARGV[1])
local now = now_ms()
rec.created_at_ms = now
save(key, rec, now)
redis.call('RPUSH', waiting, rec.id)
return redis.call('HGET', key, 'record')
