"""One Settings object, built once at start-up. Every field is documented in docs/configuration.md.

Settings come from environment variables prefixed ``MAEUL_`` (for example ``MAEUL_STORE_URL``)
or from keyword arguments; command-line flags override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Validated configuration of a maeul process."""

    model_config = SettingsConfigDict(env_prefix="MAEUL_", extra="forbid")

    store_url: str = Field(
        "sqlite:///var/maeul.db",
        description="Where the hub keeps its data: sqlite:///PATH or postgresql://...",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(1026, ge=0, le=65535, description="HTTP port (1026 is NGSI-LD's).")
    workers: int = Field(
        1, ge=1, le=64,
        description="Processes of `maeul serve` sharing its port (one per core is a good "
        "start). Worker 0 runs the background work; what a worker caches from the store "
        "(subscriptions 2 s, API keys 5 s, registrations 10 s) may lag another worker's "
        "change by that long, as between replicas.",
    )
    public_url: str | None = Field(
        None, description="Base URL clients use to reach the hub (printed by the demo)."
    )
    auth_enabled: bool = Field(
        True, description="Require API keys; when false every request acts as admin (tests only)."
    )
    context_cache_dir: Path = Field(
        Path("var/contexts"), description="Folder where fetched @context documents are cached."
    )
    context_fetch: bool = Field(
        True, description="Allow fetching unknown remote @context URLs (else cache only)."
    )
    context_preload_dir: Path | None = Field(
        None,
        description="Folder with Smart Data Models context.jsonld files to seed the cache.",
    )
    max_body_bytes: int = Field(
        8_000_000, ge=1024, description="Largest accepted request body in bytes."
    )
    max_batch_entities: int = Field(
        10_000, ge=1, description="Largest number of entities in one batch operation."
    )
    temporal_max_instances: int = Field(
        1000, ge=1,
        description="Most instances of one attribute a temporal answer holds; beyond it the "
        "answer is cut (206 with Content-Range) and the rest is fetched from there.",
    )
    max_limit: int = Field(
        1000, ge=1, description="Largest page size a query may ask for with limit."
    )
    default_limit: int = Field(20, ge=1, description="Page size when a query gives no limit.")
    sqlite_synchronous: str = Field(
        "NORMAL",
        description="SQLite synchronous mode: NORMAL survives process crashes; FULL power loss.",
    )
    group_commit_max: int = Field(
        512, ge=1, description="Most writes the SQLite writer commits in one transaction."
    )
    pg_pool_size: int = Field(8, ge=1, description="PostgreSQL connection pool size.")
    pg_postgis: Literal["auto", "off"] = Field(
        "auto",
        description="PostGIS for geo-query prefiltering: 'auto' uses it when the extension is"
        " installed in the database or can be created there; 'off' uses plain SQL.",
    )
    mqtt_url: str | None = Field(
        None, description="MQTT broker for device ingest, e.g. mqtt://127.0.0.1:1883."
    )
    mqtt_topic_prefix: str = Field("maeul", description="First level of device ingest topics.")
    mqtt_client_id: str | None = Field(
        None,
        description="Client id of the MQTT ingest agent; the broker keeps its session, so "
        "messages sent while the hub is down arrive when it returns. Default: derived from "
        "the host name, store URL and topic prefix. Give each replica its own.",
    )
    notify_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts for one notification before it is dropped."
    )
    notify_backoff_s: float = Field(
        0.5, gt=0, description="First retry delay; doubles on each failed attempt."
    )
    notify_timeout_s: float = Field(5.0, gt=0, description="Timeout of one HTTP notification.")
    purge_chunk_entities: int = Field(
        500, ge=1, description="Most entities one purge (DELETE /entities) removes per write."
    )
    expiry_interval_s: float = Field(
        5.0, ge=0,
        description="How often transient entities past expiresAt are deleted (seconds; 0: never).",
    )
    data_dir: Path = Field(
        Path("../shared/data"), description="Folder with the real open data the demo imports."
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    # -- trust layer ----------------------------------------------------------------------
    secrets_dir: Path = Field(
        Path("var/secrets"),
        description="Folder outside the database for the pseudonymisation and encryption "
        "keys (created on first use, readable by the owner only).",
    )
    privacy_policy: Path | None = Field(
        None,
        description="JSON file of attribute classes, pseudonymised identifiers, purposes "
        "and retention per entity type; the built-in policy when unset.",
    )
    kpi_definitions: Path | None = Field(
        None, description="JSON file of KPI definitions; the built-in set when unset."
    )
    kpi_interval_s: float = Field(
        3600.0, gt=0, description="How often the KPI job computes every KPI (seconds)."
    )
    retention_interval_s: float = Field(
        86400.0, gt=0, description="How often the retention job runs (seconds)."
    )
    decisions_interval_s: float = Field(
        5.0, gt=0,
        description="How often the decision engine expires proposals and resumes "
        "interrupted applies (seconds).",
    )
    decisions_default_ttl_s: float = Field(
        86400.0, gt=0, description="How long a proposal without expiresAt stays valid (seconds)."
    )
    audit_seal_interval_s: float = Field(
        1.0, gt=0,
        description="How often unsealed audit records are hash-chained (PostgreSQL writers "
        "leave them unsealed; SQLite seals in the writing transaction).",
    )
    trust_jobs: bool = Field(
        True, description="Run the trust layer's scheduled jobs in this process."
    )
    # -- civic desk -----------------------------------------------------------------------
    city_timezone: str = Field(
        "Asia/Seoul", description="The city's time zone (reading times in complaints, SLAs)."
    )
    civic_taxonomy: Path | None = Field(
        None,
        description="JSON file of the city's complaint categories, departments and SLAs; the "
        "built-in taxonomy of a Korean city when unset.",
    )
    civic_docs_dir: Path | None = Field(
        None,
        description="Folder of the city's documents (Markdown, HTML, PDF, text) the desk "
        "answers from; the built-in sample documents when unset.",
    )
    civic_cache_dir: Path = Field(
        Path("var/civic"), description="Where the desk keeps its document index cache."
    )
    civic_media_dir: Path = Field(
        Path("var/media"), description="Where photos attached to complaints are stored."
    )
    civic_media_max_bytes: int = Field(
        5_000_000, ge=1, description="Largest photo accepted with a complaint (bytes)."
    )
    civic_anonymous_reports: bool = Field(
        True, description="Let citizens file complaints without an API key (Open311 POST)."
    )
    civic_duplicate_radius_m: float = Field(
        150.0, gt=0,
        description="An open request of the same category this close (metres) with a similar "
        "description is linked instead of filed twice.",
    )
    civic_duplicate_days: float = Field(
        14.0, gt=0, description="Only open requests filed this many days back are duplicates."
    )
    civic_generator_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible endpoint that phrases answers (its "
        "output must pass the citation check); extractive answers when unset.",
    )
    civic_generator_model: str | None = Field(
        None, description="Model name sent to the OpenAI-compatible endpoint."
    )
    civic_generator_key_env: str | None = Field(
        None, description="Name of the environment variable holding that endpoint's API key."
    )
    civic_gguf_path: Path | None = Field(
        None, description="A local GGUF model run through llama-cpp-python (the llm extra)."
    )

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                f"unknown store URL scheme in {v.split('://')[0]!r}: "
                "use sqlite:///PATH or postgresql://..."
            )
        return v

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, v: str) -> str:
        v = v.upper()
        if v not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
        return v
