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
MAX_FILES = 100_000  # entries of any kind: counted from the archive's last record, before its directory is read
KEPT = IMAGE_EXTENSIONS | {".csv"}
_EXTRACTED: dict[tuple[str, int, int], Path] = {}  # (archive, size, mtime) -> dataset root: inspected once a process


def entry_count(zip_path: Path) -> int | None:
    """The number of entries the archive's end-of-central-directory record (or its zip64 record) declares, read from
    the file's last 64 KiB without parsing the directory; None when there is no such record (not a zip)."""
    with open(zip_path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count = int.from_bytes(tail[at + 10 : at + 12], "little")
        locator = tail.rfind(b"PK\x06\x07", 0, at)
        if count == 0xFFFF and locator >= 0:  # zip64: the count is in the zip64 record the locator points to
            f.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
            record = f.read(56)
            if record[:4] == b"PK\x06\x06":
                count = int.from_bytes(record[32:40], "little")
        return count


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
    if len(zf.infolist()) > max_files:  # the directory can hold more entries than its last record says
        raise UnsafeArchive(f"{zip_path}: {len(zf.infolist()):,} entries, more than the limit of {max_files:,}")
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
    st = zip_path.stat()
    memo = (str(zip_path.resolve()), st.st_size, st.st_mtime_ns)
    if dest is None and memo in _EXTRACTED and _EXTRACTED[memo].exists():
        return _EXTRACTED[memo]
    declared = entry_count(zip_path)
    if declared is not None and declared > max_files:
        raise UnsafeArchive(
            f"{zip_path}: {declared:,} entries, more than the limit of {max_files:,}; split the archive or extract "
            f"the images you need"
        )
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
        dest = tops[0]  # the archive wraps the dataset in one folder
    _EXTRACTED[memo] = dest
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
