"""Sessions: the live index of a node, and their records in the session store."""

from __future__ import annotations

from fastcomm.sessions.memory_store import MemorySessionStore
from fastcomm.sessions.record import SessionRecord, compact
from fastcomm.sessions.registry import SessionRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(sid: str = "s1", user: str | None = "ann") -> SessionRecord:
    return SessionRecord(sid, user, {"m": 1}, {"chat": ("e1", 7)}, "quiet", "node-a")


# -- the memory store ---------------------------------------------------------------------
async def test_a_claim_takes_the_record_once_and_only_for_its_user() -> None:
    store = MemorySessionStore()
    await store.save("t1", record(), 10)
    assert await store.claim("t1", "bob") is None  # another user's token
    assert len(store) == 1  # ...stays resumable by its owner
    claimed = await store.claim("t1", "ann")
    assert claimed == record()
    assert await store.claim("t1", "ann") is None  # one use
    assert len(store) == 0


async def test_a_record_lives_ttl_after_its_last_write() -> None:
    clock = Clock()
    store = MemorySessionStore(clock=clock)
    await store.save("t1", record("s1"), 10)
    await store.save("t2", record("s2"), 10)
    clock.now += 6
    await store.checkpoint([("t1", record("s1"))], 10)  # kept: 10 s from now
    clock.now += 6
    assert await store.claim("t2", "ann") is None  # 12 s after its write
    assert (await store.claim("t1", "ann")) is not None  # 6 s after its checkpoint
    await store.save("t3", record("s3"), 10)
    clock.now += 11
    assert store.expire() == 0


async def test_a_checkpoint_never_brings_a_record_back() -> None:
    store = MemorySessionStore()
    await store.save("t1", record(), 10)
    await store.claim("t1", "ann")
    await store.save("t2", record("s2"), 10)
    await store.revoke("t2")
    await store.revoke("t2")  # no error when gone
    await store.checkpoint([("t1", record()), ("t2", record("s2")), ("t3", record("s3"))], 10)
    assert len(store) == 0


async def test_the_store_keeps_at_most_max_detached_records_the_oldest_go_first() -> None:
    store = MemorySessionStore(max_detached=2)
    detached = SessionRecord("s", "ann", None, {})
    for n in range(3):
        await store.save(f"live{n}", record(f"s{n}"), 10)  # live on a node: not capped
        await store.save(f"t{n}", detached, 10)
    assert (len(store), store.detached) == (5, 2)
    assert await store.claim("t0", "ann") is None
    assert await store.claim("t2", "ann") is not None
    await store.checkpoint([("live0", detached)], 10)  # detached cleanly: now capped
    assert (len(store), store.detached) == (4, 2)


def test_a_record_keeps_silent_channels_as_names_only() -> None:
    kept, quiet = compact({"a": ("e", 3), "b": ("e", 0), "c": ("", 0)})
    assert (kept, quiet) == ({"a": ("e", 3)}, "b c")
    full = SessionRecord("s", None, None, kept, quiet).all_positions()
    assert full == {"a": ("e", 3), "b": ("", 0), "c": ("", 0)}


# -- the registry -------------------------------------------------------------------------
async def test_open_writes_the_record_of_a_new_session_and_add_indexes_it() -> None:
    store = MemorySessionStore()
    reg = SessionRegistry(store, ttl=10, node="node-a")
    a = (await reg.open(reg.new("ann", {"x": 1}), None)).session
    b = (await reg.open(reg.new("ann", None), "no-such-token")).session
    anon = (await reg.open(reg.new(None, None), None)).session
    for session in (a, b, anon):
        reg.add(session)
    assert len(reg) == 3 and reg.stored() == 3
    assert reg.get(a.id) is a and set(reg.of_user("ann")) == {a, b}
    assert None not in reg.by_user
    assert len({a.id, b.id, anon.id}) == 3
    claimed = await store.claim(a.resume_token, "ann")
    assert claimed is not None and (claimed.id, claimed.node) == (a.id, "node-a")


async def test_a_resume_claims_the_record_and_rotates_the_token() -> None:
    reg = SessionRegistry(MemorySessionStore(), ttl=10, node="node-b")
    a = (await reg.open(reg.new("ann", None), None)).session
    reg.add(a)
    a.positions["chat"] = ("e1", 7)
    assert reg.remove(a) and not reg.remove(a)  # out of the live indexes at once
    assert (reg.live, reg.by_user) == ({}, {})
    await reg.detach(a)  # the exact positions
    opened = await reg.open(reg.new("ann", {"new": True}), a.resume_token)
    again = opened.session
    assert opened.resumed and opened.taken_from == ""  # detached cleanly: live nowhere
    assert (again.id, again.meta, again.positions) == (a.id, {"new": True}, {"chat": ("e1", 7)})
    assert again.resume_token != a.resume_token
    assert not (await reg.open(reg.new("ann", None), a.resume_token)).resumed  # spent
    assert reg.stored() == 2  # the resumed session's record and the new one's


async def test_a_record_claimed_while_live_says_where_it_was() -> None:
    store = MemorySessionStore()
    a_node = SessionRegistry(store, ttl=10, node="node-a")
    b_node = SessionRegistry(store, ttl=10, node="node-b")
    a = (await a_node.open(a_node.new("ann", None), None)).session
    opened = await b_node.open(b_node.new("ann", None), a.resume_token)
    assert opened.resumed and opened.taken_from == "node-a"


async def test_zero_ttl_keeps_nothing_and_revoke_forgets() -> None:
    store = MemorySessionStore()
    none = SessionRegistry(store, ttl=0)
    a = (await none.open(none.new("ann", None), None)).session
    await none.detach(a)
    assert len(store) == 0
    reg = SessionRegistry(store, ttl=10)
    b = (await reg.open(reg.new("ann", None), None)).session
    reg.add(b)
    await reg.revoke(b)
    assert (len(reg), len(store)) == (0, 0)
    assert not (await reg.open(reg.new("ann", None), b.resume_token)).resumed
