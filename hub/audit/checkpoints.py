"""Signed checkpoints: Ed25519 over (line number, sequence number, head hash, time).

They live in an append-only JSON-lines file outside the database. Anyone holding only the public
key can check that each line was signed by the hub and that the database still holds the signed
head at that sequence number, which exposes deleted newest records and a rewritten chain even to a
verifier who may not see the HMAC key.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.audit.keys import check_private, write_new_secret
from hub.audit.report import Failure

FORMAT_VERSION: Final = 1
MAX_LINE_BYTES: Final = 4096


class BadCheckpointLineError(Exception):
    """One line of the checkpoint file is not a valid checkpoint (the message says why)."""


class CheckpointKeyError(Exception):
    """A signing or public key file is missing, unreadable or not an Ed25519 key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    number: int  # 1, 2, 3 ... in the order the hub announced them in the log
    seq: int
    head: str
    ts: datetime


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_part(cp: Checkpoint, key_fp: str) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "n": cp.number,
        "seq": cp.seq,
        "head": cp.head,
        "ts": cp.ts.isoformat(timespec="microseconds"),
        "key": key_fp,
    }


def _message(part: dict[str, Any]) -> bytes:
    return json.dumps(part, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(cp: Checkpoint, private_key: Ed25519PrivateKey) -> str:
    """One JSON line (without the newline)."""
    part = _signed_part(cp, fingerprint(private_key.public_key()))
    sig = base64.b64encode(private_key.sign(_message(part))).decode("ascii")
    return json.dumps({**part, "sig": sig}, sort_keys=True, separators=(",", ":"))


def parse_line(text: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Parse and check one line; :class:`BadCheckpointLineError` says why it is not valid."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadCheckpointLineError(f"not JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise BadCheckpointLineError("not a JSON object")
    sig_b64 = obj.pop("sig", None)
    expected_keys = {"v", "n", "seq", "head", "ts", "key"}
    if set(obj) != expected_keys or not isinstance(sig_b64, str):
        raise BadCheckpointLineError("fields missing or unknown")
    if obj["v"] != FORMAT_VERSION:
        raise BadCheckpointLineError(f"unknown format version {obj['v']!r}")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        raise BadCheckpointLineError("signature is not base64") from None
    try:
        public_key.verify(signature, _message(obj))
    except InvalidSignature:
        if obj["key"] != fingerprint(public_key):
            raise BadCheckpointLineError(
                f"signature invalid: signed with another key ({str(obj['key'])[:16]})"
            ) from None
        raise BadCheckpointLineError(
            "signature invalid: the line was altered after signing"
        ) from None
    number, seq, head, ts = obj["n"], obj["seq"], obj["head"], obj["ts"]
    if not (isinstance(number, int) and isinstance(seq, int) and isinstance(head, str)):
        raise BadCheckpointLineError("fields have the wrong types")
    try:
        when = datetime.fromisoformat(str(ts))
    except ValueError:
        raise BadCheckpointLineError("time is not ISO 8601") from None
    return Checkpoint(number, seq, head, when)


@dataclass(slots=True)
class CheckpointScan:
    by_number: dict[int, tuple[int, Checkpoint]]  # number -> (file line, checkpoint)
    failures: list[Failure]
    lines: int
    public_key: Ed25519PublicKey


def scan(path: Path, public_key: Ed25519PublicKey) -> CheckpointScan:
    """Every line checked on its own; duplicates and gaps in the numbering are failures."""
    by_number: dict[int, tuple[int, Checkpoint]] = {}
    failures: list[Failure] = []
    lines = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            lines = lineno
            if len(raw) > MAX_LINE_BYTES:
                failures.append(Failure("checkpoint", "line too long", line=lineno))
                continue
            try:
                cp = parse_line(raw.decode("utf-8"), public_key)
            except (BadCheckpointLineError, UnicodeDecodeError) as err:
                failures.append(Failure("checkpoint", str(err), line=lineno))
                continue
            if cp.number in by_number:
                failures.append(
                    Failure(
                        "checkpoint",
                        f"checkpoint {cp.number} appears twice (also line "
                        f"{by_number[cp.number][0]})",
                        seq=cp.seq,
                        line=lineno,
                    )
                )
                continue
            by_number[cp.number] = (lineno, cp)
    return CheckpointScan(by_number, failures, lines, public_key)


@contextmanager
def _locked_append(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # Several processes (hub, CLI) may append: one whole line at a time.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def append(path: Path, line: str) -> None:
    data = (line + "\n").encode("utf-8")
    with _locked_append(path) as fd:
        os.write(fd, data)
        os.fsync(fd)


def load_or_create_signing_key(path: Path, public_path: Path) -> Ed25519PrivateKey:
    """The hub's checkpoint signing key (PKCS#8 PEM, 0600), created on first start together
    with the public key file an auditor copies away."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_new_secret(path, pem, 0o600)
    check_private(path)
    key_loaded = _load_private(path)
    pub_pem = key_loaded.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not public_path.exists():
        write_new_secret(public_path, pub_pem, 0o644)
    elif public_path.read_bytes() != pub_pem:
        raise CheckpointKeyError(
            f"{public_path} is not the public half of {path}: restore the matching pair"
        )
    return key_loaded


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointKeyError(
            f"{path}: cannot load the checkpoint signing key ({err})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise CheckpointKeyError(f"{path}: cannot load the checkpoint public key ({err})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointKeyError(f"{path}: not an Ed25519 public key")
    return key
