"""One watchlist change pushed to every device, against sealing alone, in the same run.

- Push: ``BundleService.sync()`` after a change of the active set: claims the version, reads the
  active set, seals one envelope per device, writes each to the command outbox with its push
  row and audit entry, in one SQLite transaction (the real store, audit trail and outbox).
- Baseline: ``seal_bundle`` + ``encode`` of the same payload for the same devices, nothing else.

The ratio is what the bookkeeping (version claim, outbox rows, audit chain) costs on top of the
crypto.

Then a bundle in parts (``--parts-entries``, 100,000 by default), for one device:

- hub: ``seal_bundle_parts`` (encode, split, encrypt and sign each part) + ``encode``;
- edge: per part ``decode_as`` + ``open_part`` (verify, decrypt), then ``assemble_parts`` and
  ``Gallery.from_payload`` (what EdgeWatchlist does before it swaps the gallery);
- baseline: the same two steps for the largest bundle one envelope carries
  (``entries_per_envelope()``, ``seal_bundle`` / ``open_bundle``), per entry.

The ratios are per-entry cost in parts over per-entry cost in one envelope.
``.venv/bin/python bench/bundles_push.py [--devices 50] [--entries 1000] [--parts-entries N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import tempfile
import time
from datetime import timedelta

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.faces.bundle import (
    assemble_parts,
    entries_per_envelope,
    open_bundle,
    open_part,
    payload_from_rows,
    seal_bundle,
    seal_bundle_parts,
)
from edge.faces.gallery import Gallery
from edge.faces.keys import key_id_of, public_key_b64
from edge.protocol import WatchlistBundleEnvelope, decode_as, encode
from hub.audit import AuditTrail
from hub.audit.service import AuditPaths, AuditSettings
from hub.bundles.config import DEFAULT_MODEL, BundlesConfig
from hub.bundles.service import BundleService, parse_device_key
from hub.bundles.signing import LazySigningKey
from hub.clock import ManualClock
from hub.commands.outbox import CommandOutbox
from hub.config import AuditConfig
from hub.schema import bundle_devices, devices
from hub.store import Store

SITE = "bench"


def _rows(n: int, now: object, seed: int) -> list[tuple[str, object, bytes]]:
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, 128)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    exp = now + timedelta(days=30)  # type: ignore[operator]
    return [(f"{seed:04d}-{i:032d}", exp, m[i].tobytes()) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts-entries", type=int, default=100_000)
    args = ap.parse_args()
    _push(args)
    _parts(args.parts_entries, max(1, args.repeat // 2))
    return 0


def _parts(entries: int, repeat: int) -> None:
    """Seal and open ``entries`` in parts against the largest one-envelope bundle, per entry."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    clock = ManualClock()
    now = clock.now()
    signing = Ed25519PrivateKey.generate()
    key_id = key_id_of(signing.public_key())
    device = X25519PrivateKey.generate()
    one = entries_per_envelope(128, id_chars=37)  # the ids below are 37 characters

    def payload(n: int) -> object:
        return payload_from_rows(_rows(n, now, 7), version=1, issued_at=now,
                                 expires_at=now + timedelta(days=1), model=DEFAULT_MODEL,
                                 dim=128)

    common = {"site": SITE, "device": "cam-0", "recipient_key": device.public_key(),
              "signing_key": signing, "key_id": key_id}
    opening = {"site": SITE, "device": "cam-0", "device_key": device,
               "hub_keys": {key_id: signing.public_key()}, "applied_version": 0, "now": now,
               "max_age_s": 86_400.0}
    big, small = payload(entries), payload(one)
    seal_p, open_p, seal_1, open_1 = [], [], [], []
    nparts = 0
    for _ in range(repeat):
        t0 = time.process_time()
        wire = [encode(e) for e in seal_bundle_parts(big, **common)]  # type: ignore[arg-type]
        seal_p.append(time.process_time() - t0)
        nparts = len(wire)
        t0 = time.process_time()
        envs = [decode_as(WatchlistBundleEnvelope, w) for w in wire]
        plain = [open_part(e, **opening) for e in envs]  # type: ignore[arg-type]
        gallery = Gallery.from_payload(assemble_parts(envs, plain, DEFAULT_MODEL), now)
        open_p.append(time.process_time() - t0)
        assert gallery.size == entries
        t0 = time.process_time()
        single = encode(seal_bundle(small, **common))  # type: ignore[arg-type]
        seal_1.append(time.process_time() - t0)
        t0 = time.process_time()
        env = decode_as(WatchlistBundleEnvelope, single)
        loaded = Gallery.from_payload(
            open_bundle(env, model=DEFAULT_MODEL, **opening), now)  # type: ignore[arg-type]
        open_1.append(time.process_time() - t0)
        assert loaded.size == one
    sp, op_, s1, o1 = (statistics.median(x) for x in (seal_p, open_p, seal_1, open_1))
    print(f"\n{entries} entries in {nparts} parts vs {one} in one envelope, median of {repeat} "
          "(CPU s)")
    print(f"hub seal + encode:    parts {sp:.3f} s ({1e6 * sp / entries:.2f} us/entry), "
          f"one envelope {s1:.3f} s ({1e6 * s1 / one:.2f} us/entry), "
          f"ratio per entry {(sp / entries) / (s1 / one):.2f}")
    print(f"edge verify + assemble + load: parts {op_:.3f} s ({1e6 * op_ / entries:.2f} "
          f"us/entry), one envelope {o1:.3f} s ({1e6 * o1 / one:.2f} us/entry), "
          f"ratio per entry {(op_ / entries) / (o1 / one):.2f}")


def _push(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/hub.sqlite")
        clock = ManualClock()
        config = AuditConfig(directory=Path(tmp) / "audit")
        audit = AuditTrail(
            store.engine,
            AuditSettings.open(config, AuditPaths.resolve(config, str(store.engine.url))),
        )
        state: dict[str, list[tuple[str, object, bytes]]] = {"rows": []}
        service = BundleService(
            store.engine,
            audit,
            BundlesConfig(),
            CommandOutbox(),
            LazySigningKey(Path(tmp) / "watchlist-signing.key"),
            clock=clock,
            active_set=lambda _c, _m, _n: state["rows"],  # type: ignore[arg-type,return-value]
        )
        keys = [public_key_b64(X25519PrivateKey.generate()) for _ in range(args.devices)]
        with store.engine.begin() as conn:
            for i, key in enumerate(keys):
                conn.execute(
                    devices.insert().values(
                        id=f"cam-{i}",
                        site=SITE,
                        kind="camera",
                        name="",
                        status="active",
                        created_at=clock.now(),
                    )
                )
                conn.execute(
                    bundle_devices.insert().values(
                        device=f"cam-{i}", site=SITE, kind="camera", key_b64=key
                    )
                )
        signing = service.signing_key()
        push_s: list[float] = []
        seal_s: list[float] = []
        for r in range(args.repeat):
            clock.advance(1)
            state["rows"] = _rows(args.entries, clock.now(), r)
            t0 = time.process_time()
            result = service.sync()
            push_s.append(time.process_time() - t0)
            assert len(result.pushed) == args.devices, result
            payload = payload_from_rows(
                state["rows"],
                version=result.version,  # type: ignore[arg-type]
                issued_at=clock.now(),
                expires_at=clock.now() + timedelta(days=1),
                model=DEFAULT_MODEL,
                dim=128,
            )
            t0 = time.process_time()
            for i, key in enumerate(keys):
                encode(
                    seal_bundle(
                        payload,
                        site=SITE,
                        device=f"cam-{i}",
                        recipient_key=parse_device_key(key),
                        signing_key=signing.private,
                        key_id=signing.key_id,
                    )
                )
            seal_s.append(time.process_time() - t0)
        store.close()
    push, seal = statistics.median(push_s), statistics.median(seal_s)
    print(f"{args.devices} devices x {args.entries} entries, median of {args.repeat} (CPU s)")
    print(
        f"push (sync: claim + seal + outbox + audit): {push:.3f} s "
        f"({1000 * push / args.devices:.2f} ms per device)"
    )
    print(
        f"baseline (seal + encode only):              {seal:.3f} s "
        f"({1000 * seal / args.devices:.2f} ms per device)"
    )
    print(f"ratio push / baseline: {push / seal:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
