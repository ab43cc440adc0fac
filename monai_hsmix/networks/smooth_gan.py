"""Smooth-GAN of InsMix (Lin et al., MICCAI 2022): harmonises pasted nuclei with the tissue around them.

What is implemented (reconstructed from the paper and the authors' released training code; the
equations are written out here because the implementation is ours):

Generator ``G(x, Mo, Ma)``
    Input: the image with pasted nuclei ``x`` (scaled to [-1, 1]) concatenated with the original-nuclei
    mask ``Mo`` and the pasted-nuclei mask ``Ma``. An auto-encoder of gated convolutions
    (``ELU(conv_f(h)) * sigmoid(conv_g(h))``), two stride-2 stages, three dilated gated convolutions
    (dilation 2, 4, 8) at 1/4 resolution, then the foreground similarity encoder and a nearest-upsampling
    decoder ending in ``tanh``.
    Deviation (``residual=True``, the default): the decoder predicts a correction added to the input,
    ``clamp(x + r, -1, 1)``, with the last convolution initialised to zero, so an untrained generator is
    the identity and short CPU fits do not repaint nuclei in flat colour. ``residual=False`` gives the
    plain ``tanh`` output.

Foreground similarity encoder (FSE, Eq. 6-7)
    At 1/4 resolution, with feature vectors ``f_i``, query positions ``i`` inside ``Ma`` and key positions
    ``j`` inside ``Mo`` (outside ``Ma``)::

        s_ij = <f_i / ||f_i||, f_j / ||f_j||>                       (6)  cosine similarity
        f^_i = sum_j softmax_j(kappa * s_ij) f_j,  kappa = 10        (7)  attention over original nuclei

    ``f^`` replaces ``f`` at the pasted positions and is fused with ``f`` by a gated convolution, so the
    decoder paints pasted nuclei from the appearance of the image's own nuclei.

Discriminator ``D``
    A PatchGAN (4x4 convolutions, strides 2-2-2-1-1, LeakyReLU 0.2) with spectral normalisation on every
    convolution; its patch map is used as an embedding.

Losses (Eq. 3-5), with ``d(u, v)`` the Euclidean distance between two flattened patch maps, anchor ``a``
and positive ``p`` two real tiles, and the composite ``c = Ma * G(x) + (1 - Ma) * x``::

    L_D = max(0, d(D(a), D(p)) - d(D(a), D(c)) + m),    m = 1.0                     (3)
    L_adv = | d(D(a), D(c)) - d(D(a), D(p)) |                                       (4)
    L_G = L_adv + lambda * ||G(x) - x||_1,              lambda = 10                 (5)

The L1 term is a mean over the whole image by default (the authors' released code); the training app's
``--l1-region outside`` restricts it to pixels outside the pasted nuclei.

At inference only the composite is used: pixels outside ``Ma`` are the input's, bit for bit.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "GatedConv2d",
    "ForegroundSimilarityEncoder",
    "SmoothGANGenerator",
    "PatchDiscriminator",
    "compose",
    "triplet_discriminator_loss",
    "triplet_generator_loss",
    "generator_loss",
    "save_checkpoint",
    "load_checkpoint",
    "load_generator",
    "CHECKPOINT_FORMAT",
    "to_unit_range",
    "from_unit_range",
    "harmonize",
]

CHECKPOINT_FORMAT = "monai_hsmix.smooth_gan/1"


class GatedConv2d(nn.Module):
    """Gated convolution: ``ELU(features) * sigmoid(gate)``, both from one convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride, padding, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class ForegroundSimilarityEncoder(nn.Module):
    """Re-describe pasted-nucleus features as an attention-weighted mix of original-nucleus features (Eq. 6-7).

    Parameters
    ----------
    softmax_scale
        ``kappa`` of Eq. 7: sharpness of the attention over cosine similarities.
    query_chunk
        Queries processed at once, bounding memory at ``query_chunk x n_keys`` similarities.
    """

    def __init__(self, softmax_scale: float = 10.0, query_chunk: int = 1024):
        super().__init__()
        self.softmax_scale = softmax_scale
        self.query_chunk = query_chunk

    def forward(self, feats: torch.Tensor, mask_ori: torch.Tensor, mask_add: torch.Tensor) -> torch.Tensor:
        flat = feats.flatten(2)
        unit = F.normalize(flat, dim=1)
        add = mask_add.flatten(1) > 0.5
        keys_mask = (mask_ori.flatten(1) > 0.5) & ~add
        rows = []
        for b in range(feats.shape[0]):
            q_idx = torch.nonzero(add[b]).flatten()
            k_idx = torch.nonzero(keys_mask[b]).flatten()
            if q_idx.numel() == 0 or k_idx.numel() == 0:
                rows.append(flat[b])
                continue
            keys_unit = unit[b][:, k_idx]
            values = flat[b][:, k_idx]
            recon = []
            for start in range(0, q_idx.numel(), self.query_chunk):
                q = q_idx[start : start + self.query_chunk]
                similarity = unit[b][:, q].transpose(0, 1) @ keys_unit
                attention = torch.softmax(self.softmax_scale * similarity, dim=1)
                recon.append(values @ attention.transpose(0, 1))
            rows.append(flat[b].index_copy(1, q_idx, torch.cat(recon, dim=1)))
        return torch.stack(rows).view_as(feats)


class SmoothGANGenerator(nn.Module):
    """Gated, dilated auto-encoder with a foreground similarity encoder; see the module docstring.

    Parameters
    ----------
    channels
        Image channels (3 for RGB, 1 for grey).
    base_features
        Width of the first stage (doubles at each of the two downsamplings).
    softmax_scale
        ``kappa`` of the foreground similarity encoder.
    residual
        Predict a zero-initialised correction to the input instead of the image itself (see above).
    """

    def __init__(self, channels: int = 3, base_features: int = 32, softmax_scale: float = 10.0, residual: bool = True):
        super().__init__()
        f = base_features
        self.channels = channels
        self.residual = residual
        self.encoder = nn.Sequential(
            GatedConv2d(channels + 2, f, 5),
            GatedConv2d(f, 2 * f, 3, stride=2),
            GatedConv2d(2 * f, 2 * f, 3),
            GatedConv2d(2 * f, 4 * f, 3, stride=2),
            GatedConv2d(4 * f, 4 * f, 3, dilation=2),
            GatedConv2d(4 * f, 4 * f, 3, dilation=4),
            GatedConv2d(4 * f, 4 * f, 3, dilation=8),
        )
        self.fse = ForegroundSimilarityEncoder(softmax_scale)
        self.fuse = GatedConv2d(8 * f, 4 * f, 3)
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(4 * f, 2 * f, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(2 * f, f, 3),
            nn.Conv2d(f, channels, 3, padding=1),
        )
        if residual:
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, image: torch.Tensor, mask_ori: torch.Tensor, mask_add: torch.Tensor) -> torch.Tensor:
        """Map a (B, C, H, W) image in [-1, 1] and (B, 1, H, W) masks to a (B, C, H, W) image in [-1, 1]."""
        if image.ndim != 4 or image.shape[1] != self.channels:
            raise ValueError(f"expected a (B, {self.channels}, H, W) image, got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        pad = (0, (-width) % 4, 0, (-height) % 4)
        x = F.pad(torch.cat([image, mask_ori.to(image), mask_add.to(image)], dim=1), pad, mode="replicate")
        feats = self.encoder(x)
        small_ori = F.max_pool2d(F.pad(mask_ori.to(image), pad), 4)
        small_add = F.max_pool2d(F.pad(mask_add.to(image), pad), 4)
        attended = self.fse(feats, small_ori, small_add)
        out = self.decoder(self.fuse(torch.cat([feats, attended], dim=1)))[..., :height, :width]
        return (image + out).clamp(-1.0, 1.0) if self.residual else torch.tanh(out)


def _sn_conv(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.utils.spectral_norm(nn.Conv2d(in_channels, out_channels, 4, stride, 1))


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator with spectral normalisation; returns a (B, 1, h, w) patch map."""

    def __init__(self, channels: int = 3, base_features: int = 32):
        super().__init__()
        f = base_features
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.net = nn.Sequential(
            _sn_conv(channels, f, 2), act(),
            _sn_conv(f, 2 * f, 2), act(),
            _sn_conv(2 * f, 4 * f, 2), act(),
            _sn_conv(4 * f, 8 * f, 1), act(),
            _sn_conv(8 * f, 1, 1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if min(image.shape[-2:]) < 24:
            raise ValueError(f"PatchDiscriminator needs images of at least 24x24, got {tuple(image.shape[-2:])}")
        return self.net(image)


def compose(generated: torch.Tensor, image: torch.Tensor, mask_add: torch.Tensor) -> torch.Tensor:
    """``G(x)`` inside the pasted mask, the input's own pixels (exactly) elsewhere."""
    return torch.where(mask_add.to(torch.bool), generated, image)


def _patch_distance(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Euclidean, as in a triplet margin loss: its gradient has unit norm whatever the scale of D's
    # outputs (a mean of squares gave generator gradients below Adam's epsilon and G never moved)
    return ((u - v).pow(2).flatten(1).sum(dim=1) + 1e-12).sqrt()


def triplet_discriminator_loss(
    d_anchor: torch.Tensor, d_positive: torch.Tensor, d_fake: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Eq. 3: real tiles closer to each other than to the composite by ``margin``."""
    return F.relu(_patch_distance(d_anchor, d_positive) - _patch_distance(d_anchor, d_fake) + margin).mean()


def triplet_generator_loss(d_anchor: torch.Tensor, d_positive: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 4: the composite as far from the anchor as the positive is."""
    return (_patch_distance(d_anchor, d_fake) - _patch_distance(d_anchor, d_positive)).abs().mean()


def generator_loss(
    d_anchor: torch.Tensor,
    d_positive: torch.Tensor,
    d_fake: torch.Tensor,
    generated: torch.Tensor,
    image: torch.Tensor,
    lambda_l1: float = 10.0,
    l1_weight: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Eq. 5; returns the total and its parts as floats.

    ``l1_weight`` (B, 1, H, W) restricts the L1 term to a region (e.g. ``1 - mask_add``: outside the
    pasted nuclei); None averages it over the whole image, as in the authors' released code.
    """
    adv = triplet_generator_loss(d_anchor, d_positive, d_fake)
    if l1_weight is None:
        l1 = F.l1_loss(generated, image)
    else:
        weight = l1_weight.to(generated).expand_as(generated)
        l1 = ((generated - image).abs() * weight).sum() / weight.sum().clamp_min(1.0)
    total = adv + lambda_l1 * l1
    return total, {"g_adv": float(adv.detach()), "g_l1": float(l1.detach())}


PathLike = Union[str, Path]


def _local_path(path: PathLike) -> Path:
    if "://" in str(path):
        raise ValueError(f"Smooth-GAN checkpoints load from a local path only, got {path!r}")
    return Path(path)


def save_checkpoint(
    path: PathLike,
    generator: SmoothGANGenerator,
    discriminator: Optional[PatchDiscriminator],
    config: Dict[str, Any],
    step: int,
    history: Optional[list] = None,
) -> Path:
    """Write ``{"format", "config", "step", "history", "generator", "discriminator"}`` with ``torch.save``."""
    path = _local_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": dict(config),
        "step": int(step),
        "history": list(history or []),
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "discriminator": None
        if discriminator is None
        else {k: v.detach().cpu() for k, v in discriminator.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint` (tensors and plain values only)."""
    path = _local_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Smooth-GAN checkpoint not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a Smooth-GAN checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return payload


def load_generator(
    path: PathLike, device: Union[str, torch.device] = "cpu"
) -> Tuple[SmoothGANGenerator, Dict[str, Any]]:
    """Build the generator described by a checkpoint, load its weights, and return it in eval mode."""
    payload = load_checkpoint(path)
    config = payload["config"]
    generator = SmoothGANGenerator(
        channels=int(config["channels"]),
        base_features=int(config["base_features"]),
        softmax_scale=float(config.get("softmax_scale", 10.0)),
        residual=bool(config.get("residual", True)),
    )
    generator.load_state_dict(payload["generator"])
    return generator.to(device).eval(), config


def to_unit_range(image: torch.Tensor, value_range: Tuple[float, float]) -> torch.Tensor:
    """Map intensities from ``value_range`` to the generator's [-1, 1]."""
    lo, hi = float(value_range[0]), float(value_range[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"value_range must be finite with high > low, got {value_range}")
    return (image.float() - lo) / (hi - lo) * 2.0 - 1.0


def from_unit_range(image: torch.Tensor, value_range: Tuple[float, float]) -> torch.Tensor:
    """Inverse of :func:`to_unit_range`, clipped to ``value_range``."""
    lo, hi = float(value_range[0]), float(value_range[1])
    return ((image.clamp(-1.0, 1.0) + 1.0) * 0.5 * (hi - lo) + lo).clamp(lo, hi)


@torch.no_grad()
def harmonize(
    generator: SmoothGANGenerator,
    image: torch.Tensor,
    mask_ori: torch.Tensor,
    mask_add: torch.Tensor,
    value_range: Tuple[float, float],
) -> torch.Tensor:
    """Harmonise the pasted nuclei of one (C, H, W) image; return it in ``image``'s dtype and device.

    The composition happens in the input's intensity space, so pixels outside ``mask_add`` are returned
    exactly as given (no round trip through [-1, 1]).
    """
    param = next(generator.parameters())
    x = to_unit_range(image.to(param.device), value_range)[None].to(param.dtype)
    ori = mask_ori.to(param.device, param.dtype)[None, None]
    add = mask_add.to(param.device, torch.bool)
    generated = from_unit_range(generator(x, ori, add[None, None].to(param.dtype))[0], value_range)
    generated = generated.to(image.device)
    if not image.is_floating_point():
        generated = generated.round()
    return compose(generated.to(image.dtype), image, add.to(image.device)[None])
