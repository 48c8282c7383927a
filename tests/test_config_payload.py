"""No value read from a configuration file can import a module (the hardening issue, second round, item 1).

Every field of every config section, the trainer's and evaluation's and each registered component's constructor
arguments, gets the payload ``{class_path: evil_N.Thing}``, where ``evil_N`` is a real module on ``sys.path``
that records its import. Two layers are checked: the file check every reader goes through (``--config``, a run's
``config.yaml`` under ``--resume``, ``ssltk.fit(config=...)``) refuses it in one line naming the field, and the
parser's types alone (the check bypassed) import nothing either.
"""
import dataclasses
import importlib
import inspect
import sys

import pytest
import yaml

from ssltk import cli
from ssltk.engine.build import check_config
from ssltk.engine.trainer import EvalConfig, TrainerConfig
from ssltk.errors import SsltkError
from ssltk.registries import ALL_REGISTRIES

KINDS = {"objective": "objective", "backbone": "backbone", "data": "dataset", "augment": "augmentation"}


def _fields():
    """(section, component name or None, field) for every option a config file can set."""
    out = [("trainer", None, f.name) for f in dataclasses.fields(TrainerConfig)]
    out += [("evaluate", None, f.name) for f in dataclasses.fields(EvalConfig)]
    for key, kind in KINDS.items():
        for entry in ALL_REGISTRIES[kind].entries():
            params = inspect.signature(entry.target.__init__).parameters.values()
            out += [(key, entry.name, p.name) for p in params
                    if p.name not in ("self", "in_dim") and p.kind is not p.VAR_POSITIONAL]
    return out


FIELDS = _fields()


@pytest.fixture
def evil(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def module(i: int) -> str:
        name = f"evil_payload_{i}"
        (tmp_path / f"{name}.py").write_text(f"open({str(tmp_path / name)!r} + '.imported', 'w').close()\n"
                                             "class Thing:\n    pass\n")
        made.append(name)
        importlib.invalidate_caches()  # else a module written in the same second as the last look may not be found
        return name

    yield module
    imported = sorted(p.name for p in tmp_path.glob("*.imported"))
    for name in made:
        sys.modules.pop(name, None)
    assert not imported, f"imported from a config file: {imported}"


def _config(section, component, field, payload):
    cfg = {"objective": "relational"}
    if component is None:
        cfg[section] = {field: payload}
    else:
        cfg[section] = {"class_path": component, "init_args": {field: payload}}
    return cfg


def _shapes(module: str):
    """The payload as the field's value, as a value inside a mapping field, and inside a list field."""
    payload = {"class_path": f"{module}.Thing"}
    return [payload, {"betas": payload}, [payload]]


def test_every_field_of_a_config_file_refuses_a_class_path_in_one_line(evil):
    assert len(FIELDS) > 100  # the walk reaches the plugins' components, not only the trainer
    for i, (section, component, field) in enumerate(FIELDS):
        for payload in _shapes(evil(i)):
            with pytest.raises(SsltkError) as info:
                check_config(_config(section, component, field, payload), "c.yaml", required=())
            msg = str(info.value)
            assert "\n" not in msg and f"{section}" in msg and field in msg, (section, component, field, msg)


def test_the_parsers_types_import_nothing_without_the_file_check(evil, tmp_path):
    # jsonargparse resolves a class_path inside a value typed Any; no config type may be one
    parser = cli._fit_parser()
    for i, (section, component, field) in enumerate(FIELDS):
        for payload in _shapes(evil(1000 + i)):
            cfg = _config(section, component, field, payload)
            if component is not None:
                cls, _ = ALL_REGISTRIES[KINDS[section]].resolve(component)
                cfg[section]["class_path"] = f"{cls.__module__}.{cls.__qualname__}"
            if section != "objective":
                cfg["objective"] = {"class_path": "ssltk_relational.objective.RelationalObjective"}
            try:
                parser.parse_args(["--config", yaml.safe_dump(cfg)])
            except Exception:  # refused is right; an import is what the fixture catches
                pass


def test_a_resumed_runs_config_with_the_payload_is_refused_before_any_import(evil, tmp_path):
    from helpers import ssltk as run_cli

    run = tmp_path / "run"
    run.mkdir()
    name = evil(9999)
    (run / "config.yaml").write_text(yaml.safe_dump({
        "objective": "relational", "backbone": "conv4", "data": "digits",
        "trainer": {"epochs": 1, "optimizer_args": {"betas": {"class_path": f"{name}.Thing"}}}}))
    proc = run_cli("fit", "--resume", str(run), cwd=tmp_path)
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(err) == 1 and "trainer.optimizer_args.betas" in err[0], proc.stderr
