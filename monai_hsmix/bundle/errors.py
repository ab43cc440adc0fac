"""Bundle errors a user can read: the error that stopped the run comes first and last, not buried.

MONAI's config parser wraps every error raised while it evaluates a ``$`` expression or instantiates a
``_target_`` in ``RuntimeError("Failed to evaluate ...")``, so ``python -m monai.bundle run`` ends a
missing ``--dataset_dir`` with some 60 lines of chained traceback whose last line names only the config
expression. The bundles' configs import this module; importing it installs a ``sys.excepthook`` that,
for such wrapped errors only, prints the wrapped error's type and the first line of its message before and
after the usual traceback: the outermost dataset error of the chain when there is one (it names the case
and the file), else the innermost error. Other errors print as always.
"""

from __future__ import annotations

import sys
from typing import Optional, Type, TypeVar

__all__ = ["error_chain", "root_cause", "find_in_chain", "install"]

E = TypeVar("E", bound=BaseException)
_WRAPPER_PREFIXES = ("Failed to evaluate", "Failed to instantiate")


def error_chain(exc: Optional[BaseException]):
    """``exc`` and the errors it was raised from, outermost first, as Python's traceback shows them."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error of ``exc``'s chain (``exc`` itself when it was not raised from another)."""
    *_, last = error_chain(exc)
    return last


def find_in_chain(exc: BaseException, kind: Type[E]) -> Optional[E]:
    """The outermost error of type ``kind`` in ``exc``'s chain, or None."""
    return next((e for e in error_chain(exc) if isinstance(e, kind)), None)


def _wrapped_by_config(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and str(exc).startswith(_WRAPPER_PREFIXES) and root_cause(exc) is not exc


def _is_dataset_error(exc: BaseException) -> bool:
    # by name: importing monai_hsmix.data.io here would import MONAI into every config that imports this module
    return any(cls.__name__ == "DatasetError" for cls in type(exc).__mro__)


def _most_telling(exc: BaseException) -> BaseException:
    """The error to name first and last: the outermost dataset error (it names the case and the file; its
    causes, such as ``EOFError``, do not), else the innermost error of the chain."""
    return next((e for e in error_chain(exc) if _is_dataset_error(e)), None) or root_cause(exc)


_previous = sys.excepthook


def _hook(exc_type, exc, tb) -> None:
    if not _wrapped_by_config(exc):
        _previous(exc_type, exc, tb)
        return
    shown = _most_telling(exc)
    lines = str(shown).splitlines() or [""]
    summary = f"error: {type(shown).__name__}: {lines[0]}"
    print(summary + "\n(full traceback follows; the same error is repeated at its end)\n", file=sys.stderr, flush=True)
    _previous(exc_type, exc, tb)
    print(
        "\nThe bundle stopped because of the first error in the traceback above:\n" + summary,
        file=sys.stderr,
        flush=True,
    )


def install() -> None:
    """Make uncaught config-wrapped errors print their cause first and last (idempotent)."""
    global _previous
    if sys.excepthook is not _hook:
        _previous, sys.excepthook = sys.excepthook, _hook


install()
