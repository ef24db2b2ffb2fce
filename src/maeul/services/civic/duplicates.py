"""Is a new report a duplicate of an open request nearby?

A report duplicates an open request when all of these hold:

- the same category (a pothole and a street light at one corner are two problems);
- the same place: both located and within ``radius_m`` (haversine), or, when either has no
  point, the same place name (compared after ``gazetteer.normalise``); and when both name a
  detail (an exit or building number: "3번 출구" vs "5번 출구") the details agree;
- requested within ``window`` of each other;
- their texts say the same thing: the dot product of their ``text.embedder().query()`` vectors
  (L2-normalised, so the cosine) is at least ``min_similarity``.

The nearest such request wins (located ones before name-only ones), then the most similar.
``OpenRequestIndex`` keeps the open requests as numpy arrays so that a check against 10,000
of them is a few vector operations; ``find_duplicate`` accepts a plain sequence too.

``DEFAULT_MIN_SIMILARITY`` was calibrated on hand-written pairs (same problem in other words vs
another problem of the same category at the same spot, Korean and English); see
``bench/civic_extract.py --duplicates`` for the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from maeul.services.civic.gazetteer import normalise

Vector = npt.NDArray[np.float32]

# F1-best on the 65 hand-written pairs (33 duplicates): precision 0.83, recall 0.88; the
# similarities of duplicates and of other problems at the same spot overlap (AUC 0.88)
DEFAULT_MIN_SIMILARITY = 0.915
_EARTH_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """An open service request as the duplicate check sees it."""

    id: str
    category: str
    point: tuple[float, float] | None  # (lon, lat)
    embedding: Vector | None  # text.embedder().query(text)[0]
    requested_at: datetime  # timezone-aware
    place_name: str | None = None  # the geocoded place's name, e.g. "시청역"
    detail: str | None = None  # exit / building number, e.g. "3번 출구"


@dataclass(frozen=True, slots=True)
class Candidate:
    """The new report: the same fields as an open request, the id optional."""

    category: str
    point: tuple[float, float] | None
    embedding: Vector | None
    requested_at: datetime
    place_name: str | None = None
    detail: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    """The open request a report duplicates, and why."""

    id: str
    distance_m: float | None  # None when matched by place name only
    similarity: float
    why: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "distance_m": None if self.distance_m is None else
                round(self.distance_m, 1), "similarity": round(self.similarity, 4),
                "why": self.why}


def _aware(t: datetime, what: str) -> float:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what}.requested_at must be timezone-aware")
    return t.timestamp()


def _detail_key(detail: str | None) -> str:
    return "".join(ch for ch in (detail or "").casefold() if ch.isalnum())


class OpenRequestIndex:
    """Open requests held as arrays for vectorised duplicate checks."""

    def __init__(self, requests: Sequence[OpenRequest]) -> None:
        self.requests = list(requests)
        n = len(self.requests)
        dims = {r.embedding.shape[-1] for r in self.requests if r.embedding is not None}
        if len(dims) > 1:
            raise ValueError(f"open requests have embeddings of different sizes: {sorted(dims)}")
        self.dim = dims.pop() if dims else 0
        self.ids = [r.id for r in self.requests]
        self._cats: dict[str, int] = {}
        self.category = np.array([self._cats.setdefault(r.category, len(self._cats))
                                  for r in self.requests], dtype=np.int32)
        pts = np.array([r.point if r.point else (np.nan, np.nan) for r in self.requests],
                       dtype=np.float64).reshape(n, 2)
        self.lon = np.radians(pts[:, 0])
        self.lat = np.radians(pts[:, 1])
        self.located = ~np.isnan(self.lat)
        self.when = np.array([_aware(r.requested_at, f"open request {r.id!r}")
                              for r in self.requests], dtype=np.float64)
        self.emb = np.zeros((n, self.dim), dtype=np.float32)
        self.has_emb = np.zeros(n, dtype=bool)
        for i, r in enumerate(self.requests):
            if r.embedding is not None:
                self.emb[i] = np.asarray(r.embedding, dtype=np.float32).reshape(-1)
                self.has_emb[i] = True
        self.place = [normalise(r.place_name) if r.place_name else "" for r in self.requests]
        self.detail = [_detail_key(r.detail) for r in self.requests]

    def __len__(self) -> int:
        return len(self.requests)


def find_duplicate(
    candidate: Candidate,
    open_requests: Sequence[OpenRequest] | OpenRequestIndex,
    radius_m: float = 150.0,
    window: timedelta = timedelta(days=14),
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> DuplicateMatch | None:
    """The open request ``candidate`` duplicates, or None (see the module docstring)."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be positive, not {radius_m}")
    if window < timedelta(0):
        raise ValueError("window must not be negative")
    if not -1.0 <= min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be within [-1, 1], not {min_similarity}")
    if candidate.embedding is None:
        raise ValueError("candidate.embedding is required (text.embedder().query(text)[0])")
    index = open_requests if isinstance(open_requests, OpenRequestIndex) else (
        OpenRequestIndex(open_requests))
    when = _aware(candidate.requested_at, "candidate")
    vec = np.asarray(candidate.embedding, dtype=np.float32).reshape(-1)
    if len(index) == 0:
        return None
    if index.dim and vec.shape[0] != index.dim:
        raise ValueError(f"candidate.embedding has {vec.shape[0]} values, the open requests "
                         f"{index.dim}")
    code = index._cats.get(candidate.category)
    if code is None:
        return None
    mask = (index.category == code) & index.has_emb & (
        np.abs(index.when - when) <= window.total_seconds())
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return None
    dist = np.full(rows.size, np.inf)
    if candidate.point is not None:
        lon0, lat0 = np.radians(candidate.point[0]), np.radians(candidate.point[1])
        lat, lon = index.lat[rows], index.lon[rows]
        h = (np.sin((lat - lat0) / 2) ** 2
             + np.cos(lat0) * np.cos(lat) * np.sin((lon - lon0) / 2) ** 2)
        with np.errstate(invalid="ignore"):
            d = 2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        dist = np.where(index.located[rows], d, np.inf)
    near = dist <= radius_m
    # without a point on either side, the geocoded place name has to agree
    name = normalise(candidate.place_name) if candidate.place_name else ""
    by_name = np.zeros(rows.size, dtype=bool)
    if name:
        unlocated = ~index.located[rows] if candidate.point is not None else np.ones(
            rows.size, dtype=bool)
        for j in np.flatnonzero(unlocated):
            by_name[j] = index.place[rows[j]] == name
    place_ok = near | by_name
    detail = _detail_key(candidate.detail)
    if detail:
        for j in np.flatnonzero(place_ok):
            other = index.detail[rows[j]]
            if other and other != detail:
                place_ok[j] = False  # "3번 출구" and "5번 출구" are two lamps
    keep = np.flatnonzero(place_ok)
    if keep.size == 0:
        return None
    sims = index.emb[rows[keep]] @ vec
    good = sims >= min_similarity
    if not good.any():
        return None
    keep, sims = keep[good], sims[good]
    order = np.lexsort((-sims, dist[keep]))
    pick, sim = int(keep[order[0]]), float(sims[order[0]])
    r = index.requests[int(rows[pick])]
    hours = (candidate.requested_at - r.requested_at).total_seconds() / 3600
    age = f"{abs(hours) / 24:.1f} days" if abs(hours) >= 48 else f"{abs(hours):.0f} hours"
    earlier = "earlier" if hours >= 0 else "later"
    if np.isfinite(dist[pick]) and near[pick]:
        where = f"{dist[pick]:.0f} m apart"
        distance: float | None = float(dist[pick])
    else:
        where = f"same place '{r.place_name}'"
        distance = None
    why = (f"same category '{r.category}', {where}, requested {age} {earlier}, "
           f"text similarity {sim:.2f}")
    return DuplicateMatch(r.id, distance, sim, why)
