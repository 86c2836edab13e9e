"""Login abuse against the real hub (issue 11 item 9): a parallel burst is limited exactly, a
lockout is per user and address so an attacker cannot lock the real user out, and
X-Forwarded-For is believed only from configured proxies. Each lockout is audited."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.auth import LoginRateLimiter, LoginTicket, Role
from hub.config import ApiConfig
from tests.hub.conftest import PASSWORD, RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

WRONG = "not-the-password!"
LIMIT = 5  # api.login_max_failures default


def _client(hub: RunningHub, source: str = "127.0.0.1") -> httpx.Client:
    """A client whose TCP connections come from ``source`` (any 127/8 address is local)."""
    client = httpx.Client(
        base_url=hub.base_url, timeout=60, transport=httpx.HTTPTransport(local_address=source)
    )
    hub.clients.append(client)
    return client


def _login(client: httpx.Client, user: str, password: str, **headers: str) -> int:
    body = {"username": user, "password": password}
    return client.post("/api/v1/auth/login", json=body, headers=headers).status_code


def _audit(hub: RunningHub, action: str, actor: str) -> list[dict[str, Any]]:
    res = hub.client(Role.AUDITOR).get(
        "/api/v1/audit", params={"action": action, "actor": actor, "limit": 1000}
    )
    res.raise_for_status()
    items: list[dict[str, Any]] = res.json()["items"]
    return items


def test_parallel_burst_is_limited_exactly(hub: RunningHub) -> None:
    """32 wrong passwords at once: exactly the limit reach the password check (before: 30 of
    32 did, since each request checked the count before any had added to it)."""
    user = f"{hub.site}-operator"
    clients = [_client(hub) for _ in range(32)]
    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda c: _login(c, user, WRONG), clients))
    assert sorted(set(codes)) == [401, 429], codes  # and no 500 from parallel audit writes
    assert codes.count(401) == LIMIT
    assert len(_audit(hub, "auth.login_failed", user)) == LIMIT
    lockouts = _audit(hub, "auth.lockout", user)
    assert len(lockouts) == 1
    assert lockouts[0]["details"]["scope"] == "user and address"
    assert lockouts[0]["details"]["client"] == "127.0.0.1"
    assert hub.client(Role.ADMIN).get("/api/v1/stats").json()["login_lockouts"] == 1


def test_attacker_locks_only_their_own_address(hub: RunningHub) -> None:
    """Wrong passwords under the operator's name from address A lock A; the operator from
    address B still logs in (before: the lock was by username, so B waited 5 minutes)."""
    user = f"{hub.site}-operator"
    attacker = _client(hub, "127.0.0.2")
    for _ in range(LIMIT):
        assert _login(attacker, user, WRONG) == 401
    assert _login(attacker, user, PASSWORD) == 429  # even the right password: A is locked
    assert _login(_client(hub, "127.0.0.3"), user, PASSWORD) == 200
    lockout = _audit(hub, "auth.lockout", user)
    assert [e["details"]["client"] for e in lockout] == ["127.0.0.2"]


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(hub: RunningHub) -> None:
    """With no trusted proxy, a new X-Forwarded-For per try does not make a new address
    (before: uvicorn believed it from 127.0.0.1, so every forged address was a fresh start)."""
    user = f"{hub.site}-commander"
    attacker = _client(hub)
    for n in range(LIMIT):
        assert _login(attacker, user, WRONG, **{"X-Forwarded-For": f"198.51.100.{n}"}) == 401
    assert _login(attacker, user, WRONG, **{"X-Forwarded-For": "198.51.100.99"}) == 429
    clients = {e["details"]["client"] for e in _audit(hub, "auth.login_failed", user)}
    assert clients == {"127.0.0.1"}


@pytest.fixture
def proxied_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    api = ApiConfig(port=0, trusted_proxies=[ip_network("127.0.0.1/32")])
    running = start_hub(broker, site, tmp_path, api=api)
    yield running
    stop_hub(broker, running)


def test_forwarded_for_from_a_trusted_proxy_names_the_client(proxied_hub: RunningHub) -> None:
    """Behind a configured proxy, the nearest hop the proxy added is the client: an attacker
    behind it is locked, the real user behind it is not, and a hop the attacker wrote
    further left (the victim's address) changes nothing."""
    hub = proxied_hub
    user = f"{hub.site}-operator"
    proxy = _client(hub)
    for _ in range(LIMIT):
        assert _login(proxy, user, WRONG, **{"X-Forwarded-For": "203.0.113.9"}) == 401
    assert _login(proxy, user, PASSWORD, **{"X-Forwarded-For": "203.0.113.9"}) == 429
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    assert _login(proxy, user, PASSWORD, **forged) == 429
    assert _login(proxy, user, PASSWORD, **{"X-Forwarded-For": "198.51.100.7"}) == 200
    # A peer that is not the proxy is its own address, whatever it claims.
    direct = _client(hub, "127.0.0.4")
    assert _login(direct, user, PASSWORD, **{"X-Forwarded-For": "203.0.113.9"}) == 200
    lockout = _audit(hub, "auth.lockout", user)
    assert [e["details"]["client"] for e in lockout] == ["203.0.113.9"]


# --- the limiter alone, on a fake clock ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(limiter: LoginRateLimiter, *keys: str) -> tuple[str, ...] | float:
    ticket = limiter.admit(*keys)
    return limiter.failed(ticket) if isinstance(ticket, LoginTicket) else ticket


def test_lockouts_back_off_and_expire() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(3, 300, clock=clock, lockout_s=60, lockout_max_s=200)
    keys = limiter.keys_for("Ann", "10.0.0.1")
    assert [_fail(limiter, *keys) for _ in range(2)] == [(), ()]
    assert _fail(limiter, *keys) == (keys[0],)  # the third failure locks the pair
    assert _fail(limiter, *keys) == pytest.approx(60)
    clock.now += 60
    pauses = []
    for _ in range(3):  # each further lockout doubles, up to the maximum
        for _ in range(3):
            locked = _fail(limiter, *keys)
        assert locked == (keys[0],)
        pauses.append(limiter.retry_after_s(*keys))
        clock.now += pauses[-1]
    assert pauses == [120, 200, 200]
    assert limiter.lockouts == 4
    # Another address, same user: unaffected; the user name is matched case-insensitively.
    assert limiter.retry_after_s(*limiter.keys_for("ann", "10.0.0.2")) == 0
    assert limiter.keys_for("ANN", "10.0.0.1") == keys


def test_success_clears_the_pair_but_not_the_address() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(3, 300, clock=clock, address_factor=2, lockout_s=60)
    for _ in range(2):
        _fail(limiter, *limiter.keys_for("ann", "10.0.0.1"))
    ticket = limiter.admit(*limiter.keys_for("ann", "10.0.0.1"))
    assert isinstance(ticket, LoginTicket)
    assert ticket.locked == (limiter.keys_for("ann", "10.0.0.1")[0],)
    limiter.succeeded(ticket)  # the third try was right: no lockout, a fresh pair
    assert limiter.retry_after_s(*limiter.keys_for("ann", "10.0.0.1")) == 0
    # The address still counts its two failures: four more under other names lock it (2 x 3).
    results = [_fail(limiter, *limiter.keys_for(f"u{n}", "10.0.0.1")) for n in range(4)]
    assert results[-1] == ("addr:10.0.0.1",)
    assert limiter.retry_after_s(*limiter.keys_for("ann", "10.0.0.1")) == pytest.approx(60)


def test_an_error_gives_the_attempt_back() -> None:
    limiter = LoginRateLimiter(1, 300, clock=FakeClock())
    keys = limiter.keys_for("ann", "10.0.0.1")
    ticket = limiter.admit(*keys)
    assert isinstance(ticket, LoginTicket)
    assert ticket.locked  # the only allowed attempt
    limiter.cancelled(ticket)
    assert limiter.retry_after_s(*keys) == 0
    assert limiter.lockouts == 0


def test_memory_stays_bounded_under_address_spraying() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(2, 300, clock=clock, lockout_s=60, max_keys=100)
    target = limiter.keys_for("ann", "10.0.0.1")
    _fail(limiter, *target)
    assert _fail(limiter, *target) == (target[0],)  # locked
    for n in range(1000):  # fresh addresses, one failure each
        clock.now += 0.01
        _fail(limiter, *limiter.keys_for("ann", f"10.1.{n // 256}.{n % 256}"))
        assert limiter.tracked_keys <= 100
    assert limiter.evicted > 0
    assert limiter.retry_after_s(*target) > 0  # the lock outlived the eviction
    # A locked address spraying usernames adds no state at all.
    sprayer = "10.2.0.1"
    results = [_fail(limiter, *limiter.keys_for(f"user{n}", sprayer)) for n in range(8)]
    assert results[-1] == (f"addr:{sprayer}",)  # 2 x 4 failures lock the address
    before = limiter.tracked_keys
    for n in range(8, 58):
        assert isinstance(_fail(limiter, *limiter.keys_for(f"user{n}", sprayer)), float)
    assert limiter.tracked_keys == before
