"""Output paths given on the command line, checked before the work that writes them starts.

A missing folder is created (as users expect of --out_dir and --out); a folder that cannot be written,
a file where a folder should be, a name longer than the file system allows or an unknown extension is
refused with amp_jax.errors.InputError naming the option.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from amp_jax.errors import InputError

NAME_MAX = 255  # bytes in one file or folder name (Linux, macOS, Windows)


def check_output_dir(path: str | Path, option: str) -> Path:
    """The folder `path` given by `option`, created if missing, after checking that files can be written in it."""
    path = Path(path)
    _check_names(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        file = next(p for p in (path, *path.parents) if p.exists() and not p.is_dir())
        raise InputError(f"{option} {path}: {file} is a file, not a folder") from None
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write in this folder ({e.strerror})") from None
    return path


def check_output_file(path: str | Path, suffixes: tuple[str, ...], option: str) -> Path:
    """The file `path` given by `option`, checked to end in one of `suffixes` and to be writable (its folder
    is created if missing)."""
    path = Path(path)
    if path.suffix not in suffixes:
        raise InputError(f"{option} {path}: expected a file name ending in {' or '.join(suffixes)}")
    _check_names(path, option)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name ending in {' or '.join(suffixes)}")
    check_output_dir(path.parent, option)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: the file exists and cannot be overwritten")
    return path


def _check_names(path: Path, option: str) -> None:
    for name in path.parts:
        if len(os.fsencode(name)) > NAME_MAX:
            raise InputError(f"{option}: the name '{name[:40]}...' is longer than {NAME_MAX} characters")
