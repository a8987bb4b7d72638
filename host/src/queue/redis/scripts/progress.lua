-- progress: records the stage, attempt, attempt limit and backend if the worker holds the job.
-- KEYS: job hash. ARGV: worker, progress JSON.
-- Returns 'held', 'cancel' or 'lost'.
local key = KEYS[1]
local worker = ARGV[1]
local state = lease_state(key, worker)
if state ~= 'lost' then
  local p = cjson.decode(ARGV[2])
  local rec = load(key)
  rec.stage = p.stage
  rec.attempt = p.attempt
  rec.max_attempts = p.max_attempts
  rec.backend = p.backend
  save(key, rec, now_ms())
end
return state
