from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from dpbench.data.episodes import EpisodeStore, load_episodes, load_hdf5, load_zarr, write_hdf5
from dpbench.data.normalizer import RangeNormalizer
from dpbench.data.sampler import SequenceSampler, split_episodes, window_indices
from dpbench.errors import DpbenchError


def _store(lengths=(3, 5)) -> EpisodeStore:
    n = sum(lengths)
    data = {"action": np.arange(n * 2, dtype=np.float32).reshape(n, 2), "obs": np.arange(n, dtype=np.float32)[:, None]}
    return EpisodeStore(data, np.cumsum(lengths))


def test_window_padding_matches_paper_semantics():
    # episode of length 3 at steps 0..2, horizon 4, pad_before 1 (T_o=2), pad_after 2 (T_a=3)
    idx = window_indices(np.array([3, 8]), np.array([0]), horizon=4, pad_before=1, pad_after=2)
    expected = [[0, 0, 1, 2], [0, 1, 2, 2], [1, 2, 2, 2]]
    assert idx.tolist() == expected
    second = window_indices(np.array([3, 8]), np.array([1]), horizon=4, pad_before=1, pad_after=2)
    assert second.min() == 3 and second.max() == 7  # never crosses into episode 0
    assert second[0].tolist() == [3, 3, 4, 5]


def test_sampler_batches_obs_window_and_action_horizon():
    store = _store()
    sampler = SequenceSampler.build(
        store, store.data, np.array([0, 1]), horizon=4, n_obs_steps=2, pad_before=1, pad_after=2
    )
    batch = sampler.batch(np.array([0]))
    assert batch["obs"].shape == (1, 2, 1) and batch["action"].shape == (1, 4, 2)
    assert batch["obs"][0, :, 0].tolist() == [0.0, 0.0]  # start padding repeats the first step
    rng = np.random.default_rng(0)
    assert len(list(sampler.epoch(2, rng))) == len(sampler) // 2


def _original_split(n: int, val_ratio: float, seed: int, max_n: int | None) -> tuple[list[int], list[int]]:
    """A second implementation, written as the original's boolean masks (get_val_mask, then
    downsample_mask of common/sampler.py in real-stanford/diffusion_policy)."""
    val_mask = np.zeros(n, dtype=bool)
    n_val = min(max(1, round(n * val_ratio)), n - 1)
    val_mask[np.random.default_rng(seed=seed).choice(n, size=n_val, replace=False)] = True
    train_mask = ~val_mask
    if max_n is not None and train_mask.sum() > max_n:
        idx = np.nonzero(train_mask)[0]
        chosen = idx[np.random.default_rng(seed=seed).choice(len(idx), size=max_n, replace=False)]
        train_mask = np.zeros_like(train_mask)
        train_mask[chosen] = True
    return np.nonzero(train_mask)[0].tolist(), np.nonzero(val_mask)[0].tolist()


def test_split_is_the_originals_masks():
    # The paper's Push-T protocol: 206 episodes, 2% validation, 90 training episodes, seed 42.
    train, val = split_episodes(206, 0.02, seed=42, max_train_episodes=90)
    assert (train.tolist(), val.tolist()) == _original_split(206, 0.02, 42, 90)
    assert len(train) == 90 and len(val) == 4 and not set(train) & set(val)
    for n, ratio, seed, cap in [(100, 0.1, 0, 20), (50, 0.02, 3, None), (5, 0.5, 1, 2)]:
        got = split_episodes(n, ratio, seed, cap)
        assert (got[0].tolist(), got[1].tolist()) == _original_split(n, ratio, seed, cap)


def test_normalizer_roundtrip_and_range():
    x = np.random.default_rng(0).uniform(-5, 300, size=(100, 3)).astype(np.float32)
    x[:, 2] = 7.0  # constant dimension
    norm = RangeNormalizer(3).fit(x)
    y = norm.normalize(torch.from_numpy(x))
    assert float(y[:, :2].min()) == pytest.approx(-1, abs=1e-5) and float(y[:, :2].max()) == pytest.approx(1, abs=1e-5)
    assert torch.allclose(y[:, 2], torch.zeros(100))
    assert torch.allclose(norm.unnormalize(y), torch.from_numpy(x), atol=1e-3)
    restored = RangeNormalizer(3)
    restored.load_state_dict(norm.state_dict())
    assert torch.equal(restored.scale, norm.scale)


def _original_lowdim_normalize(obs: dict[str, np.ndarray], actions: np.ndarray, abs_action: bool):
    """A second implementation, in numpy: the original's robomimic low-dim normalizers
    (robomimic_replay_lowdim_dataset.get_normalizer and normalize_util, real-stanford/diffusion_policy)."""
    flat = np.concatenate(list(obs.values()), axis=-1)  # the original concatenates the obs keys
    max_abs = np.maximum(flat.max(0).max(), np.abs(flat.min(0)).max())  # normalizer_from_stat
    n_obs = {k: v / max_abs for k, v in obs.items()}
    if not abs_action:
        return n_obs, actions  # get_identity_normalizer_from_stat
    out = actions.copy()
    half = actions.shape[-1] // 2 if actions.shape[-1] > 10 else actions.shape[-1]  # dual arm: pos0, other0, pos1, ...
    for start in range(0, actions.shape[-1], half):
        pos = actions[:, start : start + 3]
        lo, hi = pos.min(0), pos.max(0)
        scale = 2 / (hi - lo)
        out[:, start : start + 3] = pos * scale + (-1 - scale * lo)
    return n_obs, out


@pytest.mark.parametrize(("action_mode", "action_dim"), [("delta", 7), ("abs", 10), ("delta", 14), ("abs", 20)])
def test_the_original_robomimic_normalizers_match_its_formulas(action_mode: str, action_dim: int) -> None:
    from dpbench.baselines.bc import BCConfig, BCPolicy
    from dpbench.data.normalization import normalization_for
    from dpbench.spec import PolicySpec

    rng = np.random.default_rng(0)
    obs = {
        "object": rng.normal(0.0, 0.05, (200, 10)) + rng.uniform(-0.3, 0.3, 10),
        "robot0_eef_pos": rng.normal(0.0, 0.03, (200, 3)) + [0.1, 0.0, 1.0],
    }
    actions = rng.uniform(-0.4, 0.6, (200, action_dim))
    policy = BCPolicy(PolicySpec({k: (v.shape[1],) for k, v in obs.items()}, action_dim), BCConfig())
    policy.normalization = normalization_for("original", "square", action_mode, action_dim)
    policy.fit_statistics({**obs, "action": actions})
    want_obs, want_actions = _original_lowdim_normalize(obs, actions, abs_action=action_mode == "abs")
    for k, v in obs.items():
        got = policy.obs_normalizers[k].normalize(torch.from_numpy(v).float())
        assert np.allclose(got.numpy(), want_obs[k], atol=1e-5)
    got = policy.action_normalizer.normalize(torch.from_numpy(actions).float())
    assert np.allclose(got.numpy(), want_actions, atol=1e-5)
    # the default rule and Push-T (no action mode) keep dpbench's per-dimension ranges
    assert normalization_for("range", "square", action_mode, action_dim) == normalization_for(
        "original", "pusht", None, 2
    )
    ranged = BCPolicy(PolicySpec({k: (v.shape[1],) for k, v in obs.items()}, action_dim), BCConfig())
    ranged.fit_statistics({**obs, "action": actions})
    y = ranged.action_normalizer.normalize(torch.from_numpy(actions).float())
    assert np.allclose(y.min(0).values.numpy(), -1, atol=1e-5) and np.allclose(y.max(0).values.numpy(), 1, atol=1e-5)


def test_hdf5_roundtrip_keeps_content_hash(tmp_path):
    store = _store()
    path = write_hdf5(store, tmp_path / "d.hdf5", env_args={"env_name": "x"})
    back = load_hdf5(path)
    assert back.n_episodes == 2 and back.n_steps == 8
    assert back.content_hash() == store.content_hash()
    assert back.attrs["env_args"] == {"env_name": "x"}


def test_human_zarr_loads(human_zarr):
    store = load_zarr(human_zarr, keys=["state", "action", "keypoint"])
    assert store.n_episodes == 206 and store.n_steps == 25650
    assert store.data["keypoint"].shape == (25650, 9, 2)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "data, ends, match",
    [
        ({"obs": np.zeros((4, 1))}, [4], "no 'action'"),
        ({"action": np.zeros((0, 2))}, [], "empty"),
        ({"action": np.zeros((4, 2)), "obs": np.zeros((3, 1))}, [4], "mismatched"),
        ({"action": np.array([[0, 0], [np.nan, 1]], dtype=np.float32)}, [2], "NaN"),
        ({"action": np.zeros((4, 2))}, [3, 2], "increasing"),
    ],
)
def test_invalid_stores_get_clear_errors(data, ends, match):
    with pytest.raises(DpbenchError, match=match):
        EpisodeStore(data, np.array(ends))


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(DpbenchError, match="no such dataset"):
        load_episodes(tmp_path / "nope.zarr")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DpbenchError, match="unknown dataset format"):
        load_episodes(tmp_path / "x.txt")


def test_hdf5_structural_problems(tmp_path):
    p = tmp_path / "a.hdf5"
    with h5py.File(p, "w") as f:
        f.create_group("other")
    with pytest.raises(DpbenchError, match="no 'data' group"):
        load_hdf5(p)
    with h5py.File(p, "w") as f:
        f.create_group("data/demo_0/obs").create_dataset("state", data=np.zeros((3, 5)))
    with pytest.raises(DpbenchError, match="no 'actions'"):
        load_hdf5(p)
    with h5py.File(p, "w") as f:
        d = f.create_group("data/demo_0")
        d.create_dataset("actions", data=np.zeros((3, 2)))
        d.create_group("obs").create_dataset("state", data=np.zeros((2, 5)))
    with pytest.raises(DpbenchError, match="2 steps but actions has 3"):
        load_hdf5(p)
    with pytest.raises(DpbenchError, match="missing obs key"):
        load_hdf5(p, keys=["keypoint"])


def test_fuzz_truncated_and_corrupted_hdf5(tmp_path, tiny_pusht_hdf5):
    raw = tiny_pusht_hdf5.read_bytes()
    rng = np.random.default_rng(0)
    for i, cut in enumerate([10, 100, len(raw) // 3, len(raw) // 2, len(raw) - 50]):
        p = tmp_path / f"trunc{i}.hdf5"
        p.write_bytes(raw[:cut])
        with pytest.raises(DpbenchError, match=str(p.name)):
            load_hdf5(p)
    for i in range(5):
        buf = bytearray(raw)
        pos = rng.integers(0, len(buf), size=200)
        for j in pos:
            buf[j] = rng.integers(0, 256)
        p = tmp_path / f"corrupt{i}.hdf5"
        p.write_bytes(bytes(buf))
        try:
            store = load_hdf5(p)
        except DpbenchError:
            continue  # a clear error is the expected outcome
        assert store.n_episodes > 0  # flipped bytes landed in unused space: the data must still be valid


def test_fuzz_corrupted_zarr(tmp_path, human_zarr):
    # Copy only the small arrays (no images) and damage one chunk.
    dst = tmp_path / "copy.zarr"
    shutil.copytree(human_zarr, dst, ignore=shutil.ignore_patterns("img"))
    chunk = next((dst / "data" / "action").glob("0.*"))
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.raises(DpbenchError, match=r"copy\.zarr"):
        load_zarr(dst, keys=["action", "state"])
    meta = dst / "data" / "state" / ".zarray"
    meta.write_text("{not json")
    with pytest.raises(DpbenchError, match=r"copy\.zarr"):
        load_zarr(dst, keys=["state"])
    shutil.rmtree(dst / "data" / "state")
    shutil.rmtree(dst / "meta")
    with pytest.raises(DpbenchError, match="episode_ends"):
        load_zarr(dst)


def test_data_info_json(tiny_pusht_hdf5, capsys):
    from dpbench.cli import main

    assert main(["data", "info", str(tiny_pusht_hdf5), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 4 and info["steps"] == 120 and "keypoint" in info["keys"]
    assert len(info["content_hash"]) == 16


def test_data_info_reads_a_dataset_name_as_dpbench_list_shows_it(tiny_pusht_hdf5, tmp_path, monkeypatch, capsys):
    """`dpbench data info NAME --env ENV` reads the file `--dataset NAME` trains on (here the cache's
    scripted-delta Square file), and a name not collected yet says how to collect it, not "no such dataset"."""
    from dpbench.cli import main
    from dpbench.data.registry import scripted_robomimic_path

    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path))
    path = scripted_robomimic_path("square", "ph", action_mode="delta")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_pusht_hdf5, path)
    assert main(["data", "info", str(path), "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)["content_hash"]
    assert main(["data", "info", "scripted-delta", "--env", "square", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["content_hash"] == by_path
    assert main(["data", "info", "scripted-mh-delta", "--env", "square"]) == 2
    err = capsys.readouterr().err
    assert "dpbench collect --env square --variant mh --action-mode delta" in err and "no such dataset" not in err
    assert main(["data", "info", "scripted-delta", "--env", "sqare"]) == 2
    assert "did you mean 'square'" in capsys.readouterr().err


def test_data_info_reproduces_a_records_dataset_hash(tiny_pusht_hdf5, tmp_path, capsys):
    """A record's dataset hash covers the arrays its run loaded (dataset.keys); `dpbench data info
    --keys` with those keys prints the same hash, without them the hash over every array."""
    import json

    from dpbench.cli import main

    out = tmp_path / "r"
    argv = ["run", "--policy", "bc", "--env", "pusht", "--preset", "smoke", "--dataset", str(tiny_pusht_hdf5)]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    (record,) = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    keys = [k for k in record["dataset"]["keys"] if k != "action"]
    capsys.readouterr()
    assert main(["data", "info", str(tiny_pusht_hdf5), "--keys", ",".join(keys)]) == 0
    assert f"hash:      {record['dataset']['hash']}" in capsys.readouterr().out
    assert main(["data", "info", str(tiny_pusht_hdf5)]) == 0
    assert record["dataset"]["hash"] not in capsys.readouterr().out  # the file holds more arrays (img)


def test_scripted_robomimic_sets_are_as_large_as_robomimics(tmp_path, monkeypatch):
    from dpbench.data.registry import list_datasets, scripted_robomimic_path

    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path))
    # robomimic's ph datasets hold 200 demonstrations, its mh datasets 300 (6 operators x 50)
    assert scripted_robomimic_path("square", "ph").name.endswith("_200ep.hdf5")
    assert scripted_robomimic_path("square", "mh", action_mode="delta").name.endswith("_300ep.hdf5")
    listed = {(name, env) for name, env, _ in list_datasets()}
    assert ("scripted-mh", "transport") in listed and ("scripted", "tool_hang") in listed
    assert ("scripted-mh", "tool_hang") not in listed  # ToolHang has ph demonstrations only


def test_a_dataset_by_path_knows_its_variant(tmp_path):
    from dpbench.data.registry import DatasetRef

    def ref(name: str, env_args: dict, masks: tuple[str, ...] = ()) -> DatasetRef:
        path = write_hdf5(_store(), tmp_path / name, env_args=env_args)
        with h5py.File(path, "a") as f:  # robomimic's filter keys: mask/<name> lists of demo names
            for m in masks:
                f.create_dataset(f"mask/{m}", data=np.array([b"demo_0"]))
        return DatasetRef("path", path, load_hdf5(path))

    # robomimic's mh files carry the operators' quality groups; its ph files only splits such as 20_percent
    assert ref("mh.hdf5", {}, ("better", "okay", "worse", "20_percent")).variant == "mh"
    assert ref("ph.hdf5", {}, ("20_percent", "train", "valid")).variant == "ph"
    assert ref("plain.hdf5", {"env_name": "x"}).variant == "ph"
    # a file dpbench collected says what it collected, whatever its name
    mine = ref("anything.hdf5", {"dpbench": {"variant": "mh"}})
    assert mine.variant == "mh" and mine.identity()["variant"] == "mh"
    assert DatasetRef("scripted-mh-delta", mine.path, mine.store).variant == "mh"
    assert DatasetRef("scripted-delta", mine.path, mine.store).variant == "ph"  # a name decides first


def _chunked_zarr(path, n=400, chunk=50):
    """A Push-T-layout zarr written by zarr itself, in many chunks (zarr's concurrent reads need several)."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    rng = np.random.default_rng(0)
    for key, shape in (("action", (2,)), ("state", (5,)), ("keypoint", (9, 2))):
        root.create_array(f"data/{key}", shape=(n, *shape), chunks=(chunk, *shape), dtype="f4")[:] = rng.random(
            (n, *shape)
        )
    root.create_array("meta/episode_ends", shape=(4,), chunks=(4,), dtype="i8")[:] = np.arange(1, 5) * (n // 4)
    return path


def test_a_zarr_with_chunks_missing_on_disk_is_refused_not_read_as_zeros(tmp_path, capsys):
    # zarr reads a chunk missing on disk as its fill value: a half-finished unzip would train on zero actions
    whole = load_zarr(_chunked_zarr(tmp_path / "whole.zarr"))
    assert whole.n_steps == 400 and capsys.readouterr().err == ""
    cut = _chunked_zarr(tmp_path / "cut.zarr")
    (cut / "data" / "action" / "3.0").unlink()
    with pytest.raises(DpbenchError, match=r"array 'action' has 7 of its 8 chunks on disk .*unzip the dataset again"):
        load_zarr(cut)
    # another array may hold whole chunks of fill values that zarr 3 never writes: a warning, and it loads
    shutil.copy(tmp_path / "whole.zarr" / "data" / "action" / "3.0", cut / "data" / "action" / "3.0")
    (cut / "data" / "keypoint" / "0.0.0").unlink()
    store = load_zarr(cut)
    assert "array 'keypoint' has 7 of its 8 chunks on disk" in capsys.readouterr().err
    np.testing.assert_array_equal(store.data["keypoint"][:50], 0)
    np.testing.assert_array_equal(store.data["action"], whole.data["action"])
    # but a run reads the arrays its obs mode names (keys): keypoints are never a whole chunk of zeros, so a gap
    # there is refused too (it warned and trained the keypoints obs mode on zeros)
    with pytest.raises(DpbenchError, match=r"array 'keypoint' has 7 of its 8 chunks on disk .*unzip the dataset again"):
        load_zarr(cut, keys=["keypoint"])
    assert load_zarr(cut, keys=["state"]).n_steps == 400  # an array the run does not read: not its concern


def test_the_console_script_prints_one_line_for_a_corrupt_zarr_chunk(tmp_path):
    import subprocess
    import sys

    bad = _chunked_zarr(tmp_path / "bad.zarr", n=4000)
    (bad / "data" / "keypoint" / "7.0.0").write_bytes(np.random.default_rng(0).bytes(300))
    # zarr's other chunk reads were left pending and logged hundreds of lines at exit, in about half the runs
    for _ in range(3):
        res = subprocess.run(
            [sys.executable, "-m", "dpbench.cli", "data", "info", str(bad)], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr.splitlines() == [res.stderr.strip()] and "could not read the zarr dataset" in res.stderr


def test_the_console_script_ends_an_interrupt_with_its_one_line(tmp_path):
    """Ctrl-C while zarr loads a dataset leaves its chunk reads pending; at exit each logged "Task was destroyed
    but it is pending!" or a traceback (a newcomer's Ctrl-C two seconds into a Push-T run: 450 lines under the
    interrupt message). Here a closed event loop with pending tasks stands in for zarr's, and main for an
    interrupted run (status 130)."""
    import subprocess
    import sys

    script = tmp_path / "interrupted.py"
    script.write_text(
        "import asyncio\n"
        "import dpbench.cli as cli\n"
        "loop = asyncio.new_event_loop()\n"
        "async def forever():\n"
        "    await asyncio.sleep(3600)\n"
        "tasks = [loop.create_task(forever()) for _ in range(3)]  # collected at exit, as zarr's are\n"
        "loop.run_until_complete(asyncio.sleep(0))\n"
        "loop.close()\n"
        "cli.main = lambda: 130\n"
        "cli.console_main()\n"
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 130 and res.stderr == "", res.stderr


def test_an_empty_demo_is_named(tmp_path):
    path = tmp_path / "demos.hdf5"
    with h5py.File(path, "w") as f:
        for name, steps in (("demo_0", 3), ("demo_1", 0), ("demo_2", 2)):
            f[f"data/{name}/actions"] = np.zeros((steps, 2), np.float32)
            f[f"data/{name}/obs/x"] = np.zeros((steps, 1), np.float32)
    with pytest.raises(DpbenchError, match="demo 'demo_1' has no steps"):  # was: episode_ends must be increasing
        load_hdf5(path)


def test_ibc_draws_from_the_normalized_actions_box_as_the_original(capsys) -> None:
    # The original's IBC draws counter-examples and first samples from Uniform(normalized action min, max)
    # (get_naction_stats); under the original's robomimic rule delta actions are not normalized, so that box is the
    # data's own, not [-1, 1]
    from dpbench.baselines.ibc import IBCConfig, IBCPolicy
    from dpbench.data.normalization import normalization_for
    from dpbench.spec import PolicySpec

    rng = np.random.default_rng(1)
    obs = {"object": rng.normal(0, 0.1, (300, 4))}
    actions = np.stack([rng.uniform(-0.2, 0.36, 300), rng.uniform(-0.02, 0.02, 300), np.full(300, 0.5)], axis=1)
    spec = PolicySpec({"object": (4,)}, 3)
    policy = IBCPolicy(spec, IBCConfig(hidden_dims=(8,), train_negatives=4, inference_samples=8))
    policy.normalization = normalization_for("original", "square", "delta", 3)
    policy.fit_statistics({**obs, "action": actions})
    assert np.allclose(policy.action_low.numpy(), [actions[:, 0].min(), actions[:, 1].min(), -1], atol=1e-6)
    assert np.allclose(policy.action_high.numpy(), [actions[:, 0].max(), actions[:, 1].max(), 1], atol=1e-6)
    policy.seed(0, [100000, 100001])
    drawn = policy.predict_chunk({"object": torch.zeros(2, 2, 4)})[:, 0]  # unnormalized = normalized: identity
    assert (drawn[:, 0] >= actions[:, 0].min() - 0.2).all() and (drawn[:, 0] <= actions[:, 0].max() + 0.2).all()
    # a checkpoint from before the box was a buffer loads with the box it was trained in, [-1, 1]
    old = {k: v for k, v in policy.state_dict().items() if k not in ("action_low", "action_high")}
    fresh = IBCPolicy(spec, IBCConfig(hidden_dims=(8,), train_negatives=4, inference_samples=8))
    fresh.load_state_dict(old)
    assert (fresh.action_low == -1).all() and (fresh.action_high == 1).all()
    # under the default rule the box stays exactly [-1, 1]
    ranged = IBCPolicy(spec, IBCConfig(hidden_dims=(8,), train_negatives=4, inference_samples=8))
    ranged.fit_statistics({**obs, "action": actions})
    assert (ranged.action_low == -1).all() and (ranged.action_high == 1).all()
    # unscaled dimensions beyond [-1, 1] get a warning: diffusion sampling clips there
    wide = actions.copy()
    wide[0, 1] = 1.7
    policy.fit_statistics({**obs, "action": wide})
    err = capsys.readouterr().err
    assert "leaves action dimension(s) [1] unscaled, and the data reach |a| = 1.7 there" in err


def test_normalizer_rules_are_refused_where_they_cannot_mean_anything() -> None:
    from dpbench.data.normalization import check_normalizer

    with pytest.raises(DpbenchError, match="same rule as range on Push-T"):
        check_normalizer("original", "pusht", image_obs=False)
    with pytest.raises(DpbenchError, match="image-dataset normalizers are not implemented"):
        check_normalizer("original", "lift", image_obs=True)
    check_normalizer("original", "lift", image_obs=False)
    check_normalizer("range", "pusht", image_obs=True)
