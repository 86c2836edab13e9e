"""Detector plugins, registered by convention: one module per plugin in :data:`PLUGINS`, each
with ``KEY``, ``Config`` (``type: Literal[KEY]``) and ``create``. The config union below and the
runtime registry are built from that one list (a test checks they agree)."""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

from pydantic import Field

from edge.camera.detectors import hog, onnx, tflite
from edge.camera.detectors.base import (
    Detector,
    DetectorError,
    DetectorUnavailableError,
)
from edge.camera.detectors.default import choose_default, default_detector

PLUGINS: tuple[ModuleType, ...] = (hog, tflite, onnx)
REGISTRY: dict[str, ModuleType] = {m.KEY: m for m in PLUGINS}

DetectorConfig = Annotated[hog.Config | tflite.Config | onnx.Config, Field(discriminator="type")]


def build_detector(config: hog.Config | tflite.Config | onnx.Config) -> Detector:
    """Instantiate the plugin for ``config.type``; a missing runtime raises a clear error."""
    plugin = REGISTRY[config.type]
    detector: Detector = plugin.create(config)
    return detector


__all__ = ["PLUGINS", "REGISTRY", "Detector", "DetectorConfig", "DetectorError",
           "DetectorUnavailableError", "build_detector", "choose_default", "default_detector"]
