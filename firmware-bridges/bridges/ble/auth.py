"""Advert authentication and replay detection (pure state machine, no clock of its own).

A band's counter only goes up. For every band the verifier remembers the highest counter with a
valid tag, the frame that carried it and when it was first heard:

- valid tag, higher counter: ``ACCEPTED``;
- valid tag, same counter and the very same frame within ``duplicate_window_s``: ``DUPLICATE``
  (bands repeat each payload several times, and several receivers hear it);
- valid tag, lower counter, or the same counter later or with other content: ``REPLAYED``
  (a captured advert sent again, or a clone holding the key racing the real band);
- known band id, tag matches none of its keys: ``FORGED`` (a cloned id without the key);
- band id with no key: ``UNKNOWN_BAND`` (someone else's wristband, ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bridges.ble.advert import DEFAULT_COMPANY_ID, SignedAdvert


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REPLAYED = "replayed"
    FORGED = "forged"
    UNKNOWN_BAND = "unknown_band"


@dataclass(slots=True)
class _BandState:
    counter: int
    frame: bytes
    first_seen_s: float


class AdvertVerifier:
    def __init__(self, keys: Mapping[int, tuple[bytes, ...]], *,
                 company_id: int = DEFAULT_COMPANY_ID, duplicate_window_s: float = 5.0) -> None:
        self._keys = dict(keys)
        self.company_id = company_id
        self.duplicate_window_s = duplicate_window_s
        self._state: dict[int, _BandState] = {}

    def known(self, band_id: int) -> bool:
        return band_id in self._keys

    def replace_keys(self, keys: Mapping[int, tuple[bytes, ...]]) -> None:
        self._keys = dict(keys)

    def check(self, signed: SignedAdvert, now_s: float) -> Verdict:
        band = signed.advert.band_id
        secrets = self._keys.get(band)
        if not secrets:
            return Verdict.UNKNOWN_BAND
        if not any(signed.verify(k, self.company_id) for k in secrets):
            return Verdict.FORGED
        frame = signed.signed + signed.tag
        state = self._state.get(band)
        counter = signed.advert.counter
        if state is None or counter > state.counter:
            self._state[band] = _BandState(counter, frame, now_s)
            return Verdict.ACCEPTED
        if (counter == state.counter and frame == state.frame
                and now_s - state.first_seen_s <= self.duplicate_window_s):
            return Verdict.DUPLICATE
        return Verdict.REPLAYED

    def counters(self) -> dict[int, int]:
        """Highest accepted counter per band (persist it so a restart cannot be replayed into)."""
        return {band: s.counter for band, s in self._state.items()}

    def restore_counters(self, counters: Mapping[int, int], now_s: float) -> None:
        for band, counter in counters.items():
            # An empty frame never equals a real one: the stored counter itself is a replay.
            self._state[band] = _BandState(counter, b"", now_s)
