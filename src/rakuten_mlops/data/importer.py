"""Lay out the files downloaded from the challenge site (three CSVs + images.zip) as a data folder."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rakuten_mlops.data.loader import read_labels, read_listings
from rakuten_mlops.data.schema import IMAGES_DIR, X_TEST, X_TRAIN, Y_TRAIN, LayoutError

KNOWN_FILES = (X_TRAIN, Y_TRAIN, X_TEST)


@dataclass(frozen=True)
class ImportSummary:
    out_dir: Path
    files: dict[str, int]  # CSV name -> rows
    images: dict[str, int]  # images/<sub> -> count


def _candidates(sources: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if not p.exists():
            raise LayoutError("source does not exist", path=p)
        out.extend(sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p])
    return out


def _safe_member(name: str) -> PurePosixPath | None:
    """Path of a zip member below images/, or None; refuses absolute and `..` paths (zip slip)."""
    parts = [x for x in PurePosixPath(name).parts if x not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/"):
        return None
    if "image_train" in parts:
        parts = parts[parts.index("image_train") :]
    elif "image_test" in parts:
        parts = parts[parts.index("image_test") :]
    else:
        return None
    return PurePosixPath(*parts)


def import_challenge_files(
    sources: Iterable[str | Path], out_dir: str | Path, on_image: Callable[[], None] | None = None
) -> ImportSummary:
    """Copy the CSVs (checking their columns) and unpack images.zip into the challenge layout."""
    out = Path(out_dir)
    files = _candidates(sources)
    by_name = {f.name: f for f in files}
    missing = [n for n in (X_TRAIN, Y_TRAIN) if n not in by_name]
    if missing:
        raise LayoutError(f"missing required file(s) {missing} among the sources")
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name in KNOWN_FILES:
        if name not in by_name:
            continue
        src = by_name[name]
        frame = read_labels(src) if name == Y_TRAIN else read_listings(src)
        shutil.copyfile(src, out / name)
        rows[name] = len(frame)
    images: dict[str, int] = {}
    for archive in (f for f in files if f.suffix.lower() == ".zip"):
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as exc:
            raise LayoutError("is not a valid zip archive", path=archive) from exc
        with zf:
            for member in zf.infolist():
                rel = _safe_member(member.filename)
                if member.is_dir() or rel is None or not rel.name.lower().endswith(".jpg"):
                    continue
                target = out / IMAGES_DIR / Path(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src_f, target.open("wb") as dst_f:
                    shutil.copyfileobj(src_f, dst_f)
                images[rel.parts[0]] = images.get(rel.parts[0], 0) + 1
                if on_image is not None:
                    on_image()
    return ImportSummary(out, rows, images)
