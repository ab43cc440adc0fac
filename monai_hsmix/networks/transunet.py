"""TransUNet (Chen et al. 2021, arXiv 2102.04306) for 2D segmentation, assembled from MONAI and torch parts.

The encoder is the R50-ViT-B/16 hybrid: a ResNet-50 (v2 family: weight-standardised convolutions and
group norm) whose first three stages bring the image to 1/16 of its size, followed by a ViT-B/16
transformer on that 1/16 grid (MONAI ``PatchEmbeddingBlock`` with a 1x1 patch, MONAI ``TransformerBlock``).
The cascaded upsampler (CUP) doubles the resolution four times and concatenates the ResNet features at
1/8, 1/4 and 1/2 (``n_skip`` of them) on the way up.

Differences from the published TransUNet code, on purpose:

- the stem max-pool uses padding 1, so every feature map is exactly 1/2, 1/4, 1/8, 1/16 of the input
  (the published code pools without padding and zero-pads the 55x55 map back to 56x56);
- any number of input channels is accepted; a 3-channel pretrained stem is adapted (see
  :meth:`TransUNet.load_pretrained`) instead of repeating a grey image three times.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, PatchEmbeddingBlock, TransformerBlock
from torch import nn

__all__ = ["TransUNet", "PretrainedReport"]

logger = logging.getLogger(__name__)

_PATCH = 16  # the transformer runs on the 1/16 feature map: ViT-B/16 with a 1x1 patch on that grid
_ROOT_KEY = "resnet.root.conv.weight"
_POS_KEY = "embeddings.position_embeddings"


class _StdConv2d(nn.Conv2d):
    """Convolution with weight standardisation (BiT ResNets): each filter has zero mean, unit variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(self.weight, dim=[1, 2, 3], keepdim=True, correction=0)
        weight = (self.weight - mean) / torch.sqrt(var + 1e-5)
        return self._conv_forward(x, weight, self.bias)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class _Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, strided 3x3, 1x1) with group norm; projection shortcut when the shape changes.

    MONAI's ``ResNetBottleneck`` has plain convolutions; the BiT/ViT-hybrid weights need standardised ones.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _StdConv2d(in_channels, mid_channels, 1, bias=False)
        self.norm1 = _group_norm(mid_channels)
        self.conv2 = _StdConv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
        self.norm2 = _group_norm(mid_channels)
        self.conv3 = _StdConv2d(mid_channels, out_channels, 1, bias=False)
        self.norm3 = _group_norm(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    [
                        ("conv", _StdConv2d(in_channels, out_channels, 1, stride=stride, bias=False)),
                        ("norm", _group_norm(out_channels)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm1(self.conv1(x)))
        y = self.act(self.norm2(self.conv2(y)))
        y = self.norm3(self.conv3(y))
        return self.act(y + self.shortcut(x))


class _ResNetEncoder(nn.Module):
    """Stem (1/2) and three bottleneck stages (1/4, 1/8, 1/16) of a ResNet-50 v2-style backbone."""

    def __init__(self, in_channels: int, layers: Sequence[int], width: int = 64) -> None:
        super().__init__()
        self.root = nn.Sequential(
            OrderedDict(
                [
                    ("conv", _StdConv2d(in_channels, width, 7, stride=2, padding=3, bias=False)),
                    ("norm", _group_norm(width)),
                    ("act", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        in_ch = width
        for i, units in enumerate(layers):
            out_ch, mid_ch = width * 4 * 2**i, width * 2**i
            blocks = [_Bottleneck(in_ch, out_ch, mid_ch, stride=1 if i == 0 else 2)]
            blocks += [_Bottleneck(out_ch, out_ch, mid_ch, stride=1) for _ in range(units - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_ch
        # channels of the skip features, deepest first: stage 2 (1/8), stage 1 (1/4), stem (1/2)
        self.skip_channels = [width * 8, width * 4, width]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.root(x)
        features = [x]
        x = self.pool(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.stages) - 1:
                features.append(x)
        return x, features[::-1]


class _DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        conv = dict(spatial_dims=2, kernel_size=3, act="relu", norm="batch", bias=False)
        self.conv1 = Convolution(in_channels=in_channels + skip_channels, out_channels=out_channels, **conv)
        self.conv2 = Convolution(in_channels=out_channels, out_channels=out_channels, **conv)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class _CascadedUpsampler(nn.Module):
    """CUP: a 3x3 conv from the transformer width, then four 2x upsampling blocks with optional skips."""

    def __init__(
        self, hidden_size: int, decoder_channels: Sequence[int], skip_channels: Sequence[int], n_skip: int
    ) -> None:
        super().__init__()
        head_channels = 512
        self.conv_more = Convolution(
            spatial_dims=2,
            in_channels=hidden_size,
            out_channels=head_channels,
            kernel_size=3,
            act="relu",
            norm="batch",
            bias=False,
        )
        in_chs = [head_channels, *decoder_channels[:-1]]
        skips = [skip_channels[i] if i < n_skip else 0 for i in range(len(decoder_channels))]
        self.blocks = nn.ModuleList(_DecoderBlock(i, s, o) for i, s, o in zip(in_chs, skips, decoder_channels))
        self.n_skip = n_skip

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv_more(x)
        for i, block in enumerate(self.blocks):
            if i < self.n_skip:
                x = block(x, features[i])
            else:
                x = block(x, None)
        return x


@dataclass
class PretrainedReport:
    """What :meth:`TransUNet.load_pretrained` did: module keys filled, left as initialised, not used."""

    source_format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)


class TransUNet(nn.Module):
    """TransUNet with the R50-ViT-B/16 hybrid encoder and the cascaded upsampler, for 2D images.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (1 for CT, 4 for the BraTS modalities, ...).
    out_channels : int
        Channels of the output logits (classes, or labels for a sigmoid multi-label head).
    img_size : int or (int, int)
        Spatial size of every input; each side must be divisible by 16. The learnable position
        embeddings have one entry per cell of the ``img_size / 16`` grid, so other sizes are rejected
        in ``forward`` (use sliding-window inference with ``roi_size=img_size`` for larger images).
    hidden_size, num_layers, num_heads, mlp_dim : int
        Transformer width, depth, attention heads and MLP width (ViT-B: 768, 12, 12, 3072).
    resnet_layers : sequence of 3 ints
        Bottleneck units in the three ResNet stages (R50: 3, 4, 9).
    decoder_channels : sequence of 4 ints
        Output channels of the four 2x upsampling blocks of the CUP.
    n_skip : int
        How many ResNet skip connections (1/8, 1/4, 1/2, deepest first) the decoder uses, 0 to 3.
    dropout_rate : float
        Dropout after the position embeddings and inside each transformer block.
    pretrained_path : str or Path, optional
        A LOCAL checkpoint, loaded with :meth:`load_pretrained`; nothing is ever downloaded.

    Notes
    -----
    ``forward(x)`` takes ``(B, in_channels, *img_size)`` and returns ``(B, out_channels, *img_size)``
    logits. The module works with ``torch.jit.script`` and ``torch.jit.trace`` (so MONAI's
    ``ckpt_export`` works with and without ``--use_trace``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        img_size: int | Sequence[int] = 224,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        resnet_layers: Sequence[int] = (3, 4, 9),
        decoder_channels: Sequence[int] = (256, 128, 64, 16),
        n_skip: int = 3,
        dropout_rate: float = 0.0,
        pretrained_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        size = _check_img_size(img_size)
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("mlp_dim", mlp_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TransUNet: {name} must be a positive int, got {value!r}")
        if hidden_size % num_heads != 0:
            raise ValueError(f"TransUNet: hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        resnet_layers = tuple(resnet_layers)
        if len(resnet_layers) != 3 or any(not isinstance(u, int) or u < 1 for u in resnet_layers):
            raise ValueError(f"TransUNet: resnet_layers must be 3 positive ints (stages to 1/16), got {resnet_layers}")
        decoder_channels = tuple(decoder_channels)
        if len(decoder_channels) != 4 or any(not isinstance(c, int) or c < 1 for c in decoder_channels):
            raise ValueError(
                f"TransUNet: decoder_channels must be 4 positive ints (four 2x upsamplings from 1/16), "
                f"got {decoder_channels}"
            )
        if not isinstance(n_skip, int) or not 0 <= n_skip <= 3:
            raise ValueError(f"TransUNet: n_skip must be an int in 0..3, got {n_skip!r}")
        if not 0.0 <= dropout_rate <= 1.0:
            raise ValueError(f"TransUNet: dropout_rate must lie in [0, 1], got {dropout_rate}")

        self.in_channels = in_channels
        self.img_size = size
        self.grid_size = (size[0] // _PATCH, size[1] // _PATCH)
        self.hidden_size = hidden_size

        self.resnet = _ResNetEncoder(in_channels, resnet_layers)
        self.embeddings = PatchEmbeddingBlock(
            in_channels=self.resnet.out_channels,
            img_size=self.grid_size,
            patch_size=1,
            hidden_size=hidden_size,
            num_heads=num_heads,
            proj_type="conv",
            pos_embed_type="learnable",
            dropout_rate=dropout_rate,
            spatial_dims=2,
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias=True) for _ in range(num_layers)
        )
        for block in self.blocks:  # ViT's layer norms use eps 1e-6; pretrained weights expect it
            block.norm1.eps = block.norm2.eps = 1e-6
        self.norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.decoder = _CascadedUpsampler(hidden_size, decoder_channels, self.resnet.skip_channels, n_skip)
        self.head = nn.Conv2d(decoder_channels[-1], out_channels, kernel_size=3, padding=1)

        if pretrained_path is not None:
            self.load_pretrained(pretrained_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():  # a traced graph keeps the shapes it was traced with anyway
            self._check_input(x)
        x, features = self.resnet(x)
        tokens = self.embeddings(x)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        grid = tokens.transpose(1, 2).reshape(x.shape[0], self.hidden_size, self.grid_size[0], self.grid_size[1])
        return self.head(self.decoder(grid, features))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError("TransUNet expects a (B, C, H, W) tensor, got " + str(x.dim()) + " dimensions")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                "TransUNet was built for " + str(self.in_channels) + " input channels, got " + str(x.shape[1])
            )
        if x.shape[2] != self.img_size[0] or x.shape[3] != self.img_size[1]:
            raise ValueError(
                "TransUNet was built for img_size "
                + str(self.img_size)
                + " (position embeddings are per grid cell), got an input of "
                + str(x.shape[2])
                + "x"
                + str(x.shape[3])
            )

    @torch.jit.ignore
    def load_pretrained(self, path: str | Path) -> PretrainedReport:
        """Load weights from a local file, non-strictly, and log what matched.

        Accepted files (``path`` must be a local file; URLs are refused, nothing is downloaded):

        - a torch file holding a ``state_dict()`` of this module, or a dict with it under
          ``"state_dict"``, ``"model"`` or ``"network"``; a DDP ``"module."`` prefix is stripped.
          Keys: ``resnet.root.conv.weight``, ``resnet.root.norm.{weight,bias}``,
          ``resnet.stages.{s}.{u}.{conv1,conv2,conv3}.weight``, ``...{norm1,norm2,norm3}.{weight,bias}``,
          ``...shortcut.conv.weight``, ``...shortcut.norm.{weight,bias}`` (first unit of a stage),
          ``embeddings.patch_embeddings.{weight,bias}``, ``embeddings.position_embeddings``,
          ``blocks.{i}.norm1|norm2.{weight,bias}``, ``blocks.{i}.attn.qkv.{weight,bias}``,
          ``blocks.{i}.attn.out_proj.{weight,bias}``, ``blocks.{i}.mlp.linear1|linear2.{weight,bias}``,
          ``norm.{weight,bias}``, ``decoder.conv_more.*``, ``decoder.blocks.{j}.conv1|conv2.*``,
          ``head.{weight,bias}``;
        - a timm ``vit_base_r50_s16_224`` state dict (``patch_embed.backbone.stem.conv.weight``,
          ``patch_embed.backbone.stages.{s}.blocks.{u}.{conv,norm}{1,2,3}``, ``...downsample.{conv,norm}``,
          ``patch_embed.proj``, ``pos_embed``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
          ``norm``), mapped onto the encoder (``cls_token`` and ``head`` are not used);
        - a Google ``R50+ViT-B_16.npz`` (the file TransUNet starts from; keys ``conv_root/kernel``,
          ``gn_root/{scale,bias}``, ``block{b}/unit{u}/{conv,gn}{1,2,3}``, ``.../{conv,gn}_proj``,
          ``embedding/{kernel,bias}``, ``Transformer/posembed_input/pos_embedding``,
          ``Transformer/encoderblock_{i}/{LayerNorm_0,LayerNorm_2,MultiHeadDotProductAttention_1,MlpBlock_3}``,
          ``Transformer/encoder_norm``): HWIO kernels become OIHW, dense kernels are transposed, the
          separate query/key/value kernels are stacked into ``qkv``.

        The timm and npz position embeddings lose their class token. Two adaptations are applied to
        every format and listed in ``report.adapted``: a square grid of position embeddings is resized
        bilinearly to this model's ``img_size / 16`` grid; a stem kernel with another number of input
        channels (3 for ImageNet) is replaced by its mean over input channels, copied into every
        channel. The stem standardises its weights, so a grey image (all channels equal) then gets, in
        each output channel, the response the original stem gives to that grey image repeated over RGB
        times a positive per-filter factor (the ratio of the two kernels' standard deviations), which
        the following group norm largely absorbs; no rescaling can make it exact. Any other tensor
        whose shape differs (e.g. a ``head`` with another number of classes) is skipped and reported
        as mismatched.

        Returns
        -------
        PretrainedReport
            The keys loaded, missing (left as initialised), unexpected (not used) and mismatched.

        Raises
        ------
        FileNotFoundError
            If ``path`` is not an existing local file.
        ValueError
            If the file's format is not recognised or not a single tensor of it fits this model.
        """
        path_str = str(path)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path_str):
            raise ValueError(f"TransUNet.load_pretrained: local files only, got the URL {path_str!r}")
        file = Path(path_str).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"TransUNet.load_pretrained: no such local file {file}")
        if file.suffix == ".npz":
            with np.load(file) as arrays:
                source, fmt = _from_google_npz({k: arrays[k] for k in arrays.files}), "google-npz"
        else:
            raw = torch.load(file, map_location="cpu", weights_only=True)
            state = _unwrap_state_dict(raw, file)
            if any(k.startswith("patch_embed.backbone.") for k in state):
                source, fmt = _from_timm(state), "timm"
            else:
                source, fmt = dict(state), "transunet"
        report = self._load_mapped(source, fmt)
        if not report.loaded:
            raise ValueError(
                f"TransUNet.load_pretrained: nothing in {file} ({fmt} format) fits this model; "
                f"{len(report.mismatched)} keys had other shapes, {len(report.unexpected)} were unknown "
                f"(first: {(report.mismatched + report.unexpected)[:5]})"
            )
        logger.info(
            "TransUNet: loaded %d of %d tensors from %s (%s)", len(report.loaded), len(self.state_dict()), file, fmt
        )
        for what in ("adapted", "missing", "unexpected", "mismatched"):
            keys = getattr(report, what)
            if keys:
                level = logging.INFO if what in ("adapted", "missing") else logging.WARNING
                logger.log(level, "TransUNet: %d %s keys: %s", len(keys), what, _summarise(keys))
        return report

    def _load_mapped(self, source: Mapping[str, torch.Tensor], fmt: str) -> PretrainedReport:
        target = self.state_dict()
        report = PretrainedReport(source_format=fmt)
        filtered: dict[str, torch.Tensor] = {}
        for key, value in source.items():
            if key not in target:
                report.unexpected.append(key)
                continue
            value = torch.as_tensor(value)
            want = target[key]
            if value.shape != want.shape:
                adapted = self._adapt(key, value, tuple(want.shape))
                if adapted is None:
                    report.mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(want.shape)}")
                    continue
                report.adapted.append(f"{key}: {tuple(value.shape)} -> {tuple(want.shape)}")
                value = adapted
            filtered[key] = value.to(dtype=want.dtype)
        result = self.load_state_dict(filtered, strict=False)
        report.loaded = sorted(filtered)
        # MONAI's TransformerBlock always owns a cross-attention norm that a self-attention ViT never uses
        report.missing = sorted(k for k in result.missing_keys if ".norm_cross_attn." not in k)
        return report

    def _adapt(self, key: str, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor | None:
        if key == _ROOT_KEY and value.dim() == 4 and value.shape[0] == shape[0] and value.shape[2:] == shape[2:]:
            return value.mean(dim=1, keepdim=True).repeat(1, shape[1], 1, 1)
        if key == _POS_KEY and value.dim() == 3 and value.shape[2] == shape[2]:
            return _resize_position_embeddings(value, self.grid_size)
        return None


def _check_img_size(img_size: int | Sequence[int]) -> tuple[int, int]:
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in size):
        raise ValueError(f"TransUNet: img_size must be an int or two ints (2D), got {img_size!r}")
    if any(s < _PATCH or s % _PATCH != 0 for s in size):
        raise ValueError(
            f"TransUNet: img_size {img_size!r} must be positive multiples of {_PATCH} "
            f"(the transformer runs on the 1/{_PATCH} feature map)"
        )
    return size  # type: ignore[return-value]


def _resize_position_embeddings(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor | None:
    """Resize a square grid of position embeddings to ``grid`` (bilinear); None if it is not square."""
    n, dim = pos.shape[1], pos.shape[2]
    side = math.isqrt(n)
    if side * side != n:
        return None
    as_image = pos.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    resized = F.interpolate(as_image, size=grid, mode="bilinear", align_corners=False)
    return resized.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim).to(pos.dtype)


def _unwrap_state_dict(raw: object, file: Path) -> Mapping[str, torch.Tensor]:
    state = raw
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model", "network"):
            inner = state.get(wrapper)
            if isinstance(inner, Mapping):
                state = inner
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"TransUNet.load_pretrained: {file} is not a state dict (a mapping of names to tensors, "
            f"optionally under 'state_dict'), got {type(raw).__name__}"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


_TIMM_RULES = [
    (r"patch_embed\.backbone\.stem\.conv\.weight", "resnet.root.conv.weight"),
    (r"patch_embed\.backbone\.stem\.norm\.(weight|bias)", r"resnet.root.norm.\1"),
    (
        r"patch_embed\.backbone\.stages\.(\d+)\.blocks\.(\d+)\.downsample\.(conv|norm)\.(weight|bias)",
        r"resnet.stages.\1.\2.shortcut.\3.\4",
    ),
    (
        r"patch_embed\.backbone\.stages\.(\d+)\.blocks\.(\d+)\.(conv|norm)([123])\.(weight|bias)",
        r"resnet.stages.\1.\2.\3\4.\5",
    ),
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embeddings.\1"),
    (r"pos_embed", _POS_KEY),  # the class token is dropped in _from_timm
    (r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv)\.(weight|bias)", r"blocks.\1.\2.\3"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"blocks.\1.attn.out_proj.\2"),
    (r"blocks\.(\d+)\.mlp\.fc([12])\.(weight|bias)", r"blocks.\1.mlp.linear\2.\3"),
    (r"norm\.(weight|bias)", r"norm.\1"),
]


def _from_timm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm ``vit_base_r50_s16_224`` state dict; unknown keys keep their name (reported unused)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pattern, replacement in _TIMM_RULES:
            if re.fullmatch(pattern, key):
                name = re.sub(pattern, replacement, key)
                out[name] = _strip_class_token(value) if name == _POS_KEY else value
                break
        else:
            out[f"timm:{key}"] = value
    return out


def _strip_class_token(pos: torch.Tensor) -> torch.Tensor:
    """timm and Google ViTs prepend a class token to a square grid of position embeddings; drop it."""
    n = pos.shape[1]
    has_token = math.isqrt(n) ** 2 != n and math.isqrt(n - 1) ** 2 == n - 1
    return pos[:, 1:] if has_token else pos


def _conv(kernel: np.ndarray) -> torch.Tensor:  # HWIO -> OIHW
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _dense(kernel: np.ndarray) -> torch.Tensor:  # (in, out) -> (out, in)
    return torch.from_numpy(np.ascontiguousarray(kernel.T))


def _heads_to_dense(kernel: np.ndarray) -> torch.Tensor:  # out-projection (heads, head_dim, out) -> (out, in)
    return _dense(kernel.reshape(-1, kernel.shape[-1]))


def _vector(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.reshape(-1)))


def _position(array: np.ndarray) -> torch.Tensor:
    return _strip_class_token(torch.from_numpy(np.ascontiguousarray(array)))


_UNIT = r"block(\d+)/unit(\d+)/"
_LAYER = r"Transformer/encoderblock_(\d+)/"
_PARAM = {"kernel": "weight", "scale": "weight", "bias": "bias"}


def _unit(m: re.Match) -> str:
    return f"resnet.stages.{int(m[1]) - 1}.{int(m[2]) - 1}."


# (pattern, our key from the match, array conversion); the attention q/k/v kernels are stacked separately
_NPZ_RULES = [
    (r"conv_root/kernel", lambda m: _ROOT_KEY, _conv),
    (r"gn_root/(scale|bias)", lambda m: f"resnet.root.norm.{_PARAM[m[1]]}", _vector),
    (_UNIT + r"conv([123])/kernel", lambda m: _unit(m) + f"conv{m[3]}.weight", _conv),
    (_UNIT + r"gn([123])/(scale|bias)", lambda m: _unit(m) + f"norm{m[3]}.{_PARAM[m[4]]}", _vector),
    (_UNIT + r"conv_proj/kernel", lambda m: _unit(m) + "shortcut.conv.weight", _conv),
    (_UNIT + r"gn_proj/(scale|bias)", lambda m: _unit(m) + f"shortcut.norm.{_PARAM[m[3]]}", _vector),
    (r"embedding/kernel", lambda m: "embeddings.patch_embeddings.weight", _conv),
    (r"embedding/bias", lambda m: "embeddings.patch_embeddings.bias", _vector),
    (r"Transformer/posembed_input/pos_embedding", lambda m: _POS_KEY, _position),
    (r"Transformer/encoder_norm/(scale|bias)", lambda m: f"norm.{_PARAM[m[1]]}", _vector),
    (_LAYER + r"LayerNorm_0/(scale|bias)", lambda m: f"blocks.{m[1]}.norm1.{_PARAM[m[2]]}", _vector),
    (_LAYER + r"LayerNorm_2/(scale|bias)", lambda m: f"blocks.{m[1]}.norm2.{_PARAM[m[2]]}", _vector),
    (_LAYER + r"MlpBlock_3/Dense_([01])/kernel", lambda m: f"blocks.{m[1]}.mlp.linear{int(m[2]) + 1}.weight", _dense),
    (_LAYER + r"MlpBlock_3/Dense_([01])/bias", lambda m: f"blocks.{m[1]}.mlp.linear{int(m[2]) + 1}.bias", _vector),
    (
        _LAYER + r"MultiHeadDotProductAttention_1/out/kernel",
        lambda m: f"blocks.{m[1]}.attn.out_proj.weight",
        _heads_to_dense,
    ),
    (_LAYER + r"MultiHeadDotProductAttention_1/out/bias", lambda m: f"blocks.{m[1]}.attn.out_proj.bias", _vector),
]
_QKV = re.compile(_LAYER + r"MultiHeadDotProductAttention_1/(query|key|value)/(kernel|bias)")


def _from_google_npz(arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Rename and reshape the arrays of Google's ``R50+ViT-B_16.npz``; unknown arrays keep their name."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for key, array in arrays.items():
        m = _QKV.fullmatch(key)
        if m:
            # (hidden, heads, head_dim) -> (heads * head_dim, hidden): heads-major, as MONAI splits qkv
            qkv.setdefault((m[1], m[3]), {})[m[2]] = (
                array.reshape(array.shape[0], -1).T if m[3] == "kernel" else array.reshape(-1)
            )
            continue
        for pattern, name, convert in _NPZ_RULES:
            m = re.fullmatch(pattern, key)
            if m:
                out[name(m)] = convert(array)
                break
        else:  # class token, classifier head, pre-logits: no counterpart here
            out[f"npz:{key}"] = torch.from_numpy(np.array(array))
    for (layer, part), parts in qkv.items():
        name = f"blocks.{layer}.attn.qkv.{_PARAM[part]}"
        if len(parts) == 3:
            out[name] = torch.from_numpy(np.concatenate([parts[n] for n in ("query", "key", "value")]))
        else:
            out[f"npz:{name} (incomplete: {sorted(parts)})"] = torch.empty(0)
    return out


def _summarise(keys: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
