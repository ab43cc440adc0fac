"""InsMix as MONAI transforms: copy-paste of morphology-matched nuclei, optional Smooth-GAN harmonisation,
and background patch shuffling (Lin et al., MICCAI 2022)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy

from monai_hsmix.core.background_shuffle import shuffle_background_patches
from monai_hsmix.core.instance_bank import InstanceBank, check_image_and_label, check_intensity_scale, intensity_range
from monai_hsmix.core.instance_paste import paste_instances
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.networks.smooth_gan import SmoothGANGenerator, harmonize, load_generator

__all__ = ["RandInsMix", "RandInsMixd", "RandInsMixD", "RandInsMixDict"]

Harmonizer = Union[str, Path, SmoothGANGenerator, None]


def _resolve_device(device: Union[str, torch.device]) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RandInsMix(RandomizableTransform):
    """Paste template nuclei next to original ones, optionally harmonise them, then shuffle background patches.

    Parameters
    ----------
    bank
        Templates to paste. None: each image's own nuclei (as in the authors' code); instances touching the
        border are used only when no interior instance exists. Its images must be scaled like the images
        augmented (a 0-255 bank and a [0, 1] image raise ValueError).
    prob
        Probability of augmenting at all (image and labels pass through unchanged otherwise; a binary label
        is still returned as an instance map).
    constraints
        :class:`~monai_hsmix.core.ssd_constraints.SSDConstraints` (scale, shape, distance, touching).
    max_paste_ratio
        Up to this share of the nuclei (at least one) get a template pasted next to them.
    shuffle_prob, patch_size, shuffle_fraction
        Background perturbation: probability, patch side (20) and share of nucleus-free patches (alpha 0.2).
    harmonizer
        Smooth-GAN generator: a local checkpoint path from ``python -m monai_hsmix.apps.train_smooth_gan``, or
        a :class:`SmoothGANGenerator` (then give ``value_range``). Applied to the pasted pixels only.
    harmonizer_device
        Device for the generator: ``"cpu"`` (default, safe in DataLoader workers), ``"cuda"`` or ``"auto"``.
    value_range
        Intensity range the generator was trained on; default the checkpoint's (``(0, 255)`` for uint8 tiles).
    allow_empty
        If False (default) a label without nuclei raises ValueError; if True such images only get the
        background shuffle.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        bank: Optional[InstanceBank] = None,
        prob: float = 1.0,
        constraints: Optional[SSDConstraints] = None,
        max_paste_ratio: float = 0.5,
        shuffle_prob: float = 1.0,
        patch_size: int = 20,
        shuffle_fraction: float = 0.2,
        harmonizer: Harmonizer = None,
        harmonizer_device: Union[str, torch.device] = "cpu",
        value_range: Optional[Tuple[float, float]] = None,
        allow_empty: bool = False,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if bank is not None and not isinstance(bank, InstanceBank):
            raise TypeError(f"bank must be an InstanceBank or None, got {type(bank).__name__}")
        if bank is not None and len(bank) == 0:
            raise ValueError("bank is empty: add labelled images to it first (InstanceBank.add)")
        if not 0 < max_paste_ratio <= 1:
            raise ValueError(f"max_paste_ratio must lie in (0, 1], got {max_paste_ratio}")
        if not 0 <= shuffle_prob <= 1:
            raise ValueError(f"shuffle_prob must lie in [0, 1], got {shuffle_prob}")
        if not 0 <= shuffle_fraction <= 1 or int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(
                "need shuffle_fraction in [0, 1] and a positive integer patch_size, "
                f"got {shuffle_fraction}, {patch_size}"
            )
        self.bank = bank
        self.constraints = constraints if constraints is not None else SSDConstraints()
        self.max_paste_ratio = max_paste_ratio
        self.shuffle_prob = shuffle_prob
        self.patch_size = int(patch_size)
        self.shuffle_fraction = shuffle_fraction
        self.allow_empty = allow_empty
        self.generator, self.value_range = self._load_harmonizer(harmonizer, harmonizer_device, value_range)
        self.last_records: List[Tuple[int, int, int, Tuple[int, int]]] = []
        self._seed = 0
        self._shuffle = False

    @staticmethod
    def _load_harmonizer(harmonizer: Harmonizer, device, value_range):
        if harmonizer is None:
            return None, value_range
        if isinstance(harmonizer, SmoothGANGenerator):
            if value_range is None:
                raise ValueError("value_range is required with a generator object (e.g. (0, 255) for uint8 tiles)")
            return harmonizer.to(_resolve_device(device)).eval(), tuple(value_range)
        if isinstance(harmonizer, (str, Path)):
            generator, config = load_generator(harmonizer, _resolve_device(device))
            return generator, tuple(value_range if value_range is not None else config["value_range"])
        raise TypeError(
            f"harmonizer must be a checkpoint path, a SmoothGANGenerator or None, got {type(harmonizer).__name__}"
        )

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self._seed = int(self.R.randint(0, 2**31 - 1))
        self._shuffle = bool(self.R.rand() < self.shuffle_prob)

    def _templates(self, image: np.ndarray, instances: np.ndarray) -> InstanceBank:
        if self.bank is not None:
            return self.bank
        own = InstanceBank()
        if own.add(image, instances) == 0:
            own = InstanceBank(min_area=1, exclude_border=False)
            own.add(image, instances)
        return own

    def __call__(self, img, label, randomize: bool = True):
        """Return ``(image, instance map, pasted mask)``.

        ``image`` keeps the input's type, dtype and metadata; the instance map (int32) and the pasted mask
        (uint8) take the label's type and shape ((H, W) or (1, H, W)).
        """
        image, instances = check_image_and_label(convert_to_numpy(img), convert_to_numpy(label))
        if self.bank is not None and self.bank.value_range is not None:
            check_intensity_scale(self.bank.value_range, intensity_range(image), "the bank's images", "the image")
        if not instances.any() and not self.allow_empty:
            raise ValueError(
                "label has no nucleus instances; InsMix pastes next to existing nuclei "
                "(set allow_empty=True to skip such images)"
            )
        if randomize:
            self.randomize()
        pasted = np.zeros(instances.shape, dtype=bool)
        self.last_records = []
        if self._do_transform:
            rng = np.random.RandomState(self._seed)
            if instances.any():
                result = paste_instances(
                    image, instances, self._templates(image, instances), self.constraints, rng, self.max_paste_ratio
                )
                self.last_records = result.records
                image_t = torch.from_numpy(result.image)
                if self.generator is not None and result.pasted.any():
                    image_t = harmonize(
                        self.generator,
                        image_t,
                        torch.from_numpy(instances > 0),
                        torch.from_numpy(result.pasted),
                        self.value_range,
                    )
                image, instances, pasted = image_t.numpy(), result.instances, result.pasted
            if self._shuffle:
                image = shuffle_background_patches(
                    torch.from_numpy(np.ascontiguousarray(image)),
                    torch.from_numpy(instances > 0),
                    self.patch_size,
                    self.shuffle_fraction,
                    rng,
                ).numpy()
        label_shape = tuple(label.shape)
        out_img = convert_to_dst_type(image, img)[0]
        int_dtype = torch.int32 if isinstance(label, torch.Tensor) else np.int32
        out_inst = convert_to_dst_type(instances.reshape(label_shape), label, dtype=int_dtype)[0]
        u8 = torch.uint8 if isinstance(label, torch.Tensor) else np.uint8
        out_pasted = convert_to_dst_type(pasted.reshape(label_shape).astype(np.uint8), label, dtype=u8)[0]
        return out_img, out_inst, out_pasted


class RandInsMixd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandInsMix`.

    Parameters
    ----------
    image_key, label_key
        Inputs: the (C, H, W) image and its instance map or binary mask.
    instance_key
        Where the instance map goes (pasted nuclei get new unique ids); default ``label_key``.
    semantic_key
        Where the binary nucleus mask goes (the label's dtype); None to skip.
    pasted_key
        Optional key for the mask of pasted pixels (uint8).
    prob, bank, constraints, max_paste_ratio, shuffle_prob, patch_size
        As in :class:`RandInsMix`.
    shuffle_fraction, harmonizer, harmonizer_device, value_range, allow_empty
        As in :class:`RandInsMix`.
    allow_missing_keys
        Pass the dictionary through when the image or label key is absent.
    """

    backend = RandInsMix.backend

    def __init__(
        self,
        image_key: str = "image",
        label_key: str = "label",
        instance_key: Optional[str] = None,
        semantic_key: Optional[str] = "semantic",
        pasted_key: Optional[str] = None,
        prob: float = 1.0,
        bank: Optional[InstanceBank] = None,
        constraints: Optional[SSDConstraints] = None,
        max_paste_ratio: float = 0.5,
        shuffle_prob: float = 1.0,
        patch_size: int = 20,
        shuffle_fraction: float = 0.2,
        harmonizer: Harmonizer = None,
        harmonizer_device: Union[str, torch.device] = "cpu",
        value_range: Optional[Tuple[float, float]] = None,
        allow_empty: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, [image_key, label_key], allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.image_key, self.label_key = image_key, label_key
        self.instance_key = instance_key or label_key
        self.semantic_key = semantic_key
        self.pasted_key = pasted_key
        self.mixer = RandInsMix(
            bank=bank,
            prob=prob,
            constraints=constraints,
            max_paste_ratio=max_paste_ratio,
            shuffle_prob=shuffle_prob,
            patch_size=patch_size,
            shuffle_fraction=shuffle_fraction,
            harmonizer=harmonizer,
            harmonizer_device=harmonizer_device,
            value_range=value_range,
            allow_empty=allow_empty,
        )

    def set_random_state(
        self, seed: Optional[int] = None, state: Optional[np.random.RandomState] = None
    ) -> "RandInsMixd":
        super().set_random_state(seed, state)
        self.mixer.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> Dict[Hashable, Any]:
        d = dict(data)
        missing = [k for k in (self.image_key, self.label_key) if k not in d]
        if missing:
            if self.allow_missing_keys:
                return d
            raise KeyError(f"RandInsMixd: key(s) {missing} not in the data (keys: {list(d)})")
        label = d[self.label_key]
        # the array transform draws (prob included) and applies, as MONAI's dictionary wrappers do
        image, instances, pasted = self.mixer(d[self.image_key], label)
        d[self.image_key] = image
        d[self.instance_key] = instances
        if self.semantic_key is not None:
            d[self.semantic_key] = convert_to_dst_type(instances > 0, label, dtype=label.dtype)[0]
        if self.pasted_key is not None:
            d[self.pasted_key] = pasted
        return d


RandInsMixD = RandInsMixDict = RandInsMixd
