"""``tts-ops synth``: synthesise text to an audio file in-process, without a server (operator's shell).

The audio is what the daemon would answer for the same request and config: an SSML document (``<speak>…``) is
parsed by the daemon's parser and rendered by the worker's renderer, and the answer is normalised to
``audio.loudness_lufs`` like every worker's answer."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tts_ops.cli.errors import CliError
from tts_ops.cli.local_engine import load_engine, native_info_silenced
from tts_ops.config import load_config
from tts_ops.http.ssml import ssml_of
from tts_vocab.errors import InvalidRequest
from tts_vocab.exit_codes import EXIT_USAGE
from tts_vocab.formats import format_for_path, normalize_format
from tts_vocab.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

STDOUT = "-"
DEFAULT_STDOUT_FORMAT = "wav"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesise text to a file in-process (no server needed)")
    p.add_argument("text", help="text to speak, or an SSML document (<speak>...</speak>); '-' reads standard input")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output file (.wav .flac .ogg .opus .mp3 .pcm) in an existing directory; '-' writes the "
                        "audio to standard output (format from --format, default wav)")
    p.add_argument("--emotion", default="neutral", help="neutral, happy, sad, angry, fear, surprise, disgust")
    p.add_argument("--speed", type=float, default=1.0, help="0.5 (slow) to 2.0 (fast)")
    p.add_argument("--voice", default=None, help="voice id (Sambert: zhitian_emo, zhiyan_emo, zhizhe_emo, zhibei_emo)")
    p.add_argument("--format", default=None,
                   help="audio format; default: from the output file's extension (wav for -o -)")
    p.add_argument("--sample-rate", type=int, default=None, help="resample to this rate (Hz)")
    p.add_argument("--engine", default=None, help="engine id (default: from config, fastspeech2-baker)")
    p.add_argument("--config", type=Path, default=None, help="YAML config (for engine options and model dir)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Heavy (numpy, soundfile, pyloudnorm): loaded only when synthesising, not to print --help.
    from inference.audio import encode
    from inference.engines.base import SynthesisParams
    from inference.engines.script import render_script
    from inference.loudness import normalize_loudness

    text = sys.stdin.read() if args.text == "-" else args.text
    script = ssml_of(text)  # a 400 in the daemon, exit 2 here: checked before the model loads
    params = SynthesisParams.build(args.emotion, args.speed, args.voice)
    fmt = choose_format(args.format, args.output)
    if args.sample_rate is not None and not MIN_SAMPLE_RATE <= args.sample_rate <= MAX_SAMPLE_RATE:
        raise CliError(f"--sample-rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}", code=EXIT_USAGE)
    check_output_dir(args.output)
    config = load_config(args.config)
    start = time.monotonic()
    quiet = not args.verbose  # the runtime's INFO lines only with tts-ops --verbose
    engine = load_engine(config, args.engine or config.workers.engine, quiet_native=quiet)
    rate = engine.info().sample_rate
    with native_info_silenced(quiet):
        samples = engine.synthesize(text, params) if script is None else render_script(engine, script, params)
    if config.audio.loudness_lufs is not None:
        samples = normalize_loudness(samples, rate, config.audio.loudness_lufs)
    encoded = encode(samples, rate, fmt, args.sample_rate)
    write_output(args.output, encoded.data)
    where = "standard output" if to_stdout(args.output) else str(args.output)
    # With -o - the audio owns stdout: the summary goes to stderr.
    print(f"wrote {where} ({encoded.format}, {encoded.sample_rate} Hz, {encoded.duration_s:.2f} s audio, "
          f"{time.monotonic() - start:.2f} s total)", file=sys.stderr if to_stdout(args.output) else sys.stdout)
    return 0


def to_stdout(output: Path) -> bool:
    return str(output) == STDOUT


def check_output_dir(output: Path) -> None:
    """Refuse a missing (or non-directory) parent before loading the model: a typo in the path must not create
    directories, nor cost a synthesis."""
    if to_stdout(output):
        return
    parent = output.parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise CliError(f"output directory {parent} {problem}; create it first or choose another -o path",
                       code=EXIT_USAGE)


def write_output(output: Path, data: bytes) -> None:
    if to_stdout(output):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {output}: {exc.strerror}") from exc


def choose_format(flag: str | None, output: Path) -> str:
    """The format from ``--format`` or the file's extension; both given and disagreeing is an error, since a
    ``.wav`` file holding Ogg data fools every player."""
    if to_stdout(output):
        return normalize_format(flag) if flag is not None else DEFAULT_STDOUT_FORMAT
    if flag is None:
        return format_for_path(output)
    fmt = normalize_format(flag)
    try:
        implied = format_for_path(output)
    except InvalidRequest:
        return fmt  # an unusual extension: --format decides
    if implied != fmt:
        raise CliError(f"--format {flag} contradicts the output file's extension ({output.suffix}); "
                       "change one of them", code=EXIT_USAGE)
    return fmt
