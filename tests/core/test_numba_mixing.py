"""The CPU kernels behind mix_with_masks (class labels) and segment_mean give what the torch operations give."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.core import numba_mixing
from monai_hsmix.core.hsmix_equations import blend_index_labels, mix_with_masks
from monai_hsmix.core.segment_ops import segment_mean


@pytest.mark.parametrize("binary", [True, False])
def test_blend_index_rows_equal_the_one_hot_blend(binary):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (4, 1, 11, 6, 3), generator=g)
    mask = torch.rand(4, 11, 6, 3, generator=g)
    if binary:
        mask = (mask > 0.5).float()
    partner = torch.tensor([1, 0, 3, 2])
    out = numba_mixing.blend_index_rows(labels, partner, mask, torch.empty(4, 5, 11, 6, 3))
    expected = torch.cat(
        [
            blend_index_labels(labels[b : b + 1], labels[p : p + 1], mask[b : b + 1], 5, binary=binary)
            for b, p in enumerate(partner.tolist())
        ]
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert torch.allclose(out.sum(dim=1), torch.ones(()))


def test_segment_mean_kernel_equals_the_scatter_path():
    g = torch.Generator().manual_seed(2)
    values = torch.rand(3, 20, 30, generator=g)
    segments = torch.randint(0, 50, (3, 20, 30), generator=g) * 3  # non-contiguous labels
    out = segment_mean(values, segments)  # CPU float32: the kernel
    for b in range(3):
        for s in segments[b].unique():
            inside = segments[b] == s
            torch.testing.assert_close(
                out[b][inside], values[b][inside].double().mean().float().expand(int(inside.sum()))
            )
    # float16 takes the torch path and keeps its dtype
    half = segment_mean(values.half(), segments)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), out, atol=2e-3, rtol=0)


def test_kernels_refuse_what_they_cannot_take():
    x = torch.rand(2, 3, requires_grad=True)
    assert not numba_mixing.can_run(x)
    assert not numba_mixing.can_run(torch.rand(2).half())
    assert numba_mixing.can_run(torch.rand(2), torch.arange(3))


def test_mix_with_masks_gives_the_same_labels_with_and_without_kernels():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (3, 1, 9, 8), generator=g)
    hard = (torch.rand(3, 9, 8, generator=g) > 0.5).float()
    soft = torch.rand(3, 9, 8, generator=g)
    partner = torch.tensor([2, 0, 1])
    parts = [(hard, True), (soft, False)]
    fast, rows = mix_with_masks(labels, partner, parts, include_original=True, num_classes=3)
    slow, slow_rows = mix_with_masks(labels, partner, parts, include_original=True, num_classes=3, engine="torch")
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
    assert torch.equal(rows, slow_rows) and torch.equal(fast[3:6], slow[3:6])  # hard part: exact one-hot copies


def test_the_kernels_refuse_indices_outside_their_arrays():
    labels = torch.randint(0, 3, (2, 1, 4, 5))
    mask = torch.rand(2, 4, 5)
    out = torch.empty(2, 3, 4, 5)
    for partner in (torch.tensor([1, 2]), torch.tensor([-1, 0]), torch.tensor([1])):
        with pytest.raises(ValueError, match="partner"):
            numba_mixing.blend_index_rows(labels, partner, mask, out)
    with pytest.raises(ValueError, match="do not fit"):
        numba_mixing.blend_index_rows(labels, torch.tensor([1, 0]), torch.rand(2, 4, 4), out)
    with pytest.raises(ValueError, match="below 4"):
        numba_mixing.segment_mean_rows(torch.rand(2, 4, 5), torch.full((2, 4, 5), 4), 4)
    with pytest.raises(ValueError, match="non-negative"):
        numba_mixing.segment_mean_rows(torch.rand(2, 4, 5), torch.full((2, 4, 5), -1))
    with pytest.raises(ValueError, match="partner"):
        mix_with_masks(torch.rand(2, 1, 4, 5), torch.tensor([0, 5]), [(mask, False)])


def test_outputs_in_any_layout_receive_the_kernels_results():
    # the kernels write through a numpy view: a channels-last or strided tensor must still get them
    g = torch.Generator().manual_seed(4)
    values = torch.rand(2, 3, 6, 5, generator=g).contiguous(memory_format=torch.channels_last)
    segments = torch.randint(0, 4, (2, 3, 6, 5), generator=g)
    expected = segment_mean(values.contiguous(), segments, engine="torch")
    torch.testing.assert_close(segment_mean(values, segments), expected)
    labels = torch.randint(0, 3, (2, 1, 6, 5), generator=g)
    mask = torch.rand(2, 6, 5, generator=g)
    strided = torch.zeros(2, 3, 6, 10)[..., ::2]
    numba_mixing.blend_index_rows(labels, torch.tensor([1, 0]), mask, strided)
    torch.testing.assert_close(
        strided, numba_mixing.blend_index_rows(labels, torch.tensor([1, 0]), mask, torch.empty(2, 3, 6, 5))
    )


def test_the_engine_is_an_argument_and_the_old_flag_still_works_with_a_warning():
    g = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 3, (2, 1, 5, 4), generator=g)
    mask = torch.rand(2, 5, 4, generator=g)
    parts = [(mask, False)]
    kernel, _ = mix_with_masks(labels, torch.tensor([1, 0]), parts, num_classes=3, engine="numba")
    torch_ops, _ = mix_with_masks(labels, torch.tensor([1, 0]), parts, num_classes=3, engine="torch")
    torch.testing.assert_close(kernel, torch_ops, rtol=0, atol=1e-6)
    values, segments = torch.rand(2, 5, 4, generator=g), torch.randint(0, 4, (2, 5, 4), generator=g)
    torch.testing.assert_close(
        segment_mean(values, segments, engine="numba"), segment_mean(values, segments, engine="torch")
    )
    assert numba_mixing.use_kernels("auto", values) and not numba_mixing.use_kernels("torch", values)
    with pytest.raises(ValueError, match="engine must be one of"):
        segment_mean(values, segments, engine="cuda")
    with pytest.raises(ValueError, match="engine must be one of"):
        mix_with_masks(labels, torch.tensor([1, 0]), parts, num_classes=3, engine="fast")
    with pytest.raises(ValueError, match="CPU tensors only"):
        numba_mixing.use_kernels("numba", torch.empty(2, device="meta"))
    with pytest.warns(DeprecationWarning, match="engine="):
        with numba_mixing.kernels_enabled(False):
            assert not numba_mixing.use_kernels("auto", values)
            assert numba_mixing.use_kernels("numba", values)
    assert numba_mixing.use_kernels("auto", values)


def test_a_process_waits_while_another_holds_the_compile_lock(tmp_path):
    # DataLoader workers of a fresh install: the first compiles, the others wait for its cache
    import subprocess
    import sys
    import time

    if sys.platform == "win32":
        pytest.skip("the lock uses fcntl")
    ready = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, pathlib, sys, time\n"
                f"h = open({numba_mixing.compile_lock_path()!r}, 'a'); fcntl.flock(h, fcntl.LOCK_EX)\n"
                f"pathlib.Path({str(ready)!r}).touch(); time.sleep(1.5)\n"
            ),
        ]
    )
    try:
        while not ready.exists():
            time.sleep(0.02)
        start = time.perf_counter()
        with numba_mixing.first_compile_lock("test-group"):
            waited = time.perf_counter() - start
            with numba_mixing.first_compile_lock("test-group"):  # nested: not taken twice
                pass
    finally:
        holder.wait()
    assert waited > 0.5
    start = time.perf_counter()
    with numba_mixing.first_compile_lock("test-group"):  # done once in this process: no lock
        pass
    assert time.perf_counter() - start < 0.1
