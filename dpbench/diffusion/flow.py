"""``diffusion_flow``: a few-step variant of Diffusion Policy trained by flow matching.

Same conditional UNet as ``diffusion``; the objective changes. With the straight path
``x_t = (1 - t) A + t eps`` (t in [0, 1]) the network regresses the constant velocity
``eps - A``. Sampling integrates ``dx/dt = v(x, t)`` from pure noise at t=1 to t=0 with
``num_inference_steps`` network evaluations, so 1-2 of them give a whole action chunk. ``solver``
picks the integrator: ``euler`` (one evaluation per step) or ``midpoint`` (second-order: each step
of 2/n evaluates the velocity at its start and at its midpoint, the same times Euler visits).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from dpbench.config import PolicyConfig
from dpbench.diffusion.policy import FAST_PATH_MAX_BATCH, total_films
from dpbench.diffusion.unet1d import ConditionalUnet1D, check_unet_config
from dpbench.errors import DpbenchError
from dpbench.policy import Policy
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec

TIME_SCALE = 100.0  # t in [0, 1] enters the step embedding on the same scale as DDPM's 0..99


@dataclasses.dataclass
class FlowConfig(PolicyConfig):
    """``diffusion_flow``'s settings: the flow sampler and the UNet of ``diffusion``
    (the original's ConditionalUnet1D sizes)."""

    num_inference_steps: int = 2  # network evaluations per chunk
    solver: str = "midpoint"  # "midpoint" (needs an even num_inference_steps) | "euler"
    down_dims: tuple[int, ...] = (256, 512, 1024)  # UNet channels per resolution level (DP's paper UNet)
    step_embed_dim: int = 256  # flow-time embedding size (as DP's diffusion-step embedding)
    kernel_size: int = 5  # temporal convolution kernel, in action steps
    n_groups: int = 8  # GroupNorm groups
    fast_inference: bool = True  # False: the plain eager path (for benchmarks and checks)


class FlowMatchingPolicy(Policy):
    """``diffusion_flow``: Diffusion Policy's ConditionalUnet1D trained by flow matching on the straight path (velocity
    regression, as in rectified flow) and sampled with ``num_inference_steps`` Euler or midpoint evaluations; the
    chunk is (B, T_p, D_a), executed from index T_o - 1. See the module docstring."""

    name = "diffusion_flow"
    Config = FlowConfig
    presets = {
        # The UNet sizes and training schedules of ``diffusion`` (the same numbers, written here so
        # this class holds its own presets), so the two compare at the same budget. Its knee on human
        # Push-T is 4k steps (results/knees/); the quick budget stays at DP's 5k, where its records are.
        "paper": ({}, budget(200_000, first_eval=0, batch_size=256, lr=1e-4, warmup_steps=500)),
        "quick": (
            dict(down_dims=(64, 128, 256), step_embed_dim=64),
            budget(5000, batch_size=64, lr=1e-3, warmup_steps=200),
        ),
        "smoke": (
            dict(down_dims=(16, 32), step_embed_dim=16, n_groups=4),
            SMOKE_TRAIN,
        ),
    }

    @classmethod
    def check_config(cls, config: FlowConfig) -> None:
        super().check_config(config)
        check_unet_config(cls.name, config)
        if config.num_inference_steps < 1:
            raise DpbenchError(
                f"num_inference_steps={config.num_inference_steps}: "
                "the flow sampler needs at least 1 network evaluation"
            )
        if config.solver not in ("euler", "midpoint"):
            raise DpbenchError(f"flow solver must be 'euler' or 'midpoint', got {config.solver!r}")
        if config.solver == "midpoint" and config.num_inference_steps % 2:
            raise DpbenchError(
                "the midpoint solver takes 2 network evaluations per step; "
                f"num_inference_steps={config.num_inference_steps} is odd"
            )

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
    def sample_chunk(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """The whole window (B, T_p, D_a) in env units, integrated from ``noise`` (default: drawn
        from the policy's generator). No host-to-device copies, so a CUDA graph can capture it."""
        obs_cond = self.obs_features(obs).flatten(1)
        batch = obs_cond.shape[0]
        x = noise if noise is not None else self.initial_noise(batch)
        n = self.config.num_inference_steps
        times = 1.0 - torch.arange(n, device=self.device) / n  # from t=1 towards t=0, every 1/n
        if self.config.fast_inference and batch <= FAST_PATH_MAX_BATCH:
            films = total_films(self.model, obs_cond, times * TIME_SCALE)

            def velocity(x: torch.Tensor, i: int) -> torch.Tensor:
                return self.model.forward_fast(x, films[i])

        else:
            obs_films = self.model.precompute_obs_film(obs_cond) if self.config.fast_inference else None

            def velocity(x: torch.Tensor, i: int) -> torch.Tensor:
                return self.model(x, (times[i] * TIME_SCALE).expand(batch), obs_cond=obs_cond, obs_films=obs_films)

        if self.config.solver == "midpoint":  # steps of h = 2/n: the velocity at the start, then at the midpoint
            h = 2.0 / n
            for i in range(0, n, 2):
                x_mid = x - (h / 2) * velocity(x, i)
                x = x - h * velocity(x_mid, i + 1)
        else:
            for i in range(n):
                x = x - (1.0 / n) * velocity(x, i)
        return self.action_normalizer.unnormalize(x.clamp(-1, 1))

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.sample_chunk(obs)
