"""The Redis backend's Lua scripts of ownership: claim, set leases, renew, reap, release.

Each runs after redis_lua.py's PRELUDE (its ``P``, ``clock``, ``release_all``...), in the key
layout that module's docstring draws. A node claims from the ready queue of each type it runs
(``P ready:<type>``), so tasks of types it does not run are never read.
"""

from __future__ import annotations

# ARGV: node, limit, within, fallback lease, how many types the node runs (-1: any), those
# types, then type/lease pairs. Returns the claimed tasks' redis_codec.FIELDS and rank, only
# of the types the node runs.
CLAIM = """
local node, limit, within = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local fallback, ntypes = tonumber(ARGV[4]), tonumber(ARGV[5])
local types, runs, leases = {}, {}, {}
for j = 6, 5 + math.max(ntypes, 0) do
  types[#types + 1] = ARGV[j]
  runs[ARGV[j]] = true
end
for j = 6 + math.max(ntypes, 0), #ARGV, 2 do leases[ARGV[j]] = tonumber(ARGV[j + 1]) end
local now, stamp = clock()
release_all(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now), now, stamp, node)
flush()  -- what it gave back is claimable below

-- A store written before the per-type queues: move its single queue over, a block a claim.
for _, rank in ipairs(redis.call('ZRANGE', P .. 'ready', 0, 999)) do
  local f = redis.call('HMGET', P .. 'task:' .. string.sub(rank, 33), 'type', 'state', 'node')
  if f[1] and CLAIMABLE[f[2]] and not f[3] then
    redis.call('ZADD', P .. 'ready:' .. f[1], 0, rank)
  end
  redis.call('ZREM', P .. 'ready', rank)
end

local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local f = redis.call('HMGET', P .. 'task:' .. id, 'rank', 'type')
  if f[1] then redis.call('ZADD', P .. 'ready:' .. f[2], 0, f[1]) end
  redis.call('ZREM', P .. 'delayed', id)
end

if ntypes < 0 then  -- any type: those with claimable tasks, as the counts know them
  for _, field in ipairs(redis.call('HKEYS', P .. 'counts')) do
    local state, type_ = string.match(field, '^(%a+):(.*)$')
    if CLAIMABLE[state] and not runs[type_] then
      types[#types + 1] = type_
      runs[type_] = true
    end
  end
end
local picks, type_of, early = {}, {}, {}  -- ranks, the type of each, those still delayed
for _, type_ in ipairs(types) do
  local ranks = redis.call('ZRANGE', P .. 'ready:' .. type_, '-', '+', 'BYLEX', 'LIMIT', 0, limit)
  for _, rank in ipairs(ranks) do
    picks[#picks + 1] = rank
    type_of[rank] = type_
  end
end
if within > 0 then
  local soon = redis.call('ZRANGEBYSCORE', P .. 'delayed', '(' .. now, now + within,
    'LIMIT', 0, limit)
  for _, id in ipairs(soon) do
    local f = redis.call('HMGET', P .. 'task:' .. id, 'rank', 'type')
    if f[1] and runs[f[2]] then
      picks[#picks + 1] = f[1]
      type_of[f[1]] = f[2]
      early[f[1]] = true
    end
  end
end
table.sort(picks)
local claimed = {}
for n = 1, math.min(limit, #picks) do
  local rank = picks[n]
  local id, type_ = string.sub(rank, 33), type_of[rank]
  local key = P .. 'task:' .. id
  local lease = leases[type_] or fallback
  if early[rank] then
    defer('ZREM', P .. 'delayed', id)
  else
    defer('ZREM', P .. 'ready:' .. type_, rank)
  end
  redis.call('HSET', key, 'node', node, 'lease', lease)
  defer('ZADD', P .. 'leases', now + lease, id)
  defer('SADD', P .. 'owned:' .. node, id)
  local found = redis.call('HMGET', key, 'state', 'node', 'fixed', 'live')
  found[5] = rank
  claimed[#claimed + 1] = found
end
return claimed
"""

# ARGV: node, then id/lease pairs: set the lease of tasks this node still owns.
SET_LEASES = """
local node = ARGV[1]
local now = clock()
for j = 2, #ARGV, 2 do
  local key = P .. 'task:' .. ARGV[j]
  if redis.call('HGET', key, 'node') == node then
    redis.call('HSET', key, 'lease', ARGV[j + 1])
    redis.call('ZADD', P .. 'leases', 'XX', now + tonumber(ARGV[j + 1]), ARGV[j])
  end
end
return 0
"""

# ARGV: node, then the ids its store holds. Renews those still owned by the node; gives back
# what the node owns but its store does not hold (a claim whose reply never arrived), so no
# task stays leased to a node that will never run it. Returns {renewed, ids no longer ours}.
RENEW = """
local node = ARGV[1]
local now, stamp = clock()
local held, gone, renewed = {}, {}, 0
for j = 2, #ARGV do
  local id = ARGV[j]
  held[id] = true
  local f = redis.call('HMGET', P .. 'task:' .. id, 'node', 'lease')
  if f[1] == node then
    redis.call('ZADD', P .. 'leases', 'XX', now + tonumber(f[2]), id)
    renewed = renewed + 1
  else
    gone[#gone + 1] = id
  end
end
local orphans = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'owned:' .. node)) do
  if not held[id] then orphans[#orphans + 1] = id end
end
release_all(orphans, now, stamp, node)
return {renewed, gone}
"""

REAP = """
local now, stamp = clock()
return release_all(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now), now, stamp, ARGV[1])
"""

RELEASE = """
local now, stamp = clock()
return release_all(redis.call('SMEMBERS', P .. 'owned:' .. ARGV[1]), now, stamp, ARGV[1])
"""
