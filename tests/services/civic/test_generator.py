"""Generated answers: the OpenAI-compatible client against a real local HTTP server, the
citation check, and the fallback to the extractive answer."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from maeul.services.civic.answer import Desk
from maeul.services.civic.desk import sample_docs
from maeul.services.civic.docindex import DocIndex
from maeul.services.civic.documents import Passage
from maeul.services.civic.generator import (
    LLM_EXTRA,
    GeneratorError,
    LlamaCpp,
    OpenAICompatible,
    check_citations,
    messages,
)

QUESTION = "도서관에서 책은 몇 권까지 빌릴 수 있어요?"


class _Canned(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions with the completion queued by the test."""

    replies: list[tuple[int, str]] = []
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body,
                                    "auth": self.headers.get("Authorization")})
        status, content = type(self).replies.pop(0)
        payload = json.dumps({"choices": [{"message": {"role": "assistant",
                                                       "content": content}}]}
                             if status == 200 else {"error": content}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> DocIndex:
    cache = tmp_path_factory.getbasetemp() / "civic-sample-index"
    return DocIndex.load_or_build(sample_docs(), cache)


@pytest.fixture()
def canned() -> Iterator[type[_Canned]]:
    _Canned.replies.clear()
    _Canned.requests.clear()
    yield _Canned


def _desk(index: DocIndex, url: str, key: str | None = "sk-test") -> Desk:
    return Desk(index, generator=OpenAICompatible(url, "city-model", api_key=key, timeout=5))


def test_a_well_cited_completion_is_shown_as_ai_generated(
        index: DocIndex, server: str, canned: type[_Canned]) -> None:
    canned.replies.append((200, "한 사람이 한 번에 7권까지 14일 동안 빌릴 수 있습니다 [1]. "
                                "예약이 없는 책은 7일 더 빌릴 수 있습니다 [1]."))
    out = _desk(index, server).ask(QUESTION).to_json()
    assert out["refused"] is False
    assert out["generated"] is True and out["label"] == "AI-generated"
    assert "fallback" not in out
    assert out["answer"].startswith("한 사람이 한 번에 7권까지")
    assert [c["document"] for c in out["citations"]] == ["culture/library.md"]
    sent = canned.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    assert sent["body"]["model"] == "city-model"
    prompt = sent["body"]["messages"][1]["content"]
    assert "[1] 예시시립도서관 이용 안내 > 대출과 반납" in prompt and QUESTION in prompt


def test_a_completion_without_citations_falls_back(
        index: DocIndex, server: str, canned: type[_Canned]) -> None:
    canned.replies.append((200, "도서관에서는 책을 일곱 권까지 빌려 드립니다. 연체료는 없습니다."))
    out = _desk(index, server).ask(QUESTION).to_json()
    assert out["fallback"] == "citation-check-failed"
    assert out["generated"] is False and out["label"] is None
    assert "7권까지 14일" in out["citations"][0]["quote"]


def test_a_completion_citing_a_passage_that_does_not_exist_falls_back(
        index: DocIndex, server: str, canned: type[_Canned]) -> None:
    canned.replies.append((200, "책은 7권까지 14일 동안 빌릴 수 있습니다 [9]."))
    out = _desk(index, server).ask(QUESTION).to_json()
    assert out["fallback"] == "citation-check-failed" and out["generated"] is False


def test_a_failing_endpoint_falls_back(index: DocIndex, server: str,
                                       canned: type[_Canned]) -> None:
    canned.replies.append((500, "overloaded"))
    out = _desk(index, server, key=None).ask(QUESTION).to_json()
    assert out["fallback"] == "generator-error" and "HTTP 500" in out["signals"]["generator_error"]
    assert canned.requests[0]["auth"] is None
    unreachable = _desk(index, "http://127.0.0.1:9/v1").ask(QUESTION).to_json()
    assert unreachable["fallback"] == "generator-error" and unreachable["citations"]


def test_the_generator_saying_not_covered_is_a_refusal(
        index: DocIndex, server: str, canned: type[_Canned]) -> None:
    canned.replies.append((200, "NOT_COVERED"))
    out = _desk(index, server).ask(QUESTION).to_json()
    assert out["refused"] is True and out["reason"] == "not-covered"


def test_out_of_scope_questions_never_reach_the_generator(
        index: DocIndex, server: str, canned: type[_Canned]) -> None:
    out = _desk(index, server).ask("내일 예시시 날씨 어때요?").to_json()
    assert out["refused"] is True and canned.requests == []


P = [Passage("a.md", "요금", 0, 40, "공영주차장 최초 30분 요금은 1,000원입니다.", "ko", "주차"),
     Passage("b.md", "휴관", 0, 30, "도서관은 매주 월요일에 쉽니다.", "ko", "도서관")]


@pytest.mark.parametrize("text, ok, numbers", [
    ("최초 30분 요금은 1,000원입니다 [1]. 도서관은 월요일에 쉽니다 [2].", True, [1, 2]),
    ("주차 요금은 30분에 1,000원입니다.\n[1]", True, [1]),
    ("도서관은 월요일에 쉽니다 [2, 1].", True, [2, 1]),
    ("최초 30분 요금은 1,000원입니다 [1]. 주말에는 무료입니다.", False, [1]),
    ("최초 30분 요금은 1,000원입니다 [3].", False, []),
    ("최초 30분 요금은 1,000원입니다 [0].", False, []),
    ("시청 구내식당 메뉴는 비빔밥과 김치찌개입니다 [2].", False, [2]),
    ("", False, []),
])
def test_check_citations(text: str, ok: bool, numbers: list[int]) -> None:
    assert check_citations(text, P) == (ok, numbers)


def test_the_prompt_numbers_the_passages_and_asks_for_citations() -> None:
    msgs = messages("주차 요금?", P, "ko")
    assert "cite" in msgs[0]["content"] and "NOT_COVERED" in msgs[0]["content"]
    assert "Korean" in msgs[0]["content"]
    assert "[1] 주차 > 요금\n공영주차장" in msgs[1]["content"]
    assert "[2] 도서관 > 휴관" in msgs[1]["content"]


def test_openai_compatible_needs_an_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAICompatible("ftp://example", "m")
    assert "sk-" not in repr(OpenAICompatible("http://x/v1", "m", api_key="sk-secret"))


def test_a_malformed_completion_is_a_generator_error(server: str,
                                                     canned: type[_Canned]) -> None:
    canned.replies.append((200, ""))
    gen = OpenAICompatible(server, "m")
    assert gen.generate("q", P, "ko") == ""
    with pytest.raises(GeneratorError, match="HTTP 404"):
        canned.replies.append((404, "no such model"))
        gen.generate("q", P, "ko")


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None,
                    reason="llama-cpp-python is installed here")
def test_llama_cpp_without_the_extra_names_it(tmp_path: Any) -> None:
    with pytest.raises(RuntimeError) as err:
        LlamaCpp(tmp_path / "model.gguf")
    assert str(err.value) == LLM_EXTRA and "'llm' extra" in LLM_EXTRA
