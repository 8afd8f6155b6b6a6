"""Exception hierarchy shared by the tts-ops daemon and CLI; the CLI maps these to messages and exit codes."""


class TtsOpsError(Exception):
    """Base of every error tts-ops raises on purpose."""


class ConfigError(TtsOpsError):
    """The configuration is invalid; ``problems`` holds one line per problem, also joined into the message."""

    def __init__(self, problems: "str | list[str]") -> None:
        # Accept a plain string too, so the exception survives pickling (args is the joined message).
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
