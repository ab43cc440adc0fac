"""Offline Soft-CP: write synthetic cases for a whole dataset and an updated datalist.

Reads a Decathlon-style ``dataset.json`` (or any datalist JSON with a list of ``{"image", "label"}``
entries, where ``image`` is one NIfTI file, possibly 4D with channels last, or a list of 3D files, one
per channel), pastes lesions from a donor case into a main case, and writes ``n_real / ratio``
synthetic cases plus a ``dataset.json`` listing the real and the synthetic cases::

    python -m monai_hsmix.apps.softcp_synthesize --datalist Task/dataset.json --output-dir out \\
        --label-values 1 2 --reference-label-values 1 --ratio 3 --seed 0

Each case is seeded from ``(seed, case index)`` alone, files are written atomically and a case's JSON
sidecar is written last, so an interrupted run resumes where it stopped without rewriting finished
cases, and a resumed run produces the same files as an uninterrupted one. The settings are recorded in
``softcp_settings.json``: a rerun resumes only with the same settings and otherwise stops naming the
settings that differ. The input datalist is never overwritten, and entries marked ``synthetic`` (an
earlier synthesis's output) are never used as real cases.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from monai_hsmix.data.io import load_image_channels, load_label_map, read_nifti, save_nifti_like, write_json_atomic
from monai_hsmix.optional import require
from monai_hsmix.engines.run_settings import normalize_settings, settings_differences
from monai_hsmix.transforms.soft_copy_paste import RandSoftCopyPaste, object_augmentation

tqdm = require("tqdm", "tqdm")

__all__ = [
    "SynthesisConfig",
    "synthesize",
    "num_synthetic",
    "load_image_channels",
    "load_label_map",
    "add_paste_arguments",
    "paste_kwargs",
    "paster_from_settings",
    "main",
]

SYNTH_IMAGES, SYNTH_LABELS, SYNTH_META = "imagesSyn", "labelsSyn", "metaSyn"
SETTINGS_FILE = "softcp_settings.json"


class SynthesisSettingsError(ValueError):
    """The output folder holds a synthesis made with other settings (or would overwrite the input)."""


@dataclass
class SynthesisConfig:
    """Everything one synthesis run needs; ``paste`` holds :class:`RandSoftCopyPaste` parameters and
    :func:`~monai_hsmix.transforms.soft_copy_paste.object_augmentation`'s (``flip_prob``, ...), plain
    values that the settings file records (see :func:`paster_from_settings`)."""

    datalist: Path
    output_dir: Path
    data_root: Optional[Path] = None
    section: str = "training"
    ratio: float = 3.0
    seed: int = 0
    image_key: str = "image"
    label_key: str = "label"
    reference_key: Optional[str] = None
    reference_label_values: Optional[Sequence[float]] = None
    donor_tries: int = 5
    progress: bool = True
    paste: Dict[str, Any] = field(default_factory=dict)


# ---- planning -------------------------------------------------------------------------------------
def _read_datalist(cfg: SynthesisConfig) -> Tuple[Dict[str, Any], List[Dict[str, Any]], Path]:
    with open(cfg.datalist) as f:
        full = json.load(f)
    entries = full if isinstance(full, list) else full.get(cfg.section)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{cfg.datalist} has no non-empty list of entries under {cfg.section!r}")
    for i, e in enumerate(entries):
        for key in (cfg.image_key, cfg.label_key) + ((cfg.reference_key,) if cfg.reference_key else ()):
            if not isinstance(e, dict) or key not in e:
                raise ValueError(f"entry {i} of {cfg.section!r} has no {key!r} key: {e!r}")
    synthetic = [e for e in entries if e.get("synthetic")]
    if synthetic:
        # an earlier synthesis's dataset.json: its synthetic cases are no real source, and not listed again
        warnings.warn(
            f"{cfg.datalist}: ignoring {len(synthetic)} entries marked 'synthetic' (from an earlier "
            "Soft-CP synthesis); only real cases are used and listed",
            stacklevel=2,
        )
        entries = [e for e in entries if not e.get("synthetic")]
    if len(entries) < 2:
        raise ValueError("Soft-CP needs at least 2 labelled real cases (a main and a donor)")
    root = Path(cfg.data_root) if cfg.data_root is not None else Path(cfg.datalist).parent
    return ({} if isinstance(full, list) else full), entries, root


def num_synthetic(n_real: int, ratio: float) -> int:
    """Synthetic cases for a ``ratio``:1 real:synthetic split (at least 1)."""
    if not ratio > 0:
        raise ValueError(f"ratio (real per synthetic case) must be positive, got {ratio}")
    return max(1, int(round(n_real / ratio)))


def _case_files(index: int, entry_image: Union[str, List[str]]) -> Tuple[List[str], str, str]:
    stem = f"syn_{index:05d}"
    if isinstance(entry_image, list):
        images = [f"{SYNTH_IMAGES}/{stem}_{c:02d}_{Path(p).name}" for c, p in enumerate(entry_image)]
    else:
        images = [f"{SYNTH_IMAGES}/{stem}.nii.gz"]
    return images, f"{SYNTH_LABELS}/{stem}.nii.gz", f"{SYNTH_META}/{stem}.json"


def _finished(out_dir: Path, meta_rel: str) -> Optional[Dict[str, Any]]:
    meta_path = out_dir / meta_rel
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return None
    files = meta.get("files", [])
    return meta if all((out_dir / f).is_file() for f in files) else None


def _synthesize_case(index: int, cfg: SynthesisConfig, entries, root: Path) -> Dict[str, Any]:
    rng = np.random.RandomState(np.random.SeedSequence([cfg.seed, index]).generate_state(1)[0])
    main_idx = int(rng.randint(len(entries)))
    others = [j for j in range(len(entries)) if j != main_idx]
    donors = [others[j] for j in rng.permutation(len(others))[: cfg.donor_tries]]
    main = entries[main_idx]
    image, image_nifti = load_image_channels(main[cfg.image_key], root)
    label, label_nifti = load_label_map(main[cfg.label_key], root)
    reference = None
    if cfg.reference_key:
        reference = read_nifti(root / main[cfg.reference_key], "reference mask")[0] != 0
    if cfg.reference_label_values:
        derived = np.isin(label, np.asarray(cfg.reference_label_values))
        reference = derived if reference is None else reference & derived
    paster = paster_from_settings(cfg.paste, spatial_dims=image.ndim - 1)
    paster.set_random_state(int(rng.randint(2**31 - 1)))
    images_rel, label_rel, meta_rel = _case_files(index, main[cfg.image_key])
    meta: Dict[str, Any] = {"index": index, "main": main_idx, "donor": None, "tried_donors": [], "pasted": 0}
    for donor_idx in donors:
        donor_image, _ = load_image_channels(entries[donor_idx][cfg.image_key], root)
        donor_label, _ = load_label_map(entries[donor_idx][cfg.label_key], root)
        if donor_image.shape[0] != image.shape[0]:
            raise ValueError(f"case {donor_idx} has {donor_image.shape[0]} channels, case {main_idx} {image.shape[0]}")
        meta["tried_donors"].append(donor_idx)
        out_image, out_label = paster(image, label, donor_image, donor_label, reference)
        if paster.last_info["pasted"] > 0:
            meta.update(
                donor=donor_idx,
                pasted=paster.last_info["pasted"],
                offsets=[list(p.offset) for p in paster.last_info["placements"]],
            )
            break
    else:
        meta.update(failed=True, skip_reasons=dict(paster.skip_reasons), files=[])
        write_json_atomic(cfg.output_dir / meta_rel, meta, indent=2)
        return meta
    if len(images_rel) == 1 and len(image_nifti) == 1 and image_nifti[0].ndim == 4:
        save_nifti_like(np.moveaxis(out_image, 0, -1), image_nifti[0], cfg.output_dir / images_rel[0], np.float32)
    else:
        for c, (rel, like) in enumerate(zip(images_rel, image_nifti)):
            save_nifti_like(out_image[c], like, cfg.output_dir / rel, np.float32)
    save_nifti_like(out_label, label_nifti, cfg.output_dir / label_rel, label_nifti.get_data_dtype())
    meta["files"] = [*images_rel, label_rel]
    write_json_atomic(cfg.output_dir / meta_rel, meta, indent=2)  # last: marks the case finished
    return meta


def _rebase(value: Any, root: Path, out_dir: Path) -> Any:
    """Relative paths of an original entry, rewritten relative to the output folder (absolute ones kept)."""
    if isinstance(value, list):
        return [_rebase(v, root, out_dir) for v in value]
    if isinstance(value, str) and not os.path.isabs(value) and (root / value).exists():
        return os.path.relpath((root / value).resolve(), out_dir.resolve())
    return value


def _settings(cfg: SynthesisConfig, entries, root: Path) -> Dict[str, Any]:
    """Everything that decides the synthetic cases (not ``progress``); the sources by a digest."""
    digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
    return normalize_settings(
        {
            "datalist": str(Path(cfg.datalist).resolve()),
            "data_root": str(root.resolve()),
            "section": cfg.section,
            "real_cases": len(entries),
            "real_cases_sha256": digest,
            "ratio": cfg.ratio,
            "seed": cfg.seed,
            "image_key": cfg.image_key,
            "label_key": cfg.label_key,
            "reference_key": cfg.reference_key,
            "reference_label_values": cfg.reference_label_values,
            "donor_tries": cfg.donor_tries,
            "paste": cfg.paste,
        }
    )


def _check_output_dir(cfg: SynthesisConfig, settings: Dict[str, Any]) -> None:
    """Refuse to overwrite the input datalist or to resume a synthesis made with other settings."""
    out = cfg.output_dir
    if (out / "dataset.json").resolve() == Path(cfg.datalist).resolve():
        raise SynthesisSettingsError(
            f"--output-dir {out} would overwrite the input datalist {cfg.datalist}: choose another output folder"
        )
    fresh = f"Use another --output-dir, or delete {out} to synthesize again there."
    recorded = out / SETTINGS_FILE
    if recorded.is_file():
        diffs = settings_differences(json.loads(recorded.read_text()), settings, where=SETTINGS_FILE)
        if diffs:
            raise SynthesisSettingsError(
                f"{out} holds a Soft-CP synthesis made with other settings, so it is not resumed:\n  "
                + "\n  ".join(diffs)
                + f"\n{fresh}"
            )
    elif any((out / SYNTH_META).glob("*.json")):
        raise SynthesisSettingsError(
            f"{out} holds synthetic cases but no {SETTINGS_FILE} (an older version wrote them), so they cannot be "
            f"checked against these settings. {fresh}"
        )


def synthesize(cfg: SynthesisConfig) -> Dict[str, Any]:
    """Run (or resume) a synthesis; returns a summary and writes ``output_dir/dataset.json``."""
    full, entries, root = _read_datalist(cfg)
    if int(cfg.donor_tries) < 1:
        raise ValueError(f"donor_tries must be >= 1, got {cfg.donor_tries}")
    paster_from_settings(cfg.paste, spatial_dims=3)  # fail on a bad configuration before any work
    n_syn = num_synthetic(len(entries), cfg.ratio)
    cfg.output_dir = Path(cfg.output_dir)
    settings = _settings(cfg, entries, root)
    _check_output_dir(cfg, settings)
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    if not (cfg.output_dir / SETTINGS_FILE).is_file():  # before any case: a case never lacks its record
        write_json_atomic(cfg.output_dir / SETTINGS_FILE, settings, indent=2)
    for folder in (SYNTH_IMAGES, SYNTH_LABELS, SYNTH_META):
        # leftovers of an interrupted run: never complete, never listed
        for stale in (cfg.output_dir / folder).glob(".partial-*"):
            stale.unlink()
    summary = {"real": len(entries), "synthetic": 0, "failed": 0, "resumed": 0, "written": 0}
    synthetic_entries = []
    bar = tqdm(range(n_syn), desc="Soft-CP synthesis", unit="case", disable=not cfg.progress)
    for index in bar:
        meta_rel = _case_files(index, entries[0][cfg.image_key])[2]
        meta = _finished(cfg.output_dir, meta_rel)
        if meta is not None:
            summary["resumed"] += 1
        else:
            meta = _synthesize_case(index, cfg, entries, root)
            summary["written"] += 1
        if meta.get("failed"):
            summary["failed"] += 1
            continue
        summary["synthetic"] += 1
        main = entries[meta["main"]]
        new = {k: _rebase(v, root, cfg.output_dir) for k, v in main.items()}
        image_files = [f for f in meta["files"] if f.startswith(SYNTH_IMAGES)]
        new[cfg.image_key] = image_files if isinstance(main[cfg.image_key], list) else image_files[0]
        new[cfg.label_key] = meta["files"][-1]
        new.update(synthetic=True, softcp_main=meta["main"], softcp_donor=meta["donor"])
        synthetic_entries.append(new)
        bar.set_postfix(synthetic=summary["synthetic"], failed=summary["failed"])
    real = [{k: _rebase(v, root, cfg.output_dir) for k, v in e.items()} for e in entries]
    out = dict(full)
    out[cfg.section] = real + synthetic_entries
    if "numTraining" in out and cfg.section == "training":
        out["numTraining"] = len(out[cfg.section])
    out["softcp"] = {
        "ratio": cfg.ratio,
        "seed": cfg.seed,
        "real": len(real),
        "synthetic": len(synthetic_entries),
        "failed": summary["failed"],
        "paste": cfg.paste,
    }
    write_json_atomic(cfg.output_dir / "dataset.json", out, indent=2)
    summary["datalist"] = str(cfg.output_dir / "dataset.json")
    return summary


_PROBS = ("flip", "rotate", "scale", "gamma", "noise", "blur")
# the settings that build the object transform rather than being RandSoftCopyPaste arguments
_OBJECT_AUGMENTATION_ARGS = tuple(p for p in inspect.signature(object_augmentation).parameters if p != "spatial_dims")


def paster_from_settings(paste: Dict[str, Any], spatial_dims: int) -> RandSoftCopyPaste:
    """A :class:`RandSoftCopyPaste` (``prob=1``) from plain settings: the arguments of
    :func:`~monai_hsmix.transforms.soft_copy_paste.object_augmentation` among them (``flip_prob``,
    ``rotate_prob``, ...) build its ``object_transform`` for ``spatial_dims``, the others are passed on."""
    augment = {k: v for k, v in paste.items() if k in _OBJECT_AUGMENTATION_ARGS}
    rest = {k: v for k, v in paste.items() if k not in _OBJECT_AUGMENTATION_ARGS}
    return RandSoftCopyPaste(prob=1.0, object_transform=object_augmentation(spatial_dims, **augment), **rest)


def add_paste_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Command-line options for the :class:`RandSoftCopyPaste` parameters; ``defaults`` overrides
    defaults by destination name (e.g. ``num_rings=6``); ``label_values`` given there makes the option
    optional."""
    d = dict(
        mode="soft",
        alpha=0.7,
        num_rings=5,
        ring_width=1,
        sigma=2.0,
        s1=0.8,
        s2=0.1,
        max_tries=50,
        num_lesions=1,
        min_lesion_voxels=1,
        **{f"{n}_prob": 0.0 for n in _PROBS},
    )
    d.update(defaults)
    parser.add_argument(
        "--label-values",
        type=float,
        nargs="+",
        required="label_values" not in d,
        default=d.get("label_values"),
        help="lesion label values to paste",
    )
    parser.add_argument("--mode", choices=("soft", "gaussian", "hard"), default=d["mode"])
    helps = {
        "alpha": "soft mask: weight factor per ring, in (0, 1)",
        "num_rings": "soft mask: rings outside the lesion",
        "ring_width": "soft mask: dilations per ring",
        "sigma": "gaussian mode: blur std in voxels",
        "s1": "pasted lesion must overlap the reference by more than this fraction",
        "s2": "pasted lesion must overlap existing lesions by less than this fraction",
        "max_tries": "positions drawn per lesion before skipping",
        "num_lesions": "lesions pasted per case",
        "min_lesion_voxels": "donor lesion components smaller than this are not used",
    }
    for name, kind in (
        ("alpha", float),
        ("num_rings", int),
        ("ring_width", int),
        ("sigma", float),
        ("s1", float),
        ("s2", float),
        ("max_tries", int),
        ("num_lesions", int),
        ("min_lesion_voxels", int),
        *((f"{n}_prob", float) for n in _PROBS),
    ):
        help_text = helps.get(name, f"object-level {name[:-5]} probability")
        parser.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=d[name], help=f"{help_text} (default: %(default)s)"
        )
    parser.add_argument(
        "--no-confine-context",
        dest="confine_context",
        action="store_false",
        help="let the donor's soft rim extend outside the reference region",
    )


def paste_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """Settings for :func:`paster_from_settings` from options added by :func:`add_paste_arguments`."""
    kwargs = {
        name: getattr(args, name)
        for name in (
            "mode",
            "alpha",
            "num_rings",
            "ring_width",
            "sigma",
            "s1",
            "s2",
            "max_tries",
            "num_lesions",
            "min_lesion_voxels",
            "confine_context",
            *(f"{n}_prob" for n in _PROBS),
        )
    }
    kwargs["label_values"] = [int(v) if float(v).is_integer() else float(v) for v in args.label_values]
    return kwargs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.softcp_synthesize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--datalist", required=True, type=Path, help="dataset.json or datalist JSON")
    p.add_argument("--output-dir", required=True, type=Path)
    p.add_argument("--data-root", type=Path, help="folder the datalist's paths are relative to (default: its folder)")
    p.add_argument("--section", default="training", help="datalist key holding the cases (default: training)")
    p.add_argument("--ratio", type=float, default=3.0, help="real cases per synthetic case (the paper: about 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-key", default="image")
    p.add_argument("--label-key", default="label")
    p.add_argument("--reference-key", help="entry key of a reference mask file (e.g. a brain mask)")
    p.add_argument(
        "--reference-label-values",
        type=float,
        nargs="+",
        help="label values of the main case forming the reference (e.g. 1 for kidney)",
    )
    p.add_argument("--donor-tries", type=int, default=5, help="donors tried per case before it counts as failed")
    add_paste_arguments(p)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; a problem with the inputs or settings ends it with its message and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    paste = paste_kwargs(args)
    cfg = SynthesisConfig(
        args.datalist,
        args.output_dir,
        args.data_root,
        args.section,
        args.ratio,
        args.seed,
        args.image_key,
        args.label_key,
        args.reference_key,
        args.reference_label_values,
        args.donor_tries,
        not args.no_progress,
        paste,
    )
    try:
        summary = synthesize(cfg)
    except (ValueError, OSError) as err:  # settings, datalists and data files: the message says which and why
        parser.exit(2, f"{parser.prog}: error: {_message(err)}\n")
    print(json.dumps(summary, indent=2))
    return 0


def _message(err: BaseException) -> str:
    """An error's message, with the file an ``OSError`` names (``open`` puts it in ``filename``)."""
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(err):
        return f"{err.filename}: {err.strerror or err}"
    return str(err)


if __name__ == "__main__":
    raise SystemExit(main())
