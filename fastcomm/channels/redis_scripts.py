"""The Redis broker's keys, Lua scripts and pub/sub messages.

Every key of a channel carries the channel in a hash tag, ``<prefix>{<channel>}``,
so that all of a channel's keys live in one Redis Cluster slot and each script
touches one slot only. Per channel:

- ``<prefix>{<channel>}.m``: the meta hash, ``e`` (epoch), ``o`` (top offset),
  ``b`` (bytes of history held, when a byte budget applies); its TTL is the
  broker's ``meta_ttl``, pushed back by each publication;
- ``<prefix>{<channel>}.s``: the history stream, entry id ``<offset>-0``, fields
  ``x`` (deadline, ms of the broker's clock), ``d`` (the data, MessagePack) and
  ``n`` (its size as counted against ``history_bytes``);
- ``<prefix>{<channel>}.p`` and ``.x``: presence, a hash of session -> member
  (MessagePack) and a sorted set of session -> expiry (ms; ``inf`` for a member
  without TTL);
- ``<prefix>{<channel>}.i.<key>``: a publish idempotency key, the ``e``/``o``
  of the publication made with it and ``x`` its deadline (ms of the broker's
  clock), kept for the broker's ``idempotency_window``;
- ``<prefix>{<channel>}``: the pub/sub channel of its publications and events.

A publication on the pub/sub channel is a MessagePack array ``[0, offset,
epoch, data]``; a join is ``[1, session, user]``, a leave ``[2, session, user]``.
"""

from __future__ import annotations

import msgspec

from fastcomm.protocol.channel_messages import Join, Leave, Publication

__all__ = [
    "HISTORY",
    "PRESENCE",
    "PRESENCE_ADD",
    "PUBLISH",
    "decode_event",
    "encode_event",
    "keys_of",
]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_JOIN, _LEAVE = 1, 2


def keys_of(prefix: str, channel: str) -> str:
    """The common part of ``channel``'s keys (also its pub/sub channel)."""
    return f"{prefix}{{{channel}}}"


def encode_event(event: Join | Leave) -> bytes:
    """A presence event as published (a publication is encoded by :data:`PUBLISH`)."""
    return _encode((_JOIN if type(event) is Join else _LEAVE, event.session, event.user))


def decode_event(channel: str, payload: bytes) -> Publication | Join | Leave:
    """A message of ``channel``'s pub/sub channel; raises msgspec.DecodeError,
    IndexError, TypeError or ValueError for one that is not ours."""
    message = _decode(payload)
    kind = message[0]
    if kind == 0:
        return Publication(channel, message[1], message[2], message[3])
    if kind in (_JOIN, _LEAVE):
        return (Join if kind == _JOIN else Leave)(channel, message[1], message[2])
    raise ValueError(f"unknown message kind {kind!r}")


PUBLISH = """
-- KEYS: meta, stream, idempotency key. ARGV: data, history_size, deadline_ms,
-- history_bytes, meta_ttl_ms, stream_ttl_ms, size, now_ms, pubsub channel,
-- idempotency window ms (0: no key). Returns {epoch, offset}.
local meta, stream = KEYS[1], KEYS[2]
local count, limit = tonumber(ARGV[2]), tonumber(ARGV[4])
local window = tonumber(ARGV[10])
if window > 0 then
  local seen = redis.call('HMGET', KEYS[3], 'e', 'o', 'x')
  if seen[1] and tonumber(seen[3]) > tonumber(ARGV[8]) then
    return {seen[1], tonumber(seen[2])}
  end
end
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'b', 0)
end
local offset = redis.call('HINCRBY', meta, 'o', 1)
if count > 0 then
  local id = offset .. '-0'
  if limit > 0 then
    local total = 0
    if redis.call('EXISTS', stream) == 1 then
      total = tonumber(redis.call('HGET', meta, 'b') or '0')
    end
    redis.call('XADD', stream, id, 'x', ARGV[3], 'd', ARGV[1], 'n', ARGV[7])
    total = total + tonumber(ARGV[7])
    local length, now = redis.call('XLEN', stream), tonumber(ARGV[8])
    while length > 0 do
      local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
      local fields = oldest[2]
      if not (length > count or total > limit or tonumber(fields[2]) <= now) then
        break
      end
      redis.call('XDEL', stream, oldest[1])
      total, length = total - tonumber(fields[6]), length - 1
    end
    redis.call('HSET', meta, 'b', total)
  else
    redis.call('XADD', stream, 'MAXLEN', count, id, 'x', ARGV[3], 'd', ARGV[1], 'n', ARGV[7])
  end
  redis.call('PEXPIRE', stream, ARGV[6])
elseif redis.call('EXISTS', stream) == 1 then
  redis.call('DEL', stream)
end
redis.call('PEXPIRE', meta, ARGV[5])
redis.call('PUBLISH', ARGV[9], '\\148' .. cmsgpack.pack(0, offset, epoch) .. ARGV[1])
if window > 0 then
  redis.call('HSET', KEYS[3], 'e', epoch, 'o', offset, 'x', tonumber(ARGV[8]) + window)
  redis.call('PEXPIRE', KEYS[3], window)
end
return {epoch, offset}
"""

HISTORY = """
-- KEYS: meta, stream. ARGV: since (-1: the latest), limit (-1: all), now_ms.
-- Returns {epoch or false, top offset, entries}; expired entries are dropped first.
local meta, stream = KEYS[1], KEYS[2]
local since, limit, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local top = redis.call('HMGET', meta, 'e', 'o')
if not top[1] then
  return {false, 0, {}}
end
local freed = 0
while true do
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if oldest == nil or tonumber(oldest[2][2]) > now then
    break
  end
  redis.call('XDEL', stream, oldest[1])
  freed = freed + tonumber(oldest[2][6])
end
if freed > 0 then
  redis.call('HINCRBY', meta, 'b', -freed)
end
local entries = {}
if limit == 0 then
  entries = {}
elseif since >= 0 then
  if limit > 0 then
    entries = redis.call('XRANGE', stream, '(' .. since .. '-0', '+', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', stream, '(' .. since .. '-0', '+')
  end
elseif limit > 0 then
  entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', limit)
else
  entries = redis.call('XREVRANGE', stream, '+', '-')
end
return {top[1], tonumber(top[2]), entries}
"""

PRESENCE_ADD = """
-- KEYS: members hash, expiry set. ARGV: session, member, expires_ms or 'inf', ttl_ms or 0.
-- The keys outlive their members: no TTL while a member without one is there, else at
-- least the newest member's.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local ttl = tonumber(ARGV[4])
for _, key in ipairs(KEYS) do
  if ttl == 0 then
    redis.call('PERSIST', key)
  elseif redis.call('ZCOUNT', KEYS[2], '+inf', '+inf') == 0 and redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
"""

PRESENCE = """
-- KEYS: members hash, expiry set. ARGV: now_ms. Drops expired members, returns the rest.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""
