"""crypto layer: identities, envelopes, signed requests, keystores and symmetric encryption.

The recipes here are the only way the rest of the project touches cryptography:

- ``Identity`` / ``PublicIdentity``: Ed25519 signing + X25519 agreement keys, ICP principals.
- ``seal`` / ``open_envelope`` / ``wrap_key`` / ``unwrap_key``: public-key envelopes bound to a
  ``context``.
- ``new_job_key`` / ``encrypt`` / ``decrypt``: AES-256-GCM under a job key, bound to a context.
- ``sign_request`` / ``verify_request``: authenticated HTTP requests with replay protection.
- ``save_keystore`` / ``load_keystore`` / ``read_public``: passphrase-protected keys at rest.
- ``b64e`` / ``b64d``: the unpadded base64url text form of every binary value.
"""

from califusion.crypto.context import context, context_digest
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.envelope import (
    agreement_key_id,
    open_envelope,
    seal,
    unwrap_key,
    wrap_key,
)
from califusion.crypto.identity import Identity, PublicIdentity
from califusion.crypto.keystore import (
    KeystoreInfo,
    load_keystore,
    read_keystore_info,
    read_public,
    save_keystore,
)
from califusion.crypto.principal import Account, Principal
from califusion.crypto.signing import (
    MemoryNonceStore,
    NonceStore,
    SignedRequest,
    canonical_request,
    parse_signed_headers,
    sign_request,
    verify_request,
)
from califusion.crypto.symmetric import decrypt, encrypt, new_job_key

__all__ = [
    "Account",
    "Identity",
    "KeystoreInfo",
    "MemoryNonceStore",
    "NonceStore",
    "Principal",
    "PublicIdentity",
    "SignedRequest",
    "agreement_key_id",
    "b64d",
    "b64e",
    "canonical_request",
    "context",
    "context_digest",
    "decrypt",
    "encrypt",
    "load_keystore",
    "new_job_key",
    "open_envelope",
    "parse_signed_headers",
    "read_keystore_info",
    "read_public",
    "save_keystore",
    "seal",
    "sign_request",
    "unwrap_key",
    "verify_request",
    "wrap_key",
]
