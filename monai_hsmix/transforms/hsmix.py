"""HSMix as MONAI batch transforms: :class:`RandHSMix` (arrays) and :class:`RandHSMixd` (dictionaries).

The mixing itself is :func:`monai_hsmix.core.hsmix_masks` (the masks, Eq. 1 and 3-6) and
:func:`monai_hsmix.core.mix_with_masks` (the blends, Eq. 2 and 7); the transforms add the random
draws, validation and the MONAI conventions.

HSMix mixes pairs of samples, so it works on a whole batch ``(B, C, H, W[, D])`` at once: use it in a
DataLoader's ``collate_fn`` (:class:`monai_hsmix.engines.BatchTransformCollate`) or in a trainer's
``prepare_batch`` (:class:`monai_hsmix.engines.BatchTransformPrepareBatch`), not on single samples.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends

from monai_hsmix.backends import resolve_backend
from monai_hsmix.backends.colour import SLIC_SPACES, check_slic_space
from monai_hsmix.backends.precision import full_precision
from monai_hsmix.backends.validation import check_image_batch
from monai_hsmix.core import (
    HSMixMasks,
    class_indices,
    grid_cells,
    hsmix_masks,
    identity_masks,
    is_index_labels,
    labels_to_channels,
    mix_with_masks,
    one_hot_channels,
    random_derangement,
    relative_saliency,
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
    ``X1`` (mask ``Mh``, Eq. 1-2); soft mixing blends the two with the relative saliency
    ``SA21 = SA2 / (SA1 + SA2)`` (Eq. 3) averaged inside every superpixel of the mixed grid ``SPm``
    (Eq. 4-5), which gives the mask ``Ms`` (Eq. 6) and the soft sample (Eq. 7). Labels are mixed as
    one-hot (or multi-label) channels with the same masks and come back as float soft labels.

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
        all its channels and, with ``slic_space="lab"``, converted to CIELAB (values 0-100) before
        clustering; small values follow intensity edges, large values give regular superpixels.
        The same number means about 100 times more regularity in ``"intensity"`` space than in
        ``"lab"``: use the value that goes with the space (the presets do).
    p : float
        Probability that a superpixel of ``X2`` is pasted in hard mixing.
    slic_space : {"intensity", "lab"}
        SLIC features. ``"intensity"``: the channels as they are (CT, MRI, any modality stack).
        ``"lab"``: the 3 channels are RGB (in ``[0, 1]`` or ``[0, 255]``) converted to CIELAB, as
        scikit-image's ``slic`` does for colour images (H&E, dermoscopy); the paper's RGB presets
        assume it. Never chosen from the channel count: three adjacent slices or three MRI
        modalities are not a colour image.
    mode : {"both", "hard", "soft", "random"}
        ``"both"`` (the paper) returns the hard and the soft batch concatenated (``2B`` samples),
        ``"hard"`` / ``"soft"`` one of them, ``"random"`` one of the two chosen at each call.
    include_original : bool
        Put the unmixed batch in front of the mixed one(s).
    prob : float
        Probability of applying the transform to a batch. When it is not applied, the output keeps
        the input's ``B`` samples: images unchanged (integer images cast to float32, as mixed ones
        are), labels as float channels, so a loss always sees one format.
    backend : {"auto", "torch", "reference"}
        Where superpixels and saliency come from: ``"reference"`` is scikit-image SLIC + OpenCV
        saliency on the CPU, ``"torch"`` the batched torch implementation on the batch's device,
        ``"auto"`` torch when available.
    engine : {"auto", "torch", "numba"}
        The torch backend's implementation, passed to SLIC, saliency and the blends: ``"auto"``
        compiled numba kernels for CPU batches and torch operations on a GPU, ``"torch"`` torch
        operations everywhere, ``"numba"`` the kernels (CPU batches only). The reference backend
        takes ``"auto"`` only.
    hard_region : {"superpixel", "grid"}
        Table 7 ablation: select the cells of a regular ``grid_size`` grid instead of superpixels.
    grid_size : int or sequence of int
        Cells per axis for ``hard_region="grid"`` (the paper's 7 x 7, whatever the image size).
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
    per-sample meta follows each mixed sample's ``X1``. Output images are floating point (float32
    for integer input, the input's dtype otherwise, float16 and bfloat16 included).

    Output batch size, for an input of ``B`` samples: ``2B`` for ``mode="both"``, ``B`` for the
    other modes, plus ``B`` with ``include_original``; a batch that is not mixed (``prob`` not
    drawn, or ``B = 1``) keeps ``B``.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        num_classes: Optional[int] = None,
        multilabel: bool = False,
        n_segments: Union[int, Sequence[int]] = (200, 400),
        compactness: float = 10.0,
        p: float = 0.3,
        slic_space: str = "intensity",
        mode: str = "both",
        include_original: bool = False,
        prob: float = 1.0,
        backend: str = "auto",
        hard_region: str = "superpixel",
        grid_size: Union[int, Sequence[int]] = 7,
        soft_ratio: str = "superpixel",
        beta_alpha: float = 1.0,
        spacing: Optional[Sequence[float]] = None,
        max_num_iter: int = 10,
        engine: str = "auto",
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
        choices = (("mode", mode, MODES), ("hard_region", hard_region, HARD_REGIONS), ("soft_ratio", soft_ratio, SOFT_RATIOS),
                   ("slic_space", slic_space, SLIC_SPACES))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.mode, self.hard_region, self.soft_ratio, self.slic_space = mode, hard_region, soft_ratio, slic_space
        self.grid_size = _check_grid_size(grid_size)
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
        self._superpixel_fn, self._saliency_fn = resolve_backend(backend, engine=engine)
        self.engine = engine
        self._warned_single = False
        self._partner = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._ratios = np.zeros(0)
        self._use_hard = True
        self._seed = 0

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "RandHSMix":
        """Build with a dataset preset of the paper's Table 9 (``glas``, ``monuseg``, ``isic2017``,
        ``brats2018``, ``synapse``), feature space included; keyword arguments override or
        complete it."""
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

    def mixes(self, batch_size: int) -> bool:
        """Whether the last :meth:`randomize` mixes a batch of ``batch_size`` (a batch of one is
        returned unmixed, with a warning the first time)."""
        if not self._do_transform:
            return False
        if batch_size < 2:
            if not self._warned_single:
                logger.warning("HSMix needs at least 2 samples in a batch to form pairs; a batch of 1 is returned unmixed")
                self._warned_single = True
            return False
        return True

    # -- validation -------------------------------------------------------------------------
    def check_images(self, images: torch.Tensor, name: str = "img") -> float:
        """Raise a ``ValueError`` saying what is wrong unless ``images`` is a batch HSMix can mix.

        Returns the batch's largest absolute value (0 for integers), for :meth:`apply`.
        """
        magnitude = check_image_batch(images, name)
        if self.spacing is not None and len(self.spacing) != images.ndim - 2:
            raise ValueError(f"spacing has {len(self.spacing)} values for {images.ndim - 2} spatial dimensions")
        if self.hard_region == "superpixel":
            try:
                check_slic_space(self.slic_space, images.shape[1])
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return magnitude

    @staticmethod
    def check_matching(images: torch.Tensor, other: torch.Tensor, name: str) -> None:
        """Raise a ``ValueError`` unless ``other`` has the batch and spatial size of ``images``."""
        if other.ndim != images.ndim or other.shape[0] != images.shape[0] or other.shape[2:] != images.shape[2:]:
            raise ValueError(
                f"{name} shape {tuple(other.shape)} does not match the image batch {tuple(images.shape)}: "
                "batch size and spatial size must be equal"
            )

    def label_channels(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as float channels (see :func:`monai_hsmix.core.labels_to_channels`)."""
        return labels_to_channels(labels, self.num_classes, self.multilabel)

    def prepare_labels(self, labels: torch.Tensor) -> Tuple[torch.Tensor, Optional[int]]:
        """Validated labels for :meth:`apply`: class indices (``int64``) with the class count, or
        float channels with ``None``."""
        if is_index_labels(labels, self.multilabel):
            return class_indices(labels, self.num_classes), self.num_classes
        return self.label_channels(labels), None

    # -- computation ------------------------------------------------------------------------
    def parts_wanted(self) -> Tuple[bool, bool]:
        """``(hard, soft)``: which samples the current draw produces."""
        if self.mode == "random":
            return self._use_hard, not self._use_hard
        return self.mode in ("both", "hard"), self.mode in ("both", "soft")

    @full_precision
    def compute(self, images: torch.Tensor, keep_maps: bool = True) -> HSMixMasks:
        """Masks for the current draws (call :meth:`randomize` first); :meth:`apply` mixes with them.

        Parameters
        ----------
        images : torch.Tensor
            ``(B, C, *spatial)`` floating batch with ``B >= 2`` that :meth:`check_images` accepts
            (the backends do not check it again).
        keep_maps : bool
            Keep the superpixel maps in the result (``False`` frees them once the masks exist).
        """
        bsz, spatial, device = images.shape[0], tuple(images.shape[2:]), images.device
        if len(self._partner) != bsz:
            raise RuntimeError("randomize(batch_size) must be called with this batch's size before compute()")
        counts = torch.as_tensor(self._counts, device=device)
        partner = torch.as_tensor(self._partner, device=device)
        if self.hard_region == "grid":
            segments = grid_cells(bsz, spatial, self.grid_size, device=device)
        else:
            segments = self._superpixel_fn(images, counts, self.compactness, spacing=self.spacing,
                                           max_num_iter=self.max_num_iter, slic_space=self.slic_space,
                                           max_segments=self.n_segments[1], validate=False)
        num = int(segments.max().item()) + 1
        generator = torch.Generator().manual_seed(self._seed)
        uniforms = torch.rand((bsz, num), generator=generator, dtype=torch.float32).to(device)
        _, want_soft = self.parts_wanted()
        soft_mask = saliency = None
        if want_soft:
            if self.soft_ratio == "beta":
                ratios = torch.as_tensor(self._ratios, dtype=images.dtype, device=device)
                soft_mask = ratios.reshape((bsz,) + (1,) * len(spatial)).expand((bsz,) + spatial)
            else:
                saliency = self._saliency_fn(images, validate=False).to(images.dtype)
                if self.soft_ratio == "pixel":
                    soft_mask = relative_saliency(saliency, saliency[partner])
                    saliency = None
        return hsmix_masks(partner, segments, uniforms, self.p, soft_mask=soft_mask, saliency=saliency, keep_maps=keep_maps,
                           engine=self.engine)

    @full_precision
    def apply(self, tensor: torch.Tensor, masks: HSMixMasks, num_classes: Optional[int] = None,
              magnitude: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix any ``(B, C, *spatial)`` tensor of the batch with ``masks`` (from :meth:`compute`).

        The parts the mode asks for are stacked along the batch axis by
        :func:`monai_hsmix.core.mix_with_masks`. With ``num_classes``, ``tensor`` holds validated
        ``(B, 1, *spatial)`` ``int64`` class indices (see :meth:`prepare_labels`) and the output
        their mixed one-hot channels. ``magnitude`` is the tensor's largest absolute value (what
        :meth:`check_images` returns): beyond half the dtype's largest value the difference of
        two images can overflow, so such a batch is mixed at half scale. Returns the output and,
        for each output row, the input row it derives from (its ``X1``).
        """
        hard, soft = self.parts_wanted()
        parts = masks.parts(hard, soft)
        if num_classes is None and magnitude is not None and magnitude > torch.finfo(tensor.dtype).max / 2:
            # halving and doubling are exact; the blend lies between its two inputs up to rounding
            top = torch.finfo(tensor.dtype).max
            mixed, rows = mix_with_masks(tensor * 0.5, masks.partner, parts, self.include_original, engine=self.engine)
            return mixed.mul_(2).clamp_(-top, top), rows
        return mix_with_masks(tensor, masks.partner, parts, self.include_original, num_classes, engine=self.engine)

    def unmixed(self, tensor: torch.Tensor, num_classes: Optional[int] = None) -> torch.Tensor:
        """What a batch that is not mixed returns for ``tensor``: images as floats, index labels
        as one-hot channels (``num_classes`` given), label channels as they are."""
        if num_classes is not None:
            return one_hot_channels(tensor, num_classes)
        return as_floating(tensor)

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
            superpixel maps and the pairing. A batch that was not mixed reports
            :func:`~monai_hsmix.core.identity_masks` (each image its own partner, zero masks), and
            a mask the draw did not produce (the other part under ``mode="random"``) is zero.

        Returns
        -------
        images, or (images, labels), with the masks appended when ``return_masks``.
        """
        images = to_torch(img, "img")
        magnitude = self.check_images(images)
        labels = classes = None
        if label is not None:
            labels = to_torch(label, "label")
            self.check_matching(images, labels, "label")
            labels, classes = self.prepare_labels(labels)
        bsz = images.shape[0]
        if randomize:
            self.randomize(bsz)
        fimages = as_floating(images)
        if self.mixes(bsz):
            masks = self.compute(fimages, keep_maps=return_masks)
            mixed, rows = self.apply(fimages, masks, magnitude=magnitude)
            out_lab = None if labels is None else like_input(self.apply(labels, masks, classes)[0], label, rows)
        else:
            masks = identity_masks(bsz, images.shape[2:], images.device, fimages.dtype) if return_masks else None
            rows = torch.arange(bsz)
            mixed = fimages
            out_lab = None if labels is None else like_input(self.unmixed(labels, classes), label, rows)
        outputs: Tuple[Any, ...] = (like_input(mixed, img, rows),) if labels is None else (like_input(mixed, img, rows), out_lab)
        if return_masks:
            outputs = outputs + (_filled(masks, fimages.dtype),)
        return outputs[0] if len(outputs) == 1 else outputs


class RandHSMixd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandHSMix` for a collated batch dictionary.

    Parameters
    ----------
    keys : str or sequence of str
        Keys to mix: images and labels. All must share batch and spatial size.
    label_keys : str or sequence of str
        The subset of ``keys`` that holds labels (mixed as one-hot / multi-label channels). An
        integer-typed key that is not listed here is an error: it is almost always a label map
        that would otherwise be blended as intensities (fractional class indices).
    image_key : str, optional
        The image whose superpixels and saliency define the masks (default: the first key of
        ``keys`` that is not a label key). Every image key is mixed with the same masks.
    return_masks : bool
        Add ``{mask_key_prefix}hard_mask``, ``soft_mask``, ``segments``, ``partner_segments``,
        ``mixed_segments`` (each ``(B, 1, ...)``) and ``partner`` (``(B,)``) to the output, in
        every call: a batch that was not mixed reports zero masks, one segment and each sample
        its own partner; a mask the draw did not produce is zero.
    mask_key_prefix : str
        Prefix of the keys added by ``return_masks``.
    allow_missing_keys : bool
        Skip keys that are absent instead of raising.
    **kwargs
        Every other argument of :class:`RandHSMix` (``num_classes``, ``multilabel``, ``n_segments``,
        ``compactness``, ``p``, ``slic_space``, ``mode``, ``include_original``, ``prob``,
        ``backend``, ``hard_region``, ``grid_size``, ``soft_ratio``, ``beta_alpha``, ``spacing``,
        ``max_num_iter``).

    Notes
    -----
    Keys that are not in ``keys`` are passed through unchanged; with ``mode="both"`` the mixed keys
    hold ``2B`` samples while such keys keep ``B`` (see :class:`RandHSMix` for the batch size in
    each case).
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

    def _validated(self, d: Mapping[Hashable, Any], present: List[Hashable], source_key: Hashable):
        """Every key as a torch tensor, checked; labels prepared. Returns tensors, class counts and
        the images' largest absolute values."""
        source = to_torch(d[source_key], str(source_key))
        tensors: Dict[Hashable, torch.Tensor] = {source_key: source}
        classes: Dict[Hashable, Optional[int]] = {}
        magnitudes: Dict[Hashable, float] = {}
        for key in present:
            t = source if key == source_key else to_torch(d[key], str(key))
            if key in self.label_keys:
                self.mixer.check_matching(source, t, str(key))
                t, classes[key] = self.mixer.prepare_labels(t)
            else:
                if not t.is_floating_point() and t.dtype != torch.bool and not t.is_complex():
                    raise ValueError(
                        f"{key!r} holds integers ({t.dtype}) but is not in label_keys: it would be blended as "
                        f"intensities (fractional class indices). List it in label_keys if it is a label map, "
                        f"or cast it to float first if it is an image (e.g. EnsureTyped or ScaleIntensityd)"
                    )
                if key != source_key:
                    self.mixer.check_matching(source, t, str(key))
                magnitudes[key] = self.mixer.check_images(t, str(key))
            tensors[key] = t
        return tensors, classes, magnitudes

    def __call__(self, data: Mapping[Hashable, Any]) -> Dict[Hashable, Any]:
        d = dict(data)
        present = list(self.key_iterator(d))
        image_keys = [k for k in present if k not in self.label_keys]
        if not image_keys:
            raise ValueError(f"RandHSMixd needs at least one image key among {present} (keys not in label_keys)")
        source_key = self.image_key if self.image_key in image_keys else image_keys[0]
        tensors, classes, magnitudes = self._validated(d, present, source_key)
        source = tensors[source_key]
        bsz = source.shape[0]
        self.randomize(bsz)
        if self.mixer.mixes(bsz):
            masks = self.mixer.compute(source, keep_maps=self.return_masks)
            for key in present:
                mixed, rows = self.mixer.apply(tensors[key], masks, classes.get(key), magnitudes.get(key))
                d[key] = like_input(mixed, data[key], rows)
        else:
            masks = identity_masks(bsz, source.shape[2:], source.device, source.dtype)
            for key in present:
                d[key] = like_input(self.mixer.unmixed(tensors[key], classes.get(key)), data[key], torch.arange(bsz))
        if self.return_masks:
            masks = _filled(masks, source.dtype)
            for field in MASK_FIELDS:
                d[f"{self.mask_key_prefix}{field}"] = getattr(masks, field).unsqueeze(1)
            d[f"{self.mask_key_prefix}partner"] = masks.partner
        return d


def as_floating(images: torch.Tensor) -> torch.Tensor:
    """Images as a floating tensor: floating input as it is, anything else as float32."""
    return images if images.is_floating_point() else images.float()


def _filled(masks: HSMixMasks, dtype: torch.dtype) -> HSMixMasks:
    """``masks`` with a zero soft mask where the draw produced none (``Mh`` is always built), so
    that the reported fields never depend on the draw."""
    if masks.soft_mask is not None:
        return masks
    return dataclasses.replace(masks, soft_mask=torch.zeros_like(masks.hard_mask, dtype=dtype))


def _check_grid_size(grid_size: Union[int, Sequence[int]]) -> Union[int, Tuple[int, ...]]:
    def positive_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1

    if positive_int(grid_size):
        return int(grid_size)
    if isinstance(grid_size, (tuple, list)) and grid_size and all(positive_int(v) for v in grid_size):
        return tuple(int(v) for v in grid_size)
    raise ValueError(f"grid_size must be a positive int or a sequence of positive ints, got {grid_size!r}")


RandHSMixD = RandHSMixDict = RandHSMixd
