"""The neighbour graph of SecAgg+ and the choice of its degree.

Bell et al. (2020) replace Bonawitz et al.'s all-to-all key sharing by a sparse graph: each
client shares its secrets with, and masks against, only k = O(log n) neighbours. As in their
paper the graph is a Harary graph H(n, k) — clients on a ring, each joined to the k/2 nearest
on either side — over a pseudo-random ordering of the clients. The ordering sorts participants
by SHA-256(round seed ‖ id), so every client and the server derive the same graph from the
round id alone, with no randomness API whose stream could change between library versions.
``degree = n − 1`` is the dense (Bonawitz) graph.

Choosing k. A client's secrets are Shamir-shared among its k neighbours with threshold t; the
round fails if, for some client, fewer than t neighbours survive. With t = ⌊k/2⌋ + 1 (an honest
majority of each neighbourhood, so a server that lies about who dropped cannot collect both
secrets of a client from disjoint groups), :func:`plan_degree` picks the smallest even
k ≥ 2⌈log2 n⌉ whose failure probability, by a union bound over the n clients of the exact
hypergeometric tail (D = ⌈δn⌉ dropouts placed at random), is below 2^−failure_bits; if none
does, the dense graph. For δ = 0.1: n = 100 → k = 22, n = 500 → 32, n = 5000 → 40; for
δ = 0.3: n = 100 → 60, n = 500 → 142 (failure_bits = 20, a failed round being retried).
The 2⌈log2 n⌉ floor is a heuristic stand-in for Bell et al.'s connectivity bound against
colluding clients, not their exact constant.
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


def plan_degree(n: int, max_dropout: float, *, failure_bits: int = 20) -> tuple[int, int]:
    """(k, t) for ``n`` clients tolerating a fraction ``max_dropout`` of dropouts.

    Raises if even the dense graph cannot tolerate that many dropouts with an honest-majority
    threshold (which needs fewer than half of the clients to drop).
    """
    if n < 2:
        raise InvalidInput("secure aggregation needs at least two clients")
    if not 0.0 <= max_dropout < 1.0:
        raise InvalidInput(f"max_dropout is a fraction in [0, 1), got {max_dropout}")
    dropped = math.ceil(max_dropout * n - 1e-9)  # 0.7 * 10 is 7.000000000000001
    floor = min(n - 1, 2 * math.ceil(math.log2(n)))
    for degree in range(floor + floor % 2, n - 1, 2):
        threshold = honest_majority_threshold(degree)
        tail = _hypergeometric_tail(n - 1, dropped, degree, degree - threshold + 1)
        if n * tail <= 2.0**-failure_bits:
            return degree, threshold
    degree = n - 1
    threshold = honest_majority_threshold(degree)
    if degree - dropped < threshold:
        raise InvalidInput(
            f"{n} clients cannot tolerate {dropped} dropouts with an honest-majority "
            f"threshold: at most {degree - threshold} may drop"
        )
    return degree, threshold


def _hypergeometric_tail(population: int, marked: int, draws: int, at_least: int) -> float:
    """P[X >= at_least] for X the marked items among ``draws`` drawn without replacement."""
    total = math.comb(population, draws)
    upper = min(marked, draws)
    favourable = sum(
        math.comb(marked, i) * math.comb(population - marked, draws - i)
        for i in range(max(at_least, 0), upper + 1)
    )
    return favourable / total
