-- fail: records a failure if the worker holds the job. 'retry' (an infrastructure failure)
-- puts it back in line after the delay without using an attempt of the code, or fails it onto
-- the dead list when out of retries; 'abort' fails it with the message.
-- KEYS: job hash, leases, waiting, delayed, dead, counts.
-- ARGV: worker, id, kind ('retry' | 'abort'), message, delay ms, max infra retries.
-- Returns 1, or 0 when the worker does not hold the job (nothing changes).
local key, leases, waiting, delayed, dead, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local worker, id, kind, message = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local delay, max = tonumber(ARGV[5]), tonumber(ARGV[6])
if not holds(key, worker) then
  return 0
end
local rec = load(key)
local now = now_ms()
redis.call('ZREM', leases, id)
if kind == 'retry' then
  retry_or_bury(key, id, rec, message, delay, max, now, waiting, delayed, dead, counts)
else
  fail_now(key, rec, message, now, counts)
end
return 1
