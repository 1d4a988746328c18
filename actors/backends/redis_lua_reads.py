"""The Redis backend's Lua scripts that only read: a page of the listing, a lookup by number or
idempotency key. They change nothing, so redis_session.py may send one again after a failed
connection. Each runs after redis_lua.py's PRELUDE (its ``P``), in that module's key layout.
"""

from __future__ import annotations

# ARGV: before (exclusive; '+inf' for none), limit, budget, state, type, owner ('' = any),
# then the candidate indexes: scans the smallest one newest first, at most ``budget`` entries.
# Returns {the tasks' redis_codec.FIELDS, where to continue ('' at the end)}.
QUERY = """
local upper, limit, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want = {ARGV[4], ARGV[5], ARGV[6]}
local index, smallest = P .. 'all', nil
for j = 7, #ARGV do
  local size = redis.call('ZCARD', P .. ARGV[j])
  if not smallest or size < smallest then index, smallest = P .. ARGV[j], size end
end
local found, scanned = {}, 0
while scanned < budget do
  local batch = redis.call('ZREVRANGEBYSCORE', index, upper, '-inf', 'WITHSCORES',
    'LIMIT', 0, math.min(100, budget - scanned))
  if #batch == 0 then return {found, ''} end
  for j = 1, #batch, 2 do
    scanned = scanned + 1
    upper = '(' .. batch[j + 1]
    local key = P .. 'task:' .. batch[j]
    local f = redis.call('HMGET', key, 'state', 'type', 'owner')
    if f[1] and (want[1] == '' or f[1] == want[1]) and (want[2] == '' or f[2] == want[2])
      and (want[3] == '' or f[3] == want[3]) then
      found[#found + 1] = redis.call('HMGET', key, 'state', 'node', 'fixed', 'live')
      if #found == limit then return {found, upper} end
    end
  end
end
return {found, upper}
"""

# ARGV: 'number' or 'key', and the value. Returns the task's redis_codec.FIELDS (empty if none).
FIND = """
local id
if ARGV[1] == 'number' then
  id = redis.call('ZRANGEBYSCORE', P .. 'all', ARGV[2], ARGV[2], 'LIMIT', 0, 1)[1]
else
  id = redis.call('HGET', P .. 'keys', ARGV[2])
end
if not id then return {} end
local f = redis.call('HMGET', P .. 'task:' .. id, 'state', 'node', 'fixed', 'live')
if not f[1] then return {} end
return f
"""
