"""Fixtures of the care tests: slices of the real UCI household power file, synthetic homes."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

UCI = "energy/uci_household_power.csv.gz"


@pytest.fixture(scope="session")
def uci_path(data_dir: Path) -> Path:
    path = data_dir / UCI
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def uci_lines(path: Path, n: int, skip: int = 0) -> Iterator[str]:
    """The header and ``n`` data lines of the real file, after skipping ``skip`` data lines."""
    with gzip.open(path, "rt") as fh:
        yield next(fh)
        yield from islice(fh, skip, skip + n)


@pytest.fixture(scope="session")
def uci_head() -> object:
    """``uci_head(path, n, skip=0)``: the header and n data lines of the real file."""
    return uci_lines


@pytest.fixture(scope="session")
def uci_six_months(uci_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first ~6 months of the real file (Dec 2006 to Jun 2007), as a plain CSV."""
    out = tmp_path_factory.mktemp("uci") / "uci_6m.csv"
    out.write_text("".join(uci_lines(uci_path, 183 * 1440)))
    return out
