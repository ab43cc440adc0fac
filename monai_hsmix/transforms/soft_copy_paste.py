"""Soft-CP: soft copy-paste of lesions between cases, as MONAI array and dictionary transforms.

A lesion instance (a connected component of the configured label values) is cut from a donor with
some surrounding context, optionally flipped, rotated, scaled and intensity-augmented, placed where the
anatomical constraints hold (see :mod:`monai_hsmix.core.paste_placement`), and blended::

    image = S * donor + (1 - S) * image,   label = donor label where the lesion's hard mask is 1

with ``S`` the soft mask (``mode="soft"``), a Gaussian-blurred hard mask (``"gaussian"``, TumorCP-style)
or the hard mask (``"hard"``). Works on 2D ``(C, H, W)`` and 3D ``(C, H, W, D)`` images with any number of
channels; labels are ``(*spatial)`` or ``(1, *spatial)``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import AdjustContrast, Flip, GaussianSmooth, MapTransform, RandomizableTransform, Rotate, Zoom
from monai.utils import convert_to_dst_type, convert_to_tensor

from monai_hsmix.backends.intensity import all_finite
from monai_hsmix.core.lesion_objects import LesionObject, cut_lesion_object, lesion_instances, reframe_lesion_object
from monai_hsmix.core.paste_placement import find_lesion_placement, paste_object, paste_region
from monai_hsmix.core.soft_mask import BLEND_MODES, blend_weights, support_radius

__all__ = [
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


def _check_range(name: str, value: Sequence[float], low: float = -math.inf) -> Tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not low < lo <= hi:
        raise ValueError(f"{name} must be (low, high) with {low} < low <= high, got {tuple(value)}")
    return lo, hi


def _check_prob(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


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
    flip_prob : float
        Per spatial axis, probability of flipping the object.
    rotate_prob, rotate_range
        Probability of rotating the object, and the maximal angle (radians) per rotation axis: a float,
        or one value (2D) / three values (3D).
    scale_prob, scale_range
        Probability of isotropically scaling the object by a factor drawn from ``scale_range``.
    max_shift : int or sequence of int, optional
        If given, translate the lesion by at most this many voxels per axis from its donor position
        (sensible when main and donor share a coordinate frame); otherwise place it anywhere allowed.
    gamma_prob, gamma_range
        Probability of a gamma change of the object's intensities (MONAI ``AdjustContrast``, with
        statistics retained), and the gamma range.
    noise_prob, noise_std
        Probability of adding Gaussian noise of this std to the object's intensities.
    blur_prob, blur_sigma_range
        Probability of a Gaussian blur of the object's intensities, and the range of its sigma.

    Notes
    -----
    Beyond ``prob``, draws depend on the data (how many instances, which positions are accepted), so
    they happen inside ``__call__`` from ``self.R``; seeding with ``set_random_state`` makes the whole
    call reproducible. Skipped pastes are counted in ``num_skipped`` and ``skip_reasons``; the outcome
    of the last call is in ``last_info`` (``placements`` and the patch-sized blending ``weights`` of each
    accepted paste, whose first voxel sits at the placement's ``offset`` in the image). Connected components are found with SciPy on the CPU; the
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
        flip_prob: float = 0.0,
        rotate_prob: float = 0.0,
        rotate_range: Union[float, Sequence[float]] = math.pi / 12,
        scale_prob: float = 0.0,
        scale_range: Sequence[float] = (0.8, 1.2),
        max_shift: Optional[Union[int, Sequence[int]]] = None,
        gamma_prob: float = 0.0,
        gamma_range: Sequence[float] = (0.7, 1.5),
        noise_prob: float = 0.0,
        noise_std: float = 0.05,
        blur_prob: float = 0.0,
        blur_sigma_range: Sequence[float] = (0.5, 1.0),
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
        self.flip_prob = _check_prob("flip_prob", flip_prob)
        self.rotate_prob = _check_prob("rotate_prob", rotate_prob)
        if np.asarray(rotate_range).size not in (1, 3):
            raise ValueError(f"rotate_range must be one angle or three (one per 3D axis), got {rotate_range}")
        self.rotate_range = rotate_range
        self.scale_prob = _check_prob("scale_prob", scale_prob)
        self.scale_range = _check_range("scale_range", scale_range, low=0.0)
        if max_shift is not None and np.any(np.asarray(max_shift) < 0):
            raise ValueError(f"max_shift must be non-negative, got {max_shift}")
        self.max_shift = max_shift
        self.gamma_prob = _check_prob("gamma_prob", gamma_prob)
        self.gamma_range = _check_range("gamma_range", gamma_range, low=0.0)
        self.noise_prob = _check_prob("noise_prob", noise_prob)
        if not float(noise_std) >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.noise_std = float(noise_std)
        self.blur_prob = _check_prob("blur_prob", blur_prob)
        self.blur_sigma_range = _check_range("blur_sigma_range", blur_sigma_range, low=0.0)
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

    def _rotation_angles(self, spatial_dims: int) -> List[float]:
        n_axes = 1 if spatial_dims == 2 else 3
        ranges = np.broadcast_to(np.asarray(self.rotate_range, dtype=float).ravel(), (n_axes,))
        if np.asarray(self.rotate_range).size not in (1, n_axes):
            raise ValueError(f"rotate_range needs 1 or {n_axes} values for {spatial_dims}D images")
        return [float(self.R.uniform(-r, r)) for r in ranges]

    # ---- object transforms --------------------------------------------------------------------
    def _augment_intensity(self, obj: LesionObject) -> None:
        img = obj.image
        if self.R.rand() < self.gamma_prob:
            gamma = float(self.R.uniform(*self.gamma_range))
            img = convert_to_tensor(AdjustContrast(gamma, retain_stats=True)(img), track_meta=False)
        if self.R.rand() < self.noise_prob:
            noise = torch.as_tensor(self.R.normal(0.0, self.noise_std, size=tuple(img.shape)), dtype=img.dtype)
            img = img + noise.to(img.device)
        if self.R.rand() < self.blur_prob:
            blur_sigma = float(self.R.uniform(*self.blur_sigma_range))
            img = convert_to_tensor(GaussianSmooth(sigma=blur_sigma)(img), track_meta=False)
        # invalid (padded) voxels never reach the output, but keep them at 0 for a clean patch
        obj.image = torch.where(obj.valid[None], img.to(torch.float32), torch.zeros_like(img, dtype=torch.float32))

    def _augment_geometry(self, obj: LesionObject, spatial_dims: int) -> None:
        image = obj.image
        masks = torch.stack([obj.hard.float(), obj.label.float(), obj.valid.float()])
        axes = [a for a in range(spatial_dims) if self.R.rand() < self.flip_prob]
        if axes:
            flip = Flip(spatial_axis=axes)
            image, masks = flip(image), flip(masks)
        if self.R.rand() < self.rotate_prob:
            angles = self._rotation_angles(spatial_dims)
            angle = angles[0] if spatial_dims == 2 else angles
            image = Rotate(angle, keep_size=False, mode="bilinear", padding_mode="zeros")(image)
            masks = Rotate(angle, keep_size=False, mode="nearest", padding_mode="zeros")(masks)
        if self.R.rand() < self.scale_prob:
            factor = float(self.R.uniform(*self.scale_range))
            linear = "bilinear" if spatial_dims == 2 else "trilinear"
            image = Zoom(factor, mode=linear, keep_size=False, align_corners=False)(image)
            masks = Zoom(factor, mode="nearest", keep_size=False)(masks)
        masks = convert_to_tensor(masks, track_meta=False)
        obj.image = convert_to_tensor(image, track_meta=False).to(torch.float32)
        obj.hard = masks[0] > 0.5
        obj.label = masks[1].round().to(obj.label.dtype) * obj.hard
        obj.valid = masks[2] > 0.5

    def _context_margin(self, spatial_dims: int) -> int:
        radius = support_radius(self.mode, self.num_rings, self.ring_width, self.sigma)
        if self.rotate_prob > 0:
            # a rotated box needs diagonal context to cover the same ring width along the axes
            radius = radius * math.sqrt(spatial_dims)
        if self.scale_prob > 0:
            radius = radius / min(self.scale_range[0], 1.0)
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
            "applied": False, "pasted": 0, "skipped": 0, "skip_reasons": [], "placements": [], "weights": []
        }
        self.last_info = info
        main = convert_to_tensor(img, track_meta=False)
        donor = convert_to_tensor(donor_img, track_meta=False)
        if main.ndim not in (3, 4) or donor.ndim != main.ndim:
            raise ValueError(
                f"img and donor_img must both be (C, H, W) or (C, H, W, D); got {tuple(main.shape)} and {tuple(donor.shape)}"
            )
        if main.shape[0] != donor.shape[0]:
            raise ValueError(f"img has {main.shape[0]} channels but donor_img has {donor.shape[0]}")
        spatial, spatial_dims = tuple(main.shape[1:]), main.ndim - 1
        label_t = convert_to_tensor(label, track_meta=False)
        main_lbl = self._spatial_label(label_t, spatial, "label")
        donor_lbl = self._spatial_label(convert_to_tensor(donor_label, track_meta=False), donor.shape[1:], "donor_label")
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
            self._augment_intensity(obj)
            self._augment_geometry(obj, spatial_dims)
            if not bool(obj.hard.any()):
                self._skip(SKIP_LESION_VANISHED, info)
                continue
            # exactly the weight's support around the (possibly rotated or grown) lesion
            obj = reframe_lesion_object(obj, radius)
            hard, valid, obj_img, obj_lbl = obj.hard, obj.valid, obj.image, obj.label
            weight = blend_weights(hard, self.mode, self.alpha, self.num_rings, self.ring_width, self.sigma,
                                   self.connectivity, spatial_dims) * valid
            around, shift = None, None
            if self.max_shift is not None:
                # the lesion's centroid lands within max_shift of where it was in the donor
                around = np.floor(np.argwhere(components == instance).mean(0) + 0.5).astype(int)
                shift = np.broadcast_to(np.asarray(self.max_shift, dtype=int), (spatial_dims,))
            placement = find_lesion_placement(hard, spatial, self.R, ref, existing, self.s1, self.s2, self.max_tries,
                                       around=around, max_shift=shift)
            if placement is None:
                self._skip(SKIP_NO_VALID_PLACE, info)
                continue
            if ref is not None and self.confine_context:
                weight = self._confine_to_reference(weight, hard, ref, placement.offset, spatial)
            paste_object(out_img, out_lbl, obj_img.to(out_img.device), obj_lbl.to(out_lbl.device),
                         hard.to(out_img.device), weight.to(out_img.device), placement.offset)
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
    allow_missing_keys : bool
        Image keys missing from both main and donor are ignored instead of raising.
    **kwargs
        Every other parameter of :class:`RandSoftCopyPaste`.
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
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.label_key, self.reference_key, self.donor_key = label_key, reference_key, donor_key
        if donor_bank is not None and len(donor_bank) == 0:
            raise ValueError("donor_bank is empty")
        self.donor_bank, self.info_key = donor_bank, info_key
        self.paster = RandSoftCopyPaste(prob=1.0, **kwargs)
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
        img, lbl = self.paster(torch.cat(mains), d[self.label_key], torch.cat(donors), donor[self.label_key],
                               reference)
        for k, part in zip(keys, torch.split(img, [m.shape[0] for m in mains])):
            d[k] = convert_to_dst_type(part, d[k])[0]
        d[self.label_key] = lbl
        last = self.paster.last_info
        info.update(applied=True, pasted=last["pasted"], skipped=last["skipped"],
                    skip_reason=last["skip_reasons"][0] if last["skip_reasons"] else "")
        d[self.info_key] = info
        return d

    def __call__(self, data):
        """Paste into one sample (a dict) or into every sample of a list of dicts (in-batch donors)."""
        if isinstance(data, Mapping):
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
