"""The one training loop, shared by every policy.

AdamW with warm-up and a cosine schedule, an EMA copy of the weights for evaluation, periodic
evaluation (the score history that gives the paper's max and average-of-last-10 metrics),
periodic resumable checkpoints (and one where Ctrl-C or SIGTERM stops a step: ``dpbench.stopping``), and a
progress bar.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dpbench.bars import terminal_bar
from dpbench.config import TrainConfig
from dpbench.contention import ContentionMeter
from dpbench.contract import policy_label
from dpbench.data.sampler import SequenceSampler
from dpbench.errors import DpbenchError, first_line
from dpbench.host import cpu_capability, cpu_family, cpu_kind, device_name
from dpbench.policy import Policy
from dpbench.stopping import StepGuard

RESUME_FILE = "train_state.pt"
BEST_FILE = "best.safetensors"  # the evaluated weights at the history's best score (first of equals)


class EMA:
    """Exponential moving average of weights with the warm-up decay of Diffusion Policy:
    decay = 1 - (1 + step)^-power, capped at max_decay."""

    def __init__(self, model: torch.nn.Module, power: float, max_decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power, self.max_decay = power, max_decay
        self.step = 0

    def decay(self) -> float:
        """The current decay: 1 - (1 + step)^-power, clipped to [0, max_decay]."""
        return min(self.max_decay, max(0.0, 1 - (1 + self.step) ** -self.power))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One EMA step after an optimizer step: each averaged parameter moves to d * ema + (1 - d) * param with the
        current decay d; buffers (e.g. the normalizers) are copied as they are."""
        d = self.decay()
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)
        self.step += 1


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """The LambdaLR factor of the peak learning rate at each step: a linear warm-up (step + 1) / warmup_steps, then 1
    (``lr_schedule='constant'``) or a cosine from 1 to 0 at ``steps`` (the cosine of diffusers'
    get_cosine_schedule_with_warmup, the original's scheduler, whose warm-up starts at 0)."""

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / max(1, cfg.warmup_steps)
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass
class TrainState:
    """The training loop's resumable progress: optimizer steps done, training wall seconds (evaluations excluded), the
    evaluation history (step, train_seconds, loss, train_loss and the evaluation's fields), the loss accumulated
    since the last evaluation, and the best evaluation's (weights, step, score)."""

    step: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    # The training loss summed since the last evaluation; each history entry's ``train_loss`` is its mean.
    loss_sum: float = 0.0
    loss_count: int = 0
    best: tuple[dict[str, torch.Tensor], int, float] | None = None  # (weights, step, score) of the best evaluation
    # ContentionMeter.totals() by name, of every process that ran this cell up to the checkpoint
    contention: dict[str, dict[str, float]] = field(default_factory=dict)
    # Every process that trained this cell, in order: the step it started from, its CPU kind and device
    # (``process_entry``); a record's wall times cover them all, so more than one kind means they mix kinds.
    processes: list[dict[str, Any]] = field(default_factory=list)
    last_loss: float = math.nan  # the newest step's training loss (a history entry's ``loss``)
    # True in a checkpoint written just before this step's evaluation: a run resumed from it evaluates first
    eval_pending: bool = False


def process_entry(step: int, device: torch.device) -> dict[str, Any]:
    """One ``TrainState.processes`` entry: the step this process started from, its CPU kind (``dpbench.host.cpu_kind``:
    "AVX2 23/1") and its device ("cpu" or the CUDA device's name)."""
    hardware = {"cpu_capability": cpu_capability(), "cpu_family": cpu_family()}
    return {"from_step": step, "cpu_kind": cpu_kind(hardware), "device": device_name(device)}


def save_best(path: Path, tensors: dict[str, torch.Tensor], step: int, score: float) -> None:
    """The evaluated weights, written atomically with their step and score."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"step": str(step), "score": repr(float(score))})
    os.replace(tmp, path)


def load_best(path: Path) -> tuple[dict[str, torch.Tensor], int, float] | None:
    """(weights, step, score) of ``best.safetensors``, or None when there is none: as training writes it
    (``save_best``), or as a finished run rewrites it, a full checkpoint (``selection.export_best``)."""
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "dpbench" in meta:
        meta = json.loads(meta["dpbench"])
    return load_file(str(path)), int(meta["step"]), float(meta["score"])


def _to_tensors(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch.items()}


def make_optimizer(policy: Policy, cfg: TrainConfig) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``policy.param_groups`` with the warm-up + cosine factor of ``lr_lambda``."""
    optimizer = torch.optim.AdamW(policy.param_groups(cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))


def train_step(
    policy: Policy,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMA | None,
    cfg: TrainConfig,
    step: int,
) -> float:
    """One optimizer step on ``batch``: loss, backward, optional clipping, AdamW, schedule, EMA. Returns the loss.

    ``step`` (steps done before this one) only names the step in errors. Raises DpbenchError when
    ``compute_loss`` breaks the contract (not a scalar tensor) or the loss is not finite."""
    loss = policy.compute_loss(batch)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise DpbenchError(
            f"policy {policy_label(policy)} broke the contract: compute_loss must return a scalar tensor, "
            f"got {type(loss).__name__} {tuple(getattr(loss, 'shape', ()))}"
        )
    loss_value = float(loss.item())  # the step's one host sync: the finiteness check and the loss log
    if not math.isfinite(loss_value) and step == 0:  # no update has run yet: the learning rate cannot be the cause
        raise DpbenchError(
            f"policy {policy_label(policy)}'s compute_loss returned {loss_value} at the first step, before any "
            "update: check its loss computation and the dataset for NaN or inf values"
        )
    if not math.isfinite(loss_value):
        raise DpbenchError(
            f"training diverged: the loss became {loss_value} at step {step + 1}; "
            "lower train.lr or check the dataset for outliers"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
    optimizer.step()
    scheduler.step()
    if ema is not None:
        ema.update(policy)
    return loss_value


def train(
    policy: Policy,
    sampler: SequenceSampler,
    cfg: TrainConfig,
    workdir: Path,
    seed: int,
    evaluate_fn: Callable[[Policy, int], dict[str, Any]] | None = None,
    progress: bool = True,
    desc: str = "train",
    make_bar: Callable[..., Any] = terminal_bar,
    meters: Mapping[str, ContentionMeter] | None = None,
) -> tuple[Policy, TrainState]:
    """Train ``policy`` in place; resumes from ``workdir/train_state.pt`` when present.

    ``make_bar`` builds the progress reporter (tqdm's signature); a sweep worker passes one that
    reports to its driver instead of drawing. ``meters`` (the caller's contention meters, by name)
    travel in the resume checkpoint: on a resume each gets the stopped processes' sums added, so
    a record's contention covers the whole cell, not its last process. Returns the policy to
    evaluate (the EMA copy when enabled) and the final state.
    """
    meters = meters or {}
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer, scheduler = make_optimizer(policy, cfg)
    ema = EMA(policy, cfg.ema_power, cfg.ema_max_decay) if cfg.ema else None
    state = TrainState()

    resume, best_path = workdir / RESUME_FILE, workdir / BEST_FILE
    # writes a killed process left unfinished (the cell's lock keeps out live writers)
    for partial in [*workdir.glob(RESUME_FILE + ".tmp*"), *workdir.glob(BEST_FILE + ".tmp*")]:
        partial.unlink(missing_ok=True)
    if resume.exists():
        state = _load_resume(resume, policy, optimizer, scheduler, ema, rng)
        for name, meter in meters.items():
            meter.add(state.contention.get(name, {}))
    state.processes.append(process_entry(state.step, policy.device))
    # The best evaluation's weights travel in the resume checkpoint too: a best file written after
    # that checkpoint belongs to evaluations the resumed run replays, so the checkpoint's copy wins.
    if state.best is not None:
        save_best(best_path, *state.best)
    elif best_path.exists():
        best_path.unlink()
    best_score = max((h["score"] for h in state.history if "score" in h), default=-math.inf)

    def eval_policy() -> Policy:
        return ema.model if ema is not None else policy

    policy.train()
    bar = make_bar(
        total=cfg.steps,
        initial=state.step,
        desc=desc,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    t_last = time.perf_counter()

    def checkpoint(eval_pending: bool = False) -> None:
        nonlocal t_last
        state.train_seconds += time.perf_counter() - t_last
        state.contention = {name: meter.totals() for name, meter in meters.items()}
        state.eval_pending = eval_pending
        _save_resume(resume, policy, optimizer, scheduler, ema, rng, state)
        t_last = time.perf_counter()  # the write is not training: a resumed run's train_seconds match

    def evaluate() -> None:
        nonlocal t_last, best_score
        assert evaluate_fn is not None
        now = time.perf_counter()
        state.train_seconds += now - t_last
        entry = {
            "step": state.step,
            "train_seconds": round(state.train_seconds, 2),
            "loss": state.last_loss,
            "train_loss": state.loss_sum / max(1, state.loss_count),
        }
        state.loss_sum, state.loss_count = 0.0, 0
        entry.update(evaluate_fn(eval_policy(), state.step))
        bar.unpause()  # the evaluation's minutes are not training's: its rate restarts from here
        state.history.append(entry)
        if entry.get("score", -math.inf) > best_score:
            best_score = entry["score"]
            weights = {k: v.detach().cpu().contiguous().clone() for k, v in eval_policy().state_dict().items()}
            state.best = (weights, state.step, best_score)
            save_best(best_path, *state.best)
        bar.write(
            f"[{desc}] step {state.step}: score {entry.get('score', float('nan')):.3f} "
            f"success {entry.get('success_rate', float('nan')):.2f} ({state.train_seconds / 60:.1f} train-min)"
        )
        policy.train()
        t_last = time.perf_counter()

    try:
        if state.eval_pending and evaluate_fn is not None:
            # stopped during this step's evaluation: run it now, then save what it added
            evaluate()
            checkpoint()
        state.eval_pending = False  # without an evaluator, no evaluation runs: that one included
        with StepGuard() as guard:  # a stop during a step waits for its end and checkpoints there
            while state.step < cfg.steps:
                with guard.step():  # its progress report too (a worker's Queue.put), up to the check below
                    batch = _to_tensors(sampler.sample(cfg.batch_size, rng), policy.device)
                    state.last_loss = train_step(policy, batch, optimizer, scheduler, ema, cfg, state.step)
                    state.loss_sum += state.last_loss
                    state.loss_count += 1
                    state.step += 1
                    bar.update(1)
                    if state.step % 20 == 0:
                        bar.set_postfix(loss=f"{state.last_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")

                at_end = state.step == cfg.steps
                periodic = state.step >= cfg.eval_after and state.step % cfg.eval_every == 0
                save = state.step % cfg.checkpoint_every == 0 or at_end
                evaluating = evaluate_fn is not None and (periodic or at_end)
                if guard.held is not None:  # stopped in the step: keep it, and its evaluation still to come
                    with guard.step():  # the write too: a pool's second SIGTERM waits for it
                        checkpoint(eval_pending=evaluating)
                    guard.act()
                if evaluating:
                    if save:  # before the evaluation as well: a stop during it (minutes on robomimic) loses only it
                        checkpoint(eval_pending=True)
                    evaluate()
                if save:
                    checkpoint()
    finally:
        bar.close()
    return eval_policy(), state


def _gpu(policy: Any) -> torch.device | None:
    """The CUDA device ``policy`` runs on, else None (a CPU run, or a bare module without ``device``)."""
    device = getattr(policy, "device", None)
    return device if isinstance(device, torch.device) and device.type == "cuda" else None


def _save_resume(path: Path, policy, optimizer, scheduler, ema, rng, state: TrainState) -> None:
    payload = {
        "policy": policy.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.model.state_dict() if ema is not None else None,
        "ema_step": ema.step if ema is not None else 0,
        "torch_rng": torch.get_rng_state(),
        # a GPU run draws its noise and crops from the device's generator: without it a resume is not bit-identical
        "cuda_rng": torch.cuda.get_rng_state(gpu) if (gpu := _gpu(policy)) is not None else None,
        "best": state.best[0] if state.best is not None else None,
        "best_meta": json.dumps(state.best[1:] if state.best is not None else None),
        "meta": json.dumps(
            {
                "rng": rng.bit_generator.state,
                "step": state.step,
                "train_seconds": state.train_seconds,
                "history": state.history,
                "loss_sum": state.loss_sum,
                "loss_count": state.loss_count,
                "contention": state.contention,
                "processes": state.processes,
                "last_loss": state.last_loss,
                "eval_pending": state.eval_pending,
            }
        ),
    }
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def checkpoint_progress(path: Path) -> tuple[int, bool] | None:
    """(training step, evaluation pending) of a resume checkpoint (``RESUME_FILE``), read without building a policy:
    the file is memory-mapped and only its metadata parsed (0.15 s for an 85 MB one on a 2-core Zen 3). Pending: it
    was written just before that step's evaluation, which the resumed run does first. None when the file is missing
    or unreadable; the run that resumes from it says why."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        meta = json.loads(payload["meta"])
        return int(meta["step"]), bool(meta.get("eval_pending", False))
    except Exception:  # any unreadable file is "unknown" here; resuming from it reports the cause
        return None


def _load_resume(path: Path, policy, optimizer, scheduler, ema, rng) -> TrainState:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        policy.load_state_dict(payload["policy"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        if ema is not None and payload["ema"] is not None:
            ema.model.load_state_dict(payload["ema"])
            ema.step = int(payload["ema_step"])
        torch.set_rng_state(payload["torch_rng"])
        if payload.get("cuda_rng") is not None and (gpu := _gpu(policy)) is not None:  # absent before 2026-12-07
            torch.cuda.set_rng_state(payload["cuda_rng"], gpu)
        meta = json.loads(payload["meta"])
    except Exception as exc:
        raise DpbenchError(
            f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: {first_line(exc)[:200]}); "
            "delete it to start the seed over"
        ) from None
    rng.bit_generator.state = meta["rng"]
    best_meta = json.loads(payload.get("best_meta", "null"))
    best = (payload["best"], int(best_meta[0]), float(best_meta[1])) if best_meta is not None else None
    return TrainState(
        step=meta["step"],
        train_seconds=meta["train_seconds"],
        history=meta["history"],
        loss_sum=meta.get("loss_sum", 0.0),
        loss_count=meta.get("loss_count", 0),
        best=best,
        contention=meta.get("contention", {}),  # absent from checkpoints older than 2026-12-02
        # absent before 2026-12-04: the processes that trained up to this checkpoint are not known
        processes=meta.get("processes") or [{"from_step": 0, "cpu_kind": None, "device": None}],
        last_loss=meta.get("last_loss", math.nan),  # absent before 2026-12-06, as is eval_pending
        eval_pending=meta.get("eval_pending", False),
    )
