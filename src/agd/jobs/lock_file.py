"""The one way this project opens and takes a lock file (the GPU lease's and a run directory's .lock).

A lock file is opened without following a symbolic link, and only a plain file with a single name is used: a
link planted where the lock belongs is refused, never followed, so no other file is ever truncated or written
through it. The lock is flock(2), held by the open file (its inode), released by the kernel however the holder
ends; after locking, the path must still name the locked inode (a holder may unlink its file as it releases),
else the lock is taken again on what the path names now. Imports nothing beyond the standard library.
"""

import errno
import fcntl
import os
import stat
from pathlib import Path


class UnsafeLockFile(OSError):
    """What sits at a lock file's path is not a plain file of its own: a symbolic link, a second name of another
    file, a directory or a device."""


def _open(path: Path, flags: int, mode: int) -> int:
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeLockFile(e.errno, f"{path} is a symbolic link, where a lock file belongs: it is not "
                                          "followed; remove it (someone else may have planted it)") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a plain file" if not stat.S_ISREG(info.st_mode) else f"a file with {info.st_nlink} names"
        raise UnsafeLockFile(errno.EPERM, f"{path} is {what}, where a lock file belongs: it is not used; remove "
                                          "it (someone else may have planted it)")
    return fd


def same_file(fd: int, path: Path) -> bool:
    """Whether `path` (not followed if a link) still names the file open as `fd`."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def acquire(path: Path, mode: int = 0o600) -> int | None:
    """A descriptor holding an exclusive lock on the lock file at `path` (made with `mode` if missing), or None
    while another process holds it. Raises UnsafeLockFile for a link or anything but a plain file there."""
    while True:
        fd = _open(path, os.O_RDWR | os.O_CREAT, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if same_file(fd, path):
            return fd
        os.close(fd)  # unlinked or replaced between the open and the lock: lock what the path names now


def write_holder(fd: int, text: str) -> None:
    """Say in a held lock file who holds it (the file is plain, single-named and locked: see acquire)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def holder(path: Path) -> str:
    """What the holder of the lock file at `path` wrote there; empty if nothing can be read safely."""
    try:
        fd = _open(path, os.O_RDONLY, 0)
    except OSError:
        return ""
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)
