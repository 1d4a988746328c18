"""The Redis backend's key layout, the Lua functions every script starts with (PRELUDE), and
the scripts that write: a commit, a purge. Every change of a task happens inside one script,
so it is atomic. The scripts of ownership are in redis_lua_leases.py, those that only read in
redis_lua_reads.py; SCRIPTS names them all (redis_session.py loads them).

Keys (``P`` is the prefix, ``{name}:``; the braces are a cluster hash tag, so one prefix's keys
would share a slot; Redis Cluster is not supported, since the scripts compute key names):

- ``P task:<id>``        hash (layout 2, redis_codec.py): ``state``, ``node`` (owner),
                         ``lease`` (seconds), ``rank`` (its member in ``ready``), ``type``,
                         ``number``, ``owner`` and ``key`` when set, and the record as two
                         JSON texts, ``fixed`` (written once) and ``live`` (each transition)
- ``P layout``           the key layout's version (redis_lua_layout.py)
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

from .redis_lua_layout import LAYOUT, MIGRATE
from .redis_lua_leases import CLAIM, REAP, RELEASE, RENEW, SET_LEASES
from .redis_lua_reads import FIND, QUERY

PRELUDE = """
local P = KEYS[1]
local FINISHED = {completed = true, failed = true, cancelled = true}
local CLAIMABLE = {pending = true, retrying = true}

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000, t[1] .. '.' .. string.format('%06d', t[2])
end

-- Index writes and counter increments gathered as a script goes, sent by flush(): at the end
-- of every script (SCRIPTS wraps them), and wherever a script reads what it gathered. One
-- command per key and kind instead of one per task, every removal before every addition (a
-- task's rank leaves a queue before it may enter it again), the increments summed per field.
local later = {ZREM = {}, SREM = {}, ZADD = {}, SADD = {}}
local sums = {counts = {}, queued = {}}
local CHUNK = 4000  -- arguments a command (Lua's unpack has a stack of 8,000)

local function defer(command, key, a, b)
  local args = later[command][key]
  if not args then
    args = {}
    later[command][key] = args
  end
  args[#args + 1] = a
  if b ~= nil then args[#args + 1] = b end
end

local function flush()
  for _, command in ipairs({'ZREM', 'SREM', 'ZADD', 'SADD'}) do
    for key, args in pairs(later[command]) do
      for j = 1, #args, CHUNK do
        redis.call(command, key, unpack(args, j, math.min(j + CHUNK - 1, #args)))
      end
    end
    later[command] = {}
  end
  for name, fields in pairs(sums) do
    for field, delta in pairs(fields) do
      if delta ~= 0 and redis.call('HINCRBY', P .. name, field, delta) == 0 then
        redis.call('HDEL', P .. name, field)
      end
    end
    sums[name] = {}
  end
end

local function count(state, type_, delta)
  local fields, field = sums.counts, state .. ':' .. type_
  fields[field] = (fields[field] or 0) + delta
end

local function queued(priority, delta)
  local fields = sums.queued
  fields[priority] = (fields[priority] or 0) + delta
end

local function move_state(id, number, type_, from, to, priority)
  if from == to then return end
  if from then
    defer('ZREM', P .. 'state:' .. from, id)
    count(from, type_, -1)
    if CLAIMABLE[from] then queued(priority, -1) end
  end
  defer('ZADD', P .. 'state:' .. to, number, id)
  count(to, type_, 1)
  if CLAIMABLE[to] then queued(priority, 1) end
end

local function enqueue(id, rank, type_, run_at, now)
  if run_at and tonumber(run_at) > now then
    defer('ZADD', P .. 'delayed', run_at, id)
  else
    defer('ZADD', P .. 'ready:' .. type_, 0, rank)
  end
end

local function disown(id, node)
  defer('ZREM', P .. 'leases', id)
  if node then defer('SREM', P .. 'owned:' .. node, id) end
end

-- A step appended to a task's ``live`` text, whose last item is its history (redis_codec).
local function append_step(live, state, stamp)
  local step = '["' .. state .. '",' .. stamp .. ']'
  if string.sub(live, -3) == '[]]' then return string.sub(live, 1, -3) .. step .. ']]' end
  return string.sub(live, 1, -3) .. ',' .. step .. ']]'
end

-- ``run_at`` from the head of ``live`` (nil for null), the priority from the head of ``fixed``.
local function run_at_of(live)
  local run_at = string.match(live or '', '^%[[^,]*,([^,]*),')
  if run_at == 'null' then return nil end
  return run_at
end

local function priority_of(fixed)
  return string.match(fixed or '', '^%[(%-?%d+),')
end

-- Give a task back: no owner; a running one is pending again (its attempt stays counted).
local function release(id, now, stamp)
  local key = P .. 'task:' .. id
  local f = redis.call('HMGET', key, 'state', 'node', 'rank', 'type', 'number', 'live', 'fixed')
  disown(id, f[2])
  if not f[1] or FINISHED[f[1]] then return 0 end
  redis.call('HDEL', key, 'node')
  if f[1] == 'running' then
    move_state(id, f[5], f[4], 'running', 'pending', priority_of(f[7]))
    redis.call('HSET', key, 'state', 'pending', 'live', append_step(f[6], 'pending', stamp))
  end
  enqueue(id, f[3], f[4], run_at_of(f[6]), now)
  return 1
end

-- Delete a finished task and its index entries; returns its state and type (nil if none).
local function forget(id)
  local key = P .. 'task:' .. id
  local f = redis.call('HMGET', key, 'state', 'type', 'owner', 'key')
  defer('ZREM', P .. 'finished', id)
  if not f[1] or not FINISHED[f[1]] then return nil end
  defer('ZREM', P .. 'all', id)
  defer('ZREM', P .. 'state:' .. f[1], id)
  defer('ZREM', P .. 'type:' .. f[2], id)
  if f[3] then defer('ZREM', P .. 'owner:' .. f[3], id) end
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

# ARGV: node, the record count, then per record the values redis_codec.encode lists (a
# transition 8, a whole record 15), then the ids to delete. Returns the ids whose write was
# refused (lost).
COMMIT = """
local node = ARGV[1]
local records = tonumber(ARGV[2])
local now = clock()
local lost, finished, cancelled = {}, {}, {}
local ready = false
local i = 3

local function accepts(new_node, state, whole, stored, onode, existing, id)
  if not stored then return whole and (existing == false or existing == id) end
  if new_node == node then return onode == node end
  return (state == 'cancelled' and not FINISHED[stored])
    or (state == 'pending' and stored == 'failed')
end

for _ = 1, records do
  local flags = ARGV[i]
  local whole = string.byte(flags, 1) == 49  -- '1'
  local id, state = ARGV[i + 1], ARGV[i + 2]
  local new_node, run_at, finished_at = nil, nil, nil
  if string.byte(flags, 2) == 49 then new_node = ARGV[i + 3] end
  if string.byte(flags, 3) == 49 then run_at = ARGV[i + 5] end
  if string.byte(flags, 4) == 49 then finished_at = ARGV[i + 6] end
  local priority, live = ARGV[i + 4], ARGV[i + 7]
  local wnumber, wtype, wrank, lease, tkey, towner, fixed
  if whole then
    wnumber, wtype, wrank, lease = ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], ARGV[i + 11]
    if string.byte(flags, 5) == 49 then tkey = ARGV[i + 12] end
    if string.byte(flags, 6) == 49 then towner = ARGV[i + 13] end
    fixed = ARGV[i + 14]
    i = i + 15
  else
    i = i + 8
  end
  local key = P .. 'task:' .. id
  local old = redis.call('HMGET', key, 'state', 'node', 'rank', 'number', 'type')
  local stored, onode, orank = old[1], old[2], old[3]
  local number, type_ = wnumber or old[4], wtype or old[5]
  local existing = false
  if not stored and tkey then existing = redis.call('HGET', P .. 'keys', tkey) end
  if not accepts(new_node, state, whole, stored, onode, existing, id) then
    lost[#lost + 1] = id
  else
    local keep = new_node == node and stored and not FINISHED[state]
    local owner = nil
    if not stored then owner = new_node elseif keep then owner = node end
    if stored and onode and not owner then
      disown(id, onode)
      redis.call('HDEL', key, 'node')
      if new_node ~= node and state == 'cancelled' then cancelled[#cancelled + 1] = id end
    end
    if whole then  -- every field (a new row, or one written whole again)
      local fields = {'state', state, 'live', live, 'fixed', fixed, 'rank', wrank,
        'lease', lease, 'number', wnumber, 'type', wtype}
      if owner then fields[#fields + 1] = 'node'; fields[#fields + 1] = owner end
      if tkey then fields[#fields + 1] = 'key'; fields[#fields + 1] = tkey end
      if towner then fields[#fields + 1] = 'owner'; fields[#fields + 1] = towner end
      redis.call('HSET', key, unpack(fields))
    else  -- a kept owner is already the stored node: accepts() checked it
      redis.call('HSET', key, 'state', state, 'live', live)
    end
    if stored then  -- a new row is in no queue yet; one only unowned and waiting is in one
      if orank and not onode and CLAIMABLE[stored] then
        defer('ZREM', P .. 'ready:' .. type_, orank)
        defer('ZREM', P .. 'delayed', id)
      end
      if FINISHED[stored] and not FINISHED[state] then defer('ZREM', P .. 'finished', id) end
    else
      defer('ZADD', P .. 'all', number, id)
      defer('ZADD', P .. 'type:' .. type_, number, id)
      if towner then defer('ZADD', P .. 'owner:' .. towner, number, id) end
      if tkey then redis.call('HSET', P .. 'keys', tkey, id) end  -- read by the next
      if owner and not FINISHED[state] then
        defer('ZADD', P .. 'leases', now + tonumber(lease), id)
        defer('SADD', P .. 'owned:' .. owner, id)
      end
    end
    move_state(id, number, type_, stored, state, priority)
    if not owner and CLAIMABLE[state] then
      enqueue(id, wrank or orank, type_, run_at, now)
      ready = true
    end
    if FINISHED[state] then
      if finished_at then defer('ZADD', P .. 'finished', finished_at, id) end
      if not stored or not FINISHED[stored] then finished[#finished + 1] = id end
    end
  end
end

flush()  -- before the deletes: a task written above and deleted below leaves no index entry
for j = i, #ARGV do forget(ARGV[j]) end

if ready then publish('ready', node, {}) end
if #cancelled > 0 then publish('cancelled', node, cancelled) end
if #finished > 0 then publish('finished', node, finished) end
return lost
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
    local priority = priority_of(redis.call('HGET', P .. 'task:' .. id, 'fixed'))
    if priority then queued(priority, 1) end
  end
end
redis.call('SET', P .. 'queued_kept', '1')
return 1
"""


def wrapped(body: str) -> str:
    """A script's body run as a function, then its gathered writes flushed (see PRELUDE)."""
    return f"local function main()\n{body}\nend\nlocal result = main()\nflush()\nreturn result\n"


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
    "layout": LAYOUT,
    "migrate": MIGRATE,
}
