"""Batched SLIC superpixels (2D) and supervoxels (3D) in torch, on the input's device.

The public function; the plan both engines share (seed grid, scaling, pooling, first centres,
constants) is :mod:`~monai_hsmix.backends.slic_plan`, and the engines are
:mod:`~monai_hsmix.backends.slic_torch_engine` (batched torch operations, what a GPU runs) and
:mod:`~monai_hsmix.backends.slic_numba_engine` (fused CPU loops, what a CPU runs by default).

The clustering follows scikit-image's ``slic`` so that the paper's ``compactness`` presets keep
their meaning:

* every image is min-max scaled to ``[0, 1]`` over all its channels and voxels; with
  ``slic_space="lab"`` the 3 channels are then converted from sRGB to CIELAB, as scikit-image
  does for colour images; the features are divided by ``compactness``;
* seeds sit on scikit-image's regular grid (``skimage.util.regular_grid``) for every shape, which
  fixes the grid step ``step``; spatial offsets are multiplied by ``spacing`` and divided by
  ``step``, so the squared distance is
  ``|colour difference|^2 / compactness^2 + |spacing * offset|^2 / step^2``;
* the first assignment is by position alone, as scikit-image's (its centres start with colour 0),
  and the centres start at the means of those cells; ``max_num_iter`` assignments follow.

Where it differs from scikit-image, and why:

* **Half resolution.** When an image's grid step along an axis is at least 8 voxels
  (``half_resolution=None``, the default) the clustering runs on the image average-pooled by 2
  along those axes and the final labels are repeated back to full size. The distance keeps its
  meaning (pooled offsets are scaled by the pooling factor, and the full-size grid step is the
  unit), superpixels are still tens of pooled voxels wide, and boundaries land within one voxel
  of where they would be (boundary recall a few points below full size; figures in
  ``docs/performance.md``). Every pass costs a quarter in 2D and an eighth in 3D, where memory
  shrinks as much. Pooling also averages out voxel noise, like scikit-image's ``sigma``
  smoothing, so fewer fragments form. It is decided per image, and not taken by default when the
  spacing is strongly anisotropic (see :func:`~monai_hsmix.backends.slic_plan.pooling_factors`).
* **Means from a subsample.** For images whose cells are at least
  :data:`~monai_hsmix.backends.slic_plan.SAMPLED_MIN_STEP` voxels wide, all iterations but the
  last estimate the centres (which are means) from the voxels with even coordinates (a quarter in
  2D, an eighth in 3D); the last assignment uses every voxel. Like scikit-image, the iterations
  stop early when no (sampled) voxel changes its centre: the assignment is a fixed point, so the
  result is the same as with every iteration run.
* **Fragments are merged, not kept.** k-means labels can be disconnected; on noisy medical
  images at small compactness there are thousands of fragments per image, mostly single voxels
  (scikit-image's raw labels show the same). Like scikit-image (``enforce_connectivity=True``)
  they are removed: one-voxel fragments take their nearest adjacent centre, then connected
  components (face connectivity) smaller than half the nominal superpixel size join the adjacent
  larger component with the closest mean colour, in up to
  :data:`~monai_hsmix.backends.slic_plan.MERGE_ROUNDS` rounds. Keeping fragments would inflate the
  count with specks whose HSMix saliency ratio is noise and whose hard-mixing regions are not
  superpixels; merging by colour (not by size, as scikit-image effectively does) keeps true edges.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from monai_hsmix.backends.colour import check_slic_space
from monai_hsmix.backends.dispatch import resolve_engine
from monai_hsmix.backends.precision import full_precision
from monai_hsmix.backends.slic_plan import check_arguments, configuration
from monai_hsmix.backends.validation import check_image_batch, check_slic_scales

__all__ = ["torch_slic"]


@full_precision
def torch_slic(
    images: torch.Tensor,
    n_segments: torch.Tensor,
    compactness: float,
    spacing: Optional[Sequence[float]] = None,
    max_num_iter: int = 10,
    half_resolution: Optional[bool] = None,
    slic_space: str = "intensity",
    max_segments: Optional[int] = None,
    engine: str = "auto",
    validate: bool = True,
) -> torch.Tensor:
    """SLIC superpixels (2D) or supervoxels (3D) for a whole batch at once.

    Same contract as :func:`monai_hsmix.backends.reference.skimage_slic`.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` real tensor.
    n_segments : torch.Tensor
        ``(B,)`` integers, the requested number of segments for each image.
    compactness : float
        Balance of colour and space proximity, with scikit-image's meaning.
    spacing : sequence of float, optional
        Voxel spacing along each spatial axis, for anisotropic volumes.
    max_num_iter : int
        Largest number of k-means assignments after the colour-free first one (they stop earlier
        at a fixed point).
    half_resolution : bool, optional
        Cluster each image average-pooled by 2 along the axes where its grid step is at least 8
        voxels (``None``: those axes, unless the largest spacing is over twice the smallest;
        ``True``: the axes where it is at least 2; ``False``: never), then repeat the labels
        back to full size. See the module notes.
    slic_space : {"intensity", "lab"}
        Cluster the channels as they are, or (3 channels only) as CIELAB colours.
    max_segments : int, optional
        The largest count any image of this stream of batches may ask for (a transform's
        ``lmax``). Pooling and tile size are then chosen from it for every image, so the whole
        batch is one pass; without it they are chosen from each image's own count and images
        that differ are clustered in separate passes. Either way an image's superpixels do not
        depend on its batch mates.
    engine : {"auto", "torch", "numba"}
        Batched torch operations (what a GPU runs) or fused CPU loops compiled by numba
        (:mod:`monai_hsmix.backends.slic_numba_engine`); ``"auto"`` picks numba for CPU tensors.
        See :func:`monai_hsmix.backends.dispatch.resolve_engine`.
    validate : bool
        Check ``images`` (:func:`~monai_hsmix.backends.validation.check_image_batch`); callers that
        have checked the batch already (the transforms) pass ``False``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``int64`` labels on the input's device, contiguous from 0 in every image.
    """
    if validate:  # a transform calling with validate=False has checked the batch itself
        check_image_batch(images, "images", allow_empty_batch=True)
    counts, spacing = check_arguments(images, n_segments, compactness, spacing, max_num_iter)
    check_slic_space(slic_space, images.shape[1])
    check_slic_scales(compactness, spacing, images.shape[2:], images.shape[1], slic_space == "lab")
    if resolve_engine(engine, images.device) == "numba":
        from monai_hsmix.backends.slic_numba_engine import cluster  # numba compiles on first use
    else:
        from monai_hsmix.backends.slic_torch_engine import cluster
    if half_resolution is not None and not isinstance(half_resolution, bool):
        raise TypeError(f"half_resolution must be None, True or False, got {half_resolution!r}")
    b = images.shape[0]
    full = tuple(images.shape[2:])
    if b == 0:
        return torch.zeros((0,) + full, dtype=torch.long, device=images.device)
    # images are clustered in groups that share a pooling and tile size, each decided from the
    # image's own seed grid, so that an image gets the same superpixels whatever its batch mates
    if max_segments is not None:
        if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < int(counts.max()):
            raise ValueError(
                f"max_segments must be an int >= every requested count ({int(counts.max())}), got {max_segments!r}"
            )
        configs = [configuration(full, max_segments, spacing, half_resolution)] * b
    else:
        configs = [configuration(full, int(n), spacing, half_resolution) for n in counts.tolist()]
    out = None
    for config in dict.fromkeys(configs):
        members = [i for i, c in enumerate(configs) if c == config]
        if len(members) == b:
            return cluster(images, counts, float(compactness), spacing, max_num_iter, config, slic_space == "lab")
        index = torch.tensor(members, device=images.device)
        labels = cluster(
            images.index_select(0, index),
            counts[members],
            float(compactness),
            spacing,
            max_num_iter,
            config,
            slic_space == "lab",
        )
        if out is None:
            out = torch.empty((b,) + full, dtype=torch.long, device=images.device)
        out.index_copy_(0, index, labels)
    return out
