"""Build the documentation site and look at it in a real headless browser.

Builds with ``mkdocs build --strict`` into a temporary folder, then renders the home page and the command-line
reference in headless Chromium (the Debian package: ``apt-get install chromium``) with ``--dump-dom``, and checks that
each shows its content after the theme's scripts ran: the home page's title and quickstart command, the reference's
``ssltk fit`` usage. Prints one line per page and exits non-zero on the first page that does not show its content.

    python docs/check_site.py [--browser chromium]
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {  # page -> texts it must show once rendered
    "index.html": ["A plugin-based self-supervised learning toolkit", "ssltk fit --objective relational"],
    "cli/index.html": ["usage: ssltk fit", "--trainer.epochs", "ssltk reproduce"],
}


def browser(name: str | None) -> str:
    for candidate in ([name] if name else ["chromium", "chromium-browser", "google-chrome"]):
        found = shutil.which(candidate)
        if found:
            return found
    sys.exit("no headless browser found: apt-get install chromium (or pass --browser)")


def render(exe: str, page: Path) -> str:
    out = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    return out.stdout


def visible_text(dom: str) -> str:
    """The DOM's text as a reader sees it: tags dropped (highlighted code is split into spans), entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", dom))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--browser", default=None)
    a = p.parse_args()
    exe = browser(a.browser)
    with tempfile.TemporaryDirectory() as site:
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", site], check=True, cwd=ROOT)
        for name, texts in PAGES.items():
            dom = render(exe, Path(site) / name)
            text = visible_text(dom)
            missing = [t for t in texts if t not in text]
            if missing:
                print(f"{name}: rendered {len(dom)} characters, missing {missing}")
                return 1
            print(f"{name}: rendered {len(dom)} characters, shows {', '.join(repr(t) for t in texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
