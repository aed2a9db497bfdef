"""Task registry: turn a task spec string into a Task.

Spec syntax (the same on the command line, in YAML configs and in Python):

    add                                  a built-in task with default difficulty
    add:digits=6,format=reversed         a built-in task with options (k=v, comma-separated)
    data/qa.jsonl                        a JSONL file of {"prompt", "answer"} items (exact match)
    data/qa.jsonl:verifier=numeric       ... with another verifier: exact, numeric, choice, regex
    mypkg.mytasks:Palindrome             a Task subclass in an importable module
    path/to/mytask.py:Palindrome:n=5     ... or in a Python file, with constructor options

Option values are parsed as int, float, true/false, or else kept as strings.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Task

# name -> ("module:Class", fixed constructor options)
BUILTINS: dict[str, tuple[str, dict[str, Any]]] = {
    "add": ("emergelab.tasks.arithmetic:Arithmetic", {"op": "add"}),
    "sub": ("emergelab.tasks.arithmetic:Arithmetic", {"op": "sub"}),
    "mul": ("emergelab.tasks.arithmetic:Arithmetic", {"op": "mul"}),
    "expr": ("emergelab.tasks.arithmetic:Expression", {}),
    "countdown": ("emergelab.tasks.countdown:Countdown", {}),
    "syllogism": ("emergelab.tasks.syllogism:Syllogism", {}),
    "lexicon": ("emergelab.tasks.icl:Lexicon", {}),
    "labels": ("emergelab.tasks.icl:Labels", {}),
    "copy": ("emergelab.tasks.sequences:Copy", {}),
    "modular": ("emergelab.tasks.sequences:Modular", {}),
    "analogy": ("emergelab.tasks.analogy:Analogy", {}),
}


def parse_options(text: str) -> dict[str, Any]:
    """"digits=3,format=reversed" -> {"digits": 3, "format": "reversed"}."""
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"task options: {part!r} is not key=value — write e.g. digits=3,format=reversed")
        k, v = (s.strip() for s in part.split("=", 1))
        opts[k] = _parse_value(v)
    return opts


def _parse_value(v: str) -> Any:
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _load_class(target: str) -> type:
    mod_name, _, cls_name = target.partition(":")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise UserError(f"task: file {mod_name} not found — give the .py file defining {cls_name}")
        spec = importlib.util.spec_from_file_location(f"emergelab_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:
            raise UserError(f"task: cannot import module {mod_name!r} ({e}) — is it on PYTHONPATH?") from e
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(f"task: {target} is not a Task subclass — subclass emergelab.tasks.base.Task")
    return cls


def _construct(spec: str, cls: type, *args: Any, **options: Any) -> Task:
    try:
        return cls(*args, **options)
    except (ValueError, TypeError) as e:  # e.g. digits=zero
        raise UserError(f"task {spec}: bad option ({e}) — see `emergelab tasks list` for the options") from e


def get_task(spec: str | Task) -> Task:
    """The Task named by `spec` (see the module docstring); a Task passes through unchanged."""
    if isinstance(spec, Task):
        return spec
    spec = spec.strip()
    head, _, rest = spec.partition(":")
    if head in BUILTINS:
        target, fixed = BUILTINS[head]
        return _construct(spec, _load_class(target), **fixed, **parse_options(rest))
    if head.endswith(".jsonl"):
        from emergelab.tasks.jsonl import JsonlTask

        return _construct(spec, JsonlTask, head, **parse_options(rest))
    if rest and "=" not in rest.split(":")[0]:
        cls_name, _, opts = rest.partition(":")
        return _construct(spec, _load_class(f"{head}:{cls_name}"), **parse_options(opts))
    raise UserError(f"task: unknown task {spec!r} — built-ins: {', '.join(BUILTINS)}; or a .jsonl file; "
                    f"or module:Class")


def builtin_names() -> list[str]:
    return list(BUILTINS)


def builtin_options(name: str) -> dict[str, Any]:
    """The difficulty options of a built-in task and their defaults."""
    target, fixed = BUILTINS[name]
    params = inspect.signature(_load_class(target).__init__).parameters.values()
    return {p.name: p.default for p in params
            if p.name not in fixed and p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}


def split_specs(text: str) -> list[str]:
    """Split "add:digits=3,format=reversed,countdown" into task specs: a comma-separated piece
    that is `key=value` continues the previous spec's options; ';' always separates."""
    specs: list[str] = []
    for group in text.split(";"):
        for piece in (p.strip() for p in group.split(",")):
            if not piece:
                continue
            is_option = "=" in piece and ":" not in piece.split("=", 1)[0]
            if is_option and specs and ":" in specs[-1]:
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    return specs


def get_tasks(specs: str | list[str]) -> list[Task]:
    """Tasks from a list of specs or one string of specs (see `split_specs`)."""
    if isinstance(specs, str):
        specs = split_specs(specs)
    return [get_task(s) for s in specs]
