"""dpbench environments, installed as ``dpbench.envs``.

Importing this module registers the Gymnasium IDs. Entry points are strings, so an env's heavy
dependencies (robosuite for the robomimic tasks) load only when that env is made.
"""

from __future__ import annotations

import gymnasium as gym

PUSHT_ID = "dpbench/PushT-v0"


def register_envs() -> None:
    """Register every dpbench env with Gymnasium (idempotent)."""
    if PUSHT_ID not in gym.registry:
        gym.register(id=PUSHT_ID, entry_point="dpbench.envs.pusht.env:PushTEnv", max_episode_steps=300)


register_envs()
