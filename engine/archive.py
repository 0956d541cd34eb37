"""Safe zip extraction: no absolute paths, no `..`, no links, bounded total size and file count."""
from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from engine import paths
from engine.errors import UnsafeArchive
from engine.imageio import IMAGE_EXTENSIONS

MAX_BYTES = 2 * 1024**3
MAX_FILES = 100_000


def _check_name(zip_path: Path, name: str) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{zip_path}: entry '{name}' has an absolute path; refusing to extract the archive")
    if ".." in posix.parts:
        raise UnsafeArchive(f"{zip_path}: entry '{name}' climbs out of the folder with '..'; refusing to extract")


def extract_zip(zip_path: Path, dest: Path | None = None, max_bytes: int = MAX_BYTES,
                max_files: int = MAX_FILES) -> Path:
    """Extracts `zip_path` into a folder keyed by its content hash and returns the dataset root inside it.

    The root is the single top-level folder when there is exactly one, else the extraction folder.

    Raises:
        UnsafeArchive: An entry is absolute, climbs out, is a link, or the archive is too large.
    """
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]
    dest = dest or paths.sub("archives") / digest
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise UnsafeArchive(f"{zip_path}: not a valid zip file ({e})") from e
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in zf.infolist():
            _check_name(zip_path, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafeArchive(f"{zip_path}: entry '{info.filename}' is a symbolic link; refusing to extract")
        if len(infos) > max_files:
            raise UnsafeArchive(f"{zip_path}: {len(infos):,} files, more than the limit of {max_files:,}")
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise UnsafeArchive(f"{zip_path}: {total:,} bytes uncompressed, more than the limit of {max_bytes:,}")
        if not (dest / ".complete").exists():
            tmp = dest.with_name(dest.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            written = 0
            for info in infos:
                target = tmp / PurePosixPath(info.filename.replace("\\", "/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            shutil.rmtree(tmp, ignore_errors=True)
                            raise UnsafeArchive(f"{zip_path}: expands past {max_bytes:,} bytes; refusing")
                        out.write(chunk)
            (tmp / ".complete").touch()
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
    tops = [p for p in dest.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(tops) == 1 and tops[0].is_dir() and \
            not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in tops[0].iterdir() if f.is_file()):
        return tops[0]  # the archive wraps the dataset in one folder
    return dest
