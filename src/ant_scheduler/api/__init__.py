"""The HTTP API (FastAPI): auth, validation and JSON shapes. No scheduling logic lives here."""
