"""The neighbour graph of SecAgg+ and the choice of its degree.

Bell et al. (2020) replace Bonawitz et al.'s all-to-all key sharing by a sparse graph: each
client shares its secrets with, and masks against, only k = O(log n) neighbours. As in their
paper the graph is a Harary graph H(n, k) — clients on a ring, each joined to the k/2 nearest
on either side — over a pseudo-random ordering of the clients. The ordering sorts participants
by SHA-256(round seed ‖ id), so every client and the server derive the same graph from the
round id alone, with no randomness API whose stream could change between library versions.
``degree = n − 1`` is the dense (Bonawitz) graph.

Choosing k and t (after Bell et al. 2020). A client's secrets are Shamir-shared among its k
neighbours with threshold t. Three conditions, each a union bound over the n clients of an exact
hypergeometric tail (the seeded ring order makes a neighbourhood a uniformly random k-subset;
D = ⌈δn⌉ dropouts, C = ⌈γn⌉ corrupt clients):

* privacy of each client's two secrets: honest neighbours reveal only one of them per peer,
  so a server with c corrupt neighbours of a client gets both only if k + c ≥ 2t. With c the
  most corrupt neighbours any client has except with probability 2^−security_bits (40),
  t = ⌊(k + c)/2⌋ + 1 — for γ = 0 the honest majority ⌊k/2⌋ + 1;
* correctness: the round fails if some client keeps fewer than t responding neighbours;
  dropouts and corrupt clients (who may withhold shares) count against it, at most
  2^−failure_bits (20: a failed round is retried);
* connectivity: with γ > 0 the honest survivors must stay one component, or the server learns
  the sum of a small part. On the ring that takes two runs of k/2 consecutive removed
  (dropped or corrupt) clients, so C(n, 2) · P[k given clients all removed] ≤ 2^−security_bits.
  With γ = 0 it needs no term: a run of k/2 clients that really dropped leaves the clients
  beside it k/2 < t neighbours to answer for them, so the round aborts
  (``SecAggServer._check_recoverable``) before any disconnected sum can be unmasked. (A
  server that *claims* dropouts inconsistently is stopped by the consistency check of
  ``consistency.py``, whose majority is :func:`consistency_threshold`; a server that claims a
  run of dropouts consistently is refused by every client, which checks the signed set's
  recoverability itself.)

:func:`plan_degree` picks the smallest even k ≥ 2⌈log2 n⌉ meeting all three, or the dense
graph. For γ = 0, δ = 0.1: n = 100 → k = 22, n = 500 → 32; δ = 0.3: n = 100 → 60, n = 500 → 142.
The 2⌈log2 n⌉ floor binds only for δ ≈ 0 and γ = 0 (n = 50 → 12, n = 100 → 14), where the
conditions alone allow k = 2: it is a margin for an unconfigured corruption rate, not one of
Bell et al.'s bounds, and with t = ⌊k/2⌋ + 1 it does not stop two corrupt neighbours — pass
``max_corruption`` for that (γ = 0.05: n = 100, δ = 0 → k = 16, t = 11).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import cached_property

from califusion.core.errors import InvalidInput


class NeighbourGraph:
    """Who shares with and masks against whom in one round."""

    def __init__(self, participants: Sequence[int], degree: int, seed: bytes) -> None:
        n = len(participants)
        if n < 2 or len(set(participants)) != n:
            raise InvalidInput("a neighbour graph needs at least two distinct participants")
        if not 1 <= degree <= n - 1:
            raise InvalidInput(f"degree must be in 1..{n - 1}, got {degree}")
        if degree < n - 1 and degree % 2:
            raise InvalidInput(f"a sparse (Harary) graph has even degree, got {degree}")
        self.participants = tuple(sorted(participants))
        self.degree = degree
        self._seed = bytes(seed)
        self._cache: dict[int, tuple[int, ...]] = {}

    @property
    def dense(self) -> bool:
        return self.degree == len(self.participants) - 1

    @cached_property
    def _ring(self) -> tuple[list[int], dict[int, int]]:
        """The seeded order, written out three times so a window never wraps around."""
        order = sorted(
            self.participants,
            key=lambda pid: hashlib.sha256(
                b"califusion/secagg/graph/v1" + self._seed + pid.to_bytes(8, "big")
            ).digest(),
        )
        return order * 3, {pid: position for position, pid in enumerate(order)}

    def neighbours(self, client: int) -> tuple[int, ...]:
        """The sorted neighbours of ``client`` (never itself)."""
        cached = self._cache.get(client)
        if cached is not None:
            return cached
        ring, position = self._ring
        if client not in position:
            raise InvalidInput(f"client {client} is not a participant of this round")
        if self.dense:
            result = tuple(pid for pid in self.participants if pid != client)
        else:
            n, half = len(self.participants), self.degree // 2
            here = position[client] + n
            result = tuple(sorted(ring[here - half : here] + ring[here + 1 : here + half + 1]))
        self._cache[client] = result
        return result

    def share_index(self, owner: int, holder: int) -> int:
        """The Shamir x-coordinate of ``owner``'s share held by ``holder`` (1-based)."""
        neighbours = self.neighbours(owner)
        try:
            return neighbours.index(holder) + 1
        except ValueError:
            raise InvalidInput(f"client {holder} is not a neighbour of {owner}") from None


def honest_majority_threshold(degree: int) -> int:
    """t = ⌊k/2⌋ + 1: more than half of each neighbourhood must cooperate to reconstruct."""
    return degree // 2 + 1


def corruption_threshold(
    n: int, degree: int, max_corruption: float, *, security_bits: int = 40
) -> int:
    """t = ⌊(k + c)/2⌋ + 1, c the most corrupt neighbours a client has (but with probability
    2^−security_bits, union bound over n); the honest majority when ``max_corruption`` is 0.
    May exceed ``degree``: then no threshold is safe at this degree."""
    if not 0.0 <= max_corruption < 1.0:
        raise InvalidInput(f"max_corruption is a fraction in [0, 1), got {max_corruption}")
    corrupt = math.ceil(max_corruption * n - 1e-9)
    bound = min(corrupt, degree)
    c = 0
    while (
        c < bound and n * _hypergeometric_tail(n - 1, corrupt, degree, c + 1) > 2.0**-security_bits
    ):
        c += 1
    return (degree + c) // 2 + 1


def consistency_threshold(n: int, max_corruption: float = 0.0) -> int:
    """T = ⌊(n + C)/2⌋ + 1 signatures over one survivor set, C = ⌈γn⌉ corrupt clients.

    Two different sets each signed by T of the n participants share at least 2T − n > C
    signers, more than the corrupt clients, so one honest client would have signed both —
    which it never does (``consistency.py``)."""
    if not 0.0 <= max_corruption < 1.0:
        raise InvalidInput(f"max_corruption is a fraction in [0, 1), got {max_corruption}")
    corrupt = math.ceil(max_corruption * n - 1e-9)
    return (n + corrupt) // 2 + 1


def plan_degree(
    n: int,
    max_dropout: float,
    *,
    failure_bits: int = 20,
    max_corruption: float = 0.0,
    security_bits: int = 40,
) -> tuple[int, int]:
    """(k, t) for ``n`` clients tolerating a fraction ``max_dropout`` of dropouts and a
    fraction ``max_corruption`` of clients colluding with the server (see the module notes).

    Raises if even the dense graph cannot meet the conditions (an honest-majority threshold
    needs fewer than half of the clients to drop).
    """
    if n < 2:
        raise InvalidInput("secure aggregation needs at least two clients")
    if not 0.0 <= max_dropout < 1.0:
        raise InvalidInput(f"max_dropout is a fraction in [0, 1), got {max_dropout}")
    dropped = math.ceil(max_dropout * n - 1e-9)  # 0.7 * 10 is 7.000000000000001
    corrupt = math.ceil(max_corruption * n - 1e-9)
    absent = min(n - 1, dropped + corrupt)  # corrupt clients may withhold their shares
    floor = min(n - 1, 2 * math.ceil(math.log2(n)))
    for degree in range(floor + floor % 2, n - 1, 2):
        threshold = corruption_threshold(n, degree, max_corruption, security_bits=security_bits)
        if threshold > degree:
            continue
        tail = _hypergeometric_tail(n - 1, absent, degree, degree - threshold + 1)
        if n * tail > 2.0**-failure_bits:
            continue
        if corrupt and _split_probability(n, dropped + corrupt, degree) > 2.0**-security_bits:
            continue
        return degree, threshold
    degree = n - 1
    threshold = corruption_threshold(n, degree, max_corruption, security_bits=security_bits)
    if degree - absent < threshold:
        raise InvalidInput(
            f"{n} clients cannot tolerate {dropped} dropouts and {corrupt} corrupt clients "
            f"with a threshold of {threshold}: at most {max(degree - threshold, 0)} may be absent"
        )
    return degree, threshold


def _split_probability(n: int, removed: int, degree: int) -> float:
    """Union bound on the ring splitting: two runs of ``degree``/2 consecutive clients (k
    given clients) all among the ``removed``."""
    if removed < degree:
        return 0.0
    return math.comb(n, 2) * math.comb(removed, degree) / math.comb(n, degree)


def _hypergeometric_tail(population: int, marked: int, draws: int, at_least: int) -> float:
    """P[X >= at_least] for X the marked items among ``draws`` drawn without replacement."""
    total = math.comb(population, draws)
    upper = min(marked, draws)
    favourable = sum(
        math.comb(marked, i) * math.comb(population - marked, draws - i)
        for i in range(max(at_least, 0), upper + 1)
    )
    return favourable / total
