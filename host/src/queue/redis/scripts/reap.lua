-- reap: puts back in line every job whose lease deadline has passed (counting an
-- infrastructure retry; out of retries it is failed onto the dead list), and moves due delayed
-- jobs into line. Only expired leases are touched, so a heartbeating job stays with its worker.
-- KEYS: waiting, leases, delayed, dead, counts. ARGV: job key prefix, max infra retries, batch.
-- Returns how many expired leases were handled.
local waiting, leases, delayed, dead, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, max, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
promote_due(waiting, delayed, now, batch)
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(expired) do
  redis.call('ZREM', leases, id)
  local key = prefix .. id
  if redis.call('HGET', key, 'status') == 'processing' then
    local rec = load(key)
    local worker = redis.call('HGET', key, 'worker') or '?'
    local message = 'worker ' .. worker .. ' stopped heartbeating; retrying'
    retry_or_bury(key, id, rec, message, 0, max, now, waiting, delayed, dead, counts)
  end
end
return #expired
