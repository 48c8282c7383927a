"""Every evaluator from the CLI on a run directory and on a bare .safetensors backbone, plus the online probe,
seeds (mean +- std) and tables."""
import json
import shutil

import pytest
import torch
from PIL import Image

import ssltk
from helpers import FAST_FIT, error_lines, ssltk as run_cli

# small but real: digits (1,000 training and 200 held-out images), a supervised Conv-4 trained for one epoch
DATA = ["--data.train_size", "1000", "--data.val_size", "200"]
FAST_EVAL = {
    "linear": ["--epochs", "3"],
    "knn": ["--k", "10"],
    "finetune": ["--epochs", "1"],
    "retrieval": ["--queries_per_class", "5", "--grid_queries", "4"],
    "tsne": ["--max_points", "120", "--iterations", "250"],
    "clustering": ["--n_init", "1"],
}
PNGS = {"retrieval": ["retrieval/confusion_top10.png", "retrieval/queries_top10.png"], "tsne": ["tsne/tsne.png"]}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sup"
    proc = run_cli("fit", "--objective", "supervised", *FAST_FIT, *DATA, "--trainer.epochs", "1",
                   "--trainer.run_dir", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _png_ok(path):
    with Image.open(path) as im:
        assert im.width > 100 and im.height > 100
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 3, f"{path} is blank"


def test_every_evaluator_is_registered():
    assert set(FAST_EVAL) <= set(ssltk.EVALUATORS.names())


@pytest.mark.parametrize("name", sorted(FAST_EVAL))
def test_evaluator_on_a_run_directory(name, run_dir):
    proc = run_cli("eval", name, "--run", str(run_dir), *FAST_EVAL[name])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert name in results
    numbers = [v for v in results[name].values() if isinstance(v, float)]
    assert numbers and all(v == v for v in numbers)  # measured, not NaN
    for rel in PNGS.get(name, []):
        _png_ok(run_dir / rel)


@pytest.mark.parametrize("name", sorted(FAST_EVAL))
def test_evaluator_on_a_bare_backbone_file(name, run_dir, tmp_path):
    weights = tmp_path / "bb.safetensors"
    shutil.copy(run_dir / "backbone.safetensors", weights)
    proc = run_cli("eval", name, "--weights", str(weights), "--data", "digits", "--data.val_size", "200",
                   *FAST_EVAL[name])
    assert proc.returncode == 0, proc.stderr
    assert name in json.loads((tmp_path / "results.json").read_text())
    for rel in PNGS.get(name, []):
        _png_ok(tmp_path / rel)


def test_linear_sanity_supervised_backbone_beats_random_weights(run_dir):
    # kNN is left out on purpose: on 8x8 digits, random Conv-4 features already give kNN about 83%
    rand_dir = run_dir.parent / "rand"
    proc = run_cli("fit", "--objective", "random", *FAST_FIT, *DATA, "--trainer.run_dir",
                   str(rand_dir))
    assert proc.returncode == 0, proc.stderr
    for d in (rand_dir, run_dir):
        assert run_cli("eval", "linear", "--run", str(d), "--epochs", "20").returncode == 0
    trained = json.loads((run_dir / "results.json").read_text())["linear"]["accuracy"]
    rand = json.loads((rand_dir / "results.json").read_text())["linear"]["accuracy"]
    assert trained > rand + 10, (trained, rand)


def test_linear_domain_transfer_is_kept_under_its_own_key(run_dir):
    proc = run_cli("eval", "linear", "--run", str(run_dir), "--data", "digits", "--data.val_size", "300",
                   "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["linear@digits"]["num_test"] == 300.0


def test_linear_probes_intermediate_layers(run_dir):
    bb = ssltk.load_backbone(run_dir / "backbone.safetensors")
    data = ssltk.DATASETS.create("digits", val_size=200, train_size=1000)
    from ssltk.eval.linear import LinearEval

    m = LinearEval(epochs=2, layers="block2,block4", probe_dim=512).evaluate(bb, data, device=torch.device("cpu")).metrics
    assert {"accuracy_block2", "accuracy_block4"} <= set(m)
    assert m["dim_block4"] <= 64 * 4 * 4  # pooled, never upsampled beyond the map
    with pytest.raises(ssltk.SsltkError, match="no layer"):
        LinearEval(epochs=1, layers=["conv9"]).evaluate(bb, data, device=torch.device("cpu"))


def test_cached_linear_equals_running_the_backbone_every_epoch(run_dir):
    from ssltk.eval.linear import LinearEval

    bb = ssltk.load_backbone(run_dir / "backbone.safetensors")
    data = ssltk.DATASETS.create("digits", val_size=200, train_size=1000)
    a = LinearEval(epochs=3).evaluate(bb, data, device=torch.device("cpu")).metrics["accuracy"]
    b = LinearEval(epochs=3, cached=False).evaluate(bb, data, device=torch.device("cpu")).metrics["accuracy"]
    assert abs(a - b) <= 1.0  # same batches, same order: only float rounding differs


def test_crop_flip_probes_see_fresh_crops_of_each_training_batch(run_dir):
    """SeLa's probes (paper 004, A.1) train on cropped and flipped images: each mini-batch's features are computed
    from new crops (the zero padding shows in a uniform image), reproducibly from the seed; the test split is not
    augmented."""
    from types import SimpleNamespace

    from ssltk.eval.linear import LinearEval

    flat = torch.nn.Flatten()
    uniform = torch.full((6, 3, 16, 16), 200, dtype=torch.uint8)
    data = SimpleNamespace(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    idx = torch.arange(6)
    plain = LinearEval()._per_batch(flat, uniform, data, torch.device("cpu"))(idx)
    assert plain.unique().numel() == 1
    crops = LinearEval(augment="crop-flip", seed=3)._per_batch(flat, uniform, data, torch.device("cpu"))
    first, second = crops(idx), crops(idx)
    assert first.unique().numel() > 1 and not torch.equal(first, second)
    again = LinearEval(augment="crop-flip", seed=3)._per_batch(flat, uniform, data, torch.device("cpu"))
    assert torch.equal(again(idx), first)
    with pytest.raises(ssltk.SsltkError, match="augment must be none or crop-flip"):
        LinearEval(augment="jitter")
    bb = ssltk.load_backbone(run_dir / "backbone.safetensors")
    digits = ssltk.DATASETS.create("digits", val_size=200, train_size=1000)
    m = LinearEval(epochs=1, layers="block4", probe_dim=256, augment="crop-flip").evaluate(
        bb, digits, device=torch.device("cpu")).metrics
    assert {"accuracy", "accuracy_block4"} <= set(m) and m["accuracy_block4"] > 20


def test_several_runs_report_mean_and_std_and_a_table(run_dir, tmp_path):
    other = tmp_path / "sup-seed1"
    proc = run_cli("fit", "--objective", "supervised", *FAST_FIT, *DATA, "--trainer.epochs", "1",
                   "--trainer.seed", "1", "--trainer.run_dir", str(other))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("eval", "knn", "--run", str(run_dir), "--run", str(other), "--k", "10")
    assert proc.returncode == 0, proc.stderr
    assert "mean ± std over 2 runs:" in proc.stdout and "accuracy: " in proc.stdout.split("mean ± std")[1]
    proc = run_cli("table", str(run_dir), str(other), "--metric", "knn.accuracy", "--out", str(tmp_path / "t.md"))
    assert proc.returncode == 0, proc.stderr
    row = [ln for ln in proc.stdout.splitlines() if ln.startswith("| supervised")]
    assert row and "±" in row[0] and "(n=2)" in row[0]
    assert (tmp_path / "t.md").read_text().strip() == proc.stdout.strip()
    bad = run_cli("table", str(tmp_path))
    assert bad.returncode == 2 and "not a run directory" in error_lines(bad)[-1]


def test_online_probe_logs_and_plots(tmp_path):
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"probe{seed}"
        proc = run_cli("fit", "--objective", "relational", "--objective.k", "2", *FAST_FIT, "--trainer.epochs", "1",
                       "--trainer.probe_every", "4", "--trainer.probe_size", "128", "--trainer.seed", str(seed),
                       "--trainer.run_dir", str(out))
        assert proc.returncode == 0, proc.stderr
        probes = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(x)["event"] == "probe"]
        assert [p["step"] for p in probes] == [4, 8]  # 256 images / batch 32 = 8 steps
        assert all(0 <= p["probe_train_acc"] <= 100 for p in probes)
        runs.append(str(out))
    proc = run_cli("plot-probe", *runs, "--out", str(tmp_path / "probe.png"), "--names", "a", "b")
    assert proc.returncode == 0, proc.stderr
    _png_ok(tmp_path / "probe.png")


def test_clustering_scores_exported_labels(run_dir, tmp_path):
    from safetensors.torch import save_file

    data = ssltk.DATASETS.create("digits", val_size=200, train_size=1000)
    save_file({"labels": data.train.labels.clone()}, str(tmp_path / "labels.safetensors"))
    proc = run_cli("eval", "clustering", "--run", str(run_dir), "--labels", str(tmp_path / "labels.safetensors"),
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())["clustering"]
    assert res["nmi"] == pytest.approx(100.0) and res["ari"] == pytest.approx(100.0)


def test_knn_monitor_takes_the_peers_k_and_temperature(tmp_path):
    from helpers import built_trainer

    t = built_trainer(tmp_path, knn_every=1, knn_k=200, knn_sigma=0.1)
    monitor = t.epoch_monitors[0]
    assert (monitor.k, monitor.sigma) == (200, 0.1)
    with pytest.raises(ssltk.SsltkError, match="knn_sigma"):
        ssltk.TrainerConfig(knn_sigma=0.0)
