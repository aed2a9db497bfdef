"""The run-directory contract: atomic, checksummed checkpoints (safetensors + JSON, no pickle) and loading.

    RUN/config.yaml   RUN/tokenizer.json   RUN/metrics.jsonl
    RUN/checkpoints/step_00000100/{model.safetensors, optimizer.safetensors, state.json}

`RunDir` names these paths and holds the two rules every stage shares: a directory *holds a run* when
its `checkpoints/` has any entry (a finished, partial or half-written checkpoint), and a post-training
run starts by copying its parent's tokenizer and `model` section (`RunDir.prepare`).

A checkpoint is written into a hidden temporary directory, every file fsync'd, `state.json` (holding the
SHA-256 of the other files) written last, then the directory is renamed into place and its parent
fsync'd. A kill at any moment leaves either the old set of checkpoints or the old set plus a complete
new one; a damaged checkpoint is detected by its checksums and the previous one is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emergelab.errors import UserError

CKPT_PREFIX = "step_"


class RunDir:
    """A run directory: where each file of the contract lives, whether it already holds a run, and how a
    post-training stage starts one from a parent run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.tokenizer_path = self.path / "tokenizer.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def holds_run(self) -> bool:
        """True when `checkpoints/` has any entry: writing a new run here would mix two runs."""
        return self.checkpoints.is_dir() and any(self.checkpoints.iterdir())

    def ensure_new(self, flag: str = "--out", hint: str = "choose a new directory") -> None:
        """Raise a UserError naming `flag` when the directory already holds a run."""
        if self.holds_run():
            raise UserError(f"{flag} {self.path} already holds a run — {hint}")

    def prepare(self, init: str | Path, section: str, section_cfg: dict, extra: dict | None = None) -> None:
        """Start a post-training run from run `init`: its tokenizer.json, and a config.yaml with the parent's
        `model` section (so `load_model` works here) plus this stage's `section` settings and `extra`."""
        from emergelab.config import write_yaml

        parent = read_run_config(init)
        self.ensure_new()
        self.path.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(init) / "tokenizer.json", self.tokenizer_path)
        write_yaml({"model": parent["model"], section: section_cfg, "init": str(init), **(extra or {})},
                   self.config_path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    out, seen = {}, set()
    for k, v in tensors.items():  # tied weights share storage, which safetensors refuses: copy them
        v = v.detach().cpu()
        out[k] = v.clone() if v.data_ptr() in seen else v.contiguous()
        seen.add(v.data_ptr())
    save_file(out, str(path))
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def optimizer_tensors(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> tuple[dict, dict]:
    """Optimizer state as flat tensors keyed `param_name/state_key`, plus its JSON-able param_groups."""
    tensors = {}
    for param, state in optimizer.state.items():
        for key, value in state.items():
            tensors[f"{names[id(param)]}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    return tensors, {"param_groups": groups}


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, names: dict[int, str], tensors: dict,
                           meta: dict) -> None:
    for param in (p for g in optimizer.param_groups for p in g["params"]):
        prefix = names[id(param)] + "/"
        state = {k[len(prefix):]: v.to(param.device) for k, v in tensors.items() if k.startswith(prefix)}
        if state:
            optimizer.state[param] = state
    for group, saved in zip(optimizer.param_groups, meta["param_groups"]):
        group.update(saved)


def save_checkpoint(run_dir: str | Path, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, state: dict | None = None,
                    keep: int = 2) -> Path:
    """Write checkpoint `step` atomically and prune all but the newest `keep` checkpoints."""
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"{CKPT_PREFIX}{step:08d}"
    tmp = ckpt_root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {"model.safetensors": dict(model.state_dict())}
    meta: dict[str, Any] = {"step": step, **(state or {})}
    if optimizer is not None:
        names = {id(p): n for n, p in model.named_parameters()}
        opt_tensors, opt_meta = optimizer_tensors(optimizer, names)
        files["optimizer.safetensors"] = opt_tensors
        meta["optimizer"] = opt_meta
    checksums = {}
    for name, tensors in files.items():
        _write_tensors(tensors, tmp / name)
        checksums[name] = _sha256(tmp / name)
    meta["sha256"] = checksums
    with open(tmp / "state.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    if final.exists():  # re-saving the same step (e.g. after a resume): replace it
        shutil.rmtree(final)
    tmp.rename(final)
    _fsync_dir(ckpt_root)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete (renamed-into-place) checkpoint directories, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX))


def verify_checkpoint(ckpt: Path) -> dict:
    """state.json of `ckpt` after checking every file against its SHA-256; raises UserError if damaged."""
    try:
        meta = json.loads((ckpt / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"checkpoint {ckpt}: state.json is missing or unreadable ({e})") from e
    for name, digest in meta.get("sha256", {}).items():
        path = ckpt / name
        if not path.exists() or _sha256(path) != digest:
            raise UserError(f"checkpoint {ckpt}: {name} is truncated or corrupted (checksum mismatch)")
    return meta


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest checkpoint whose checksums verify (warning about any damaged newer one), or None."""
    ckpts = list_checkpoints(run_dir)
    for i in range(len(ckpts) - 1, -1, -1):
        try:
            return ckpts[i], verify_checkpoint(ckpts[i])
        except UserError as e:
            then = "falling back to the previous checkpoint" if i else "no older checkpoint to fall back to"
            warnings.warn(f"{e}; {then}", stacklevel=2)
    return None


def read_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise UserError(f"run: {run_dir} has no config.yaml — is it an emergelab run directory?")
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={device!r} but CUDA is not available — use device=cpu or install CUDA torch")
    return torch.device(device)


def load_model(run_dir: str | Path, device: str = "auto", step: int | None = None):
    """(model in eval mode, tokenizer, run config dict) from the newest valid checkpoint of a run."""
    from emergelab.config import from_dict
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.model.gpt import GPT, ModelConfig

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    model_cfg = from_dict(ModelConfig, cfg.get("model", {}), "model")
    if step is None:
        found = latest_checkpoint(run_dir)
        if found is None:
            raise UserError(f"run: {run_dir} has no valid checkpoint under checkpoints/")
        ckpt = found[0]
    else:
        ckpt = run_dir / "checkpoints" / f"{CKPT_PREFIX}{step:08d}"
        verify_checkpoint(ckpt)
    model = GPT(model_cfg)
    model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
    model.to(resolve_device(device)).eval()
    return model, Tokenizer.load(run_dir / "tokenizer.json"), cfg


def load_checkpoint_into(ckpt: Path, model: torch.nn.Module,
                         optimizer: torch.optim.Optimizer | None, meta: dict) -> None:
    """Restore model (and optimizer) tensors of a verified checkpoint in place."""
    model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
    if optimizer is not None and (ckpt / "optimizer.safetensors").exists():
        names = {id(p): n for n, p in model.named_parameters()}
        load_optimizer_tensors(optimizer, names, load_file(str(ckpt / "optimizer.safetensors")),
                               meta["optimizer"])
