"""The Redis backend's Lua scripts: every change of a task happens inside one, so it is atomic.

Keys (``P`` is the prefix, ``{name}:``; the braces are a cluster hash tag, so one prefix's keys
would share a slot; Redis Cluster is not supported, since the scripts compute key names):

- ``P task:<id>``        hash: the task's columns (as in SQLite), plus ``node`` (owner),
                         ``rank`` (its member in ``ready``) and ``lease`` (seconds)
- ``P ready:<type>``     zset per task type, all scores 0, members ``rank`` = 16 hex digits
                         of (2^63 - 1 - priority), 16 of number, then the id: lexical order
                         is claim order (priority high first, then number low first); one
                         per type so a node claims only the types it runs (an older single
                         ``P ready`` is moved into these by the claims)
- ``P delayed``          zset of unowned pending/retrying ids by ``run_at`` (wall clock, future)
- ``P leases``           zset of owned unfinished ids by lease deadline (Redis's clock)
- ``P owned:<node>``     set of the ids a node owns
- ``P all``, ``P state:<state>``, ``P type:<type>``, ``P owner:<owner>``: zsets of ids by
                         number (the listing, newest first, with a cursor)
- ``P finished``         zset of finished ids by ``finished_at`` (retention)
- ``P keys``             hash: idempotency key -> id (unique)
- ``P counts``           hash: ``<state>:<type>`` -> how many (kept by the scripts)
- ``P queued``           hash: priority -> how many pending or retrying (kept by the scripts;
                         ``P queued_kept`` says so: a store written before it is counted once)
- ``P number``           the last task number handed out (INCRBY reserves a block)
- ``P notices``          the pub/sub channel: JSON ``[kind, origin node, ids...]``

Priorities are 64-bit ints, which Lua's doubles cannot hold exactly, so Python builds ``rank``
and Lua only compares strings. Times come from ``TIME`` (one clock for every node).
"""

from __future__ import annotations

PRELUDE = """
local P = KEYS[1]
local FINISHED = {completed = true, failed = true, cancelled = true}
local CLAIMABLE = {pending = true, retrying = true}

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000, t[1] .. '.' .. string.format('%06d', t[2])
end

local function count(state, type_, delta)
  local field = state .. ':' .. type_
  if redis.call('HINCRBY', P .. 'counts', field, delta) == 0 then
    redis.call('HDEL', P .. 'counts', field)
  end
end

local function queued(priority, delta)
  if redis.call('HINCRBY', P .. 'queued', priority, delta) == 0 then
    redis.call('HDEL', P .. 'queued', priority)
  end
end

local function move_state(id, number, type_, from, to, priority)
  if from == to then return end
  if from then
    redis.call('ZREM', P .. 'state:' .. from, id)
    count(from, type_, -1)
    if CLAIMABLE[from] then queued(priority, -1) end
  end
  redis.call('ZADD', P .. 'state:' .. to, number, id)
  count(to, type_, 1)
  if CLAIMABLE[to] then queued(priority, 1) end
end

local function enqueue(id, rank, type_, run_at, now)
  if run_at and tonumber(run_at) > now then
    redis.call('ZADD', P .. 'delayed', run_at, id)
  else
    redis.call('ZADD', P .. 'ready:' .. type_, 0, rank)
  end
end

local function disown(id, node)
  redis.call('ZREM', P .. 'leases', id)
  if node then redis.call('SREM', P .. 'owned:' .. node, id) end
end

local function append_step(history, state, stamp)
  local step = '["' .. state .. '",' .. stamp .. ']'
  if history == '[]' then return '[' .. step .. ']' end
  return string.sub(history, 1, -2) .. ',' .. step .. ']'
end

-- Give a task back: no owner; a running one is pending again (its attempt stays counted).
local function release(id, now, stamp)
  local key = P .. 'task:' .. id
  local f = redis.call('HMGET', key, 'state', 'node', 'rank', 'type', 'number', 'run_at', 'history',
    'priority')
  disown(id, f[2])
  if not f[1] or FINISHED[f[1]] then return 0 end
  redis.call('HDEL', key, 'node')
  if f[1] == 'running' then
    move_state(id, f[5], f[4], 'running', 'pending', f[8])
    redis.call('HSET', key, 'state', 'pending', 'history', append_step(f[7], 'pending', stamp))
  end
  enqueue(id, f[3], f[4], f[6], now)
  return 1
end

-- Delete a finished task and its index entries; returns its state and type (nil if none).
local function forget(id)
  local key = P .. 'task:' .. id
  local f = redis.call('HMGET', key, 'state', 'type', 'owner', 'key')
  redis.call('ZREM', P .. 'finished', id)
  if not f[1] or not FINISHED[f[1]] then return nil end
  redis.call('ZREM', P .. 'all', id)
  redis.call('ZREM', P .. 'state:' .. f[1], id)
  redis.call('ZREM', P .. 'type:' .. f[2], id)
  if f[3] then redis.call('ZREM', P .. 'owner:' .. f[3], id) end
  if f[4] and redis.call('HGET', P .. 'keys', f[4]) == id then
    redis.call('HDEL', P .. 'keys', f[4])
  end
  count(f[1], f[2], -1)
  redis.call('DEL', key)
  return f[1], f[2]
end

-- Tell the other nodes: JSON [kind, the node it comes from (which ignores it), ids...].
local function publish(kind, origin, ids)
  local notice = {kind, origin}
  for _, id in ipairs(ids) do notice[#notice + 1] = id end
  redis.call('PUBLISH', P .. 'notices', cjson.encode(notice))
end

local function release_all(ids, now, stamp, origin)
  local released = 0
  for _, id in ipairs(ids) do released = released + release(id, now, stamp) end
  if released > 0 then publish('ready', origin, {}) end
  return released
end
"""

# ARGV: node, the record count, then per record: pair count, absent count, whole ('1') or a
# transition ('0': mutable fields only), the field/value pairs, the absent (None) fields; then
# the ids to delete. Returns the ids whose write was refused (lost).
COMMIT = """
local node = ARGV[1]
local records = tonumber(ARGV[2])
local now = clock()
local lost, finished, cancelled = {}, {}, {}
local ready = false
local i = 3

local function accepts(new, whole, stored, onode, existing)
  if not stored then return whole and (existing == false or existing == new.id) end
  if new.node == node then return onode == node end
  return (new.state == 'cancelled' and not FINISHED[stored])
    or (new.state == 'pending' and stored == 'failed')
end

for _ = 1, records do
  local pairs_count, absent_count = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local whole = ARGV[i + 2] == '1'
  local first, last = i + 3, i + 2 + 2 * pairs_count
  local new = {}
  for j = first, last, 2 do new[ARGV[j]] = ARGV[j + 1] end
  local absent_first = last + 1
  i = last + 1 + absent_count
  local id = new.id
  local key = P .. 'task:' .. id
  local old = redis.call('HMGET', key, 'state', 'node', 'rank', 'number', 'type')
  local stored, onode, orank = old[1], old[2], old[3]
  local number, type_ = new.number or old[4], new.type or old[5]
  local existing = false
  if not stored and new.key then existing = redis.call('HGET', P .. 'keys', new.key) end
  if not accepts(new, whole, stored, onode, existing) then
    lost[#lost + 1] = id
  else
    local keep = new.node == node and stored and not FINISHED[new.state]
    local owner = nil
    if not stored then owner = new.node elseif keep then owner = node end
    if stored and onode and not owner then
      disown(id, onode)
      if new.node ~= node and new.state == 'cancelled' then cancelled[#cancelled + 1] = id end
    end
    redis.call('HSET', key, unpack(ARGV, first, last))
    if stored then  -- a new row has nothing to delete, and is in no queue yet
      if absent_count > 0 then redis.call('HDEL', key, unpack(ARGV, absent_first, i - 1)) end
      if owner then redis.call('HSET', key, 'node', owner) else redis.call('HDEL', key, 'node') end
      if orank then redis.call('ZREM', P .. 'ready:' .. type_, orank) end
      redis.call('ZREM', P .. 'delayed', id)
      if not FINISHED[new.state] then redis.call('ZREM', P .. 'finished', id) end
    else
      redis.call('ZADD', P .. 'all', number, id)
      redis.call('ZADD', P .. 'type:' .. type_, number, id)
      if new.owner then redis.call('ZADD', P .. 'owner:' .. new.owner, number, id) end
      if new.key then redis.call('HSET', P .. 'keys', new.key, id) end
      if owner and not FINISHED[new.state] then
        redis.call('ZADD', P .. 'leases', now + tonumber(new.lease), id)
        redis.call('SADD', P .. 'owned:' .. owner, id)
      end
    end
    move_state(id, number, type_, stored, new.state, new.priority)
    if not owner and CLAIMABLE[new.state] then
      enqueue(id, new.rank, type_, new.run_at, now)
      ready = true
    end
    if FINISHED[new.state] then
      if new.finished_at then redis.call('ZADD', P .. 'finished', new.finished_at, id) end
      if not stored or not FINISHED[stored] then finished[#finished + 1] = id end
    end
  end
end

for j = i, #ARGV do forget(ARGV[j]) end

if ready then publish('ready', node, {}) end
if #cancelled > 0 then publish('cancelled', node, cancelled) end
if #finished > 0 then publish('finished', node, finished) end
return lost
"""

# ARGV: node, limit, within, fallback lease, how many types the node runs (-1: any), those
# types, then type/lease pairs. Returns the claimed hashes, only of the types the node runs.
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
local picks = {}
for _, type_ in ipairs(types) do
  local ranks = redis.call('ZRANGE', P .. 'ready:' .. type_, '-', '+', 'BYLEX', 'LIMIT', 0, limit)
  for _, rank in ipairs(ranks) do picks[#picks + 1] = rank end
end
if within > 0 then
  local soon = redis.call('ZRANGEBYSCORE', P .. 'delayed', '(' .. now, now + within,
    'LIMIT', 0, limit)
  for _, id in ipairs(soon) do
    local f = redis.call('HMGET', P .. 'task:' .. id, 'rank', 'type')
    if f[1] and runs[f[2]] then picks[#picks + 1] = f[1] end
  end
end
table.sort(picks)
local claimed = {}
for n = 1, math.min(limit, #picks) do
  local id = string.sub(picks[n], 33)
  local key = P .. 'task:' .. id
  local type_ = redis.call('HGET', key, 'type')
  local lease = leases[type_] or fallback
  redis.call('ZREM', P .. 'ready:' .. type_, picks[n])
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('HSET', key, 'node', node, 'lease', lease)
  redis.call('ZADD', P .. 'leases', now + lease, id)
  redis.call('SADD', P .. 'owned:' .. node, id)
  claimed[#claimed + 1] = redis.call('HGETALL', key)
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

# ARGV: before (exclusive; '+inf' for none), limit, budget, state, type, owner ('' = any),
# then the candidate indexes: scans the smallest one newest first, at most ``budget`` entries.
# Returns {hashes, where to continue ('' at the end)}.
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
    if (want[1] == '' or f[1] == want[1]) and (want[2] == '' or f[2] == want[2])
      and (want[3] == '' or f[3] == want[3]) then
      found[#found + 1] = redis.call('HGETALL', key)
      if #found == limit then return {found, upper} end
    end
  end
end
return {found, upper}
"""

# ARGV: 'number' or 'key', and the value. Returns the task's hash (empty if none).
FIND = """
local id
if ARGV[1] == 'number' then
  id = redis.call('ZRANGEBYSCORE', P .. 'all', ARGV[2], ARGV[2], 'LIMIT', 0, 1)[1]
else
  id = redis.call('HGET', P .. 'keys', ARGV[2])
end
if not id then return {} end
return redis.call('HGETALL', P .. 'task:' .. id)
"""

# ARGV: before (wall clock), limit. Deletes the oldest finished tasks; returns type, state pairs.
PURGE = """
local gone = {}
local ids = redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', '(' .. ARGV[1],
  'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local state, type_ = forget(id)
  if state then
    gone[#gone + 1] = type_
    gone[#gone + 1] = state
  end
end
return gone
"""

# Count the waiting tasks by priority once, for a store written before ``P queued`` was kept.
COUNT_QUEUED = """
if redis.call('EXISTS', P .. 'queued_kept') == 1 then return 0 end
redis.call('DEL', P .. 'queued')
for _, state in ipairs({'pending', 'retrying'}) do
  for _, id in ipairs(redis.call('ZRANGE', P .. 'state:' .. state, 0, -1)) do
    local priority = redis.call('HGET', P .. 'task:' .. id, 'priority')
    if priority then queued(priority, 1) end
  end
end
redis.call('SET', P .. 'queued_kept', '1')
return 1
"""

SCRIPTS = {
    "commit": COMMIT,
    "claim": CLAIM,
    "set_leases": SET_LEASES,
    "renew": RENEW,
    "reap": REAP,
    "release": RELEASE,
    "query": QUERY,
    "find": FIND,
    "purge": PURGE,
    "count_queued": COUNT_QUEUED,
}
