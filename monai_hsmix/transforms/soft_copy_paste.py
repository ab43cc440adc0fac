"""Soft-CP: soft copy-paste of lesions between cases, as MONAI array and dictionary transforms.

A lesion instance (a connected component of the configured label values) is cut from a donor with
some surrounding context, passed through an object transform (a MONAI ``Compose`` of random flips,
rotations, zooms and intensity changes: :func:`object_augmentation`), placed where the
anatomical constraints hold (see :mod:`monai_hsmix.core.paste_placement`), and blended::

    image = S * donor + (1 - S) * image,   label = donor label where the lesion's hard mask is 1

with ``S`` the soft mask (``mode="soft"``), a Gaussian-blurred hard mask (``"gaussian"``, TumorCP-style)
or the hard mask (``"hard"``). Works on 2D ``(C, H, W)`` and 3D ``(C, H, W, D)`` images with any number of
channels; labels are ``(*spatial)`` or ``(1, *spatial)``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Dict, Hashable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    MapTransform,
    Randomizable,
    RandomizableTransform,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandRotated,
    RandZoomd,
    Rotate,
    Rotated,
    Zoom,
    Zoomd,
)
from monai.utils import MAX_SEED, convert_to_dst_type, convert_to_tensor

from monai_hsmix.backends.intensity import all_finite
from monai_hsmix.core.lesion_objects import LesionObject, cut_lesion_object, lesion_instances, reframe_lesion_object
from monai_hsmix.core.paste_placement import find_lesion_placement, paste_object, paste_region
from monai_hsmix.core.soft_mask import BLEND_MODES, blend_weights, support_radius

__all__ = [
    "OBJECT_KEYS",
    "object_augmentation",
    "RandSoftCopyPaste",
    "RandSoftCopyPasted",
    "RandSoftCopyPasteD",
    "RandSoftCopyPasteDict",
    "soft_copy_paste",
    "SKIP_NO_DONOR_LESION",
    "SKIP_NO_VALID_PLACE",
    "SKIP_LESION_VANISHED",
]

SKIP_NO_DONOR_LESION = "no_lesion_in_donor"
SKIP_NO_VALID_PLACE = "no_valid_place"
SKIP_LESION_VANISHED = "lesion_vanished_after_transform"

ArrayLike = Union[np.ndarray, torch.Tensor]
ObjectTransform = Callable[[Dict[str, torch.Tensor]], Mapping[str, Any]]

# keys of the dictionary an object transform receives: the image patch, then three masks that
# must move with it (nearest-neighbour interpolation)
OBJECT_KEYS = ("image", "label", "mask", "valid")


def _check_range(name: str, value: Sequence[float], low: float = -math.inf) -> Tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not low < lo <= hi:
        raise ValueError(f"{name} must be (low, high) with {low} < low <= high, got {tuple(value)}")
    return lo, hi


def _check_prob(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def object_augmentation(
    spatial_dims: int,
    flip_prob: float = 0.0,
    rotate_prob: float = 0.0,
    rotate_range: Union[float, Sequence[float]] = math.pi / 12,
    scale_prob: float = 0.0,
    scale_range: Sequence[float] = (0.8, 1.2),
    gamma_prob: float = 0.0,
    gamma_range: Sequence[float] = (0.7, 1.5),
    noise_prob: float = 0.0,
    noise_std: float = 0.05,
    blur_prob: float = 0.0,
    blur_sigma_range: Sequence[float] = (0.5, 1.0),
) -> Compose:
    """The per-object augmentation of Soft-CP, a MONAI ``Compose`` of random dictionary transforms.

    It works on the dictionary :class:`RandSoftCopyPaste` gives its ``object_transform``
    (:data:`OBJECT_KEYS`): intensity changes touch ``"image"`` only; flips, rotations and zooms move
    the image (linear interpolation) and the masks (nearest neighbour) together, growing the patch
    rather than cropping the lesion. Every probability defaults to 0, as the transform's own
    augmentation did before it took an ``object_transform``: raise the ones wanted.

    Parameters
    ----------
    spatial_dims : int
        2 or 3, the dimensionality of the images the objects come from.
    flip_prob : float
        Per spatial axis, probability of flipping the object (``RandFlipd``, one per axis).
    rotate_prob : float
        Probability of rotating the object (``RandRotated``).
    rotate_range : float or sequence of float
        Largest rotation angle in radians: one value, or (3D) one per rotation axis.
    scale_prob : float
        Probability of scaling the object isotropically (``RandZoomd``).
    scale_range : (float, float)
        Range of the scale factor, both positive.
    gamma_prob : float
        Probability of a gamma change of the intensities with their mean and std retained
        (``RandAdjustContrastd``).
    gamma_range : (float, float)
        Range of the gamma, both positive.
    noise_prob : float
        Probability of adding Gaussian noise (``RandGaussianNoised``).
    noise_std : float
        Standard deviation of that noise.
    blur_prob : float
        Probability of a Gaussian blur of the intensities (``RandGaussianSmoothd``).
    blur_sigma_range : (float, float)
        Range of the blur's sigma (drawn per axis), both positive.

    Returns
    -------
    monai.transforms.Compose
        Seed it with ``set_random_state``; :class:`RandSoftCopyPaste` seeds its ``object_transform``
        from its own ``set_random_state``.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    probs = {
        name: _check_prob(name, value)
        for name, value in (
            ("flip_prob", flip_prob),
            ("rotate_prob", rotate_prob),
            ("scale_prob", scale_prob),
            ("gamma_prob", gamma_prob),
            ("noise_prob", noise_prob),
            ("blur_prob", blur_prob),
        )
    }
    n_axes = 1 if spatial_dims == 2 else 3
    if np.asarray(rotate_range).size not in (1, n_axes):
        raise ValueError(f"rotate_range must be one angle, or (3D) three, one per rotation axis; got {rotate_range}")
    angles = np.broadcast_to(np.asarray(rotate_range, dtype=float).ravel(), (n_axes,)).tolist() + [0.0, 0.0]
    zoom = _check_range("scale_range", scale_range, low=0.0)
    gamma = _check_range("gamma_range", gamma_range, low=0.0)
    blur = _check_range("blur_sigma_range", blur_sigma_range, low=0.0)
    if not float(noise_std) >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    image, keys = OBJECT_KEYS[0], OBJECT_KEYS
    modes = ("bilinear",) + ("nearest",) * (len(keys) - 1)
    return Compose(
        [
            # intensities first, on the object as it was cut
            RandAdjustContrastd(image, prob=probs["gamma_prob"], gamma=gamma, retain_stats=True),
            RandGaussianNoised(image, prob=probs["noise_prob"], mean=0.0, std=float(noise_std), sample_std=False),
            RandGaussianSmoothd(image, sigma_x=blur, sigma_y=blur, sigma_z=blur, prob=probs["blur_prob"]),
            *(RandFlipd(keys, prob=probs["flip_prob"], spatial_axis=axis) for axis in range(spatial_dims)),
            # keep_size=False: the canvas grows, so a rotated or enlarged lesion is never cropped
            RandRotated(
                keys,
                range_x=angles[0],
                range_y=angles[1],
                range_z=angles[2],
                prob=probs["rotate_prob"],
                keep_size=False,
                mode=modes,
                padding_mode="zeros",
                align_corners=False,
            ),
            RandZoomd(
                keys,
                prob=probs["scale_prob"],
                min_zoom=zoom[0],
                max_zoom=zoom[1],
                mode=modes,
                keep_size=False,
                align_corners=(False,) + (None,) * (len(keys) - 1),
            ),
        ]
    )


def _context_growth(transform: Any, spatial_dims: int) -> float:
    """How much wider the context cut around a lesion must be for ``transform`` to leave the blending
    weight's support covered: rotations need the diagonal, shrinking needs more before it."""
    if transform is None:
        return 1.0
    parts = getattr(transform, "transforms", None)
    if parts is not None:  # a Compose: the product over its parts
        return math.prod(_context_growth(t, spatial_dims) for t in parts)
    if getattr(transform, "prob", 1.0) == 0:
        return 1.0
    if isinstance(transform, (RandRotated, Rotated, Rotate)):
        return math.sqrt(spatial_dims)
    if isinstance(transform, (RandZoomd, Zoomd, Zoom)):
        zoom = getattr(transform, "rand_zoom", transform)
        low = getattr(zoom, "min_zoom", getattr(zoom, "zoom", 1.0))
        return 1.0 / min(float(np.min(low)), 1.0)
    if isinstance(transform, (MapTransform, RandomizableTransform)):
        return 1.0  # other MONAI transforms (flips, intensities) keep the object's size
    return math.sqrt(spatial_dims)  # unknown callables: as much as a rotation


class RandSoftCopyPaste(RandomizableTransform):
    """Paste lesion instances from a donor image into a main image through a soft mask.

    Parameters
    ----------
    label_values : sequence of numbers
        Label values that form a lesion (touching voxels of these values form one instance), e.g.
        ``(2,)`` for KiTS tumour or ``(1, 2, 3, 4)`` for a whole BraTS 2015 tumour.
    prob : float
        Probability of attempting a paste at all.
    mode : {"soft", "gaussian", "hard"}
        Blending weight: Soft-CP soft mask, Gaussian-blurred hard mask (TumorCP) or hard mask.
    alpha, num_rings, ring_width, connectivity
        Soft mask: weight ``alpha ** k`` on the k-th ring of ``ring_width`` dilations outside the lesion.
    sigma : float
        Gaussian mode: std of the blur in voxels.
    s1, s2 : float
        The pasted lesion must overlap the reference by more than ``s1`` and existing lesions by less
        than ``s2`` (fractions of its volume). ``s1`` applies only when a reference is given.
    max_tries : int
        Positions drawn per lesion before the paste is skipped (and counted).
    confine_context : bool
        With a reference, keep the donor's surrounding context (the soft or blurred rim outside the
        lesion) inside the reference region, so that e.g. donor brain tissue is never blended onto the
        background beyond the main brain. The lesion itself is pasted whole either way.
    num_lesions : int
        Lesion instances pasted per call (each drawn independently from the donor's instances).
    min_lesion_voxels : int
        Donor components smaller than this are not used.
    max_shift : int or sequence of int, optional
        If given, translate the lesion by at most this many voxels per axis from its donor position
        (sensible when main and donor share a coordinate frame); otherwise place it anywhere allowed.
    object_transform : callable, "default" or None
        Augmentation of every lesion object between its cut and its placement: called on a
        dictionary with the keys :data:`OBJECT_KEYS`, ``"image"`` the ``(C, *patch)`` float32
        donor patch, ``"label"`` the ``(1, *patch)`` donor label values on the lesion (0 elsewhere),
        ``"mask"`` the ``(1, *patch)`` lesion and ``"valid"`` the ``(1, *patch)`` voxels that hold
        donor data, the three masks as float 0/1; it returns the same keys, all of one (possibly
        new) patch size. A MONAI ``Compose`` of dictionary transforms fits; the masks need
        nearest-neighbour interpolation. ``"default"``: :func:`object_augmentation` for the images'
        dimensionality with its default probabilities (all 0: the objects are pasted as they were
        cut); pass e.g. ``object_augmentation(3, flip_prob=0.5, rotate_prob=0.5, scale_prob=0.5)``
        to augment them. ``None``: no object transform at all. The context cut around a lesion
        grows with the rotations and down-scaling a ``Compose`` holds, so its soft rim survives them.

    Notes
    -----
    Beyond ``prob``, draws depend on the data (how many instances, which positions are accepted), so
    they happen inside ``__call__`` from ``self.R``; seeding with ``set_random_state`` makes the whole
    call reproducible, since it seeds the ``object_transform`` too (when that is randomizable, as a
    MONAI ``Compose`` is). Skipped pastes are counted in ``num_skipped`` and ``skip_reasons``; the outcome
    of the last call is in ``last_info`` (``placements`` and the patch-sized blending ``weights`` of each
    accepted paste, whose first voxel sits at the placement's ``offset`` in the image). Connected
    components are found with SciPy on the CPU; the
    rest runs on the input's device.
    """

    def __init__(
        self,
        label_values: Sequence[float] = (1,),
        prob: float = 1.0,
        mode: str = "soft",
        alpha: float = 0.7,
        num_rings: int = 5,
        ring_width: int = 1,
        connectivity: str = "full",
        sigma: float = 2.0,
        s1: float = 0.8,
        s2: float = 0.1,
        max_tries: int = 50,
        confine_context: bool = True,
        num_lesions: int = 1,
        min_lesion_voxels: int = 1,
        max_shift: Optional[Union[int, Sequence[int]]] = None,
        object_transform: Union[ObjectTransform, str, None] = "default",
    ) -> None:
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.confine_context = bool(confine_context)
        self.label_values = tuple(label_values) if not isinstance(label_values, (int, float)) else (label_values,)
        if len(self.label_values) == 0:
            raise ValueError("label_values must name at least one lesion label value")
        if mode not in BLEND_MODES:
            raise ValueError(f"mode must be one of {BLEND_MODES}, got {mode!r}")
        # validates alpha, num_rings, ring_width, connectivity and sigma once, here
        blend_weights(np.zeros((1, 1)), mode, alpha, num_rings, ring_width, sigma, connectivity)
        for name, value in (("s1", s1), ("s2", s2)):
            _check_prob(name, value)
        if int(max_tries) < 1 or int(num_lesions) < 1 or int(min_lesion_voxels) < 1:
            raise ValueError("max_tries, num_lesions and min_lesion_voxels must be positive integers")
        self.mode, self.alpha, self.num_rings, self.ring_width = mode, alpha, num_rings, ring_width
        self.connectivity, self.sigma = connectivity, sigma
        self.s1, self.s2, self.max_tries = float(s1), float(s2), int(max_tries)
        self.num_lesions, self.min_lesion_voxels = int(num_lesions), int(min_lesion_voxels)
        if max_shift is not None and np.any(np.asarray(max_shift) < 0):
            raise ValueError(f"max_shift must be non-negative, got {max_shift}")
        self.max_shift = max_shift
        if not (object_transform is None or object_transform == "default" or callable(object_transform)):
            raise TypeError(f"object_transform must be a callable, 'default' or None, got {object_transform!r}")
        self.object_transform = object_transform
        self._default_object_transforms: Dict[int, Compose] = {}  # "default", built per dimensionality
        self.num_pasted = 0
        self.num_skipped = 0
        self.skip_reasons: Counter = Counter()
        self.last_info: Dict[str, Any] = {}

    # ---- checks -------------------------------------------------------------------------------
    @staticmethod
    def _spatial_label(label: torch.Tensor, spatial: Sequence[int], name: str) -> torch.Tensor:
        if tuple(label.shape) == tuple(spatial):
            return label
        if tuple(label.shape) == (1, *spatial):
            return label[0]
        raise ValueError(f"{name} has shape {tuple(label.shape)}; expected {tuple(spatial)} or (1, *{tuple(spatial)})")

    # ---- object transform ---------------------------------------------------------------------
    def set_random_state(self, seed: Optional[int] = None, state: Optional[np.random.RandomState] = None):
        super().set_random_state(seed, state)
        self._default_object_transforms.clear()  # rebuilt, and seeded from self.R, when next needed
        if isinstance(self.object_transform, Randomizable):
            self.object_transform.set_random_state(seed=int(self.R.randint(MAX_SEED, dtype="uint32")))
        return self

    def _object_transform_for(self, spatial_dims: int) -> Optional[ObjectTransform]:
        if not isinstance(self.object_transform, str):
            return self.object_transform
        if spatial_dims not in self._default_object_transforms:
            built = object_augmentation(spatial_dims)
            built.set_random_state(seed=int(self.R.randint(MAX_SEED, dtype="uint32")))
            self._default_object_transforms[spatial_dims] = built
        return self._default_object_transforms[spatial_dims]

    def _transform_object(self, obj: LesionObject, spatial_dims: int) -> None:
        transform = self._object_transform_for(spatial_dims)
        if transform is None:
            return
        data = {
            "image": obj.image,
            "label": obj.label[None].float(),
            "mask": obj.hard[None].float(),
            "valid": obj.valid[None].float(),
        }
        out = transform(data)
        missing = [k for k in OBJECT_KEYS if not isinstance(out, Mapping) or k not in out]
        if missing:
            raise KeyError(f"object_transform must return a dictionary with the keys {OBJECT_KEYS}; missing {missing}")
        image = convert_to_tensor(out["image"], track_meta=False).to(torch.float32)
        label, mask, valid = (convert_to_tensor(out[k], track_meta=False) for k in OBJECT_KEYS[1:])
        sizes = {tuple(t.shape[1:]) for t in (image, label, mask, valid)}
        if len(sizes) != 1 or image.ndim != spatial_dims + 1:
            raise ValueError(
                "object_transform returned "
                + ", ".join(f"{k} {tuple(t.shape)}" for k, t in zip(OBJECT_KEYS, (image, label, mask, valid)))
                + f": all must be (channels, *patch) with one {spatial_dims}D patch size"
            )
        obj.hard = mask[0] > 0.5
        obj.valid = valid[0] > 0.5
        obj.label = label[0].round().to(obj.label.dtype) * obj.hard
        # invalid (padded) voxels never reach the output, but keep them at 0 for a clean patch
        obj.image = torch.where(obj.valid[None], image, torch.zeros_like(image))

    def _context_margin(self, spatial_dims: int) -> int:
        radius = support_radius(self.mode, self.num_rings, self.ring_width, self.sigma)
        # a rotated box needs diagonal context to cover the same ring width along the axes, a
        # shrunk one proportionally more
        radius = radius * _context_growth(self._object_transform_for(spatial_dims), spatial_dims)
        return int(math.ceil(radius)) + 1

    # ---- call ---------------------------------------------------------------------------------
    def _skip(self, reason: str, info: Dict[str, Any]) -> None:
        self.num_skipped += 1
        self.skip_reasons[reason] += 1
        info["skipped"] += 1
        info["skip_reasons"].append(reason)

    @staticmethod
    def _confine_to_reference(weight, hard, ref, offset, spatial) -> torch.Tensor:
        """Zero the context weight where the paste position falls outside the reference."""
        inside = torch.zeros(weight.shape, dtype=torch.bool, device=weight.device)
        region = paste_region(offset, weight.shape, spatial)
        if region is not None:
            image_sl, patch_sl = region
            inside[patch_sl] = ref[image_sl].to(weight.device)
        return torch.where((hard > 0).to(weight.device) | inside, weight, torch.zeros_like(weight))

    def __call__(
        self,
        img: ArrayLike,
        label: ArrayLike,
        donor_img: ArrayLike,
        donor_label: ArrayLike,
        reference: Optional[ArrayLike] = None,
        randomize: bool = True,
    ) -> Tuple[ArrayLike, ArrayLike]:
        """Return ``(image, label)`` with donor lesions pasted; inputs are not modified.

        Parameters
        ----------
        img, donor_img : ndarray or Tensor
            ``(C, *spatial)`` images with the same number of channels (spatial sizes may differ).
        label, donor_label : ndarray or Tensor
            Label maps ``(*spatial)`` or ``(1, *spatial)`` matching their image.
        reference : ndarray or Tensor, optional
            Region of ``img`` the lesion must lie in (non-zero = inside), ``(*spatial)`` or
            ``(1, *spatial)``.
        randomize : bool
            Draw whether to apply (``prob``); False reuses the previous decision.
        """
        if randomize:
            self.randomize(None)
        info: Dict[str, Any] = {
            "applied": False,
            "pasted": 0,
            "skipped": 0,
            "skip_reasons": [],
            "placements": [],
            "weights": [],
        }
        self.last_info = info
        main = convert_to_tensor(img, track_meta=False)
        donor = convert_to_tensor(donor_img, track_meta=False)
        if main.ndim not in (3, 4) or donor.ndim != main.ndim:
            raise ValueError(
                "img and donor_img must both be (C, H, W) or (C, H, W, D); "
                f"got {tuple(main.shape)} and {tuple(donor.shape)}"
            )
        if main.shape[0] != donor.shape[0]:
            raise ValueError(f"img has {main.shape[0]} channels but donor_img has {donor.shape[0]}")
        spatial, spatial_dims = tuple(main.shape[1:]), main.ndim - 1
        label_t = convert_to_tensor(label, track_meta=False)
        main_lbl = self._spatial_label(label_t, spatial, "label")
        donor_t = convert_to_tensor(donor_label, track_meta=False)
        donor_lbl = self._spatial_label(donor_t, donor.shape[1:], "donor_label")
        ref = None
        if reference is not None:
            ref = self._spatial_label(convert_to_tensor(reference, track_meta=False), spatial, "reference") != 0
        # a NaN in a donor would be pasted (and a NaN label matches no lesion value): refuse, as HSMix does
        for name, values in (("img", main), ("donor_img", donor), ("label", main_lbl), ("donor_label", donor_lbl)):
            if not all_finite(values):
                raise ValueError(f"{name} contains NaN or infinite values")
        if not self._do_transform:
            return img, label

        info["applied"] = True
        out_img = main.clone() if main.is_floating_point() else main.to(torch.float32)
        out_lbl = main_lbl.clone()
        if out_lbl.is_floating_point():
            values = torch.as_tensor(self.label_values, dtype=out_lbl.dtype, device=out_lbl.device)
        else:  # a non-integer value can never match an integer label: drop it rather than truncate it
            whole = [int(v) for v in self.label_values if float(v).is_integer()]
            values = torch.as_tensor(whole, dtype=out_lbl.dtype, device=out_lbl.device)
        existing = torch.isin(out_lbl, values)
        components, ids = lesion_instances(donor_lbl, self.label_values, self.min_lesion_voxels)
        margin = self._context_margin(spatial_dims)
        radius = support_radius(self.mode, self.num_rings, self.ring_width, self.sigma)
        for _ in range(self.num_lesions):
            if not ids:
                self._skip(SKIP_NO_DONOR_LESION, info)
                continue
            instance = ids[self.R.randint(len(ids))]
            obj = cut_lesion_object(donor, donor_lbl, components, instance, margin)
            self._transform_object(obj, spatial_dims)
            if not bool(obj.hard.any()):
                self._skip(SKIP_LESION_VANISHED, info)
                continue
            # exactly the weight's support around the (possibly rotated or grown) lesion
            obj = reframe_lesion_object(obj, radius)
            hard, valid, obj_img, obj_lbl = obj.hard, obj.valid, obj.image, obj.label
            weight = (
                blend_weights(
                    hard,
                    self.mode,
                    self.alpha,
                    self.num_rings,
                    self.ring_width,
                    self.sigma,
                    self.connectivity,
                    spatial_dims,
                )
                * valid
            )
            around, shift = None, None
            if self.max_shift is not None:
                # the lesion's centroid lands within max_shift of where it was in the donor
                around = np.floor(np.argwhere(components == instance).mean(0) + 0.5).astype(int)
                shift = np.broadcast_to(np.asarray(self.max_shift, dtype=int), (spatial_dims,))
            placement = find_lesion_placement(
                hard, spatial, self.R, ref, existing, self.s1, self.s2, self.max_tries, around=around, max_shift=shift
            )
            if placement is None:
                self._skip(SKIP_NO_VALID_PLACE, info)
                continue
            if ref is not None and self.confine_context:
                weight = self._confine_to_reference(weight, hard, ref, placement.offset, spatial)
            paste_object(
                out_img,
                out_lbl,
                obj_img.to(out_img.device),
                obj_lbl.to(out_lbl.device),
                hard.to(out_img.device),
                weight.to(out_img.device),
                placement.offset,
            )
            image_sl, patch_sl = paste_region(placement.offset, hard.shape, spatial)
            existing[image_sl] |= hard[patch_sl].to(existing.device)
            self.num_pasted += 1
            info["pasted"] += 1
            info["placements"].append(placement)
            info["weights"].append(weight)
        out_lbl = out_lbl.reshape(label_t.shape)
        return convert_to_dst_type(out_img, img)[0], convert_to_dst_type(out_lbl, label)[0]


def soft_copy_paste(
    img: ArrayLike,
    label: ArrayLike,
    donor_img: ArrayLike,
    donor_label: ArrayLike,
    reference: Optional[ArrayLike] = None,
    seed: Optional[int] = None,
    **kwargs: Any,
) -> Tuple[ArrayLike, ArrayLike, Dict[str, Any]]:
    """Functional form: always attempt the paste; returns ``(image, label, info)``.

    ``kwargs`` are the parameters of :class:`RandSoftCopyPaste` other than ``prob``; ``info`` says how
    many lesions were pasted and why any were skipped.
    """
    paster = RandSoftCopyPaste(prob=1.0, **kwargs)
    paster.set_random_state(seed=seed)
    out_img, out_lbl = paster(img, label, donor_img, donor_label, reference)
    return out_img, out_lbl, paster.last_info


class RandSoftCopyPasted(RandomizableTransform, MapTransform):
    """Dictionary form of :class:`RandSoftCopyPaste`.

    The donor comes, in this order of preference, from: the other samples when the input is a list of
    dictionaries (an uncollated batch; each sample gets a random other sample as donor), ``data[donor_key]``
    (a dictionary with the same keys), or ``donor_bank`` (any indexable of such dictionaries, e.g. a MONAI
    ``Dataset``; one is drawn at random per call).

    Parameters
    ----------
    keys : str or sequence of str
        Image keys; their channels are pasted together with one shared weight (e.g. ``["flair", "t1c"]``
        or one multi-channel ``"image"``).
    label_key : str
        Label key, ``(1, *spatial)`` or ``(*spatial)``.
    reference_key : str, optional
        Key of the main sample's reference region (e.g. a brain mask); missing means no ``s1`` check.
    donor_key : str, optional
        Key holding a donor dictionary inside each sample.
    donor_bank : indexable of dict, optional
        Donor samples to draw from.
    info_key : str
        Output key receiving ``{"applied", "pasted", "skipped", "skip_reason"}`` (the reason of the
        first skip, "" if none).
    prob : float
        Probability of attempting a paste.
    label_values, mode, alpha, num_rings, ring_width, connectivity, sigma, s1, s2
        As in :class:`RandSoftCopyPaste`.
    max_tries, confine_context, num_lesions, min_lesion_voxels, max_shift, object_transform
        As in :class:`RandSoftCopyPaste`.
    allow_missing_keys : bool
        Image keys missing from both main and donor are ignored instead of raising.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str,
        reference_key: Optional[str] = None,
        donor_key: Optional[str] = None,
        donor_bank: Optional[Sequence[Mapping[Hashable, Any]]] = None,
        info_key: str = "softcp",
        prob: float = 1.0,
        label_values: Sequence[float] = (1,),
        mode: str = "soft",
        alpha: float = 0.7,
        num_rings: int = 5,
        ring_width: int = 1,
        connectivity: str = "full",
        sigma: float = 2.0,
        s1: float = 0.8,
        s2: float = 0.1,
        max_tries: int = 50,
        confine_context: bool = True,
        num_lesions: int = 1,
        min_lesion_voxels: int = 1,
        max_shift: Optional[Union[int, Sequence[int]]] = None,
        object_transform: Union[ObjectTransform, str, None] = "default",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.label_key, self.reference_key, self.donor_key = label_key, reference_key, donor_key
        if donor_bank is not None and len(donor_bank) == 0:
            raise ValueError("donor_bank is empty")
        self.donor_bank, self.info_key = donor_bank, info_key
        # the dictionary draws prob (a sample without a paste gets its info entry); the array
        # transform always attempts the paste it is asked for
        self.paster = RandSoftCopyPaste(
            label_values=label_values,
            prob=1.0,
            mode=mode,
            alpha=alpha,
            num_rings=num_rings,
            ring_width=ring_width,
            connectivity=connectivity,
            sigma=sigma,
            s1=s1,
            s2=s2,
            max_tries=max_tries,
            confine_context=confine_context,
            num_lesions=num_lesions,
            min_lesion_voxels=min_lesion_voxels,
            max_shift=max_shift,
            object_transform=object_transform,
        )
        self.paster.set_random_state(state=self.R)

    def set_random_state(self, seed: Optional[int] = None, state: Optional[np.random.RandomState] = None):
        super().set_random_state(seed, state)
        self.paster.set_random_state(state=self.R)
        return self

    @property
    def num_pasted(self) -> int:
        return self.paster.num_pasted

    @property
    def num_skipped(self) -> int:
        return self.paster.num_skipped

    @property
    def skip_reasons(self) -> Counter:
        return self.paster.skip_reasons

    def _pick_donor(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        if self.donor_key is not None and self.donor_key in data:
            return data[self.donor_key]
        if self.donor_bank is not None:
            return self.donor_bank[int(self.R.randint(len(self.donor_bank)))]
        raise ValueError(
            "no donor: pass a list of samples (in-batch donors), set donor_key to a key present in the sample, "
            "or give a donor_bank"
        )

    def _paste_one(self, data: Mapping[Hashable, Any], donor: Mapping[Hashable, Any]) -> Dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        info = {"applied": False, "pasted": 0, "skipped": 0, "skip_reason": ""}
        keys = [k for k in self.key_iterator(d) if k in donor or not self.allow_missing_keys]
        if not self._do_transform or not keys:
            d[self.info_key] = info
            return d
        for name, sample in (("sample", d), ("donor", donor)):
            missing = [k for k in [*keys, self.label_key] if k not in sample]
            if missing:
                raise KeyError(f"{name} lacks key(s) {missing}")
        mains = [convert_to_tensor(d[k], track_meta=False) for k in keys]
        donors = [convert_to_tensor(donor[k], track_meta=False) for k in keys]
        for k, m, g in zip(keys, mains, donors):
            if m.shape[0] != g.shape[0]:
                raise ValueError(f"key {k!r}: sample has {m.shape[0]} channels, donor has {g.shape[0]}")
        reference = d.get(self.reference_key) if self.reference_key is not None else None
        if self.reference_key is not None and reference is None:
            raise KeyError(f"reference_key {self.reference_key!r} is missing from the sample")
        img, lbl = self.paster(torch.cat(mains), d[self.label_key], torch.cat(donors), donor[self.label_key], reference)
        for k, part in zip(keys, torch.split(img, [m.shape[0] for m in mains])):
            d[k] = convert_to_dst_type(part, d[k])[0]
        d[self.label_key] = lbl
        last = self.paster.last_info
        info.update(
            applied=True,
            pasted=last["pasted"],
            skipped=last["skipped"],
            skip_reason=last["skip_reasons"][0] if last["skip_reasons"] else "",
        )
        d[self.info_key] = info
        return d

    def __call__(self, data):
        """Paste into one sample (a dict) or into every sample of a list of dicts (in-batch donors)."""
        if isinstance(data, Mapping):
            if self.allow_missing_keys and self.first_key(data) == ():
                return self._paste_one(data, {})  # nothing to paste into, so no donor is needed (as CutMixd)
            return self._paste_one(data, self._pick_donor(data))
        batch = list(data)
        if len(batch) < 2:
            raise ValueError("in-batch donors need at least 2 samples in the list")
        out = []
        for i, sample in enumerate(batch):
            j = int(self.R.randint(len(batch) - 1))
            out.append(self._paste_one(sample, batch[j + (j >= i)]))
        return out


RandSoftCopyPasteD = RandSoftCopyPasteDict = RandSoftCopyPasted
