"""The robomimic tasks on robosuite 1.5: env contract, action modes, seeding, demonstrators,
dataset checks and a smoke run end to end. Skipped where robosuite is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpbench.envs.robomimic import rotation as R
from dpbench.errors import DpbenchError

robosuite = pytest.importorskip("robosuite", reason="robosuite extra not installed")

import gymnasium as gym  # noqa: E402

import dpbench.envs  # noqa: E402,F401
from dpbench.data.collect import collect_robomimic  # noqa: E402
from dpbench.envs import GYM_IDS, gym_id_for  # noqa: E402
from dpbench.envs.robomimic.demonstrator import run_episode  # noqa: E402
from dpbench.envs.robomimic.env import TASK_SPECS, RobomimicEnv, check_mujoco  # noqa: E402
from dpbench.envs.robomimic.env_args import action_mode_from_env_args, env_args_for  # noqa: E402
from dpbench.envs.robomimic.io import MODES  # noqa: E402
from dpbench.envs.robomimic.planners import object_yaw, wrap_to  # noqa: E402


@pytest.fixture(scope="module")
def lift() -> RobomimicEnv:
    env = RobomimicEnv("lift")
    yield env
    env.close()


# ------------------------------------------------------------------------------- rotations
def test_rotation_conversions_round_trip_and_agree_with_robosuite() -> None:
    import robosuite.utils.transform_utils as T

    rng = np.random.default_rng(0)
    aa = rng.normal(size=(200, 3))
    aa *= rng.uniform(0, np.pi - 1e-3, (200, 1)) / np.linalg.norm(aa, axis=1, keepdims=True)
    m = R.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(R.matrix_to_axis_angle(m), aa, atol=1e-9)
    np.testing.assert_allclose(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m, atol=1e-12)
    for i in range(20):  # the same conventions as robosuite (quaternions x, y, z, w)
        q = T.mat2quat(m[i])
        np.testing.assert_allclose(R.quat_to_matrix(q), T.quat2mat(q), atol=1e-6)  # robosuite rounds to float32
        np.testing.assert_allclose(R.quat_to_axis_angle(q), T.quat2axisangle(q), atol=1e-6)
    actions = np.concatenate([rng.normal(size=(200, 3)), aa, rng.uniform(-1, 1, (200, 1))], axis=1)
    two_arms = np.concatenate([actions, actions[::-1]], axis=1)
    assert R.encode_abs_actions(two_arms).shape == (200, 20)
    np.testing.assert_allclose(R.decode_abs_actions(R.encode_abs_actions(two_arms)), two_arms, atol=1e-9)


# ------------------------------------------------------------------------------- envs
def test_registered_envs_have_the_papers_observation_sizes_and_horizons() -> None:
    for name, dim, horizon in [
        ("Lift", 19, 400),
        ("Can", 23, 400),
        ("Square", 23, 400),
        ("Transport", 59, 700),
        ("ToolHang", 53, 700),
    ]:
        env = gym.make(f"dpbench/{name}-v0")
        obs, info = env.reset(seed=100000)
        assert sum(v.shape[0] for v in obs.values()) == dim, name
        assert env.spec.max_episode_steps == horizon
        # the registration is the one source of the episode length: the task spec and robosuite read it
        task = env.unwrapped.task
        assert GYM_IDS[task] == env.spec.id and TASK_SPECS[task].horizon() == horizon
        assert env.unwrapped.env_kwargs["horizon"] == horizon == env.unwrapped.robosuite_env.horizon
        assert info["is_success"] is False
        assert env.observation_space.contains(obs)
        env.close()


def test_mh_policies_get_the_originals_longer_horizon() -> None:
    # The original's config/task/{lift,can,square}_*.yaml: `max_steps: ${eval:'500 if "${task.dataset_type}"
    # == "mh" else 400'}`; transport_*.yaml: `max_steps: 700` whatever the dataset type.
    for task, ph, mh in [("lift", 400, 500), ("can", 400, 500), ("square", 400, 500), ("transport", 700, 700)]:
        assert (TASK_SPECS[task].horizon("ph"), TASK_SPECS[task].horizon("mh")) == (ph, mh), task
        assert env_args_for(task, variant="mh")["env_kwargs"]["horizon"] == mh
    env = gym.make(gym_id_for("square", "mh"))
    try:
        # the TimeLimit, the env and robosuite itself all end mh episodes at 500 steps
        assert env.spec.max_episode_steps == 500 == env.unwrapped.max_episode_steps
        assert env.unwrapped.robosuite_env.horizon == 500 and env.unwrapped.variant == "mh"
    finally:
        env.close()
    with pytest.raises(DpbenchError, match="choose ph or mh"):
        RobomimicEnv("lift", variant="mixed")
    for ph_only in ("tool_hang", "pusht"):  # the paper's Table I has no mh column for them
        with pytest.raises(DpbenchError, match="ph demonstrations only"):
            gym_id_for(ph_only, "mh")
    # the ph ID with an mh env would cut mh episodes at 400 steps: refused at reset, with the right call
    env = gym.make(GYM_IDS["square"], variant="mh")
    try:
        with pytest.raises(DpbenchError, match=r"gym_id_for\('square', 'mh'\)"):
            env.reset(seed=100000)
    finally:
        env.close()


def test_check_env_passes(lift: RobomimicEnv) -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(lift, skip_render_check=True)


def test_reset_seed_gives_the_same_initial_conditions(lift: RobomimicEnv) -> None:
    a, _ = lift.reset(seed=100003)
    b, _ = lift.reset(seed=100003)
    c, _ = lift.reset(seed=100004)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a["object"][:3], c["object"][:3])


def test_abs_mode_is_really_absolute_and_holds_a_world_pose(lift: RobomimicEnv) -> None:
    ctrl = lift.robosuite_env.robots[0].part_controllers["right"]
    assert (ctrl.input_type, ctrl.input_ref_frame) == ("absolute", "world")  # not the ignored control_delta flag
    obs, _ = lift.reset(seed=1)
    target = obs["robot0_eef_pos"].astype(np.float64) + np.array([0.05, -0.05, 0.05])
    action = np.concatenate([target, R.matrix_to_axis_angle(lift.control_rotation()), [-1.0]])
    for _ in range(40):
        obs, *_ = lift.step(action)
    assert np.linalg.norm(obs["robot0_eef_pos"] - target) < 0.01


def test_delta_mode_moves_by_scaled_deltas() -> None:
    env = RobomimicEnv("lift", action_mode="delta")
    try:
        assert env.robosuite_env.robots[0].part_controllers["right"].input_type == "delta"
        obs, _ = env.reset(seed=1)
        start = obs["robot0_eef_pos"].copy()
        for _ in range(10):
            obs, *_ = env.step(np.array([0, 0, 1.0, 0, 0, 0, -1]))  # up, at full scale
        assert obs["robot0_eef_pos"][2] - start[2] > 0.05
        assert np.abs(obs["robot0_eef_pos"][:2] - start[:2]).max() < 0.02
    finally:
        env.close()


def test_nan_and_wrong_shape_actions_are_refused(lift: RobomimicEnv) -> None:
    lift.reset(seed=0)
    with pytest.raises(DpbenchError, match="NaN"):
        lift.step(np.full(7, np.nan))
    with pytest.raises(DpbenchError, match=r"expected \(7,\)"):
        lift.step(np.zeros(10))


def test_unsupported_mujoco_gets_one_clear_message(monkeypatch) -> None:
    from dpbench.envs.robomimic import env as env_module

    assert check_mujoco().startswith("3.")
    monkeypatch.setattr(env_module.metadata, "version", lambda name: "3.10.1")
    with pytest.raises(DpbenchError, match=r"mujoco>=3.3,<3.10"):
        env_module.check_mujoco()


def test_importing_dpbench_does_not_import_robosuite() -> None:
    code = (
        "import sys, dpbench, dpbench.envs, dpbench.tasks, dpbench.cli; "
        "from dpbench.tasks import get_task; get_task('lift').obs_mode('image'); "
        "print('robosuite' in sys.modules, 'mujoco' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_camera_observations_feed_the_image_obs_mode() -> None:
    from dpbench.tasks import get_task

    mode = get_task("lift").obs_mode("image")
    env = gym.make("dpbench/Lift-v0", **mode.env_kwargs)
    try:
        obs, _ = env.reset(seed=100000)
        assert env.observation_space.contains(obs)
        for cam in ("agentview", "robot0_eye_in_hand"):
            img = obs[f"{cam}_image"]
            assert img.shape == (84, 84, 3) and img.dtype == np.uint8 and img.std() > 5  # a real picture
        arrays = mode.from_env({k: v[None] for k, v in obs.items()})  # a batch of one
        assert {k: v.shape[1:] for k, v in arrays.items()} == dict(mode.spec.obs_shapes)
    finally:
        env.close()


# ------------------------------------------------------------------------------- demonstrators
def test_lift_demonstrator_succeeds_and_ends_on_success(lift: RobomimicEnv) -> None:
    for seed in range(3):
        ep = run_episode(lift, seed, "ph")
        assert ep is not None, f"seed {seed} failed"
        n = len(ep["actions"])
        assert ep["actions"].shape == (n, 7) and ep["object"].shape == (n, 10)
        # replaying the recorded actions open loop from the same seed succeeds at the same step
        lift.reset(seed=seed)
        done_at = None
        for t, a in enumerate(ep["actions"]):
            _, reward, terminated, _, info = lift.step(a)
            if terminated:
                done_at = t + 1
                assert info["is_success"] and reward == 1.0
                break
        assert done_at == n


def test_grasps_and_releases_are_state_triggered(lift: RobomimicEnv) -> None:
    """Each gripper switch happens at a state the policy observes, not on a timer: the gripper command turns
    to closed at the step where the grip site is at the commanded pose and still (< 4 mm away, < 1 mm per
    step), and the lift starts only once the fingers have stopped closing. Checked on the recorded arrays
    (obs[t] is what the policy saw when it chose actions[t]) of Lift ph and mh and Can ph (its release too)."""
    can = RobomimicEnv("can")
    try:
        for env, seed, variant in ((lift, 100002, "ph"), (lift, 100003, "mh"), (can, 100001, "ph")):
            ep = run_episode(env, seed, variant)
            assert ep is not None
            grip, eef, fingers = ep["actions"][:, 6], ep["robot0_eef_pos"], ep["robot0_gripper_qpos"]
            switches = np.flatnonzero(np.diff(grip) != 0) + 1  # first step of each new gripper command
            assert len(switches) >= 1
            for t in switches:
                assert np.linalg.norm(eef[t] - ep["actions"][t, :3]) < 0.004, (variant, t)
                assert np.linalg.norm(eef[t] - eef[t - 1]) < 0.001, (variant, t)
                # the next move starts only after the fingers stopped: the command holds the pose until then
                moves = np.flatnonzero(np.linalg.norm(np.diff(ep["actions"][t:, :3], axis=0), axis=1) > 1e-9)
                if len(moves):
                    first_move = t + int(moves[0]) + 1
                    assert np.abs(fingers[first_move] - fingers[first_move - 1]).max() < 2e-4, (variant, t)
    finally:
        can.close()


def test_lift_grasp_yaw_is_the_one_nearest_the_wrist(lift: RobomimicEnv) -> None:
    """Lift ph turns the gripper by at most 45 degrees to its grasp (the cube repeats every 90)."""
    for seed in range(100000, 100006):
        _obs, _ = lift.reset(seed=seed)
        start = lift.control_rotation(0)
        ep = run_episode(lift, seed, "ph")
        assert ep is not None
        grasp = R.axis_angle_to_matrix(ep["actions"][-1, 3:6])
        turn = wrap_to(float(np.arctan2(grasp[1, 0], grasp[0, 0]) - np.arctan2(start[1, 0], start[0, 0])), 2 * np.pi)
        assert abs(turn) <= np.pi / 4 + 1e-6, (seed, turn)


def test_lift_mh_demos_use_two_grasp_modes(lift: RobomimicEnv) -> None:
    """mh grasps the cube at one of two yaws 90 degrees apart: the demos are bimodal."""
    offsets = []
    for seed in range(8):
        ep = run_episode(lift, seed, "mh")
        if ep is None:
            continue
        grasp = R.axis_angle_to_matrix(ep["actions"][-1, 3:6])
        gripper_yaw = float(np.arctan2(grasp[1, 0], grasp[0, 0]))
        offsets.append(wrap_to(gripper_yaw - object_yaw(ep["object"][0, 3:7]), 2 * np.pi))
    folded = np.abs(np.array(offsets)) % np.pi  # yaw relative to the cube, up to the gripper's 180 symmetry
    near_0 = np.minimum(folded, np.pi - folded) < 0.2
    near_90 = np.abs(folded - np.pi / 2) < 0.2
    assert np.all(near_0 | near_90) and near_0.any() and near_90.any()


@pytest.mark.parametrize("task", ["can", "square"])
def test_can_and_square_demonstrators_succeed_and_objects_are_in_robomimic_order(task: str) -> None:
    env = RobomimicEnv(task)
    try:
        obs, _ = env.reset(seed=100001)
        suite = env.robosuite_env
        body = suite.obj_body_id[suite.obj_to_use]
        np.testing.assert_allclose(obs["object"][:3], suite.sim.data.body_xpos[body], atol=1e-5)  # pos first
        # the gripper-relative pose is observed at reset too (robosuite 1.5 leaves it zero there)
        assert np.linalg.norm(obs["object"][7:10]) > 0.05
        for variant in ("ph", "mh"):
            ep = run_episode(env, 100001, variant)
            assert ep is not None and len(ep["actions"]) < TASK_SPECS[task].horizon(variant)
    finally:
        env.close()


def test_transport_and_tool_hang_objects_are_in_robomimic_order() -> None:
    """robomimic's order (robosuite's pre-1.5 sensor lists): Transport's 10 absolute features, then the 4
    gripper-to-object positions, then the 2 in-bin flags; ToolHang per object (base, frame, tool) its
    pose, then its pose in the eef frame, then the 2 assembly flags. robosuite 1.5 orders both otherwise."""
    env = RobomimicEnv("transport")
    try:
        obs, _ = env.reset(seed=100001)
        raw, o = env.robosuite_env._get_observations(force_update=True), obs["object"]
        np.testing.assert_allclose(o[:3], raw["payload_pos"], atol=1e-6)
        np.testing.assert_allclose(o[24:27], raw["trash_bin_pos"], atol=1e-6)  # 3+4+3+4+3+4+3 = 24
        np.testing.assert_allclose(o[27:30], raw["payload_pos"] - obs["robot0_eef_pos"], atol=1e-5)
        assert set(o[39:41].tolist()) <= {0.0, 1.0}
    finally:
        env.close()
    env = RobomimicEnv("tool_hang")
    try:
        obs, _ = env.reset(seed=100001)
        raw, o = env.robosuite_env._get_observations(force_update=True), obs["object"]
        for i, obj in enumerate(("base", "frame", "tool")):
            np.testing.assert_allclose(o[14 * i : 14 * i + 3], raw[f"{obj}_pos"], atol=1e-6)
            np.testing.assert_allclose(o[14 * i + 3 : 14 * i + 7], raw[f"{obj}_quat"], atol=1e-6)
        assert set(o[42:44].tolist()) <= {0.0, 1.0}
    finally:
        env.close()


# ------------------------------------------------------------------------------- datasets
def test_env_args_of_official_and_converted_files_give_the_action_mode() -> None:
    v141 = {
        "env_name": "Lift",
        "type": 1,
        "env_kwargs": {
            "robots": ["Panda"],
            "control_freq": 20,
            "controller_configs": {"type": "OSC_POSE", "control_delta": True},
        },
    }
    assert action_mode_from_env_args("lift", v141, "f") == "delta"
    dp_abs = json.loads(json.dumps(v141))
    dp_abs["env_kwargs"]["controller_configs"]["control_delta"] = False
    assert action_mode_from_env_args("lift", dp_abs, "f") == "abs"
    v15 = {
        "env_name": "PickPlaceCan",
        "env_kwargs": {
            "robots": "Panda",
            "controller_configs": {
                "type": "BASIC",
                "body_parts": {"right": {"type": "OSC_POSE", "input_type": "absolute"}},
            },
        },
    }
    assert action_mode_from_env_args("can", v15, "f") == "abs"
    with pytest.raises(DpbenchError, match="recorded on robosuite env 'Lift'"):
        action_mode_from_env_args("can", v141, "f")
    with pytest.raises(DpbenchError, match=r"no data\.attrs"):
        action_mode_from_env_args("lift", None, "f")
    bad_ctrl = json.loads(json.dumps(v141))
    bad_ctrl["env_kwargs"]["controller_configs"] = {"type": "JOINT_VELOCITY"}
    with pytest.raises(DpbenchError, match="OSC_POSE"):
        action_mode_from_env_args("lift", bad_ctrl, "f")


@pytest.fixture(scope="module")
def lift_demos(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lift") / "lift_ph.hdf5"
    stats = collect_robomimic("lift", 3, path, "ph", workers=1, progress=False)
    assert stats["kept"] == 3 and 0 < stats["success_rate"] <= 1
    return path


def test_collected_file_is_robomimic_layout_with_env_args(lift_demos: Path) -> None:
    import h5py

    with h5py.File(lift_demos) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        assert sorted(f["data"]) == ["demo_0", "demo_1", "demo_2"]
        assert f["data/demo_0/actions"].shape[1] == 7
        assert set(f["data/demo_0/obs"]) == {"object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"}
        assert f["data/demo_0/states"].shape == (len(f["data/demo_0/actions"]), 32)  # robomimic's simulator states
    assert env_args["env_name"] == "Lift" and env_args["dpbench"]["action_mode"] == "abs"
    assert {k: v for k, v in env_args.items() if k != "dpbench"} == env_args_for("lift")
    assert env_args["env_kwargs"]["horizon"] == TASK_SPECS["lift"].horizon("ph") == 400
    assert action_mode_from_env_args("lift", env_args, str(lift_demos)) == "abs"


# ------------------------------------------------------------------ dataset against env, by replayed states
@pytest.fixture(scope="module")
def can_demos(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("can") / "can_ph.hdf5"
    collect_robomimic("can", 2, path, "ph", workers=1, progress=False)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of a robomimic file with ``edit(key, obs array)`` applied to every demo's obs."""
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        for demo in f["data"].values():
            for key in list(demo["obs"]):
                new = edit(key, demo["obs"][key][:])
                del demo["obs"][key]
                demo["obs"].create_dataset(key, data=new)
    return dst


# robomimic v1.4.1's can `object` (the env's): Can_pos(3), Can_quat(4), Can_to_robot0_eef_pos(3),
# Can_to_robot0_eef_quat(4). robosuite 1.5 (v1.5 files) puts the relative pose first.
V15_OBJECT = [7, 8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6]


def test_dataset_layouts_are_checked_by_replaying_recorded_states(can_demos: Path, tmp_path: Path) -> None:
    from dpbench.data.episodes import load_episodes
    from dpbench.envs.robomimic.agreement import ENV_LAYOUT, ROBOSUITE_LAYOUT, check_dataset

    keys = TASK_SPECS["can"].lowdim_keys
    ours = check_dataset("can", can_demos, keys)  # the env's layout (robomimic v1.4.1, DP's abs files)
    assert ours.layout == ENV_LAYOUT and ours.columns == {} and ours.states_checked == 4  # 2 demos x steps 1, 2
    v15 = _rewrite(can_demos, tmp_path / "v15.hdf5", lambda k, v: v[:, V15_OBJECT] if k == "object" else v)
    got = check_dataset("can", v15, keys)
    assert got.layout == ROBOSUITE_LAYOUT and set(got.columns) == {"object"}
    original = load_episodes(can_demos, keys).data
    mapped = got.apply(load_episodes(v15, keys).data)
    np.testing.assert_array_equal(mapped["object"], original["object"])  # mapped back to the env's order
    # Diffusion Policy's *_abs files: robomimic v1.4.1 observations, a 1.4-style absolute controller
    import h5py

    dp_abs = _rewrite(can_demos, tmp_path / "can_abs.hdf5", lambda k, v: v)
    with h5py.File(dp_abs, "r+") as f:
        args = json.loads(f["data"].attrs["env_args"])
        args["env_kwargs"]["controller_configs"] = {"type": "OSC_POSE", "control_delta": False}
        f["data"].attrs["env_args"] = json.dumps(args)
        assert action_mode_from_env_args("can", args, "dp") == "abs"
    assert check_dataset("can", dp_abs, keys).layout == ENV_LAYOUT
    # a deliberate permutation no layout explains: eef x and y swapped
    swapped = _rewrite(
        can_demos, tmp_path / "swapped.hdf5", lambda k, v: v[:, [1, 0, 2]] if k == "robot0_eef_pos" else v
    )
    with pytest.raises(DpbenchError, match=r"obs 'robot0_eef_pos' disagrees .* in dims \[0, 1\]"):
        check_dataset("can", swapped, keys)
    # a sign flip in the object's relative position
    flipped = _rewrite(
        can_demos,
        tmp_path / "flipped.hdf5",
        lambda k, v: v * np.r_[np.ones(7), -np.ones(3), np.ones(4)] if k == "object" else v,
    )
    with pytest.raises(DpbenchError, match=r"obs 'object' disagrees .* in dims \[7, 8, 9\]"):
        check_dataset("can", flipped, keys)
    # no states: one clear message
    nostates = tmp_path / "nostates.hdf5"
    import shutil

    shutil.copy(can_demos, nostates)
    with h5py.File(nostates, "r+") as f:
        for demo in f["data"].values():
            del demo["states"]
    with pytest.raises(DpbenchError, match="has no 'states'"):
        check_dataset("can", nostates, keys)


def test_a_run_on_a_v15_layout_file_maps_it_and_says_so(can_demos: Path, tmp_path: Path, capsys) -> None:
    from dpbench.cli import main

    v15 = _rewrite(can_demos, tmp_path / "v15.hdf5", lambda k, v: v[:, V15_OBJECT] if k == "object" else v)
    out = tmp_path / "results"
    argv = [
        "run",
        "--policy",
        "bc",
        "--env",
        "can",
        "--preset",
        "smoke",
        "--dataset",
        str(v15),
        "--out",
        str(out),
        "--quiet",
        *_ONE_EPISODE,  # the property is the file's mapping; one evaluation episode keeps the run end to end
    ]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "robosuite 1.5 object-state order" in stdout and "mapped object" in stdout
    (record,) = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert record["dataset_check"]["layout"].startswith("robosuite 1.5") and record["dataset_check"]["mapped"]["object"]


# A smoke run evaluates twice (2 episodes each) and holds out 2 more: ~6 robosuite episodes of 400-500 steps. Tests
# whose property is not the evaluation schedule run one evaluation of one episode and no held-out one.
_ONE_EPISODE = ("--set", "train.eval_every=6", "--set", "train.eval_episodes=1", "--set", "train.heldout_episodes=0")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpbench.cli", *args], capture_output=True, text=True, timeout=600)


def test_smoke_run_on_lift_end_to_end_and_eval(lift_demos: Path, tmp_path: Path, capsys) -> None:
    from dpbench.cli import main

    out = tmp_path / "results"
    res = _cli(
        "run",
        "--policy",
        "diffusion",
        "--env",
        "lift",
        "--preset",
        "smoke",
        "--dataset",
        str(lift_demos),
        "--out",
        str(out),
        "--quiet",
        "--set",
        "train.normalizer=original",  # the original's robomimic rule, end to end (its math: test_data.py)
        "--set",
        "train.eval_every=6",  # one periodic evaluation (at the end) and the held-out one: the whole path
        "--set",
        "train.eval_episodes=1",  # one 400-step episode each: the path, not the score, is the property
        "--set",
        "train.heldout_episodes=1",
    )
    assert res.returncode == 0, res.stderr
    (record_path,) = (out / "records").glob("lift-low_dim__diffusion__*.json")
    record = json.loads(record_path.read_text())
    assert record["action_mode"] == "abs" and record["env"] == "lift"
    assert record["config"]["train"]["normalizer"] == "original"
    # the checkpoint holds the rule's normalizers: absolute actions' position scaled, rotation 6D and gripper not
    from safetensors.torch import load_file

    weights = load_file(str(out / record["checkpoint"]))
    scale, offset = weights["action_normalizer.scale"], weights["action_normalizer.offset"]
    assert (scale[3:] == 1).all() and (offset[3:] == 0).all() and (scale[:3] != 1).all()
    assert record["final"]["last_eval"]["n_episodes"] == 1 and record["final"]["heldout"]["n_episodes"] == 1
    assert record["final"]["last_eval"]["episode_steps"] == 400  # a file by path stands for ph demos
    # In this process (the run above was the end-to-end subprocess). No --env: the checkpoint's own env. Only
    # best.safetensors, the max-selected weights: the final ones the record names take the same path in test_run.py
    assert main(["eval", str(out / "work" / record["cell_id"] / "best.safetensors"), "--episodes", "1"]) == 0
    assert "success rate" in capsys.readouterr().out
    assert main(["eval", str(out / record["checkpoint"]), "--env", "can", "--episodes", "1"]) == 2
    assert "checkpoint was trained" in capsys.readouterr().err


def test_a_ph_only_task_given_a_file_that_reads_as_mh_stops_in_prepare(tmp_path: Path) -> None:
    """robomimic's mh filter keys make a file by path mh; ToolHang has no mh horizon, so the cell stops before
    training with one message that names the file and why it read as mh."""
    from dpbench.data.episodes import EpisodeStore
    from dpbench.data.registry import DatasetRef
    from dpbench.runner import CellSpec, prepare

    attrs = {"env_args": env_args_for("tool_hang"), "masks": ("better", "okay", "worse")}
    store = EpisodeStore({"action": np.zeros((4, 7), np.float32)}, [4], attrs=attrs)
    data = DatasetRef("path", tmp_path / "tool_hang_low_dim.hdf5", store)
    with pytest.raises(DpbenchError, match=r"reads as mh.*mh filter keys.*ph demonstrations only"):
        prepare(CellSpec("diffusion", "tool_hang", 0, "smoke", out=tmp_path, progress=False), data=data)


def test_a_cell_on_mh_demonstrations_trains_and_evaluates_over_the_mh_horizon(lift_demos: Path, tmp_path: Path) -> None:
    from dpbench.checkpoint import read_checkpoint_meta
    from dpbench.data.episodes import load_episodes
    from dpbench.data.registry import DatasetRef
    from dpbench.runner import CellSpec, prepare, resolve_config, run_cell
    from dpbench.tasks import get_task

    keys = get_task("lift").obs_mode("low_dim").dataset_keys
    data = DatasetRef("scripted-mh", lift_demos, load_episodes(lift_demos, keys))  # named as the mh set
    one_eval = {"train.eval_every": "6", "train.heldout_episodes": "0"}  # the last evaluation is the one read
    cell = prepare(
        CellSpec("diffusion", "lift", 0, "smoke", overrides=one_eval, out=tmp_path, progress=False), data=data
    )
    assert cell.variant == "mh" and cell.task.gym_id == "dpbench/Lift-mh-v0"
    # a cell whose name did not say mh is re-resolved for the data: 1.5x quick's steps (on robomimic the floor's
    # 15,000), in its hash and config
    quick_spec = CellSpec("diffusion", "lift", 0, "quick", out=tmp_path, progress=False)
    quick = prepare(quick_spec, data=data, config=resolve_config(quick_spec))
    assert quick.config.variant == "mh" and quick.config.tcfg.steps == quick.tcfg.steps == 22500
    assert quick.chash != resolve_config(quick_spec).chash and quick.chash in quick.cell_id
    record = run_cell(cell)
    # the original's lift config: `max_steps: 500 if mh else 400`; the checkpoint remembers the variant
    last = record["final"]["last_eval"]
    assert last["episode_steps"] == 500 and max(last["episode_lengths"]) <= 500
    # a smoke-trained policy fails: its episodes run past the ph horizon to the mh one
    failed = [n for n, ok in zip(last["episode_lengths"], last["episode_success"]) if not ok]
    assert all(n == 500 for n in failed) and failed, last["episode_lengths"]
    assert read_checkpoint_meta(tmp_path / record["checkpoint"])["dataset"]["variant"] == "mh"


def _edited_copy(src: Path, dst: Path, edit) -> Path:
    """Copy a robomimic hdf5's data/ group into ``dst`` and apply ``edit(data_group)``."""
    import h5py

    with h5py.File(src) as fin, h5py.File(dst, "w") as fout:
        fin.copy("data", fout)
        edit(fout["data"])
    return dst


def _truncate_actions(data) -> None:
    for demo in data:
        actions = data[f"{demo}/actions"][:]
        del data[f"{demo}/actions"]
        data[f"{demo}/actions"] = actions[:, :6]


def _drop_object(data) -> None:
    for demo in data:
        del data[f"{demo}/obs/object"]


def _drop_actions_of_demo_1(data) -> None:
    del data["demo_1/actions"]


def test_mismatched_robomimic_datasets_get_clear_errors(lift_demos: Path, tmp_path: Path, capsys) -> None:
    import h5py

    from dpbench.cli import main

    empty = tmp_path / "empty.hdf5"
    with h5py.File(empty, "w") as f:
        f.create_group("meta")
    cases = [
        ("can", lift_demos, "recorded on robosuite env 'Lift'"),  # a Lift file offered for Can
        ("lift", _edited_copy(lift_demos, tmp_path / "a.hdf5", _truncate_actions), "expects (7,)"),
        ("lift", _edited_copy(lift_demos, tmp_path / "b.hdf5", _drop_object), "missing obs key(s) ['object']"),
        (
            "lift",
            _edited_copy(lift_demos, tmp_path / "c.hdf5", _drop_actions_of_demo_1),
            "demo 'demo_1' has no 'actions'",
        ),
        ("lift", empty, "no 'data' group"),
    ]
    for env, path, message in cases:  # in this process: any exception but the one-line DpbenchError fails the test
        code = main(
            ["run", "--env", env, "--preset", "smoke", "--dataset", str(path), "--out", str(tmp_path), "--quiet"]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (message, err)


def test_collect_cli_reports_the_demonstrator_success(tmp_path: Path, capsys) -> None:
    from dpbench.cli import main

    out = tmp_path / "lift.hdf5"
    res = _cli("collect", "--env", "lift", "--episodes", "2", "--workers", "1", "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "demonstrator success" in res.stdout and out.exists()
    # the refusals in this process (an unexpected exception fails the test)
    th_mh = ["collect", "--env", "tool_hang", "--variant", "mh", "--episodes", "2", "--out", str(tmp_path / "t.hdf5")]
    assert main(th_mh) == 2
    assert "tool_hang has ph demonstrations only" in capsys.readouterr().err
    # another start seed makes other demos: not into the cache path that --dataset scripted reads
    assert main(["collect", "--env", "lift", "--episodes", "2", "--start-seed", "5"]) == 2
    assert "--out PATH" in capsys.readouterr().err


def test_env_batch_in_worker_processes_matches_in_process() -> None:
    from dpbench.vector import EnvBatch, EnvMaker

    actions = np.random.default_rng(0).uniform(100, 400, size=(5, 4, 2))
    runs = []
    for procs in (1, 2):
        with EnvBatch(EnvMaker("dpbench/PushT-v0", {"obs_type": "state"}), 4, n_procs=procs) as batch:
            obs, _ = batch.reset(seed=7)
            trace = [obs]
            for a in actions:
                obs, reward, *_ = batch.step(a)
                trace += [obs, reward]
        runs.append(trace)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    for procs in (1, 2):  # a partial wave: env 3 is reset but never stepped
        with EnvBatch(EnvMaker("dpbench/PushT-v0", {"obs_type": "state"}), 4, n_procs=procs) as batch:
            first, _ = batch.reset(seed=7, n_active=3)
            obs, reward, terminated, _, _ = batch.step(actions[0])
            assert terminated.tolist() == [False, False, False, True] and reward[3] == 0
            np.testing.assert_array_equal(obs[3], first[3])
            np.testing.assert_array_equal(obs[:3], runs[0][1][:3])  # the active envs step as before


def test_task_specs_cover_the_five_tasks() -> None:
    assert sorted(TASK_SPECS) == ["can", "lift", "square", "tool_hang", "transport"]
    assert [TASK_SPECS[t].lowdim_dim for t in ("lift", "can", "square", "transport", "tool_hang")] == [
        19,
        23,
        23,
        59,
        53,
    ]


def test_evaluations_run_in_waves_that_fit_in_memory(monkeypatch) -> None:
    """Each task's figures cover its envs' measured memory (benchmarks/bench_env_memory.py, results/env_memory.json:
    RSS growth per env after a process's first, and that first env's process less one env), and a wave's envs plus
    its env worker processes fit in the evaluation's share. One figure for all tasks, 120 MB per env and nothing per
    worker, had a Transport wave of 50 envs (~201 MB each) hold 1.7x its share: two Transport cells evaluating at
    once were OOM-killed on 24 GB."""
    from dpbench import evaluate as ev
    from dpbench.tasks import get_task

    measured = json.loads((Path(__file__).resolve().parents[1] / "results" / "env_memory.json").read_text())
    assert {(r["task"], r["mode"]) for r in measured["rows"]} == {(t, m) for t in TASK_SPECS for m in MODES}
    monkeypatch.setattr(ev, "available_memory_mb", lambda: 20_000.0)
    share = 0.35 * 20_000
    for row in measured["rows"]:
        mode = get_task(row["task"]).obs_mode(row["mode"])
        worker = row["first_env_process_mb"] - row["per_env_mb"]
        assert mode.env_memory_mb >= row["per_env_mb"] and mode.env_process_mb >= worker, row
        for procs in (1, 2, 8):  # one: the envs live in the evaluating process, already resident
            wave = ev.episodes_per_wave(mode, 200, procs)
            workers = min(procs, wave) if procs > 1 else 0
            assert wave >= 1 and wave * row["per_env_mb"] + workers * worker <= share, (row, procs)


def test_delta_demonstrations_command_the_same_motion_and_are_read_as_delta(lift: RobomimicEnv, tmp_path: Path) -> None:
    """The delta demonstrator records the delta actions that command the absolute targets, so the
    arm moves as in the absolute episode (same seed), and its file is read back as action mode delta."""
    import h5py

    delta_env = RobomimicEnv("lift", action_mode="delta")
    try:
        absolute, delta = run_episode(lift, 100003, "ph"), run_episode(delta_env, 100003, "ph")
    finally:
        delta_env.close()
    assert absolute is not None and delta is not None
    n = min(len(absolute["actions"]), len(delta["actions"]))
    assert abs(len(absolute["actions"]) - len(delta["actions"])) <= 3
    drift = np.abs(absolute["robot0_eef_pos"][:n] - delta["robot0_eef_pos"][:n]).max()
    assert drift < 0.005, f"eef paths differ by {drift * 1000:.1f} mm"
    assert np.abs(delta["actions"][:, :6]).max() <= 1.0  # robosuite's delta input range
    path = tmp_path / "lift_delta.hdf5"
    collect_robomimic("lift", 2, path, "ph", workers=1, progress=False, action_mode="delta")
    with h5py.File(path) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
    assert action_mode_from_env_args("lift", env_args, str(path)) == "delta"


def _two_part_golden(task: str) -> np.ndarray:
    """Seed 100000's ph actions as the code that collected the cached v4 Transport and ToolHang sets
    recorded them (commit a9662cb): COLLECT_VERSION promises the same episodes for the same seeds."""
    return np.load(Path(__file__).parent / "golden" / "demonstrator_actions_v4_two_part.npz")[f"{task}_abs_ph_100000"]


def _assert_same_episode(actions: np.ndarray, golden: np.ndarray, arms: int) -> None:
    """The golden episode up to the CPU's rounding: numpy/OpenBLAS kernels differ between CPUs (AVX-512 or AVX2;
    docs/measurements.md, "The same demonstrations on another CPU"), so an axis-angle of pi may come out as
    -pi (the same rotation) and contact-rich ends may drift (ToolHang: from step 413 of 549, one step longer).
    Same per arm: gripper switch steps; poses (position, rotation matrix) to 1e-6 over the first 70% of the
    episode; length within 2 steps."""
    assert abs(len(actions) - len(golden)) <= 2, (len(actions), len(golden))
    n = int(0.7 * len(golden))
    for arm in range(arms):
        a, g = actions[:, 7 * arm : 7 * arm + 7], golden[:, 7 * arm : 7 * arm + 7]
        np.testing.assert_allclose(a[:n, :3], g[:n, :3], atol=1e-6)
        np.testing.assert_allclose(R.axis_angle_to_matrix(a[:n, 3:6]), R.axis_angle_to_matrix(g[:n, 3:6]), atol=1e-6)
        for mine, theirs in zip(_gripper_switches(a[:, 6]), _gripper_switches(g[:, 6]), strict=True):
            np.testing.assert_array_equal(mine, theirs)


def _gripper_switches(command: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The steps where a gripper command (T,) switches from open to closed, and from closed to open."""
    closes = np.flatnonzero((command[1:] > 0) & (command[:-1] < 0)) + 1
    opens = np.flatnonzero((command[1:] < 0) & (command[:-1] > 0)) + 1
    return closes, opens


def test_transport_demonstrator_hands_the_hammer_over_on_observed_state() -> None:
    env = RobomimicEnv("transport")
    try:
        ep = run_episode(env, 100000, "ph")
    finally:
        env.close()
    assert ep is not None, "the transport demonstrator failed on test seed 100000"
    actions = ep["actions"]
    _assert_same_episode(actions, _two_part_golden("transport"), arms=2)
    assert actions.shape == (len(ep["states"]), 14) and len(actions) <= 700
    (closes0, opens0), (closes1, opens1) = _gripper_switches(actions[:, 6]), _gripper_switches(actions[:, 13])
    # robot0: lid (close, open), hammer (close, open at the handover); robot1: trash (close, open), hammer (close)
    assert len(closes0) == 2 and len(opens0) == 2
    assert len(closes1) == 2 and len(opens1) == 1
    handed, released = closes1[-1], opens0[-1]
    assert handed < released  # robot0 lets go only after robot1 has closed on the handle ...
    fingers = ep["robot1_gripper_qpos"]
    assert np.abs(fingers[released] - fingers[released - 1]).max() < 2e-4  # ... and its fingers have stopped
    assert fingers[released, 0] - fingers[released, 1] > 0.02  # on the 3 cm handle, not closed on nothing


def test_tool_hang_demonstrator_assembles_the_frame_before_hanging_the_wrench() -> None:
    env = RobomimicEnv("tool_hang")
    try:
        ep = run_episode(env, 100000, "ph")
    finally:
        env.close()
    assert ep is not None, "the tool_hang demonstrator failed on test seed 100000"
    actions = ep["actions"]
    _assert_same_episode(actions, _two_part_golden("tool_hang"), arms=1)
    assert actions.shape == (len(ep["states"]), 7)
    closes, opens = _gripper_switches(actions[:, 6])
    assert len(closes) == 2 and len(opens) == 2  # the frame (grasp, release), then the wrench
    assembled, hung = ep["object"][:, 42], ep["object"][:, 43]  # frame_is_assembled, tool_on_frame
    # not assembled when grasped, inserted by its release, still in when the wrench is grasped
    assert assembled[closes[0]] == 0 and assembled[opens[0]] == 1 and assembled[closes[1]] == 1
    assert not hung[: opens[1]].any()  # the wrench hangs on its own only after it is let go


def test_replaying_a_state_with_its_predecessor_gives_what_step_returned() -> None:
    # At the first step after reset, robosuite 1.5 returns Square's nut-to-gripper pose computed with
    # the pose it cached at reset: the nut, dropped at reset, has fallen about a centimetre since
    env = RobomimicEnv("square")
    try:
        obs, _ = env.reset(seed=3)
        hold = np.r_[obs["robot0_eef_pos"], R.matrix_to_axis_angle(env.control_rotation(0)), -1.0]
        before = env.robosuite_env.sim.get_state().flatten()
        recorded, *_ = env.step(hold)
        after = env.robosuite_env.sim.get_state().flatten()
        lagged = env.observe_state(after, before)["object"]
        fresh = env.observe_state(after)["object"]
    finally:
        env.close()
    np.testing.assert_allclose(lagged[7:10], recorded["object"][7:10], atol=1e-3)  # SquareNut_to_robot0_eef_pos
    assert np.abs(fresh[7:10] - recorded["object"][7:10]).max() > 5e-3  # the fresh replay sees the fallen nut


def test_a_scripted_square_file_agrees_with_its_env_though_the_nut_falls_at_first(tmp_path: Path) -> None:
    from dpbench.envs.robomimic.agreement import ENV_LAYOUT, check_dataset

    path = tmp_path / "square.hdf5"
    collect_robomimic("square", 2, path, "ph", workers=1, progress=False)
    assert check_dataset("square", path, TASK_SPECS["square"].lowdim_keys).layout == ENV_LAYOUT


def test_single_arm_demonstrations_are_the_ones_collection_v4_recorded() -> None:
    # Actions recorded by the single-arm executor that collection v4 shipped with (before the two-arm
    # executor replaced it); COLLECT_VERSION promises the same episodes for the same seeds.
    golden = np.load(Path(__file__).parent / "golden" / "demonstrator_actions_v4.npz")
    for key in golden.files:
        task, mode, variant, seed = key.split("_")
        env = RobomimicEnv(task, action_mode=mode)
        try:
            ep = run_episode(env, int(seed), variant)
        finally:
            env.close()
        assert ep is not None, key
        if mode == "abs":  # absolute axis-angles: pi and -pi are one rotation, and CPUs may round to either
            _assert_same_episode(ep["actions"], golden[key], arms=1)
        else:
            np.testing.assert_allclose(ep["actions"], golden[key], atol=1e-6, err_msg=key)


def test_collector_processes_start_with_avx2_kernels_pinned(monkeypatch) -> None:
    # numpy's and OpenBLAS's AVX-512 kernels round robosuite's controller arithmetic differently: collectors
    # are held to AVX2 ones, so AVX2 and AVX-512 machines collect the same demonstrations.
    import os

    from dpbench.data.collect import collector_pool, pinned_simd_env

    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("NPY_DISABLE_CPU_FEATURES", raising=False)
    pinned = pinned_simd_env()
    if not pinned:
        pytest.skip("not an x86-64 CPU with AVX2: nothing to pin")
    assert pinned["OPENBLAS_CORETYPE"] == "Haswell" and "AVX512F" in pinned["NPY_DISABLE_CPU_FEATURES"].split()
    with collector_pool("lift", (), "abs", "ph", 1, pinned) as pool:
        seen = [pool.apply(os.getenv, (k,)) for k in pinned]
    assert seen == list(pinned.values())
    assert "OPENBLAS_CORETYPE" not in os.environ  # this process's environment is as it was
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")  # a variable the user set stays theirs
    assert "OPENBLAS_CORETYPE" not in pinned_simd_env()


def test_a_collection_records_the_kernels_it_was_held_to(lift_demos: Path) -> None:
    import h5py

    from dpbench.data.collect import pinned_simd_env

    with h5py.File(lift_demos) as f:
        provenance = json.loads(f["data"].attrs["env_args"])["dpbench"]
    assert provenance["pinned_simd"] == pinned_simd_env()


def test_a_killed_collection_resumes_and_writes_what_an_uninterrupted_one_writes(
    lift_demos: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import h5py

    from dpbench.data.collect import PartialCollection

    path = tmp_path / "lift_ph.hdf5"
    save, calls = PartialCollection.save, []

    def save_then_die(self, *args, **kwargs):
        save(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # killed after two seeds were tried and kept
            raise KeyboardInterrupt

    monkeypatch.setattr(PartialCollection, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        collect_robomimic("lift", 3, path, "ph", workers=1, progress=False)
    assert not path.exists() and (tmp_path / ".lift_ph.hdf5.partial" / "meta.json").exists()
    monkeypatch.setattr(PartialCollection, "save", save)
    stats = collect_robomimic("lift", 3, path, "ph", workers=1, progress=False)
    assert "resuming a collection stopped after 2 kept of 2 tried" in capsys.readouterr().out
    assert stats["kept"] == 3 and stats["tried"] >= 3 and not (tmp_path / ".lift_ph.hdf5.partial").exists()
    # the same arrays as the fixture's uninterrupted collection of the same seeds
    with h5py.File(lift_demos) as want, h5py.File(path) as got:
        for demo in ("demo_0", "demo_1", "demo_2"):
            for key in ("actions", "states", "obs/object", "obs/robot0_eef_pos"):
                np.testing.assert_array_equal(got[f"data/{demo}/{key}"][()], want[f"data/{demo}/{key}"][()])


def test_a_partial_collection_of_another_recipe_is_discarded(tmp_path: Path) -> None:
    from dpbench.data.collect import PartialCollection

    kept = PartialCollection(tmp_path / "x.hdf5", {"task": "lift", "action_mode": "abs"})
    kept.save([{"action": np.zeros((3, 7))}], tried=2, next_seed=2, wall_s=1.0)
    episodes, tried, next_seed, _ = kept.load()
    assert tried == 2 and next_seed == 2 and np.array_equal(episodes[0]["action"], np.zeros((3, 7)))
    other = PartialCollection(tmp_path / "x.hdf5", {"task": "lift", "action_mode": "delta"})
    assert other.load() == ([], 0, None, 0.0) and not other.dir.exists()


def test_an_interrupted_collect_says_its_episodes_are_kept(monkeypatch, capsys) -> None:
    import dpbench.data.collect as collect
    from dpbench.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(collect, "collect_robomimic", interrupted)
    assert main(["collect", "--env", "lift", "--episodes", "2", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "episodes kept so far are saved" in err and "rerun the same command" in err and "Traceback" not in err
