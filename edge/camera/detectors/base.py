"""What every detector plugin provides. One file per plugin in this package; each defines
``KEY``, a pydantic ``Config`` with ``type: Literal[KEY]`` and ``create(config) -> Detector``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from edge.vision.boxes import Box, Detection

Image = NDArray[np.uint8]


class DetectorError(Exception):
    """A detector that cannot be built or run; the message says what to install or fix."""


class DetectorUnavailableError(DetectorError):
    """The plugin's optional runtime (onnxruntime, ai_edge_litert, ...) is not installed."""


class Detector(Protocol):
    name: str

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        """Detections in frame pixels; ``regions`` limits the search where the plugin can."""
        ...

    def close(self) -> None: ...
