"""Session registry: live indexes, immediate cleanup, resumable records."""

from __future__ import annotations

from fastcomm.sessions.registry import SessionRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_attach_indexes_by_id_and_user() -> None:
    reg = SessionRegistry(ttl=10)
    a, resumed = reg.attach("ann", {"x": 1}, None)
    b, _ = reg.attach("ann", None, None)
    anon, _ = reg.attach(None, None, None)
    assert resumed is False
    assert len(reg) == 3
    assert reg.get(a.id) is a
    assert set(reg.of_user("ann")) == {a, b}
    assert None not in reg.by_user
    assert len({a.id, b.id, anon.id}) == 3
    assert len({a.resume_token, b.resume_token}) == 2


def test_detach_removes_from_live_indexes_at_once() -> None:
    reg = SessionRegistry(ttl=10)
    a, _ = reg.attach("ann", None, None)
    reg.detach(a)
    assert len(reg) == 0
    assert reg.by_user == {}
    assert reg.get(a.id) is None
    assert reg.detached_count == 1
    reg.detach(a)  # idempotent
    assert reg.detached_count == 1


def test_resume_within_ttl_returns_same_session() -> None:
    clock = Clock()
    reg = SessionRegistry(ttl=10, clock=clock)
    a, _ = reg.attach("ann", None, None)
    a.positions["chat"] = ("e1", 7)
    reg.detach(a)
    clock.now += 9.9
    again, resumed = reg.attach("ann", {"new": True}, a.resume_token)
    assert resumed is True
    assert again is a
    assert again.positions == {"chat": ("e1", 7)}
    assert again.meta == {"new": True}
    assert reg.detached_count == 0


def test_resume_after_ttl_or_unknown_or_other_user_is_new_session() -> None:
    clock = Clock()
    reg = SessionRegistry(ttl=10, clock=clock)
    a, _ = reg.attach("ann", None, None)
    reg.detach(a)
    other, resumed = reg.attach("bob", None, a.resume_token)
    assert resumed is False and other is not a
    clock.now += 10.1
    late, resumed = reg.attach("ann", None, a.resume_token)
    assert resumed is False and late is not a
    _, resumed = reg.attach("ann", None, "no-such-token")
    assert resumed is False


def test_expire_drops_old_records() -> None:
    clock = Clock()
    reg = SessionRegistry(ttl=5, clock=clock)
    for _ in range(3):
        s, _ = reg.attach(None, None, None)
        reg.detach(s)
    clock.now += 6
    assert len(reg.expire()) == 3
    assert reg.detached_count == 0


def test_zero_ttl_keeps_nothing_and_revoke_forgets() -> None:
    reg = SessionRegistry(ttl=0)
    a, _ = reg.attach("ann", None, None)
    reg.detach(a)
    assert reg.detached_count == 0
    reg2 = SessionRegistry(ttl=10)
    b, _ = reg2.attach("ann", None, None)
    reg2.revoke(b)
    assert reg2.detached_count == 0
    assert reg2.attach("ann", None, b.resume_token)[1] is False


def test_swap_resumes_in_place_of_a_new_session_which_is_forgotten() -> None:
    clock = Clock()
    reg = SessionRegistry(ttl=10, clock=clock)
    old, _ = reg.attach("ann", None, None)
    old.positions["chat"] = ("e1", 3)
    token = old.resume_token
    reg.detach(old)
    fresh, _ = reg.attach("ann", {"device": 2}, None)
    conn = object()
    fresh.conn = conn  # type: ignore[assignment]
    assert reg.swap(fresh, token) is old
    assert (old.conn, old.meta, old.positions) == (conn, {"device": 2}, {"chat": ("e1", 3)})
    assert old.resume_token != token  # one use per token
    assert (reg.live, reg.by_user) == ({old.id: old}, {"ann": {old}})
    assert fresh.conn is None and reg.detached_count == 0  # never resumable
    reg.detach(old)
    assert reg.swap(reg.attach("ann", None, None)[0], token) is None  # the old token is spent
    assert reg.attach("ann", None, old.resume_token)[1] is True


def test_swap_with_a_token_that_does_not_resume_changes_nothing() -> None:
    clock = Clock()
    reg = SessionRegistry(ttl=10, clock=clock)
    ann, _ = reg.attach("ann", None, None)
    reg.detach(ann)
    bob, _ = reg.attach("bob", None, None)
    for token in ("", "no-such-token", ann.resume_token):
        assert reg.swap(bob, token) is None
    assert reg.live == {bob.id: bob} and reg.detached_count == 1  # still ann's to resume
    gone, _ = reg.attach("ann", None, None)
    reg.revoke(gone)
    assert reg.swap(gone, ann.resume_token) is None  # only a live session is swapped out
    assert reg.detached_count == 1
    clock.now += 10.1
    assert reg.swap(reg.attach("ann", None, None)[0], ann.resume_token) is None
    assert reg.detached_count == 0  # expired: dropped, as attach does
