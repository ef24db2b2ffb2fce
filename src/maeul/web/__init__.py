"""The web: operator console and citizen portal (server-rendered; see docs/web.md)."""
