"""The daemon's HTTP listeners (daemon process, event loop): public routes (reference API, Web UI, health),
OpenAI-compatible routes and the OpenAPI document, the admin API, and their shared middleware and validation."""
