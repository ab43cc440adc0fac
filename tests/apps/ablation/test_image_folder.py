"""Image-folder layout (MoNuSeg): reading tif/png pairs, k-fold by image, crops, whole-image evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_hsmix.apps.ablation.image_folder import CropSampler, evaluate_images, find_pairs, kfold_by_image, read_pair


def write_image_folder(root: Path, count: int, size: int = 40, seed: int = 0) -> Path:
    """``count`` RGB LZW TIFFs with dark discs (nuclei) on a pink background, and their 0/1 PNG masks."""
    rng = np.random.RandomState(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(4):
            cy, cx = rng.randint(5, size - 5, size=2)
            mask[np.hypot(yy - cy, xx - cx) < 4] = 1
        rgb = np.where(mask[..., None] == 1, [70, 40, 120], [230, 170, 200]) + rng.randint(0, 20, (size, size, 3))
        Image.fromarray(rgb.astype(np.uint8)).save(root / "images" / f"img{i:02d}.tif", compression="tiff_lzw")
        Image.fromarray(mask).save(root / "masks" / f"img{i:02d}.png")
    return root


def test_reads_lzw_tif_and_png_mask(tmp_path):
    root = write_image_folder(tmp_path / "d", 2)
    pairs = find_pairs(root)
    assert sorted(pairs) == ["img00", "img01"]
    image, mask = read_pair(*pairs["img00"], num_classes=2)
    assert image.shape == (3, 40, 40) and image.dtype == torch.uint8 and mask.shape == (1, 40, 40)
    # the nuclei are the dark pixels: the mask was read in the image's orientation
    assert image[0][mask[0] == 1].float().mean() < 100 < image[0][mask[0] == 0].float().mean()


def test_missing_mask_and_out_of_range_labels_are_named(tmp_path):
    root = write_image_folder(tmp_path / "d", 2)
    (root / "masks" / "img01.png").unlink()
    with pytest.raises(FileNotFoundError, match="img01.png"):
        find_pairs(root)
    pairs = find_pairs(write_image_folder(tmp_path / "e", 1))
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(pairs["img00"][1])
    with pytest.raises(ValueError, match="holds values up to 255"):
        read_pair(*pairs["img00"], num_classes=2)


def test_folds_split_by_image_and_test_each_image_once():
    names = [f"n{i}" for i in range(20)]
    folds = kfold_by_image(names, 5, seed=0)
    assert len(folds) == 5
    tested = [n for _, test in folds for n in test]
    assert sorted(tested) == sorted(names)  # every image tested exactly once
    for train, test in folds:
        assert len(test) == 4 and not set(train) & set(test) and set(train) | set(test) == set(names)
    assert kfold_by_image(names, 5, seed=0) == folds and kfold_by_image(names, 5, seed=1) != folds
    with pytest.raises(ValueError, match="folds must be in"):
        kfold_by_image(names[:3], 5, seed=0)


def test_crops_are_aligned_windows_of_the_training_images():
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 30, 50), dtype=torch.uint8, generator=g) for _ in range(2)]
    labels = [(im[:1] > 128).to(torch.uint8) for im in images]
    sampler = CropSampler(images, labels, 16)
    crops, masks = sampler.draw(6, torch.Generator().manual_seed(1))
    assert crops.shape == (6, 3, 16, 16) and masks.shape == (6, 1, 16, 16) and masks.dtype == torch.int64
    assert float(crops.min()) >= 0.0 and float(crops.max()) <= 1.0
    for crop, mask in zip(crops, masks):
        assert torch.equal(mask, (crop[:1] * 255 > 128).long())  # label crop taken at the image crop's place
        as_bytes = (crop * 255).round().to(torch.uint8)
        found = any(
            torch.equal(im[:, y : y + 16, x : x + 16], as_bytes)
            for im in images
            for y in range(30 - 15)
            for x in range(50 - 15)
        )
        assert found
    with pytest.raises(ValueError, match="crop size 40 is larger"):
        CropSampler(images, labels, 40)


class _Oracle(torch.nn.Module):
    """Logits that put class 1 where the red channel is dark (how the synthetic nuclei were drawn)."""

    def forward(self, x):
        fg = (x[:, :1] < 0.5).float()
        return torch.cat([1 - fg, fg], 1) * 10


def test_whole_image_evaluation_scores_a_perfect_predictor_one(tmp_path):
    pairs = find_pairs(write_image_folder(tmp_path / "d", 2, size=50))
    loaded = [read_pair(*pairs[n], num_classes=2) for n in sorted(pairs)]
    rows = evaluate_images(
        _Oracle(), [i for i, _ in loaded], [m for _, m in loaded], sorted(pairs), roi=16, num_classes=2
    )
    assert [r["volume"] for r in rows] == ["img00", "img01"]
    for r in rows:
        assert r["dice"] == [pytest.approx(1.0)] and r["jaccard"] == [pytest.approx(1.0)] and r["hd95"] == [0.0]


def test_16_bit_and_float_images_keep_their_depth(tmp_path):
    """A 16-bit TIFF was clipped by ``convert('RGB')``: every pixel above 255 saturated (issue 24)."""
    import cv2

    from monai_hsmix.apps.ablation.image_folder import read_image, unit_float

    ramp = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "grey16.tif"), ramp)
    grey = unit_float(torch.from_numpy(read_image(tmp_path / "grey16.tif")))
    assert grey.shape == (1, 40, 40)
    torch.testing.assert_close(grey[0], torch.from_numpy(ramp / 65535.0).float())
    rgb16 = np.stack([ramp, ramp // 2, 65535 - ramp], -1)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    rgb = read_image(tmp_path / "rgb16.png")
    np.testing.assert_allclose(rgb, np.moveaxis(rgb16, -1, 0) / 65535.0, atol=1e-6)  # channel order kept
    cv2.imwrite(str(tmp_path / "f.tif"), (ramp / 65535.0).astype(np.float32))
    np.testing.assert_allclose(read_image(tmp_path / "f.tif")[0], ramp / 65535.0, atol=1e-6)
    cv2.imwrite(str(tmp_path / "hu.tif"), (ramp.astype(np.float32) - 1000.0))
    with pytest.raises(ValueError, match=r"hu.tif: float pixels must lie in \[0, 1\], found \[-1000"):
        read_image(tmp_path / "hu.tif")


def test_truncated_image_or_mask_is_named_first_and_last(tmp_path):
    """A truncated mask PNG ended in ``OSError: image file is truncated`` with no file name (issue 24)."""
    for victim_index in (0, 1):
        root = write_image_folder(tmp_path / f"d{victim_index}", 1, size=64)
        victim = find_pairs(root)["img00"][victim_index]
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        with pytest.raises(ValueError) as info:
            read_pair(*find_pairs(root)["img00"], num_classes=2)
        message = str(info.value)
        assert message.startswith(str(victim)) and message.endswith(str(victim)), message
