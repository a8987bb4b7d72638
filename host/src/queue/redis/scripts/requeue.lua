-- requeue: puts a job of the dead list back at the end of the waiting line as pending, with
-- its infrastructure retries reset, and takes it out of the finished set so the sweeper leaves
-- it alone.
-- KEYS: job hash, dead, waiting, finished, counts. ARGV: id, message.
-- Returns the record JSON, or false when the job is not on the dead list.
local key, dead, waiting, finished, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, message = ARGV[1], ARGV[2]
if redis.call('LREM', dead, 0, id) == 0 then
  return false
end
local rec = load(key)
if not rec then
  return false
end
rec.status = 'pending'
rec.infra_retries = 0
rec.cancel_requested = false
rec.worker = cjson.null
rec.message = message
save(key, rec, now_ms())
redis.call('HDEL', key, 'worker', 'cancel')
redis.call('ZREM', finished, id)
redis.call('HINCRBY', counts, 'failed', -1)
redis.call('RPUSH', waiting, id)
return redis.call('HGET', key, 'record')
