"""The consistency check: no client unmasks unless a majority signed the same survivor set.

Why it is needed. In the unmask stage an honest client reveals, for each neighbour, its share of
the self-mask seed b_v (v survived) or of the pairwise-mask key s_v (v dropped), never both.
That rule is per client. A server that lies to different clients can still collect both
secrets of one victim u across clients: it tells u's neighbours "u survived" (they reveal
shares of b_u) and tells the neighbours of each v ∈ N(u) "v dropped" (they reveal shares of
s_v). With b_u and every s_v it strips all of y_u's masks and reads u's input, with no corrupt
client involved (``tests/secagg/test_security.py``).

The fix (Bonawitz et al. 2017, ConsistencyCheck of the active-adversary protocol). After the
masked-input stage the server announces the survivor set U3 and the dropped set U2 − U3
(:class:`~califusion.fl.secagg.messages.ConsistencyCheck`). Each survivor signs, with its
Ed25519 identity key, the round id (which binds job, round and attempt) and the digest of the
sets (:func:`~califusion.fl.secagg.messages.survivor_view`), and signs only one view per round.
The server forwards the signatures with the unmask request; before revealing anything a client
checks that the request repeats exactly the sets it signed and carries at least
T = ⌊(n + C)/2⌋ + 1 valid signatures over them from distinct survivors
(:func:`check_certificate`), n the round's participants and C = ⌈γn⌉ the clients that may
collude with the server (``max_corruption``; 0 by default).

Why it works. Two different views certified by T signers each share at least 2T − n > C
signers, so some honest client signed both — which none does. Hence every honest client that
reveals anything holds the same (U3, dropped): for each peer, every honest holder reveals the
same one of its two secrets, and the server learns both of a client's secrets only from
corrupt neighbours, which the Shamir threshold t already covers (``graph.py``). With one agreed
set the server also cannot split the sum by claiming dropouts: every client checks the signed
set itself (:func:`check_recoverable`) — each client of U2 keeps at least t neighbours in U3,
which on the Harary ring (t > k/2) also keeps U3 connected — so a server that claims a run of
k/2 dropouts to isolate the clients between two runs is refused by everyone.

Why one global set, not one per neighbourhood. The attack crosses neighbourhoods: shares of b_u
sit in N(u), shares of s_v in N(v), and neither neighbourhood holds a majority of the other, so
per-neighbourhood majorities can each be honest and still disagree about u and v. A global set
needs no such argument, the unmask request already carries it, and it lets each client check
the whole set's recoverability. Its cost is O(n) per client: the server forwards T signatures
(64 bytes and one Ed25519 verification, ~85 µs, each: about 4 ms at n = 100), no vector work.
T counts the n participants of the round, not the U1 that advertised keys, because U1 is only
the server's word: a server could tell two groups different U1s and get a "majority" of each.
So the round needs more than half of its participants (plus C/2) to reach this stage — which
the planned dropout bound (δ < 1/2) already implies.

Dropouts during this stage are survivors that do not sign: their inputs stay in the sum (their
self masks are removed as for any survivor), the unmask request goes to the signers only, and
the round aborts — revealing nothing — if fewer than T signed or a client that shared keys no
longer has t signing neighbours to reveal its secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.fl.secagg.config import SecAggConfig, Stage
from califusion.fl.secagg.errors import ProtocolViolation, SecAggAborted, WrongRound
from califusion.fl.secagg.graph import NeighbourGraph
from califusion.fl.secagg.messages import ConsistencySignature, survivor_view, verify


def check_certificate(
    config: SecAggConfig,
    round_id: bytes,
    survivors: frozenset[int],
    dropped: frozenset[int],
    signatures: Iterable[ConsistencySignature],
    *,
    identities: Mapping[int, Ed25519PublicKey],
) -> frozenset[int]:
    """The signers, if ``signatures`` certify (``survivors``, ``dropped``); raises otherwise.

    Every signature must be valid, over exactly these sets, from a distinct survivor: a forged,
    duplicated or other-set signature means the server is lying, so it is refused outright
    rather than skipped. Fewer than ``config.consistency_threshold`` signers is an abort.
    """
    view = survivor_view(survivors, dropped)
    signers: set[int] = set()
    for signed in signatures:
        who = signed.sender
        if signed.round_id != round_id:
            raise WrongRound(f"client {who}'s survivor-set signature is for another round")
        if who in signers:
            raise ProtocolViolation(f"client {who}'s survivor-set signature appears twice")
        if who not in survivors:
            raise ProtocolViolation(f"client {who} signed the survivor set but is not in it")
        if not hmac.compare_digest(signed.view, view):
            raise ProtocolViolation(f"client {who} signed another survivor set than this one")
        identity = identities.get(who)
        if identity is None:
            raise ProtocolViolation(f"no identity key is known for client {who}")
        verify(signed, identity)
        signers.add(who)
    required = config.consistency_threshold
    if len(signers) < required:
        raise SecAggAborted(
            str(Stage.CONSISTENCY_CHECK),
            f"only {len(signers)} clients signed the survivor set, {required} needed; "
            f"revealing nothing",
            signers=len(signers),
            required=required,
        )
    return frozenset(signers)


def check_recoverable(
    config: SecAggConfig,
    graph: NeighbourGraph,
    stage: Stage,
    owners: Iterable[int],
    holders: frozenset[int] | set[int],
) -> None:
    """Abort unless each of ``owners`` keeps t neighbours among ``holders``.

    The server runs it on its own sets; a client runs it on the announced ones, so a server
    that claims dropouts which would leave part of the survivors unconnected (and their sum
    readable apart from the rest) is refused.

    Counted from the absent side: the graph is undirected, so each participant that is not a
    holder costs each of its neighbours one, O(k) per absentee instead of O(k) per owner —
    every client runs this on the announced sets, so at n = 100 that had been most of its
    Python work."""
    threshold = config.threshold
    lost: dict[int, int] = {}
    for absent in graph.participants:
        if absent not in holders:
            for peer in graph.neighbours(absent):
                lost[peer] = lost.get(peer, 0) + 1
    outsiders = set(owners).difference(graph.participants)
    if outsiders:
        raise ProtocolViolation(f"clients {sorted(outsiders)[:5]} are not in this round")
    for owner in sorted(owners):
        available = graph.degree - lost.get(owner, 0)  # the graph is regular
        if available < threshold:
            raise SecAggAborted(
                str(stage),
                f"client {owner} has {available} neighbours left to reveal its shares, "
                f"{threshold} needed",
                client=owner,
                available=available,
                required=threshold,
            )
