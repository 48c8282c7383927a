"""The ``ssltk`` command line, on jsonargparse.

    ssltk fit --objective NAME [--backbone NAME] [--data NAME] [--objective.k 32] [--trainer.epochs 200] ...
    ssltk fit --config run.yaml | --print_config | --resume RUN_DIR | --overwrite true
    ssltk eval NAME (--run RUN_DIR | --weights FILE.safetensors [--backbone NAME] --data NAME) [options]
    ssltk list objectives|backbones|datasets|augmentations|evaluators|heads|loggers [PATTERN]
    ssltk plugins

Registry names (``relational``, ``conv4``, ``timm:resnet18``) are mapped to class paths before jsonargparse sees
them, on the command line and in ``--config`` files alike. A file (``--config``, a run's ``config.yaml``, weights
metadata) may name only registered classes; ``--trust CLASS_PATH``, given to any command, allows one that is not. Errors in names, values, paths and keys print one line
(with suggestions where there are close matches) and exit with status 2.
"""
from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from . import __version__
from .errors import SsltkError
from .parsers import command_parser, condense, parse
from .yaml_io import load_yaml

# option -> registry kind, for the options that choose a class
_CHOOSERS = {"--objective": "objective", "--backbone": "backbone", "--data": "dataset", "--augment": "augmentation"}
_PRESET = Path(__file__).parent / "presets" / "quickstart.yaml"
LIST_KINDS = {"objectives": "objective", "backbones": "backbone", "datasets": "dataset", "evaluators": "evaluator",
              "heads": "head", "augmentations": "augmentation", "loggers": "logger"}


# name mapping ----------------------------------------------------------------------------------------------------------
def _to_class(kind: str, value: str) -> List[str]:
    """``[class_path, --opt.arg, value, ...]`` for a registry name, a class path, an inline ``{class_path: ...}`` or a
    YAML/JSON file holding one. A file's content is checked like any file's (only registered classes)."""
    from .engine.build import resolve, trust_named

    if value.endswith((".yaml", ".yml", ".json")) and not value.lstrip().startswith("{"):
        spec = resolve(kind, _read_yaml(value), trusted=False, where=value)
    elif value.lstrip().startswith("{"):
        spec = trust_named(resolve(kind, load_yaml(value, f"--{kind} {value!r}"), where=f"--{kind}"))
    else:
        spec = trust_named(resolve(kind, value))
    return [spec["class_path"]] + [str(x) for k, v in spec["init_args"].items() for x in (f".{k}", _cli_value(v))]


def _read_yaml(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise SsltkError(f"config file not found: {path}")
    try:
        return load_yaml(p.read_text(), path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SsltkError(f"cannot read {path}: {exc}") from None


def _cli_value(v: Any) -> str:
    return v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...")


def map_names(argv: Sequence[str]) -> List[str]:
    """Replace registry names after --objective/--backbone/--data with class paths (plus fixed init args)."""
    out: List[str] = []
    i = 0
    chosen: Dict[str, str] = {}
    while i < len(argv):
        tok = argv[i]
        opt, eq, val = tok.partition("=")
        if opt.endswith(".help") and opt[: -len(".help")] in _CHOOSERS:
            # `--objective.help relational`, or `--data imagefolder --data.help`: help for a registry name
            base = opt[: -len(".help")]
            nxt = argv[i + 1] if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
            name = val if eq else (nxt or chosen.get(base))
            if name is not None:
                out += [opt, _to_class(_CHOOSERS[base], name)[0]]
                i += 1 if eq or nxt is None else 2
                continue
        if opt in _CHOOSERS and (eq or i + 1 < len(argv)):
            value = val if eq else argv[i + 1]
            chosen[opt] = value
            mapped = _to_class(_CHOOSERS[opt], value)
            out += [opt, mapped[0]]
            out += [f"{opt}{mapped[j]}" if j % 2 == 1 else mapped[j] for j in range(1, len(mapped))]
            i += 1 if eq else 2
            continue
        if opt == "--config" and (eq or i + 1 < len(argv)):
            out += ["--config", _normalise_config(val if eq else argv[i + 1])]
            i += 1 if eq else 2
            continue
        out.append(tok)
        i += 1
    return out


def _normalise_config(path: str) -> str:
    """A config file with registry names turned into class paths, as a YAML string jsonargparse accepts."""
    from .engine.build import check_config

    cfg = _read_yaml(path)
    if cfg is None:
        raise SsltkError(f"{path} is empty")
    return yaml.safe_dump(check_config(cfg, path, required=()), sort_keys=False)


# parsers -----------------------------------------------------------------------------------------------------------------
def _fit_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    from .data.base import DataSource
    from .data.recipes import Augmentation
    from .engine.config import EvalConfig, TrainerConfig
    from .interfaces import Backbone, Objective

    p = ArgumentParser(prog="ssltk fit", exit_on_error=False, allow_abbrev=False, description="Train a backbone with an objective.")
    p.add_argument("--config", action=ActionConfigFile, help="a run.yaml (e.g. a run directory's config.yaml)")
    p.add_subclass_arguments(Objective, "objective", skip={"in_dim"}, required=True,
                             help="objective: a registry name (see `ssltk list objectives`) or class path")
    p.add_subclass_arguments(Backbone, "backbone", help="backbone: conv4, resnet32, timm:NAME, ... or a class path")
    p.add_subclass_arguments(DataSource, "data",
                             help="dataset: digits (default), cifar10, imagefolder, filelist, webdataset, ... "
                                  "(`ssltk list datasets`; `--data.help NAME` for one's options)")
    p.add_subclass_arguments(Augmentation, "augment", required=False,
                             help="augmentation recipe overriding the objective's (see `ssltk list augmentations`)")
    p.add_class_arguments(TrainerConfig, "trainer")
    p.add_class_arguments(EvalConfig, "evaluate")
    p.add_argument("--resume", type=Optional[str], default=None, help="continue the run in this directory")
    p.add_argument("--overwrite", type=bool, default=False,
                   help="replace the run already in --trainer.run_dir (its files are removed first)")
    p.set_defaults(backbone={"class_path": "ssltk.backbones.conv4.Conv4"})
    return p


#: the exit status of a fit stopped by --trainer.max_time (its checkpoint saved; a job script requeues on it)
EXIT_TIME_LIMIT = 3


def _parse(parser, argv: List[str]):
    from jsonargparse import ArgumentError

    try:
        return parser.parse_args(argv)
    except ArgumentError as exc:
        raise SsltkError(_condense(str(exc), parser)) from None


def _condense(message: str, parser) -> str:
    """jsonargparse's multi-line errors as one line: an unknown option of a chosen component names its options, the
    rest as every subcommand reports them (:func:`ssltk.parsers.condense`)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "is not accepted" in ln), None)
    detail = detail or next((ln for ln in lines if ln.startswith(("Expected", "Problem", "Not a valid", "Key"))), None)
    if lines and not lines[0].startswith("unrecognized arguments") and detail and detail != lines[0].rstrip(":"):
        opt = re.search(r"Option '([^']+)' is not accepted", detail)
        key = re.search(r'Parser key "([^"]+)"', lines[0])
        if opt and key:
            return _unknown_component_option(key.group(1), opt.group(1), message)
        return f"{lines[0].rstrip(':')}: {detail}"
    return condense(message, parser)


def _unknown_component_option(group: str, option: str, message: str) -> str:
    """One line for ``--objective.kk``: the closest option of the chosen class, its options, and where to see them."""
    import inspect

    from .engine.build import import_class, registry_name

    chosen = re.search(r"given class_path '([^']+)'", message)
    if chosen is None:
        return f"--{group}.{option} is not an option of the chosen {group} (see --help)"
    try:
        cls = import_class(chosen.group(1))
        params = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "in_dim", "num_classes")
                  and not n.startswith("_")]
        params = [n for n in params if inspect.signature(cls.__init__).parameters[n].kind not in
                  (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        kind = {"data": "dataset", "augment": "augmentation"}.get(group, group)
        name = registry_name(kind, chosen.group(1))
    except Exception:  # an unimportable class: the plain message
        return f"--{group}.{option} is not an option of the chosen {group} (see --help)"
    close = difflib.get_close_matches(option, params, n=1, cutoff=0.5)
    hint = f"; did you mean --{group}.{close[0]}?" if close else ""
    listed = ", ".join(params) if params else "none"
    return (f"--{group}.{option} is not an option of {group} {name!r}{hint} Its options: {listed} "
            f"(ssltk fit --{group}.help {name} describes them)")


def _has_option(argv: Sequence[str], opt: str) -> bool:
    """Whether ``opt`` itself is given (``--data X`` or ``--data=X``; ``--data.root`` does not count)."""
    return any(a == opt or a.startswith(opt + "=") for a in argv)


def cmd_fit(argv: List[str]) -> int:
    """Train a backbone with an objective (``ssltk fit --help``)."""
    from .engine.build import registry_name
    from .engine.rundir import read_run_config
    from .engine.trainer import Trainer

    resume_dir = _option_value(argv, "--resume")
    if resume_dir is not None:
        read_run_config(Path(resume_dir))  # a clear error for a directory that is not a run, before parsing
        argv = ["--config", str(Path(resume_dir) / "config.yaml")] + argv
    quickstart = not _has_option(argv, "--data") and not _has_option(argv, "--config")
    parser = _fit_parser()
    if quickstart:  # the preset's values are defaults: the objective's own and anything the user gives win
        parser.set_defaults(_flat(yaml.safe_load(_PRESET.read_text())))
    mapped = map_names(argv)
    # the objective's own optimisation defaults are parser defaults too, so that --print_config shows what will
    # run and the printed config trains the same run (as LightningCLI does); the first parse only finds the
    # objective, and must not print a config that lacks them
    first = [a for a in mapped if a != "--print_config" and not a.startswith("--print_config=")]
    cfg = _parse(parser, first)
    own = _trainer_defaults(cfg.objective.class_path)
    if own or len(first) != len(mapped):
        parser.set_defaults({f"trainer.{k}": v for k, v in own.items()})
        cfg = _parse(parser, mapped)
    config = cfg.as_dict()
    config.pop("config", None)
    config.pop("__path__", None)
    resume = config.pop("resume", None)
    overwrite = bool(config.pop("overwrite", False))
    if resume:
        if overwrite:
            raise SsltkError("--overwrite and --resume exclude each other")
        config["trainer"]["run_dir"] = resume
    trainer = Trainer(config, resume=bool(resume), overwrite=overwrite)  # checks the options first
    if quickstart:
        epochs = config["trainer"]["epochs"]
        print(f"ssltk: no --data given: quickstart on the embedded digits dataset for {epochs} "
              f"epoch{'' if epochs == 1 else 's'} (pass --data NAME for real datasets)")
    result = trainer.fit()
    if result.stopped_at_epoch is not None:
        if result.rank == 0:
            print(f"ssltk: stopped at --trainer.max_time after epoch {result.stopped_at_epoch} of "
                  f"{config['trainer']['epochs']}, with its checkpoint; continue with: ssltk fit --resume "
                  f"{result.run_dir}", flush=True)
        return EXIT_TIME_LIMIT
    _report_fit(result, registry_name("objective", config["objective"]["class_path"]),
                registry_name("backbone", config["backbone"]["class_path"]))
    return 0


def _flat(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A preset's ``{trainer: {epochs: 4}, data: {...}}`` as parser defaults: sections of options become dotted
    keys, component specs (with a class_path) stay whole."""
    out: Dict[str, Any] = {}
    for key, value in (cfg or {}).items():
        if isinstance(value, dict) and "class_path" not in value:
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _trainer_defaults(path: str) -> Dict[str, Any]:
    from .engine.build import import_class

    return dict(getattr(import_class(path), "trainer_defaults", {}) or {})


def _option_value(argv: Sequence[str], opt: str) -> Optional[str]:
    for i, tok in enumerate(argv):
        if tok == opt and i + 1 < len(argv):
            return argv[i + 1]
        if tok.startswith(opt + "="):
            return tok.split("=", 1)[1]
    return None


def _report_fit(result, objective: str, backbone: str) -> None:
    from rich.console import Console
    from rich.table import Table

    if result.rank != 0:
        return
    console = Console()
    console.print(f"run directory: {result.run_dir}", highlight=False)
    if "linear" in result.metrics:
        t = Table(title="linear evaluation, top-1 %")
        t.add_column("backbone")
        t.add_column("accuracy", justify="right")
        t.add_row(f"{objective} ({backbone})", f"{result.metrics['linear']['accuracy']:.2f}")
        if "linear_random" in result.metrics:
            t.add_row(f"random weights ({backbone})", f"{result.metrics['linear_random']['accuracy']:.2f}")
        console.print(t)


def cmd_eval(argv: List[str]) -> int:
    """Evaluate a run or a .safetensors backbone: ``ssltk eval NAME --run RUN_DIR`` (``ssltk eval NAME --help``)."""
    from jsonargparse import ArgumentParser

    from .api import evaluate
    from .data.base import DataSource
    from .interfaces import Backbone
    from .registries import EVALUATORS

    if not argv or argv[0].startswith("-"):
        names = ", ".join(EVALUATORS.names())
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: ssltk eval NAME [--help] ...\nevaluators: {names}")
            return 0
        raise SsltkError(f"ssltk eval needs an evaluator name first: one of {names}")
    name, rest = argv[0], argv[1:]
    cls = EVALUATORS.get(name)
    p = ArgumentParser(prog=f"ssltk eval {name}", exit_on_error=False, allow_abbrev=False, description=(cls.__doc__ or "").strip())
    p.add_argument("--run", type=Optional[str], default=None,
                   help="a run directory written by ssltk fit; repeat it for several runs (seeds): mean ± std")
    p.add_argument("--weights", type=Optional[str], default=None, help="a backbone .safetensors file")
    p.add_subclass_arguments(Backbone, "backbone", required=False, help="backbone class when --weights lacks it")
    p.add_subclass_arguments(DataSource, "data", required=False, help="dataset (default: the run's)")
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--out", type=Optional[str], default=None, help="where results.json goes")
    own = {"run", "weights", "backbone", "data", "device", "out"}
    p.add_class_arguments(cls)  # the evaluator's own options sit at the top level: ssltk eval linear --epochs 10
    runs, rest = _take_all(rest, "--run")  # --run may repeat: one evaluation per run, then mean +- std
    cfg = _parse(p, map_names(rest)).as_dict()
    cfg.pop("__path__", None)
    if len(runs) > 1 and cfg["out"]:
        raise SsltkError("--out cannot be combined with several --run (each run keeps its own results.json)")
    per_run = []
    for run in runs or [None]:
        result = evaluate(name, run=run, weights=cfg["weights"], backbone=cfg.get("backbone"),
                          data=cfg.get("data"), device=cfg["device"], out_dir=cfg["out"],
                          evaluator_args={k: v for k, v in cfg.items() if k not in own})
        per_run.append(result.metrics)
        if len(runs) > 1:
            print(f"[{run}]")
        for key, value in result.metrics.items():
            print(f"{key}: {_metric_text(key, value)}")
        for key, path in result.artifacts.items():
            print(f"{key}: {path}")
    if len(per_run) > 1:
        from .eval.summary import format_mean_std

        print(f"mean ± std over {len(per_run)} runs:")
        for key in per_run[0]:
            vals = [m[key] for m in per_run if isinstance(m.get(key), (int, float))]
            if len(vals) == len(per_run):
                print(f"{key}: {format_mean_std(vals)}")
    return 0


def _take_all(argv: Sequence[str], opt: str):
    """Every value of a repeatable option, and argv without it."""
    values, rest, i = [], [], 0
    while i < len(argv):
        tok = argv[i]
        if tok == opt and i + 1 < len(argv):
            values.append(argv[i + 1])
            i += 2
            continue
        if tok.startswith(opt + "="):
            values.append(tok.split("=", 1)[1])
        else:
            rest.append(tok)
        i += 1
    return values, rest


def cmd_table(argv: List[str]) -> int:
    """Markdown table of methods x datasets, mean ± std over seeds: ``ssltk table RUN... [--metric linear.accuracy]``."""
    from .eval.summary import results_table

    p = command_parser("ssltk table", cmd_table.__doc__)
    p.add_argument("runs", nargs="+", help="run directories (several seeds of a method are averaged)")
    p.add_argument("--metric", default="linear.accuracy", help="a key path in results.json")
    p.add_argument("--out", default=None, help="also write the table to this Markdown file")
    a = parse(p, argv)
    table = results_table([Path(r) for r in a.runs], a.metric)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n")
    return 0


def cmd_plot_probe(argv: List[str]) -> int:
    """Plot the online probe's training-accuracy curves of several runs: ``ssltk plot-probe RUN... --out FILE.png``."""
    from .eval.probe import plot_probe_curves

    p = command_parser("ssltk plot-probe", cmd_plot_probe.__doc__)
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default="probe.png")
    p.add_argument("--names", nargs="*", default=None, help="one legend entry per run")
    a = parse(p, argv)
    if a.names and len(a.names) != len(a.runs):
        raise SsltkError(f"--names has {len(a.names)} entries for {len(a.runs)} runs")
    print(plot_probe_curves([Path(r) for r in a.runs], Path(a.out), a.names))
    return 0


def cmd_list(argv: List[str]) -> int:
    """List registered components: ``ssltk list objectives|backbones|datasets|augmentations|evaluators|heads|loggers
    [PATTERN]``; PATTERN is a shell wildcard (``res*``), and a plain word matches anywhere in a name."""
    from .registries import ALL_REGISTRIES

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: ssltk list {" + ",".join(LIST_KINDS) + "} [PATTERN]")
        return 0 if argv else 2
    kind = LIST_KINDS.get(argv[0]) or LIST_KINDS.get(argv[0] + "s")
    if kind is None:
        close = difflib.get_close_matches(argv[0], list(LIST_KINDS), n=1)
        raise SsltkError(f"cannot list {argv[0]!r}; use one of {', '.join(LIST_KINDS)}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))
    reg = ALL_REGISTRIES[kind]
    pattern = argv[1] if len(argv) > 1 else "*"
    if not any(c in pattern for c in "*?["):  # a plain word matches anywhere in a name: `list backbones res`
        pattern = f"*{pattern}*"
    names = reg.list(pattern)
    if not names:
        print(f"no {argv[0]} match {pattern!r}", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    for name in names:
        if name.endswith(":*"):
            fam = next(f for f in reg.families() if f"{f.prefix}:*" == name)
            target, source = fam.target, fam.source
        else:
            entry = reg.entry(name)
            target, source = entry.target, entry.source
        doc = _first_sentence(getattr(target, "__doc__", None) or "")
        print(f"{name:<{width}}  {doc}  [{source}]")
    return 0


def _metric_text(key: str, value) -> str:
    """A metric as a reader expects it: counts and sizes whole (``num_train: 3000``), the rest to 4 decimals."""
    if isinstance(value, float) and key.startswith(("num_", "dim_")) and value.is_integer():
        return f"{int(value)}"
    return f"{value:.4f}" if isinstance(value, float) else f"{value}"


def _first_sentence(doc: str) -> str:
    """A docstring's first sentence, whole, however many lines it wraps over (not its first line, cut mid-phrase)."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.search(r"(?<!e\.g)(?<!i\.e)(?<!etc)(?<! al)(?<!cf)(?<!vs)[.!?](\s|$)", text)
    return text[: m.end()].strip() if m else text


def cmd_plugins(argv: List[str]) -> int:
    """Show each installed plugin: name, distribution, version, what it registered, and load errors."""
    from rich.console import Console
    from rich.table import Table

    from .plugins import plugin_infos

    infos = plugin_infos()
    table = Table(title="ssltk plugins")
    for col in ("plugin", "distribution", "version", "registered", "status"):
        table.add_column(col, overflow="fold")
    for info in infos:
        reg = "; ".join(f"{k}: {', '.join(v)}" for k, v in info.registered.items()) or "-"
        status = f"[red]failed: {info.error}[/red]" if info.error else "[green]ok[/green]"
        table.add_row(info.name, info.distribution, info.version, reg, status)
    Console(width=max(120, Console().width)).print(table)
    return 0


def cmd_reproduce(argv: List[str]) -> int:
    """Run a paper table and compare it with the paper: ``ssltk reproduce --list`` / ``ssltk reproduce TABLE``."""
    from .reproduce import cmd_reproduce as run_reproduce

    return run_reproduce(argv)


def cmd_export(argv: List[str]) -> int:
    """Export a run's backbone: ``ssltk export --run RUN --to timm|hf|torchscript|onnx --out DIR``."""
    from .export import cmd_export as run_export

    return run_export(argv)


BUILTIN_COMMANDS = {"fit": cmd_fit, "eval": cmd_eval, "export": cmd_export, "reproduce": cmd_reproduce, "table": cmd_table,
                    "plot-probe": cmd_plot_probe, "list": cmd_list, "plugins": cmd_plugins}


def _usage() -> str:
    from .registries import SUBCOMMANDS

    lines = [f"usage: ssltk COMMAND [options]   (ssltk {__version__})", "", "commands:"]
    cmds: Dict[str, Any] = dict(BUILTIN_COMMANDS)
    for name in SUBCOMMANDS.names():
        cmds.setdefault(name, SUBCOMMANDS.get(name))
    for name, fn in cmds.items():
        doc = ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        lines.append(f"  {name:<12} {doc}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ssltk`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"ssltk {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        trusted, rest = _take_all(rest, "--trust")  # class paths a file may name although no registry holds them
        if trusted:
            from .engine.build import trust_class_path

            trust_class_path(*trusted)
        fn = BUILTIN_COMMANDS.get(cmd)
        if fn is None:
            from .registries import SUBCOMMANDS

            if cmd not in SUBCOMMANDS:
                known = list(BUILTIN_COMMANDS) + SUBCOMMANDS.names()
                close = difflib.get_close_matches(cmd, known, n=2)
                raise SsltkError(f"unknown command {cmd!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                               f"; use one of {', '.join(known)}"))
            fn = SUBCOMMANDS.get(cmd)
        return int(fn(rest) or 0)
    except SsltkError as exc:
        print(f"ssltk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from .errors import Interrupted

        if isinstance(exc, Interrupted):
            print(f"ssltk: {exc.message()}", file=sys.stderr)
        else:
            print("ssltk: interrupted", file=sys.stderr)
        return 143 if str(exc) == "terminated" or getattr(exc, "reason", "") == "terminated" else 130


def console_main() -> None:  # pragma: no cover - thin wrapper
    try:
        sys.exit(main())
    except BrokenPipeError:  # `ssltk list ... | head`: the reader has gone, which is no error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)

