"""Write an export into a hidden sibling directory and publish it in one atomic step.

    graphs/<preset>/.float32.staging-<token>/          the export being written
    graphs/<preset>/.float32.staging-<token>.owner     who writes it: host, boot, PID namespace, pid, start time
    graphs/<preset>/float32/                           the published artifact

Publication is one rename when there is no previous artifact, else one
`renameat2(RENAME_EXCHANGE)` that swaps the new directory with the old: at every
moment `float32/` is either the old complete artifact or the new one. The old one
is then at the staging path and is removed, and the owner file last. Where the
exchange is not available (not Linux, or a filesystem without it) the old
artifact is first renamed to `.float32.replaced-<token>` (named in the owner file),
then the new one into place.

Whatever a killed export leaves is named by its owner file. The next export to
the same place removes it, saying so, only when its owner is provably gone (same
host, boot and PID namespace; pid not running, or running a process started
later), and puts a replaced artifact back if none was published. Directories
without an owner file, and those of owners it cannot check, are left alone.
Directories are created with the usual permissions (the process umask applies).
Intermediate files go under `<staging>/.scratch`, removed before publication. While
the block runs, Python's `tempfile` and child processes (TMPDIR) write under
`<staging>/.tmp` too, so files the converters make there are named by the owner file
like the rest: a killed export leaves no `tmp*` directory in the system's TMPDIR.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from export.errors import OutputError

log = logging.getLogger(__name__)

SCRATCH = ".scratch"
TEMP = ".tmp"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a fresh staging directory; publish it as `final` when the block completes.

    OutputError when the destination cannot be written (checked before any work)."""
    token = secrets.token_hex(6)
    staging = final.with_name(f".{final.name}.staging-{token}")
    owner = staging.with_name(staging.name + ".owner")
    record = {**_identity(), "staging": staging.name, "replaced": f".{final.name}.replaced-{token}"}
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final)
        owner.write_text(json.dumps(record))
    except OSError as error:
        raise OutputError(f"Cannot write the export under {final.parent}: {error.strerror or error}.") from None
    try:
        try:
            os.mkdir(staging, 0o777)  # the umask applies, as for any directory the user creates
        except OSError as error:
            raise OutputError(f"Cannot create {staging}: {error.strerror or error}.") from None
        with temporary_files_under(staging / TEMP):
            yield staging
        shutil.rmtree(staging / SCRATCH, ignore_errors=True)
        shutil.rmtree(staging / TEMP, ignore_errors=True)
        publish(staging, final, final.with_name(record["replaced"]))
    except BaseException:
        replaced = final.with_name(record["replaced"])
        if replaced.is_dir() and not final.exists():  # interrupted between the fallback's renames
            os.rename(replaced, final)
        shutil.rmtree(staging, ignore_errors=True)
        owner.unlink(missing_ok=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)  # after an exchange: the previous artifact
    owner.unlink(missing_ok=True)


@contextmanager
def temporary_files_under(directory: Path) -> Iterator[None]:
    """Point `tempfile` and the TMPDIR of child processes at `directory` for the block."""
    directory.mkdir(exist_ok=True)
    saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(directory), str(directory)
    try:
        yield
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


def publish(staging: Path, final: Path, replaced: Path) -> None:
    """Make `staging` the directory at `final`; a previous `final` ends up at `staging`."""
    if not final.exists():
        os.rename(staging, final)
        return
    if exchange(staging, final):
        return
    os.rename(final, replaced)  # no exchange here: the owner file names `replaced`
    os.rename(staging, final)
    os.rename(replaced, staging)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def remove_stale(final: Path) -> None:
    """Clean up after killed exports to `final` (see the module docstring); logs each action."""
    me = _identity()
    for owner in sorted(final.parent.glob(f".{final.name}.staging-*.owner")):
        try:
            record = json.loads(owner.read_text())
            staging, replaced = final.with_name(record["staging"]), final.with_name(record["replaced"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("leaving %s: not a readable export owner record", owner)
            continue
        gone = _owner_gone(record, me)
        if gone is None:
            log.warning("leaving %s: its export ran on another host or PID namespace", staging)
            continue
        if not gone:
            continue  # a live export
        if replaced.is_dir() and not final.exists():
            os.rename(replaced, final)
            log.warning("restored %s: an export was killed while replacing it", final)
        for path in (staging, replaced):
            if path.exists():
                log.warning("removing %s, left by export pid %s (no longer running)", path, record.get("pid"))
                shutil.rmtree(path, ignore_errors=True)
        owner.unlink(missing_ok=True)


def _identity(pid: int | None = None) -> dict:
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": _namespace(), "pid": pid, "started": _start_time(pid)}


def _owner_gone(record: dict, me: dict) -> bool | None:
    """True when the owner process is provably gone, False when it runs, None when unknowable
    (`me`: this process's identity)."""
    if record.get("host") != me["host"] or record.get("pid_namespace") != me["pid_namespace"]:
        return None
    if record.get("boot") != me["boot"]:
        return True  # rebooted since
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    started = _start_time(pid)
    return started is None or started != record.get("started")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if it
    does not exist. Where /proc is missing, whether the pid exists, as a string."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is not None:
        return stat.rsplit(")", 1)[1].split()[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "running" if not Path("/proc").is_dir() else None


def _namespace() -> str | None:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None
