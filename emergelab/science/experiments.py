"""The experiment registry behind `emergelab experiment NAME`: each writes plots + verdicts.json to a folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from emergelab.errors import UserError
from emergelab.science.common import torch_threads, write_verdicts


def _xor(out, profile, overrides):
    from emergelab.science.classics import xor_experiment

    return xor_experiment(out, profile, **overrides)


def _fgsm(out, profile, overrides):
    from emergelab.science.classics import fgsm_experiment

    return fgsm_experiment(out, profile, **overrides)


def _grokking(out, profile, overrides):
    from emergelab.science.grokking import grokking_experiment

    return grokking_experiment(out, profile, overrides)


def _icl(out, profile, overrides):
    from emergelab.science.icl_phase import icl_experiment

    return icl_experiment(out, profile, overrides)


def _cot_bridge(out, profile, overrides):
    from emergelab.science.cot_bridge import cot_bridge_experiment

    return cot_bridge_experiment(out, profile, overrides)


EXPERIMENTS: dict[str, Callable[[Path, str, dict], dict]] = {
    "xor": _xor,
    "fgsm": _fgsm,
    "grokking": _grokking,
    "icl": _icl,
    "cot-bridge": _cot_bridge,
}
PROFILES = ("quick", "tiny", "gpu")


def run_experiment(name: str, out_dir: str | Path, profile: str = "quick", overrides: dict | None = None,
                   threads: int | None = 1) -> dict:
    """Run one experiment into `out_dir`; returns the verdicts (also written to out_dir/verdicts.json)."""
    if name not in EXPERIMENTS:
        raise UserError(f"experiment: unknown name {name!r} — choose one of {', '.join(EXPERIMENTS)}")
    if profile not in PROFILES:
        raise UserError(f"--profile: {profile!r} is not one of {', '.join(PROFILES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with torch_threads(threads):
        verdicts = EXPERIMENTS[name](out_dir, profile, dict(overrides or {}))
    verdicts = {**verdicts, "profile": profile, "seconds": round(time.time() - start, 1)}
    write_verdicts(out_dir, verdicts)
    return verdicts
