"""The CLI's expected failure (operator's shell): a message for the operator and the exit status to end with."""

from __future__ import annotations

from tts_vocab.exit_codes import EXIT_FAILED


class CliError(Exception):
    """An expected failure with a message for the operator."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code
