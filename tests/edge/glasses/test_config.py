"""The glasses config: the example validates through the CLI, unsafe combinations are
refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.cli import main
from edge.config import ConfigError, parse_config
from edge.glasses.config import GlassesConfig

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "configs" / "glasses.yaml"


def _example(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    token = tmp_path / "api.token"
    token.write_text("0123456789abcdef-token\n", encoding="utf-8")
    data["inputs"]["http"]["token_file"] = str(token)  # instead of the variable
    data.update(changes)
    path = tmp_path / "glasses.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_example_config_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "glasses", "--config", str(_example(tmp_path)),
                 "--validate-config"]) == 0
    out = capsys.readouterr().out
    assert "li-wei" in out and "gnss" in out  # printed in the config's language (zh-CN)


def test_missing_or_short_token_and_bad_size_fail_validation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRIDWARD_GLASSES_API_TOKEN", raising=False)
    assert main(["edge", "glasses", "--config", str(EXAMPLE), "--validate-config"]) == 2
    assert "GRIDWARD_GLASSES_API_TOKEN" in capsys.readouterr().err
    path = _example(tmp_path)
    (tmp_path / "api.token").write_text("short", encoding="utf-8")
    assert main(["edge", "glasses", "--config", str(path), "--validate-config"]) == 2
    assert "16 characters" in capsys.readouterr().err
    path = _example(tmp_path, display={"width_px": 480, "height_px": 480,
                                       "sink": {"type": "window"}})
    assert main(["edge", "glasses", "--config", str(path), "--validate-config"]) == 2
    assert "aspect" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "reason"), [
    ({"auto_answer": {"after_s": 3}}, "demo: true"),
    ({"position": {"source": "phone"}, "inputs": {"http": {"enabled": False}}}, "local API"),
    ({"officer": {"username": "li wei"}}, "officer.username"),
    ({"display": {"sink": {"type": "png"}}}, "display.sink.png.directory"),
    ({"stale_after": 5}, "stale_after"),
])
def test_refused_configs_say_why(change: dict[str, object], reason: str) -> None:
    base = {"site": "s1", "device": "g1", "officer": {"username": "li-wei"},
            "display": {"sink": {"type": "png", "directory": "hud-frames"}},
            "inputs": {"http": {"enabled": False}}}
    text = yaml.safe_dump({**base, **change})
    with pytest.raises(ConfigError, match=reason.replace(".", r"\.")):
        parse_config(text, GlassesConfig, "glasses.yaml")


def test_auto_answer_is_accepted_in_a_demo() -> None:
    config = GlassesConfig.model_validate({
        "site": "s1", "device": "g1", "officer": {"username": "li-wei"}, "demo": True,
        "display": {"sink": {"type": "png", "directory": "hud-frames"}},
        "inputs": {"http": {"enabled": False}}, "auto_answer": {"after_s": 2}})
    assert config.auto_answer is not None and len(config.auto_answer.answers) == 3
