"""The HTTP API (FastAPI): create_app(settings) and its routes."""
