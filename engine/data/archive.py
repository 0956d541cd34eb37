"""Safe zip extraction: only images and CSV files, no absolute paths, no `..`, no links, no entry that is both a file
and a folder, bounded total size and file count; a failure at any point leaves nothing behind."""

from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from engine import paths
from engine.data.imageio import IMAGE_EXTENSIONS
from engine.errors import UnsafeArchive

MAX_BYTES = 2 * 1024**3  # of extracted images and CSV files
MAX_FILES = 100_000
KEPT = IMAGE_EXTENSIONS | {".csv"}


def _parts(zip_path: Path, name: str) -> tuple[str, ...]:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{zip_path}: entry '{name}' has an absolute path; refusing to extract the archive")
    if ".." in posix.parts:
        raise UnsafeArchive(f"{zip_path}: entry '{name}' climbs out of the folder with '..'; refusing to extract")
    return tuple(p for p in posix.parts if p not in ("", "."))


def _plan(zip_path: Path, zf: zipfile.ZipFile, max_bytes: int, max_files: int) -> list[tuple[zipfile.ZipInfo, tuple]]:
    """The entries to extract (images and CSV files), checked before anything is written."""
    keep, files, dirs = [], set(), set()
    for info in zf.infolist():
        parts = _parts(zip_path, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"{zip_path}: entry '{info.filename}' is a symbolic link; refusing to extract")
        if not parts:
            continue
        if info.is_dir():
            dirs.add(parts)
            continue
        files.add(parts)
        dirs.update(parts[:i] for i in range(1, len(parts)))
        if PurePosixPath(parts[-1]).suffix.lower() in KEPT and not parts[-1].startswith("."):
            keep.append((info, parts))
    clash = sorted(files & dirs)
    if clash:
        raise UnsafeArchive(
            f"{zip_path}: '{'/'.join(clash[0])}' is both a file and a folder in the archive; fix the "
            f"archive and try again"
        )
    if len(keep) > max_files:
        raise UnsafeArchive(f"{zip_path}: {len(keep):,} images, more than the limit of {max_files:,}")
    total = sum(info.file_size for info, _ in keep)
    if total > max_bytes:
        raise UnsafeArchive(
            f"{zip_path}: its images take {total:,} bytes uncompressed, more than the limit of {max_bytes:,}"
        )
    return keep


def extract_zip(
    zip_path: Path, dest: Path | None = None, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES
) -> Path:
    """Extracts the images and CSV files of `zip_path` into a folder keyed by its content hash and returns the dataset
    root inside it (the single top-level folder when there is exactly one, else the extraction folder).

    Raises:
        UnsafeArchive: Not a zip, an entry is absolute, climbs out, is a link or a file-and-folder clash, or the
            archive is too large; nothing is left on disk.
    """
    h = hashlib.sha256()
    with open(zip_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    dest = dest or paths.sub("archives") / h.hexdigest()[:16]
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeArchive(f"{zip_path}: not a valid zip file ({e})") from e
    with zf:
        keep = _plan(zip_path, zf, max_bytes, max_files)
        if not (dest / ".complete").exists():
            with paths.building(dest) as tmp:  # two extractions of one archive at once: the second waits, reuses
                if not (dest / ".complete").exists():
                    _write(zip_path, zf, keep, tmp, max_bytes)
                    (tmp / ".complete").touch()
                    shutil.rmtree(dest, ignore_errors=True)
                    tmp.rename(dest)
    tops = [p for p in dest.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if (
        len(tops) == 1
        and tops[0].is_dir()
        and not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in tops[0].iterdir() if f.is_file())
    ):
        return tops[0]  # the archive wraps the dataset in one folder
    return dest


def _write(zip_path: Path, zf: zipfile.ZipFile, keep: list, tmp: Path, max_bytes: int) -> None:
    try:
        _copy(zip_path, zf, keep, tmp, max_bytes)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise UnsafeArchive(f"{zip_path}: a damaged or encrypted entry ({e}); re-create the archive") from None


def _copy(zip_path: Path, zf: zipfile.ZipFile, keep: list, tmp: Path, max_bytes: int) -> None:
    written = 0
    tmp.mkdir(parents=True)
    for info, parts in keep:
        target = tmp.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > max_bytes:  # the sizes in the directory can lie
                    raise UnsafeArchive(f"{zip_path}: expands past {max_bytes:,} bytes; refusing")
                out.write(chunk)
