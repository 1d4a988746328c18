"""The Redis backend's key layout version (``P layout``) and the migration from layout 1.

Layout 1 (oncue before session 7) kept a task as a hash of ~15 fields, one per column; layout 2
keeps the fields the scripts read one by one (``state``, ``node``, ``lease``, ``rank``,
``type``, ``number``, ``owner``, ``key``) and the record as two JSON texts, ``fixed`` and
``live`` (redis_codec.py). Each runs after redis_lua.py's PRELUDE (its ``P``).
"""

from __future__ import annotations

# ARGV: the layout this code writes, whether to take a store never used ('1' or '0'). Returns
# the store's: a store never used (no task number handed out, no task) takes ours when told
# to, else is 0; any other without ``P layout`` was written by an older oncue (layout 1),
# whose nodes may still be running even if it holds no task now.
LAYOUT = """
local stored = redis.call('GET', P .. 'layout')
if stored then return tonumber(stored) end
if redis.call('EXISTS', P .. 'number') == 0 and redis.call('ZCARD', P .. 'all') == 0 then
  if ARGV[2] ~= '1' then return 0 end
  redis.call('SET', P .. 'layout', ARGV[1])
  return tonumber(ARGV[1])
end
return 1
"""

# ARGV: where to start in ``P all``, how many tasks. Rewrites layout 1's hashes as layout 2's
# (a hash that has ``live`` already is skipped: another new node converted it meanwhile, or
# wrote it as layout 2 once its own pass had finished; so two new nodes may migrate one store
# at once). Returns where the next call starts, or -1 once every task is converted and
# ``P layout`` says 2.
MIGRATE = """
local start, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local COLUMNS = {'id', 'priority', 'attempts', 'history', 'payload', 'max_retries', 'timeout',
  'created_at', 'headers', 'run_at', 'started_at', 'finished_at', 'result', 'error', 'worker',
  'progress'}
local NUMBERS = {inf = 'Infinity', ['-inf'] = '-Infinity', nan = 'NaN'}
local function text(value)
  if not value then return 'null' end
  return cjson.encode(value)
end
local function number(value)
  if not value then return 'null' end
  return NUMBERS[value] or value
end
local ids = redis.call('ZRANGE', P .. 'all', start, start + count - 1)
for _, id in ipairs(ids) do
  local key = P .. 'task:' .. id
  local flat = redis.call('HGETALL', key)
  local f = {}
  for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
  if f.state and not f.live then
    local fixed = '[' .. (f.priority or '0') .. ',' .. text(id) .. ',' .. (f.number or '0') ..
      ',' .. text(f.type or '') .. ',' .. (f.max_retries or '0') .. ',' ..
      number(f.timeout or '0') .. ',' .. number(f.created_at or '0') .. ',' .. text(f.key) ..
      ',' .. text(f.owner) .. ',' .. (f.headers or 'null') .. ']\\n' .. (f.payload or 'null')
    local live = '[' .. (f.attempts or '0') .. ',' .. number(f.run_at) .. ',' ..
      number(f.started_at) .. ',' .. number(f.finished_at) .. ',' .. (f.result or 'null') ..
      ',' .. (f.error or 'null') .. ',' .. text(f.worker) .. ',' .. (f.progress or 'null') ..
      ',' .. (f.history or '[]') .. ']'
    redis.call('HDEL', key, unpack(COLUMNS))
    redis.call('HSET', key, 'fixed', fixed, 'live', live)
  end
end
if #ids < count then
  redis.call('SET', P .. 'layout', '2')
  return -1
end
return start + count
"""
