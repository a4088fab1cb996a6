"""The server's last step: from revealed shares to the streams that remove the masks.

Survivors revealed shares of each survivor's self-mask secret b_u and of each dropped client's
pairwise-mask key s_v^SK. All of them are reconstructed in one batched Shamir pass
(``crypto.shamir.combine_many``), each checked before it is used — b_u against the client's
commitment, s_v^SK against the mask key the client advertised — so a bad share aborts the
round instead of corrupting the sum. The sum then loses every survivor's self mask and, for
each dropped client v, the pairwise masks its surviving neighbours added with it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from califusion.crypto.fastsig import InvalidAgreement, x25519_public
from califusion.crypto.shamir import Share, combine_many
from califusion.fl.secagg._keys import commit_self_mask, pairwise_seed, self_mask_seed
from califusion.fl.secagg.config import SecAggConfig, Stage
from califusion.fl.secagg.errors import SecAggAborted
from califusion.fl.secagg.graph import NeighbourGraph


def unmasking_streams(
    config: SecAggConfig,
    graph: NeighbourGraph,
    round_id: bytes,
    *,
    survivors: AbstractSet[int],
    dropped: AbstractSet[int],
    self_mask_shares: Mapping[int, list[Share]],
    key_shares: Mapping[int, list[Share]],
    self_mask_commitments: Mapping[int, bytes],
    mask_publics: Mapping[int, bytes],
    responders: int,
) -> tuple[list[bytes], list[bytes]]:
    """The seeds to add and to subtract from the survivors' masked sum to unmask it.

    Raises :class:`SecAggAborted` if fewer than t shares of a secret arrived or a
    reconstructed secret does not match what its client committed to.
    """
    threshold = config.threshold
    owners = sorted(survivors) + sorted(dropped)
    share_sets: list[list[Share]] = []
    for owner in owners:
        shares = (self_mask_shares if owner in survivors else key_shares).get(owner, [])
        if len(shares) < threshold:
            raise SecAggAborted(
                str(Stage.UNMASK),
                f"{len(shares)} shares of client {owner}'s secret arrived, {threshold} needed",
                client=owner,
                available=len(shares),
                required=threshold,
                responders=responders,
            )
        share_sets.append(shares)
    secrets = dict(zip(owners, combine_many(share_sets, threshold), strict=True))
    add: list[bytes] = []
    subtract: list[bytes] = []
    for owner in sorted(survivors):
        commitment = commit_self_mask(secrets[owner], round_id, owner)
        if not hmac.compare_digest(commitment, self_mask_commitments[owner]):
            raise SecAggAborted(
                str(Stage.UNMASK), f"a bad share corrupted client {owner}'s self mask"
            )
        subtract.append(self_mask_seed(secrets[owner], round_id, owner))
    for owner in sorted(dropped):
        mask_key = secrets[owner]
        try:
            derived = x25519_public(mask_key)
        except InvalidAgreement:
            derived = b""
        if not hmac.compare_digest(derived, mask_publics[owner]):
            raise SecAggAborted(
                str(Stage.UNMASK), f"a bad share corrupted client {owner}'s mask key"
            )
        for peer in graph.neighbours(owner):
            if peer in survivors:
                seed = pairwise_seed(mask_key, mask_publics[peer], round_id, owner, peer)
                # The survivor added +PRG(s) if owner < peer, and -PRG(s) otherwise.
                (subtract if owner < peer else add).append(seed)
    return add, subtract
