"""Recording the settings that define a run, and saying which of them changed on a rerun.

A rerun into the folder of an earlier run may resume it only when it would produce the same thing;
both the bundles' checkpoints and the offline Soft-CP synthesis compare settings this way.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

__all__ = ["normalize_settings", "settings_differences"]


def normalize_settings(settings: Optional[Mapping]) -> Dict[str, Any]:
    """``settings`` as plain JSON types (tuples become lists, keys sorted), so a saved copy compares equal."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping of setting name to value, got {type(settings).__name__}")
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


def settings_differences(saved: Mapping, current: Mapping, where: str = "the checkpoint") -> List[str]:
    """One line per setting whose value differs between a saved run (recorded in ``where``) and this one."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        if key not in saved:
            lines.append(f"{key}: not recorded in {where}, {current[key]!r} now")
        elif key not in current:
            lines.append(f"{key}: {saved[key]!r} in {where}, not set now")
        elif saved[key] != current[key]:
            lines.append(f"{key}: {saved[key]!r} in {where}, {current[key]!r} now")
    return lines
