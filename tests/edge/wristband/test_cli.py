"""`gridward edge wristband --validate-config`: line numbers for bad YAML keys, key checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.wristband.demo import demo_zones

ORIGIN = (114.057, 22.543)
KEY = "00112233445566778899aabbccddeeff"

GOOD = """\
site: s1
device: wristband-gw-1
data_dir: {data}
keys_file: {keys}
zones_file: {zones}
receivers:
  - id: rx-a
    lon: 114.057
    lat: 22.543
    transport: {{type: serial, port: /dev/ttyUSB0}}
bands:
  - band_id: "0x1001"
    wearer: resident-1
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"0x1001 {KEY}\n")
    keys.chmod(0o600)
    zones = tmp_path / "zones.geojson"
    zones.write_text(json.dumps(demo_zones(ORIGIN)))
    return {"keys": keys, "zones": zones, "data": tmp_path}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wristband.yaml"
    path.write_text(text)
    return path


def test_validate_ok(files: dict[str, Path], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD.format(**files))
    assert main(["edge", "wristband", "--config", str(path), "--validate-config"]) == 0
    assert "1 bands, 2 zones" in capsys.readouterr().out


def test_validate_reports_line_numbers(files: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.format(**files).replace("    lat: 22.543", "    lat: 122.5").replace(
        "    wearer: resident-1", "    wearer: resident-1\n    colour: red")
    path = _write(tmp_path, text)
    assert main(["edge", "wristband", "--config", str(path), "--validate-config"]) == 2
    err = capsys.readouterr().err
    assert "line 9: receivers.0.lat" in err
    assert "line 14: bands.0.colour" in err


def test_validate_missing_key_and_bad_zones(files: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    files["keys"].write_text(f"0x2002 {KEY}\n")
    path = _write(tmp_path, GOOD.format(**files))
    assert main(["edge", "wristband", "--config", str(path), "--validate-config"]) == 2
    err = capsys.readouterr().err
    assert "no key for band(s) 0x00001001" in err
    assert KEY not in err
    files["zones"].write_text('{"type": "FeatureCollection", "features": [1]}')
    assert main(["edge", "wristband", "--config", str(path), "--validate-config"]) == 2
    assert "features[0]" in capsys.readouterr().err
