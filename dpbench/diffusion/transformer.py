"""The time-series transformer of Diffusion Policy (transformer variant).

Action tokens (T_p of them) self-attend causally. The condition tokens are the diffusion-step
token and one token per observation step; the action tokens reach them through cross-attention,
where action t sees the step token and the observations up to t (the paper's memory mask).
"""

from __future__ import annotations

import torch
from torch import nn

from dpbench.diffusion.unet1d import SinusoidalStepEmbedding


class DiffusionTransformer(nn.Module):
    """The noise-prediction network of Diffusion Policy's transformer variant (the original's TransformerForDiffusion,
    observations as condition): sample (B, T_p, action_dim), timestep () or (B,) and observation tokens
    (B, T_o, n_emb) from ``encode_obs`` -> eps (B, T_p, action_dim). A pre-norm GELU decoder: action tokens
    self-attend causally and cross-attend to the step token and the observations up to their own step, after an MLP
    condition encoder."""

    def __init__(
        self,
        action_dim: int,
        obs_dim: int,
        horizon: int,
        n_obs_steps: int,
        n_layer: int = 8,
        n_head: int = 4,
        n_emb: int = 256,
        p_drop_emb: float = 0.0,
        p_drop_attn: float = 0.3,
    ) -> None:
        super().__init__()
        self.action_emb = nn.Linear(action_dim, n_emb)
        self.action_pos = nn.Parameter(torch.zeros(1, horizon, n_emb))
        self.step_emb = SinusoidalStepEmbedding(n_emb)
        self.obs_emb = nn.Linear(obs_dim, n_emb)
        self.cond_pos = nn.Parameter(torch.zeros(1, 1 + n_obs_steps, n_emb))
        self.drop = nn.Dropout(p_drop_emb)
        self.cond_encoder = nn.Sequential(nn.Linear(n_emb, 4 * n_emb), nn.Mish(), nn.Linear(4 * n_emb, n_emb))
        layer = nn.TransformerDecoderLayer(
            d_model=n_emb,
            nhead=n_head,
            dim_feedforward=4 * n_emb,
            dropout=p_drop_attn,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=n_layer)
        self.ln_f = nn.LayerNorm(n_emb)
        self.head = nn.Linear(n_emb, action_dim)

        t = torch.arange(horizon)[:, None]
        s = torch.arange(1 + n_obs_steps)[None, :]
        # True = blocked (PyTorch's boolean mask convention).
        self.register_buffer(
            "self_mask", torch.triu(torch.ones(horizon, horizon, dtype=torch.bool), 1), persistent=False
        )
        self.register_buffer("memory_mask", ~(t >= s - 1), persistent=False)
        nn.init.normal_(self.action_pos, std=0.02)
        nn.init.normal_(self.cond_pos, std=0.02)

    def encode_obs(self, obs_cond: torch.Tensor) -> torch.Tensor:
        """(B, T_o, obs_dim) -> observation tokens (B, T_o, n_emb), once per chunk."""
        return self.obs_emb(obs_cond)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, obs_tokens: torch.Tensor) -> torch.Tensor:
        if timestep.ndim == 0:
            timestep = timestep.expand(sample.shape[0])
        step_tok = self.step_emb(timestep)[:, None, :]
        cond = torch.cat([step_tok, obs_tokens], dim=1) + self.cond_pos
        memory = self.cond_encoder(self.drop(cond))
        x = self.drop(self.action_emb(sample) + self.action_pos)
        # tgt_is_causal: the mask is causal by construction; saying so skips a device-to-host check per call
        x = self.decoder(x, memory, tgt_mask=self.self_mask, memory_mask=self.memory_mask, tgt_is_causal=True)
        return self.head(self.ln_f(x))
