"""The learning-rate schedule of the ablation runs."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.apps.ablation.train2d import lr_schedule


@pytest.mark.parametrize("steps", [1, 7, 300])
def test_schedule_is_the_poly_rule_at_every_step(steps):
    # torch's PolynomialLR replaced a hand-written LambdaLR rule: the same rate at every step, 0 at the end
    weight = torch.nn.Parameter(torch.zeros(1))
    optimiser = torch.optim.AdamW([weight], lr=1e-3)
    schedule = lr_schedule(optimiser, steps)
    for step in range(steps + 1):
        assert optimiser.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - step / steps) ** 0.9, rel=1e-9, abs=1e-18)
        optimiser.step()
        schedule.step()
    assert optimiser.param_groups[0]["lr"] == 0.0  # stays at 0 past the last step
