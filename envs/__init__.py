"""dpbench environments, installed as ``dpbench.envs``.

Importing this module registers the Gymnasium IDs. Entry points are strings, so an env's heavy
dependencies (robosuite for the robomimic tasks) load only when that env is made.

The registration is the one source of each env's episode length: :data:`_REGISTRATION` gives it
to ``gymnasium.register(max_episode_steps=...)``, whose TimeLimit ends every episode there, and
everything else (the demonstrators, robosuite's own ``horizon`` kwarg, ``dpbench.tasks``) reads it
back with :func:`episode_steps`, i.e. ``gymnasium.spec(gym_id).max_episode_steps``. A task whose
mh demonstrations get a longer horizon (the original's ``max_steps: 500 if mh else 400`` for Lift,
Can and Square) has a second ID for them (:func:`gym_id_for`).
"""

from __future__ import annotations

import gymnasium as gym

from dpbench.errors import DpbenchError

PUSHT_ID = "dpbench/PushT-v0"

# dpbench env name -> (Gymnasium ID, entry point, env kwargs, max_episode_steps). The episode lengths
# are the paper's: 300 control steps (30 s) for Push-T; for robomimic the horizons of its ph
# datasets, 400 steps (20 s at 20 Hz), 700 for transport and tool_hang.
_REGISTRATION: dict[str, tuple[str, str, dict[str, str], int]] = {
    "pusht": (PUSHT_ID, "dpbench.envs.pusht.env:PushTEnv", {}, 300),
    "lift": ("dpbench/Lift-v0", "dpbench.envs.robomimic.env:RobomimicEnv", {"task": "lift"}, 400),
    "can": ("dpbench/Can-v0", "dpbench.envs.robomimic.env:RobomimicEnv", {"task": "can"}, 400),
    "square": ("dpbench/Square-v0", "dpbench.envs.robomimic.env:RobomimicEnv", {"task": "square"}, 400),
    "transport": ("dpbench/Transport-v0", "dpbench.envs.robomimic.env:RobomimicEnv", {"task": "transport"}, 700),
    "tool_hang": ("dpbench/ToolHang-v0", "dpbench.envs.robomimic.env:RobomimicEnv", {"task": "tool_hang"}, 700),
}
# (env name, demo variant) -> its own registration, where the variant's horizon differs from the
# env's: the original's task configs (config/task/{lift,can,square}_*.yaml) evaluate mh-trained
# policies for 500 steps (`max_steps: ${eval:'500 if "${task.dataset_type}" == "mh" else 400'}`);
# transport_*.yaml uses 700 for both variants, and tool_hang has ph only.
_VARIANT_REGISTRATION: dict[tuple[str, str], tuple[str, str, dict[str, str], int]] = {
    (name, "mh"): (
        f"dpbench/{title}-mh-v0",
        "dpbench.envs.robomimic.env:RobomimicEnv",
        {"task": name, "variant": "mh"},
        500,
    )
    for name, title in (("lift", "Lift"), ("can", "Can"), ("square", "Square"))
}

VARIANTS = ("ph", "mh")  # robomimic's demonstration variants: proficient-human, multi-human
PH_ONLY = ("pusht", "tool_hang")  # no mh data: Push-T has one human set, robomimic's ToolHang ph only

# dpbench env name -> Gymnasium ID, for every env (Push-T and the robomimic tasks).
GYM_IDS: dict[str, str] = {name: entry[0] for name, entry in _REGISTRATION.items()}


def register_envs() -> None:
    """Register every dpbench env with Gymnasium (idempotent: IDs already registered are kept)."""
    for gym_id, entry_point, kwargs, steps in [*_REGISTRATION.values(), *_VARIANT_REGISTRATION.values()]:
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=entry_point, max_episode_steps=steps, kwargs=dict(kwargs))


def gym_id_for(env: str, variant: str = "ph") -> str:
    """The Gymnasium ID of dpbench env ``env`` for policies trained on ``variant`` (ph | mh)
    demonstrations: the env's own ID, or its variant registration where the horizon differs.
    Raises DpbenchError for another variant or for mh on a ph-only task (:data:`PH_ONLY`), KeyError for
    an unknown ``env``."""
    if variant not in VARIANTS:
        raise DpbenchError(f"unknown demonstration variant {variant!r}; choose ph or mh")
    if variant != "ph" and env in PH_ONLY:
        raise DpbenchError(f"{env} has ph demonstrations only (the paper's too): there is no {variant} {env} to test")
    return _VARIANT_REGISTRATION.get((env, variant), _REGISTRATION[env])[0]


def episode_steps(gym_id: str) -> int:
    """The episode length, in control steps, of a registered env: ``gymnasium.spec(gym_id).max_episode_steps``.

    Raises:
        gymnasium.error.Error: (its ``NameNotFound``/``VersionNotFound``) when ``gym_id`` is not registered.
        DpbenchError: when the env is registered without ``max_episode_steps``.
    """
    steps = gym.spec(gym_id).max_episode_steps
    if steps is None:
        raise DpbenchError(f"env '{gym_id}' is registered without max_episode_steps; dpbench needs an episode length")
    return int(steps)


register_envs()
