"""Offline Smart Data Models @context documents.

The published Smart Data Models examples reference their domain context by remote URL
(``https://raw.githubusercontent.com/smart-data-models/dataModel.<Domain>/master/context.jsonld``
or ``https://smart-data-models.github.io/dataModel.<Domain>/context.jsonld``).
:func:`sdm_context_preload` maps those URLs to the local copies of the ``context.jsonld``
files so that the hub's context resolver can be seeded and never has to go online.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maeul.ingest.importers import ImportDataError

__all__ = ["SDM_CONTEXT_URL_TEMPLATES", "sdm_context_preload", "sdm_context_urls"]

#: Well-known remote locations of a domain's context; ``{domain}`` is e.g. ``dataModel.Parking``.
SDM_CONTEXT_URL_TEMPLATES: tuple[str, ...] = (
    "https://raw.githubusercontent.com/smart-data-models/{domain}/master/context.jsonld",
    "https://smart-data-models.github.io/{domain}/context.jsonld",
)


def sdm_context_urls(domain: str) -> list[str]:
    """The remote URLs under which ``domain`` (``dataModel.X``) publishes its context."""
    return [template.format(domain=domain) for template in SDM_CONTEXT_URL_TEMPLATES]


def sdm_context_preload(root: Path) -> dict[str, dict[str, Any]]:
    """Map remote Smart Data Models context URLs to the parsed local ``context.jsonld``.

    ``root`` is the ``smart_data_models`` folder (or a folder that contains it); every
    ``dataModel.*`` sub-folder holding a ``context.jsonld`` contributes its URLs.  A missing
    root gives an empty mapping; an unreadable or non-context document raises
    :class:`~maeul.ingest.importers.ImportDataError`.
    """
    base = Path(root)
    if (base / "smart_data_models").is_dir():
        base = base / "smart_data_models"
    if not base.is_dir():
        return {}
    preload: dict[str, dict[str, Any]] = {}
    for folder in sorted(base.glob("dataModel.*")):
        path = folder / "context.jsonld"
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ImportDataError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
        except UnicodeDecodeError as exc:
            raise ImportDataError(f"not UTF-8: {exc}", path=path) from exc
        if not isinstance(doc, dict) or "@context" not in doc:
            raise ImportDataError("not a JSON-LD context document", path=path, column="@context")
        for url in sdm_context_urls(folder.name):
            preload[url] = doc
    return preload
