"""The portal's civic desk pages in-process: report a problem (text, place, photo, unsure
routing confirmed, duplicates), track a report by its id, ask a question; bad input and
CSRF failures give friendly pages that keep what the citizen typed.

One app per module: the civic desk loads its models on first use (Kiwi, embeddings, the
classifier, the document index).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webcity import T, seed

from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
ROOT = Path(__file__).resolve().parents[2]
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
CSRF_KO = "보안 확인에 실패했습니다."
STREETLIGHT = "시청 앞 가로등이 밤새 꺼져 있어서 길이 너무 어둡습니다."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from maeul.hub.server import build_app
    from maeul.trust.registry_model import DECLARED

    d = tmp_path_factory.mktemp("citizen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        a = build_app(make_settings(f"sqlite:///{d}/web.db", d, auth_enabled=True,
                                    trust_jobs=False, civic_media_dir=d / "media",
                                    civic_cache_dir=ROOT / "var" / "civic"))
        # the civic desk declares its registry entries on first use: take them back after,
        # keeping what importing the app declared
        before = dict(DECLARED)
        with TestClient(a):
            seed(a.state.services)
            yield a
    DECLARED.clear()
    DECLARED.update(before)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from starlette.testclient import TestClient

    # no ``with``: that would run the app's lifespan again and close its store at the end
    c = TestClient(app, base_url="http://testserver")
    yield c
    c.close()


def csrf(c: Any, path: str = "/portal/report") -> str:
    page = c.get(path)
    assert page.status_code == 200
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, "the form carries a CSRF token"
    return m.group(1)


def report(c: Any, files: dict[str, Any] | None = None, **fields: str) -> Any:
    data = {"csrf": csrf(c), "description": "", "address_string": "", "lat": "", "long": "",
            **fields}
    # an empty file part, as a browser sends when no photo is chosen
    return c.post("/portal/report", data=data,
                  files=files or {"media": ("", b"", "application/octet-stream")})


def rid_of(page: str) -> str:
    m = re.search(r'<p class="rid" id="rid">([0-9]{6}-[0-9A-Z]{6})</p>', page)
    assert m, page[:3000]
    return m.group(1)


# -- report a problem ---------------------------------------------------------------------
def test_report_with_place_and_photo_is_filed_and_found(app: Any, client: Any) -> None:
    s = app.state.services
    r = report(client, description=STREETLIGHT, lat="50.9412", long="6.9581",
               files={"media": ("light.png", PNG, "image/png")})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    rid = rid_of(r.text)
    got = s.civic.get(T, rid)
    assert got["service_code"] == "streetlight" and got["status"] == "open"
    assert (got["lat"], got["long"]) == (50.9412, 6.9581)
    assert got["media_url"].startswith("http://testserver/civic/v1/media/default/")
    # the page names the department (from the taxonomy, in the page's language) and a date
    dept = s.civic.taxonomy().departments[
        s.civic.taxonomy().category("streetlight").department].name["ko"]
    assert f'<dd id="department">{dept}</dd>' in r.text
    assert re.search(r'<dd id="expected">\d{4}-\d\d-\d\d</dd>', r.text)
    assert 'data-copy="' + rid + '"' in r.text  # the copy button
    # the photo is the same bytes, served by the civic desk
    photo = client.get(got["media_url"].removeprefix("http://testserver"))
    assert photo.status_code == 200 and photo.content == PNG
    # the track page shows it, photo included
    page = client.get(f"/portal/requests/{rid}")
    assert page.status_code == 200
    assert STREETLIGHT in page.text and dept in page.text and "처리 중" in page.text
    assert f'src="{got["media_url"].removeprefix("http://testserver")}"' in page.text
    assert "50.94120, 6.95810" in page.text


def test_report_form_is_korean_and_english_and_keyboard_ready(client: Any) -> None:
    ko = client.get("/portal/report")
    assert '<html lang="ko">' in ko.text and "불편 신고" in ko.text
    assert 'enctype="multipart/form-data"' in ko.text
    assert 'id="pick-centre"' in ko.text  # the map can be used without a pointer
    assert "<script>" not in ko.text and "onclick" not in ko.text  # CSP: no inline code
    assert "script-src 'self'" in ko.headers["content-security-policy"]
    client.get("/lang/en")
    en = client.get("/portal/report")
    assert '<html lang="en">' in en.text and "Report a problem" in en.text


def test_home_and_menu_link_the_three_pages(client: Any) -> None:
    home = client.get("/portal").text
    for path in ("/portal/report", "/portal/track", "/portal/ask"):
        assert f'href="{path}"' in home
    assert "준비 중" not in home


def test_empty_text_is_a_form_error(client: Any) -> None:
    r = report(client, description="   ", address_string="시청 앞")
    assert r.status_code == 400
    assert "무엇이 불편한지 적어 주세요." in r.text
    assert 'value="시청 앞"' in r.text  # the address is kept


def test_too_long_text_is_refused_and_kept(client: Any) -> None:
    text = "가" * 50_000 + "b" * 50_000  # 100,000 characters, about 200 kB
    r = report(client, description=text)
    assert r.status_code == 400
    assert "100,000자" in r.text
    assert text in r.text  # what the citizen typed stays in the form


def test_a_photo_that_is_not_an_image_is_refused(app: Any, client: Any) -> None:
    media = Path(app.state.services.settings.civic_media_dir) / T
    before = set(media.glob("*")) if media.exists() else set()
    r = report(client, description="쓰레기가 쌓여 있어요",
               files={"media": ("notes.png", b"%PDF-1.4 not a photo", "image/png")})
    assert r.status_code == 400
    assert "JPEG, PNG, WebP" in r.text and "쓰레기가 쌓여 있어요" in r.text
    after = set(media.glob("*")) if media.exists() else set()
    assert after == before


def test_a_bad_place_is_a_form_error(client: Any) -> None:
    r = report(client, description="가로등 고장", lat="95", long="6.9")
    assert r.status_code == 400 and "위치를 읽을 수 없습니다" in r.text
    assert report(client, description="가로등 고장", lat="50.9", long="").status_code == 400


def test_report_without_csrf_is_refused(app: Any, client: Any) -> None:
    csrf(client)  # the browser has its form cookie
    n = len(app.state.services.civic.search(T, {}))
    r = client.post("/portal/report", data={"description": "가로등 고장", "csrf": "forged"},
                    files={"media": ("", b"", "application/octet-stream")})
    assert r.status_code == 403 and CSRF_KO in r.text
    # a token from another browser (another cookie) does not work either
    from starlette.testclient import TestClient

    other = TestClient(app, base_url="http://testserver")
    token = csrf(other)
    other.close()
    r = client.post("/portal/report", data={"description": "가로등 고장", "csrf": token},
                    files={"media": ("", b"", "application/octet-stream")})
    assert r.status_code == 403
    # nor does a post from another site
    r = client.post("/portal/report", data={"description": "가로등 고장", "csrf": csrf(client)},
                    files={"media": ("", b"", "application/octet-stream")},
                    headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert len(app.state.services.civic.search(T, {})) == n


def test_form_cookie_is_httponly_and_strict(client: Any) -> None:
    r = client.get("/portal/ask")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("maeul_form=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    # the same browser keeps its cookie
    assert "set-cookie" not in client.get("/portal/ask").headers


def test_unsure_routing_asks_the_citizen_and_confirms(app: Any, client: Any) -> None:
    s = app.state.services
    text = "이상한 것이 있어요"
    r = report(client, description=text)
    assert r.status_code == 201, r.text
    rid = rid_of(r.text)
    assert 'id="confirm-form"' in r.text, "the routing is unsure about a vague text"
    token = re.search(r'name="token" value="([^"]+)"', r.text)
    assert token and token.group(1) not in r.headers.get("location", "")
    choices = re.findall(r'name="service_code" value="([a-z_]+)"', r.text)
    assert len(choices) >= 2
    chosen = choices[1]
    form = {"csrf": csrf(client), "token": token.group(1), "service_code": chosen,
            "choices": ",".join(choices)}
    # a wrong token is refused, the choices stay on the page
    bad = client.post(f"/portal/report/{rid}/confirm", data={**form, "token": "nope"})
    assert bad.status_code == 403 and 'id="confirm-form"' in bad.text
    ok = client.post(f"/portal/report/{rid}/confirm", data=form)
    assert ok.status_code == 200, ok.text
    assert s.civic.get(T, rid)["service_code"] == chosen
    assert s.civic.service_list("ko")[0]  # names exist
    name = {x["service_code"]: x["service_name"] for x in s.civic.service_list("ko")}[chosen]
    assert name in ok.text and 'id="confirm-form"' not in ok.text
    # settled: confirming again is a friendly error, not a crash
    again = client.post(f"/portal/report/{rid}/confirm", data=form)
    assert again.status_code == 400 and "분류를 확정하지 못했습니다" in again.text


def test_a_second_report_of_the_same_problem_is_linked(app: Any, client: Any) -> None:
    text = "역 앞 사거리 도로에 큰 포트홀이 생겨서 차가 덜컹거립니다."
    first = report(client, description=text, lat="50.9400", long="6.9500")
    assert first.status_code == 201
    rid = rid_of(first.text)
    second = report(client, description=text, lat="50.9401", long="6.9501")
    assert second.status_code == 201
    assert rid_of(second.text) == rid
    assert 'id="duplicate"' in second.text and "2명" in second.text


# -- track a report -------------------------------------------------------------------------
def test_track_finds_an_id_as_people_type_it(app: Any, client: Any) -> None:
    out = app.state.services.civic.submit(T, {"description": "공원 벤치가 부서졌어요"},
                                          "anonymous")
    rid = out["service_request_id"]
    typed = " " + rid.lower().replace("-", " ") + " "
    r = client.get("/portal/track", params={"id": typed}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/portal/requests/{rid}"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "공원 벤치가 부서졌어요" in page.text
    assert client.get("/portal/track").status_code == 200


def test_track_page_masks_personal_data(app: Any, client: Any) -> None:
    out = app.state.services.civic.submit(
        T, {"description": "제 번호는 010-2345-6789 입니다. 집 앞 하수구가 막혔어요",
            "phone": "010-2345-6789"}, "anonymous")
    page = client.get(f"/portal/requests/{out['service_request_id']}")
    assert page.status_code == 200 and "하수구" in page.text
    assert "2345-6789" not in page.text


def test_unknown_and_malformed_ids_are_friendly_pages(client: Any) -> None:
    unknown = client.get("/portal/requests/200101-ABCDEF")
    assert unknown.status_code == 404
    assert "200101-ABCDEF" in unknown.text and 'id="track-id"' in unknown.text
    bad = client.get("/portal/track", params={"id": "hello<script>"})
    assert bad.status_code == 400 and "접수 번호 형식" in bad.text
    assert "hello&lt;script&gt;" in bad.text  # kept, escaped
    assert client.get("/portal/requests/not-an-id").status_code == 400
    assert client.get("/portal/requests/200101-ABCDEF", headers={"accept-language": "en"}
                      ).status_code == 404


def test_track_page_is_english_too(app: Any, client: Any) -> None:
    out = app.state.services.civic.submit(T, {"description": "The streetlight on Main "
                                              "Street is broken"}, "anonymous")
    client.get("/lang/en")
    page = client.get(f"/portal/requests/{out['service_request_id']}")
    assert '<html lang="en">' in page.text and "Open" in page.text
    en = {x["service_code"]: x["service_name"] for x in
          app.state.services.civic.service_list("en")}[out["service_code"]]
    assert en in page.text


# -- ask a question -------------------------------------------------------------------------
def test_question_answered_with_its_source(app: Any, client: Any) -> None:
    question = "대형폐기물은 어떻게 버리나요?"
    want = app.state.services.civic.ask(T, question, "ko", "test")
    assert not want["refused"]
    r = client.post("/portal/ask", data={"csrf": csrf(client, "/portal/ask"),
                                         "question": question})
    assert r.status_code == 200
    assert 'id="answer-text"' in r.text and 'id="sources"' in r.text
    cite = want["citations"][0]
    assert cite["document"] in r.text and cite["section"] in r.text
    assert question in r.text  # kept in the form to ask again
    assert ('id="ai-label"' in r.text) == bool(want["generated"])


def test_question_outside_the_documents_offers_a_report(client: Any) -> None:
    r = client.post("/portal/ask", data={"csrf": csrf(client, "/portal/ask"),
                                         "question": "부산 해운대 호텔 추천해 주세요"})
    assert r.status_code == 200
    assert 'id="refusal"' in r.text and 'href="/portal/report"' in r.text
    assert 'id="answer-text"' not in r.text


def test_empty_and_long_questions_and_csrf(client: Any) -> None:
    token = csrf(client, "/portal/ask")
    empty = client.post("/portal/ask", data={"csrf": token, "question": "  "})
    assert empty.status_code == 400 and "질문을 적어 주세요." in empty.text
    long = "왜" * 2001
    r = client.post("/portal/ask", data={"csrf": token, "question": long})
    assert r.status_code == 400 and "2,001자" in r.text and long in r.text
    forged = client.post("/portal/ask", data={"csrf": "x", "question": "쓰레기 버리는 날"})
    assert forged.status_code == 403
    raw = client.post("/portal/ask", content=b'{"question": "x"}',
                      headers={"content-type": "application/json"})
    assert raw.status_code == 400


def test_a_body_over_the_photo_limit_is_refused_politely(app: Any, client: Any) -> None:
    limit = app.state.services.settings.civic_media_max_bytes
    big = PNG + b"\0" * (limit + 1024 * 1024)
    r = report(client, description="사진이 큽니다", files={"media": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "5MB" in r.text
    assert 'id="description"' in r.text  # the form again, to send a smaller photo
