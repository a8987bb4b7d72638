-- stop: flags a job that has not ended to end its search early and submit the best candidate
-- so far; its worker's heartbeats then answer 'stop'. A waiting job keeps the flag for the
-- worker that claims it.
-- KEYS: job hash. ARGV: none.
-- Returns 'requested', 'finished' or 'missing'.
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status then
  return 'missing'
end
if status == 'completed' or status == 'failed' then
  return 'finished'
end
local rec = load(key)
rec.stop_requested = true
redis.call('HSET', key, 'stop', '1')
save(key, rec, now_ms())
return 'requested'
