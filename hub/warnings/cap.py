"""Cell warnings as OASIS CAP 1.2 (stdlib xml.etree; no I/O).

One <alert> per warning message. A warning episode (a cell going from no colour to a colour
and back) is one thread of messages: its first state is msgType Alert, every later state an
Update, its end a Cancel; each message's identifier is ``<cell>.<episode>.<n>`` (n counts the
episode's states, so fetching the same state twice gives the same message) and each Update or
Cancel references every earlier message of the episode. The feed of current warnings is an Atom
feed with the alerts inline in each entry's content: the shape public CAP aggregators read and
that capparselib parses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.i18n import Language, translate
from hub.warnings.config import CapConfig

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
CAP_LANGUAGES: tuple[tuple[Language, str], ...] = (("en", "en-US"), ("zh-CN", "zh-CN"))

# What each colour says to a CAP consumer (CAP 1.2, 3.2.2 urgency, severity, certainty).
COLOUR_CODES: dict[str, tuple[str, str, str]] = {
    "red": ("Immediate", "Severe", "Observed"),
    "orange": ("Expected", "Moderate", "Likely"),
    "yellow": ("Future", "Minor", "Possible"),
}

# Inside the Atom feed CAP elements carry this prefix; a lone alert makes CAP the default.
ET.register_namespace("cap", CAP_NS)


@dataclass(frozen=True, slots=True)
class WarningMessage:
    """One state of a cell's warning episode, as the history recorded it."""

    cell_id: str
    cell_name: str
    geometry: dict[str, Any]
    level: str | None  # None: the episode ended (Cancel)
    source: str
    rule: str | None
    reason: str | None
    episode: str
    sent: datetime
    revision: int  # 1 for the episode's first state
    earlier: tuple[tuple[str, datetime], ...]  # (identifier, sent) of the earlier messages
    expires: datetime | None = None


def cap_time(ts: datetime) -> str:
    """CAP's dateTime: seconds, an explicit offset, never "Z" (CAP 1.2, 3.3.2)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def identifier(cell_id: str, episode: str, revision: int) -> str:
    return f"{cell_id}.{episode}.{revision}"


def rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    """The outer rings of a Polygon or MultiPolygon (holes are not expressible in CAP)."""
    coords = geometry.get("coordinates") or []
    if geometry.get("type") == "Polygon":
        return [coords[0]] if coords else []
    if geometry.get("type") == "MultiPolygon":
        return [poly[0] for poly in coords if poly]
    return []


def cap_polygon(ring: Sequence[Sequence[float]]) -> str:
    """CAP's polygon: "lat,lon" pairs separated by spaces, first pair repeated last."""
    points = [(float(p[1]), float(p[0])) for p in ring]
    if points and points[0] != points[-1]:
        points.append(points[0])
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in points)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _info(
    alert: ET.Element, msg: WarningMessage, config: CapConfig, lang: Language, code: str
) -> None:
    level = msg.level
    colour_key = f"warning.{level}" if level else "warning.none"
    colour = translate(colour_key, lang)
    info = _sub(alert, "info")
    _sub(info, "language", code)
    _sub(info, "category", config.category)
    _sub(info, "event", translate("warning.cap.event", lang))
    _sub(info, "responseType", "Monitor" if level else "AllClear")
    urgency, severity, certainty = COLOUR_CODES.get(level or "", ("Past", "Minor", "Observed"))
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    _sub(info, "effective", cap_time(msg.sent))
    if msg.expires is not None:
        _sub(info, "expires", cap_time(msg.expires))
    _sub(info, "senderName", translate("warning.cap.sender_name", lang))
    headline_key = "warning.cap.headline" if level else "warning.cap.headline_ended"
    _sub(info, "headline", translate(headline_key, lang, colour=colour, cell=msg.cell_name)[:160])
    if msg.source == "override":
        why = translate("warning.cap.by_hand", lang, reason=msg.reason or "")
    elif msg.rule:
        why = translate("warning.cap.by_rule", lang, rule=msg.rule)
    else:
        why = translate("warning.cap.no_rule", lang)
    _sub(info, "description", why)
    for name, value in (("gridward:level", level or "none"), ("gridward:source", msg.source)):
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", name)
        _sub(parameter, "value", value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", msg.cell_name)
    for ring in rings(msg.geometry):
        if len(ring) >= 3:  # CAP: at least four pairs, first and last the same
            _sub(area, "polygon", cap_polygon(ring))
    geocode = _sub(area, "geocode")
    _sub(geocode, "valueName", "gridward:cell")
    _sub(geocode, "value", msg.cell_id)


def alert_element(msg: WarningMessage, config: CapConfig) -> ET.Element:
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", identifier(msg.cell_id, msg.episode, msg.revision))
    _sub(alert, "sender", config.sender)
    _sub(alert, "sent", cap_time(msg.sent))
    _sub(alert, "status", "Actual")
    if msg.level is None:
        msg_type = "Cancel"
    else:
        msg_type = "Alert" if msg.revision == 1 or not msg.earlier else "Update"
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", config.scope)
    if config.scope == "Restricted":
        _sub(alert, "restriction", config.restriction)
    if config.scope == "Private":
        _sub(alert, "addresses", config.addresses)
    if msg_type != "Alert" and msg.earlier:
        _sub(
            alert,
            "references",
            " ".join(f"{config.sender},{ident},{cap_time(sent)}" for ident, sent in msg.earlier),
        )
    _sub(alert, "incidents", msg.episode)
    for lang, code in CAP_LANGUAGES:
        _info(alert, msg, config, lang, code)
    return alert


def _document(root: ET.Element, default_namespace: str) -> bytes:
    data: bytes = ET.tostring(
        root, encoding="utf-8", xml_declaration=True, default_namespace=default_namespace
    )
    return data


def alert_xml(msg: WarningMessage, config: CapConfig) -> bytes:
    return _document(alert_element(msg, config), CAP_NS)


def feed_xml(
    messages: Sequence[WarningMessage],
    config: CapConfig,
    *,
    feed_id: str,
    updated: datetime,
    self_url: str,
    cell_url: str,
) -> bytes:
    """An Atom feed: one entry per current warning, its CAP alert inline."""


    def atom(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        # Atom is the feed's default namespace, declared by hand below: ElementTree's
        # default_namespace refuses the unqualified attributes (rel, href) Atom uses.
        el = ET.SubElement(parent, tag)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    atom(feed, "id", feed_id)
    atom(feed, "title", translate("warning.cap.feed_title", "en"))
    atom(feed, "updated", cap_time(updated))
    author = atom(feed, "author")
    atom(author, "name", config.sender)
    link = atom(feed, "link")
    link.set("rel", "self")
    link.set("href", self_url)
    for msg in messages:
        entry = atom(feed, "entry")
        atom(entry, "id", f"{feed_id}:{identifier(msg.cell_id, msg.episode, msg.revision)}")
        atom(
            entry,
            "title",
            translate(
                "warning.cap.headline",
                "en",
                colour=translate(f"warning.{msg.level}", "en"),
                cell=msg.cell_name,
            ),
        )
        atom(entry, "updated", cap_time(msg.sent))
        alternate = atom(entry, "link")
        alternate.set("rel", "alternate")
        alternate.set("type", CAP_MEDIA_TYPE)
        alternate.set("href", cell_url.format(cell_id=msg.cell_id))
        content = atom(entry, "content")
        content.set("type", CAP_MEDIA_TYPE)
        content.append(alert_element(msg, config))
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data
