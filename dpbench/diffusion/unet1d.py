"""The 1-D temporal UNet of Diffusion Policy (CNN variant).

Residual conv blocks (Conv1d -> GroupNorm -> Mish) over the action sequence. The conditioning
vector (diffusion-step embedding + flattened observation features) enters every block by FiLM:
a per-channel scale and bias.

For inference speed the FiLM projection is split: ``W [e; o] = W_e e + W_o o``. The observation
part is computed once per chunk (``precompute_obs_film``) and reused at every denoising step.

``forward`` is the plain eager path, used for training. ``forward_fast`` is the sampler's path:
it keeps activations channels-last ``(B, T, C)`` and runs every convolution as one matmul over
unfolded windows, because at small batch PyTorch's CPU ``conv1d`` falls back to a slow im2col
kernel (2-3x slower here). ``step_films`` precomputes the step-dependent FiLM terms for a whole
schedule, so a denoising step is convs, norms and adds only. Both paths share the same weights
and agree to float tolerance (tests/test_diffusion.py).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dpbench.errors import DpbenchError


class SinusoidalStepEmbedding(nn.Module):
    """Sinusoidal embedding of diffusion steps (the original's SinusoidalPosEmb): t (B,) -> (B, dim), [sin(t f),
    cos(t f)] over dim / 2 frequencies f from 1 down to 1/10000."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([x.sin(), x.cos()], dim=-1)


class ConvNormMish(nn.Sequential):
    """Conv1d (length-preserving for an odd ``kernel_size``) -> GroupNorm -> Mish on (B, C, T): the original's
    Conv1dBlock."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )


class FiLMResBlock(nn.Module):
    """Two conv blocks; FiLM (scale, bias) from the condition after the first."""

    def __init__(self, c_in: int, c_out: int, step_dim: int, obs_dim: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block0 = ConvNormMish(c_in, c_out, kernel_size, n_groups)
        self.block1 = ConvNormMish(c_out, c_out, kernel_size, n_groups)
        self.c_out = c_out
        # FiLM = Linear(Mish(cond)) with cond = [step_emb, obs]; split into its two column blocks.
        self.film_step = nn.Linear(step_dim, 2 * c_out)
        self.film_obs = nn.Linear(obs_dim, 2 * c_out, bias=False) if obs_dim > 0 else None
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def obs_film(self, obs_cond: torch.Tensor) -> torch.Tensor | None:
        """The observation part of this block's FiLM, Linear(Mish(obs_cond)) without bias: (B, obs_dim) ->
        (B, 2 * c_out) (scales, then biases); None when the block has no observation input (obs_dim 0)."""
        return None if self.film_obs is None else self.film_obs(F.mish(obs_cond))

    def forward(self, x: torch.Tensor, step_emb: torch.Tensor, obs_film: torch.Tensor | None) -> torch.Tensor:
        out = self.block0(x)
        film = self.film_step(F.mish(step_emb))
        if obs_film is not None:
            film = film + obs_film
        scale, bias = film[:, : self.c_out, None], film[:, self.c_out :, None]
        out = scale * out + bias
        return self.block1(out) + self.residual(x)

    def forward_fast(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """Channels-last ``(B, T, C)``; ``film`` is the block's total (scale, bias), ``(B|1, 2C)``."""
        out = _conv_norm_mish_cl(self.block0, x)
        out = torch.addcmul(film[:, None, self.c_out :], out, film[:, None, : self.c_out])
        res = (
            x
            if isinstance(self.residual, nn.Identity)
            else F.linear(x, self.residual.weight[:, :, 0], self.residual.bias)
        )
        return _conv_norm_mish_cl(self.block1, out) + res


def _conv_cl(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` applied to channels-last ``x`` (B, T, C) as one matmul over unfolded windows."""
    (k,), (stride,), (pad,) = conv.kernel_size, conv.stride, conv.padding
    batch, _, channels = x.shape
    if k == 1 and stride == 1:
        return F.linear(x, conv.weight[:, :, 0], conv.bias)
    windows = F.pad(x, (0, 0, pad, pad)).unfold(1, k, stride)  # (B, T_out, C, k): C-major, k-minor
    t_out = windows.shape[1]
    out = F.linear(
        windows.reshape(batch * t_out, channels * k), conv.weight.reshape(conv.out_channels, channels * k), conv.bias
    )
    return out.view(batch, t_out, conv.out_channels)


def _conv_norm_mish_cl(block: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    conv, norm, _ = block
    y = _conv_cl(conv, x).transpose(1, 2)
    return F.mish(F.group_norm(y, norm.num_groups, norm.weight, norm.bias, norm.eps)).transpose(1, 2)


def check_unet_config(policy: str, config: Any) -> None:
    """Refuse UNet sizes (``down_dims``, ``step_embed_dim``, ``kernel_size``, ``n_groups`` and the window
    ``horizon``) that build but break in the first forward pass: an even or zero kernel changes the sequence length,
    an odd or tiny step embedding has no sinusoid pairs (2 gives nan frequencies), and a horizon the down path
    cannot halve ``len(down_dims) - 1`` times comes back a different length. Raises DpbenchError naming the fields."""
    bad = []
    if config.kernel_size < 1 or config.kernel_size % 2 == 0:
        bad.append(f"kernel_size={config.kernel_size} (must be odd and >= 1: an even kernel changes the length)")
    if config.step_embed_dim < 4 or config.step_embed_dim % 2:
        bad.append(f"step_embed_dim={config.step_embed_dim} (must be even and >= 4: sin/cos pairs over 2+ frequencies)")
    if config.n_groups < 1 or any(d < 1 or d % config.n_groups for d in config.down_dims) or not config.down_dims:
        dims = ",".join(map(str, config.down_dims))
        bad.append(f"down_dims={dims} with n_groups={config.n_groups} (GroupNorm: each width a positive multiple)")
    stride = 2 ** max(len(config.down_dims) - 1, 0)
    if config.horizon % stride:
        bad.append(
            f"horizon={config.horizon} with {len(config.down_dims)} down_dims (the down path halves the window "
            f"{len(config.down_dims) - 1}x and the up path doubles it back: horizon must be a multiple of {stride})"
        )
    if bad:
        raise DpbenchError(f"policy '{policy}': {'; '.join(bad)}")


class ConditionalUnet1D(nn.Module):
    """eps_theta(A_k, O, k): (B, T, action_dim) -> (B, T, action_dim)."""

    def __init__(
        self,
        action_dim: int,
        obs_cond_dim: int,
        down_dims: tuple[int, ...] = (256, 512, 1024),
        step_embed_dim: int = 256,
        kernel_size: int = 5,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        dims = (action_dim, *down_dims)
        block = lambda i, o: FiLMResBlock(i, o, step_embed_dim, obs_cond_dim, kernel_size, n_groups)  # noqa: E731
        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(itertools.pairwise(dims)):
            last = level == len(down_dims) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        block(c_in, c_out),
                        block(c_out, c_out),
                        nn.Conv1d(c_out, c_out, 3, 2, 1) if not last else nn.Identity(),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        # (c_in, c_out) of the down path, deepest first, skip the first level
        pairs = list(itertools.pairwise(dims[1:]))[::-1]
        for c_small, c_big in pairs:  # every up level upsamples, undoing the down path's strides
            self.up.append(
                nn.ModuleList(
                    [block(2 * c_big, c_small), block(c_small, c_small), nn.ConvTranspose1d(c_small, c_small, 4, 2, 1)]
                )
            )
        self.final = nn.Sequential(
            ConvNormMish(down_dims[0], down_dims[0], kernel_size, n_groups), nn.Conv1d(down_dims[0], action_dim, 1)
        )

    @classmethod
    def from_config(cls, action_dim: int, obs_cond_dim: int, config) -> ConditionalUnet1D:
        """Build from any config with down_dims, step_embed_dim, kernel_size and n_groups."""
        return cls(
            action_dim,
            obs_cond_dim,
            tuple(config.down_dims),
            config.step_embed_dim,
            config.kernel_size,
            config.n_groups,
        )

    def res_blocks(self) -> list[FiLMResBlock]:
        """Every FiLMResBlock in module order (down, mid, up): the order of the per-block FiLM lists."""
        return [m for m in self.modules() if isinstance(m, FiLMResBlock)]

    def precompute_obs_film(self, obs_cond: torch.Tensor) -> list[torch.Tensor | None]:
        """The observation part of every block's FiLM, once per chunk."""
        return [b.obs_film(obs_cond) for b in self.res_blocks()]

    def step_films(self, timesteps: torch.Tensor) -> list[list[torch.Tensor]]:
        """Every block's step-dependent FiLM term for each timestep: ``[t][block] -> (1, 2C)``."""
        emb = F.mish(self.step_encoder(timesteps.reshape(-1)))
        per_block = [b.film_step(emb) for b in self.res_blocks()]  # [block] -> (n_t, 2C)
        return [[f[i : i + 1] for f in per_block] for i in range(len(timesteps))]

    def forward_fast(self, sample: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        """Inference path: same function as ``forward`` with each block's total FiLM given."""
        films_it = iter(films)
        x = sample
        skips = []
        for res0, res1, down in self.down:
            x = res1.forward_fast(res0.forward_fast(x, next(films_it)), next(films_it))
            skips.append(x)
            x = x if isinstance(down, nn.Identity) else _conv_cl(down, x)
        for res in self.mid:
            x = res.forward_fast(x, next(films_it))
        for res0, res1, up in self.up:
            x = torch.cat([x, skips.pop()], dim=2)
            x = res1.forward_fast(res0.forward_fast(x, next(films_it)), next(films_it))
            x = up(x.transpose(1, 2)).transpose(1, 2)
        block, head = self.final
        return _conv_cl(head, _conv_norm_mish_cl(block, x))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        obs_cond: torch.Tensor | None = None,
        obs_films: list[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        if obs_films is None:
            obs_films = self.precompute_obs_film(obs_cond) if obs_cond is not None else [None] * len(self.res_blocks())
        films = iter(obs_films)
        if timestep.ndim == 0:
            timestep = timestep.expand(sample.shape[0])
        emb = self.step_encoder(timestep)
        x = sample.transpose(1, 2)  # (B, action_dim, T)
        skips = []
        for res0, res1, down in self.down:
            x = res1(res0(x, emb, next(films)), emb, next(films))
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, emb, next(films))
        for res0, res1, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = res1(res0(x, emb, next(films)), emb, next(films))
            x = up(x)
        return self.final(x).transpose(1, 2)
