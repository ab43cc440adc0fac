"""Evaluation of instance segmentations (nuclei): AJI, object-level Dice, pixel DSC, three-class targets."""

from monai_hsmix.metrics.instance import (
    InstanceScores,
    aggregated_jaccard_index,
    instance_overlaps,
    object_dice,
    pixel_dice,
    score_instances,
)
from monai_hsmix.metrics.three_class import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    instances_from_probabilities,
    instances_from_interior,
    instances_to_three_class,
)

__all__ = [
    "BACKGROUND",
    "BOUNDARY",
    "INTERIOR",
    "InstanceScores",
    "aggregated_jaccard_index",
    "instance_overlaps",
    "instances_from_interior",
    "instances_from_probabilities",
    "instances_to_three_class",
    "object_dice",
    "pixel_dice",
    "score_instances",
]
