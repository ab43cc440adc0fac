"""HSMix as MONAI batch transforms: :class:`RandHSMix` (arrays) and :class:`RandHSMixd` (dictionaries).

HSMix mixes pairs of samples, so it works on a whole batch ``(B, C, H, W[, D])`` at once: use it in a
DataLoader's ``collate_fn`` (:class:`monai_hsmix.data.HSMixCollate`) or in a trainer's
``prepare_batch`` (:class:`monai_hsmix.data.HSMixPrepareBatch`), not on single samples.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends

from monai_hsmix.backends import resolve_backend
from monai_hsmix.backends.intensity import all_finite
from monai_hsmix.core import (
    HSMixMasks,
    blend,
    blend_index_labels,
    class_indices,
    hsmix_masks,
    is_index_labels,
    labels_to_channels,
    one_hot_channels,
    random_derangement,
    relative_saliency,
    square_grid_segments,
)
from monai_hsmix.transforms.batch_types import like_input, to_torch
from monai_hsmix.transforms.hsmix_presets import get_preset

logger = logging.getLogger(__name__)

MODES = ("both", "hard", "soft", "random")
HARD_REGIONS = ("superpixel", "grid")
SOFT_RATIOS = ("superpixel", "pixel", "beta")
MASK_FIELDS = ("hard_mask", "soft_mask", "segments", "partner_segments", "mixed_segments")


def _check_segment_range(n_segments: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(n_segments, (int, np.integer)):
        lo = hi = int(n_segments)
    else:
        values = tuple(n_segments)
        if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
            raise ValueError(f"n_segments must be an int or a pair of ints (lmin, lmax), got {n_segments!r}")
        lo, hi = int(values[0]), int(values[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"n_segments range must satisfy 1 <= lmin <= lmax, got ({lo}, {hi})")
    return lo, hi


class RandHSMix(RandomizableTransform):
    """HSMix (arXiv 2511.17614): hard and soft superpixel mixing of every sample with a partner.

    Every image ``X1`` of the batch is paired with another image ``X2`` of the same batch (a random
    derangement). Hard mixing pastes Bernoulli(``p``)-selected SLIC superpixels of ``X2`` onto
    ``X1`` (mask ``Mh``); soft mixing blends the two with the relative saliency ``SA2 / (SA1 + SA2)``
    averaged inside every superpixel of the mixed grid (mask ``Ms``). Labels are mixed as one-hot (or
    multi-label) channels with the same masks and come back as float soft labels.

    Parameters
    ----------
    num_classes : int, optional
        Number of classes, required when labels are class indices ``(B, 1, ...)``.
    multilabel : bool
        Label channels are independent binary masks (e.g. BraTS WT/TC/ET), not one-hot.
    n_segments : int or (int, int)
        Superpixel count, drawn per image from ``U(lmin, lmax)`` (inclusive).
    compactness : float
        SLIC compactness, in scikit-image's sense: each image is min-max scaled to ``[0, 1]`` over
        all its channels before clustering, so the value does not depend on intensity units; small
        values follow intensity edges, large values give regular, grid-like superpixels.
    p : float
        Probability that a superpixel of ``X2`` is pasted in hard mixing.
    mode : {"both", "hard", "soft", "random"}
        ``"both"`` (the paper) returns the hard and the soft batch concatenated (``2B`` samples),
        ``"hard"`` / ``"soft"`` one of them, ``"random"`` one of the two chosen at each call.
    include_original : bool
        Put the unmixed batch in front of the mixed one(s).
    prob : float
        Probability of applying the transform to a batch. When it is not applied, the images come
        back unchanged and the labels are still returned as float channels, so a loss always sees
        one label format.
    backend : {"auto", "torch", "reference"}
        Where superpixels and saliency come from: ``"reference"`` is scikit-image SLIC + OpenCV
        saliency on the CPU, ``"torch"`` the batched torch implementation on the batch's device,
        ``"auto"`` torch when available.
    hard_region : {"superpixel", "grid"}
        Table 7 ablation: select square grid cells (about the same count) instead of superpixels.
    soft_ratio : {"superpixel", "pixel", "beta"}
        Table 7 ablation: the soft ratio ``Ms`` averaged per superpixel (the paper), the pixel-wise
        saliency ratio, or one ``Beta(beta_alpha, beta_alpha)`` ratio per image (Mixup).
    beta_alpha : float
        Beta parameter for ``soft_ratio="beta"``.
    spacing : sequence of float, optional
        Voxel spacing for SLIC on anisotropic data.
    max_num_iter : int
        Largest number of SLIC k-means iterations (both backends stop earlier at a fixed point).

    Notes
    -----
    Call it as ``images, labels = mix(images, labels)``; ``mix(images)`` returns images only. Input
    may be numpy, torch or a batched MetaTensor; the output has the same type, and a MetaTensor's
    per-sample meta follows each mixed sample's ``X1``. Mixed images are floating point.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        num_classes: Optional[int] = None,
        multilabel: bool = False,
        n_segments: Union[int, Sequence[int]] = (200, 400),
        compactness: float = 10.0,
        p: float = 0.3,
        mode: str = "both",
        include_original: bool = False,
        prob: float = 1.0,
        backend: str = "auto",
        hard_region: str = "superpixel",
        soft_ratio: str = "superpixel",
        beta_alpha: float = 1.0,
        spacing: Optional[Sequence[float]] = None,
        max_num_iter: int = 10,
    ) -> None:
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        RandomizableTransform.__init__(self, prob)
        if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.multilabel = bool(multilabel)
        self.n_segments = _check_segment_range(n_segments)
        if not (math.isfinite(float(compactness)) and float(compactness) > 0):
            raise ValueError(f"compactness must be a positive finite number, got {compactness}")
        self.compactness = float(compactness)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        for name, value, allowed in (("mode", mode, MODES), ("hard_region", hard_region, HARD_REGIONS), ("soft_ratio", soft_ratio, SOFT_RATIOS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.mode, self.hard_region, self.soft_ratio = mode, hard_region, soft_ratio
        self.include_original = bool(include_original)
        if not float(beta_alpha) > 0:
            raise ValueError(f"beta_alpha must be positive, got {beta_alpha}")
        self.beta_alpha = float(beta_alpha)
        if spacing is not None:
            spacing = tuple(float(s) for s in spacing)
            if not all(s > 0 and math.isfinite(s) for s in spacing):
                raise ValueError(f"spacing must hold positive finite numbers, got {spacing}")
        self.spacing = spacing
        if int(max_num_iter) < 1:
            raise ValueError(f"max_num_iter must be at least 1, got {max_num_iter}")
        self.max_num_iter = int(max_num_iter)
        self.compute_backend = backend
        self._superpixel_fn, self._saliency_fn = resolve_backend(backend)
        self._warned_single = False
        self._partner = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._ratios = np.zeros(0)
        self._use_hard = True
        self._seed = 0

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "RandHSMix":
        """Build with a dataset preset of the paper's Table 9 (``glas``, ``monuseg``, ``isic2017``,
        ``brats2018``, ``synapse``); keyword arguments override or complete it."""
        return cls(**{**get_preset(name).as_kwargs(), **overrides})

    # -- randomness -------------------------------------------------------------------------
    def randomize(self, data: Any = None) -> None:
        """Draw everything for one batch; ``data`` is the batch size."""
        super().randomize(None)
        bsz = int(data) if data is not None else 0
        if not self._do_transform or bsz < 2:
            return
        self._partner = random_derangement(bsz, self.R)
        self._counts = self.R.randint(self.n_segments[0], self.n_segments[1] + 1, size=bsz)
        self._ratios = self.R.beta(self.beta_alpha, self.beta_alpha, size=bsz)
        self._use_hard = bool(self.R.rand() < 0.5)
        # Bernoulli draws need the superpixel count, known only after SLIC: seed a torch generator now
        self._seed = int(self.R.randint(0, 2**31 - 1))

    # -- validation -------------------------------------------------------------------------
    def _check_batch(self, images: torch.Tensor, name: str = "img") -> None:
        if images.ndim not in (4, 5):
            raise ValueError(f"{name} must be a batch (B, C, H, W) or (B, C, H, W, D), got shape {tuple(images.shape)}")
        if images.shape[0] == 0 or any(s == 0 for s in images.shape[1:]):
            raise ValueError(f"{name} has an empty dimension: {tuple(images.shape)}")
        if images.dtype == torch.bool or images.is_complex():
            raise ValueError(f"{name} must hold real numbers, got {images.dtype}")
        if not all_finite(images):
            raise ValueError(f"{name} contains NaN or infinite values")
        if self.spacing is not None and len(self.spacing) != images.ndim - 2:
            raise ValueError(f"spacing has {len(self.spacing)} values for {images.ndim - 2} spatial dimensions")

    def _check_pair(self, images: torch.Tensor, other: torch.Tensor, name: str) -> None:
        if other.ndim != images.ndim or other.shape[0] != images.shape[0] or other.shape[2:] != images.shape[2:]:
            raise ValueError(
                f"{name} shape {tuple(other.shape)} does not match the image batch {tuple(images.shape)}: "
                "batch size and spatial size must be equal"
            )

    def label_channels(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as float channels (see :func:`monai_hsmix.core.labels_to_channels`)."""
        return labels_to_channels(labels, self.num_classes, self.multilabel)

    # -- computation ------------------------------------------------------------------------
    def _wants(self) -> Tuple[bool, bool]:
        if self.mode == "random":
            return self._use_hard, not self._use_hard
        return self.mode in ("both", "hard"), self.mode in ("both", "soft")

    def compute(self, images: torch.Tensor, keep_maps: bool = True) -> HSMixMasks:
        """Masks for the current draws (call :meth:`randomize` first); :meth:`expand` applies them.

        Parameters
        ----------
        images : torch.Tensor
            ``(B, C, *spatial)`` floating batch with ``B >= 2``.
        keep_maps : bool
            Keep the superpixel maps in the result (``False`` frees them once the masks exist).
        """
        bsz, spatial, device = images.shape[0], tuple(images.shape[2:]), images.device
        if len(self._partner) != bsz:
            raise RuntimeError("randomize(batch_size) must be called with this batch's size before compute()")
        counts = torch.as_tensor(self._counts, device=device)
        partner = torch.as_tensor(self._partner, device=device)
        if self.hard_region == "grid":
            segments = square_grid_segments(spatial, counts, device=device)
        else:
            segments = self._superpixel_fn(images, counts, self.compactness, spacing=self.spacing, max_num_iter=self.max_num_iter)
        num = int(segments.max().item()) + 1
        generator = torch.Generator().manual_seed(self._seed)
        uniforms = torch.rand((bsz, num), generator=generator, dtype=torch.float32).to(device)
        _, want_soft = self._wants()
        soft_mask = saliency = None
        if want_soft:
            if self.soft_ratio == "beta":
                ratios = torch.as_tensor(self._ratios, dtype=images.dtype, device=device)
                soft_mask = ratios.reshape((bsz,) + (1,) * len(spatial)).expand((bsz,) + spatial)
            else:
                saliency = self._saliency_fn(images).to(images.dtype)
                if self.soft_ratio == "pixel":
                    soft_mask = relative_saliency(saliency, saliency[partner])
                    saliency = None
        return hsmix_masks(partner, segments, uniforms, self.p, soft_mask=soft_mask, saliency=saliency, keep_maps=keep_maps)

    def expand(self, tensor: torch.Tensor, result: HSMixMasks, num_classes: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix any ``(B, C, *spatial)`` tensor with ``result``'s masks and stack the parts the mode asks for.

        With ``num_classes``, ``tensor`` holds validated ``(B, 1, *spatial)`` ``int64`` class indices
        and the output their mixed one-hot channels (built without a one-hot copy of the input).
        Returns the output batch and, for each output row, the input row it derives from (its ``X1``).
        The parts are written straight into one preallocated output (no per-part copies to concatenate).
        """
        want_hard, want_soft = self._wants()
        masks = [m for m, wanted in ((result.hard_mask, want_hard), (result.soft_mask, want_soft)) if wanted]
        bsz = tensor.shape[0]
        first = 1 if self.include_original else 0
        channels, dtype = (tensor.shape[1], tensor.dtype) if num_classes is None else (num_classes, torch.float32)
        out = torch.empty((bsz * (first + len(masks)), channels) + tuple(tensor.shape[2:]), dtype=dtype, device=tensor.device)
        if first and num_classes is None:
            out[:bsz] = tensor
        elif first:
            one_hot_channels(tensor, num_classes, out=out[:bsz])
        partner = result.partner.tolist()
        for k, mask in enumerate(masks, start=first):
            part = out[k * bsz:(k + 1) * bsz]
            mix = blend
            if num_classes is not None:
                # Mh is 0 or 1 by construction: its labels are one-hot copies, one scatter each
                mix = functools.partial(blend_index_labels, num_classes=num_classes, binary=mask is result.hard_mask)
            # row by row: partners' rows are read in place instead of gathered into a copy, and
            # temporaries stay one sample large
            for row, other in enumerate(partner):
                mix(tensor[row : row + 1], tensor[other : other + 1], mask[row : row + 1], out=part[row : row + 1])
        rows = torch.arange(bsz).repeat(first + len(masks))
        return out, rows

    def prepare_labels(self, labels: torch.Tensor) -> Tuple[torch.Tensor, Optional[int]]:
        """Validated labels for :meth:`expand`: class indices (``int64``) with the class count, or
        float channels with ``None``."""
        if is_index_labels(labels, self.multilabel):
            return class_indices(labels, self.num_classes), self.num_classes
        return self.label_channels(labels), None

    def _as_float(self, images: torch.Tensor) -> torch.Tensor:
        return images if images.is_floating_point() else images.float()

    def _skip(self, bsz: int) -> bool:
        if not self._do_transform:
            return True
        if bsz < 2:
            if not self._warned_single:
                logger.warning("HSMix needs at least 2 samples in a batch to form pairs; a batch of 1 is returned unmixed")
                self._warned_single = True
            return True
        return False

    def __call__(self, img: Any, label: Any = None, randomize: bool = True, return_masks: bool = False):  # type: ignore[override]
        """Mix a batch.

        Parameters
        ----------
        img : numpy.ndarray, torch.Tensor or MetaTensor
            ``(B, C, H, W)`` or ``(B, C, H, W, D)`` images.
        label : same types, optional
            ``(B, 1, ...)`` class indices or ``(B, K, ...)`` one-hot / multi-label channels.
        randomize : bool
            Draw new random numbers (set ``False`` to repeat the last draws on a same-sized batch).
        return_masks : bool
            Also return the :class:`~monai_hsmix.core.HSMixMasks` with ``Mh``, ``Ms``, the
            superpixel maps and the pairing (``None`` when the batch was not mixed).

        Returns
        -------
        images, or (images, labels), with the masks appended when ``return_masks``.
        """
        images = to_torch(img, "img")
        self._check_batch(images)
        labels = classes = None
        if label is not None:
            labels = to_torch(label, "label")
            self._check_pair(images, labels, "label")
            labels, classes = self.prepare_labels(labels)
        bsz = images.shape[0]
        if randomize:
            self.randomize(bsz)
        result = None
        if self._skip(bsz):
            out_img = img
            if labels is not None and classes is not None:
                labels = one_hot_channels(labels, classes)  # already validated
            out_lab = None if labels is None else like_input(labels, label, torch.arange(bsz))
        else:
            fimages = self._as_float(images)
            result = self.compute(fimages, keep_maps=return_masks)
            mixed, rows = self.expand(fimages, result)
            out_img = like_input(mixed, img, rows)
            out_lab = None
            if labels is not None:
                mixed_lab, _ = self.expand(labels, result, classes)
                out_lab = like_input(mixed_lab, label, rows)
        outputs: Tuple[Any, ...] = (out_img,) if labels is None else (out_img, out_lab)
        if return_masks:
            outputs = outputs + (result,)
        return outputs[0] if len(outputs) == 1 else outputs


class RandHSMixd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandHSMix` for a collated batch dictionary.

    Parameters
    ----------
    keys : str or sequence of str
        Keys to mix: images and labels. All must share batch and spatial size.
    label_keys : str or sequence of str
        The subset of ``keys`` that holds labels (mixed as one-hot / multi-label channels).
    image_key : str, optional
        The image whose superpixels and saliency define the masks (default: the first key of
        ``keys`` that is not a label key). Every image key is mixed with the same masks.
    return_masks : bool
        Add ``{mask_key_prefix}hard_mask``, ``soft_mask``, ``segments``, ``partner_segments``,
        ``mixed_segments`` (each ``(B, 1, ...)``) and ``partner`` (``(B,)``) to the output.
    mask_key_prefix : str
        Prefix of the keys added by ``return_masks``.
    allow_missing_keys : bool
        Skip keys that are absent instead of raising.
    **kwargs
        Every other argument of :class:`RandHSMix` (``num_classes``, ``multilabel``, ``n_segments``,
        ``compactness``, ``p``, ``mode``, ``include_original``, ``prob``, ``backend``,
        ``hard_region``, ``soft_ratio``, ``beta_alpha``, ``spacing``, ``max_num_iter``).

    Notes
    -----
    Keys that are not in ``keys`` are passed through unchanged; with ``mode="both"`` the mixed keys
    hold ``2B`` samples while such keys keep ``B``.
    """

    backend = RandHSMix.backend

    def __init__(
        self,
        keys: KeysCollection,
        label_keys: KeysCollection = (),
        image_key: Optional[str] = None,
        return_masks: bool = False,
        mask_key_prefix: str = "hsmix_",
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mixer = RandHSMix(**kwargs)
        RandomizableTransform.__init__(self, self.mixer.prob)
        labels = (label_keys,) if isinstance(label_keys, str) else tuple(label_keys)
        unknown = [k for k in labels if k not in self.keys]
        if unknown:
            raise ValueError(f"label_keys {unknown} are not in keys {list(self.keys)}")
        self.label_keys = labels
        if image_key is not None and (image_key not in self.keys or image_key in labels):
            raise ValueError(f"image_key {image_key!r} must be one of keys and not a label key")
        self.image_key = image_key
        self.return_masks = bool(return_masks)
        self.mask_key_prefix = mask_key_prefix

    @classmethod
    def from_preset(cls, name: str, keys: KeysCollection, label_keys: KeysCollection = (), **overrides: Any) -> "RandHSMixd":
        """Build with a dataset preset of the paper's Table 9; keyword arguments override it."""
        return cls(keys, label_keys, **{**get_preset(name).as_kwargs(), **overrides})

    def set_random_state(self, seed: Optional[int] = None, state: Optional[np.random.RandomState] = None) -> "RandHSMixd":
        super().set_random_state(seed, state)
        self.mixer.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.mixer.randomize(data)
        self._do_transform = self.mixer._do_transform

    def __call__(self, data: Mapping[Hashable, Any]) -> Dict[Hashable, Any]:
        d = dict(data)
        present = list(self.key_iterator(d))
        image_keys = [k for k in present if k not in self.label_keys]
        label_keys = [k for k in present if k in self.label_keys]
        if not image_keys:
            raise ValueError(f"RandHSMixd needs at least one image key among {present} (keys not in label_keys)")
        source_key = self.image_key if self.image_key in image_keys else image_keys[0]
        source = to_torch(d[source_key], str(source_key))
        self.mixer._check_batch(source, str(source_key))
        tensors: Dict[Hashable, torch.Tensor] = {source_key: source}
        classes: Dict[Hashable, Optional[int]] = {}
        for key in present:
            if key == source_key:
                continue
            t = to_torch(d[key], str(key))
            self.mixer._check_pair(source, t, str(key))
            if key in label_keys:
                t, classes[key] = self.mixer.prepare_labels(t)
            else:
                self.mixer._check_batch(t, str(key))
            tensors[key] = t
        bsz = source.shape[0]
        self.randomize(bsz)
        if self.mixer._skip(bsz):
            for key in label_keys:
                t = tensors[key] if classes[key] is None else one_hot_channels(tensors[key], classes[key])
                d[key] = like_input(t, data[key], torch.arange(bsz))
            return d
        for key in image_keys:
            tensors[key] = self.mixer._as_float(tensors[key])
        result = self.mixer.compute(tensors[source_key], keep_maps=self.return_masks)
        for key in present:
            mixed, rows = self.mixer.expand(tensors[key], result, classes.get(key))
            d[key] = like_input(mixed, data[key], rows)
        if self.return_masks:
            for field in MASK_FIELDS:
                value = getattr(result, field)
                if value is not None:
                    d[f"{self.mask_key_prefix}{field}"] = value.unsqueeze(1)
            d[f"{self.mask_key_prefix}partner"] = result.partner
        return d


RandHSMixD = RandHSMixDict = RandHSMixd
