"""HTTP routes of the impact assessment: the questionnaire and each system's assessment."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.errors import BadRequestData
from .http import TRUST
from .registry_api import RegistryApi
from .registry_model import check_lang


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any]
    questionnaire_version: str | None = None


class ImpactApi(RegistryApi):
    @property
    def impact(self) -> Any:
        return self.s.trust.impact

    async def questionnaire(self, request: Request) -> Response:
        """The questionnaire (both languages, or ``lang``); public."""
        lang = check_lang(request.query_params.get("lang"))
        return self.ok(self.impact.questionnaire.view(lang))

    async def put(self, request: Request) -> Response:
        """Answer (or re-answer) the questionnaire for a system; scored and audited."""
        tenant, caller = self.editor(request)
        body = await self.model(request, AssessmentIn)
        version = self.impact.questionnaire.version
        if body.questionnaire_version not in (None, version):
            raise BadRequestData(f"questionnaire_version: answers are for "
                                 f"{body.questionnaire_version!r}; the questionnaire is "
                                 f"{version!r}")
        doc = await run_in_threadpool(self.impact.assess, tenant, request.path_params["id"],
                                      body.answers, caller.actor)
        return self.ok(doc)

    async def get(self, request: Request) -> Response:
        tenant, _ = self.reader(request)
        return self.ok(await run_in_threadpool(self.impact.get, tenant,
                                               request.path_params["id"]))


def routes(services: Any) -> list[BaseRoute]:
    api = ImpactApi(services)
    w = Api.wrap
    return [
        Route(f"{TRUST}/impact/questionnaire", w(api.questionnaire), methods=["GET"]),
        Route(f"{TRUST}/registry/{{id}}/assessment", w(api.put), methods=["PUT"]),
        Route(f"{TRUST}/registry/{{id}}/assessment", w(api.get), methods=["GET"]),
    ]
