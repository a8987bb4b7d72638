-- cancel: a pending job leaves the line (waiting or delayed) and is failed as cancelled; a
-- processing one is flagged for its worker, whose heartbeats then answer 'cancel'.
-- KEYS: job hash, waiting, delayed, counts. ARGV: id.
-- Returns 'cancelled', 'requested', 'finished' or 'missing'.
local key, waiting, delayed, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local status = redis.call('HGET', key, 'status')
if not status then
  return 'missing'
end
if status == 'completed' or status == 'failed' then
  return 'finished'
end
local rec = load(key)
local now = now_ms()
rec.cancel_requested = true
redis.call('HSET', key, 'cancel', '1')
if status == 'processing' then
  save(key, rec, now)
  return 'requested'
end
redis.call('LREM', waiting, 0, id)
redis.call('ZREM', delayed, id)
fail_now(key, rec, 'cancelled', now, counts)
return 'cancelled'
