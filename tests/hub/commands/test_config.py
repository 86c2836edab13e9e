"""The command outbox's settings: backoff doubles up to its cap, nonsense is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.commands.config import CommandOutboxConfig


def test_backoff_doubles_up_to_the_cap() -> None:
    config = CommandOutboxConfig(retry_initial_s=5, retry_max_s=30)
    assert [config.retry_delay_s(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
    assert config.retry_delay_s(10_000) == 30  # no overflow on a long-failing command


@pytest.mark.parametrize(
    "values",
    [
        {"retry_initial_s": 60, "retry_max_s": 10},
        {"max_attempts": 0},
        {"scan_interval_s": 0},
        {"retry_every_s": 5},
    ],
)
def test_nonsense_is_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        CommandOutboxConfig.model_validate(values)
