"""dpbench environments, installed as ``dpbench.envs``.

Importing this module registers the Gymnasium IDs. Entry points are strings, so an env's heavy
dependencies (robosuite for the robomimic tasks) load only when that env is made.
"""

from __future__ import annotations

import gymnasium as gym

PUSHT_ID = "dpbench/PushT-v0"
# dpbench name -> (Gymnasium ID, horizon: the paper's, for its ph datasets)
ROBOMIMIC_IDS = {
    "lift": ("dpbench/Lift-v0", 400),
    "can": ("dpbench/Can-v0", 400),
    "square": ("dpbench/Square-v0", 400),
    "transport": ("dpbench/Transport-v0", 700),
    "tool_hang": ("dpbench/ToolHang-v0", 700),
}


def register_envs() -> None:
    """Register every dpbench env with Gymnasium (idempotent)."""
    if PUSHT_ID not in gym.registry:
        gym.register(id=PUSHT_ID, entry_point="dpbench.envs.pusht.env:PushTEnv", max_episode_steps=300)
    for task, (gym_id, horizon) in ROBOMIMIC_IDS.items():
        if gym_id not in gym.registry:
            gym.register(
                id=gym_id,
                entry_point="dpbench.envs.robomimic.env:RobomimicEnv",
                max_episode_steps=horizon,
                kwargs={"task": task},
            )


register_envs()
