from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dpbench.checkpoint import load_policy, save_policy
from dpbench.cli import main
from dpbench.config import build_configs, config_to_dict
from dpbench.data.episodes import EpisodeStore, load_hdf5, write_hdf5
from dpbench.errors import DpbenchError
from dpbench.policies import available_policies, get_policy_class
from dpbench.tasks import get_task
from dpbench.vision import ImageEncoders, ResNetEncoder, SpatialSoftmax, VisionConfig

IMAGE_SPEC = get_task("pusht").obs_mode("image").spec
POLICIES = sorted(set(available_policies()) - {"diffusion_cnn"})


def _image_policy(name: str, preset: str = "smoke"):
    cls = get_policy_class(name)
    policy = cls(IMAGE_SPEC, build_configs(cls, preset, image_obs=True)[0])
    rng = np.random.default_rng(0)
    policy.fit_statistics({"agent_pos": rng.uniform(0, 512, (64, 2)), "action": rng.uniform(0, 512, (64, 2))})
    return policy


def _batch(policy, b: int = 3) -> dict[str, torch.Tensor]:
    t = policy.n_obs_steps
    return {
        "image": torch.randint(0, 256, (b, t, 96, 96, 3), dtype=torch.uint8),
        "agent_pos": torch.rand(b, t, 2) * 512,
        "action": torch.rand(b, policy.horizon, 2) * 512,
    }


def test_paper_encoder_is_resnet18_with_group_norm():
    enc = ResNetEncoder(VisionConfig())
    convs = sum(
        p.numel() for m in enc.modules() if isinstance(m, nn.Conv2d) and m is not enc.pool.heat for p in m.parameters()
    )
    norms = [m for m in enc.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
    assert convs == pytest.approx(11.17e6, rel=0.005)  # ResNet-18's convolutions (no fc)
    assert all(isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels // 16 for m in norms)
    assert enc(torch.rand(2, 3, 84, 84)).shape == (2, 64)


def test_spatial_softmax_finds_a_bright_spot():
    head = SpatialSoftmax(1, 1)
    with torch.no_grad():
        head.heat.weight.fill_(50.0), head.heat.bias.zero_()
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 2, 6] = 1.0  # row 2, column 6 -> x = 0.5, y = -0.5 on a [-1, 1] grid
    assert torch.allclose(head(x), torch.tensor([[0.5, -0.5]]), atol=1e-3)


def test_random_crops_while_training_centre_crop_at_eval():
    enc = ImageEncoders({"image": (96, 96, 3)}, VisionConfig(widths=(8,), blocks=(1,), crop_ratio=0.875))
    assert enc.crops["image"] == (84, 84)
    x = torch.arange(4 * 96 * 96, dtype=torch.float32).reshape(4, 1, 96, 96).expand(4, 3, 96, 96)
    enc.train()
    torch.manual_seed(0)
    crops = enc.crop(x, (84, 84))
    assert crops.shape == (4, 3, 84, 84)
    corners = []
    for i in range(4):  # every crop is a contiguous window of its own image
        top, left = divmod(int(crops[i, 0, 0, 0]) - i * 96 * 96, 96)
        assert torch.equal(crops[i], x[i, :, top : top + 84, left : left + 84])
        corners.append((top, left))
    assert len(set(corners)) > 1
    enc.eval()
    assert torch.equal(enc.crop(x, (84, 84)), x[:, :, 6:90, 6:90])


def test_one_encoder_per_camera_or_shared():
    shapes = {"agentview": (84, 84, 3), "eye_in_hand": (84, 84, 3)}
    cfg = VisionConfig(widths=(8, 16), blocks=(1, 1), keypoints=4, feature_dim=8)
    separate, shared = (
        ImageEncoders(shapes, cfg),
        ImageEncoders(shapes, VisionConfig(**{**cfg.__dict__, "shared": True})),
    )
    assert len(separate.nets) == 2 and len(shared.nets) == 1
    obs = {k: torch.randint(0, 256, (2, 2, 84, 84, 3), dtype=torch.uint8) for k in shapes}
    assert separate(obs).shape == shared(obs).shape == (2, 2, 16)


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_trains_its_encoder_end_to_end(name):
    torch.manual_seed(0)
    policy = _image_policy(name)
    batch = _batch(policy)
    loss = policy.compute_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in policy.image_encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    policy.eval(), policy.reset(), policy.seed(0)
    actions = policy.predict_action({k: v for k, v in batch.items() if k != "action"})
    assert actions.shape == (3, policy.n_action_steps, 2) and torch.isfinite(actions).all()


def test_image_checkpoint_roundtrip(tmp_path):
    policy = _image_policy("diffusion")
    obs = {k: v for k, v in _batch(policy).items() if k != "action"}
    policy.eval(), policy.seed(1)
    before = policy.predict_action(obs)
    path = save_policy(policy, tmp_path / "p.safetensors", {"env": "pusht", "obs": "image"})
    loaded, _ = load_policy(path, expect_spec=IMAGE_SPEC)
    assert loaded.config.vision == policy.config.vision
    loaded.seed(1)
    assert torch.allclose(loaded.predict_action(obs), before)
    with pytest.raises(DpbenchError, match="obs"):  # an image policy on the keypoint env
        load_policy(path, expect_spec=get_task("pusht").obs_mode("keypoints").spec)


def test_vision_overrides_and_their_errors():
    cls = get_policy_class("diffusion")
    pcfg, _ = build_configs(
        cls, "quick", {"policy.vision.widths": "16,32", "policy.vision.blocks": "1,1"}, image_obs=True
    )
    assert pcfg.vision.widths == (16, 32) and pcfg.vision.downsample == 2  # the quick preset's value survives
    with pytest.raises(DpbenchError, match="only to image observations"):
        build_configs(cls, "quick", {"policy.vision.widths": "16,32"})
    with pytest.raises(DpbenchError, match="no field 'nope'"):
        build_configs(cls, "quick", {"policy.vision.nope": "1"}, image_obs=True)
    assert "vision" not in config_to_dict(build_configs(cls, "quick")[0])  # low-dim configs (and hashes) unchanged


def test_image_run_end_to_end(tmp_path, tiny_pusht_hdf5, capsys):
    rc = main(
        [
            "run",
            "--policy",
            "diffusion",
            "--env",
            "pusht",
            "--obs",
            "image",
            "--seeds",
            "1",
            "--preset",
            "smoke",
            "--dataset",
            str(tiny_pusht_hdf5),
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert record["obs"] == "image" and record["config"]["policy"]["vision"]["downsample"] == 4
    assert 0.0 <= record["final"]["max"] <= 1.0


def _rewrite(src, dst, change) -> str:
    store = load_hdf5(src)
    data = change(dict(store.data))
    write_hdf5(EpisodeStore(data, store.episode_ends, source="bad"), dst)
    return str(dst)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: {k: v for k, v in d.items() if k != "img"}, "missing obs key(s) ['img']"),
        (lambda d: {**d, "img": np.ascontiguousarray(d["img"].transpose(0, 3, 1, 2))}, "channels-first (3, 96, 96)"),
        (
            lambda d: {**d, "img": d["img"][:, :64, :64]},
            "observation 'image' has shape (64, 64, 3), env 'pusht' expects (96, 96, 3)",
        ),
    ],
)
def test_bad_image_datasets_get_one_clear_error(tmp_path, tiny_pusht_hdf5, capsys, change, message):
    path = _rewrite(tiny_pusht_hdf5, tmp_path / "bad.hdf5", change)
    _run_refused(path, "image", tmp_path, capsys, message)


def test_a_wrong_shape_names_the_datasets_own_keys(tmp_path, tiny_pusht_hdf5, capsys):
    # keypoints of 3 numbers: the policy-side 'obs' (keypoints and agent position) is 29 wide, not 20; the message
    # names the dataset's arrays, as the user never wrote a key called 'obs'
    bad = lambda d: {**d, "keypoint": np.concatenate([d["keypoint"], d["keypoint"][..., :1]], -1)}  # noqa: E731
    path = _rewrite(tiny_pusht_hdf5, tmp_path / "bad.hdf5", bad)
    message = "observation 'obs' has shape (29,), env 'pusht' expects (20,) (this obs mode reads the dataset's "
    _run_refused(path, "keypoints", tmp_path, capsys, message + "'keypoint' (9, 3), 'state' (5,))")


def _run_refused(path: str, obs: str, tmp_path, capsys, message: str) -> None:
    rc = main(
        [
            "run",
            "--policy",
            "bc",
            "--env",
            "pusht",
            "--obs",
            obs,
            "--seeds",
            "1",
            "--preset",
            "smoke",
            "--dataset",
            path,
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err
