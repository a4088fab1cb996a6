"""A blob store in a local folder: ``<root>/<first 2 hex>/<next 2 hex>/<digest>``."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from califusion.core.errors import CaliFusionError, NotFound, Unavailable
from califusion.storage.blobs import check_digest, digest_of

log = logging.getLogger(__name__)


class LocalBlobStore:
    """Blobs as files. Writes go to a temporary file first and are renamed into place, so a
    reader never sees half a blob and a crash leaves at most a stray file in ``<root>/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"blob folder {root} cannot be created ({exc.strerror})") from exc

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        path = self._path(digest)
        if path.exists():
            return digest
        tmp = self._tmp / f"{digest}.{secrets.token_hex(8)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise Unavailable(f"blob could not be written ({exc.strerror})") from exc
        log.info("blob stored", extra={"digest": digest, "size": len(data)})
        return digest

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {digest}") from exc
        except OSError as exc:
            raise Unavailable(f"blob {digest} could not be read ({exc.strerror})") from exc
        if not hmac.compare_digest(digest_of(data), digest):
            log.error("blob corrupt", extra={"digest": digest})
            raise CaliFusionError(f"stored blob {digest} is corrupt")
        return data

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {digest}") from exc
