"""One benchmark cell: train a policy on a task for one seed, evaluate it under the paper's
protocol along the way, and write its result record. Finished cells are skipped and unfinished
ones resume from their last checkpoint, so an interrupted ``dpbench run`` loses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpbench.bars import terminal_bar
from dpbench.checkpoint import save_policy
from dpbench.config import build_configs, config_to_dict
from dpbench.contention import ContentionMeter
from dpbench.data.normalization import normalization_for
from dpbench.data.registry import DatasetRef, data_variant, portable_path, resolve_dataset, scripted_name
from dpbench.data.sampler import SequenceSampler, split_episodes
from dpbench.envs.io import ObsMode
from dpbench.errors import DpbenchError
from dpbench.evaluate import EvalResult, evaluate
from dpbench.host import device_name, resolve_device
from dpbench.metrics import summarize_history
from dpbench.policies import get_policy_class, policy_source, provenance, source_digest
from dpbench.preflight import check_actions_fit, check_configs, check_dataset_fits, preflight
from dpbench.records import (
    DataSplit,
    FinalScores,
    Record,
    WallTimes,
    config_hash,
    make_cell_id,
    policy_slug,
    record_of_same_demos,
    record_policy,
    split_cell_id,
    write_json_atomic,
)
from dpbench.selection import export_best, heldout_evaluation
from dpbench.tasks import Task, get_task
from dpbench.train import train

LAST_EVAL_FILE = "last_eval.json"  # in a cell's work dir: its newest evaluation's full result and step


@dataclass
class CellSpec:
    """One benchmark cell as a user names it: policy, env and training seed; preset, obs mode and dataset
    (None: the task's defaults); ``--set`` overrides; the results dir; and run options (video, device, progress
    bars, the command line to record)."""

    policy: str
    env: str
    seed: int
    preset: str = "quick"
    obs: str | None = None
    dataset: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    out: Path = Path("results")
    video: bool = False
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", or "auto"; not part of the config hash
    progress: bool = True
    command: str = ""


@dataclass
class PreparedCell:
    """A cell resolved by ``prepare``: its policy class and configs, the loaded dataset, the config hash and the cell
    id ``<env>-<obs>__<policy>__<dataset kind>-<hash>__<preset>-<config hash>__seed<N>``."""

    spec: CellSpec
    obs: str
    policy_cls: type
    pcfg: Any
    tcfg: Any
    data: DatasetRef
    cell_id: str
    chash: str
    action_mode: str | None = None  # robomimic tasks: abs | delta, from the dataset's env_args

    @property
    def variant(self) -> str:
        """The demonstration variant (ph | mh) the dataset stands in for (``DatasetRef.variant``)."""
        return self.data.variant

    @property
    def config(self) -> CellConfig:
        """What the cell trains, as ``prepare`` resolved it for this dataset's variant."""
        return CellConfig(self.obs, self.policy_cls, self.pcfg, self.tcfg, self.chash, self.variant)

    @property
    def task(self) -> Task:
        """The cell's task as it evaluates a policy trained on this dataset's variant (its horizon)."""
        return get_task(self.spec.env).for_variant(self.variant)

    @property
    def mode(self) -> ObsMode:
        """The task's ObsMode for this cell's obs mode and the dataset's action mode."""
        return self.task.obs_mode(self.obs, self.action_mode)

    @property
    def own_record_path(self) -> Path:
        """OUT/records/<cell_id>.json: where this cell writes its record."""
        return self.spec.out / "records" / f"{self.cell_id}.json"

    @property
    def record_path(self) -> Path:
        """The finished cell's record: ``own_record_path``; where that is absent but OUT holds a record of this
        cell made from the same scripted demonstrations collected on another kind of CPU (their hash differs in
        the last bits; ``records.data_identity``), that record: the cell is done. Never written to."""
        exact = self.own_record_path
        if exact.exists() or not self.data.kind.startswith("scripted"):
            return exact
        store = self.data.store
        same = {"kind": self.data.kind, "path": portable_path(self.data.path), "episodes": store.n_episodes}
        return (
            record_of_same_demos(exact, self.data.kind, {**same, "steps": store.n_steps, "keys": sorted(store.data)})
            or exact
        )

    @property
    def lock_dir(self) -> Path:
        """Where the cell's lock lives: its workdir; for scripted demos a folder named by their recipe instead of
        their hash (OUT/work/.locks/...), so one cell on two collections of the same demos (two kinds of CPU
        sharing OUT) never trains twice at once."""
        if not self.data.kind.startswith("scripted"):
            return self.workdir
        head, _, tail = split_cell_id(self.cell_id)
        recipe = f"{self.data.kind}-{self.data.path.stem}-{self.data.store.n_steps}"
        return self.spec.out / "work" / ".locks" / f"{head}__{recipe}__{tail}"

    @property
    def workdir(self) -> Path:
        """OUT/work/<cell_id>: the cell's checkpoints and resume state."""
        return self.spec.out / "work" / self.cell_id


@dataclass(frozen=True)
class CellConfig:
    """What a cell trains, resolved without its dataset: the obs mode, policy class, configs and config hash."""

    obs: str
    policy_cls: type
    pcfg: Any
    tcfg: Any
    chash: str
    variant: str = "ph"  # the demo variant the training length was scaled for (presets.length_factors)


def resolve_config(spec: CellSpec, variant: str | None = None) -> CellConfig:
    """Resolve a cell's names, preset and overrides (no data is read); fail early on anything a user can fix.
    ``variant`` (ph | mh) scales the training length; None: the one the dataset's name implies (a file by
    path is ph until ``prepare`` reads it)."""
    if spec.seed < 0:
        raise DpbenchError(f"seed must be >= 0, got {spec.seed}")
    task = get_task(spec.env)
    obs = spec.obs or task.default_obs
    mode = task.obs_mode(obs)
    policy_cls = get_policy_class(spec.policy)
    variant = variant or data_variant(spec.dataset or "")
    pcfg, tcfg = build_configs(
        policy_cls, spec.preset, spec.overrides, image_obs=bool(mode.spec.image_keys), task=task.name, variant=variant
    )
    check_configs(policy_cls, mode.spec, pcfg, tcfg, spec.overrides, task.name)  # before any data is read
    identity = {"policy": config_to_dict(pcfg), "train": config_to_dict(tcfg), "obs": obs}
    source = source_digest(policy_source(policy_cls))
    if source is not None:  # a policy outside dpbench: its code is part of what the cell trains
        identity["policy_source"] = source
    chash = config_hash(identity)
    return CellConfig(obs, policy_cls, pcfg, tcfg, chash, variant)


def policy_action_mode(task: Task, policy_cls: type) -> str | None:
    """The action space ``policy_cls`` trains in on ``task`` without --dataset (its ``default_action_mode``), or None
    where the task has one action space (Push-T)."""
    return policy_cls.default_action_mode if policy_cls.default_action_mode in task.action_modes else None


def dataset_name(spec: CellSpec, policy_cls: type) -> str | None:
    """The ``--dataset`` a cell trains on: as given; else, on a task with several action spaces (robomimic), the
    scripted demos in the policy's ``default_action_mode`` (``scripted-delta`` for the paper's baselines, which
    train in delta actions); else None, the task's default (Push-T: human, or scripted without it)."""
    task = get_task(spec.env)
    mode = policy_action_mode(task, policy_cls)
    if spec.dataset is not None or mode is None or mode == task.action_modes[0]:  # given, or the task's default
        return spec.dataset
    return scripted_name("ph", mode)


def prepare(
    spec: CellSpec, data: DatasetRef | None = None, collect: bool = True, config: CellConfig | None = None
) -> PreparedCell:
    """Resolve names, configs (``config``: already resolved by ``resolve_config``) and the dataset (collected on
    first use, or with ``collect=False`` DatasetMissing); fail early on anything a user can fix."""
    cfg = config or resolve_config(spec)
    task = get_task(spec.env)
    if data is None:
        keys = task.obs_mode(cfg.obs).dataset_keys
        data = resolve_dataset(
            task.name, dataset_name(spec, cfg.policy_cls), keys, progress=spec.progress, collect=collect
        )
    action_mode = task.dataset_action_mode(data.store.attrs)
    try:
        task.for_variant(data.variant)  # its horizon exists: no mh on a ph-only task
    except DpbenchError as exc:
        raise DpbenchError(
            f"dataset {portable_path(data.path)} reads as {data.variant} demonstrations (by its name, dpbench's "
            f"env_args, or robomimic's mh filter keys mask/better, okay, worse): {exc}"
        ) from None
    if data.variant != cfg.variant:  # a file by path that reads as mh: its training length follows
        cfg = resolve_config(spec, variant=data.variant)
    data_part = f"{data.kind}-{data.store.content_hash()[:8]}"
    cell_id = make_cell_id(
        task.name, cfg.obs, policy_slug(spec.policy, cfg.policy_cls), data_part, spec.preset, cfg.chash, spec.seed
    )
    return PreparedCell(spec, cfg.obs, cfg.policy_cls, cfg.pcfg, cfg.tcfg, data, cell_id, cfg.chash, action_mode)


def run_cell(cell: PreparedCell, make_bar: Callable[..., Any] = terminal_bar) -> dict[str, Any]:
    """Train + evaluate one seed and write its record; returns the record (existing or new).
    ``make_bar`` is the training progress reporter (see ``train``)."""
    if cell.record_path.exists():  # its own, or the same cell on another collection of the same demos
        return json.loads(cell.record_path.read_text())
    spec, task = cell.spec, cell.task
    mode = cell.mode
    t_start = time.perf_counter()

    store = cell.data.store
    tcfg = cell.tcfg
    cap = task.max_train_episodes(cell.data.kind, tcfg.train_episodes, tcfg.max_train_episodes)
    train_eps, val_eps = split_episodes(store.n_episodes, tcfg.val_ratio, tcfg.split_seed, cap)
    data = store.data
    agreement = task.verify_dataset(cell.data.path, mode.dataset_keys) if task.verify_dataset else None
    if agreement is not None:
        data = agreement.apply(store.data)
        if agreement.columns:
            print(
                f"[dpbench] {cell.data.path.name}: stored in the {agreement.layout}; "
                f"mapped {', '.join(agreement.columns)} to the env's order"
            )
    arrays = mode.from_dataset(data)
    actions = store.data["action"]
    where = f"{cell.data.path}: "
    check_actions_fit(where, cell.spec.env, cell.action_mode, mode.env_action_dim, actions)
    arrays["action"] = mode.encode_action(actions)
    check_dataset_fits(where, cell.spec.env, arrays, mode.spec, {k: data[k] for k in mode.dataset_keys if k in data})

    torch.manual_seed(spec.seed)
    policy = cell.policy_cls(mode.spec, cell.pcfg)
    train_mask = np.zeros(store.n_steps, dtype=bool)
    for ep in train_eps:
        train_mask[store.episode_starts[ep] : store.episode_ends[ep]] = True
    policy.normalization = normalization_for(tcfg.normalizer, task.name, cell.action_mode, mode.spec.action_dim)
    policy.fit_statistics({k: v[train_mask] for k, v in arrays.items()})
    policy.to(resolve_device(spec.device))
    preflight(policy, arrays)
    sampler = SequenceSampler.build(
        store, arrays, train_eps, policy.horizon, policy.n_obs_steps, *policy.sequence_padding()
    )

    extra_eval_s = 0.0  # evaluations outside the history: a final one (videos, no saved result), the held-out one
    last_eval: list[dict[str, Any] | None] = [None]  # the newest evaluation's full result, for the record
    last_eval_file = cell.workdir / LAST_EVAL_FILE
    # Whether other jobs shared the cores while this cell trained and evaluated (records' wall.contention).
    train_meter, eval_meter = ContentionMeter(), ContentionMeter()

    desc = f"{spec.policy}/{task.name} seed {spec.seed}"

    def evaluate_fn(p, step: int) -> dict[str, Any]:
        train_meter.stop()
        eval_meter.start()
        n, progress = cell.tcfg.eval_episodes, spec.progress
        res = evaluate(p, task, mode, n_episodes=n, sampling_seed=spec.seed, progress=progress, desc=f"{desc} eval")
        eval_meter.stop()
        train_meter.start()
        last_eval[0] = res.to_dict()
        # beside the resume checkpoint, which keeps only the history's scores: a run stopped after its last
        # evaluation then records it without running it again
        write_json_atomic(last_eval_file, {"step": step, "result": last_eval[0]})
        return {
            "score": res.score,
            "success_rate": res.success_rate,
            "eval_seconds": round(res.wall_s, 2),
            "chunk_latency_ms": round(res.chunk_latency_ms, 3),
        }

    train_meter.start()
    eval_policy, state = train(
        policy,
        sampler,
        cell.tcfg,
        cell.workdir,
        spec.seed,
        evaluate_fn,
        spec.progress,
        desc,
        make_bar,
        meters={"train": train_meter, "eval": eval_meter},
    )
    train_meter.stop()

    final = last_eval[0] if last_eval[0] is not None else _saved_last_eval(last_eval_file, state.history)
    if final is None or spec.video:  # resumed after the last evaluation without its saved result, or videos asked
        res = evaluate(
            eval_policy,
            task,
            mode,
            n_episodes=cell.tcfg.eval_episodes,
            sampling_seed=spec.seed,
            video_path=(cell.workdir / "rollouts.gif") if spec.video else None,
        )
        final, extra_eval_s = res.to_dict(), extra_eval_s + res.wall_s
    ckpt_meta = {
        "env": task.name,
        "obs": cell.obs,
        "action_mode": cell.action_mode,
        "dataset": cell.data.identity(),  # with its variant: the horizon dpbench eval uses
        "policy_source": policy_source(cell.policy_cls),
    }
    selected = export_best(cell, eval_policy, state.history, ckpt_meta)
    heldout = heldout_evaluation(cell, *selected) if selected is not None else None
    if heldout is not None:
        extra_eval_s += heldout["wall_s"]
    # every periodic evaluation of the run, those of a process that was stopped and resumed included
    eval_s = sum(h.get("eval_seconds", 0.0) for h in state.history) + extra_eval_s
    ckpt = save_policy(eval_policy, cell.workdir / "policy.safetensors", {**ckpt_meta, "step": state.step})
    summary = summarize_history(state.history, "score")
    success = summarize_history(state.history, "success_rate")
    record = Record(  # the record schema and each field's meaning: dpbench.records
        cell_id=cell.cell_id,
        command=spec.command,
        policy=record_policy(spec.policy, cell.policy_cls),
        env=task.name,
        obs=cell.obs,
        action_mode=cell.action_mode,
        seed=spec.seed,
        preset=spec.preset,
        config_hash=cell.chash,
        policy_config=config_to_dict(cell.pcfg),
        train_config=config_to_dict(cell.tcfg),
        overrides=spec.overrides,
        dataset=cell.data.identity(),
        dataset_check=agreement.to_dict() if agreement is not None else None,
        data_split=DataSplit(
            split_seed=tcfg.split_seed,
            val_ratio=tcfg.val_ratio,
            max_train_episodes=cap,
            train_episodes=train_eps.tolist(),
            val_episodes=val_eps.tolist(),
        ),
        history=state.history,
        final=FinalScores(
            max=summary["max"],
            avg_last10=summary["avg_last10"],
            k_min_train_loss=summary["k_min_train_loss"],
            success_max=success["max"],
            success_avg_last10=success["avg_last10"],
            last_eval=final,
            heldout=heldout,
        ),
        wall=WallTimes(
            train_s=state.train_seconds,
            eval_s=eval_s,
            # a resumed cell: this process's time, or the work of all its processes if that is more
            total_s=max(time.perf_counter() - t_start, state.train_seconds + eval_s),
            contention_train=train_meter.summary(torch.get_num_threads()),
            contention_eval=eval_meter.summary(torch.get_num_threads()),
            processes=state.processes,
        ),
        checkpoint=ckpt.relative_to(spec.out).as_posix(),  # relative to the results dir
        **provenance(cell.policy_cls, device_name(policy.device)),
    ).to_dict()
    write_json_atomic(cell.own_record_path, record)
    return record


def _saved_last_eval(path: Path, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The full result of ``history``'s last evaluation as a stopped process saved it (``LAST_EVAL_FILE``), or
    None if that file is missing, unreadable, not an ``EvalResult``'s fields (an older dpbench's) or of another
    evaluation (work dirs before 2026-12-06 have none)."""
    try:
        saved = json.loads(path.read_text())
        result = saved["result"]
        complete = set(result) == {f.name for f in fields(EvalResult)}
        same = bool(history) and saved["step"] == history[-1]["step"] and result["score"] == history[-1]["score"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if complete and same else None
