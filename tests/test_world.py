"""Rank / world size resolution order: explicit > torch.distributed > accelerate > env > (0, 1)."""

from __future__ import annotations

import pytest

from lerobot_stream.world import current_worker, resolve_rank_world

_VARS = ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_defaults_to_single_process(clean_env: pytest.MonkeyPatch) -> None:
    assert resolve_rank_world() == (0, 1)


def test_torchrun_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RANK", "2")
    clean_env.setenv("WORLD_SIZE", "4")
    assert resolve_rank_world() == (2, 4)


def test_slurm_env_when_no_torchrun_vars(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLURM_PROCID", "1")
    clean_env.setenv("SLURM_NTASKS", "3")
    assert resolve_rank_world() == (1, 3)


def test_torchrun_env_wins_over_slurm(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLURM_PROCID", "1")
    clean_env.setenv("SLURM_NTASKS", "3")
    clean_env.setenv("RANK", "0")
    clean_env.setenv("WORLD_SIZE", "2")
    assert resolve_rank_world() == (0, 2)


def test_explicit_arguments_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RANK", "2")
    clean_env.setenv("WORLD_SIZE", "4")
    assert resolve_rank_world(rank=1, world_size=2) == (1, 2)


@pytest.mark.parametrize(("rank", "world"), [(2, 2), (-1, 2), (0, 0)])
def test_inconsistent_rank_world_raise(clean_env: pytest.MonkeyPatch, rank: int, world: int) -> None:
    with pytest.raises(ValueError, match=r"rank|world_size"):
        resolve_rank_world(rank=rank, world_size=world)


def test_non_integer_env_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RANK", "zero")
    clean_env.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK"):
        resolve_rank_world()


def test_main_process_is_worker_zero_of_one() -> None:
    assert current_worker() == (0, 1)
