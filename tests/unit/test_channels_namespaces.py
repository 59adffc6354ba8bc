"""Unit tests of channel names and namespace resolution."""

from __future__ import annotations

import pytest

from fastcomm.channels.namespaces import ChannelOptions, Namespaces, channel_problem
from fastcomm.config import Config, Namespace
from fastcomm.errors import ConfigError


@pytest.mark.parametrize(
    "name",
    ["a", "chat:lobby", "user#42", "orders/eu-west.2", "a_b=c,d@e$f", "x" * 255, "Zz09"],
)
def test_valid_channel_names(name: str) -> None:
    assert channel_problem(name, 255) is None


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("", "empty"),
        ("x" * 256, "longer than 255"),
        ("chat lobby", "characters outside"),
        ("chat*", "characters outside"),
        ("é", "characters outside"),
        ("a\n", "characters outside"),
        ("a?b", "characters outside"),
    ],
)
def test_invalid_channel_names(name: str, phrase: str) -> None:
    problem = channel_problem(name, 255)
    assert problem is not None and phrase in problem


def test_defaults_apply_when_nothing_matches() -> None:
    config = Config(history_size=7, history_ttl=9.0, presence=False, join_leave=True)
    options = Namespaces(config).resolve("anything")
    assert options == ChannelOptions(7, 9.0, False, True, True, None)
    assert options.history


def test_first_matching_namespace_wins_and_unset_fields_inherit() -> None:
    config = Config(
        history_size=5,
        namespaces=(
            Namespace(pattern="chat:vip:*", history_size=1000, client_publish=False),
            Namespace(pattern="chat:*", join_leave=True, history_ttl=0.0),
            Namespace(pattern="*", presence=False),
        ),
    )
    ns = Namespaces(config)
    vip = ns.resolve("chat:vip:gold")
    assert (vip.history_size, vip.client_publish, vip.join_leave) == (1000, False, False)
    assert vip.namespace == "chat:vip:*"
    chat = ns.resolve("chat:lobby:sub")  # '*' also matches ':'
    assert (chat.history_size, chat.join_leave, chat.presence) == (5, True, True)
    assert not chat.history
    assert ns.resolve("news").namespace == "*"
    assert ns.resolve("news").presence is False


def test_patterns_are_case_sensitive_and_anchored() -> None:
    ns = Namespaces(Config(namespaces=(Namespace(pattern="chat:*", presence=False),)))
    assert ns.resolve("chat:x").presence is False
    assert ns.resolve("Chat:x").presence is True
    assert ns.resolve("xchat:x").presence is True


def test_resolution_is_cached_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    ns = Namespaces(Config(namespaces=(Namespace(pattern="a*", presence=False),)))
    first = ns.resolve("abc")
    assert ns.resolve("abc") is first
    monkeypatch.setattr("fastcomm.channels.namespaces._CACHE_LIMIT", 3)
    for name in ("b1", "b2", "b3", "b4"):
        ns.resolve(name)
    assert len(ns._cache) <= 3


def test_negative_namespace_history_is_rejected() -> None:
    with pytest.raises(ConfigError, match="history_size"):
        Namespaces(Config(namespaces=(Namespace(pattern="x", history_size=-1),)))
    with pytest.raises(ConfigError, match="history_ttl"):
        Namespaces(Config(namespaces=(Namespace(pattern="x", history_ttl=-1.0),)))


def test_max_history_ttl() -> None:
    config = Config(history_ttl=10.0, namespaces=(Namespace(pattern="x", history_ttl=99.0),))
    assert Namespaces(config).max_history_ttl() == 99.0
    assert Namespaces(Config(history_ttl=3.0)).max_history_ttl() == 3.0
