"""The shared training step against a hand-written AdamW + EMA step, and its errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dpbench.config import build_configs
from dpbench.diffusion.policy import DiffusionUnetPolicy
from dpbench.errors import DpbenchError
from dpbench.spec import PolicySpec
from dpbench.train import EMA, _load_resume, make_optimizer, train_step


def _setup():
    over = {"train.steps": "6", "train.warmup_steps": "2", "train.weight_decay": "0.1", "train.lr": "0.01"}
    pcfg, tcfg = build_configs(DiffusionUnetPolicy, "smoke", over)  # weight decay large enough to matter
    torch.manual_seed(0)
    policy = DiffusionUnetPolicy(PolicySpec({"obs": (20,)}, 2), pcfg)
    rng = np.random.default_rng(0)
    policy.fit_statistics({"obs": rng.uniform(0, 512, (100, 20)), "action": rng.uniform(0, 512, (100, 2))})
    batch = {
        "obs": torch.rand(4, policy.n_obs_steps, 20) * 512,
        "action": torch.rand(4, policy.horizon, 2) * 512,
    }
    return policy, tcfg, batch


def test_train_step_equals_a_hand_written_adamw_and_ema_step():
    policy, tcfg, batch = _setup()
    ref = copy.deepcopy(policy)
    optimizer, scheduler = make_optimizer(policy, tcfg)
    ema = EMA(policy, tcfg.ema_power, tcfg.ema_max_decay)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=tcfg.lr, betas=tcfg.betas, weight_decay=tcfg.weight_decay)
    ref_ema = [p.detach().clone() for p in ref.parameters()]

    # The original's schedule is diffusers' cosine with warm-up; dpbench's warm-up is one step ahead of it
    # (it starts at 1/warmup_steps, not 0: dpbench.train.lr_lambda), and equal after the warm-up.
    from diffusers.optimization import get_cosine_schedule_with_warmup

    original = get_cosine_schedule_with_warmup(
        torch.optim.SGD([torch.zeros(1)], lr=1.0), tcfg.warmup_steps, tcfg.steps
    ).lr_lambdas[0]

    def factor(i: int) -> float:
        return (i + 1) / tcfg.warmup_steps if i < tcfg.warmup_steps else original(i)

    for i in range(4):
        torch.manual_seed(10 + i)
        loss = train_step(policy, batch, optimizer, scheduler, ema, tcfg, i)
        torch.manual_seed(10 + i)
        ref_loss = ref.compute_loss(batch)
        ref_opt.zero_grad()
        ref_loss.backward()
        for g in ref_opt.param_groups:
            g["lr"] = tcfg.lr * factor(i)
        ref_opt.step()
        d = min(tcfg.ema_max_decay, 1 - (1 + i) ** -tcfg.ema_power)
        for e, p in zip(ref_ema, ref.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
        assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    for a, b in zip(policy.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(ema.model.parameters(), ref_ema):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_train_step_stops_on_a_non_finite_loss_before_touching_the_weights():
    policy, tcfg, batch = _setup()
    optimizer, scheduler = make_optimizer(policy, tcfg)
    before = [p.detach().clone() for p in policy.parameters()]
    batch["action"][0, 0, 0] = float("nan")
    with pytest.raises(DpbenchError, match="training diverged: the loss became nan at step 3"):
        train_step(policy, batch, optimizer, scheduler, None, tcfg, 2)
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    # at the first step no update has run, so the message does not blame the learning rate
    with pytest.raises(DpbenchError, match="compute_loss returned nan at the first step, before any update") as exc:
        train_step(policy, batch, optimizer, scheduler, None, tcfg, 0)
    assert "train.lr" not in str(exc.value)


def test_train_step_names_a_policy_whose_loss_is_not_a_scalar(monkeypatch):
    policy, tcfg, batch = _setup()
    optimizer, scheduler = make_optimizer(policy, tcfg)
    monkeypatch.setattr(policy, "compute_loss", lambda b: torch.ones(3))
    with pytest.raises(DpbenchError, match=r"compute_loss must return a scalar tensor, got Tensor \(3,\)"):
        train_step(policy, batch, optimizer, scheduler, None, tcfg, 0)


def test_a_checkpoint_that_fails_to_load_is_one_message_even_without_an_exception_text(monkeypatch, tmp_path):
    # An exception with an empty message (a bare RuntimeError()) must still become the one-line "cannot resume"
    # error, not an IndexError from taking the first line of "".
    def broken(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(torch, "load", broken)
    with pytest.raises(DpbenchError, match=r"cannot resume from this checkpoint \(RuntimeError: \); delete it"):
        _load_resume(tmp_path / "train_state.pt", None, None, None, None, np.random.default_rng(0))
