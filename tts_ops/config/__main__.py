"""``python -m tts_ops.config``: print the generated reference YAML (the content of config/tts-ops.yaml)."""

from tts_ops.config import render_yaml_reference

print(render_yaml_reference(), end="")
