"""Empty-house risk on the real UCI file (a real August holiday) and on synthetic buildings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maeul.services.care.readings import Readings, load_readings, to_seconds
from maeul.services.care.synth import SynthCity
from maeul.services.care.vacancy import district_vacancy, vacancy, vacancy_score

START = datetime(2006, 12, 16, 17, 24)


def _minutes(d: datetime) -> int:
    return int((d - START).total_seconds() // 60)


@pytest.fixture(scope="module")
def summer_2008(uci_path: Path, uci_head: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Readings:
    """June to mid-October 2008 from the real file: three weeks away in August."""
    skip = _minutes(datetime(2008, 6, 1))
    out = tmp_path_factory.mktemp("vac") / "summer.csv"
    out.write_text("".join(uci_head(uci_path, 135 * 1440, skip)))
    return load_readings(out)


def test_real_holiday_scores_about_its_share(summer_2008: Readings) -> None:
    r = summer_2008
    holiday = vacancy(r.between(to_seconds(datetime(2008, 7, 15)),
                                to_seconds(datetime(2008, 10, 13))))
    assert 0.18 <= holiday.score <= 0.35 and holiday.days_with_data == 90
    autumn = vacancy_score(r.between(to_seconds(datetime(2008, 9, 1)),
                                     to_seconds(datetime(2008, 10, 13))))
    assert autumn < 0.05


def test_synthetic_buildings() -> None:
    city = SynthCity(3, seed=5)
    lived_in = city.readings(0, 120)
    assert vacancy_score(lived_in) < 0.1
    t = lived_in.t
    rng = np.random.default_rng(0)
    empty = Readings(t, 0.08 + 0.05 * rng.uniform(0, 1, t.size))
    v = vacancy(empty)
    assert v.score == 1.0 and v.standby_days == 90
    # lived in, then empty for the last 45 days
    kw = np.where(t >= t[-1] - 45 * 86400, empty.kw, lived_in.kw)
    assert 0.45 <= vacancy_score(Readings(t, kw)) <= 0.55
    with pytest.raises(ValueError, match="no readings"):
        vacancy_score(Readings(t[:0], kw[:0]))


def test_district_figures_never_single_out_a_building() -> None:
    assert district_vacancy({f"b{i}": 0.9 for i in range(9)}) is None
    d = district_vacancy({f"b{i}": (1.0 if i < 3 else 0.0) for i in range(12)})
    assert d == {"buildings": 12, "mean_score": 0.25, "share_likely_empty": 0.25}
    with pytest.raises(ValueError, match="lie in"):
        district_vacancy({f"b{i}": 2.0 for i in range(12)})
