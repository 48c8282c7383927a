"""Every example config parses into a valid run configuration."""
from pathlib import Path

import pytest
import yaml

from ssltk.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_config_parses(path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(path), "--print_config"])
    assert info.value.code == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    raw = yaml.safe_load(path.read_text())
    assert cfg["trainer"]["epochs"] == raw["trainer"]["epochs"]
    for key, value in raw["objective"]["init_args"].items():
        assert cfg["objective"]["init_args"][key] == value, key
