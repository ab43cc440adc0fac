"""Packages that only the bundles, previews or tracking need, imported with an error naming the extra.

``pip install monai_hsmix`` installs what the transforms need (torch, MONAI, numpy, scipy, scikit-image,
OpenCV). The rest comes with an extra (``[bundles]``, ``[preview]``, ``[tracking]`` or ``[all]``); code
that needs such a package imports it through :func:`require`, never at the top of a module that
``import monai_hsmix`` or the transforms load, so a missing one fails only where it is used, and says
what to install.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from monai.utils import OptionalImportError, optional_import

__all__ = ["OPTIONAL_PACKAGES", "require"]

# top-level module -> (distribution on PyPI, the extras of setup.cfg that install it, the first one
# named in errors); tests/test_optional.py checks this table against setup.cfg.
OPTIONAL_PACKAGES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "ignite": ("pytorch-ignite", ("bundles", "all")),
    "tensorboard": ("tensorboard", ("bundles", "all")),
    "fire": ("fire", ("bundles", "all")),
    "yaml": ("pyyaml", ("bundles", "all")),
    "jsonschema": ("jsonschema", ("bundles", "all")),
    "einops": ("einops", ("bundles", "all")),
    "h5py": ("h5py", ("bundles", "all")),
    "tqdm": ("tqdm", ("bundles", "all")),
    "nibabel": ("nibabel", ("bundles", "preview", "all")),
    "PIL": ("pillow", ("bundles", "preview", "all")),
    "matplotlib": ("matplotlib", ("preview", "bundles", "all")),
    "mlflow": ("mlflow", ("tracking", "all")),
}


def require(module: str, name: str = "") -> Any:
    """Import an optional module (or one name from it) now, or say which extra installs it.

    Parameters
    ----------
    module : str
        Dotted module path whose top-level package is a key of :data:`OPTIONAL_PACKAGES`,
        e.g. ``"ignite.engine"``.
    name : str, optional
        An attribute to take from the module (``from module import name``); the module itself when empty.

    Returns
    -------
    Any
        The module, or the attribute ``name`` of it.

    Raises
    ------
    monai.utils.OptionalImportError
        (an ``ImportError``) when the package is missing or fails to import; the message names the
        PyPI package and the ``monai_hsmix`` extra, and the import error is chained.
    KeyError
        When ``module`` is not a known optional package (a typo here, not a missing install).
    """
    top = module.partition(".")[0]
    if top not in OPTIONAL_PACKAGES:
        raise KeyError(
            f"require: {top!r} is not an optional package of monai_hsmix; known: {sorted(OPTIONAL_PACKAGES)}"
        )
    found, ok = optional_import(module, name=name)
    if ok:
        return found
    package, extras = OPTIONAL_PACKAGES[top]
    others = ", ".join(f"[{e}]" for e in extras[1:])
    message = (
        f"{'from ' + module + ' import ' + name if name else 'import ' + module} failed: the optional package "
        f'{package!r} is not installed (or does not import). Install it with: pip install "monai_hsmix[{extras[0]}]"'
        + (f" (also in {others})" if others else "")
    )
    try:
        found()  # MONAI's placeholder raises the stored import error; chain it for the traceback
    except OptionalImportError as cause:
        raise OptionalImportError(message) from cause
    raise OptionalImportError(message)
