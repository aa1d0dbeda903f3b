"""The evaluation protocol's invariants: evaluation leaves training alone, episodes do not depend on
how they are grouped, few-step DDIM starts at the top noise level, windows fail before training,
and the paper's Push-T data split is what a run trains on."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from dpbench.cli import main
from dpbench.config import build_configs
from dpbench.data.episodes import load_episodes
from dpbench.data.sampler import SequenceSampler
from dpbench.diffusion.policy import DiffusionUnetPolicy
from dpbench.evaluate import evaluate
from dpbench.tasks import get_task
from dpbench.train import train


def _smoke_policy(store, mode, **policy_over: str) -> tuple[DiffusionUnetPolicy, object]:
    pcfg, tcfg = build_configs(DiffusionUnetPolicy, "smoke", {f"policy.{k}": v for k, v in policy_over.items()})
    arrays = mode.from_dataset(store.data)
    arrays["action"] = store.data["action"].astype(np.float32)
    torch.manual_seed(0)
    policy = DiffusionUnetPolicy(mode.spec, pcfg)
    policy.fit_statistics(arrays)
    return policy, (arrays, tcfg)


def _smoke_run(
    store, mode, policy_over: dict[str, str] | None = None, **schedule: int
) -> tuple[DiffusionUnetPolicy, object, SequenceSampler]:
    """A smoke DP-C policy (``policy_over``: policy config fields), its training config with ``schedule`` (steps,
    eval_every, ...) and its sampler."""
    policy, (arrays, tcfg) = _smoke_policy(store, mode, **(policy_over or {}))
    sampler = SequenceSampler.build(
        store, arrays, np.arange(store.n_episodes), policy.horizon, policy.n_obs_steps, *policy.sequence_padding()
    )
    return policy, dataclasses.replace(tcfg, **schedule), sampler


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_training_with_periodic_evaluation_is_bit_identical_to_training_without(tmp_path, tiny_pusht_hdf5, sampler):
    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    weights = []
    for with_eval in (True, False):
        policy, tcfg, sampler_ = _smoke_run(
            store, mode, {"sampler": sampler}, steps=12, eval_every=3, checkpoint_every=4
        )
        evals: list[int] = []

        def evaluate_fn(p, step: int, evals: list[int] = evals) -> dict:
            evals.append(step)
            return {"score": evaluate(p, task, mode, n_episodes=2, sampling_seed=0).score}

        ema, _ = train(
            policy,
            sampler_,
            tcfg,
            tmp_path / f"{sampler}-{with_eval}",
            seed=0,
            evaluate_fn=evaluate_fn if with_eval else None,
            progress=False,
        )
        assert evals == ([3, 6, 9, 12] if with_eval else [])
        weights.append(
            {
                k: v.clone()
                for k, v in [*policy.state_dict().items(), *(("ema." + k, v) for k, v in ema.state_dict().items())]
            }
        )
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_episode_noise_and_scores_do_not_depend_on_waves_or_workers(tiny_pusht_hdf5):
    """Each episode draws exactly the same sampling noise in waves of 50, 20 and 7, with fewer
    episodes, and with 2 env workers; an untrained DDPM policy acts on that noise alone, so its
    per-episode scores then agree too. They agree to float rounding, not bit for bit: the network's
    kernels round differently at different batch sizes (about 1e-6 here)."""
    task = get_task("pusht")
    mode = copy.copy(task.obs_mode("keypoints"))
    mode.env_kwargs = {**mode.env_kwargs, "max_episode_steps": 24}  # gym.make's TimeLimit: short episodes
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    policy, _ = _smoke_policy(store, mode, sampler="ddpm")
    policy.eval()
    draws: dict[int, list[torch.Tensor]] = {}
    initial_noise = policy.initial_noise

    def recording(batch: int) -> torch.Tensor:
        x = initial_noise(batch)
        for row, episode in enumerate(policy.episode_seeds):
            draws.setdefault(episode, []).append(x[row].clone())
        return x

    policy.initial_noise = recording

    def run(**kw) -> tuple[list[float], dict[int, list[torch.Tensor]]]:
        draws.clear()
        scores = evaluate(policy, kw.pop("task", task), mode, sampling_seed=kw.pop("seed", 3), **kw).episode_scores
        return scores, {k: list(v) for k, v in draws.items()}

    ref, ref_draws = run(n_episodes=50, wave=50)
    assert len(set(ref)) > 10  # the episodes do differ

    def same(scores: list[float], got: dict[int, list[torch.Tensor]]) -> None:
        for episode, seq in got.items():
            if episode in ref_draws:  # each episode's chunks draw the same noise, call for call
                n = min(len(seq), len(ref_draws[episode]))
                assert n > 0 and all(torch.equal(a, b) for a, b in zip(seq[:n], ref_draws[episode][:n])), episode
        np.testing.assert_allclose(scores, ref[: len(scores)], atol=1e-4)

    for wave in (20, 7):
        same(*run(n_episodes=50, wave=wave))
    same(*run(n_episodes=13))  # fewer episodes: the first 13 are the same episodes
    threads = torch.get_num_threads()
    try:  # env worker processes (robomimic's path)
        torch.set_num_threads(2)
        same(*run(n_episodes=50, wave=20, task=dataclasses.replace(task, parallel_eval=True)))
    finally:
        torch.set_num_threads(threads)
    other, _ = run(n_episodes=50, seed=4)  # another sampling seed does change them
    assert np.abs(np.array(other) - np.array(ref)).max() > 0.01


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_few_step_ddim_starts_at_the_top_noise_level(tiny_pusht_hdf5, k):
    mode = get_task("pusht").obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    over = {"sampler": "ddim", "num_inference_steps": str(k), "num_train_timesteps": "100"}
    trailing, _ = _smoke_policy(store, mode, **over)
    assert trailing.sample_scheduler.timesteps.tolist()[0] == 99
    assert len(trailing.sample_scheduler.timesteps) == k
    # The paper's code ("leading"): steps of 100 // k from 0, so the first is (k - 1) * (100 // k).
    leading, _ = _smoke_policy(store, mode, **over, timestep_spacing="leading")
    assert leading.sample_scheduler.timesteps.tolist() == [(k - 1 - i) * (100 // k) for i in range(k)]


def test_window_errors_come_before_training(tmp_path, tiny_pusht_hdf5, capsys, smoke_argv):
    argv = smoke_argv(
        "diffusion",
        tiny_pusht_hdf5,
        tmp_path,
        "--set",
        "policy.horizon=4",
        "--set",
        "policy.n_obs_steps=2",
        "--set",
        "policy.n_action_steps=4",
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "horizon >= n_obs_steps - 1 + n_action_steps" in err and "n_action_steps=4" in err
    assert err.count("\n") == 1 and not (tmp_path / "work").exists()
    assert main(argv[:-6] + ["--policy", "ibc", "--set", "policy.n_action_steps=2"]) == 2
    assert "n_action_steps == 1" in capsys.readouterr().err
    # other config values a policy or the data protocol refuses: also before any data loads
    for extra, message in (
        (["--set", "policy.timestep_spacing=middle"], "timestep_spacing must be 'trailing' or 'leading'"),
        (["--set", "train.train_episodes=some"], "train.train_episodes must be 'paper' or 'all'"),
        (["--all-episodes", "--set", "train.train_episodes=paper"], "--all-episodes contradicts"),
    ):
        assert main(argv[:-6] + extra) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not (tmp_path / "work").exists(), err


def test_a_human_pusht_run_trains_on_the_papers_90_episodes(tmp_path, human_zarr):
    from test_data import _original_split

    base = ["run", "--policy", "diffusion", "--env", "pusht", "--preset", "smoke", "--dataset", "human", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "paper")]) == 0
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "paper" / "records").glob("*.json")]
    split = rec["data_split"]
    train, val = _original_split(rec["dataset"]["episodes"], 0.02, 42, 90)
    assert split["n_train_episodes"] == 90 and split["train_episodes"] == train and split["val_episodes"] == val
    assert rec["protocol"] == 2 and not rec["dataset"]["path"].startswith("/")
    assert " /" not in rec["command"] and "--out" in rec["command"]  # the --out path is written portably
    assert main(base + ["--out", str(tmp_path / "all"), "--all-episodes"]) == 0
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "all" / "records").glob("*.json")]
    assert rec["data_split"]["n_train_episodes"] == rec["dataset"]["episodes"] - 4
    assert rec["config"]["train"]["train_episodes"] == "all"


def test_a_killed_run_keeps_the_best_evaluations_weights(tmp_path, tiny_pusht_hdf5):
    """best.safetensors always holds the weights of the history's best evaluation: a run killed after an
    evaluation that wrote a new best, but before its next checkpoint, resumes with the checkpoint's copy and
    replays that evaluation; the end state equals an uninterrupted run's."""
    from safetensors.torch import load_file

    from dpbench.train import BEST_FILE, load_best

    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    scores = {1: 0.2, 2: 0.5, 3: 0.1, 4: 0.9, 5: 0.3, 6: 0.4}  # step 4 is the best, after the step-3 checkpoint

    def run(workdir, kill_at=None):
        policy, tcfg, sampler = _smoke_run(store, mode, steps=6, eval_every=1, checkpoint_every=3)

        def evaluate_fn(p, step):
            if step == kill_at:
                raise KeyboardInterrupt
            return {"score": scores[step]}

        return train(policy, sampler, tcfg, workdir, seed=0, evaluate_fn=evaluate_fn, progress=False)

    _, _whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", kill_at=5)  # step 4's best is on disk, the last checkpoint is step 3's
    assert load_best(tmp_path / "killed" / BEST_FILE)[1] == 4
    _, resumed = run(tmp_path / "killed")
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    for workdir in ("whole", "killed"):
        _, step, score = load_best(tmp_path / workdir / BEST_FILE)
        assert (step, score) == (4, 0.9)
    a, b = load_file(str(tmp_path / "whole" / BEST_FILE)), load_file(str(tmp_path / "killed" / BEST_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kill_at", [3, 6])  # a checkpoint step mid-run, and the last step
def test_a_run_killed_during_an_evaluation_resumes_with_that_evaluation_not_its_training(
    tmp_path, tiny_pusht_hdf5, kill_at
):
    """A checkpoint step writes a checkpoint before its evaluation as well as after it: a run killed during the
    evaluation resumes by running it, not by training again from the checkpoint before. Before 2026-12-06 the
    checkpoint came only after the evaluation, so a stop during a 14-minute Transport evaluation lost the 2,250
    training steps before it too. The resumed run ends where an uninterrupted one does."""
    from safetensors.torch import load_file

    from dpbench.train import BEST_FILE, RESUME_FILE, checkpoint_progress, load_best

    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    scores = {1: 0.2, 2: 0.1, 3: 0.9, 4: 0.3, 5: 0.4, 6: 0.5}  # step 3's weights are the best

    def run(workdir, kill_at=None):
        policy, tcfg, sampler = _smoke_run(store, mode, steps=6, eval_every=1, checkpoint_every=3)
        trained, evaluated = [0], []
        loss = policy.compute_loss

        def counted_loss(batch):
            trained[0] += 1
            return loss(batch)

        policy.compute_loss = counted_loss

        def evaluate_fn(p, step):
            evaluated.append(step)
            if step == kill_at:
                raise KeyboardInterrupt
            # the evaluated weights, and a draw from the global generator as an evaluation's sampling makes
            weights = float(sum(t.double().sum() for t in p.parameters()))
            return {"score": scores[step], "weights": weights, "draw": torch.rand(1).item()}

        ema, state = train(policy, sampler, tcfg, workdir, seed=0, evaluate_fn=evaluate_fn, progress=False)
        return policy, ema, state, trained[0], evaluated

    policy, ema, whole, _, _ = run(tmp_path / "whole")
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run(killed, kill_at=kill_at)
    assert checkpoint_progress(killed / RESUME_FILE) == (kill_at, True)
    (killed / f"{RESUME_FILE}.tmp99999").write_bytes(b"a write a killed process left")
    policy2, ema2, resumed, trained, evaluated = run(killed)
    assert (trained, evaluated) == (6 - kill_at, list(range(kill_at, 7)))  # its evaluation first, then steps after
    assert checkpoint_progress(killed / RESUME_FILE) == (6, False)
    assert sorted(p.name for p in killed.glob("*.tmp*")) == []

    def strip(history):
        return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]

    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert strip(resumed.history) == strip(whole.history)  # scores, weights, draws, losses and train losses
    for a, b in ((policy, policy2), (ema, ema2)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert load_best(killed / BEST_FILE)[1:] == load_best(tmp_path / "whole" / BEST_FILE)[1:] == (3, 0.9)
    a, b = load_file(str(tmp_path / "whole" / BEST_FILE)), load_file(str(killed / BEST_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("signum", "stop_at", "expected"),
    [
        ("SIGINT", 5, (5, False)),  # between checkpoints (3 and 6), no evaluation due (every 2 steps)
        ("SIGTERM", 2, (2, True)),  # step 2's evaluation is due: the resumed run runs it first
    ],
)
def test_a_stop_during_a_training_step_checkpoints_that_step_and_loses_nothing(
    tmp_path, tiny_pusht_hdf5, signum, stop_at, expected
):
    """Ctrl-C or SIGTERM during a training step used to raise KeyboardInterrupt mid-step, and the resumed run went
    back to the last periodic checkpoint (up to 2,250 steps on robomimic). Now the step finishes, a checkpoint is
    written at it, and only then does the stop act (here a handler that raises KeyboardInterrupt, as the CLI's
    SIGTERM handler does). The resumed run trains only the steps after it and ends bit-identical to an
    uninterrupted one. The signal is sent from inside the step's loss, mid-step."""
    import os
    import signal

    from dpbench.train import RESUME_FILE, checkpoint_progress

    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    sig = getattr(signal, signum)

    def run(workdir, stop_at=None):
        policy, tcfg, sampler = _smoke_run(store, mode, steps=6, eval_every=2, eval_after=0, checkpoint_every=3)
        trained, evaluated = [0], []
        loss = policy.compute_loss

        def counted_loss(batch):
            trained[0] += 1
            value = loss(batch)
            if trained[0] == stop_at:
                os.kill(os.getpid(), sig)  # delivered at once, between two bytecodes of this step
            return value

        policy.compute_loss = counted_loss

        def evaluate_fn(p, step):
            evaluated.append(step)
            return {"score": 0.1 * step, "weights": float(sum(t.double().sum() for t in p.parameters()))}

        ema, state = train(policy, sampler, tcfg, workdir, seed=0, evaluate_fn=evaluate_fn, progress=False)
        return policy, ema, state, trained[0], evaluated

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    policy, ema, whole, _, _ = run(tmp_path / "whole")
    killed = tmp_path / "killed"
    previous = signal.signal(signal.SIGTERM, raise_interrupt)  # as the CLI sets it
    try:
        with pytest.raises(KeyboardInterrupt):
            run(killed, stop_at=stop_at)
        assert signal.getsignal(signal.SIGTERM) is raise_interrupt  # the handlers found are back
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert checkpoint_progress(killed / RESUME_FILE) == expected
    policy2, ema2, resumed, trained, evaluated = run(killed)
    assert trained == 6 - stop_at  # no step trained twice
    assert evaluated == ([stop_at] if expected[1] else []) + [s for s in (2, 4, 6) if s > stop_at]

    def strip(history):
        return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]

    assert strip(resumed.history) == strip(whole.history)  # scores, evaluated weights, losses, train losses
    for a, b in ((policy, policy2), (ema, ema2)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_gpu_runs_resume_checkpoint_carries_its_device_generator(tmp_path, tiny_pusht_hdf5, monkeypatch):
    # On a GPU the diffusion noise (randn_like) and the image crops draw from the device's generator, which the
    # resume checkpoint did not hold: a resumed GPU run was not bit-identical to an uninterrupted one. No GPU here,
    # so the policy claims cuda:0 and torch.cuda's generator calls are stand-ins that record what they get.
    from dpbench.policy import Policy
    from dpbench.train import TrainState as State
    from dpbench.train import _load_resume, _save_resume, make_optimizer

    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    store = load_episodes(tiny_pusht_hdf5, mode.dataset_keys)
    policy, (_, tcfg) = _smoke_policy(store, mode)
    gpu_state = torch.arange(16, dtype=torch.uint8)
    restored = []
    monkeypatch.setattr(Policy, "device", property(lambda self: torch.device("cuda", 0)))
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: gpu_state.clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    optimizer, scheduler = make_optimizer(policy, tcfg)
    rng = np.random.default_rng(0)
    _save_resume(tmp_path / "state.pt", policy, optimizer, scheduler, None, rng, State(step=7))
    assert _load_resume(tmp_path / "state.pt", policy, optimizer, scheduler, None, rng).step == 7
    ((state, device),) = restored
    assert torch.equal(state, gpu_state) and device == torch.device("cuda", 0)
    monkeypatch.setattr(Policy, "device", property(lambda self: torch.device("cpu")))  # resumed on a CPU: skipped
    restored.clear()
    _load_resume(tmp_path / "state.pt", policy, optimizer, scheduler, None, rng)
    assert restored == []
