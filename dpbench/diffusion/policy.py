"""Diffusion Policy: a conditional denoising diffusion process over action chunks.

Training regresses the noise added to a normalized action window, eps_theta(A_k, O, k), with
an MSE loss (diffusers' DDPMScheduler: 100 steps, squaredcos_cap_v2, epsilon, clip_sample).
Inference starts from Gaussian noise and denoises with DDPM or DDIM, then returns the T_a actions
that start at the current step (index T_o - 1 of the window).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.nn import functional as F

from dpbench.config import PolicyConfig
from dpbench.diffusion.transformer import DiffusionTransformer
from dpbench.diffusion.unet1d import ConditionalUnet1D, check_unet_config
from dpbench.errors import DpbenchError
from dpbench.policy import Policy, linear_weights_decay
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec

# Above this batch PyTorch's oneDNN conv1d beats the unfold-matmul path (measured, 2 CPU cores;
# benchmarks/bench_speed.py).
FAST_PATH_MAX_BATCH = 8


@dataclasses.dataclass
class DiffusionConfig(PolicyConfig):
    """Settings shared by both Diffusion Policy denoisers: the training noise process and the inference sampler
    (diffusers' DDPMScheduler / DDIMScheduler)."""

    num_train_timesteps: int = 100  # K: noise levels of the training process (paper: 100)
    beta_schedule: str = "squaredcos_cap_v2"  # diffusers' noise schedule name (paper: the cosine schedule)
    clip_sample: bool = True  # clip the predicted clean sample to [-1, 1] at each step (the original: True)
    sampler: str = "ddpm"  # inference scheduler: "ddpm" (paper) | "ddim" (fewer steps, deterministic)
    num_inference_steps: int = 100  # denoising steps per chunk at inference (paper: DDPM 100; quick: DDIM 10)
    # Where a K-step sampler's timesteps sit among the trained noise levels (diffusers' names).
    # "trailing": the first step is the top level (99 of 100) for any K. "leading": the original
    # code's and diffusers' default, whose first step is 100 - 100/K (DDIM-1: 0, DDIM-10: 90), so a
    # few-step chunk starts from pure noise treated as nearly clean. Chosen from measured scores:
    # docs/samplers.md. (DDPM-100 visits every level either way.)
    timestep_spacing: str = "trailing"


@dataclasses.dataclass
class DiffusionUnetConfig(DiffusionConfig):
    """``diffusion``: the CNN variant's sizes (the original's ConditionalUnet1D) and the inference fast path."""

    down_dims: tuple[int, ...] = (256, 512, 1024)  # UNet channels per resolution level (paper: 256, 512, 1024)
    step_embed_dim: int = 256  # diffusion-step embedding size (the original's diffusion_step_embed_dim: 256)
    kernel_size: int = 5  # temporal convolution kernel, in action steps (paper: 5)
    n_groups: int = 8  # GroupNorm groups (paper: 8)
    fast_inference: bool = True  # False: the plain eager path (for benchmarks and checks)


@dataclasses.dataclass
class DiffusionTransformerConfig(DiffusionConfig):
    """``diffusion_transformer``: the transformer variant's sizes and dropouts
    (the original's TransformerForDiffusion)."""

    n_layer: int = 8  # transformer decoder layers (the original's low-dim config: 8)
    n_head: int = 4  # attention heads (the original: 4)
    n_emb: int = 256  # token embedding size (the original: 256)
    p_drop_emb: float = 0.0  # dropout on the token embeddings (the original: 0.0)
    p_drop_attn: float = 0.3  # attention dropout (the original's generic config: 0.3; its Push-T config: 0.01)


class _DiffusionPolicy(Policy):
    """Shared DDPM training and sampling; subclasses supply the denoiser."""

    config: DiffusionConfig

    @classmethod
    def check_config(cls, config: DiffusionConfig) -> None:
        super().check_config(config)
        if config.sampler not in ("ddpm", "ddim"):
            raise DpbenchError(f"diffusion sampler must be 'ddpm' or 'ddim', got {config.sampler!r}")
        if not 1 <= config.num_inference_steps <= config.num_train_timesteps:
            raise DpbenchError(
                f"num_inference_steps={config.num_inference_steps} must be between 1 and num_train_timesteps="
                f"{config.num_train_timesteps} (the sampler can only visit trained noise levels)"
            )
        if config.timestep_spacing not in ("trailing", "leading"):
            raise DpbenchError(f"timestep_spacing must be 'trailing' or 'leading', got {config.timestep_spacing!r}")

    def __init__(self, spec: PolicySpec, config: DiffusionConfig) -> None:
        super().__init__(spec, config)
        kwargs = dict(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            prediction_type="epsilon",
        )
        self.noise_scheduler = DDPMScheduler(**kwargs)
        sample_kwargs = dict(kwargs, timestep_spacing=config.timestep_spacing)
        self.sample_scheduler = (
            DDIMScheduler(**sample_kwargs, set_alpha_to_one=True)
            if config.sampler == "ddim"
            else DDPMScheduler(**sample_kwargs)
        )
        self.sample_scheduler.set_timesteps(config.num_inference_steps)
        # The scheduler steps on its CPU timesteps; the denoiser gets this copy, a buffer that follows
        # .to(device), so no chunk copies to the device (and a CUDA graph can capture the loop).
        self.register_buffer("sample_timesteps", self.sample_scheduler.timesteps.clone(), persistent=False)

    # --- denoiser hooks
    def prepare_condition(self, feats: torch.Tensor) -> Any:
        raise NotImplementedError

    def denoise(self, sample: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        raise NotImplementedError

    # --- the contract
    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.action_normalizer.normalize(batch["action"].float())
        cond = self.prepare_condition(self.obs_features(batch))
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.noise_scheduler.add_noise(actions, noise, t)
        return F.mse_loss(self.denoise(noisy, t, cond), noise)

    def make_denoiser(
        self, feats: torch.Tensor, timesteps: torch.Tensor
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """eps(x, i) for the i-th timestep of one chunk's schedule; subclasses may precompute."""
        cond = self.prepare_condition(feats)
        return lambda x, i: self.denoise(x, timesteps[i], cond)

    @torch.inference_mode()
    def sample_chunk(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """The whole denoised window (B, T_p, D_a) in env units, from ``noise`` (default: drawn
        from the policy's generator)."""
        feats = self.obs_features(obs)
        x = noise if noise is not None else self.initial_noise(feats.shape[0])
        denoise = self.make_denoiser(feats, self.sample_timesteps)
        for i, t in enumerate(self.sample_scheduler.timesteps):
            x = self.sample_scheduler.step(denoise(x, i), t, x, generator=self.row_generators(x.shape[0])).prev_sample
        return self.action_normalizer.unnormalize(x)

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.sample_chunk(obs)


class DiffusionUnetPolicy(_DiffusionPolicy):
    """``diffusion`` / ``diffusion_cnn``: the 1-D temporal UNet with FiLM conditioning."""

    name = "diffusion"
    Config = DiffusionUnetConfig
    positive_fields = ("num_train_timesteps",)  # (the UNet's sizes: unet1d.check_unet_config)
    presets = {
        "paper": ({}, budget(200_000, first_eval=0, batch_size=256, lr=1e-4, warmup_steps=500)),
        "quick": (
            dict(down_dims=(64, 128, 256), step_embed_dim=64, sampler="ddim", num_inference_steps=10),
            # Measured on 2 CPU cores, human Push-T, keypoints: mean-max 0.90 after 6.7 train-min and
            # 0.96 after 14.4 (steps=8000); see results/curves/. 5000 steps keep 5 seeds within an hour;
            # the 11 evaluations over the second half give the paper's max and avg-of-last-10. On robomimic the
            # floor (presets.MIN_TRAIN_WINDOWS) lifts it to 15,000: at 5,000 its curves there still rose.
            budget(5000, batch_size=64, lr=1e-3, warmup_steps=200),
        ),
        "smoke": (
            dict(
                down_dims=(16, 32),
                step_embed_dim=16,
                n_groups=4,
                sampler="ddim",
                num_inference_steps=4,
                num_train_timesteps=20,
            ),
            SMOKE_TRAIN,
        ),
    }

    @classmethod
    def check_config(cls, config: DiffusionUnetConfig) -> None:
        super().check_config(config)
        check_unet_config(cls.name, config)

    def __init__(self, spec: PolicySpec, config: DiffusionUnetConfig) -> None:
        super().__init__(spec, config)
        self.model = ConditionalUnet1D.from_config(spec.action_dim, self.obs_feature_dim * config.n_obs_steps, config)

    def prepare_condition(self, feats: torch.Tensor) -> list[torch.Tensor | None]:
        return self.model.precompute_obs_film(feats.flatten(1))

    def denoise(self, sample: torch.Tensor, t: torch.Tensor, cond: list[torch.Tensor | None]) -> torch.Tensor:
        return self.model(sample, t, obs_films=cond)

    def make_denoiser(
        self, feats: torch.Tensor, timesteps: torch.Tensor
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """eps(x, i) for the i-th timestep of one chunk, x (B, T_p, D_a) normalized, on one of three paths that agree
        to float tolerance: with ``fast_inference`` off, the eager ``forward`` recomputing the whole conditioning;
        above ``FAST_PATH_MAX_BATCH`` rows, the eager ``forward`` with the observation FiLM computed once; else
        ``forward_fast`` with every block's total FiLM precomputed per timestep."""
        if not self.config.fast_inference:  # naive: the full conditioning at every step
            obs_cond = feats.flatten(1)
            return lambda x, i: self.model(x, timesteps[i], obs_cond=obs_cond)
        if feats.shape[0] > FAST_PATH_MAX_BATCH:  # large batch: oneDNN conv1d is faster; reuse obs FiLM only
            obs_films = self.model.precompute_obs_film(feats.flatten(1))
            return lambda x, i: self.model(x, timesteps[i], obs_films=obs_films)
        films = total_films(self.model, feats.flatten(1), timesteps)
        return lambda x, i: self.model.forward_fast(x, films[i])


def total_films(model: ConditionalUnet1D, obs_cond: torch.Tensor, timesteps: torch.Tensor) -> list[list[torch.Tensor]]:
    """Each block's whole FiLM term for each timestep of a chunk: ``[t][block] -> (B, 2C)``."""
    obs_films = model.precompute_obs_film(obs_cond)
    return [[s if o is None else s + o for s, o in zip(step, obs_films)] for step in model.step_films(timesteps)]


class DiffusionTransformerPolicy(_DiffusionPolicy):
    """``diffusion_transformer``: causal action tokens with cross-attention to obs/step tokens."""

    name = "diffusion_transformer"
    Config = DiffusionTransformerConfig
    positive_fields = ("num_train_timesteps", "n_layer", "n_head", "n_emb")
    presets = {
        "paper": (
            {},
            budget(
                200_000, first_eval=0, batch_size=256, lr=1e-4, weight_decay=1e-3, warmup_steps=1000, betas=(0.9, 0.95)
            ),
        ),
        "quick": (
            # 11k steps (~22 train-min on one core): the knee of its 12k-step curve on human Push-T (benchmarks/
            # knees.py, results/knees/); the curve still rises there (0.80 at 11k, 0.84 at 12k).
            dict(n_layer=4, n_emb=128, sampler="ddim", num_inference_steps=10),
            budget(11_000, batch_size=64, lr=5e-4, weight_decay=1e-3, warmup_steps=200, betas=(0.9, 0.95)),
        ),
        "smoke": (
            dict(n_layer=1, n_head=2, n_emb=16, sampler="ddim", num_inference_steps=4, num_train_timesteps=20),
            SMOKE_TRAIN,
        ),
    }

    # The original's Push-T transformer config (train_diffusion_transformer_lowdim_pusht_workspace.yaml):
    # attention dropout 0.01 and weight decay 0.1 where its generic config has 0.3 and 1e-3.
    task_overrides = {"pusht": (dict(p_drop_attn=0.01), dict(weight_decay=0.1))}

    def param_groups(self, weight_decay: float) -> list[dict]:
        return linear_weights_decay(self, weight_decay)  # the original's get_optim_groups

    def __init__(self, spec: PolicySpec, config: DiffusionTransformerConfig) -> None:
        super().__init__(spec, config)
        self.model = DiffusionTransformer(
            spec.action_dim,
            self.obs_feature_dim,
            config.horizon,
            config.n_obs_steps,
            config.n_layer,
            config.n_head,
            config.n_emb,
            config.p_drop_emb,
            config.p_drop_attn,
        )

    def prepare_condition(self, feats: torch.Tensor) -> torch.Tensor:
        return self.model.encode_obs(feats)

    def denoise(self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.model(sample, t, cond)
