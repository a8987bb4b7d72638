-- release: hands a held job back to the front of the waiting line (a draining worker), or
-- fails it as cancelled if a cancel was asked for.
-- KEYS: job hash, leases, waiting, counts. ARGV: worker, id.
-- Returns 1, or 0 when the worker does not hold the job (nothing changes).
local key, leases, waiting, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local worker, id = ARGV[1], ARGV[2]
if not holds(key, worker) then
  return 0
end
local rec = load(key)
local now = now_ms()
redis.call('ZREM', leases, id)
if rec.cancel_requested then
  fail_now(key, rec, 'cancelled', now, counts)
  return 1
end
rec.status = 'pending'
rec.worker = cjson.null
save(key, rec, now)
redis.call('HDEL', key, 'worker')
redis.call('LPUSH', waiting, id)
return 1
