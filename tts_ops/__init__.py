"""tts-ops: supervisor daemon (and its CLI) serving Chinese multi-emotion TTS over HTTP under systemd."""

__version__ = "0.1.0"
