"""The scripted demonstrators' executor without a simulator: ``ArmCursor`` interpolation, state
triggers, callable steps and cross-arm labels, against hand-computed targets (well under a second)."""

from __future__ import annotations

import numpy as np

from dpbench.envs.robomimic.demonstrator import ArmCursor
from dpbench.envs.robomimic.rotation import matrix_to_axis_angle
from dpbench.envs.robomimic.waypoints import CLOSED, MAX_WAIT, OPEN, Waypoint

EYE = np.eye(3)


def _cursor(arm: int, steps: list, start: np.ndarray | None = None) -> ArmCursor:
    pos = np.zeros(3) if start is None else start
    return ArmCursor(arm, steps, pos, EYE, np.r_[pos, matrix_to_axis_angle(EYE), OPEN])


def _obs(arm: int, eef: np.ndarray, fingers: float = 0.0) -> dict[str, np.ndarray]:
    return {
        f"robot{arm}_eef_pos": np.asarray(eef, np.float64),
        f"robot{arm}_gripper_qpos": np.array([fingers, -fingers]),
    }


def test_a_waypoint_is_reached_linearly_then_held_until_its_trigger() -> None:
    goal = np.array([0.1, 0.0, 0.0])
    cursor = _cursor(0, [Waypoint(goal, EYE, CLOSED, 4, until="arrived")])
    far = [_obs(0, [0.0, 0.0, 0.0]), _obs(0, [0.0, 0.0, 0.0])]
    targets = [cursor.next_target(None, far, set()) for _ in range(4)]
    np.testing.assert_allclose([t[0] for t in targets], [0.025, 0.05, 0.075, 0.1])  # i / 4 of the way
    assert all(t[6] == CLOSED for t in targets)  # the gripper command switches at the segment's start
    # the arm is still 10 cm away: the target is held (not done) ...
    for _ in range(5):
        np.testing.assert_allclose(cursor.next_target(None, far, set())[:3], goal)
    assert not cursor.done
    # ... until the arm is there and still; then the cursor has nothing left and holds the last target
    there = [_obs(0, goal), _obs(0, goal)]
    np.testing.assert_allclose(cursor.next_target(None, there, set())[:3], goal)
    assert cursor.done


def test_a_trigger_that_never_fires_gives_up_after_max_wait() -> None:
    cursor = _cursor(0, [Waypoint(np.ones(3), EYE, OPEN, 1, until="arrived")])
    far = [_obs(0, np.zeros(3)), _obs(0, np.zeros(3))]
    calls = 0
    while not cursor.done and calls < MAX_WAIT + 10:  # bounded: a broken give-up fails, not hangs
        cursor.next_target(None, far, set())
        calls += 1
    assert calls == 1 + MAX_WAIT + 1  # the segment's step, the waits, the step that finds nothing left


def test_a_callable_step_is_planned_when_reached_with_the_env() -> None:
    seen = []

    def later(env: object) -> list[Waypoint]:
        seen.append(env)
        return [Waypoint(np.array([0.0, 0.2, 0.0]), EYE, OPEN, 2)]

    cursor = _cursor(0, [Waypoint(np.array([0.0, 0.1, 0.0]), EYE, OPEN, 1), later])
    env = object()
    first = cursor.next_target(env, [], set())
    assert not seen and first[1] == 0.1  # not planned before the arm gets to it
    second = cursor.next_target(env, [], set())
    assert seen == [env] and np.isclose(second[1], 0.15)  # planned from where the first waypoint ended


def test_a_servo_callable_can_return_itself_and_end_with_nothing() -> None:
    # ToolHang's servo: a callable returns a waypoint and itself until the measurement converges, then []
    rounds = []

    def servo(env: object) -> list:
        rounds.append(len(rounds))
        if len(rounds) == 3:
            return []  # converged: nothing more, the next step follows
        return [Waypoint(np.array([0.0, 0.0, 0.01 * len(rounds)]), EYE, OPEN, 1), servo]

    cursor = _cursor(0, [servo, Waypoint(np.array([0.5, 0.0, 0.0]), EYE, OPEN, 1)])
    zs = [cursor.next_target(None, [], set())[2] for _ in range(2)]
    np.testing.assert_allclose(zs, [0.01, 0.02])  # one corrected waypoint per round
    last = cursor.next_target(None, [], set())
    assert rounds == [0, 1, 2] and last[0] == 0.5  # the third round returned nothing: on to the next step
    assert cursor.done or cursor.next_target(None, [], set())[0] == 0.5


def test_an_after_step_waits_for_the_other_arm_s_label() -> None:
    labels: set[str] = set()
    giver = _cursor(0, [Waypoint(np.array([0.1, 0.0, 0.0]), EYE, OPEN, 2, label="handed")])
    taker = _cursor(1, [Waypoint(np.array([0.0, 0.1, 0.0]), EYE, OPEN, 1, after="handed")], start=np.zeros(3))
    history: list[dict] = []
    held = taker.next_target(None, history, labels)  # the label is not done: the taker holds its start
    np.testing.assert_allclose(held[:3], 0.0)
    giver.next_target(None, history, labels)
    giver.next_target(None, history, labels)
    assert "handed" not in labels  # reached, but completion is noted when the cursor moves on
    giver.next_target(None, history, labels)
    assert "handed" in labels and giver.done
    np.testing.assert_allclose(taker.next_target(None, history, labels)[:3], [0.0, 0.1, 0.0])


class _Hand:
    """A stand-in env whose grip site is at ``at`` (the one thing the cursor reads from an env)."""

    def __init__(self, at: np.ndarray) -> None:
        self.at = at

    def control_position(self, arm: int) -> np.ndarray:
        return self.at.copy()


def test_a_from_hand_waypoint_hands_on_where_the_hand_settled() -> None:
    release = Waypoint(np.array([0.1, 0.0, 0.0]), EYE, OPEN, 1, from_hand=True)
    back = Waypoint(np.array([0.1, 0.0, 0.2]), EYE, OPEN, 2)
    cursor = _cursor(0, [release, back])
    hand = _Hand(np.array([0.1, 0.0, 0.0]))
    here = [_obs(0, hand.at), _obs(0, hand.at)]
    np.testing.assert_allclose(cursor.next_target(hand, here, set())[:3], [0.1, 0.0, 0.0])
    hand.at = np.array([0.1, 0.0, -0.02])  # the arm sagged 2 cm while the (still) fingers opened
    # the segment to ``back`` starts from the hand, not the release target: half way is z = 0.09, not 0.1
    np.testing.assert_allclose(cursor.next_target(hand, here, set())[:3], [0.1, 0.0, 0.09])
