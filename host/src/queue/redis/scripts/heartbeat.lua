-- heartbeat: extends the worker's lease to now + lease if it holds the job.
-- KEYS: job hash, leases. ARGV: worker, id, lease ms.
-- Returns 'held', 'cancel' (held, and a cancel was asked for) or 'lost'.
local key, leases = KEYS[1], KEYS[2]
local worker, id, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local state = lease_state(key, worker)
if state ~= 'lost' then
  redis.call('ZADD', leases, now_ms() + lease, id)
end
return state
