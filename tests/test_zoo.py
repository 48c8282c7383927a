"""Kept weights: a finished run kept in float16 with its manifest entry, re-scored by --verify, loaded by name, and
the report generated from the manifest byte for byte."""
import json
from pathlib import Path

import pytest
import torch

import ssltk
import ssltk.zoo as zoo_mod
from ssltk.cli import main
from ssltk.errors import SsltkError
from ssltk.reproduce import load_protocols
from ssltk.zoo import read_manifest, sha256_file
from ssltk.reproduce.report import render

from test_reproduce import PROTOCOL

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """The tiny table trained once, both cells kept into a zoo of its own."""
    tmp = tmp_path_factory.mktemp("zoo")
    proto = tmp / "tiny.yaml"
    proto.write_text(PROTOCOL)
    zoo = tmp / "zoo"
    args = ["reproduce", "tiny", "--protocol", str(proto), "--out", str(tmp / "runs"), "--device", "cpu"]
    assert main(args + ["--keep", "--zoo", str(zoo)]) == 0
    return args, zoo, proto


def test_keep_writes_half_precision_files_and_entries_that_name_their_conditions(kept):
    _, zoo, _ = kept
    entries = {e["name"]: e for e in read_manifest(zoo)}
    assert set(entries) == {"tiny/supervised/one/seed0", "tiny/random/one/seed0"}
    sup = entries["tiny/supervised/one/seed0"]
    path = zoo / sup["weights"]
    assert sha256_file(path) == sup["sha256"]
    tensors, _ = ssltk.engine.checkpoint.read_safetensors(path)
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    # the recorded number is the kept file's; the run's float32 number stays beside it
    assert abs(sup["value"] - sup["run_value"]) < 2.0
    cond = sup["conditions"]
    assert cond["epochs"] == 1 and cond["batch_size"] == 64 and cond["steps_per_epoch"] >= 1
    assert cond["precision"] == "fp32" and cond["train_images"] > 0 and cond["eval_images"] > 0
    assert entries["tiny/random/one/seed0"]["conditions"]["epochs"] is None  # random weights never train


def test_verify_reproduces_the_recorded_numbers_and_refuses_a_changed_one(kept, capsys):
    args, zoo, _ = kept
    capsys.readouterr()
    assert main(args + ["--verify", "--zoo", str(zoo)]) == 0
    out = capsys.readouterr().out
    assert "re-scored" in out and "supervised/one" in out and ("+0.00" in out or "-0.00" in out)
    doc = json.loads((zoo / "manifest.json").read_text())
    for e in doc["entries"]:
        if e["cell"] == "supervised/one":
            e["value"] += 1.0
    bad = zoo.parent / "bad-zoo"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps(doc))
    (bad / "weights").symlink_to(zoo / "weights")
    assert main(args + ["--verify", "--zoo", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "re-scored beyond 0.1" in err and "tiny/supervised/one/seed0" in err


def test_kept_weights_load_by_name_and_a_changed_file_is_refused(kept, monkeypatch, tmp_path):
    _, zoo, _ = kept
    monkeypatch.setattr(zoo_mod, "ZOO", zoo)
    model = ssltk.load_backbone("tiny/supervised/one")  # seed 0 when none is named
    path = zoo / read_manifest(zoo)[0]["weights"]
    assert isinstance(model, torch.nn.Module)
    # the same name on the command line's option: the backbone starts from the kept file
    from ssltk.backbones.conv4 import Conv4

    conv = Conv4(weights="tiny/supervised/one/seed0")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in conv.state_dict().items())
    with pytest.raises(SsltkError, match="did you mean tiny/supervised/one/seed0"):
        ssltk.load_backbone("tiny/supervised/onr")
    copy = tmp_path / "zoo"
    import shutil

    shutil.copytree(zoo, copy)
    target = copy / read_manifest(copy)[0]["weights"]
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    monkeypatch.setattr(zoo_mod, "ZOO", copy)
    with pytest.raises(SsltkError, match="does not match the manifest"):
        ssltk.load_backbone(read_manifest(copy)[0]["name"])
    assert path.is_file()


def test_the_report_regenerates_byte_for_byte_and_counts_what_the_manifest_holds(kept, tmp_path):
    args, zoo, proto = kept
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    assert main(["reproduce", "--protocol", str(proto), "--zoo", str(zoo), "--report", str(first)]) == 0
    assert main(["reproduce", "--protocol", str(proto), "--zoo", str(zoo), "--report", str(second)]) == 0
    text = first.read_text()
    assert text == second.read_text()
    assert "## tiny: digits in one epoch" in text
    assert "Cells: 2 in the paper, 2 encoded, 2 measured with kept weights" in text
    assert "`tiny/supervised/one/seed0`" in text


def test_the_shipped_report_is_generated_from_the_shipped_manifest():
    """REPRODUCTION.md is never edited by hand: regenerating it from ssltk/zoo gives the committed bytes."""
    shipped = (REPO / "REPRODUCTION.md").read_text(encoding="utf-8")
    assert shipped == render(load_protocols(), read_manifest())
    for e in read_manifest():
        if e.get("weights"):
            assert sha256_file(zoo_mod.ZOO / e["weights"]) == e["sha256"], e["name"]


def test_training_minutes_ignore_an_epoch_spent_paused(tmp_path):
    import json

    from ssltk.reproduce.keep import training_speed

    lines = [{"event": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "views_per_s": 100.0, "seconds": s}
             for i, s in enumerate([12.0, 12.0, 4000.0, 12.0])]  # the third epoch waited under SIGSTOP
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    speed = training_speed(tmp_path)
    assert speed["train_minutes"] == 0.8 and speed["steps_per_epoch"] == 10


def test_training_minutes_count_the_work_an_objective_does_between_epochs(tmp_path):
    import json

    from ssltk.reproduce.keep import training_speed

    # steps take 6 s an epoch, and the objective clusters for 2 s before each (DeepCluster's k-means); the third
    # epoch waited an hour under SIGSTOP
    times = [8.0, 16.0, 3624.0, 3632.0, 3640.0]
    lines = [{"event": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "views_per_s": 1000.0, "seconds": 6.0,
              "time": t} for i, t in enumerate(times)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    speed = training_speed(tmp_path)
    assert speed["train_minutes"] == round(8.0 * 5 / 60, 2)
    assert speed["train_views_per_s"] == 750.0  # 6,000 views an epoch in 8 s, not the steps' 1,000


def test_a_measured_rate_reaches_another_k_through_the_protocols_relative_speeds():
    """A kept K=4 run's views per second is not K=32's (relational reasoning compares K(K-1) pairs): the report
    scales it by the two cells' measured relative speeds."""
    from ssltk.reproduce.cost import estimate_minutes
    from ssltk.reproduce.report import cpu_cost, measured_rates

    tables = load_protocols()
    cell = {c.id: c for c in tables["rr-table10"].cells}
    k4, k32 = cell["relational/k4"], cell["relational/k32"]
    entry = {"table": "rr-table10", "cell": "relational/k4",
             "conditions": {"train_views_per_s": 8000.0, "machine": "vm (x86_64, CPU only, 2 cores)"}}
    rates = measured_rates(tables, [entry])
    assert cpu_cost(k4, rates) == (pytest.approx(estimate_minutes(k4, "cpu", rate=8000.0)), True)
    speed = k32.cost["speed"] / k4.cost["speed"]
    assert speed < 0.5
    assert cpu_cost(k32, rates) == (pytest.approx(estimate_minutes(k32, "cpu", rate=8000.0 * speed)), True)
