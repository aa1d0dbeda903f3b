"""Tests for the scripted Push-T demonstrator, its push model and its collection into a file (about 7 s)."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from dpbench.data.collect import collect_pusht
from dpbench.data.episodes import load_episodes
from dpbench.envs import PUSHT_ID, episode_steps
from dpbench.envs.pusht.env import PushTEnv
from dpbench.envs.pusht.episodes import SCRIPTED_VERSION, collect_episode, episode_mode
from dpbench.envs.pusht.geometry import SUCCESS_COVERAGE, block_keypoints
from dpbench.envs.pusht.push_model import CONTACT_N, CONTACT_Q, PushModel, rotation

MODE_SEEDS = range(8)  # seeds 4 and 7 circle left first, the others right


@functools.cache
def _episode(seed: int) -> dict[str, np.ndarray] | None:
    return collect_episode(seed)


def test_same_seed_gives_identical_episode() -> None:
    first, second = _episode(3), collect_episode(3)
    assert first is not None and second is not None
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_episode_arrays_and_replay_in_fresh_env() -> None:
    ep = _episode(0)
    assert ep is not None
    t = len(ep["action"])
    assert 1 <= t <= 300
    expected = {"state": (t, 5), "action": (t, 2), "keypoint": (t, 9, 2), "n_contacts": (t, 1)}
    for key, shape in expected.items():
        assert ep[key].shape == shape, key
        assert ep[key].dtype == np.float32, key
    assert ep["circle"].shape == (t,)

    # Keypoints belong to the block pose of the same row's state.
    np.testing.assert_allclose(ep["keypoint"][5], block_keypoints(ep["state"][5, 2:5]), atol=1e-3)

    env = PushTEnv(obs_type="state")
    obs, info = env.reset(options={"reset_to_state": ep["state"][0]})
    contacts, states, coverages = [info["n_contacts"]], [obs], []
    for action in ep["action"]:
        obs, _, _, _, info = env.step(action)
        contacts.append(info["n_contacts"])
        states.append(obs)
        coverages.append(info["coverage"])
    assert coverages[-1] > SUCCESS_COVERAGE
    assert max(coverages[:-1]) <= SUCCESS_COVERAGE  # the episode stops at its first success
    np.testing.assert_allclose(np.array(states[:-1])[:, :4], ep["state"][:, :4], atol=1e-2)
    # n_contacts[t] is the count of the step that led to state t (the human data's convention).
    np.testing.assert_array_equal(ep["n_contacts"][:, 0], np.array(contacts[:-1], dtype=np.float32))


def test_actions_are_smooth_and_in_bounds() -> None:
    ep = _episode(0)
    assert ep is not None
    steps = np.linalg.norm(np.diff(ep["action"], axis=0), axis=1)
    assert steps.max() <= 15.0
    assert np.linalg.norm(ep["action"][0] - ep["state"][0, :2]) <= 15.0
    assert ep["action"].min() >= 0.0 and ep["action"].max() <= 512.0


def test_both_circling_modes_occur() -> None:
    modes = []
    for seed in MODE_SEEDS:
        ep = _episode(seed)
        if ep is not None:
            modes.append(episode_mode(ep))
    assert len(modes) >= 6
    assert "left" in modes and "right" in modes


@pytest.mark.parametrize("seed", [1, 2])
def test_episode_succeeds(seed: int) -> None:
    ep = _episode(seed)
    assert ep is not None
    assert 1 <= len(ep["action"]) <= 300


def test_push_model_predicts_the_envs_own_physics() -> None:
    """The planner's push model runs the env's world and PD controller (physics.py), so a push it
    predicts is what the env does with the same targets."""
    pose = np.array([256.0, 256.0, 0.3])  # block (x, y, angle); the agent starts 1 px off contact 5
    q, n = CONTACT_Q[5], CONTACT_N[5]
    start = pose[:2] + rotation(pose[2]) @ (q - n * 1.0)
    poses, agents, targets = PushModel().push(pose, start, n, 0.0, False, 6.0, 12)
    assert np.linalg.norm(poses[-1, :2] - pose[:2]) > 10.0  # the block really moved
    env = PushTEnv(obs_type="state")
    env.reset(options={"reset_to_state": [*start, *pose]})
    for k, target in enumerate(targets):
        _, _, _, _, info = env.step(target)
        np.testing.assert_allclose(info["agent_pos"], agents[k], atol=1e-9)
        np.testing.assert_allclose(info["block_pose"], poses[k], atol=1e-9)


def test_episode_length_is_the_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    assert episode_steps(PUSHT_ID) == gym.spec(PUSHT_ID).max_episode_steps == 300
    monkeypatch.setattr(gym.spec(PUSHT_ID), "max_episode_steps", 3)
    assert collect_episode(1) is None  # too short to succeed


def test_collected_file_holds_the_demonstrators_episodes(tmp_path) -> None:
    path = tmp_path / "pusht.hdf5"
    stats = collect_pusht(2, path, start_seed=1, progress=False)
    store = load_episodes(path)
    assert store.n_episodes == 2 and store.attrs["env_args"]["version"] == SCRIPTED_VERSION
    # the statistics a robomimic collection gives: seeds 1 and 2 both succeed (their episodes are compared below)
    assert {k: stats[k] for k in ("tried", "kept", "success_rate", "seeds", "steps", "workers")} == {
        "tried": 2,
        "kept": 2,
        "success_rate": 1.0,
        "seeds": [1, 2],
        "steps": store.n_steps,
        "workers": 1,
    }
    for i, seed in enumerate((1, 2)):
        ep = _episode(seed)
        for key in ("state", "action", "keypoint", "n_contacts"):
            np.testing.assert_array_equal(store.episode(i)[key], ep[key], err_msg=key)


def test_collect_keeps_an_existing_out_file_and_refuses_paths_it_cannot_write(tmp_path, capsys) -> None:
    from dpbench.cli import main

    mine = tmp_path / "mine.hdf5"
    mine.write_bytes(b"ten episodes of my own demos")
    collect = ["collect", "--env", "pusht", "--episodes", "1", "--quiet", "--out"]
    # each refused before anything is collected: the user's file is untouched, nothing else is written
    for out, says in (
        (mine, "exists; pass --overwrite"),
        (tmp_path / "d.zarr", "give a file path ending in .hdf5"),  # it wrote hdf5 under a zarr name
        (tmp_path, "is a directory; give a file path ending in .hdf5"),  # a traceback and a stray .tmp file
        (mine / "x.hdf5", "mine.hdf5 is a file, not a folder"),  # a FileExistsError after the collection
    ):
        assert main([*collect, str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err
    assert mine.read_bytes() == b"ten episodes of my own demos"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.hdf5"]
    assert main([*collect, str(mine), "--overwrite"]) == 0
    assert load_episodes(mine).n_episodes == 1
    said = capsys.readouterr().out  # as a robomimic collection says it: counts and the demonstrator's success
    assert f"wrote {mine}: 1 episodes, {load_episodes(mine).n_steps} steps; demonstrator success" in said
    assert said.rstrip().endswith(" steps/s, 1 worker)")
    assert main([*collect, str(tmp_path / "UPPER.H5")]) == 0  # collect takes the suffix in any case: so does loading
    assert load_episodes(tmp_path / "UPPER.H5").n_episodes == 1
    with pytest.raises(SystemExit):  # argparse: a seed is >= 0 (it was a traceback)
        main(["collect", "--env", "pusht", "--start-seed", "-5", "--out", str(tmp_path / "neg.hdf5")])
    assert "--start-seed: must be an integer >= 0 (a seed), got -5" in capsys.readouterr().err
