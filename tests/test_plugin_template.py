"""The example plugins (the template and BYOL), built and pip-installed into a fresh virtual environment that reuses
the installed torch, are found by ``ssltk list objectives`` and train with ``ssltk fit`` (no network: no build
isolation, no deps). BYOL, written against the public API only, also passes the contract suite and resumes exactly
after a SIGKILL, its momentum target included."""
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "plugin-template"
BYOL = REPO / "examples" / "plugins" / "ssltk-byol"


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # the system pip installs into the venv through its interpreter's site-packages target
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # reuse the installed torch and ssltk of *this* interpreter, which may itself be a virtual environment (its
    # packages are then not the base interpreter's system site-packages)
    import site as site_mod

    outer = [p for p in site_mod.getsitepackages() + [site_mod.getusersitepackages()] if Path(p).is_dir()]
    # addsitedir, not a bare path line, so the outer environment's own .pth files (editable installs) apply too
    Path(site, "_ssltk_outer_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    for plugin in (TEMPLATE, BYOL):
        build = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                                "--no-index", "--target", site, str(plugin)], capture_output=True, text=True,
                               env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
        assert build.returncode == 0, build.stdout + build.stderr
    return py


def venv_env():
    env = dict(os.environ, COLUMNS="200")
    env.pop("PYTHONPATH", None)
    return env


def run(py, *args, **kw):
    return subprocess.run([str(py), "-m", "ssltk", *args], capture_output=True, text=True, env=venv_env(), **kw)


def test_installed_template_is_listed(plugin_venv):
    out = run(plugin_venv, "list", "objectives")
    assert out.returncode == 0, out.stderr
    assert "x-simsiam" in out.stdout and "relational" in out.stdout
    plugins = run(plugin_venv, "plugins")
    assert "ssltk-plugin-x" in plugins.stdout and "x-simsiam" in plugins.stdout


def test_installed_template_trains(plugin_venv, tmp_path):
    out = run(plugin_venv, "fit", "--objective", "x-simsiam", "--trainer.epochs", "1", "--trainer.run_dir",
              str(tmp_path / "run"), "--evaluate.random_baseline", "false", "--evaluate.epochs", "5")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "backbone.safetensors").is_file()
    assert "x-simsiam" in out.stdout


def test_not_visible_outside_the_venv():
    out = subprocess.run([sys.executable, "-m", "ssltk", "list", "objectives"], capture_output=True, text=True)
    assert "x-simsiam" not in out.stdout and "byol-example" not in out.stdout


def test_installed_byol_is_listed_and_passes_the_contract(plugin_venv):
    out = run(plugin_venv, "list", "objectives", "byol-example")
    assert out.returncode == 0 and "[plugin byol (ssltk-byol" in out.stdout, out.stdout + out.stderr
    code = "from ssltk.testing import check_hooks, check_objective; check_objective('byol-example'); check_hooks('byol-example')"
    contract = subprocess.run([str(plugin_venv), "-c", code], capture_output=True, text=True, env=venv_env())
    assert contract.returncode == 0, contract.stderr


def test_byol_trains_on_the_embedded_dataset_and_checkpoints_its_target(plugin_venv, tmp_path):
    run_dir = tmp_path / "run"
    out = run(plugin_venv, "fit", "--objective", "byol-example", "--trainer.epochs", "1", "--trainer.run_dir", str(run_dir),
              "--evaluate.random_baseline", "false", "--evaluate.epochs", "5")
    assert out.returncode == 0, out.stderr
    from safetensors import safe_open

    with safe_open(str(run_dir / "checkpoints" / "epoch-0001.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.startswith("objective.target_backbone.module.") for k in keys)
    assert any(k.startswith("objective.target_projector.module.") for k in keys)
    # the target is not trained by the optimizer: no optimizer state refers to more tensors than the online ones
    assert not any(k.startswith("optimizer/") and "target" in k for k in keys)


def test_byol_resumes_exactly_after_sigkill(plugin_venv, tmp_path):
    from safetensors.torch import load_file
    from helpers import kill_after_first_checkpoint

    fit = ["fit", "--objective", "byol-example", "--objective.hidden_dim", "256", "--data.train_size", "512",
           "--trainer.batch_size", "64", "--trainer.epochs", "3", "--trainer.progress", "false",
           "--evaluate.linear", "false"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run(plugin_venv, *fit, "--trainer.run_dir", str(full)).returncode == 0
    if not kill_after_first_checkpoint([str(plugin_venv), "-m", "ssltk", *fit, "--trainer.run_dir", str(killed)],
                                       killed, env=venv_env()):
        pytest.skip("the run finished before it could be killed")
    resumed = run(plugin_venv, "fit", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(full / "checkpoints" / "epoch-0003.safetensors"))
    b = load_file(str(killed / "checkpoints" / "epoch-0003.safetensors"))
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ and any("target" in k for k in a), differ[:3]
