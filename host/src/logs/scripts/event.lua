-- event: appends one event to a job's timeline, numbered one past the job's last, keeps the
-- newest `max` and renews both keys' expiry. The event is stored as the host wrote it, its
-- leading zero `seq` replaced by the number (no cjson: the host writes `seq` first).
-- KEYS: events List, seq counter. ARGV: event JSON, max events, expiry ms.
-- Returns the event's number.
local events, counter = KEYS[1], KEYS[2]
local json, max, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local zero = '{"seq":0,'
if string.sub(json, 1, #zero) ~= zero then
  return redis.error_reply('the event JSON does not start with a zero seq')
end
local n = redis.call('INCR', counter)
redis.call('RPUSH', events, '{"seq":' .. n .. ',' .. string.sub(json, #zero + 1))
redis.call('LTRIM', events, -max, -1)
redis.call('PEXPIRE', events, keep)
redis.call('PEXPIRE', counter, keep)
return n
