-- claim: takes the next waiting job (after moving due delayed jobs into line), leases it to the
-- worker until now + lease and marks it processing. Ids whose job is no longer pending (e.g. a
-- cancelled one) are dropped from the line, never handed out.
-- KEYS: waiting, leases, delayed. ARGV: job key prefix, worker, lease ms.
-- Returns the record JSON, or false when nothing waits.
local waiting, leases, delayed = KEYS[1], KEYS[2], KEYS[3]
local prefix, worker, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
promote_due(waiting, delayed, now, 100)
while true do
  local id = redis.call('LPOP', waiting)
  if not id then
    return false
  end
  local key = prefix .. id
  if redis.call('HGET', key, 'status') == 'pending' then
    local rec = load(key)
    rec.status = 'processing'
    rec.worker = worker
    save(key, rec, now)
    redis.call('HSET', key, 'worker', worker)
    redis.call('ZADD', leases, now + lease, id)
    return redis.call('HGET', key, 'record')
  end
end
