"""What a verification found: failures that name the record or checkpoint, and what could not be
checked (so an OK never claims more than was proven)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FindingKind = Literal["record", "checkpoint", "log"]


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FindingKind
    reason: str
    seq: int | None = None  # the record's sequence number, or the one a checkpoint signs
    line: int | None = None  # the checkpoint's line in the checkpoint file (1-based)

    def __str__(self) -> str:
        if self.kind == "record" and self.seq is not None:
            return f"record {self.seq}: {self.reason}"
        if self.kind == "checkpoint":
            where = f"checkpoint line {self.line}" if self.line is not None else "checkpoint"
            if self.seq is not None:
                where += f" (record {self.seq})"
            return f"{where}: {self.reason}"
        return self.reason


@dataclass(slots=True)
class VerifyResult:
    records: int = 0
    head_hash: str = ""
    failures: list[Failure] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    legacy_records: int = 0
    checkpoints: int = 0
    hmac_checked: bool = False
    checkpoints_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def problems(self) -> list[str]:
        return [str(f) for f in self.failures]
