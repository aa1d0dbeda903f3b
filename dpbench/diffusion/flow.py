"""``diffusion_flow``: a few-step variant of Diffusion Policy trained by flow matching.

Same conditional UNet as ``diffusion``; the objective changes. With the straight path
``x_t = (1 - t) A + t eps`` (t in [0, 1]) the network regresses the constant velocity
``eps - A``. Sampling integrates ``dx/dt = v(x, t)`` from pure noise at t=1 to t=0 with
``num_inference_steps`` Euler steps, so 1-2 network evaluations give a whole action chunk.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from dpbench.diffusion.unet1d import ConditionalUnet1D
from dpbench.policy import SMOKE_TRAIN, Policy, PolicyConfig
from dpbench.tasks import PolicySpec

TIME_SCALE = 100.0  # t in [0, 1] enters the step embedding on the same scale as DDPM's 0..99


@dataclasses.dataclass
class FlowConfig(PolicyConfig):
    num_inference_steps: int = 2
    down_dims: tuple[int, ...] = (256, 512, 1024)
    step_embed_dim: int = 256
    kernel_size: int = 5
    n_groups: int = 8


class FlowMatchingPolicy(Policy):
    name = "diffusion_flow"
    Config = FlowConfig
    presets = {
        "paper": ({}, dict(steps=200_000, batch_size=256, lr=1e-4, warmup_steps=500, eval_every=10_000, checkpoint_every=10_000)),
        "quick": (
            dict(down_dims=(64, 128, 256), step_embed_dim=64),
            dict(steps=5000, batch_size=64, lr=1e-3, warmup_steps=200, eval_every=250, eval_after=2500, checkpoint_every=250),
        ),
        "smoke": (
            dict(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
            SMOKE_TRAIN,
        ),
    }

    def __init__(self, spec: PolicySpec, config: FlowConfig) -> None:
        super().__init__(spec, config)
        self.model = ConditionalUnet1D.from_config(spec.action_dim, self.obs_feature_dim * config.n_obs_steps, config)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.action_normalizer.normalize(batch["action"].float())
        films = self.model.precompute_obs_film(self.obs_features(batch).flatten(1))
        noise = torch.randn_like(actions)
        t = torch.rand(actions.shape[0], device=actions.device)
        x_t = (1 - t[:, None, None]) * actions + t[:, None, None] * noise
        return F.mse_loss(self.model(x_t, t * TIME_SCALE, obs_films=films), noise - actions)

    @torch.inference_mode()
    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        films = self.model.precompute_obs_film(self.obs_features(obs).flatten(1))
        batch = next(iter(obs.values())).shape[0]
        x = torch.randn((batch, self.horizon, self.spec.action_dim), generator=self.generator, device=self.device)
        n = self.config.num_inference_steps
        for i in range(n):
            t = torch.full((batch,), 1.0 - i / n, device=self.device)
            x = x - (1.0 / n) * self.model(x, t * TIME_SCALE, obs_films=films)
        start = self.n_obs_steps - 1
        return self.action_normalizer.unnormalize(x.clamp(-1, 1))[:, start : start + self.n_action_steps]
