-- sweep: removes the records of up to `batch` jobs that finished at least `ttl` ms ago (by the
-- server's clock), takes them off the dead list, and trims the dead list to its newest
-- `max_dead`. Each removed id is remembered in `swept` until the sweeper confirms that its
-- files are deleted, so a sweeper that dies midway leaves the ids for the next sweep.
-- The record's entry in the listings' `created` index goes with it.
-- KEYS: finished, swept, dead, counts, created. ARGV: job key prefix, ttl ms, batch, max dead.
-- Returns up to `batch` ids whose files are still to delete.
local finished, swept, dead, counts, created = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, ttl, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max_dead = math.max(tonumber(ARGV[4]), 1)
local due = redis.call('ZRANGEBYSCORE', finished, '-inf', now_ms() - ttl, 'LIMIT', 0, batch)
for _, id in ipairs(due) do
  redis.call('ZREM', finished, id)
  local key = prefix .. id
  local status = redis.call('HGET', key, 'status')
  -- A job put back in line since it finished is no longer this sweep's to remove.
  if status == 'completed' or status == 'failed' then
    redis.call('DEL', key)
    redis.call('ZREM', created, id)
    redis.call('HINCRBY', counts, status, -1)
    redis.call('LREM', dead, 0, id)
    redis.call('SADD', swept, id)
  end
end
redis.call('LTRIM', dead, -max_dead, -1)
return redis.call('SRANDMEMBER', swept, batch)
