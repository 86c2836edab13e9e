"""Advertising Data (Core Spec Vol 3 Part C 11): a sequence of [length, type, data...] items."""

from __future__ import annotations

from dataclasses import dataclass

AD_FLAGS = 0x01
AD_COMPLETE_NAME = 0x09
AD_MANUFACTURER = 0xFF
MAX_LEGACY_AD_LEN = 31
MAX_EXTENDED_AD_LEN = 1650


class AdStructureError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AdItem:
    ad_type: int
    data: bytes


def parse_ad(raw: bytes) -> list[AdItem]:
    """Split AD bytes into items. A zero length byte ends the significant part (padding)."""
    if len(raw) > MAX_EXTENDED_AD_LEN:
        raise AdStructureError("too_long", f"AD data is {len(raw)} bytes")
    items: list[AdItem] = []
    i = 0
    while i < len(raw):
        length = raw[i]
        if length == 0:
            break
        if i + 1 + length > len(raw):
            raise AdStructureError("truncated", f"AD item at {i} claims {length} bytes")
        items.append(AdItem(raw[i + 1], bytes(raw[i + 2 : i + 1 + length])))
        i += 1 + length
    return items


def build_ad(items: list[AdItem]) -> bytes:
    out = bytearray()
    for item in items:
        if len(item.data) > 254:
            raise AdStructureError("too_long", "AD item data longer than 254 bytes")
        out += bytes([len(item.data) + 1, item.ad_type]) + item.data
    return bytes(out)


def manufacturer_data(items: list[AdItem]) -> dict[int, bytes]:
    """{company id: payload}, the shape bleak's ``AdvertisementData.manufacturer_data`` has."""
    out: dict[int, bytes] = {}
    for item in items:
        if item.ad_type == AD_MANUFACTURER and len(item.data) >= 2:
            out[int.from_bytes(item.data[:2], "little")] = item.data[2:]
    return out


def manufacturer_item(company_id: int, payload: bytes) -> AdItem:
    return AdItem(AD_MANUFACTURER, company_id.to_bytes(2, "little") + payload)
