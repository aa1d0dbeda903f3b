"""The baselines behind the shared interface: shapes, losses, recurrent state, and smoke runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpbench.baselines.bet import BETPolicy, kmeans
from dpbench.checkpoint import load_policy, save_policy
from dpbench.cli import main
from dpbench.config import build_configs
from dpbench.errors import DpbenchError
from dpbench.policies import get_policy_class
from dpbench.spec import PolicySpec

SPEC = PolicySpec({"obs": (20,)}, 2)
BASELINES = ["bc", "lstm_gmm", "ibc", "bet"]


def _policy(name: str, preset: str = "smoke"):
    cls = get_policy_class(name)
    p = cls(SPEC, build_configs(cls, preset)[0])
    rng = np.random.default_rng(0)
    p.fit_statistics({"obs": rng.uniform(0, 512, (200, 20)), "action": rng.uniform(0, 512, (200, 2))})
    return p


def _batch(p, b: int = 4) -> dict[str, torch.Tensor]:
    return {"obs": torch.rand(b, p.n_obs_steps, 20) * 512, "action": torch.rand(b, p.horizon, 2) * 512}


@pytest.mark.parametrize("name", BASELINES)
def test_contract(name):
    p = _policy(name)
    loss = p.compute_loss(_batch(p))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(q.grad is None or torch.isfinite(q.grad).all() for q in p.parameters())
    p.eval()
    p.seed(0)
    act = p.predict_action({"obs": _batch(p, 3)["obs"]})
    assert act.shape == (3, p.n_action_steps, 2) and torch.isfinite(act).all()


@pytest.mark.parametrize("name", BASELINES)
def test_checkpoint_roundtrip(name, tmp_path):
    p = _policy(name).eval()
    q, _ = load_policy(save_policy(p, tmp_path / "p.safetensors", {"env": "pusht"}), expect_spec=SPEC)
    obs = {"obs": torch.rand(2, p.n_obs_steps, 20) * 512}
    p.seed(3)
    q.seed(3)
    assert torch.equal(p.predict_action(obs), q.predict_action(obs))


def test_paper_sizes():
    lstm = _policy("lstm_gmm", "paper")
    assert lstm.lstm.hidden_size == 400 and lstm.lstm.num_layers == 2 and lstm.config.num_modes == 5
    assert lstm.horizon == 10
    ibc = _policy("ibc", "paper")
    linears = [m for m in ibc.energy_net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [1024, 1024, 1024, 1024, 1]
    assert ibc.config.train_negatives == 1024 and ibc.config.inference_samples == 1024
    bet = BETPolicy(SPEC, build_configs(BETPolicy, "paper")[0])
    assert bet.config.n_bins == 24 and len(bet.gpt.layers) == 4 and bet.config.n_emb == 72
    assert bet.config.offset_loss_weight == 1000


def test_lstm_state_carries_and_reset_clears():
    p = _policy("lstm_gmm").eval()
    obs = {"obs": torch.rand(2, p.n_obs_steps, 20) * 512}
    other = {"obs": torch.rand(2, p.n_obs_steps, 20) * 512}
    p.reset()
    p.seed(0)
    first = p.predict_action(obs)
    p.seed(0)
    after_history = p.predict_action(obs)  # same input, different recurrent state
    assert not torch.equal(first, after_history)
    p.reset()
    p.predict_action(other)
    p.reset()
    p.seed(0)
    assert torch.equal(p.predict_action(obs), first)


def test_gmm_fits_a_bimodal_target(fit):
    """A GMM head learns two modes that an MSE regressor would average."""
    torch.manual_seed(0)
    p = _policy("lstm_gmm")
    p.action_normalizer.scale.fill_(1.0)
    p.action_normalizer.offset.fill_(0.0)

    def batch() -> dict[str, torch.Tensor]:
        sign = torch.where(torch.rand(64, 1, 1) < 0.5, -1.0, 1.0)
        return {"obs": torch.zeros(64, p.n_obs_steps, 20), "action": sign * torch.ones(64, p.horizon, 2) * 0.8}

    fit(p, batch, lr=1e-2)
    samples = torch.cat(
        [p.predict_action({"obs": torch.zeros(1, p.n_obs_steps, 20)}) for _ in range(40) if not p.reset()]
    )
    assert (samples.abs() > 0.6).float().mean() > 0.9  # samples sit on the modes, not at their mean 0
    assert (samples[:, 0, 0] > 0).any() and (samples[:, 0, 0] < 0).any()


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat(
        [torch.randn(100, 2, generator=g) * 0.05 + c for c in (torch.tensor([-1.0, 0]), torch.tensor([1.0, 0]))]
    )
    centers = kmeans(x, 2, 20)
    assert torch.allclose(centers[:, 0].sort().values, torch.tensor([-1.0, 1.0]), atol=0.05)


def _bowl_ibc(sharpness: float, **config):
    """An IBC whose energy is a bowl sharpness * |a - (0.5, -0.5)|^2 in normalized units."""
    p = _policy("ibc").eval()
    for key, value in config.items():
        setattr(p.config, key, value)
    with torch.no_grad():
        p.energy = lambda feats, a: sharpness * ((a - torch.tensor([0.5, -0.5])) ** 2).sum(-1)  # type: ignore[method-assign]
        p.action_normalizer.scale.fill_(1.0)
        p.action_normalizer.offset.fill_(0.0)
    return p


def test_ibc_inference_finds_low_energy_action():
    """The original's DFO (4 rounds of resampling with noise 0.03, then one draw from softmax(-E)) lands in a sharp
    bowl's minimum: softmax(-2000 d^2) has a std of 1/sqrt(4000) = 0.016 per dim."""
    p = _bowl_ibc(2000.0, inference_samples=256)
    p.seed(0)
    act = p.predict_action({"obs": torch.zeros(4, p.n_obs_steps, 20)})
    assert torch.allclose(act[:, 0], torch.tensor([0.5, -0.5]).expand(4, 2), atol=0.06)


def test_ibc_final_pick_draws_from_the_softmax_like_the_original():
    """On a shallow bowl E = 50 d^2 the original's DFO is a stochastic pick: 4 resampling rounds and the final draw
    each weight the population by softmax(-E), so the pick is about N(minimum, 1 / (2 * 50 * 5)) = std 0.045 per dim,
    widened by the 0.03 resampling noise. argmin picks the lowest-energy candidate instead: far tighter."""
    obs = {"obs": torch.zeros(64, 2, 20)}
    sampled = _bowl_ibc(50.0, inference_samples=512)
    sampled.seed(0)
    spread = (sampled.predict_action(obs)[:, 0] - torch.tensor([0.5, -0.5])).std(0)
    assert ((spread > 0.035) & (spread < 0.09)).all(), spread
    greedy = _bowl_ibc(50.0, inference_samples=512, final_pick="argmin")
    greedy.seed(0)
    tight = (greedy.predict_action(obs)[:, 0] - torch.tensor([0.5, -0.5])).std(0)
    assert (tight < spread / 2).all(), (tight, spread)


def test_ibc_refuses_an_unknown_final_pick():
    from dpbench.baselines.ibc import IBCConfig, IBCPolicy

    with pytest.raises(DpbenchError, match="final_pick"):
        IBCPolicy.check_config(IBCConfig(final_pick="mode"))


@pytest.mark.parametrize("name", BASELINES)
def test_smoke_run_end_to_end(name, tmp_path, tiny_pusht_hdf5, capsys, smoke_argv):
    argv = smoke_argv(name, tiny_pusht_hdf5, tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    paper_name = {"bc": None}.get(name, name)
    if paper_name:
        assert f"| paper (Chi et al. 2023) | {paper_name} | paper | human (ph) | 3 |" in out
    rec = json.loads(next((tmp_path / "records").glob("*.json")).read_text())
    assert rec["policy"] == name and len(rec["history"]) == 2


def test_transformers_decay_linear_weights_only():
    """minGPT's rule, as the original's BET and DP-T get_optim_groups: decay on Linear and attention projection
    weights; none on biases, LayerNorm weights or position embeddings."""
    from torch import nn

    from dpbench.diffusion.policy import DiffusionTransformerPolicy

    for cls in (BETPolicy, DiffusionTransformerPolicy):
        policy = cls(SPEC, build_configs(cls, "smoke")[0])
        decay, no_decay = policy.param_groups(0.1)
        assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
        names = {id(p): n for n, p in policy.named_parameters()}
        decayed = {names[id(p)] for p in decay["params"]}
        kept = {names[id(p)] for p in no_decay["params"]}
        assert decayed | kept == set(names.values()) and not decayed & kept
        assert all(n.endswith("weight") for n in decayed)
        assert any("in_proj_weight" in n for n in decayed) and any("linear1.weight" in n for n in decayed)
        assert all(n.endswith("bias") or "norm" in n or "ln_f" in n or "pos" in n for n in kept), kept
        linear_weights = {n for n, m in policy.named_modules() if isinstance(m, nn.Linear) for n in [f"{n}.weight"]}
        assert linear_weights <= decayed


def test_task_overrides_apply_over_presets_but_not_smoke():
    from dpbench.diffusion.policy import DiffusionTransformerPolicy

    pcfg, tcfg = build_configs(DiffusionTransformerPolicy, "quick", task="pusht")
    assert pcfg.p_drop_attn == 0.01 and tcfg.weight_decay == 0.1  # the original's Push-T transformer config
    pcfg, tcfg = build_configs(DiffusionTransformerPolicy, "quick", task="lift")
    assert pcfg.p_drop_attn == 0.3 and tcfg.weight_decay == 1e-3
    pcfg, _ = build_configs(DiffusionTransformerPolicy, "quick", {"policy.p_drop_attn": "0.2"}, task="pusht")
    assert pcfg.p_drop_attn == 0.2  # --set wins
    assert build_configs(DiffusionTransformerPolicy, "smoke", task="pusht")[1].weight_decay != 0.1


def test_lstm_gmm_trains_on_unpadded_sequences_with_squashed_means():
    """robomimic's BC-RNN: 10-step sequences inside their episode (no front padding) and tanh on the GMM means."""
    policy = _policy("lstm_gmm")
    assert policy.sequence_padding() == (0, 0)
    with torch.no_grad():
        policy.head.bias.fill_(50.0)  # raw means of 50 would leave the normalized box
        mix = policy._mixture(torch.zeros(3, policy.config.hidden_dim))
    assert mix.component_distribution.base_dist.loc.abs().max() <= 1.0


@pytest.mark.parametrize("name", [*BASELINES, "diffusion"])
def test_select_action_owns_the_window_and_the_queue(name):
    """select_action plans once per T_a steps, on a window of obs_steps_read steps that starts as copies
    of the first observation; LSTM-GMM reads only the newest step (its history is its LSTM state)."""
    p = _policy(name).eval()
    seen: list[torch.Tensor] = []
    plan = p.predict_chunk

    def recording(obs):
        seen.append(obs["obs"].clone())
        return plan(obs)

    p.predict_chunk = recording
    p.reset()
    p.seed(0)
    steps = [torch.full((2, 20), float(t)) for t in range(2 * p.n_action_steps + 1)]
    actions = [p.select_action({"obs": o}) for o in steps]
    assert all(a.shape == (2, 2) for a in actions)
    assert len(seen) == 3  # steps 0, T_a and 2 T_a plan a chunk; the others pop the queue
    read = 1 if name == "lstm_gmm" else p.n_obs_steps
    assert all(w.shape == (2, read, 20) for w in seen)
    assert torch.equal(seen[0], torch.zeros(2, read, 20))  # the first window: copies of step 0
    assert seen[1][0, -1, 0] == p.n_action_steps  # the newest observation is the current step's
    p.reset()
    p.select_action({"obs": steps[-1]})
    last = float(len(steps) - 1)
    assert len(seen) == 4 and torch.equal(seen[3], torch.full((2, read, 20), last))  # reset cleared both
