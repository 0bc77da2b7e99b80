"""Token files: private, written atomically, locked across processes.

A write goes to a temporary file in the same directory, is flushed and
fsynced, then renamed over the old file, so a crash leaves either the old
token or the new one. A refresh holds the lock file beside the token file
across read, token request and write (see ``OAuthManager``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Tuple

from .errors import LockTimeoutError, StorageError
from .home import planopticon_home
from .token import StoredToken

if TYPE_CHECKING:
    from filelock import BaseFileLock

logger = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
DEFAULT_LOCK_TIMEOUT = 120.0
# Temporary files older than this were left by a process killed mid-write.
STALE_TEMPORARY_AGE = 300.0

StatKey = Tuple[int, int, int, int]

# Parsed tokens of this process, keyed by path and checked against the file's
# stat, so an unchanged file is neither re-read nor re-parsed.
# NOTE: a file replaced within one timestamp tick by another file of the same
# size that reuses the inode would look unchanged. A token seen stale this way
# is either expired (and re-read under the lock) or rejected by the service
# (and re-read after ``invalidate``).
_cache: Dict[Path, Tuple[StatKey, StoredToken]] = {}
_cache_guard = threading.Lock()


def _stat_key(info: os.stat_result) -> StatKey:
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


class TokenStore:
    """The token file of one service.

    Args:
        path: The token file.
        lock_timeout: Maximum seconds to wait for another process's lock.
    """

    def __init__(
        self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self._path_text = os.fspath(self.path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._file_lock: Optional[BaseFileLock] = None

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def stat_key(self) -> Optional[StatKey]:
        """Return what identifies the file's current content, or ``None``.

        Device, inode, modification time and size: a save renames a new file
        into place, so another process's save changes the inode.
        """
        try:
            info = os.stat(self._path_text)
        except OSError:
            return None
        return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)

    def load(self, *, use_cache: bool = True) -> Optional[StoredToken]:
        """Read the saved token, or return ``None`` if there is none.

        A corrupt or unreadable file is moved aside as
        ``<name>.corrupt-<UTC timestamp>`` with a warning, and ``None`` is
        returned.

        Raises:
            StorageError: The file exists but cannot be read, or a corrupt
                file cannot be moved aside.
        """
        try:
            info = os.stat(self._path_text)
        except FileNotFoundError:
            self._forget()
            return None
        except OSError as exc:
            raise StorageError(
                f"Cannot read the token file {self.path}: {exc.strerror}.",
                path=self.path,
            ) from exc

        key = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        if use_cache:
            # A dict lookup is atomic under the GIL; writers take the guard.
            cached = _cache.get(self.path)
            if cached is not None and cached[0] == key:
                return cached[1]

        self._tighten_mode(info)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._forget()
            return None
        except (PermissionError, IsADirectoryError) as exc:
            self._set_aside(key, f"unreadable: {exc.strerror}")
            return None
        except OSError as exc:
            raise StorageError(
                f"Cannot read the token file {self.path}: {exc.strerror}. "
                "Check its owner and permissions.",
                path=self.path,
            ) from exc

        try:
            token = StoredToken.from_json(_parse_json(raw))
        except UnicodeDecodeError:
            self._set_aside(key, "not UTF-8 text")
            return None
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            self._set_aside(key, f"not a valid token file: {reason}")
            return None

        with _cache_guard:
            _cache[self.path] = (key, token)
        return token

    def save(self, token: StoredToken) -> None:
        """Write the token atomically with mode 0600.

        Raises:
            StorageError: The directory cannot be created or the file
                cannot be written.
        """
        self.ensure_directory()
        payload = json.dumps(token.to_json(), indent=2, sort_keys=True).encode()
        directory = self.path.parent
        try:
            descriptor, temporary = tempfile.mkstemp(
                dir=directory, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise StorageError(
                f"Cannot write a token file in {directory}: {exc.strerror}.",
                path=self.path,
            ) from exc
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), FILE_MODE)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StorageError(
                f"Cannot write the token file {self.path}: {exc.strerror}.",
                path=self.path,
            ) from exc
        _fsync_directory(directory)
        self._remove_stale_temporaries()

        with _cache_guard:
            _cache[self.path] = (_stat_key(self.path.stat()), token)
        logger.debug("Saved the token file %s", self.path)

    def delete(self) -> bool:
        """Remove the token file; return whether there was one.

        The lock file stays: removing it while another process holds it
        would let a third process take a second, separate lock.
        """
        self._forget()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(
                f"Cannot remove the token file {self.path}: {exc.strerror}.",
                path=self.path,
            ) from exc
        logger.info("Removed the token file %s", self.path)
        return True

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lock beside the token file, across threads and processes.

        The lock is an OS file lock (``flock`` on Unix), which the kernel
        releases when its holder dies, so a killed process never leaves a
        lock behind. It is re-entrant within one thread.

        Raises:
            LockTimeoutError: Another holder kept it past ``lock_timeout``.
            StorageError: The lock file cannot be created or locked.
        """
        from filelock import FileLock, Timeout

        self.ensure_directory()
        if self._file_lock is None:
            self._file_lock = FileLock(
                str(self.lock_path), timeout=self.lock_timeout, mode=FILE_MODE
            )
        try:
            self._file_lock.acquire()
        except Timeout:
            raise LockTimeoutError(
                f"Timed out after {self.lock_timeout:g} s waiting for the lock "
                f"{self.lock_path}. Another planopticon process is using this "
                "token; wait for it to finish or stop it.",
                path=self.lock_path,
            ) from None
        except OSError as exc:
            raise StorageError(
                f"Cannot create or lock {self.lock_path}: {exc.strerror}. Check "
                "the directory's owner and permissions.",
                path=self.lock_path,
            ) from exc
        try:
            yield
        finally:
            self._file_lock.release()

    def ensure_directory(self) -> None:
        """Create the token file's directory, and missing parents, as 0700.

        An existing PlanOpticon home that others can read is tightened to
        0700 with a warning; other existing directories are left as they are.
        """
        self._tighten_home()
        directory = self.path.parent
        missing = []
        while not directory.exists():
            missing.append(directory)
            if directory.parent == directory:
                break
            directory = directory.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=DIRECTORY_MODE)
                os.chmod(directory, DIRECTORY_MODE)
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(
                    f"Cannot create the directory {directory}: {exc.strerror}.",
                    path=directory,
                ) from exc

    def _tighten_home(self) -> None:
        directory = self.path.parent
        if directory != planopticon_home():
            return
        try:
            mode = stat.S_IMODE(directory.stat().st_mode)
            if mode & 0o077:
                os.chmod(directory, DIRECTORY_MODE)
                logger.warning(
                    "The directory %s was open to others (mode %o); changed it to %o.",
                    directory,
                    mode,
                    DIRECTORY_MODE,
                )
        except OSError:
            return

    def file_mode(self) -> Optional[int]:
        """Return the token file's permission bits, or ``None`` if absent."""
        try:
            return stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return None

    def _tighten_mode(self, info: os.stat_result) -> None:
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            return
        try:
            os.chmod(self.path, FILE_MODE)
        except OSError as exc:
            logger.warning(
                "The token file %s is readable by others (mode %o) and could "
                "not be restricted: %s",
                self.path,
                mode,
                exc.strerror,
            )
            return
        logger.warning(
            "The token file %s was readable by others (mode %o); changed it to %o.",
            self.path,
            mode,
            FILE_MODE,
        )

    def _set_aside(self, key: StatKey, reason: str) -> None:
        """Move a corrupt file aside unless another process replaced it."""
        with self.lock():
            try:
                if _stat_key(self.path.stat()) != key:
                    return
            except FileNotFoundError:
                return
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            counter = 1
            while target.exists():
                target = self.path.with_name(
                    f"{self.path.name}.corrupt-{stamp}-{counter}"
                )
                counter += 1
            try:
                os.rename(self.path, target)
            except OSError as exc:
                raise StorageError(
                    f"The token file {self.path} is corrupt ({reason}) and "
                    f"could not be moved aside: {exc.strerror}. Move or "
                    "delete it, then sign in again.",
                    path=self.path,
                ) from exc
        self._forget()
        logger.warning(
            "The token file %s is corrupt (%s); moved it to %s.",
            self.path,
            reason,
            target,
        )

    def _remove_stale_temporaries(self) -> None:
        cutoff = time.time() - STALE_TEMPORARY_AGE
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    logger.debug("Removed the stale temporary file %s", leftover)

    def _forget(self) -> None:
        with _cache_guard:
            _cache.pop(self.path, None)


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _fsync_directory(directory: Path) -> None:
    """Persist a rename; some file systems do not support this and are skipped."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
