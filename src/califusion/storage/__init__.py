"""Storage layer: blob stores (content-addressed ciphertext)."""

from califusion.storage.blobs import BlobStore, check_digest, digest_of
from califusion.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "check_digest", "digest_of"]
