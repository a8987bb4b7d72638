-- enqueue: records a new job as pending and puts it at the back of the waiting line, unless as
-- many jobs as the cap already wait (in line or waiting out a retry delay).
-- The job is numbered by acceptance (the `accepted` counter) in the `created` index that
-- listings read, newest first.
-- KEYS: job hash, waiting, delayed, created, accepted. ARGV: record JSON, max queued, job id.
-- The record is stored as the host wrote it, not decoded and encoded again (the largest cost
-- of a submit when it was): only its timestamps are set here, by the server's clock. The host
-- writes them last, as zeros, so they are the JSON's fixed ending.
-- Returns the stored record JSON, or false when the line is full (nothing is stored).
local key, waiting, delayed, created, accepted = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local json, max, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local stamps = '"created_at_ms":0,"updated_at_ms":0}'
if string.sub(json, -#stamps) ~= stamps then
  return redis.error_reply('the record JSON does not end with zero timestamps')
end
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('job id already exists')
end
if redis.call('LLEN', waiting) + redis.call('ZCARD', delayed) >= max then
  return false
end
local now = tostring(now_ms())
local stored = string.sub(json, 1, -#stamps - 1) .. '"created_at_ms":' .. now .. ',"updated_at_ms":' .. now .. '}'
redis.call('HSET', key, 'record', stored, 'status', 'pending')
redis.call('RPUSH', waiting, id)
redis.call('ZADD', created, redis.call('INCR', accepted), id)
return stored
