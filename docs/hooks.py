"""MkDocs hooks: pages that are generated, never written by hand.

- ``{{ include PATH }}`` is replaced by a repository file (the reproduction report, the architecture notes), so the
  site shows exactly what the repository holds.
- ``{{ cli-reference }}`` is replaced by every subcommand's ``--help``, produced by the parsers themselves.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
COMMANDS = ["fit", "eval", "export", "reproduce", "table", "plot-probe", "list", "plugins", "interpret", "sela-labels"]


def _help(argv):
    from ssltk.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    return out.getvalue().rstrip()


def cli_reference() -> str:
    parts = ["## ssltk", "", "```text", _help(["--help"]), "```", ""]
    for cmd in COMMANDS:
        text = _help([cmd, "--help"])
        if not text:
            raise RuntimeError(f"ssltk {cmd} --help printed nothing")
        parts += [f"## ssltk {cmd}", "", "```text", text, "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    def include(m):
        path = ROOT / m.group(1).strip()
        text = path.read_text(encoding="utf-8")
        # the included file's own title is the page's: drop it, keep the rest
        return re.sub(r"\A# [^\n]*\n", "", text)

    markdown = re.sub(r"\{\{ include ([^}]+) \}\}", include, markdown)
    if "{{ cli-reference }}" in markdown:
        markdown = markdown.replace("{{ cli-reference }}", cli_reference())
    return markdown
