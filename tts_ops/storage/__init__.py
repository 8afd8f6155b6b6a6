"""Saved synthesized audio on disk (daemon process): the output store and its file-name rules."""

from tts_ops.storage.output_store import OutputStore

__all__ = ["OutputStore"]
