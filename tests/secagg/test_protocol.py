"""SecAgg+ rounds end to end: exact sums with dropouts at every stage, aborts, dense/sparse."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput, WeightsError
from califusion.crypto.prg import accumulate
from califusion.fl.secagg import (
    AdvertiseKeys,
    ConsistencyCheck,
    SecAggAborted,
    SecAggConfig,
    SecAggServer,
    Stage,
    UnmaskRequest,
    remove_pad,
    simulate_round,
)
from califusion.fl.secagg._keys import pairwise_seed
from califusion.fl.secagg.quantize import Quantizer

from .harness import Harness, expected_total, identity, updates_for

STAGES = [
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT,
    Stage.CONSISTENCY_CHECK,
    Stage.UNMASK,
]
# Who sent a masked input counts, even if it went silent afterwards.
_CONTRIBUTE = (None, Stage.CONSISTENCY_CHECK, Stage.UNMASK)


def scattered_dropouts(participants: tuple[int, ...], count: int, seed: int) -> dict[int, Stage]:
    """``count`` clients, each dropping at one of the five stages in turn."""
    chosen = random.Random(seed).sample(list(participants), count)
    return {pid: STAGES[i % len(STAGES)] for i, pid in enumerate(chosen)}


def run_and_check(
    config: SecAggConfig, dropouts: dict[int, Stage], pad_key: bytes | None = None
) -> None:
    updates = updates_for(config)
    round_id = os.urandom(16)
    keys = {pid: identity(pid) for pid in config.participants}
    trace = simulate_round(
        config, updates, round_id=round_id, identities=keys, dropouts=dropouts, pad_key=pad_key
    )
    result = trace.result
    expected_contributors = {pid for pid in config.participants if dropouts.get(pid) in _CONTRIBUTE}
    assert result.contributors == expected_contributors
    total = result.total
    if pad_key is not None:
        assert not np.array_equal(total, expected_total(config, updates, result.contributors))
        total = remove_pad(total, pad_key, round_id, result.contributors)
    assert np.array_equal(total, expected_total(config, updates, result.contributors))
    approx = config.quantizer.dequantize_sum(total, len(result.contributors))
    clip = config.quantizer.clip
    plain = sum(
        np.clip(updates[pid].astype(np.float64), -clip, clip) for pid in result.contributors
    )
    bound = config.quantizer.error_bound(len(result.contributors))
    assert np.abs(approx - plain).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("n", [3, 10, 50, 200])
@pytest.mark.parametrize("dropout", [0.0, 0.1, 0.3])
def test_exact_sum_with_dropouts(n: int, dropout: float) -> None:
    dropped = int(dropout * n)
    dimension = {3: 1000, 10: 1000, 50: 64, 200: 8}[n]
    config = SecAggConfig.plan(range(n), dimension, clip=2.0, max_dropout=dropped / n)
    run_and_check(config, scattered_dropouts(config.participants, dropped, seed=n))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("dense", [False, True])
def test_dropouts_at_each_stage(stage: Stage, dense: bool) -> None:
    config = SecAggConfig.plan(range(30), 100, clip=1.0, max_dropout=0.2, dense=dense)
    dropped = random.Random(str(stage)).sample(range(30), 5)
    run_and_check(config, dict.fromkeys(dropped, stage))


def test_dense_and_sparse_agree() -> None:
    ids = [3, 17, 18, 40, 41, 99, 1000, 2**40, 7, 8, 9, 10, 11, 12, 13, 14]
    dropouts = {
        17: Stage.SHARE_KEYS,
        2**40: Stage.MASKED_INPUT,
        12: Stage.CONSISTENCY_CHECK,
        9: Stage.UNMASK,
    }
    for dense in (False, True):
        config = SecAggConfig.plan(ids, 257, clip=1.0, max_dropout=0.2, dense=dense)
        assert (config.degree == 15) == dense
        run_and_check(config, dropouts)


def test_blind_mode_pad_hides_sum_until_removed() -> None:
    config = SecAggConfig.plan(range(12), 300, clip=1.0, max_dropout=0.2)
    run_and_check(config, {4: Stage.MASKED_INPUT, 5: Stage.UNMASK}, pad_key=os.urandom(32))


def test_modulus_2_64() -> None:
    config = SecAggConfig.plan(range(9), 200, clip=1.0, max_dropout=0.1, modulus_bits=64)
    assert config.dtype == np.uint64 and config.quantizer.bits == 52
    run_and_check(config, {2: Stage.MASKED_INPUT})


def test_stochastic_rounding_round_is_within_bound() -> None:
    config = SecAggConfig.plan(range(8), 500, clip=1.0, max_dropout=0.1, stochastic=True)
    updates = updates_for(config)
    result = simulate_round(config, updates, round_id=os.urandom(16)).result
    approx = config.quantizer.dequantize_sum(result.total, 8)
    plain = sum(np.clip(u.astype(np.float64), -1.0, 1.0) for u in updates.values())
    assert np.abs(approx - plain).max() <= config.quantizer.error_bound(8) * (1 + 1e-6)


@pytest.mark.parametrize("silenced", [3, 4])
def test_neighbourhood_threshold_boundary(silenced: int) -> None:
    """With k = 8, t = 5 a client keeps going with 5 neighbours and is excluded with 4.

    Excluding one client is rarely the end of it: its ring neighbours lost nearly the same
    clients plus it, so the exclusion cascades and the round aborts before anything is shared.
    """
    ids = tuple(range(40))
    config = SecAggConfig(
        participants=ids,
        dimension=50,
        degree=8,
        threshold=5,
        min_survivors=6,
        quantizer=Quantizer.for_clients(40, 1.0),
    )
    round_id = os.urandom(16)
    silent = config.graph(round_id).neighbours(0)[:silenced]
    updates = updates_for(config)
    dropouts = dict.fromkeys(silent, Stage.ADVERTISE_KEYS)
    if silenced == 3:
        result = simulate_round(config, updates, round_id=round_id, dropouts=dropouts).result
        assert result.contributors == set(ids) - set(silent)
        assert np.array_equal(result.total, expected_total(config, updates, result.contributors))
    else:
        with pytest.raises(SecAggAborted, match="advertise-keys"):
            simulate_round(config, updates, round_id=round_id, dropouts=dropouts)


@pytest.mark.parametrize("stage", STAGES)
def test_abort_below_threshold_reveals_nothing(stage: Stage) -> None:
    config = SecAggConfig.plan(range(10), 16, clip=1.0, dense=True, min_survivors=6)
    harness = Harness(config)
    silent = set(range(5))
    with pytest.raises(SecAggAborted) as caught:
        messages = harness.advertise(silent if stage is Stage.ADVERTISE_KEYS else ())
        messages = harness.step(messages, silent if stage is Stage.SHARE_KEYS else ())
        messages = harness.step(messages, silent if stage is Stage.MASKED_INPUT else ())
        assert all(isinstance(m, ConsistencyCheck) for m in messages)
        messages = harness.step(messages, silent if stage is Stage.CONSISTENCY_CHECK else ())
        assert all(isinstance(m, UnmaskRequest) for m in messages)
        harness.step(messages, silent if stage is Stage.UNMASK else ())
    error = caught.value
    assert error.stage == str(stage)
    assert error.problem()["status"] == 409
    if stage is Stage.UNMASK:
        assert error.counts["available"] < error.counts["required"] == config.threshold
    elif stage is Stage.CONSISTENCY_CHECK:
        assert config.consistency_threshold == 6
        assert error.counts == {"signers": 5, "required": 6, "survivors": 10}
    else:
        assert error.counts == {"remaining": 5, "required": 6, "participants": 10}
    assert harness.server.stage is Stage.ABORTED
    with pytest.raises(SecAggAborted):
        _ = harness.server.result
    with pytest.raises(SecAggAborted):
        harness.server.receive(AdvertiseKeys(harness.round_id, 9, bytes(32), bytes(32)), 0.0)
    if stage is not Stage.UNMASK:
        # Nobody was asked to unmask: every client is still before its last stage.
        assert all(c.stage is not Stage.DONE for c in harness.clients.values())


def test_sparse_neighbourhood_failure_aborts_with_counts() -> None:
    ids = tuple(range(16))
    config = SecAggConfig(
        participants=ids,
        dimension=8,
        degree=4,
        threshold=3,
        min_survivors=4,
        quantizer=Quantizer.for_clients(16, 1.0),
    )
    harness = Harness(config)
    victim = 0
    neighbours = config.graph(harness.round_id).neighbours(victim)
    messages = harness.step(harness.advertise(), ())
    # Two of the victim's four neighbours never send their masked input.
    with pytest.raises(SecAggAborted) as caught:
        harness.step(messages, silent=neighbours[:2])
    assert caught.value.stage == "masked-input"
    assert caught.value.counts["required"] == 3


@settings(max_examples=15, deadline=None)
@given(
    ids=st.sets(st.integers(0, 2**40), min_size=3, max_size=9),
    dense=st.booleans(),
    dimension=st.integers(1, 300),
)
def test_masks_cancel_in_full_rounds(ids: set[int], dense: bool, dimension: int) -> None:
    config = SecAggConfig.plan(ids, dimension, clip=1.0, max_dropout=0.0, dense=dense)
    updates = updates_for(config, seed=dimension)
    result = simulate_round(config, updates, round_id=os.urandom(16)).result
    assert np.array_equal(result.total, expected_total(config, updates, ids))


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 7), dimension=st.integers(1, 70_000), seed=st.binary(min_size=16, max_size=16)
)
def test_pairwise_masks_sum_to_zero(n: int, dimension: int, seed: bytes) -> None:
    """Σ_i (Σ_{j<i} PRG(s_ij) − Σ_{j>i} PRG(s_ij)) = 0 mod 2^32, each side deriving s_ij itself."""
    keys = [X25519PrivateKey.generate() for _ in range(n)]
    publics = [k.public_key().public_bytes_raw() for k in keys]
    total = np.zeros(dimension, dtype=np.uint32)
    for i in range(n):
        mine = np.zeros(dimension, dtype=np.uint32)
        seeds = {j: pairwise_seed(keys[i], publics[j], seed, i, j) for j in range(n) if j != i}
        accumulate(
            mine,
            add=[s for j, s in seeds.items() if j < i],
            subtract=[s for j, s in seeds.items() if j > i],
        )
        if n > 1:
            assert mine.any()
        total += mine
    assert not total.any()


@pytest.mark.parametrize("modulus_bits", [32, 64])
def test_multi_chunk_vectors_with_parallel_workers(modulus_bits: int) -> None:
    """Vectors spanning several mask blocks (and a ragged last one), clients in two threads
    and the server unmasking in two: still the exact sum of the quantized updates."""
    config = SecAggConfig.plan(
        range(7), 3 * 65536 + 7, clip=1.0, max_dropout=0.2, modulus_bits=modulus_bits
    )
    updates = updates_for(config)
    dropouts = {1: Stage.MASKED_INPUT, 4: Stage.UNMASK}
    trace = simulate_round(config, updates, round_id=os.urandom(16), dropouts=dropouts, workers=2)
    assert trace.result.contributors == {0, 2, 3, 4, 5, 6}
    assert np.array_equal(
        trace.result.total, expected_total(config, updates, trace.result.contributors)
    )


@pytest.mark.parametrize("where", [0, 3 * 65536 + 6])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_client_refuses_non_finite_update_anywhere(where: int, bad: float) -> None:
    """The finiteness check runs chunk by chunk while masking; a bad value in the last
    chunk still aborts the client before it sends anything."""
    config = SecAggConfig.plan(range(4), 3 * 65536 + 7, clip=1.0, max_dropout=0.0)
    harness = Harness(config)
    harness.updates[2][where] = bad
    shares = harness.step(harness.advertise())
    with pytest.raises(WeightsError, match="NaN or infinity"):
        harness.replies([m for m in shares if m.recipient == 2])
    assert harness.clients[2].stage is Stage.ABORTED


def test_server_needs_at_least_one_worker() -> None:
    config = SecAggConfig.plan(range(4), 8, clip=1.0, max_dropout=0.0)
    publics = {pid: identity(pid).public_key() for pid in config.participants}
    with pytest.raises(InvalidInput, match="workers"):
        SecAggServer(config, os.urandom(16), publics, 0.0, workers=0)
