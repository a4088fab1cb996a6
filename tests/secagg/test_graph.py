"""The neighbour graph (Harary over a seeded order) and the degree planner."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.fl.secagg import (
    NeighbourGraph,
    SecAggConfig,
    corruption_threshold,
    honest_majority_threshold,
    plan_degree,
)


@settings(max_examples=40, deadline=None)
@given(
    ids=st.sets(st.integers(0, 10**9), min_size=3, max_size=60),
    data=st.data(),
    seed=st.binary(min_size=16, max_size=16),
)
def test_graph_is_regular_symmetric_and_deterministic(
    ids: set[int], data: st.DataObject, seed: bytes
) -> None:
    n = len(ids)
    degree = data.draw(st.sampled_from([k for k in range(2, n, 2)] + [n - 1]))
    graph = NeighbourGraph(sorted(ids), degree, seed)
    again = NeighbourGraph(list(ids), degree, seed)
    for pid in ids:
        neighbours = graph.neighbours(pid)
        assert len(neighbours) == degree
        assert pid not in neighbours
        assert list(neighbours) == sorted(set(neighbours))
        assert again.neighbours(pid) == neighbours
        for other in neighbours:
            assert pid in graph.neighbours(other)
            assert graph.share_index(pid, other) == neighbours.index(other) + 1


def test_graph_depends_on_round_seed_and_dense_is_everyone() -> None:
    ids = list(range(100))
    a = NeighbourGraph(ids, 10, os.urandom(16))
    b = NeighbourGraph(ids, 10, os.urandom(16))
    assert any(a.neighbours(pid) != b.neighbours(pid) for pid in ids)
    dense = NeighbourGraph(ids, 99, b"seed")
    assert dense.dense and dense.neighbours(5) == tuple(i for i in ids if i != 5)


def test_graph_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidInput):
        NeighbourGraph([1], 1, b"")
    with pytest.raises(InvalidInput):
        NeighbourGraph([1, 1, 2], 1, b"")
    with pytest.raises(InvalidInput):
        NeighbourGraph(range(10), 3, b"")  # odd sparse degree
    with pytest.raises(InvalidInput):
        NeighbourGraph(range(10), 10, b"")
    graph = NeighbourGraph(range(10), 4, b"")
    with pytest.raises(InvalidInput):
        graph.neighbours(11)
    outsider = next(pid for pid in range(10) if pid != 0 and pid not in graph.neighbours(0))
    with pytest.raises(InvalidInput):
        graph.share_index(0, outsider)


@pytest.mark.parametrize(
    ("n", "dropout", "expected"),
    [
        (10, 0.3, (8, 5)),
        (100, 0.0, (14, 8)),
        (100, 0.1, (22, 12)),
        (100, 0.3, (60, 31)),
        (500, 0.1, (32, 17)),
        (500, 0.3, (142, 72)),
        (5000, 0.1, (40, 21)),
    ],
)
def test_planned_degrees(n: int, dropout: float, expected: tuple[int, int]) -> None:
    assert plan_degree(n, dropout) == expected


def test_plan_degree_meets_its_failure_bound() -> None:
    n, dropout = 200, 0.2
    k, t = plan_degree(n, dropout)
    dropped = math.ceil(dropout * n)
    fail = sum(
        math.comb(dropped, i) * math.comb(n - 1 - dropped, k - i) for i in range(k - t + 1, k + 1)
    ) / math.comb(n - 1, k)
    assert n * fail <= 2**-20
    smaller = k - 2
    fail_smaller = sum(
        math.comb(dropped, i) * math.comb(n - 1 - dropped, smaller - i)
        for i in range(smaller - smaller // 2, smaller + 1)
    ) / math.comb(n - 1, smaller)
    assert n * fail_smaller > 2**-20


def test_plan_degree_limits() -> None:
    assert plan_degree(5, 0.2) == (4, 3)  # dense; t = 3 of 4 neighbours: one may drop
    with pytest.raises(InvalidInput, match="cannot tolerate"):
        plan_degree(5, 0.4)
    with pytest.raises(InvalidInput):
        plan_degree(1, 0.1)
    with pytest.raises(InvalidInput):
        plan_degree(10, 1.0)


def test_config_validation() -> None:
    config = SecAggConfig.plan(range(10), 4, clip=1.0, max_dropout=0.2)
    assert config.min_survivors == config.threshold + 1
    dense = SecAggConfig.plan(range(10), 4, clip=1.0, dense=True)
    assert (dense.degree, dense.threshold) == (9, 5)
    with pytest.raises(InvalidInput):
        SecAggConfig.plan([3, 1, 2, 2], 4, clip=1.0).__class__(
            participants=(3, 1, 2),
            dimension=4,
            degree=2,
            threshold=2,
            min_survivors=3,
            quantizer=config.quantizer,
        )
    with pytest.raises(InvalidInput, match="min_survivors"):
        SecAggConfig.plan(range(10), 4, clip=1.0, min_survivors=2)
    with pytest.raises(InvalidInput, match="without overflow"):
        SecAggConfig(
            participants=tuple(range(10)),
            dimension=4,
            degree=9,
            threshold=5,
            min_survivors=6,
            quantizer=SecAggConfig.plan(range(2), 4, clip=1.0, dense=True).quantizer,
        )


def _tail(population: int, marked: int, draws: int, at_least: int) -> float:
    return sum(
        math.comb(marked, i) * math.comb(population - marked, draws - i)
        for i in range(at_least, min(marked, draws) + 1)
    ) / math.comb(population, draws)


@pytest.mark.parametrize(
    ("n", "dropout", "corruption", "expected"),
    [
        (100, 0.0, 0.05, (16, 11)),
        (100, 0.1, 0.05, (34, 20)),
        (500, 0.1, 0.05, (90, 57)),
        (50, 0.0, 0.1, (16, 11)),
    ],
)
def test_planned_degrees_with_corrupt_clients(
    n: int, dropout: float, corruption: float, expected: tuple[int, int]
) -> None:
    """The threshold covers the corrupt neighbours a client may have (2t > k + c except
    with probability 2^-40), corrupt clients count as absent for correctness, and the honest
    survivors cannot split into two parts of the ring."""
    k, t = plan_degree(n, dropout, max_corruption=corruption)
    assert (k, t) == expected
    dropped, corrupt = math.ceil(dropout * n), math.ceil(corruption * n)
    c = 2 * t - k - 1  # the most corrupt neighbours this threshold tolerates
    assert c >= 0 and n * _tail(n - 1, corrupt, k, c + 1) <= 2**-40
    assert n * _tail(n - 1, dropped + corrupt, k, k - t + 1) <= 2**-20
    removed = dropped + corrupt
    assert math.comb(n, 2) * math.comb(removed, k) / math.comb(n, k) <= 2**-40
    # and it is the smallest even degree that does all this
    smaller = k - 2
    t_smaller = corruption_threshold(n, smaller, corruption)
    assert (
        t_smaller > smaller
        or n * _tail(n - 1, removed, smaller, smaller - t_smaller + 1) > 2**-20
        or math.comb(n, 2) * math.comb(removed, smaller) / math.comb(n, smaller) > 2**-40
    )


def test_corruption_raises_the_threshold_beyond_an_honest_majority() -> None:
    assert corruption_threshold(100, 14, 0.0) == honest_majority_threshold(14) == 8
    assert corruption_threshold(100, 14, 0.05) > 8
    config = SecAggConfig.plan(range(100), 4, clip=1.0, dense=True, max_corruption=0.05)
    assert config.threshold == corruption_threshold(100, 99, 0.05) > 50
    with pytest.raises(InvalidInput, match="colluding"):
        SecAggConfig.plan(range(100), 4, clip=1.0, degree=8, max_corruption=0.1)
    with pytest.raises(InvalidInput):
        corruption_threshold(10, 4, 1.0)
