"""The one evaluation loop: batched receding-horizon rollouts over a batch of envs.

All test episodes run side by side, each env seen through the task's observation mode (policy
observations out, policy actions in). Every env step, ``policy.select_action`` gets the batch's
observations ``(B, ...)`` and returns ``(B, D_a)``; the policy owns the T_o window and the queue
of T_a actions, and plans a chunk only when the queue is empty. The paper's protocol: the
episode score is its max reward; the task score is the mean over episodes (50 initial
conditions from seed 100000).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpbench.bars import terminal_bar
from dpbench.contract import check_step_actions
from dpbench.envs.io import ObsMode
from dpbench.host import available_memory_mb
from dpbench.metrics import mean_ci, wilson_ci
from dpbench.policy import Policy
from dpbench.tasks import Task
from dpbench.vector import EnvBatch, EnvMaker


@dataclass
class EvalResult:
    """One evaluation under the paper's protocol: the mean of the episodes' max rewards and the success rate, each with
    a 95% interval (normal approximation; Wilson for the success rate), the same for the episodes' final state,
    per-episode values, and timing. ``to_dict`` is what records store."""

    score: float  # mean over episodes of the episode's max reward
    score_ci95: tuple[float, float]
    success_rate: float  # fraction of episodes that reached the task's success condition
    success_ci95: tuple[float, float]
    n_episodes: int
    episode_steps: int  # the horizon: the most steps an episode may run (the task's registration, for its variant)
    episode_lengths: list[int]  # the steps each episode ran (to its success, or to the horizon)
    episode_scores: list[float]
    episode_success: list[bool]
    # Each episode's state at its end: Push-T's coverage of the goal (in [0, 1]; success needs > 0.95),
    # other tasks' last reward. The paper scores the max over the episode; the end state is what a user sees.
    final_mean: float
    final_ci95: tuple[float, float]
    episode_final: list[float]
    wall_s: float
    chunk_latency_ms: (
        float  # mean wall time of one batched chunk plan (a select_action call that called predict_action)
    )
    n_policy_calls: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def env_procs(task: Task) -> int:
    """The processes an evaluation's envs run in: one per torch thread where steps are costly
    (``task.parallel_eval``: robomimic), else 1 (this process)."""
    return torch.get_num_threads() if task.parallel_eval else 1


def make_env_batch(task: Task, mode: ObsMode, n_envs: int, render: bool = False) -> EnvBatch:
    """The test episodes' envs; tasks with costly steps spread them over one process per core (``env_procs``)."""
    kwargs = dict(mode.env_kwargs)
    if render:
        kwargs["render_mode"] = "rgb_array"
    return EnvBatch(EnvMaker(task.gym_id, kwargs, mode), n_envs, n_procs=env_procs(task))


def episodes_per_wave(mode: ObsMode, n: int, procs: int = 1, memory_share: float = 0.35) -> int:
    """How many test episodes run side by side: all of them, unless their envs would hold more than
    ``memory_share`` of the available memory (two evaluations may run at once). Over ``procs`` > 1 env worker
    processes each also costs ``mode.env_process_mb`` (robosuite, MuJoCo, torch: its first env's process); with
    one, the envs live in this process, whose own cost is already resident."""
    if not mode.env_memory_mb:
        return n
    workers = min(procs, n) if procs > 1 else 0
    share = memory_share * available_memory_mb() - workers * mode.env_process_mb
    return max(1, min(n, int(share / mode.env_memory_mb)))


def evaluate(
    policy: Policy,
    task: Task,
    mode: ObsMode,
    n_episodes: int | None = None,
    seed_start: int | None = None,
    sampling_seed: int = 0,
    video_path: Path | None = None,
    n_videos: int = 4,
    wave: int | None = None,
    progress: bool = False,
    desc: str = "evaluate",
) -> EvalResult:
    """Run ``n_episodes`` test episodes (seeds ``seed_start + i``) and return the paper's metrics.

    Episodes run side by side in waves of ``wave`` (default: all at once, or as many as fit in
    memory, ``episodes_per_wave``); the policy is reset before each wave. Each episode's sampling
    noise comes from its own generator, seeded from ``(sampling_seed, its test seed)``, so its
    score does not depend on the wave size, the env worker count or the episode count. Torch's
    global RNG is left as it was (training's draws do not depend on whether it evaluated). Float
    rounding is another matter: BLAS and oneDNN choose kernels by batch size, so another wave size
    can still move a few episodes' scores by float-level amounts (``benchmarks/check_waves.py``).
    ``progress``: a bar over the waves' env steps, named ``desc`` (``dpbench.bars.terminal_bar``: status lines in a
    log, where a robomimic evaluation is minutes of silence otherwise)."""
    n = n_episodes or task.n_test_episodes
    seed_start = task.test_seed_start if seed_start is None else seed_start
    wave = min(n, wave or episodes_per_wave(mode, n, env_procs(task)))
    t0 = time.perf_counter()
    venv = make_env_batch(task, mode, wave, render=video_path is not None)
    was_training = policy.training
    policy.eval()
    best, success, final = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n)
    lengths = np.zeros(n, dtype=int)
    frames: list[np.ndarray] = []
    latency, calls = 0.0, 0
    # Evaluation draws only from the policy's own per-episode generators; fork_rng also restores
    # torch's global RNG afterwards, so a policy that draws from it cannot shift training's draws.
    devices = [policy.device] if policy.device.type == "cuda" else []
    steps = -(-n // wave) * task.max_episode_steps  # every wave to the horizon
    bar = terminal_bar(total=steps, desc=desc, unit="step", leave=False, disable=not progress)
    try:
        with torch.random.fork_rng(devices=devices):
            for first in range(0, n, wave):
                m = min(wave, n - first)
                policy.reset()
                policy.seed(sampling_seed, [seed_start + first + i for i in range(wave)])
                w_best, w_success, w_final, w_lengths, w_latency, w_calls = _rollout(
                    policy,
                    task,
                    venv,
                    seed_start + first,
                    m,
                    frames if first == 0 and video_path else None,
                    n_videos,
                    bar,
                )
                best[first : first + m], success[first : first + m], final[first : first + m] = (
                    w_best[:m],
                    w_success[:m],
                    w_final[:m],
                )
                lengths[first : first + m] = w_lengths[:m]
                latency, calls = latency + w_latency, calls + w_calls
    finally:
        bar.close()
        venv.close()
        policy.train(was_training)
        policy.seed(sampling_seed)  # later direct calls get per-row generators for whatever batch they pass
    if video_path is not None and frames:
        write_gif(frames, video_path)
    return EvalResult(
        score=float(best.mean()),
        score_ci95=mean_ci(best),
        success_rate=float(success.mean()),
        success_ci95=wilson_ci(int(success.sum()), n),
        n_episodes=n,
        episode_steps=task.max_episode_steps,
        episode_lengths=[int(x) for x in lengths],
        episode_scores=[round(float(x), 6) for x in best],
        episode_success=[bool(x) for x in success],
        final_mean=float(final.mean()),
        final_ci95=mean_ci(final),
        episode_final=[round(float(x), 6) for x in final],
        wall_s=time.perf_counter() - t0,
        chunk_latency_ms=1000 * latency / max(calls, 1),
        n_policy_calls=calls,
    )


def _rollout(
    policy: Policy,
    task: Task,
    venv: EnvBatch,
    seed: int,
    n_active: int,
    frames: list[np.ndarray] | None,
    n_videos: int,
    bar: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """One wave: envs ``0..n_active-1`` from seeds ``seed + i``, one ``select_action`` per env step
    (the policy keeps the observation window and the action queue), until every episode is done
    (the env's TimeLimit truncates at the task's horizon). Returns per-env max reward, success, final
    progress and steps run (over the whole batch), seconds spent planning chunks, and the chunks planned. ``bar``
    counts the steps to the horizon (a wave that ends early counts the rest at its end)."""
    n = venv.n
    obs, _ = venv.reset(seed=seed, n_active=n_active)
    done = np.arange(n) >= n_active
    best, final = np.zeros(n), np.zeros(n)
    success = np.zeros(n, dtype=bool)
    lengths = np.zeros(n, dtype=int)
    latency, calls, steps = 0.0, 0, 0
    while not done.all() and steps < task.max_episode_steps:
        step_obs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(policy.device) for k, v in obs.items()}
        plans = policy.plans_next
        tc = time.perf_counter()
        action = check_step_actions(policy, policy.select_action(step_obs), n)
        if plans:
            latency += time.perf_counter() - tc
            calls += 1
        obs, reward, terminated, truncated, info = venv.step(action.cpu().numpy().astype(np.float64))
        steps += 1
        live = ~done
        lengths[live] += 1
        best[live] = np.maximum(best[live], reward[live])
        success[live] |= np.asarray(info.get("is_success", np.zeros(n, dtype=bool)), dtype=bool)[live]
        final[live] = np.asarray(info.get("progress", reward), dtype=float)[live]
        done |= terminated | truncated
        if frames is not None:
            frames.append(np.concatenate([venv.render(i) for i in range(min(n_videos, n_active))], axis=1))
        bar.update(1)
    bar.update(task.max_episode_steps - steps)
    return best, success, final, lengths, latency, calls


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 10) -> Path:
    """Write ``frames`` (a non-empty list of (H, W, 3) uint8 RGB images) as a looping GIF at ``fps`` frames per second,
    creating the parent directories; returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
