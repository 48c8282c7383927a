"""The documentation site builds without a warning, and (where a browser is installed) renders its content."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict_with_generated_reference_pages(tmp_path):
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path)], cwd=ROOT,
                   check=True)
    cli = (tmp_path / "cli" / "index.html").read_text(encoding="utf-8")
    assert "usage: ssltk fit" in cli and "ssltk sela-labels" in cli  # generated from the parsers
    api = (tmp_path / "api" / "index.html").read_text(encoding="utf-8")
    assert "load_backbone" in api and "TrainerConfig" in api  # generated from the docstrings
    report = (tmp_path / "reproduction" / "index.html").read_text(encoding="utf-8")
    assert "Coverage:" in report  # REPRODUCTION.md itself


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no headless browser installed (apt-get install chromium)")
def test_a_headless_browser_shows_the_pages_content():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "check_site.py")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
