"""Inference side of tts-ops: TTS engines, the Mandarin text frontend, audio encoding and the worker process.

Everything in this package runs inside a worker process (``python -m inference.worker``) or in-process for
``tts-ops synth``; the supervisor only imports the light, model-free parts (errors, chunking).
"""
