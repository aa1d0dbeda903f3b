"""Scripted Push-T demonstrations as episodes in memory: the demonstrator run from a seeded reset.

:func:`collect_episode` runs :class:`~dpbench.envs.pusht.demonstrator.PushTDemonstrator` in a
fresh :class:`~dpbench.envs.pusht.env.PushTEnv` and returns the arrays the human
``pusht_cchi_v7_replay.zarr`` data has; ``dpbench.data.collect.collect_pusht`` writes them into
dataset files. Episode lengths are capped by the registration's ``max_episode_steps``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import PUSHT_ID, episode_steps
from .demonstrator import PushTDemonstrator
from .env import PushTEnv
from .geometry import SUCCESS_COVERAGE, block_keypoints

# The version of the demonstrations (stored in each collected file's env_args, and part of the
# cache's file names): bump it when the demonstrator changes, so stale caches are not reused.
# v2: seeded resets use the legacy placement.
SCRIPTED_VERSION = 2


def collect_episode(seed: int, max_steps: int | None = None) -> dict[str, np.ndarray] | None:
    """Run the demonstrator from ``reset(seed=seed)``; None unless coverage exceeds 0.95.

    ``max_steps`` defaults to the registered episode length of ``dpbench/PushT-v0``
    (``gymnasium.spec(PUSHT_ID).max_episode_steps``). The demonstrator's generator is
    ``np.random.default_rng(seed)``, so a seed fixes the episode. Returned arrays (T = number of
    actions; the episode ends with the first step whose coverage exceeds 0.95, that action
    included), matching the human ``pusht_cchi_v7_replay.zarr`` data:

    * ``state`` (T, 5) float32: ``env.state()`` *before* each action (obs_type="state" layout).
    * ``action`` (T, 2) float32: the absolute target sent to ``env.step``.
    * ``keypoint`` (T, 9, 2) float32: ``block_keypoints`` of the block pose before each action.
    * ``n_contacts`` (T, 1) float32: ``info["n_contacts"]`` of the step that *led to* state t, i.e.
      the one action t-1 caused (row 0: the reset's info), so it describes the contacts seen at
      state t. This is the human data's convention: its collection script stored the previous
      step's info with each record, and in the data itself, of the 679 times the block starts
      moving during action t, ``n_contacts[t+1] > 0`` all 679 times but ``n_contacts[t] > 0`` only
      481. (The contacts action t causes are ``n_contacts[t+1]``; the last action's are not kept,
      as in the human data.) The count includes block-wall contacts, as the env's does.
    * ``circle`` (T,) int8: +1 while the agent circles the block passing it on its left (bearing
      around the block increasing), -1 on its right, 0 otherwise.
    * ``side`` (1,) int8: the episode's preferred circling side drawn from the generator.
    """
    if max_steps is None:
        max_steps = episode_steps(PUSHT_ID)
    env = PushTEnv(obs_type="state")
    _, info = env.reset(seed=seed)
    demo = PushTDemonstrator(np.random.default_rng(seed))
    u = env.unwrapped
    states, actions, keypoints = [], [], []
    contacts = [[info["n_contacts"]]]  # contacts[t]: those of the step that led to state t
    success = False
    for _ in range(max_steps):
        pose = np.array([u.block.position[0], u.block.position[1], u.block.angle])
        states.append(u.state())
        keypoints.append(block_keypoints(pose))
        action = demo.act(env)
        actions.append(action)
        _, _, _, _, info = env.step(action)
        contacts.append([info["n_contacts"]])
        if info["coverage"] > SUCCESS_COVERAGE:
            success = True
            break
    env.close()
    if not success:
        return None
    return {
        "state": np.asarray(states, dtype=np.float32),
        "action": np.asarray(actions, dtype=np.float32),
        "keypoint": np.asarray(keypoints, dtype=np.float32),
        "n_contacts": np.asarray(contacts[: len(actions)], dtype=np.float32),
        "circle": np.asarray(demo.circle_log, dtype=np.int8),
        "side": np.array([demo.side], dtype=np.int8),
    }


def episode_mode(episode: dict[str, np.ndarray]) -> str:
    """'left' or 'right': the side of the episode's first circling manoeuvre ('none' if it never circled)."""
    moving = episode["circle"][episode["circle"] != 0]
    if len(moving) == 0:
        return "none"
    return "left" if moving[0] > 0 else "right"


def success_rate(
    seeds: Iterable[int], max_steps: int | None = None
) -> tuple[float, list[dict[str, np.ndarray] | None]]:
    """The fraction of seeds whose episode succeeds, and the episodes (None for failures); see
    :func:`collect_episode` for the episodes and ``max_steps``."""
    episodes = [collect_episode(int(s), max_steps) for s in seeds]
    return sum(e is not None for e in episodes) / max(len(episodes), 1), episodes
