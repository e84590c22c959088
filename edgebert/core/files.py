"""Writing without losing anything: staged directories renamed into place, `--force` to replace, checksums."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ArtifactExistsError, InputError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolves_inside(path: Path, root: Path) -> bool:
    """Whether `path`, every link followed, lands inside the directory `root` (links within it are fine)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def check_writable(out: Path, force: bool, inputs: tuple[Path | str | None, ...] = ()) -> None:
    """Fail early, before any slow work: when `out` exists and --force was not given, and always (even with
    --force) when writing `out` would replace one of the command's own inputs, contain one, or land inside an
    input directory (an artifact or checkpoint whose files are checksummed and must stay as they are)."""
    check_not_an_input(out, inputs)
    if Path(out).exists() and not force:
        raise ArtifactExistsError(f"{out} already exists; pass --force to overwrite it, or choose another --out.")


def check_not_an_input(out: Path, inputs: tuple[Path | str | None, ...], flag: str = "--out") -> None:
    """The one check every output goes through (--out, --output, --history, rejects, parts): never an input, never
    around one, never inside an input directory; with or without --force."""
    out = Path(out)
    target = out.resolve()
    for given in inputs:
        if given is None or not str(given) or ":" in str(given) and not Path(given).exists():  # bbc_news:dev
            continue
        source = Path(given).resolve()
        if target == source or target in source.parents:
            raise InputError(
                f"{flag} {out} would replace the input {given}, which is never overwritten, even with --force. "
                f"Choose another {flag}."
            )
        if source.is_dir() and source in target.parents:
            raise InputError(
                f"{flag} {out} is inside the input {given}, which is never modified, even with --force. "
                f"Choose a path outside it."
            )


@contextlib.contextmanager
def atomic_directory(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory next to `out`; on success, move it into place.

    On any error (or SIGTERM, see `terminate_as_interrupt`) the staging directory is removed and `out` is
    untouched. The new files are fsynced before they become visible. With `force`, an existing `out` is swapped
    with the new one in one atomic step where the OS allows it (Linux renameat2), so `out` is at every moment
    either the old or the new one. Staging directories left by killed processes (kill -9) are swept first.
    """
    out = Path(out)
    check_writable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(out.parent, f".{out.name}.tmp-")
    sweep_stale(out.parent, f".{out.name}.old-")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); the result is an ordinary directory
        yield staging
        fsync_tree(staging)
        if out.exists():
            if not _exchange(staging, out):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
                os.replace(out, old / out.name)
                os.replace(staging, out)
                staging = old
            _fsync_dir(out.parent)
            shutil.rmtree(staging, ignore_errors=True)  # now holds the previous `out`
        else:
            os.replace(staging, out)
            _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file so readers see the old content or the whole new one, never a part: temp file, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def temporary_directory(prefix: str) -> tempfile.TemporaryDirectory:
    """A scratch directory named after this process, with those of dead edgebert processes swept first."""
    sweep_stale(Path(tempfile.gettempdir()), prefix)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def sweep_stale(parent: Path, prefix: str) -> list[Path]:
    """Remove `prefix<pid>-*` directories whose process is gone (killed before it could clean up)."""
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return removed
    for path in candidates:
        pid = path.name[len(prefix) :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(directory))


class Termination:
    received = False  # set once SIGTERM arrived: third-party code may wrap the KeyboardInterrupt in its own error


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[Termination]:
    """Turn SIGTERM into KeyboardInterrupt while a command runs, so cleanup code (staging and temp directories)
    runs on `kill` as it does on Ctrl-C. Only possible in the main thread; elsewhere a no-op."""
    import signal

    state = Termination()

    def handler(signum, frame):
        state.received = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM on this OS
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but not ours, or the OS cannot tell: keep it
    return True


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE). False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0
