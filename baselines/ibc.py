"""``ibc``: implicit behaviour cloning (Florence et al., 2021) with derivative-free inference.

An energy MLP E(o, a) scores an observation window against a candidate action. Training is
InfoNCE: the demonstrated action must get the lowest energy among ``train_negatives`` counter-
examples drawn uniformly within the normalized action bounds [-1, 1]. Inference samples
``inference_samples`` candidates, then for ``inference_iters`` rounds resamples them in
proportion to softmax(-E) and perturbs them with shrinking Gaussian noise; it returns the
lowest-energy candidate. The sample counts dominate CPU time, so they are config fields.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from dpbench.baselines.bc import mlp
from dpbench.policy import SMOKE_TRAIN, Policy, PolicyConfig
from dpbench.tasks import PolicySpec


@dataclasses.dataclass
class IBCConfig(PolicyConfig):
    n_obs_steps: int = 2
    horizon: int = 2  # the action at the current step (index n_obs_steps - 1) is modelled
    n_action_steps: int = 1
    hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)
    dropout: float = 0.1
    train_negatives: int = 1024
    inference_samples: int = 1024
    inference_iters: int = 3
    noise_scale: float = 0.33
    noise_shrink: float = 0.5


class IBCPolicy(Policy):
    name = "ibc"
    Config = IBCConfig
    window_rule = "single"
    presets = {
        "paper": ({}, dict(steps=100_000, batch_size=256, lr=1e-4, eval_every=5000, checkpoint_every=5000)),
        "quick": (dict(hidden_dims=(256, 256, 256, 256), train_negatives=256, inference_samples=512),
                  dict(steps=5000, batch_size=64, lr=5e-4, warmup_steps=200, eval_every=250, eval_after=2500, checkpoint_every=250)),
        "smoke": (dict(hidden_dims=(32, 32), train_negatives=16, inference_samples=32, inference_iters=2),
                  SMOKE_TRAIN),
    }

    def __init__(self, spec: PolicySpec, config: IBCConfig) -> None:
        super().__init__(spec, config)
        in_dim = self.obs_feature_dim * config.n_obs_steps + spec.action_dim
        self.energy_net = mlp(in_dim, tuple(config.hidden_dims), 1, config.dropout)

    def energy(self, obs_feats: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs_feats (B, F), actions (B, N, D_a) normalized -> energies (B, N)."""
        n = actions.shape[1]
        x = torch.cat([obs_feats[:, None, :].expand(-1, n, -1), actions], dim=-1)
        return self.energy_net(x).squeeze(-1)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = self.obs_features(batch).flatten(1)
        target = self.action_normalizer.normalize(batch["action"][:, self.n_obs_steps - 1].float())
        b, d = target.shape
        negatives = torch.rand(b, self.config.train_negatives, d, device=target.device) * 2 - 1
        candidates = torch.cat([target[:, None], negatives], dim=1)
        # Shuffle so the positive's index carries no information.
        perm = torch.argsort(torch.rand(b, candidates.shape[1], device=target.device), dim=1)
        candidates = torch.gather(candidates, 1, perm[..., None].expand(-1, -1, d))
        labels = torch.argmin(perm, dim=1)  # where index 0 (the positive) went
        return F.cross_entropy(-self.energy(feats, candidates), labels)

    @torch.inference_mode()
    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        feats = self.obs_features(obs).flatten(1)
        b, d, n = feats.shape[0], self.spec.action_dim, cfg.inference_samples
        samples = self.rand(b, n, d) * 2 - 1
        sigma = cfg.noise_scale
        for _ in range(cfg.inference_iters):
            probs = torch.softmax(-self.energy(feats, samples), dim=-1)
            idx = self.sample_index(probs, n)
            samples = torch.gather(samples, 1, idx[..., None].expand(-1, -1, d))
            samples = (samples + sigma * self.randn(b, n, d)).clamp(-1, 1)
            sigma *= cfg.noise_shrink
        best = torch.argmin(self.energy(feats, samples), dim=-1)
        action = samples[torch.arange(b, device=self.device), best]
        return self.action_normalizer.unnormalize(action)[:, None, :]
