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
import weakref
from typing import Any, Dict, Hashable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, get_track_meta
from monai.networks.utils import one_hot
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_tensor, ensure_tuple

from monai_hsmix.backends import resolve_backend
from monai_hsmix.backends.colour import SLIC_SPACES, check_slic_space
from monai_hsmix.backends.precision import full_precision
from monai_hsmix.backends.validation import check_compactness, check_grid_size, check_image_batch, check_spacing
from monai_hsmix.core import (
    HSMixMasks,
    class_indices,
    grid_cells,
    hsmix_masks,
    identity_masks,
    is_index_labels,
    labels_to_channels,
    mix_with_masks,
    random_derangement,
    relative_saliency,
)
from monai_hsmix.transforms.batch_meta import like_input_rows
from monai_hsmix.transforms.hsmix_presets import get_preset

__all__ = [
    "HARD_REGIONS",
    "MASK_FIELDS",
    "MODES",
    "SOFT_RATIOS",
    "RandHSMix",
    "RandHSMixD",
    "RandHSMixDict",
    "RandHSMixd",
]

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


def _as_tensor(data: Any, name: str) -> torch.Tensor:
    """A plain torch tensor of ``data``: the mixing runs on plain tensors (MetaTensor's operator
    dispatch is slow) and the meta is put back once, by :func:`_restore`."""
    if not isinstance(data, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array, torch tensor or MetaTensor, got {type(data).__name__}")
    return convert_to_tensor(data, track_meta=False)


def _restore(out: torch.Tensor, data: Any, rows: torch.Tensor) -> Any:
    """``out`` in the caller's type, as MONAI's mixers return it (``convert_to_dst_type`` to the
    input), a MetaTensor only while ``get_track_meta()``; a batched MetaTensor's per-sample meta
    follows ``rows``."""
    dst = convert_to_tensor(data, track_meta=get_track_meta()) if isinstance(data, MetaTensor) else data
    return like_input_rows(out, dst, rows)


@dataclasses.dataclass
class _Draw:
    """What one :meth:`RandHSMix.randomize` decided for a batch; :meth:`RandHSMix.apply` reuses it."""

    shape: Tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    masks: Optional[HSMixMasks]  # None when the batch is not mixed
    hard: bool
    soft: bool
    source: Any  # weak reference to the batch the masks came from (its checks are not repeated)
    magnitude: float


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

    As MONAI's ``Mixer`` transforms: :meth:`randomize` draws everything for one image batch and
    builds its masks (superpixels and saliency come from that batch), then :meth:`apply` and
    :meth:`apply_on_labels` mix any tensor of the same batch with them, as often as needed
    (:class:`RandHSMixd` mixes every key so).
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
        self.compactness = check_compactness(compactness)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        choices = (
            ("mode", mode, MODES),
            ("hard_region", hard_region, HARD_REGIONS),
            ("soft_ratio", soft_ratio, SOFT_RATIOS),
            ("slic_space", slic_space, SLIC_SPACES),
        )
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.mode, self.hard_region, self.soft_ratio, self.slic_space = mode, hard_region, soft_ratio, slic_space
        self.grid_size = check_grid_size(grid_size)
        self.include_original = bool(include_original)
        if not float(beta_alpha) > 0:
            raise ValueError(f"beta_alpha must be positive, got {beta_alpha}")
        self.beta_alpha = float(beta_alpha)
        self.spacing = check_spacing(spacing)
        if int(max_num_iter) < 1:
            raise ValueError(f"max_num_iter must be at least 1, got {max_num_iter}")
        self.max_num_iter = int(max_num_iter)
        self.compute_backend = backend
        self._superpixel_fn, self._saliency_fn = resolve_backend(backend, engine=engine)
        self.engine = engine
        self._warned_single = False
        self._draw: Optional[_Draw] = None

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "RandHSMix":
        """Build with a dataset preset of the paper's Table 9 (``glas``, ``monuseg``, ``isic2017``,
        ``brats2018``, ``synapse``), feature space included; keyword arguments override or
        complete it."""
        return cls(**{**get_preset(name).as_kwargs(), **overrides})

    # -- public: draw once, apply per tensor ---------------------------------------------------
    def randomize(self, data: Any = None, keep_maps: bool = False, name: str = "img") -> None:
        """Draw everything for the image batch ``data`` and build its masks.

        Parameters
        ----------
        data : numpy.ndarray, torch.Tensor or MetaTensor
            The ``(B, C, H, W[, D])`` images whose superpixels and saliency define the masks;
            checked here (an error says what is wrong).
        keep_maps : bool
            Keep the superpixel maps in :attr:`masks` (otherwise they are freed once the masks
            exist: they are as large as the masks).
        name : str
            How error messages call ``data``.
        """
        if data is None:
            raise ValueError(
                "RandHSMix.randomize needs the image batch: the masks come from its superpixels and saliency"
            )
        images = _as_tensor(data, name)
        magnitude = self._check_images(images, name)
        super().randomize(None)
        bsz = images.shape[0]
        mixed = self._mixes(bsz)
        hard, soft = True, True
        if mixed:
            partner = random_derangement(bsz, self.R)
            counts = self.R.randint(self.n_segments[0], self.n_segments[1] + 1, size=bsz)
            ratios = self.R.beta(self.beta_alpha, self.beta_alpha, size=bsz)
            use_hard = bool(self.R.rand() < 0.5)
            # Bernoulli draws need the superpixel count, known only after SLIC: seed a torch generator now
            seed = int(self.R.randint(0, 2**31 - 1))
            hard, soft = (
                (use_hard, not use_hard)
                if self.mode == "random"
                else (self.mode in ("both", "hard"), self.mode in ("both", "soft"))
            )
            masks: Optional[HSMixMasks] = self._masks(
                _as_floating(images), partner, counts, ratios, seed, soft, keep_maps
            )
        else:
            masks = None
        try:
            source = weakref.ref(data)
        except TypeError:
            source = None
        dtype = images.dtype if images.is_floating_point() else torch.float32
        self._draw = _Draw(tuple(images.shape), dtype, images.device, masks, hard, soft, source, magnitude)

    @property
    def masks(self) -> HSMixMasks:
        """The :class:`~monai_hsmix.core.HSMixMasks` of the last :meth:`randomize`: ``Mh``, ``Ms``,
        the pairing and (with ``keep_maps``) the superpixel maps. A batch that was not mixed
        reports :func:`~monai_hsmix.core.identity_masks` (each image its own partner, zero
        masks), and a mask the draw did not produce (the other part under ``mode="random"``)
        is zero."""
        draw = self._current_draw()
        masks = draw.masks
        if masks is None:
            return identity_masks(draw.shape[0], draw.shape[2:], draw.device, draw.dtype)
        if masks.soft_mask is None:
            masks = dataclasses.replace(masks, soft_mask=torch.zeros_like(masks.hard_mask, dtype=draw.dtype))
        return masks

    @full_precision
    def apply(self, data: Any, name: str = "img") -> Any:
        """Mix images of the batch given to :meth:`randomize` (the same batch, or another tensor of
        the same batch and spatial size, e.g. a second modality) with its masks.

        Parameters
        ----------
        data : numpy.ndarray, torch.Tensor or MetaTensor
            ``(B, C, *spatial)`` images.
        name : str
            How error messages call ``data``.

        Returns
        -------
        The mixed batch (``B`` samples, floating, when the batch is not mixed) in the input's type;
        a batched MetaTensor's per-sample meta follows each sample's ``X1``.
        """
        draw = self._current_draw()
        images = _as_tensor(data, name)
        if draw.source is not None and draw.source() is data:
            magnitude = draw.magnitude  # checked by randomize
        else:
            magnitude = self._check_images(images, name)
        self._check_matching(images, draw, name)
        images = _as_floating(images)
        if draw.masks is None:
            return _restore(images, data, torch.arange(images.shape[0]))
        parts = draw.masks.parts(draw.hard, draw.soft)
        if magnitude > torch.finfo(images.dtype).max / 2:
            # beyond half the dtype's largest value the difference of two images can overflow:
            # halving and doubling are exact, and the blend lies between its two inputs up to rounding
            top = torch.finfo(images.dtype).max
            mixed, rows = mix_with_masks(
                images * 0.5, draw.masks.partner, parts, self.include_original, engine=self.engine
            )
            mixed = mixed.mul_(2).clamp_(-top, top)
        else:
            mixed, rows = mix_with_masks(images, draw.masks.partner, parts, self.include_original, engine=self.engine)
        return _restore(mixed, data, rows)

    @full_precision
    def apply_on_labels(self, data: Any, name: str = "label") -> Any:
        """Mix labels of the batch given to :meth:`randomize` as one-hot (or multi-label) channels.

        Parameters
        ----------
        data : numpy.ndarray, torch.Tensor or MetaTensor
            ``(B, 1, *spatial)`` class indices or ``(B, K, *spatial)`` one-hot / multi-label channels.
        name : str
            How error messages call ``data``.

        Returns
        -------
        Float label channels (as many samples as :meth:`apply` returns) in the input's type.
        """
        draw = self._current_draw()
        labels = _as_tensor(data, name)
        self._check_matching(labels, draw, name)
        classes = None
        if is_index_labels(labels, self.multilabel):
            labels, classes = class_indices(labels, self.num_classes), self.num_classes
        else:
            labels = labels_to_channels(labels, self.num_classes, self.multilabel)
        if draw.masks is None:
            out = one_hot(labels, classes, dim=1) if classes is not None else labels
            return _restore(out, data, torch.arange(labels.shape[0]))
        mixed, rows = mix_with_masks(
            labels,
            draw.masks.partner,
            draw.masks.parts(draw.hard, draw.soft),
            self.include_original,
            classes,
            engine=self.engine,
        )
        return _restore(mixed, data, rows)

    def __call__(self, img: Any, label: Any = None, randomize: bool = True, return_masks: bool = False):  # type: ignore[override]
        """Mix a batch.

        Parameters
        ----------
        img : numpy.ndarray, torch.Tensor or MetaTensor
            ``(B, C, H, W)`` or ``(B, C, H, W, D)`` images.
        label : same types, optional
            ``(B, 1, ...)`` class indices or ``(B, K, ...)`` one-hot / multi-label channels.
        randomize : bool
            Draw anew for ``img`` (``False`` mixes with the masks of the last :meth:`randomize`,
            which must have been for a batch of this size).
        return_masks : bool
            Also return :attr:`masks`.

        Returns
        -------
        images, or (images, labels), with the masks appended when ``return_masks``.
        """
        if randomize:
            self.randomize(img, keep_maps=return_masks)
        outputs: Tuple[Any, ...] = (self.apply(img),)
        if label is not None:
            outputs += (self.apply_on_labels(label),)
        if return_masks:
            outputs += (self.masks,)
        return outputs[0] if len(outputs) == 1 else outputs

    # -- private --------------------------------------------------------------------------------
    def _current_draw(self) -> _Draw:
        if self._draw is None:
            raise RuntimeError("call randomize(images) before apply(): the masks come from the image batch")
        return self._draw

    def _mixes(self, batch_size: int) -> bool:
        """Whether the current draw mixes a batch of ``batch_size`` (a batch of one is returned
        unmixed, with a warning the first time)."""
        if not self._do_transform:
            return False
        if batch_size < 2:
            if not self._warned_single:
                logger.warning(
                    "HSMix needs at least 2 samples in a batch to form pairs; a batch of 1 is returned unmixed"
                )
                self._warned_single = True
            return False
        return True

    def _check_images(self, images: torch.Tensor, name: str) -> float:
        """Raise a ``ValueError`` saying what is wrong unless ``images`` is a batch HSMix can mix;
        return its largest absolute value (0 for integers)."""
        magnitude = check_image_batch(images, name)
        if self.spacing is not None:
            check_spacing(self.spacing, images.ndim - 2)
        if self.hard_region == "superpixel":
            try:
                check_slic_space(self.slic_space, images.shape[1])
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return magnitude

    @staticmethod
    def _check_matching(tensor: torch.Tensor, draw: _Draw, name: str) -> None:
        shape = draw.shape
        if tensor.ndim != len(shape) or tensor.shape[0] != shape[0] or tuple(tensor.shape[2:]) != shape[2:]:
            raise ValueError(
                f"{name} shape {tuple(tensor.shape)} does not match the image batch {shape}: "
                "batch size and spatial size must be equal"
            )

    @full_precision
    def _masks(
        self,
        images: torch.Tensor,
        partner: np.ndarray,
        counts: np.ndarray,
        ratios: np.ndarray,
        seed: int,
        want_soft: bool,
        keep_maps: bool,
    ) -> HSMixMasks:
        """Eq. 1 and 3-6 for a checked floating batch with ``B >= 2`` (the backends do not check it again)."""
        bsz, spatial, device = images.shape[0], tuple(images.shape[2:]), images.device
        images = images.detach()  # the masks are not differentiated; the blends of apply() are
        partner_t = torch.as_tensor(partner, device=device)
        if self.hard_region == "grid":
            segments = grid_cells(bsz, spatial, self.grid_size, device=device)
        else:
            segments = self._superpixel_fn(
                images,
                torch.as_tensor(counts, device=device),
                self.compactness,
                spacing=self.spacing,
                max_num_iter=self.max_num_iter,
                slic_space=self.slic_space,
                max_segments=self.n_segments[1],
                validate=False,
            )
        num = int(segments.max().item()) + 1
        uniforms = torch.rand((bsz, num), generator=torch.Generator().manual_seed(seed), dtype=torch.float32).to(device)
        soft_mask = saliency = None
        if want_soft:
            if self.soft_ratio == "beta":
                values = torch.as_tensor(ratios, dtype=images.dtype, device=device)
                soft_mask = values.reshape((bsz,) + (1,) * len(spatial)).expand((bsz,) + spatial)
            else:
                saliency = self._saliency_fn(images, validate=False).to(images.dtype)
                if self.soft_ratio == "pixel":
                    soft_mask = relative_saliency(saliency, saliency[partner_t])
                    saliency = None
        return hsmix_masks(
            partner_t,
            segments,
            uniforms,
            self.p,
            soft_mask=soft_mask,
            saliency=saliency,
            keep_maps=keep_maps,
            engine=self.engine,
        )


class RandHSMixd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandHSMix` for a collated batch dictionary.

    The masks are drawn once, from the ``image_key`` batch (:meth:`RandHSMix.randomize`), and
    every key is mixed with them (:meth:`RandHSMix.apply` for images,
    :meth:`RandHSMix.apply_on_labels` for labels), as MONAI's ``CutMixd`` does.

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
    num_classes, multilabel, n_segments, compactness, p, slic_space, mode, include_original
        As in :class:`RandHSMix`.
    prob, backend, hard_region, grid_size, soft_ratio, beta_alpha, spacing, max_num_iter, engine
        As in :class:`RandHSMix`.
    return_masks : bool
        Add ``{mask_key_prefix}hard_mask``, ``soft_mask``, ``segments``, ``partner_segments``,
        ``mixed_segments`` (each ``(B, 1, ...)``) and ``partner`` (``(B,)``) to the output, in
        every call: a batch that was not mixed reports zero masks, one segment and each sample
        its own partner; a mask the draw did not produce is zero.
    mask_key_prefix : str
        Prefix of the keys added by ``return_masks``.
    allow_missing_keys : bool
        Skip keys that are absent instead of raising; with none of ``keys`` present the data
        is returned as it is (as MONAI's ``CutMixd`` does).

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
        return_masks: bool = False,
        mask_key_prefix: str = "hsmix_",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mixer = RandHSMix(
            num_classes=num_classes,
            multilabel=multilabel,
            n_segments=n_segments,
            compactness=compactness,
            p=p,
            slic_space=slic_space,
            mode=mode,
            include_original=include_original,
            prob=prob,
            backend=backend,
            hard_region=hard_region,
            grid_size=grid_size,
            soft_ratio=soft_ratio,
            beta_alpha=beta_alpha,
            spacing=spacing,
            max_num_iter=max_num_iter,
            engine=engine,
        )
        RandomizableTransform.__init__(self, self.mixer.prob)
        labels = ensure_tuple(label_keys)
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
    def from_preset(
        cls, name: str, keys: KeysCollection, label_keys: KeysCollection = (), **overrides: Any
    ) -> "RandHSMixd":
        """Build with a dataset preset of the paper's Table 9; keyword arguments override it."""
        return cls(keys, label_keys, **{**get_preset(name).as_kwargs(), **overrides})

    def set_random_state(
        self, seed: Optional[int] = None, state: Optional[np.random.RandomState] = None
    ) -> "RandHSMixd":
        super().set_random_state(seed, state)
        self.mixer.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> Dict[Hashable, Any]:
        d = dict(data)
        present = list(self.key_iterator(d))
        if not present:
            return d
        image_keys = [k for k in present if k not in self.label_keys]
        if not image_keys:
            raise ValueError(f"RandHSMixd needs at least one image key among {present} (keys not in label_keys)")
        for key in image_keys:
            dtype = getattr(d[key], "dtype", None)
            if dtype is not None and _is_integer(dtype):
                raise ValueError(
                    f"{key!r} holds integers ({dtype}) but is not in label_keys: it would be blended as "
                    f"intensities (fractional class indices). List it in label_keys if it is a label map, "
                    f"or cast it to float first if it is an image (e.g. EnsureTyped or ScaleIntensityd)"
                )
        source_key = self.image_key if self.image_key in image_keys else image_keys[0]
        self.mixer.randomize(d[source_key], keep_maps=self.return_masks, name=str(source_key))
        for key in present:
            if key in self.label_keys:
                d[key] = self.mixer.apply_on_labels(d[key], str(key))
            else:
                d[key] = self.mixer.apply(d[key], str(key))
        if self.return_masks:
            masks = self.mixer.masks
            for field in MASK_FIELDS:
                d[f"{self.mask_key_prefix}{field}"] = getattr(masks, field).unsqueeze(1)
            d[f"{self.mask_key_prefix}partner"] = masks.partner
        return d


def _as_floating(images: torch.Tensor) -> torch.Tensor:
    """Images as a floating tensor: floating input as it is, anything else as float32."""
    return images if images.is_floating_point() else images.float()


def _is_integer(dtype: Any) -> bool:
    if isinstance(dtype, torch.dtype):
        return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    return bool(np.issubdtype(dtype, np.integer))


RandHSMixD = RandHSMixDict = RandHSMixd
