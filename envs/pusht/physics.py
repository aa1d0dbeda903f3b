"""Push-T physics: the pymunk world and the agent's PD controller (the one home of both).

Both :class:`~dpbench.envs.pusht.env.PushTEnv` and the scripted demonstrator's push model
(:mod:`dpbench.envs.pusht.push_model`) build their world with :func:`build_space` and drive the
agent with :func:`pd_step`, so the demonstrator predicts pushes with exactly the env's dynamics.

The constants are the paper's env (Chi et al., RSS 2023, ``diffusion_policy/env/pusht``): 100 Hz
simulation, 10 Hz control, a PD controller with k_p=100, k_v=20 driving a kinematic disc, walls
5 px inside the 512 px workspace, zero gravity and ``space.damping = 0`` (pymunk then keeps no
velocity between steps: the block stops as soon as nothing pushes it).
"""

from __future__ import annotations

import pymunk

from .geometry import AGENT_RADIUS, T_BAR, T_STEM

SIM_HZ = 100  # physics steps per second
CONTROL_HZ = 10  # actions per second
SUBSTEPS = SIM_HZ // CONTROL_HZ  # physics steps per action
K_P, K_V = 100.0, 20.0  # PD gains: 1/s^2 on the position error (px), 1/s on the velocity (px/s)
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2


def build_space(
    agent_position: tuple[float, float] | None = None,
    block_pose: tuple[float, float, float] | None = None,
) -> tuple[pymunk.Space, pymunk.Body, pymunk.Body]:
    """The Push-T world: walls, the kinematic agent disc and the dynamic T block.

    Args:
        agent_position: (x, y) in px given to the agent before it joins the space; None leaves
            pymunk's default (0, 0).
        block_pose: (x, y, angle) in px and rad given to the block (position, then angle) before it
            joins the space; None leaves pymunk's default pose.

    The initial poses only matter to the spatial index that pymunk builds when the bodies are
    added (callers place the bodies before stepping); they are arguments so that the env and the
    demonstrator's model each keep the construction they have always had, bit for bit.

    Returns:
        ``(space, agent, block)``. The block has mass 1 and its centre of gravity is the mean of
        its two rectangles' centroids; its moment of inertia is twice the bar's, the original env's
        (it passes the bar's vertices for the stem too), with which the human demonstrations were
        recorded.
    """
    space = pymunk.Space()
    space.gravity = (0.0, 0.0)
    space.damping = 0.0
    for a, b in WALLS:
        space.add(pymunk.Segment(space.static_body, a, b, WALL_RADIUS))

    agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
    if agent_position is not None:
        agent.position = agent_position
    space.add(agent, pymunk.Circle(agent, AGENT_RADIUS))

    mass = 1.0
    inertia = 2 * pymunk.moment_for_poly(mass, vertices=T_BAR)
    block = pymunk.Body(mass, inertia)
    bar, stem = pymunk.Poly(block, T_BAR), pymunk.Poly(block, T_STEM)
    block.center_of_gravity = (bar.center_of_gravity + stem.center_of_gravity) / 2
    if block_pose is not None:
        block.position = (block_pose[0], block_pose[1])
        block.angle = block_pose[2]
    space.add(block, bar, stem)
    return space, agent, block


def pd_step(space: pymunk.Space, agent: pymunk.Body, tx: float, ty: float) -> None:
    """One control step (1 / CONTROL_HZ s): drive the agent toward the target (tx, ty), in px.

    Each of the ``SUBSTEPS`` physics steps of ``dt = 1 / SIM_HZ`` s sets the kinematic agent's
    velocity by the PD law ``a = K_P (target - position) + K_V (0 - velocity)`` (semi-implicit
    Euler, ``v += a dt``), then steps the space. This is the paper's controller, in its order of
    floating-point operations; the env and the demonstrator's push model both call it.
    """
    dt = 1.0 / SIM_HZ
    for _ in range(SUBSTEPS):
        px, py = agent.position
        vx, vy = agent.velocity
        ax = K_P * (tx - px) + K_V * (0.0 - vx)
        ay = K_P * (ty - py) + K_V * (0.0 - vy)
        agent.velocity = (vx + ax * dt, vy + ay * dt)
        space.step(dt)
