"""Nothing a file says can run code: weights metadata, run configs, --config files and CIFAR pickles.

Each payload names ``subprocess.Popen`` (or a pickle ``__reduce__``) with a command that writes a marker file; the
tests assert a one-line refusal and that the marker never appears.
"""
import json
import os
import pickle
import sys
import textwrap

import numpy as np
import pytest
import yaml
from safetensors.torch import save_file

import ssltk
from ssltk.cli import main
from ssltk.engine.build import _TRUSTED
from ssltk.errors import SsltkError


def popen_spec(marker):
    return {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(marker)]}}


def one_error_line(capsys, code):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ssltk: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def conv4_file(tmp_path):
    def write(meta):
        path = tmp_path / "w.safetensors"
        state = dict(ssltk.create_backbone("conv4").state_dict())
        save_file(state, str(path), metadata=None if meta is None else {"ssltk": meta})
        return path
    return write


def test_weights_metadata_cannot_run_code(tmp_path, conv4_file, capsys):
    marker = tmp_path / "pwned"
    path = conv4_file(json.dumps({"backbone": popen_spec(marker)}))
    line = one_error_line(capsys, main(["eval", "linear", "--weights", str(path), "--data", "digits"]))
    assert "'subprocess.Popen', which is not a registered backbone" in line and "--trust" in line
    with pytest.raises(SsltkError, match="not a registered backbone"):
        ssltk.load_backbone(path)
    assert not marker.exists()


@pytest.mark.parametrize("meta,expect", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"conv4"', "must be a JSON object"),
    ('{"backbone": {"init_args": {}}}', "needs a class_path"),
    ('{"backbone": ["conv4"]}', "cannot use"),
    ('{"backbone": {"class_path": "conv4", "init_args": [1]}}', "init_args of the backbone must be a mapping"),
])
def test_malformed_weights_metadata_is_one_line(conv4_file, capsys, meta, expect):
    path = conv4_file(meta)
    line = one_error_line(capsys, main(["eval", "linear", "--weights", str(path), "--data", "digits"]))
    assert expect in line, line


def test_registered_names_and_aliases_still_load(conv4_file):
    for spec in ("conv4", {"class_path": "ssltk.backbones.Conv4"}, {"class_path": "ssltk.backbones.conv4.Conv4"}):
        assert type(ssltk.load_backbone(conv4_file(json.dumps({"backbone": spec})))).__name__ == "Conv4"


def write_run(run_dir, **changes):
    cfg = ssltk.make_config("random", data_args={"train_size": 64})
    cfg.update(changes)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run_dir


@pytest.mark.parametrize("key", ["data", "backbone", "objective", "augment"])
def test_run_config_cannot_run_code(tmp_path, capsys, key):
    marker = tmp_path / "pwned"
    run = write_run(tmp_path / "run", **{key: popen_spec(marker)})
    for argv in (["eval", "linear", "--run", str(run)], ["eval", "knn", "--run", str(run)],
                 ["eval", "clustering", "--run", str(run)], ["fit", "--resume", str(run)],
                 ["interpret", "--run", str(run)]):
        line = one_error_line(capsys, main(argv))
        assert "subprocess.Popen" in line and "--trust" in line, (argv, line)
    with pytest.raises(SsltkError, match="subprocess.Popen"):
        ssltk.fit(resume=run)
    with pytest.raises(SsltkError, match="subprocess.Popen"):
        ssltk.fit(config=yaml.safe_load((run / "config.yaml").read_text()))
    assert not marker.exists()


def test_config_file_cannot_run_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"objective": "relational", "data": popen_spec(marker)}))
    line = one_error_line(capsys, main(["fit", "--config", str(cfg)]))
    assert "not a registered dataset" in line
    # a component given as a file of its own is a file too
    part = tmp_path / "data.yaml"
    part.write_text(yaml.safe_dump(popen_spec(marker)))
    line = one_error_line(capsys, main(["fit", "--objective", "relational", "--data", str(part)]))
    assert "not a registered dataset" in line
    assert not marker.exists()


def test_a_module_named_in_a_file_is_never_imported(tmp_path, capsys, monkeypatch):
    # importing a module runs it: the refusal must come before the import
    marker = tmp_path / "imported"
    (tmp_path / "evil_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = write_run(tmp_path / "run", data={"class_path": "evil_mod.Thing"})
    one_error_line(capsys, main(["eval", "linear", "--run", str(run)]))
    assert not marker.exists() and "evil_mod" not in sys.modules


def test_a_wrongly_kinded_registered_class_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "run", data={"class_path": "ssltk.backbones.conv4.Conv4"})
    line = one_error_line(capsys, main(["eval", "linear", "--run", str(run)]))
    assert "registered as another kind" in line


def test_trust_allows_an_unregistered_class_on_purpose(tmp_path, capsys, monkeypatch):
    # a user's own backbone class, not registered: refused from a file until trusted explicitly
    (tmp_path / "my_backbones.py").write_text(textwrap.dedent("""
        from ssltk.backbones.conv4 import Conv4
        class MyConv4(Conv4):
            '''A user's own backbone.'''
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "mine.safetensors"
    state = dict(ssltk.create_backbone("conv4").state_dict())
    save_file(state, str(path), metadata={"ssltk": json.dumps({"backbone": {"class_path": "my_backbones.MyConv4"}})})
    try:
        with pytest.raises(SsltkError, match="--trust my_backbones.MyConv4"):
            ssltk.load_backbone(path)
        assert "my_backbones" not in sys.modules
        code = main(["eval", "linear", "--weights", str(path), "--data", "digits", "--data.train_size", "64",
                     "--epochs", "1", "--trust", "my_backbones.MyConv4", "--out", str(tmp_path / "ev")])
        assert code == 0, capsys.readouterr().err
        assert type(ssltk.load_backbone(path)).__name__ == "MyConv4"
    finally:
        _TRUSTED.discard("my_backbones.MyConv4")
        sys.modules.pop("my_backbones", None)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _batches(root, extra=None, protocol=2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 10))}
        if extra is not None and name == "data_batch_2":
            batch["extra"] = extra
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=protocol)
    return root


def test_cifar_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    root = _batches(tmp_path, extra=_Payload(marker))
    data = ssltk.DATASETS.create("cifar10", root=str(root))
    with pytest.raises(SsltkError, match="refused global"):
        data.train
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_official_cifar_format_still_loads(tmp_path, protocol):
    data = ssltk.DATASETS.create("cifar10", root=str(_batches(tmp_path, protocol=protocol)))
    assert len(data.train) == 50 and len(data.test) == 10
