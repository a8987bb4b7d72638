-- complete: marks the job completed with its result if the worker holds it. A cancel asked for
-- first wins: the job is failed as cancelled and the result dropped, so a cancel the API
-- accepted ends the job the same way however close to its end the job was.
-- KEYS: job hash, leases, counts. ARGV: worker, id, result JSON.
-- Returns 1 (completed), 2 (failed as cancelled), or 0 when the worker does not hold the job
-- (nothing changes).
local key, leases, counts = KEYS[1], KEYS[2], KEYS[3]
local worker, id = ARGV[1], ARGV[2]
if not holds(key, worker) then
  return 0
end
local rec = load(key)
if rec.cancel_requested then
  redis.call('ZREM', leases, id)
  fail_now(key, rec, 'cancelled', now_ms(), counts)
  return 2
end
local result = cjson.decode(ARGV[3])
rec.status = 'completed'
rec.submission_source = result.submission_source
rec.submission_path = result.submission_path
rec.validation_score = result.validation_score
rec.validation_score_source = result.validation_score_source
rec.attempt = result.attempts
rec.message = cjson.null
rec.worker = cjson.null
save(key, rec, now_ms())
redis.call('HDEL', key, 'worker')
redis.call('ZREM', leases, id)
redis.call('HINCRBY', counts, 'completed', 1)
redis.call('ZADD', finished_key(counts), now_ms(), id)
return 1
