"""One home for how much of the machine a command uses: parallel jobs and torch threads per job.

Every command takes `--threads` (the sweep and the demo also `--jobs`); left unset, both are chosen here
from the cores this process may run on. Measured on the 2-core reference CPU (training steps of
16×256-token batches, 5k–100k models; `python bench/bench_sweep.py --threads-only`, docs/sweeps.md): two
1-thread runs side by side each ran almost as fast as one alone (≈ 1.9× the throughput); a second thread
inside one run gave 1.0–1.6× with the other core idle, and made a step 2–3× *slower* as soon as another
process held that core (the threads wait for each other at every kernel). So: several runs → one job per
core with one thread each; a single run → all cores as threads only when the CPU is idle at the moment
of choosing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from emergelab.errors import UserError


def cores_available() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Parallelism:
    jobs: int  # runs trained at once, each in its own process
    threads: int  # torch intra-op threads inside each job


def choose(jobs: int | None = None, threads: int | None = None, n_tasks: int | None = None,
           device: str = "cpu", cores: int | None = None, busy: float | None = None) -> Parallelism:
    """Jobs and threads for `n_tasks` independent runs; an explicit `jobs` / `threads` wins.

    CPU: jobs = min(cores, n_tasks); threads = cores // jobs, except that a lone job gets one thread when
    other processes keep a core busy (`busy` cores, default: measured now, see busy_cores).
    CUDA: one job (the runs share one device), threads = cores."""
    for name, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise UserError(f"{name}={value!r} must be a whole number ≥ 1 — or leave it out to use "
                            f"the {cores_available()} available core(s)")
    cores = cores or cores_available()
    if jobs is None:
        jobs = 1 if device.startswith("cuda") else max(1, min(cores, n_tasks or cores))
    if threads is None:
        threads = max(1, cores // jobs)
        if threads > 1 and not device.startswith("cuda") and (busy_cores() if busy is None else busy) >= 0.5:
            threads = 1
    return Parallelism(jobs=jobs, threads=threads)


def busy_cores(interval: float = 0.25) -> float:
    """Cores busy with other work right now: (1 − idle share) × all cores over `interval` seconds, from
    /proc/stat (Linux); elsewhere the 1-minute load average. Measured at the moment of choosing, so a
    sweep that just finished does not count (a load average would remember it for minutes)."""
    import time

    def snapshot() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    first = snapshot()
    if first is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return 0.0
    time.sleep(interval)
    second = snapshot()
    idle, total = second[0] - first[0], second[1] - first[1]
    return (1 - idle / max(total, 1)) * (os.cpu_count() or 1)


def set_torch_threads(n: int) -> None:
    """Set torch's intra-op threads for this process (inter-op is left alone: our graphs are sequential)."""
    import torch

    if n < 1:
        raise UserError(f"--threads={n} must be ≥ 1")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
