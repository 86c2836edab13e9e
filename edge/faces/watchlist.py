"""The edge side of watchlist bundles: receive, verify, apply, persist, expire, report.

:class:`EdgeWatchlist` handles ``CmdChannel.WATCHLIST`` on an :class:`~edge.agent.AgentRuntime`:

- every bundle gets a :class:`~edge.protocol.Reply` (``request_id`` = the envelope's id): ok with
  ``bundle_version``, or ``error`` = the refusal reason (:class:`~edge.faces.bundle.BundleRefusal`),
  each reason counted in health (``dropped["bundle_<reason>"]``);
- a byte-identical re-delivery of the bundle in force (the retained message, after every
  reconnect) is answered ok again and changes nothing;
- a bundle sealed in parts is collected in bounded memory (``max_bundle_parts``,
  ``max_bundle_bytes``), each part answered; the gallery changes only once every part is in and
  the set verifies, and until then the bundle in force keeps matching. A newer version discards
  an incomplete older one; a set still incomplete after ``part_timeout_s`` is dropped;
- the accepted envelope is stored as received (still encrypted, 0600) together with the applied
  version high-water mark, in one file replaced atomically; at start it is verified again like a
  new bundle, and dropped if it is stale, expired or no longer verifies (the high-water mark
  stays, so an older bundle is still refused after a restart);
- entries leave the gallery when the edge clock passes their expiry, and the whole gallery when
  the bundle expires, with no hub needed (:meth:`EdgeWatchlist.enforce_expiry`, run by a timer);
- the retained DeviceState carries ``watchlist_version`` (0: none, or every entry expired) and
  ``bundle_key_b64``, the public half of this device's bundle key.

Logs carry versions, reasons and counts only: never an embedding, and no entry ids either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator

from edge.config import StrictModel
from edge.faces.bundle import (
    DEFAULT_MAX_SKEW_S,
    BundlePayload,
    BundleRefusal,
    BundleRefusedError,
    assemble_parts,
    check_envelope,
    check_plaintext,
    decrypt_envelope,
    open_bundle,
    open_part,
)
from edge.faces.gallery import Gallery
from edge.faces.keys import load_hub_keys, load_or_create_device_key, public_key_b64
from edge.protocol import (
    MAX_BUNDLE_PARTS,
    CmdChannel,
    Message,
    ProtocolError,
    Reply,
    WatchlistBundleEnvelope,
    decode_as,
    encode,
)
from edge.validators import SegmentId, utcnow

if TYPE_CHECKING:
    from edge.agent import AgentRuntime

log = logging.getLogger(__name__)

STORE_FORMAT = 1
_REASONS = frozenset(reason.value for reason in BundleRefusal)
DAY_S = 86_400.0


class WatchlistConfig(StrictModel):
    """Where a face-matching device keeps its bundle key and bundle, and whom it trusts."""

    hub_keys: dict[SegmentId, str] = Field(
        min_length=1, max_length=8,
        description="hub bundle signing keys, key id -> base64 Ed25519 public key (print them "
        "with `gridward hub watchlist-key`); two during a key rotation")
    key_file: Path | None = Field(
        default=None, description="this device's X25519 bundle key (created 0600 on first "
        "start); default <data_dir>/<device>-bundle.key")
    store_dir: Path | None = Field(
        default=None, description="where the accepted bundle is kept across restarts; "
        "default data_dir")
    max_bundle_age_s: Annotated[float, Field(gt=0, le=366 * DAY_S, description=(
        "a bundle issued longer ago than this by the device clock is refused as stale (the hub "
        "re-issues bundles well within it)"))] = 7 * DAY_S
    expiry_check_interval_s: Annotated[float, Field(gt=0, le=60, description=(
        "how often the device clock is compared with entry and bundle expiries"))] = 1.0
    max_clock_skew_s: Annotated[float, Field(ge=0, le=DAY_S, description=(
        "a bundle issued more than this ahead of the device clock is refused as future"))] = (
        DEFAULT_MAX_SKEW_S)
    max_bundle_parts: Annotated[int, Field(ge=2, le=MAX_BUNDLE_PARTS, description=(
        "the most parts one bundle version may come in (100,000 entries of 128 dimensions "
        "in float16 take 21)"))] = 64
    max_bundle_bytes: Annotated[int, Field(ge=1_000_000, le=1 << 30, description=(
        "the most bytes of received parts (as encoded) held while a bundle in parts is "
        "collected; with their plaintext the device holds about 1.75 times this"))] = (
        64 * 1024 * 1024)
    part_timeout_s: Annotated[float, Field(gt=0, le=DAY_S, description=(
        "a bundle in parts still incomplete this long after its first part is dropped"))] = (
        300.0)

    @field_validator("hub_keys")
    @classmethod
    def _keys_match_their_ids(cls, value: dict[str, str]) -> dict[str, str]:
        load_hub_keys(value)
        return value


class StoreUnreadableError(ValueError):
    """The store file is not one this code wrote (corrupt, or of another format)."""


@dataclass(frozen=True, slots=True)
class StoredBundle:
    applied_version: int
    digest: str | None  # of the envelope, or a bundle in parts' set_sha256
    envelope: str | None  # a one-envelope bundle as received (None once dropped)
    parts: tuple[str, ...] | None = None  # or the parts of one, in part order


class BundleStore:
    """One file: the applied version high-water mark, the digest of the last accepted bundle
    and that bundle as received: one envelope, or its parts (None once dropped). Replaced
    atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredBundle | None:
        """What :meth:`save` wrote, or None when absent; raises
        :class:`StoreUnreadableError` for a file that is not one of ours."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise StoreUnreadableError(f"unreadable: {err}") from None
        if not isinstance(data, dict) or data.get("format") != STORE_FORMAT:
            raise StoreUnreadableError("not a watchlist store of format 1")
        version, digest, envelope = data.get("applied_version"), data.get("digest"), data.get(
            "envelope")
        if type(version) is not int or version < 0:
            raise StoreUnreadableError("applied_version is not a version")
        if not isinstance(digest, str | None) or not isinstance(envelope, str | None):
            raise StoreUnreadableError("digest and envelope must be strings")
        parts = data.get("parts")
        if parts is not None and not (isinstance(parts, list) and parts
                                      and all(isinstance(p, str) for p in parts)):
            raise StoreUnreadableError("parts must be a list of strings")
        return StoredBundle(version, digest, envelope,
                            tuple(parts) if parts is not None else None)

    def save(self, applied_version: int, digest: str | None, envelope: str | None,
             parts: tuple[str, ...] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        # "parts" is absent for a one-envelope bundle: the file an older release wrote.
        record: dict[str, Any] = {"format": STORE_FORMAT, "applied_version": applied_version,
                                  "digest": digest, "envelope": envelope}
        if parts is not None:
            record["parts"] = list(parts)
        body = json.dumps(record)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)  # a crash leaves the old file or the new one, never half
        with contextlib.suppress(OSError):  # the rename itself durable where the OS allows
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(slots=True)
class _PartSet:
    """The parts of one sealing of one version received so far (bounded by the config)."""

    version: int
    set_sha256: str
    parts: int
    started: datetime  # device clock at the first part, for part_timeout_s
    newest_ts: datetime  # the latest envelope ts seen: a later sealing of the version wins
    last_id: str  # the envelope answered when the set times out
    envelopes: dict[int, WatchlistBundleEnvelope] = field(default_factory=dict)
    digests: dict[int, str] = field(default_factory=dict)
    plaintexts: dict[int, bytes] = field(default_factory=dict)
    size_bytes: int = 0


class EdgeWatchlist:
    """The watchlist in force on one device, fed by the hub's bundles."""

    def __init__(self, config: WatchlistConfig, runtime: AgentRuntime, model: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.model = model
        self._runtime = runtime
        self._clock = clock
        data_dir = runtime.config.data_dir
        self._site, self._device = runtime.site, runtime.device
        self._device_key = load_or_create_device_key(
            config.key_file or data_dir / f"{self._device}-bundle.key")
        self.bundle_key_b64 = public_key_b64(self._device_key)
        self._hub_keys = load_hub_keys(config.hub_keys)
        self._store = BundleStore((config.store_dir or data_dir) / f"{self._device}-watchlist.json")
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()  # one bundle or expiry change at a time
        self._gallery = Gallery.empty(model)
        self._applied_version = 0
        self._digest: str | None = None  # of the last accepted envelope, kept once dropped
        self._envelope_json: str | None = None  # in force, as received
        self._part_texts: tuple[str, ...] | None = None  # or the parts of the one in force
        self._part_digests: frozenset[str] = frozenset()
        self._pending: _PartSet | None = None  # a bundle in parts being collected
        self._applied_entries = 0
        self._dropped: BundleRefusal | None = None  # why the last accepted one left, if it did
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload()
        runtime.on_command(CmdChannel.WATCHLIST, self._on_command)
        runtime.add_state_provider(self._state_fields)
        runtime.add_health_provider(self._health_fields)

    # -- what the matcher and the runtime read ----------------------------------------------

    def gallery(self) -> Gallery:
        """The gallery in force (immutable; replaced whole by each change)."""
        return self._gallery

    @property
    def applied_version(self) -> int:
        return self._applied_version

    def reported_version(self) -> int:
        """``watchlist_version`` for DeviceState: 0 when no bundle is in force or every entry
        of the one in force has expired."""
        gallery = self._gallery
        if gallery.size == 0 and self._applied_entries > 0:
            return 0
        return gallery.version

    def _state_fields(self) -> Mapping[str, Any]:
        return {"watchlist_version": self.reported_version(),
                "bundle_key_b64": self.bundle_key_b64}

    def _health_fields(self) -> Mapping[str, Any]:
        gallery = self._gallery
        return {"dropped": {f"bundle_{reason}": n for reason, n in self.counters.items()
                            if reason in _REASONS},
                "metrics": {"watchlist_version": float(self.reported_version()),
                            "watchlist_entries": float(gallery.size)}}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Run the expiry timer (the device clock is checked every expiry_check_interval_s)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._expiry_loop,
                                        name=f"{self._device}-watchlist-expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _expiry_loop(self) -> None:
        while not self._stop.wait(self.config.expiry_check_interval_s):
            try:
                self.enforce_part_timeout()
                self.enforce_expiry()
            except Exception:  # the timer must outlive one bad run (a full disk)
                self.counters["expiry_error"] += 1
                log.exception("watchlist expiry check failed")

    # -- bundles ----------------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        if isinstance(message, WatchlistBundleEnvelope):
            self._runtime.send_reply(self.handle(message))

    def handle(self, envelope: WatchlistBundleEnvelope) -> Reply:
        """Apply or refuse one bundle (or one part of one); the Reply to send back."""
        self.enforce_part_timeout()
        if envelope.parts is not None:
            return self._handle_part(envelope)
        raw = encode(envelope)
        digest = _digest(raw)
        now = self._clock()
        version = envelope.bundle_version
        with self._lock:
            if self._digest == digest and version == self._applied_version:
                refusal = self._redelivery_refusal(envelope, now)
                if refusal is None:
                    self.counters["redelivered"] += 1
                    return self._reply(envelope, ok=True, entries=self._gallery.size)
                return self._refuse(envelope, refusal)
            try:
                payload = open_bundle(
                    envelope, site=self._site, device=self._device, device_key=self._device_key,
                    hub_keys=self._hub_keys, applied_version=self._applied_version, now=now,
                    max_age_s=self.config.max_bundle_age_s, model=self.model,
                    max_skew_s=self.config.max_clock_skew_s)
            except BundleRefusedError as err:
                return self._refuse(envelope, err.reason)
            gallery = self._apply(payload, digest, raw.decode("utf-8"), None, now)
        log.info("watchlist bundle version %d applied: %d entries in force (%d already expired)",
                 version, gallery.size, len(payload.entries) - gallery.size)
        self._runtime.publish_state()
        return self._reply(envelope, ok=True, entries=gallery.size)

    def _apply(self, payload: BundlePayload, digest: str, text: str | None,
               parts: tuple[str, ...] | None, now: datetime) -> Gallery:
        """Make a verified bundle the one in force (under the lock)."""
        gallery = Gallery.from_payload(payload, now)
        self._persist(payload.version, digest, text, parts)
        self._applied_version, self._digest = payload.version, digest
        self._envelope_json, self._part_texts = text, parts
        self._part_digests = frozenset(_digest(p.encode("utf-8")) for p in parts or ())
        self._applied_entries = len(payload.entries)
        self._gallery = gallery
        self._dropped = None
        if self._pending is not None and self._pending.version <= payload.version:
            self._pending = None  # an older or the same version's parts can no longer apply
        self.counters["applied"] += 1
        return gallery

    def _handle_part(self, envelope: WatchlistBundleEnvelope) -> Reply:
        raw = encode(envelope)
        digest = _digest(raw)
        now = self._clock()
        version = envelope.bundle_version
        with self._lock:
            if version == self._applied_version and digest in self._part_digests:
                refusal = self._redelivery_refusal(envelope, now)
                if refusal is None:
                    self.counters["redelivered"] += 1
                    return self._part_reply(envelope, received=envelope.parts or 0,
                                            entries=self._gallery.size)
                return self._refuse(envelope, refusal)
            try:
                pending = self._accept_part(envelope, raw, digest, now)
            except BundleRefusedError as err:
                return self._refuse(envelope, err.reason)
            if len(pending.envelopes) < pending.parts:
                return self._part_reply(envelope, received=len(pending.envelopes))
            self._pending = None
            ordered = [pending.envelopes[i] for i in range(pending.parts)]
            try:
                payload = assemble_parts(
                    ordered, [pending.plaintexts[i] for i in range(pending.parts)], self.model)
            except BundleRefusedError as err:
                return self._refuse(envelope, err.reason)
            # Encoded again rather than held twice while collecting: the same bytes.
            texts = tuple(encode(e).decode("utf-8") for e in ordered)
            gallery = self._apply(payload, pending.set_sha256, None, texts, now)
        log.info("watchlist bundle version %d applied from %d parts: %d entries in force "
                 "(%d already expired)", version, pending.parts, gallery.size,
                 len(payload.entries) - gallery.size)
        self._runtime.publish_state()
        return self._part_reply(envelope, received=pending.parts, entries=gallery.size)

    def _accept_part(self, envelope: WatchlistBundleEnvelope, raw: bytes, digest: str,
                     now: datetime) -> _PartSet:
        """Check one part and add it to the set being collected (under the lock)."""
        ciphertext_ascii = check_envelope(
            envelope, site=self._site, device=self._device, hub_keys=self._hub_keys,
            applied_version=self._applied_version, now=now,
            max_age_s=self.config.max_bundle_age_s, max_skew_s=self.config.max_clock_skew_s)
        parts, part, set_sha256 = envelope.parts, envelope.part, envelope.set_sha256
        if parts is None or part is None or set_sha256 is None:  # the contract pairs them
            raise BundleRefusedError(BundleRefusal.MALFORMED, "not a part")
        if parts > self.config.max_bundle_parts:
            raise BundleRefusedError(
                BundleRefusal.TOO_MANY_PARTS,
                f"{parts} parts, this edge takes {self.config.max_bundle_parts}")
        pending = self._pending
        if pending is not None:
            if envelope.bundle_version < pending.version:
                raise BundleRefusedError(BundleRefusal.REPLAYED,
                                         f"older than version {pending.version} being collected")
            if envelope.bundle_version == pending.version and (
                    set_sha256 != pending.set_sha256 or parts != pending.parts):
                if envelope.ts <= pending.newest_ts:
                    raise BundleRefusedError(BundleRefusal.PART_MISMATCH,
                                             "a part of another sealing of this version")
                self._discard_pending("parts_restarted")  # the hub sealed the version again
            elif envelope.bundle_version > pending.version:
                self._discard_pending("parts_superseded")
        pending = self._pending
        if pending is not None and part in pending.envelopes:
            if pending.digests[part] != digest:
                raise BundleRefusedError(BundleRefusal.PART_MISMATCH,
                                         f"part {part} came twice with different bytes")
            self.counters["part_redelivered"] += 1
            return pending
        if (pending.size_bytes if pending else 0) + len(raw) > self.config.max_bundle_bytes:
            self._discard_pending("parts_dropped")
            raise BundleRefusedError(BundleRefusal.TOO_LARGE,
                                     f"parts over {self.config.max_bundle_bytes} bytes")
        plaintext = decrypt_envelope(envelope, self._device_key, ciphertext_ascii)
        if pending is None:
            pending = _PartSet(envelope.bundle_version, set_sha256, parts, started=now,
                               newest_ts=envelope.ts, last_id=envelope.id)
            self._pending = pending
        pending.envelopes[part] = envelope
        pending.digests[part] = digest
        pending.plaintexts[part] = plaintext
        pending.size_bytes += len(raw)
        pending.newest_ts = max(pending.newest_ts, envelope.ts)
        pending.last_id = envelope.id
        self.counters["parts_received"] += 1
        return pending

    def _discard_pending(self, counter: str) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            self.counters[counter] += 1
            log.info("watchlist bundle version %d: %d of %d parts discarded (%s)",
                     pending.version, len(pending.envelopes), pending.parts, counter)

    def enforce_part_timeout(self) -> bool:
        """Drop a bundle in parts still incomplete ``part_timeout_s`` after its first part;
        answered (``incomplete``) on the last part received. True when one was dropped."""
        now = self._clock()
        with self._lock:
            pending = self._pending
            if pending is None or (now - pending.started).total_seconds() < (
                    self.config.part_timeout_s):
                return False
            self._pending = None
            self.counters[BundleRefusal.INCOMPLETE.value] += 1
        log.warning("watchlist bundle version %d dropped incomplete: %d of %d parts (version %d "
                    "stays in force)", pending.version, len(pending.envelopes), pending.parts,
                    self._gallery.version)
        self._runtime.send_reply(Reply(
            site=self._site, device=self._device, request_id=pending.last_id, ok=False,
            error=BundleRefusal.INCOMPLETE.value,
            result={"bundle_version": pending.version, "parts": pending.parts,
                    "received": len(pending.envelopes)}))
        return True

    def pending_parts(self) -> tuple[int, int, int] | None:
        """(version, parts received, parts) of a bundle in parts being collected, or None."""
        pending = self._pending
        return None if pending is None else (pending.version, len(pending.envelopes),
                                             pending.parts)

    def _part_reply(self, envelope: WatchlistBundleEnvelope, *, received: int,
                    entries: int | None = None) -> Reply:
        result: dict[str, Any] = {"bundle_version": envelope.bundle_version,
                                  "part": envelope.part, "parts": envelope.parts,
                                  "received": received, "complete": entries is not None}
        if entries is not None:
            result["entries"] = entries
        return Reply(site=self._site, device=self._device, request_id=envelope.id, ok=True,
                     result=result)

    def _redelivery_refusal(self, envelope: WatchlistBundleEnvelope, now: datetime
                            ) -> BundleRefusal | None:
        """The last accepted bundle came again: fine while it is in force; once dropped (it
        expired, or failed its checks at a restart), the reason it was dropped for."""
        if envelope.expires_at <= now:
            return BundleRefusal.EXPIRED  # even if the timer has not dropped it yet
        if self._envelope_json is not None or self._part_texts is not None:
            return None
        return self._dropped or BundleRefusal.REPLAYED

    def _refuse(self, envelope: WatchlistBundleEnvelope, reason: BundleRefusal) -> Reply:
        self.counters[reason.value] += 1
        log.warning("watchlist bundle version %d refused: %s (version %d stays in force)",
                    envelope.bundle_version, reason.value, self._gallery.version)
        return Reply(site=self._site, device=self._device, request_id=envelope.id, ok=False,
                     error=reason.value, result={"bundle_version": envelope.bundle_version})

    def _reply(self, envelope: WatchlistBundleEnvelope, *, ok: bool, entries: int) -> Reply:
        return Reply(site=self._site, device=self._device, request_id=envelope.id, ok=ok,
                     result={"bundle_version": envelope.bundle_version, "entries": entries})

    def _persist(self, version: int, digest: str | None, text: str | None,
                 parts: tuple[str, ...] | None = None) -> None:
        try:
            self._store.save(version, digest, text, parts)
        except OSError as err:
            # The bundle still applies now (a revocation must not wait for a disk); after a
            # restart the previous one would be in force until the hub's next push.
            self.counters["store_error"] += 1
            log.error("watchlist bundle version %d not stored: %s", version, err)  # noqa: TRY400 - the reason is the message

    # -- expiry -----------------------------------------------------------------------------

    def enforce_expiry(self) -> bool:
        """Drop what the device clock says has expired; True when the gallery changed."""
        now = self._clock()
        with self._lock:
            before = self._gallery
            expiry = before.next_expiry
            if before.version == 0 or expiry is None or now < expiry:
                return False
            reported = self.reported_version()
            self._gallery = before.pruned(now)
            bundle_gone = self._gallery.version == 0
            if bundle_gone:
                self._envelope_json, self._part_texts = None, None
                self._dropped = BundleRefusal.EXPIRED
                self._persist(self._applied_version, self._digest, None)
        if bundle_gone:
            log.info("watchlist bundle version %d expired: gallery emptied", before.version)
        else:
            log.info("watchlist bundle version %d: %d entries expired, %d in force",
                     before.version, before.size - self._gallery.size, self._gallery.size)
        if self.reported_version() != reported:
            self._runtime.publish_state()
        return True

    # -- restart ----------------------------------------------------------------------------

    def _reload(self) -> None:
        try:
            stored = self._store.load()
        except StoreUnreadableError as err:
            self.counters["store_unreadable"] += 1
            log.error("ignored unreadable watchlist store %s: %s", self._store.path, err)  # noqa: TRY400 - the reason is the message
            return
        if stored is None:
            return
        self._applied_version, self._digest = stored.applied_version, stored.digest
        texts = stored.parts if stored.parts is not None else (
            (stored.envelope,) if stored.envelope is not None else ())
        if not texts:
            return
        now = self._clock()
        try:
            envelopes = [decode_as(WatchlistBundleEnvelope, t.encode("utf-8")) for t in texts]
            plaintexts = [open_part(
                e, site=self._site, device=self._device, device_key=self._device_key,
                hub_keys=self._hub_keys, applied_version=self._applied_version - 1, now=now,
                max_age_s=self.config.max_bundle_age_s, max_skew_s=self.config.max_clock_skew_s)
                for e in envelopes]
            payload = (check_plaintext(plaintexts[0], envelopes[0], self.model)
                       if stored.parts is None
                       else assemble_parts(envelopes, plaintexts, self.model))
        except (BundleRefusedError, ProtocolError) as err:
            reason = err.reason if isinstance(err, BundleRefusedError) else BundleRefusal.MALFORMED
            self.counters[f"reload_{reason}"] += 1
            self._dropped = reason
            log.warning("stored watchlist bundle version %d dropped at start: %s",
                        self._applied_version, reason)
            self._persist(self._applied_version, self._digest, None)
            return
        # Signed, so trusted to raise the mark (a store written by an older release).
        self._applied_version = max(self._applied_version, payload.version)
        self._envelope_json, self._part_texts = stored.envelope, stored.parts
        self._part_digests = frozenset(_digest(p.encode("utf-8")) for p in stored.parts or ())
        self._applied_entries = len(payload.entries)
        self._gallery = Gallery.from_payload(payload, now)
        log.info("watchlist bundle version %d reloaded: %d entries in force",
                 self._applied_version, self._gallery.size)
