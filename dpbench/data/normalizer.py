"""Per-dimension min/max normalization to [-1, 1], stored as module buffers.

Because the scale and offset are buffers, they travel inside a policy's state dict and so inside
every checkpoint: a loaded policy needs nothing else to act in env units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

_EPS = 1e-4


class RangeNormalizer(nn.Module):
    """y = x * scale + offset, mapping each dimension's [min, max] to [-1, 1].

    A constant dimension (range < 1e-4) is shifted to 0 and left unscaled.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("offset", torch.zeros(dim))

    @torch.no_grad()
    def fit(self, data: np.ndarray | torch.Tensor, dims: tuple[int, ...] | None = None) -> RangeNormalizer:
        """Fit scale and offset to ``data`` (N, dim) (any shape that reshapes to it), computed in float64: the original
        Diffusion Policy's LinearNormalizer in its 'limits' mode, output range [-1, 1] and range_eps 1e-4. With
        ``dims``, only those dimensions; the others are left as they are (scale 1, offset 0). Returns self."""
        x = torch.as_tensor(np.asarray(data), dtype=torch.float64).reshape(-1, self.scale.numel())
        lo, hi = x.min(0).values, x.max(0).values
        span = hi - lo
        const = span < _EPS
        scale = torch.where(const, torch.ones_like(span), 2.0 / span.clamp_min(_EPS))
        offset = torch.where(const, -lo, -1.0 - lo * scale)
        if dims is not None:
            keep = torch.ones_like(span, dtype=torch.bool)
            keep[list(dims)] = False
            scale, offset = scale.masked_fill(keep, 1.0), offset.masked_fill(keep, 0.0)
        self.scale.copy_(scale.float())
        self.offset.copy_(offset.float())
        return self

    @torch.no_grad()
    def set_scale(self, scale: float) -> RangeNormalizer:
        """y = x * scale for every dimension (offset 0): one shared scale, as the original's robomimic observation
        normalizer (``dpbench.data.normalization``). Returns self."""
        self.scale.fill_(scale)
        self.offset.zero_()
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Data units (..., dim) -> [-1, 1] per dimension."""
        return x * self.scale + self.offset

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalize``: (..., dim) in [-1, 1] -> data units."""
        return (y - self.offset) / self.scale
