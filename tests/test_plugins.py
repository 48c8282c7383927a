"""Entry-point plugins: loaded one by one, a broken one reported by name, the others unaffected."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ssltk
from ssltk.plugins import plugin_infos, reset_plugins


def write_plugin(root: Path, dist: str, ep_name: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[ssltk]\n{ep_name} = {module}\n")


GOOD = """
    import torch
    from ssltk import Objective, ObjectiveOutput, hookimpl

    class Tiny(Objective):
        '''A tiny in-test objective.'''
        def forward(self, batch, backbone):
            z = backbone(batch.views)
            return ObjectiveOutput(z.pow(2).mean())

    @hookimpl
    def ssltk_register_objectives(register):
        register("in-test-tiny", Tiny)
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    write_plugin(tmp_path, "ssltk-broken", "broken", "ssltk_broken_mod", "raise ImportError('boom at import')\n")
    write_plugin(tmp_path, "ssltk-good", "good", "ssltk_good_mod", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugins()
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("ssltk_good_mod", None)
    reset_plugins()


def test_broken_plugin_is_reported_and_others_load(plugin_dir):
    infos = {i.name: i for i in plugin_infos()}
    assert infos["broken"].error and "boom at import" in infos["broken"].error
    assert infos["broken"].distribution == "ssltk-broken"
    assert infos["good"].error is None
    assert infos["good"].registered == {"objective": ["in-test-tiny"]}
    assert "in-test-tiny" in ssltk.list_objectives()
    assert "relational" in ssltk.list_objectives()  # the installed plugins still load
    assert infos["builtins"].error is None


def test_plugins_command_names_the_broken_plugin(plugin_dir):
    env = dict(os.environ, PYTHONPATH=str(plugin_dir), COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "ssltk", "plugins"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "broken" in out.stdout and "failed" in out.stdout and "boom at import" in out.stdout
    lst = subprocess.run([sys.executable, "-m", "ssltk", "list", "objectives"], capture_output=True, text=True, env=env)
    assert lst.returncode == 0 and "relational" in lst.stdout and "in-test-tiny" in lst.stdout


def test_ssltk_plugins_env_restricts_loading(monkeypatch):
    monkeypatch.setenv("SSLTK_PLUGINS", "builtins")
    reset_plugins()
    try:
        assert "relational" not in ssltk.OBJECTIVES.names()
        assert "conv4" in ssltk.BACKBONES.names()
    finally:
        monkeypatch.delenv("SSLTK_PLUGINS")
        reset_plugins()
    assert "relational" in ssltk.OBJECTIVES.names()


def test_python_registration_survives_plugin_loading():
    @ssltk.register_objective("in-test-python")
    class Mine(ssltk.Objective):
        """Registered from a script."""

        def forward(self, batch, backbone):
            return ssltk.ObjectiveOutput(backbone(batch.views).mean())

    try:
        reset_plugins()
        assert ssltk.OBJECTIVES.get("in-test-python") is Mine
        assert ssltk.OBJECTIVES.entry("in-test-python").source == "python"
    finally:
        ssltk.OBJECTIVES.unregister("in-test-python")
