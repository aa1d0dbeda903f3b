"""The visual encoder shared by every policy: a ResNet-18-style CNN with GroupNorm and a
spatial-softmax keypoint head, written here because torchvision does not import beside the CPU
torch wheel.

As in Diffusion Policy: no pretraining, BatchNorm replaced by GroupNorm (C/16 groups), global
average pooling replaced by spatial-softmax keypoints, random crops while training and the centre
crop at evaluation, one encoder per camera (or one shared). Images arrive as uint8 ``(..., H, W, 3)``
in env layout and are scaled to [0, 1] inside the encoder, so datasets and checkpoints never
carry float pixels.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from dpbench.errors import DpbenchError


@dataclasses.dataclass
class VisionConfig:
    """The image encoder shared by every policy: a ResNet (paper: ResNet-18 with GroupNorm) and a
    spatial-softmax keypoint head per camera."""

    widths: tuple[int, ...] = (64, 128, 256, 512)  # ResNet-18 stage widths
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # basic blocks per stage
    stem_pool: bool = True  # the 3x3/2 max-pool after the 7x7/2 stem
    downsample: int = 1  # average-pool the image by this factor first (CPU presets)
    crop_ratio: float = 0.875  # random crop side / image side while training (Push-T: 84 of 96)
    keypoints: int = 32  # spatial-softmax keypoints per camera
    feature_dim: int = 64  # features per camera after the keypoint head
    shared: bool = False  # one encoder for every camera


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with channels // 16 groups (at least 1): Diffusion Policy's replacement for BatchNorm
    (its replace_bn_with_gn)."""
    return nn.GroupNorm(max(1, channels // 16), channels)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock with GroupNorm for BatchNorm: two 3x3 convs, the first strided, plus a shortcut
    (1x1 conv + GroupNorm when the stride or width changes); (N, c_in, H, W) -> (N, c_out, H', W') with H' =
    ceil(H / stride), W' = ceil(W / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = group_norm(c_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), group_norm(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) -> (B, 2K): the expected (x, y) in [-1, 1] of K learned keypoint heat maps."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.heat = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        attn = F.softmax(self.heat(x).flatten(2), dim=-1)  # (B, K, H*W)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device), indexing="ij"
        )
        grid = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # (H*W, 2)
        return (attn @ grid).reshape(b, -1)


class ResNetEncoder(nn.Module):
    """One camera: float images (N, 3, H, W) in [0, 1] -> (N, feature_dim)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        w0 = cfg.widths[0]
        stem: list[nn.Module] = [nn.Conv2d(3, w0, 7, 2, 3, bias=False), group_norm(w0), nn.ReLU()]
        if cfg.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        stages, c_in = [], w0
        for i, (width, n_blocks) in enumerate(zip(cfg.widths, cfg.blocks)):
            for j in range(n_blocks):
                stages.append(BasicBlock(c_in, width, 2 if (i > 0 and j == 0) else 1))
                c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = SpatialSoftmax(c_in, cfg.keypoints)
        self.proj = nn.Linear(2 * cfg.keypoints, cfg.feature_dim)
        self.to(memory_format=torch.channels_last)  # oneDNN's NHWC convs are faster on CPU (benchmarks/bench_vision.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(self.pool(self.stages(self.stem(x))))


class ImageEncoders(nn.Module):
    """Every camera of a task: uint8 ``(B, T, H, W, 3)`` per key -> ``(B, T, n_cams * feature_dim)``."""

    def __init__(self, image_shapes: dict[str, tuple[int, ...]], cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.keys = tuple(image_shapes)
        for key, shape in image_shapes.items():
            if len(shape) != 3 or shape[-1] != 3:
                raise DpbenchError(f"image '{key}' must be (H, W, 3) uint8, got shape {tuple(shape)}")
            if shape[0] % cfg.downsample or shape[1] % cfg.downsample:
                raise DpbenchError(
                    f"image '{key}' of shape {tuple(shape)} does not divide by vision.downsample={cfg.downsample}"
                )
        self.crops = {
            k: (round(s[0] // cfg.downsample * cfg.crop_ratio), round(s[1] // cfg.downsample * cfg.crop_ratio))
            for k, s in image_shapes.items()
        }
        n_nets = 1 if cfg.shared else len(self.keys)
        self.nets = nn.ModuleList([ResNetEncoder(cfg) for _ in range(n_nets)])
        self.out_dim = cfg.feature_dim * len(self.keys)

    def crop(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Random crops (one offset per image) while training, the centre crop otherwise."""
        n, _, h, w = x.shape
        ch, cw = size
        if (ch, cw) == (h, w):
            return x
        if not self.training:
            top, left = (h - ch) // 2, (w - cw) // 2
            return x[:, :, top : top + ch, left : left + cw]
        top = torch.randint(0, h - ch + 1, (n,), device=x.device)
        left = torch.randint(0, w - cw + 1, (n,), device=x.device)
        rows = (top[:, None] + torch.arange(ch, device=x.device))[:, :, None]  # (N, ch, 1)
        cols = (left[:, None] + torch.arange(cw, device=x.device))[:, None, :]  # (N, 1, cw)
        return x.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = []
        for i, key in enumerate(self.keys):
            images = obs[key]
            b, t = images.shape[:2]
            x = images.reshape(b * t, *images.shape[2:]).permute(0, 3, 1, 2).float() / 255.0
            if self.cfg.downsample > 1:
                x = F.avg_pool2d(x, self.cfg.downsample)
            x = self.crop(x, self.crops[key])
            net = self.nets[0 if self.cfg.shared else i]
            feats.append(net(x).reshape(b, t, -1))
        return torch.cat(feats, dim=-1)
