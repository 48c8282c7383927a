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


SHADOW = """
    from ssltk import Objective, ObjectiveOutput, hookimpl

    class Shadow(Objective):
        '''Pretends to be relational reasoning.'''
        def forward(self, batch, backbone):
            return ObjectiveOutput(backbone(batch.views).mean())

    @hookimpl
    def ssltk_register_objectives(register):
        register("in-test-shadow-own", Shadow)
        register("relational", Shadow, override=True)
"""

HALF = """
    from ssltk import Objective, ObjectiveOutput, hookimpl

    class Half(Objective):
        '''Registered before the hook fails.'''
        def forward(self, batch, backbone):
            return ObjectiveOutput(backbone(batch.views).mean())

    @hookimpl
    def ssltk_register_objectives(register):
        register("in-test-half", Half)
        raise RuntimeError("fails half-way")
"""


@pytest.fixture
def extra_plugins(tmp_path, monkeypatch):
    def install(*plugins):
        for dist, ep, module, source in plugins:
            write_plugin(tmp_path, dist, ep, module, source)
        monkeypatch.syspath_prepend(str(tmp_path))
        reset_plugins()
        return {i.name: i for i in plugin_infos()}
    yield install
    monkeypatch.undo()
    for mod in ("ssltk_shadow_mod", "ssltk_half_mod", "ssltk_exit_mod", "ssltk_good_mod"):
        sys.modules.pop(mod, None)
    reset_plugins()


def test_a_plugin_cannot_take_a_name_already_owned(extra_plugins):
    # entry point named like the real plugin, distribution sorted before it, and override=True: still refused
    infos = extra_plugins(("aaa-shadow", "relational", "ssltk_shadow_mod", SHADOW))
    real = ssltk.OBJECTIVES.get("relational")
    assert real.__name__ == "RelationalObjective"
    assert infos["relational"].distribution == "ssltk-relational" and infos["relational"].error is None
    shadow = infos["relational (aaa-shadow)"]
    assert "objective 'relational' is already registered by plugin relational (ssltk-relational" in shadow.error
    assert "aaa-shadow" in shadow.error
    assert "in-test-shadow-own" not in ssltk.OBJECTIVES.names()  # refused as a whole


def test_exit_at_import_and_half_done_registration_leave_nothing(extra_plugins):
    infos = extra_plugins(("ssltk-exit", "exits", "ssltk_exit_mod", "import sys\nsys.exit(3)\n"),
                          ("ssltk-half", "half", "ssltk_half_mod", HALF))
    assert "SystemExit: 3" in infos["exits"].error
    assert "fails half-way" in infos["half"].error
    assert "in-test-half" not in ssltk.OBJECTIVES.names()
    assert "relational" in ssltk.OBJECTIVES.names()
    from ssltk.cli import main
    assert main(["list", "objectives"]) == 0  # the CLI survives a plugin that exits


def test_ssltk_plugins_keeps_builtins_and_names_unknown_ones(monkeypatch, capsys):
    monkeypatch.setenv("SSLTK_PLUGINS", "relational,relationl")
    reset_plugins()
    try:
        assert ssltk.OBJECTIVES.names() == ["relational"]
        assert "conv4" in ssltk.BACKBONES.names() and "digits" in ssltk.DATASETS.names()
        err = capsys.readouterr().err
        assert "SSLTK_PLUGINS names relationl, which no installed plugin is called" in err
        from ssltk.plugins import unknown_selected
        assert unknown_selected() == ["relationl"]
    finally:
        monkeypatch.delenv("SSLTK_PLUGINS")
        reset_plugins()


def test_a_plugin_raising_keyboard_interrupt_at_import_is_reported_not_obeyed(extra_plugins):
    infos = extra_plugins(("ssltk-ctrlc", "ctrlc", "ssltk_ctrlc_mod", "raise KeyboardInterrupt\n"))
    sys.modules.pop("ssltk_ctrlc_mod", None)
    assert "raised KeyboardInterrupt at import" in infos["ctrlc"].error
    assert "relational" in ssltk.OBJECTIVES.names()
    from ssltk.cli import main
    assert main(["list", "objectives"]) == 0


@pytest.fixture
def sigint_handler():
    """Sets the process's SIGINT handler for one test (a suite started in the background inherits SIG_IGN)."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, before)


def test_a_real_interrupt_while_plugins_load_still_stops(sigint_handler):
    import signal

    from ssltk.plugins import _guarded

    sigint_handler(signal.default_int_handler)

    def interrupted_import():
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers while a plugin's import runs

    with pytest.raises(KeyboardInterrupt):
        _guarded(interrupted_import, "at import")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_process_that_ignores_interrupts_keeps_ignoring_them_while_plugins_load(sigint_handler):
    import signal

    from ssltk.plugins import _guarded, _RaisedInterrupt

    sigint_handler(signal.SIG_IGN)  # as under nohup or in a background job

    def interrupted_import():
        signal.raise_signal(signal.SIGINT)
        return "loaded"

    assert _guarded(interrupted_import, "at import") == "loaded"
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

    def raises_its_own():
        raise KeyboardInterrupt

    with pytest.raises(_RaisedInterrupt):
        _guarded(raises_its_own, "at import")
