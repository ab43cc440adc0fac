import pytest
import torch

from monai_hsmix.core import labels_to_channels


def test_index_labels_become_one_hot():
    lab = torch.tensor([[[[0, 1], [2, 3]]]])
    out = labels_to_channels(lab, num_classes=4)
    assert out.shape == (1, 4, 2, 2) and out.dtype == torch.float32
    assert torch.equal(out.argmax(1), lab[:, 0])
    assert torch.equal(out.sum(1), torch.ones(1, 2, 2))


def test_one_hot_and_multilabel_pass_through():
    one_hot = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 5, 5)), 3).movedim(-1, 1)
    assert torch.equal(labels_to_channels(one_hot, num_classes=3), one_hot.float())
    multi = torch.zeros(2, 3, 5, 5)
    multi[:, :, 1:3, 1:3] = 1  # overlapping channels, as BraTS WT/TC/ET
    assert torch.equal(labels_to_channels(multi, multilabel=True), multi)


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        (torch.zeros(1, 1, 4, 4), {}, "num_classes is required"),
        (torch.full((1, 1, 4, 4), 4.0), {"num_classes": 4}, r"\[0, 3\]"),
        (-torch.ones(1, 1, 4, 4), {"num_classes": 4}, r"\[0, 3\]"),
        (torch.full((1, 1, 4, 4), 0.5), {"num_classes": 4}, "integer"),
        (torch.full((1, 1, 4, 4), float("nan")), {"num_classes": 4}, "NaN"),
        (torch.ones(1, 3, 4, 4), {}, "sum to 1"),
        (torch.ones(1, 3, 4, 4) / 3, {"num_classes": 4}, "3 channels but num_classes=4"),
        (torch.full((1, 2, 4, 4), 2.0), {"multilabel": True}, r"\[0, 1\]"),
        (torch.zeros(4, 4), {"num_classes": 2}, "B, C"),
        (torch.zeros(1, 1, 4, 4), {"num_classes": 1}, "at least 2"),
    ],
)
def test_bad_labels_raise_with_the_reason(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        labels_to_channels(labels, **kwargs)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.full((1, 1, 4, 4), 4, dtype=torch.int64), r"\[0, 3\]"),
        (torch.full((1, 1, 4, 4), -1, dtype=torch.int32), r"\[0, 3\]"),
        (torch.full((1, 1, 4, 4), float("inf")), "NaN"),
        (torch.zeros(1, 2, 4, 4, dtype=torch.int64), r"\(B, 1, \*spatial\)"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.complex64), "real numbers"),
    ],
)
def test_class_indices_reject_bad_values_with_the_reason(labels, message):
    from monai_hsmix.core import class_indices

    with pytest.raises(ValueError, match=message):
        class_indices(labels, 4)


def test_class_indices_keep_int64_without_a_copy():
    from monai_hsmix.core import class_indices, is_index_labels

    labels = torch.randint(0, 3, (2, 1, 5, 5))
    assert class_indices(labels, 3).data_ptr() == labels.data_ptr()
    assert torch.equal(class_indices(labels.float(), 3), labels)
    assert is_index_labels(labels) and not is_index_labels(labels, multilabel=True)
    assert not is_index_labels(torch.zeros(2, 3, 5, 5))


def test_single_channel_bool_masks_are_binary_index_labels():
    from monai_hsmix.core import class_indices

    mask = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(0)) > 0.5
    assert torch.equal(class_indices(mask, 2), mask.long())
    assert torch.equal(labels_to_channels(mask, 2).argmax(1), mask[:, 0].long())


@pytest.mark.parametrize("shape, classes", [((3, 1, 5, 6), 2), ((2, 1, 4, 3, 5), 7)])
def test_index_labels_are_torchs_one_hot(shape, classes):
    # MONAI's one_hot replaced a hand-written scatter: float32 channels equal to torch's one_hot
    lab = torch.randint(0, classes, shape, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.one_hot(lab[:, 0], classes).movedim(-1, 1).float()
    out = labels_to_channels(lab, num_classes=classes)
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    assert torch.equal(labels_to_channels(lab.bool() if classes == 2 else lab, num_classes=classes), expected)
