"""The faster ``get`` of request headers and query parameters answers as Mapping.get does."""

from __future__ import annotations

import random
from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders, QueryParams

from maeul.hub.fastmaps import install


def test_installed_get_answers_like_mapping_get() -> None:
    assert install() is True
    assert install() is True  # idempotent
    assert Headers.get is not Mapping.get and QueryParams.get is not Mapping.get
    rng = random.Random(5)
    names = ["Accept", "accept", "LINK", "ngsild-tenant", "Via", "x-api-key", "é"]
    for _ in range(300):
        raw = [(rng.choice(names).lower().encode("latin-1"),
                rng.choice(["a", "b", "", "ü"]).encode("latin-1")) for _ in range(rng.randrange(5))]
        h = Headers(raw=raw)
        mh = MutableHeaders(raw=list(raw))
        for key in names + ["missing"]:
            for m in (h, mh):
                assert m.get(key) == Mapping.get(m, key)
                assert m.get(key, "d") == Mapping.get(m, key, "d")
        qs = "&".join(f"{rng.choice('abcq')}={rng.choice(['1', '2', '', 'x%20y'])}"
                      for _ in range(rng.randrange(5)))
        q = QueryParams(qs)
        for key in "abcqz":
            assert q.get(key) == Mapping.get(q, key)
            assert q.get(key, 7) == Mapping.get(q, key, 7)
    # the first header of a name wins, as with h[name]; the last query value, as with q[name]
    h = Headers(raw=[(b"via", b"1"), (b"via", b"2")])
    assert h.get("VIA") == h["via"] == "1"
    q = QueryParams("a=1&a=2")
    assert q.get("a") == q["a"] == "2"
