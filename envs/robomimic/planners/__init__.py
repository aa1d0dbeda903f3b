"""Task planners for the scripted robomimic demonstrators: one ``Planner`` subclass per task, each
planning its waypoints from the env's state after reset (``PLANNERS`` maps a task to its planner).

``ph`` planners follow one consistent strategy at fixed speeds; ``mh`` planners draw, per episode,
a strategy (a grasp that differs by a symmetry of the object, a via-point on one side or the
other), speeds and small grasp offsets from the generator they are given. Positions are in metres
in the world frame, yaws in radians about world z.

Modules: :mod:`.base` (the base class and shared geometry), :mod:`.single_arm` (Lift, Can,
Square), :mod:`.transport` (two arms), :mod:`.tool_hang` (insertion and hanging).
"""

from __future__ import annotations

from .base import Planner, object_yaw, wrap_to
from .single_arm import CanPlanner, LiftPlanner, SquarePlanner
from .tool_hang import ToolHangPlanner
from .transport import TransportPlanner

PLANNERS: dict[str, type[Planner]] = {
    "lift": LiftPlanner,
    "can": CanPlanner,
    "square": SquarePlanner,
    "transport": TransportPlanner,
    "tool_hang": ToolHangPlanner,
}

__all__ = ["PLANNERS", "Planner", "object_yaw", "wrap_to"]
