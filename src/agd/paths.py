"""Paths a job writes to, given on its command line (--out, --data-dir, --manifest), checked before anything is
loaded or written: empty, a file where a directory is needed (or the reverse), under a file, not writable, or
longer than the file system allows is refused naming the flag, its value and the fix, never met later as a
traceback. Nothing is left behind by the checks."""

import errno
import os
import tempfile
from pathlib import Path

SHOWN = 80  # characters of a path a message shows


def shown(value: str) -> str:
    """The path as a message shows it: whole, or its start and length when it is long."""
    if len(value) <= SHOWN:
        return value
    return f"{value[:SHOWN]}... ({len(os.fsencode(value))} bytes)"


def _too_long() -> OSError:
    return OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))


def _ancestor_problem(flag: str, value: str, start: Path, writable: bool = True) -> str | None:
    """What keeps the nearest existing directory at or above `start` from taking `value`'s names (under a
    file, not writable), or None. Raises OSError for what the file system itself refuses (a name too long)."""
    path = Path(value)
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        return (f"{flag} {shown(value)}: {shown(str(existing))} is a file, so nothing can be made under it; "
                f"use another {flag}")
    if writable:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".agd-probe."))
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    if any(len(os.fsencode(part)) > name_max for part in path.parts):
        raise _too_long()
    if len(os.fsencode(os.path.abspath(value))) >= os.pathconf(existing, "PC_PATH_MAX"):
        raise _too_long()
    return None


def _checked(flag: str, value: str, check) -> str | None:
    try:
        return check()
    except OSError as e:
        fix = f"choose another {flag} that you can write"
        if e.errno == errno.ENAMETOOLONG:
            fix = "use a shorter path (each name at most 255 bytes, the whole path at most 4096 on most file systems)"
        return f"{flag} {shown(value)}: {e.strerror}; {fix}"


def directory_problem(flag: str, value: str, example: str = "", writable: bool = True) -> str | None:
    """What makes `value` unusable as a directory to write in (made if missing), or None; with `writable` False,
    as a directory that may only be read (a shared copy of a dataset)."""
    if not value.strip():
        return f"{flag} is empty: give a directory{f', e.g. {flag} {example}' if example else ''}"

    def check() -> str | None:
        if Path(value).exists() and not Path(value).is_dir():
            return f"{flag} {shown(value)} is a file, not a directory; use another {flag}"
        return _ancestor_problem(flag, value, Path(value), writable)

    return _checked(flag, value, check)


def file_problem(flag: str, value: str) -> str | None:
    """What makes `value` unusable as a file to write (its directory made if missing), or None."""
    if not value.strip():
        return f"{flag} is empty: give a file"

    def check() -> str | None:
        if Path(value).is_dir():
            example = f"{shown(value.rstrip('/'))}/out.json"
            return f"{flag} {shown(value)} is a directory; give a file in it, e.g. {flag} {example}"
        return _ancestor_problem(flag, value, Path(value).parent)

    return _checked(flag, value, check)
