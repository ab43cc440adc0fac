import numpy as np
import torch

from monai_hsmix.core.lesion_objects import cut_lesion_object, lesion_instances, reframe_lesion_object


def test_instances_group_touching_values_and_drop_small_ones():
    label = np.zeros((12, 12), dtype=np.int64)
    label[1:4, 1:4] = 1
    label[2, 4] = 2  # touches the first lesion: same instance
    label[8:11, 8:11] = 2
    label[0, 11] = 1  # single voxel
    components, ids = lesion_instances(torch.as_tensor(label), (1, 2), min_voxels=2)
    assert len(ids) == 2
    assert components[2, 4] == components[1, 1]
    assert components[0, 11] not in ids
    _, none = lesion_instances(torch.as_tensor(label), (5,))
    assert none == []


def test_cut_marks_out_of_donor_context_invalid_and_keeps_only_the_instance():
    image = torch.arange(2 * 10 * 10, dtype=torch.float32).reshape(2, 10, 10)
    label = torch.zeros(10, 10, dtype=torch.long)
    label[0:2, 0:2] = 4
    label[7, 7] = 1
    components, ids = lesion_instances(label, (1, 4))
    inst = int(components[0, 0])
    obj = cut_lesion_object(image, label, components, inst, margin=2)
    assert obj.hard.shape == (6, 6) and obj.origin == (-2, -2)
    assert obj.valid.sum() == 16 and not obj.valid[0, 0] and obj.valid[2, 2]
    assert torch.equal(obj.image[:, 2:, 2:], image[:, :4, :4])
    assert torch.all(obj.image[:, :2] == 0)
    assert obj.hard.sum() == 4 and set(obj.label.unique().tolist()) == {0, 4}


def test_reframe_fits_the_patch_to_lesion_plus_margin():
    components = np.zeros((30, 30), dtype=np.int32)
    components[10:13, 14:16] = 1
    image = torch.rand(1, 30, 30)
    obj = cut_lesion_object(image, torch.as_tensor(components), components, 1, margin=8)
    tight = reframe_lesion_object(obj, 2)
    assert tight.hard.shape == (7, 6) and tight.hard.sum() == 6
    assert torch.equal(tight.image[0], image[0, 8:15, 12:18])
    wide = reframe_lesion_object(obj, 10)  # beyond the cut: zero-filled and invalid
    assert wide.hard.shape == (23, 22) and not wide.valid[0, 0] and wide.valid[10, 10]
    assert wide.hard.sum() == 6 and wide.image[0, 0, 0] == 0
