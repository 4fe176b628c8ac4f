"""``choreo train``: train any registered generator on a dance dataset folder.

One loop, readable top to bottom (in the spirit of nanoGPT's train.py):
prepare (motion, music) pairs once, fit the normaliser, then repeat: sample random
windows, take the model's losses (its recipe, ``backend/training/recipes.py``), step,
update the EMA copy. What differs between models (diffusion noise and x0 prediction,
next-frames prediction, a mixture likelihood) lives in their recipes, not here.

Checkpoints hold the config, the normaliser (plain tensors), the EMA weights that
sampling uses, and what resuming needs (weights, optimizer, step, loss log).
Multi-GPU (or multi-process CPU) training runs under PyTorch's own launcher::

    torchrun --nproc_per_node=2 -m backend.cli train DATA --out RUN

which sets WORLD_SIZE/RANK; each process then samples its own batches and DDP
averages the gradients (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from backend.conventions import FPS, UNKNOWN_STYLE
from backend.models.checkpoint import load_checkpoint, save_checkpoint
from backend.motion.layout import MotionLayout
from backend.motion.normalizer import Normalizer
from backend.training.datasets import style_of
from backend.training.recipes import Batch, Recipe, make_recipe

log = logging.getLogger("choreo.train")


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str = "edge"
    steps: int = 20000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.02
    warmup_steps: int = 200
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    save_every: int = 1000
    device: str = "auto"
    resume: bool = False
    init: str | None = None  # a checkpoint (e.g. the bundled one) to fine-tune from
    progress: bool = True
    model_config: dict = field(default_factory=dict)  # overrides of the model's config
    loss_weights: dict = field(default_factory=dict)  # overrides of the model's loss weights


# ---------------------------------------------------------------- data


@dataclass
class TrainingData:
    """Every clip as normalisable channels plus its music features, frame-aligned."""

    motions: list[torch.Tensor]  # (T_i, C) raw layout channels
    music: list[torch.Tensor]  # (T_i, 35)
    names: list[str]

    def styles(self) -> list[str]:
        """Each clip's style label, from its name (``datasets.style_of``)."""
        return [style_of(name) for name in self.names]

    def save(self, path: Path) -> None:
        lengths = [m.shape[0] for m in self.motions]
        np.savez(path, motions=torch.cat(self.motions).numpy(), music=torch.cat(self.music).numpy(),
                 lengths=np.array(lengths), names=np.array(self.names))

    @classmethod
    def load(cls, path: Path) -> "TrainingData":
        with np.load(path, allow_pickle=False) as d:
            splits = np.cumsum(d["lengths"])[:-1]
            motions = [torch.from_numpy(a) for a in np.split(d["motions"], splits)]
            music = [torch.from_numpy(a) for a in np.split(d["music"], splits)]
            return cls(motions, music, [str(n) for n in d["names"]])


def prepare_training_data(data_dir: Path, layout: MotionLayout, min_frames: int) -> TrainingData:
    """Load a dataset folder (AIST++, BVH + audio, or our npz) and extract music features."""
    from backend.motion.contacts import contact_labels
    from backend.motion.kinematics import forward_kinematics_np
    from backend.motion.rotations import np_ as rot
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
    from backend.training.datasets import load_dance_folder

    motions, music, names = [], [], []
    for item in load_dance_folder(Path(data_dir)):
        clip = item.motion
        if abs(clip.fps - FPS) > 1e-3:
            raise ValueError(f"{item.name}: motion is {clip.fps} fps, training expects {FPS}")
        features = analyse_music(decode_audio(item.audio_path, FEATURE_SAMPLE_RATE)).features
        n = min(clip.num_frames, features.shape[0])
        if n < min_frames:
            log.warning("skipping %s: %d frames is shorter than the %d-frame window", item.name, n, min_frames)
            continue
        if tuple(clip.contact_names) == layout.contact_names:
            contacts = clip.contacts[:n]
        else:  # labels for this layout's joints, from joint speed
            positions, _ = forward_kinematics_np(rot.quaternion_to_matrix(clip.rotations[:n]), clip.root_translation[:n])
            contacts = contact_labels(positions, layout.contact_joints, fps=clip.fps)
        motions.append(layout.from_quaternions(clip.rotations[:n], clip.root_translation[:n], contacts))
        music.append(torch.tensor(features[:n], dtype=torch.float32))
        names.append(item.name)
    if not motions:
        raise ValueError(f"{data_dir}: no usable clips of at least {min_frames} frames")
    return TrainingData(motions, music, names)


def sample_windows(data: TrainingData, batch: int, window: int,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random windows (motion, music) and their clips' indices, clips chosen in
    proportion to how many windows they hold."""
    weights = torch.tensor([m.shape[0] - window + 1 for m in data.motions], dtype=torch.float)
    clips = torch.multinomial(weights, batch, replacement=True, generator=gen)
    xs, cs = [], []
    for c in clips.tolist():
        start = int(torch.randint(0, data.motions[c].shape[0] - window + 1, (1,), generator=gen))
        xs.append(data.motions[c][start:start + window])
        cs.append(data.music[c][start:start + window])
    return torch.stack(xs), torch.stack(cs), clips


# ---------------------------------------------------------------- loop


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.model`` on ``cfg.data``; returns the resumable checkpoint's path."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device(_device(cfg.device, distributed))
    rank, world = 0, 1
    if distributed:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    is_main = rank == 0
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)

    run = _start(cfg, ckpt_path, device, out, is_main, distributed)
    model, ema, optimizer, step, loss_log = run.model, run.ema, run.optimizer, run.step, run.loss_log
    net = DistributedDataParallel(model) if distributed else model
    denorm = run.normalizer.denormalize
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + step)
    per_rank_batch = max(1, cfg.batch_size // world)

    bar = _progress(cfg, step) if is_main else None
    started = time.time()
    while step < cfg.steps:
        motion, music, clips = sample_windows(run.data, per_rank_batch, run.recipe.window_frames, gen)
        batch = Batch(motion=motion.to(device), music=music.to(device),
                      style=run.style_index[clips].to(device), denormalize=denorm)
        losses = run.recipe.losses(net, batch, gen)

        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        _update_ema(ema, model, cfg.ema_decay if step > cfg.warmup_steps else 0.0)
        step += 1

        if is_main and (step % cfg.log_every == 0 or step == cfg.steps):
            entry = {"step": step, "seconds": round(time.time() - started, 1),
                     **{k: round(v.item(), 6) for k, v in losses.items()}}
            loss_log.append(entry)
            with open(out / "loss_log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
            if bar is not None:
                bar.set_postfix(loss=f"{entry['total']:.4f}")
        if bar is not None:
            bar.update(1)
        if is_main and (step % cfg.save_every == 0 or step == cfg.steps):
            save_checkpoint(ckpt_path, {
                "model": cfg.model, "config": run.recipe.config(), "normalizer": run.normalizer.state_dict(),
                "ema": ema.state_dict(), "weights": model.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "train_args": _plain(asdict(cfg)), "loss_log": loss_log,
                "world_size": world, **({"init": run.init_note} if run.init_note else {}),
            })
    if bar is not None:
        bar.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return ckpt_path


@dataclass
class _Run:
    """Everything the loop needs, whether the run starts fresh, resumes, or fine-tunes."""

    recipe: Recipe
    data: TrainingData
    normalizer: Normalizer
    style_index: torch.Tensor
    model: torch.nn.Module
    ema: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    loss_log: list = field(default_factory=list)
    init_note: dict = field(default_factory=dict)


def _start(cfg: TrainConfig, ckpt_path: Path, device: torch.device, out: Path, is_main: bool,
           distributed: bool) -> _Run:
    """Build the recipe, data, normaliser and model: fresh, resumed from ``ckpt_path``, or
    initialised from ``cfg.init`` (fine-tuning keeps the network's shape and weights, but
    fits the normaliser and the style list to the new data, which is what it must learn)."""
    resume = load_checkpoint(ckpt_path) if cfg.resume and ckpt_path.exists() else None
    if resume is not None and resume.get("model", cfg.model) != cfg.model:
        raise ValueError(f"{ckpt_path} trains model {resume.get('model')!r}, not {cfg.model!r}")
    init = load_checkpoint(cfg.init) if cfg.init and resume is None else None
    if init is not None and init.get("model", cfg.model) != cfg.model:
        raise ValueError(f"{cfg.init} holds model {init.get('model')!r}, not {cfg.model!r}")
    stored = resume["config"] if resume else {k: v for k, v in (init or {}).get("config", {}).items()
                                             if k not in ("styles", "motion_channels", "music_channels")}
    recipe = make_recipe(cfg.model, {**cfg.model_config, **stored,
                                     **({"loss_weights": cfg.loss_weights} if cfg.loss_weights else {})})
    data = _prepared_data(cfg, recipe.layout, recipe.window_frames, out, is_main, distributed)
    normalizer = (Normalizer.from_state_dict(resume["normalizer"]) if resume
                  else Normalizer.fit(torch.cat(data.motions), recipe.layout))
    data.motions = [normalizer.normalize(m) for m in data.motions]
    clip_styles = data.styles()
    styles = tuple(resume["config"].get("styles", ())) if resume else ()
    styles = styles or (UNKNOWN_STYLE, *sorted(set(clip_styles) - {UNKNOWN_STYLE}))
    style_index = torch.tensor([styles.index(s) if s in styles else 0 for s in clip_styles])

    model = recipe.build(styles).to(device)
    init_note = _load_matching(model, init["ema"], str(cfg.init)) if init is not None else {}
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = _Run(recipe, data, normalizer, style_index, model, ema, optimizer, init_note=init_note)
    if resume:
        model.load_state_dict(resume["weights"])
        ema.load_state_dict(resume["ema"])
        optimizer.load_state_dict(resume["optimizer"])
        run.step, run.loss_log = int(resume["step"]), list(resume.get("loss_log", []))
        run.init_note = resume.get("init", {})
    return run


def _load_matching(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> dict:
    """Copy every tensor of ``weights`` whose name and shape the model shares (a style
    table of another length is left as built); returns what was taken, for the checkpoint."""
    own = model.state_dict()
    taken = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    own.update({k: v.to(own[k].dtype) for k, v in taken.items()})
    model.load_state_dict(own)
    skipped = sorted(set(own) - set(taken))
    if skipped:
        log.info("initialised from %s except %s", source, ", ".join(skipped))
    return {"from": source, "tensors": len(taken), "left_as_built": skipped}


def _prepared_data(cfg: TrainConfig, layout: MotionLayout, window: int, out: Path,
                   is_main: bool, distributed: bool) -> TrainingData:
    """Music features are the slow part: extract once, cache beside the run, share across ranks."""
    listing = sorted(p.name + str(p.stat().st_size) for p in Path(cfg.data).rglob("*") if p.is_file())
    key = hashlib.sha256(f"{layout.name} {window} {FPS}\n{chr(10).join(listing)}".encode()).hexdigest()[:16]
    cache = out / f"prepared_{key}.npz"
    if is_main and not cache.exists():
        prepare_training_data(Path(cfg.data), layout, window).save(cache)
    if distributed:
        dist.barrier()
    return TrainingData.load(cache)


def _device(device: str, distributed: bool) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if distributed else "cuda"
    return "cpu"


def _lr(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)


def _progress(cfg: TrainConfig, step: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)


def _plain(value):
    """Make train args safe for weights_only loading (paths -> str)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
