"""The purification service: FastAPI over a ``purifier`` backend, with a dynamic batcher.

``create_app(settings)`` builds the app; ``ebm-purify serve`` runs it under uvicorn."""
