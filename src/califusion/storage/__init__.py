"""Storage layer: blob stores (content-addressed ciphertext).

``open_blob_store`` builds the configured backend: a local folder, or an S3 bucket
(:class:`califusion.storage.s3.S3BlobStore`, imported on demand so boto3 loads only when used).
"""

from califusion.storage.blobs import BlobStore, check_digest, digest_of
from califusion.storage.factory import open_blob_store, parse_s3_url
from califusion.storage.local import LocalBlobStore

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "check_digest",
    "digest_of",
    "open_blob_store",
    "parse_s3_url",
]
