"""1:N cosine search over the entries of an opened watchlist bundle.

A :class:`Gallery` is immutable: the watchlist builds a new one for each bundle and for each
expiry it enforces, and swaps it in under its lock, so a search never sees half an update.
Correctness never waits for that swap, though: :meth:`Gallery.search` takes the edge clock's
``now`` and never returns an entry past its expiry, or anything once the bundle has expired.

The matrix is float32, rows L2-normalised, C-contiguous: one matrix product scores every entry
(cosine = dot product of unit vectors), then ``argpartition`` picks the top k in linear time
instead of sorting the whole gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from edge.faces.bundle import BundlePayload


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    score: float  # cosine similarity, -1..1


class Gallery:
    """The entries in force: ids, expiries and a unit-row embedding matrix."""

    __slots__ = ("_expiries", "_first_expiry", "_ids", "_matrix", "dim", "expires_at", "model",
                 "version")

    def __init__(self, *, version: int, model: str, dim: int, expires_at: datetime | None,
                 ids: tuple[str, ...], expiries: NDArray[np.float64],
                 matrix: NDArray[np.float32]) -> None:
        if matrix.shape != (len(ids), dim) or expiries.shape != (len(ids),):
            raise ValueError(f"{len(ids)} ids, {expiries.shape} expiries, {matrix.shape} matrix")
        self.version = version
        self.model = model
        self.dim = dim
        self.expires_at = expires_at
        self._ids = ids
        self._expiries = expiries  # UNIX seconds, aligned with the rows
        self._first_expiry = float(expiries.min()) if len(ids) else np.inf
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._matrix.flags.writeable = False

    @classmethod
    def empty(cls, model: str = "", dim: int = 0) -> Gallery:
        """No bundle in force (version 0): every search finds nothing."""
        return cls(version=0, model=model, dim=dim, expires_at=None, ids=(),
                   expiries=np.zeros(0), matrix=np.zeros((0, dim), dtype=np.float32))

    @classmethod
    def from_payload(cls, payload: BundlePayload, now: datetime | None = None) -> Gallery:
        """The gallery of an opened bundle; with ``now``, already pruned of expired entries."""
        gallery = cls(
            version=payload.version, model=payload.model, dim=payload.dim,
            expires_at=payload.expires_at, ids=payload.entry_ids(),
            expiries=payload.expiries_s(), matrix=payload.embeddings())
        return gallery if now is None else gallery.pruned(now)

    @property
    def size(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    @property
    def next_expiry(self) -> datetime | None:
        """The next instant this gallery changes by the clock alone: the earliest entry expiry
        or the bundle's expiry; None for an empty gallery."""
        if self.expires_at is None:
            return None
        if not self._ids:
            return self.expires_at
        return min(datetime.fromtimestamp(self._first_expiry, UTC), self.expires_at)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def pruned(self, now: datetime) -> Gallery:
        """This gallery without the entries expired at ``now`` (itself when none is); the empty
        gallery once the bundle itself has expired."""
        if self.is_expired(now):
            return Gallery.empty(self.model, self.dim)
        if now.timestamp() < self._first_expiry:
            return self
        live = self._expiries > now.timestamp()
        return Gallery(version=self.version, model=self.model, dim=self.dim,
                       expires_at=self.expires_at,
                       ids=tuple(i for i, keep in zip(self._ids, live, strict=True) if keep),
                       expiries=self._expiries[live], matrix=self._matrix[live])

    def search(self, embeddings: NDArray[np.float32], k: int, now: datetime
               ) -> list[list[Candidate]]:
        """The ``k`` best entries for each query row (n, dim), best first; entries expired at
        ``now`` are never among them."""
        queries = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if queries.ndim != 2 or (queries.shape[1] != self.dim and self.size):
            raise ValueError(f"queries are {queries.shape}; this gallery holds {self.dim} dims")
        n = queries.shape[0]
        if k < 1 or not self.size or self.is_expired(now):
            return [[] for _ in range(n)]
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        # A query that is not a direction (zero, NaN, inf: an embedder fault) matches nothing,
        # rather than scoring NaN against every entry.
        unusable = ~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 1e-6))
        if unusable.any():
            queries = np.where(unusable[:, None], np.float32(0), queries)
            norms = np.where(unusable[:, None], np.float32(1), norms)
        queries = queries / norms
        scores = queries @ self._matrix.T  # (n, size)
        # Only a gallery the timer has not pruned yet pays for the mask.
        any_expired = now.timestamp() >= self._first_expiry
        if any_expired:
            scores[:, self._expiries <= now.timestamp()] = -np.inf
        top = min(k, self.size)
        if top < self.size:
            idx = np.argpartition(scores, self.size - top, axis=1)[:, self.size - top:]
        else:
            idx = np.broadcast_to(np.arange(self.size), (n, self.size))
        picked = np.take_along_axis(scores, idx, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        picked = np.take_along_axis(picked, order, axis=1)
        results: list[list[Candidate]] = []
        for row, (row_idx, row_scores) in enumerate(zip(idx.tolist(), picked.tolist(),
                                                        strict=True)):
            if unusable[row]:
                results.append([])
                continue
            results.append([Candidate(self._ids[i], s) for i, s in zip(row_idx, row_scores,
                                                                        strict=True)
                            if not any_expired or s != -np.inf])
        return results
