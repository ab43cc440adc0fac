import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_hsmix.core.instance_bank import InstanceBank, NucleusTemplate, check_image_and_label, to_instance_labels
from monai_hsmix.data.nuclei_data import synthetic_nuclei


def test_binary_mask_is_split_into_eight_connected_components():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[1:3, 1:3] = 1
    mask[3, 3] = 1  # touches the first blob only diagonally
    mask[6:9, 6:9] = 1
    labels = to_instance_labels(mask)
    assert labels.dtype == np.int32
    assert labels.max() == 2
    assert labels[3, 3] == labels[1, 1] != labels[7, 7]


def test_a_0_255_mask_is_binary_too():
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[:2, :2] = 255
    mask[5:, 5:] = 255
    labels = to_instance_labels(mask)
    assert set(np.unique(labels)) == {0, 1, 2}


def test_instance_map_keeps_its_ids_and_accepts_whole_float_and_channel_axis():
    inst = np.zeros((1, 6, 6), dtype=np.float32)
    inst[0, :2, :2] = 7
    inst[0, 3:, 3:] = 3
    labels = to_instance_labels(torch.from_numpy(inst))
    assert set(np.unique(labels)) == {0, 3, 7}


@pytest.mark.parametrize(
    "label, error, match",
    [
        (np.full((4, 4), 0.5, dtype=np.float32), TypeError, "non-integer"),
        (np.zeros((4, 4), dtype=np.complex64), TypeError, "dtype"),
        (-np.ones((4, 4), dtype=np.int16), ValueError, "negative"),
        (np.zeros((2, 4, 4), dtype=np.int32), ValueError, r"\(H, W\)"),
        ([[0, 1]], TypeError, "numpy array or torch tensor"),
    ],
)
def test_bad_labels_raise_clear_errors(label, error, match):
    with pytest.raises(error, match=match):
        to_instance_labels(label)


def test_bad_images_and_mismatched_shapes_raise():
    label = np.zeros((8, 8), dtype=np.int32)
    with pytest.raises(ValueError, match="channel-first"):
        check_image_and_label(np.zeros((8, 8)), label)
    with pytest.raises(TypeError, match="integer or floating"):
        check_image_and_label(np.zeros((3, 8, 8), dtype=bool), label)
    with pytest.raises(ValueError, match="does not match"):
        check_image_and_label(np.zeros((3, 8, 9)), label)


def test_bank_collects_every_interior_instance_with_its_pixels():
    image, inst = synthetic_nuclei(64, 8, seed=3)
    bank = InstanceBank(min_area=1, exclude_border=False)
    assert bank.add(image, inst) == inst.max()
    assert bank.channels == 3
    assert sorted(bank.areas.tolist()) == sorted(np.bincount(inst.ravel())[1:].tolist())
    boxes = ndimage.find_objects(inst)
    for idx, template in enumerate(bank, start=1):  # templates come in id order here
        np.testing.assert_array_equal(template.mask, inst[boxes[idx - 1]] == idx)
        source = image[(slice(None), *boxes[idx - 1])]
        np.testing.assert_array_equal(template.image[:, template.mask], source[:, template.mask])
        assert template.image.dtype == np.float32
        assert template.area == template.mask.sum()


def test_bank_filters_border_and_area():
    inst = np.zeros((20, 20), dtype=np.int32)
    inst[0:4, 5:9] = 1  # touches the border
    inst[8:10, 8:10] = 2  # area 4
    inst[12:18, 12:18] = 3  # area 36
    image = np.zeros((1, 20, 20), dtype=np.float32)
    bank = InstanceBank(min_area=5, max_area=30)
    assert bank.add(image, inst) == 0
    bank = InstanceBank(min_area=5)
    assert bank.add(image, inst) == 1 and bank[0].area == 36
    assert bank[0].centroid == (2.5, 2.5)


def test_bank_rejects_mixed_channel_counts_and_bad_settings():
    bank = InstanceBank()
    image, inst = synthetic_nuclei(48, 4, seed=1)
    bank.add(image, inst)
    with pytest.raises(ValueError, match="channels"):
        bank.add(image[:1], inst)
    with pytest.raises(ValueError, match="min_area"):
        InstanceBank(min_area=0)
    with pytest.raises(ValueError, match="max_area"):
        InstanceBank(min_area=10, max_area=5)
    with pytest.raises(ValueError, match="empty"):
        NucleusTemplate(image=np.zeros((1, 2, 2), np.float32), mask=np.zeros((2, 2), bool))
