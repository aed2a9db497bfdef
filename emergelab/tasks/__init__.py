"""Verifiable tasks: generators, prompts, verifiers, continuous metrics; the corpus builder.

    from emergelab.tasks import get_task
    task = get_task("add:digits=6")
    ex = task.generate(1, split="test", seed=0)[0]
    task.verify(ex, "<answer>123</answer>").score
"""

from emergelab.tasks.base import (
    EOS,
    FORMAT_PREFIX,
    STOP_STRINGS,
    Example,
    Task,
    Verdict,
    cut_at_stop,
    sampling_stops,
)
from emergelab.tasks.registry import builtin_names, get_task, get_tasks, split_specs

__all__ = ["EOS", "FORMAT_PREFIX", "STOP_STRINGS", "Example", "Task", "Verdict", "builtin_names",
           "cut_at_stop", "get_task", "get_tasks", "sampling_stops", "split_specs"]
