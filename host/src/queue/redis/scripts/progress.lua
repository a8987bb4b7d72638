-- progress: records the stage, attempt, attempt limit, backend and a search's best score and
-- candidates tried if the worker holds the job.
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
  -- A search's figures: kept when this report has none (cjson's null is not nil).
  if p.best_score ~= nil and p.best_score ~= cjson.null then rec.best_score = p.best_score end
  if p.candidates_tried ~= nil and p.candidates_tried ~= cjson.null then
    rec.candidates_tried = p.candidates_tried
  end
  save(key, rec, now_ms())
end
return state
