"""``ibc``: implicit behaviour cloning (Florence et al., 2021) with derivative-free inference.

An energy MLP E(o, a) scores an observation window against a candidate action. Training is
InfoNCE: the demonstrated action must get the lowest energy among ``train_negatives`` counter-
examples drawn uniformly within the normalized action bounds [-1, 1].

Inference is the derivative-free optimizer of Chi et al.'s ``ibc_dfo`` policy (their default,
"andy's" branch; real-stanford/diffusion_policy ``policy/ibc_dfo_*_policy.py``): draw
``inference_samples`` candidates uniformly, then ``inference_iters`` times resample them in
proportion to softmax(-E) and add Gaussian noise of std ``noise_scale`` (shrunk by
``noise_shrink`` each round; 1.0 = constant, the original), and finally draw one candidate from
softmax(-E) (``final_pick="sample"``; ``"argmin"`` takes the lowest energy instead). The original
neither clamps the perturbed candidates nor keeps an EMA of the weights. The sample counts
dominate CPU time, so they are config fields. docs/ibc_vs_original.md compares the two point by point.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from dpbench.baselines.bc import mlp
from dpbench.config import PolicyConfig
from dpbench.data.normalization import RANGE
from dpbench.errors import DpbenchError
from dpbench.policy import Policy
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec


@dataclasses.dataclass
class IBCConfig(PolicyConfig):
    """``ibc``'s settings: the energy MLP, the InfoNCE counter-examples and the derivative-free optimizer
    (the original's ibc_dfo values)."""

    n_obs_steps: int = 2  # T_o (the original's IBC: 2)
    horizon: int = 2  # the action at the current step (index n_obs_steps - 1) is modelled
    n_action_steps: int = 1  # T_a (the original: 1)
    hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)  # energy MLP widths (the original: 4 x 1024)
    dropout: float = 0.1  # dropout in the energy MLP (the original: 0.1)
    train_negatives: int = 1024  # counter-examples per training sample, uniform in the action box (the original: 1024)
    inference_samples: int = 1024  # candidate actions per derivative-free optimization (the original: 1024)
    inference_iters: int = 4  # resampling rounds (the original's pred_n_iter=5 energy evaluations)
    noise_scale: float = 0.03  # std of the resampling noise, in normalized action units ([-1, 1])
    noise_shrink: float = 1.0  # noise multiplier per round (1.0: constant, as the original)
    clamp: bool = False  # clamp perturbed candidates to [-1, 1] (the original does not)
    final_pick: str = "sample"  # "sample": one draw from softmax(-E) (original) | "argmin": the lowest energy


class IBCPolicy(Policy):
    """``ibc``: implicit BC (Florence et al., 2021). An energy MLP scores the flattened T_o observation features
    against a normalized action; trained with InfoNCE against uniform counter-examples, sampled with Chi et al.'s
    derivative-free optimizer (``ibc_dfo``). Returns the current step's action (B, 1, D_a)."""

    name = "ibc"
    positive_fields = ("hidden_dims", "train_negatives", "inference_samples")  # 0 resampling rounds is a choice
    Config = IBCConfig
    window_rule = "single"
    default_action_mode = "delta"  # the paper trains its baselines in robomimic's delta actions
    presets = {
        "paper": ({}, budget(100_000, first_eval=0, batch_size=256, lr=1e-4, ema=False)),
        # CPU-sized: the original's 4x1024 MLP with 1024 negatives and 1024 samples costs ~90 s per training step
        # and ~90 min per evaluation on one core (measured); 4x128 with 256 of each is ~60x cheaper.
        "quick": (
            dict(hidden_dims=(128, 128, 128, 128), train_negatives=256, inference_samples=256),
            budget(7000, batch_size=64, lr=5e-4, warmup_steps=200, ema=False),
        ),  # the knee of its 8k-step curve
        "smoke": (dict(hidden_dims=(32, 32), train_negatives=16, inference_samples=32, inference_iters=2), SMOKE_TRAIN),
    }

    @classmethod
    def check_config(cls, config: PolicyConfig) -> None:
        super().check_config(config)
        if getattr(config, "final_pick", "sample") not in ("sample", "argmin"):
            raise DpbenchError(f"policy 'ibc': final_pick must be 'sample' or 'argmin', got {config.final_pick!r}")

    def __init__(self, spec: PolicySpec, config: IBCConfig) -> None:
        super().__init__(spec, config)
        in_dim = self.obs_feature_dim * config.n_obs_steps + spec.action_dim
        self.energy_net = mlp(in_dim, tuple(config.hidden_dims), 1, config.dropout)
        # The box counter-examples and the optimizer's first samples are drawn from, in normalized action units:
        # the original's get_naction_stats, the normalized training actions' [min, max] per dimension. Under
        # the "range" normalizer that is [-1, 1]; under train.normalizer=original (robomimic: delta actions
        # unscaled) it is the data's own box (fit_statistics).
        self.register_buffer("action_low", -torch.ones(spec.action_dim))
        self.register_buffer("action_high", torch.ones(spec.action_dim))
        self._register_load_state_dict_pre_hook(_box_of_older_checkpoints)

    def fit_statistics(self, arrays: dict[str, np.ndarray]) -> None:
        super().fit_statistics(arrays)
        if self.normalization != RANGE:  # under "range" the box stays exactly [-1, 1], as records were made
            actions = self.action_normalizer.normalize(torch.as_tensor(arrays["action"], dtype=torch.float32))
            low, high = actions.min(0).values, actions.max(0).values
            flat = (high - low) < 1e-4  # a constant dimension: the original's box is a point there; keep [-1, 1]
            self.action_low.copy_(torch.where(flat, -1.0, low))
            self.action_high.copy_(torch.where(flat, 1.0, high))

    def _uniform(self, draw: torch.Tensor) -> torch.Tensor:
        """``draw`` (..., D_a) of U[0, 1) mapped into the action box."""
        return self.action_low + (self.action_high - self.action_low) * draw

    def energy(self, obs_feats: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs_feats (B, F), actions (B, N, D_a) normalized -> energies (B, N)."""
        n = actions.shape[1]
        x = torch.cat([obs_feats[:, None, :].expand(-1, n, -1), actions], dim=-1)
        return self.energy_net(x).squeeze(-1)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = self.obs_features(batch).flatten(1)
        target = self.action_normalizer.normalize(batch["action"][:, self.n_obs_steps - 1].float())
        b, d = target.shape
        negatives = self._uniform(torch.rand(b, self.config.train_negatives, d, device=target.device))
        candidates = torch.cat([target[:, None], negatives], dim=1)
        # Shuffle so the positive's index carries no information.
        perm = torch.argsort(torch.rand(b, candidates.shape[1], device=target.device), dim=1)
        candidates = torch.gather(candidates, 1, perm[..., None].expand(-1, -1, d))
        labels = torch.argmin(perm, dim=1)  # where index 0 (the positive) went
        return F.cross_entropy(-self.energy(feats, candidates), labels)

    @property
    def chunk_start(self) -> int:
        """0: ``predict_chunk`` returns only the current step's action, (B, 1, D_a)."""
        return 0  # predict_chunk returns only the current step's action

    @torch.inference_mode()
    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        feats = self.obs_features(obs).flatten(1)
        b, d, n = feats.shape[0], self.spec.action_dim, cfg.inference_samples
        samples = self._uniform(self.rand(b, n, d))
        sigma = cfg.noise_scale
        for _ in range(cfg.inference_iters):
            probs = torch.softmax(-self.energy(feats, samples), dim=-1)
            idx = self.sample_index(probs, n)
            samples = torch.gather(samples, 1, idx[..., None].expand(-1, -1, d))
            samples = samples + sigma * self.randn(b, n, d)
            if cfg.clamp:
                samples = samples.clamp(self.action_low, self.action_high)
            sigma *= cfg.noise_shrink
        energy = self.energy(feats, samples)
        if cfg.final_pick == "argmin":
            pick = torch.argmin(energy, dim=-1)
        else:
            pick = self.sample_index(torch.softmax(-energy, dim=-1), 1)[:, 0]
        action = samples[torch.arange(b, device=self.device), pick]
        return self.action_normalizer.unnormalize(action)[:, None, :]


def _box_of_older_checkpoints(state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Checkpoints from before the action box was a buffer trained in [-1, 1]: load them with that box."""
    dim = (
        state_dict[prefix + "action_normalizer.scale"].numel()
        if prefix + "action_normalizer.scale" in state_dict
        else 0
    )
    if dim and prefix + "action_low" not in state_dict:
        state_dict[prefix + "action_low"] = -torch.ones(dim)
        state_dict[prefix + "action_high"] = torch.ones(dim)
