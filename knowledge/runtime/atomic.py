"""The one way this project writes a file or a directory that another thread or process may read meanwhile:
into a temporary sibling, then renamed into place, so a reader sees the old version or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (bytes as they are, text as UTF-8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_array(path: Path, array: "np.ndarray") -> None:
    """A cached array (``.npy``), written atomically; failing to write it is not an error (it is computed again)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    with contextlib.suppress(OSError):
        atomic_write(path, buffer.getvalue())


def load_array(path: Path | None) -> "np.ndarray | None":
    """A cached array written by ``save_array``, or None when there is none (or it cannot be read)."""
    import numpy as np

    if path is None:
        return None
    try:
        return np.load(path)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; when the block ends without an error it replaces
    ``target`` (the previous one, if any, is moved aside and then removed); on an error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
