"""Name -> (superpixel function, saliency function) lookup used by the transforms."""

from __future__ import annotations

import functools
from typing import Callable, Dict, Tuple

from monai_hsmix.backends import reference
from monai_hsmix.core.numba_mixing import check_engine

__all__ = ["available_backends", "resolve_backend"]

SuperpixelFn = Callable[..., "torch.Tensor"]  # noqa: F821
SaliencyFn = Callable[..., "torch.Tensor"]  # noqa: F821


def _reference() -> Tuple[SuperpixelFn, SaliencyFn]:
    return reference.skimage_slic, reference.opencv_saliency


def _torch() -> Tuple[SuperpixelFn, SaliencyFn]:
    from monai_hsmix.backends import torch_saliency, torch_slic

    return torch_slic.torch_slic, torch_saliency.torch_fine_grained_saliency


_BACKENDS: Dict[str, Callable[[], Tuple[SuperpixelFn, SaliencyFn]]] = {"reference": _reference}


def _has_torch_backend() -> bool:
    try:
        _torch()
    except ImportError:
        return False
    return True


if _has_torch_backend():
    _BACKENDS["torch"] = _torch


def available_backends() -> Tuple[str, ...]:
    """Names accepted by :func:`resolve_backend` (besides ``"auto"``)."""
    return tuple(sorted(_BACKENDS))


def resolve_backend(name: str, engine: str = "auto") -> Tuple[SuperpixelFn, SaliencyFn]:
    """Return ``(superpixel_fn, saliency_fn)`` for a backend name.

    Parameters
    ----------
    name : str
        ``"reference"`` (scikit-image SLIC + OpenCV saliency, CPU, image by image), ``"torch"``
        (batched, on the batch's device) or ``"auto"`` (torch when available, else reference).
    engine : {"auto", "torch", "numba"}
        The torch backend's implementation (see :func:`monai_hsmix.backends.dispatch.resolve_engine`),
        bound into both functions. The reference backend has one implementation: only ``"auto"``.
    """
    check_engine(engine)
    key = name.lower()
    if key == "auto":
        key = "torch" if "torch" in _BACKENDS else "reference"
    if key not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {available_backends()}")
    superpixel_fn, saliency_fn = _BACKENDS[key]()
    if key == "reference" and engine != "auto":
        raise ValueError(
            f"engine={engine!r} applies to the torch backend only; the reference backend "
            "(scikit-image, OpenCV) has one implementation: use engine='auto'"
        )
    if engine == "auto":  # the functions' own default
        return superpixel_fn, saliency_fn
    return functools.partial(superpixel_fn, engine=engine), functools.partial(saliency_fn, engine=engine)
