"""Move the ``ssltk reproduce`` records out of RESULTS.md into the manifest of kept weights, as entries without weights.

Before ssltk kept weights, ``ssltk reproduce --record`` appended each table to RESULTS.md. Those backbones are gone,
so the numbers cannot be checked; the report lists them apart ("recorded before weights were kept"). Every one of
them trained on a folder of training images only (the shared CIFAR-10 training set), so each scored held-out
training images (10,000, or what a reduced training set left), not the paper's test split. This script parses each
record's conditions (date, commits, command, the budget in its heading) and its numbers (one per run where the record
lists them, else the table's mean with its seeds), adds them to the manifest once each, and removes the records from
RESULTS.md, which keeps the benchmarks.

    python examples/benchmarks/move_reproduction_records.py [--results FILE] [--zoo DIR] [--dry-run]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sections(text: str):
    """(start, end, heading, body lines) of every '## ' section."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")] + [len(lines)]
    for a, b in zip(starts, starts[1:]):
        yield a, b, lines[a], lines[a + 1:b]


def parse(heading: str, body: list, tables: dict) -> list:
    m = re.match(r"## ssltk reproduce (\S+) \((.*)\)$", heading)
    table = tables.get(m.group(1)) if m else None
    if table is None:
        return []
    budget = m.group(2)
    field = {k: v for k, v in (re.match(r"- (\w[\w ]*): (.*)", line).groups() for line in body
                                if re.match(r"- (\w[\w ]*): ", line))}
    trained = re.search(r"runs trained by (.*)$", field.get("commit", ""))
    base = {"table": table.name, "budget": budget, "date": field.get("date", "?"),
            "trained_by": trained.group(1) if trained else "unrecorded",
            "command": field.get("command", "").strip("`")}
    by_id = {c.id: c for c in table.cells}
    by_label = {c.label: c for c in table.cells}
    out = []
    each = next((line for line in body if line.startswith("- each run:")), None)
    if each is not None:
        for part in each.split(":", 2)[-1].split(";"):
            got = re.match(r"\s*(\S+) seed (\d+) ([0-9.]+)", part)
            if got and got.group(1) in by_id:
                out.append({**base, "cell": by_id[got.group(1)], "seeds": [int(got.group(2))],
                            "value": float(got.group(3))})
        return out
    seeds = re.search(r"; seeds ([0-9 ]+)$", next((line for line in body if "; seeds " in line), ""))
    for line in body:
        row = re.match(r"\| (.+?) \| .+? \| ([0-9.]+)(?: ± [0-9.]+)? \(n=(\d+)\) \|", line)
        if row and row.group(1) in by_label:
            listed = [int(s) for s in seeds.group(1).split()] if seeds else []
            n = int(row.group(3))
            out.append({**base, "cell": by_label[row.group(1)], "seeds": listed if len(listed) == n else [],
                        "value": float(row.group(2)), "n": n})
    return out


def entry(rec: dict) -> dict:
    from ssltk.reproduce import scores_test

    cell = rec["cell"]
    seeds = rec["seeds"]
    tag = "-".join(map(str, seeds)) if seeds else f"mean{rec.get('n', 1)}"
    reduced = "full budget" not in rec["budget"]
    return {
        "name": f"{cell.table}/{cell.id}/recorded-{rec['date'][:10]}-seeds{tag}",
        "table": cell.table, "cell": cell.id, "label": cell.label,
        "seed": seeds[0] if len(seeds) == 1 else -1, "seeds": seeds, "n": rec.get("n", len(seeds) or 1),
        "budget_tag": "reduced" if reduced else "full",
        "paper": {"mean": cell.paper_mean, "std": cell.paper_std}, "metric": cell.metric,
        "value": rec["value"], "weights": None, "sha256": None,
        "conditions": {"budget": rec["budget"], "command": rec["command"],
                       "split": ("held-out training images (a folder of training images only: not the paper's test "
                                 "split)") if scores_test(cell) else "held-out training images (the paper's "
                                                                     "validation split)"},
        "trained_by": rec["trained_by"], "kept_by": None, "date": rec["date"],
        "note": "recorded in examples/benchmarks/RESULTS.md before weights were kept; the weights are lost",
    }


def main() -> None:
    sys.path.insert(0, str(HERE.parents[1]))
    from ssltk.reproduce import load_protocols
    from ssltk.zoo import ZOO, read_manifest, write_manifest

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--zoo", type=Path, default=ZOO)
    p.add_argument("--dry-run", action="store_true", help="print what would move, change nothing")
    a = p.parse_args()
    tables = load_protocols()
    text = a.results.read_text(encoding="utf-8")
    keep_lines, moved = [], {}
    lines = text.split("\n")
    cut = set()
    for start, end, heading, body in sections(text):
        if not heading.startswith("## ssltk reproduce "):
            continue
        for rec in parse(heading, body, tables):
            e = entry(rec)
            # the same runs tabled again later (sometimes without naming their seeds): once, seeds named if any
            key = (e["table"], e["cell"], e["conditions"]["budget"], round(e["value"], 2), e["n"])
            if key in moved:
                commits = moved[key]["trained_by"].split(", ") + e["trained_by"].split(", ")
                e = e if e["seeds"] and not moved[key]["seeds"] else moved[key]
                e["trained_by"] = ", ".join(dict.fromkeys(c for c in commits if c != "unrecorded code"))
            moved[key] = e
        cut.update(range(start, end))
    keep_lines = [line for i, line in enumerate(lines) if i not in cut]
    print(f"{len(moved)} recorded numbers from {sum(1 for _ in cut)} lines of {a.results}")
    if a.dry_run:
        for e in moved.values():
            print(f"  {e['name']}: {e['value']:.2f}")
        return
    entries = {e["name"]: e for e in read_manifest(a.zoo)}
    for e in moved.values():
        name, i = e["name"], 2
        while name in entries and entries[name] != e:
            name, i = f"{e['name']}-{i}", i + 1
        entries[name] = {**e, "name": name}
    write_manifest(list(entries.values()), a.zoo)
    a.results.write_text("\n".join(keep_lines).rstrip() + "\n", encoding="utf-8")
    print(f"written: {a.zoo / 'manifest.json'}, {a.results}")


if __name__ == "__main__":
    main()
