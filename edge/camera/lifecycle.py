"""The camera agent's lifecycle log: started, detector chosen and why, stream connected and
lost, broker connected and lost, alerts pending, and what is left at exit.

An operator running ``gridward edge camera`` without ``-v`` sees WARNING and above from every
other logger; these few lines are what tells them the agent is alive and why it stopped, so
:func:`show_at_default_level` lets this one logger through at INFO.
"""

from __future__ import annotations

import logging

log = logging.getLogger("edge.camera.lifecycle")


def show_at_default_level() -> None:
    """Let lifecycle events through at INFO even when the root logger is at WARNING."""
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
