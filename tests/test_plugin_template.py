"""The template plugin, built and pip-installed into a fresh virtual environment that reuses the installed torch,
is found by ``ssltk list objectives`` and trains with ``ssltk fit`` (no network: no build isolation, no deps)."""
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "plugin-template"


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
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                            "--target", site, str(TEMPLATE)], capture_output=True, text=True,
                           env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert build.returncode == 0, build.stdout + build.stderr
    return py


def run(py, *args, **kw):
    env = dict(os.environ, COLUMNS="200")
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(py), "-m", "ssltk", *args], capture_output=True, text=True, env=env, **kw)


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
    assert "x-simsiam" not in out.stdout
