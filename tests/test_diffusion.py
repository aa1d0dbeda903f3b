from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dpbench.checkpoint import load_policy, save_policy
from dpbench.config import build_configs
from dpbench.diffusion.flow import FlowMatchingPolicy
from dpbench.diffusion.policy import DiffusionTransformerPolicy, DiffusionUnetPolicy, total_films
from dpbench.diffusion.unet1d import ConditionalUnet1D
from dpbench.errors import DpbenchError
from dpbench.policies import get_policy_class
from dpbench.spec import PolicySpec

SPEC = PolicySpec({"obs": (20,)}, 2)


def _policy(cls, **over):
    pcfg, _ = build_configs(cls, "smoke", {f"policy.{k}": str(v) for k, v in over.items()})
    p = cls(SPEC, pcfg)
    rng = np.random.default_rng(0)
    p.fit_statistics({"obs": rng.uniform(0, 512, (100, 20)), "action": rng.uniform(0, 512, (100, 2))})
    return p


def test_paper_unet_has_the_published_size():
    unet = ConditionalUnet1D(2, 2 * 20, (256, 512, 1024), 256)
    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(65.8e6, rel=0.01)
    small = ConditionalUnet1D(2, 2 * 20, (64, 128, 256), 256)
    assert sum(p.numel() for p in small.parameters()) == pytest.approx(5.4e6, rel=0.01)


def test_obs_film_precompute_matches_full_condition():
    torch.manual_seed(0)
    unet = ConditionalUnet1D(2, 40, (16, 32), 16, n_groups=4)
    x, t, cond = torch.randn(3, 16, 2), torch.tensor([1, 5, 9]), torch.randn(3, 40)
    films = unet.precompute_obs_film(cond)
    assert torch.allclose(unet(x, t, obs_cond=cond), unet(x, t, obs_films=films))
    # the condition matters
    assert not torch.allclose(unet(x, t, obs_cond=cond), unet(x, t, obs_cond=cond + 1))


def test_fast_inference_path_matches_the_eager_forward():
    torch.manual_seed(0)
    unet = ConditionalUnet1D(2, 40, (16, 32, 64), 16, n_groups=4)  # 3 levels: strided down, transposed up
    x, cond, steps = torch.randn(3, 16, 2), torch.randn(3, 40), torch.tensor([90.0, 40.0, 0.0])
    with torch.inference_mode():
        films = total_films(unet, cond, steps)
        for i, t in enumerate(steps):
            eager = unet(x, t.expand(3), obs_cond=cond)
            assert torch.allclose(unet.forward_fast(x, films[i]), eager, atol=1e-5), i


@pytest.mark.parametrize("cls", [DiffusionUnetPolicy, FlowMatchingPolicy])
@pytest.mark.parametrize("batch", [1, 20])  # 20 > FAST_PATH_MAX_BATCH takes the large-batch path
def test_fast_and_naive_policies_predict_the_same_actions(cls, batch):
    fast, naive = _policy(cls), _policy(cls, fast_inference=False)
    naive.load_state_dict(fast.state_dict())
    obs = {"obs": torch.rand(batch, 2, 20) * 512}
    fast.seed(3), naive.seed(3)
    a, b = fast.predict_action(obs), naive.predict_action(obs)
    assert a.shape == (batch, 8, 2)
    assert torch.allclose(a, b, atol=1e-3)  # env units (pixels); float reassociation only


@pytest.mark.parametrize("cls", [DiffusionUnetPolicy, DiffusionTransformerPolicy, FlowMatchingPolicy])
def test_contract_shapes_and_loss(cls):
    p = _policy(cls)
    batch = {"obs": torch.rand(4, 2, 20) * 512, "action": torch.rand(4, 16, 2) * 512}
    loss = p.compute_loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in p.parameters())
    p.eval()
    act = p.predict_action({"obs": torch.rand(3, 2, 20) * 512})
    assert act.shape == (3, p.n_action_steps, 2)


def test_transformer_is_causal_over_action_tokens():
    p = _policy(DiffusionTransformerPolicy).eval()
    model = p.model
    x = torch.randn(1, 16, 2)
    cond = model.encode_obs(torch.randn(1, 2, 20))
    base = model(x, torch.tensor(3), cond)
    x2 = x.clone()
    x2[:, 10:] += 1.0  # change only the future tokens
    out = model(x2, torch.tensor(3), cond)
    assert torch.allclose(base[:, :10], out[:, :10], atol=1e-5)
    assert not torch.allclose(base[:, 10:], out[:, 10:])


def test_sampling_is_deterministic_given_seed_and_ddpm_works():
    p = _policy(DiffusionUnetPolicy).eval()
    obs = {"obs": torch.rand(2, 2, 20) * 512}
    p.seed(7)
    a = p.predict_action(obs)
    p.seed(7)
    assert torch.equal(a, p.predict_action(obs))
    ddpm = _policy(DiffusionUnetPolicy, sampler="ddpm", num_inference_steps=20).eval()
    assert ddpm.predict_action(obs).shape == (2, 8, 2)


def test_checkpoint_roundtrip_and_spec_mismatch(tmp_path):
    p = _policy(DiffusionUnetPolicy).eval()
    path = save_policy(p, tmp_path / "p.safetensors", {"env": "pusht"})
    q, meta = load_policy(path, expect_spec=SPEC)
    assert meta["env"] == "pusht" and meta["policy"] == "diffusion"
    obs = {"obs": torch.rand(2, 2, 20) * 512}
    p.seed(1)
    q.seed(1)
    assert torch.equal(p.predict_action(obs), q.predict_action(obs))  # normalizer travelled too
    with pytest.raises(DpbenchError, match="action_dim"):
        load_policy(path, expect_spec=PolicySpec({"obs": (5,)}, 2))


class _Payload:
    def __reduce__(self):
        return (print, ("this ran code",))


def test_pickled_checkpoint_with_code_is_refused(tmp_path):
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"weights": _Payload()}))
    with pytest.raises(DpbenchError, match="never unpickles"):
        load_policy(evil)
    torch_file = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, torch_file)
    with pytest.raises(DpbenchError, match="never unpickles"):
        load_policy(torch_file)


def test_a_truncated_checkpoint_is_named_as_one(tmp_path):
    path = save_policy(_policy(DiffusionUnetPolicy), tmp_path / "policy.safetensors", {"env": "pusht"})
    weights = {k: v.clone() for k, v in load_file(str(path)).items()}  # not views of the file about to be cut
    path.write_bytes(path.read_bytes()[:100])  # a copy cut short
    with pytest.raises(DpbenchError, match=r"not a readable safetensors checkpoint \(.+\): a truncated or corrupt"):
        load_policy(path)
    for text, says in (
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "has no policy, policy_class, config, spec;"),
        ('{"policy": "diffusion", "policy_class": "x:Y", "spec": {}}', "has no config, spec.obs_shapes/action_dim;"),
    ):  # hand-edited metadata: the last two were a KeyError traceback ('config', 'obs_shapes')
        save_file(weights, str(path), metadata={"dpbench": text})
        with pytest.raises(DpbenchError, match=says):
            load_policy(path)


def test_registry_errors_list_valid_names():
    with pytest.raises(DpbenchError, match=r"valid policies: .*diffusion"):
        get_policy_class("difusion")
    assert get_policy_class("diffusion_cnn") is DiffusionUnetPolicy
    assert get_policy_class("dpbench.diffusion.policy:DiffusionTransformerPolicy") is DiffusionTransformerPolicy
    with pytest.raises(DpbenchError, match="no field 'nope'"):
        build_configs(DiffusionUnetPolicy, "smoke", {"policy.nope": "1"})
    with pytest.raises(DpbenchError, match="no preset"):
        build_configs(DiffusionUnetPolicy, "huge")
    pcfg, tcfg = build_configs(DiffusionUnetPolicy, "quick", {"policy.down_dims": "32,64", "train.steps": "10"})
    assert pcfg.down_dims == (32, 64) and tcfg.steps == 10


def test_flow_matching_learns_a_conditional_target_in_two_steps(fit):
    """Two network evaluations (the default midpoint step) recover a chunk that depends on the observation."""
    torch.manual_seed(0)
    p = _policy(FlowMatchingPolicy)
    for norm in (p.action_normalizer, p.obs_normalizers["obs"]):
        norm.scale.fill_(1.0)
        norm.offset.fill_(0.0)

    def batch() -> dict[str, torch.Tensor]:
        obs = torch.randint(0, 2, (32, 1, 1)).float().expand(32, 2, 20)
        return {"obs": obs, "action": (obs[:, :1, :2] * 1.2 - 0.6).expand(32, 16, 2)}  # -0.6 or +0.6

    fit(p, batch, lr=3e-3)
    lo = p.predict_action({"obs": torch.zeros(4, 2, 20)})
    hi = p.predict_action({"obs": torch.ones(4, 2, 20)})
    # The chunks centre on the observation's target; single elements keep some sampling spread.
    assert abs(lo.mean() - -0.6) < 0.1 and abs(hi.mean() - 0.6) < 0.1
    assert (lo - -0.6).abs().mean() < 0.2 and (hi - 0.6).abs().mean() < 0.2


def test_flow_midpoint_solver_is_second_order_and_euler_is_not():
    """dx/dt = c*t from t=1 to 0 moves x by -c/2: one midpoint step is exact, two Euler steps are not."""
    c = 0.8
    for solver, expected in (("midpoint", -c / 2), ("euler", -c * 0.75)):
        p = _policy(FlowMatchingPolicy, solver=solver, num_inference_steps=2, fast_inference=False)
        p.action_normalizer.scale.fill_(1.0)
        p.action_normalizer.offset.fill_(0.0)
        p.model.forward = lambda x, t, obs_cond=None, obs_films=None: c * (t / 100.0)[:, None, None].expand_as(x)
        out = p.sample_chunk({"obs": torch.zeros(4, 2, 20)}, noise=torch.zeros(4, 16, 2))
        assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6), solver


def test_flow_midpoint_with_an_odd_number_of_evaluations_is_one_clear_error():
    with pytest.raises(DpbenchError, match="midpoint solver takes 2 network evaluations per step"):
        _policy(FlowMatchingPolicy, solver="midpoint", num_inference_steps=3)
    assert _policy(FlowMatchingPolicy, solver="euler", num_inference_steps=3).config.num_inference_steps == 3


def test_more_sampling_steps_than_trained_noise_levels_is_one_clear_error():
    with pytest.raises(DpbenchError, match="num_inference_steps=50 must be between 1 and num_train_timesteps=20"):
        _policy(DiffusionUnetPolicy, num_inference_steps=50)  # smoke trains 20 noise levels


def test_set_values_are_parsed_by_the_fields_declared_types():
    """--set converts by each dataclass field's type (nested ones included) and names field and type when it cannot."""
    from dpbench.config import parse_value

    pcfg, tcfg = build_configs(
        DiffusionUnetPolicy,
        "quick",
        {
            "train.grad_clip": "1.5",
            "train.max_train_episodes": "40",
            "train.betas": "0.9,0.95",
            "train.ema": "off",
            "policy.down_dims": "(32, 64)",
        },
    )
    assert build_configs(DiffusionUnetPolicy, "quick", {"policy.down_dims": "[16, 32]"})[0].down_dims == (16, 32)
    assert tcfg.grad_clip == 1.5 and tcfg.max_train_episodes == 40 and tcfg.betas == (0.9, 0.95) and tcfg.ema is False
    assert pcfg.down_dims == (32, 64) and isinstance(pcfg.down_dims[0], int)
    assert build_configs(DiffusionUnetPolicy, "quick", {"train.grad_clip": "none"})[1].grad_clip is None
    for key, text, expected in [
        ("train.steps", "1e3", "train config.steps (int)"),
        ("train.betas", "0.9", "2 comma-separated values"),
        ("train.ema", "maybe", "expected a boolean"),
        ("train.max_train_episodes", "many", "int | None"),
        ("policy.down_dims", "32,x", "expected int, got 'x'; write tuple[int, ...] as comma-separated values"),
    ]:
        with pytest.raises(DpbenchError, match=re.escape(expected)):
            build_configs(DiffusionUnetPolicy, "quick", {key: text})
    assert parse_value("3", int | None) == 3 and parse_value("null", float | None) is None
    pcfg, _ = build_configs(DiffusionUnetPolicy, "quick", {"policy.vision.keypoints": "16"}, image_obs=True)
    assert pcfg.vision.keypoints == 16  # nested dataclass fields by their own types
