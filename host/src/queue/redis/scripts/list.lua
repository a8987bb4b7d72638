-- list: one page of jobs, newest accepted first, from the `created` index (scored by acceptance
-- number) or, for the dead list, from its ids ordered the same way. Reads only.
-- KEYS: created, dead. ARGV: job key prefix, status wanted ('' for any, 'dead' for the dead
-- list), page size, cursor (list jobs numbered below it; '' for the start), most index entries
-- to look at.
-- Returns {next cursor or '', record JSON...}.
local created, dead = KEYS[1], KEYS[2]
local prefix, wanted, limit, cursor = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local scan = tonumber(ARGV[5])
local below = math.huge
if cursor ~= '' then
  below = tonumber(cursor)
end

-- Candidates as {number, id}, newest first.
local candidates = {}
if wanted == 'dead' then
  for _, id in ipairs(redis.call('LRANGE', dead, 0, -1)) do
    local n = redis.call('ZSCORE', created, id)
    if n and tonumber(n) < below then
      table.insert(candidates, {tonumber(n), id})
    end
  end
  table.sort(candidates, function(a, b) return a[1] > b[1] end)
else
  local max = '+inf'
  if cursor ~= '' then
    max = '(' .. cursor
  end
  local page = redis.call('ZREVRANGEBYSCORE', created, max, '-inf', 'WITHSCORES', 'LIMIT', 0, scan)
  for i = 1, #page, 2 do
    table.insert(candidates, {tonumber(page[i + 1]), page[i]})
  end
end

local out = {''}
local found, last, seen = 0, nil, 0
for _, c in ipairs(candidates) do
  if found == limit or seen == scan then
    break
  end
  seen = seen + 1
  last = c[1]
  local f = redis.call('HMGET', prefix .. c[2], 'record', 'status')
  if f[1] and (wanted == '' or wanted == 'dead' or f[2] == wanted) then
    table.insert(out, f[1])
    found = found + 1
  end
end

if last then
  local more
  if wanted == 'dead' then
    more = #candidates > seen
  else
    more = redis.call('ZCOUNT', created, '-inf', '(' .. last) > 0
  end
  if more then
    out[1] = string.format('%d', last)
  end
end
return out
