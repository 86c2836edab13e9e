"""Builders of watchlist bundles for tests: keys, random unit embeddings, sealed envelopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from numpy.typing import NDArray

from edge.faces.bundle import BundleEntry, BundlePayload, seal_bundle, seal_bundle_parts
from edge.faces.keys import key_id_of
from edge.protocol import WatchlistBundleEnvelope

MODEL = "sface-2021dec"
DIM = 128
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> NDArray[np.float32]:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def payload(version: int = 1, n: int = 3, *, issued_at: datetime = T0,
            valid_s: float = 86_400, entry_valid_s: list[float] | None = None,
            model: str = MODEL, seed: int = 0) -> BundlePayload:
    rows = unit_rows(n, seed=seed)
    lives = entry_valid_s or [valid_s * 2] * n
    entries = tuple(BundleEntry(f"e{i}", issued_at + timedelta(seconds=lives[i]), rows[i])
                    for i in range(n))
    return BundlePayload(version=version, issued_at=issued_at,
                         expires_at=issued_at + timedelta(seconds=valid_s), model=model,
                         dim=DIM, entries=entries)


@dataclass
class Keys:
    """A hub signing key and one device's bundle key."""

    signing: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    device: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)

    @property
    def key_id(self) -> str:
        return key_id_of(self.signing.public_key())

    @property
    def hub_keys(self) -> dict[str, Ed25519PublicKey]:
        return {self.key_id: self.signing.public_key()}

    def seal(self, p: BundlePayload, *, site: str = "s1", device: str = "cam-1",
             **kw: Any) -> WatchlistBundleEnvelope:
        return seal_bundle(p, site=site, device=device,
                           recipient_key=kw.pop("recipient_key", self.device.public_key()),
                           signing_key=kw.pop("signing_key", self.signing),
                           key_id=kw.pop("key_id", self.key_id), **kw)

    def seal_parts(self, p: BundlePayload, *, part_bytes: int, site: str = "s1",
                   device: str = "cam-1", **kw: Any) -> list[WatchlistBundleEnvelope]:
        return seal_bundle_parts(p, site=site, device=device,
                                 recipient_key=kw.pop("recipient_key", self.device.public_key()),
                                 signing_key=kw.pop("signing_key", self.signing),
                                 key_id=kw.pop("key_id", self.key_id), part_bytes=part_bytes,
                                 **kw)
