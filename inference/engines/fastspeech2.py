"""The bundled voice: FastSpeech2 acoustic model + Multi-band MelGAN vocoder (Baker corpus, Mandarin female, 24 kHz)
on LiteRT.

Runs in the worker process (and in-process for ``tts-ops synth``). Same shape as Sambert-HifiGan: text frontend ->
phoneme ids -> mel spectrogram -> waveform. The model has one voice and no emotion embedding, so each emotion is a
prosody preset (from config): pitch-range, energy and duration ratios fed to FastSpeech2's variance adaptor, then
pitch level, clause pauses, a final rise, a pitch slope, an energy slope, brightness and gain applied to the
waveform (inference/prosody.py).
A speed is split between the model's duration ratio (kept where it sounds natural) and a pitch-preserving stretch:
``tempo_plan`` says how. Times on the model's output (its durations) reach the delivered audio through the
stretch's time map and the contour effects' (``prosody.apply_plan`` and ``prosody.shape``): timestamps follow both.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.audio import check_output
from inference.engines.base import EMOTIONS, Engine, EngineInfo, SynthesisParams
from inference.engines.pieces import GUARD_MIN_IDS, apply_gain, ending_is_cut, join_rendered
from inference.engines.vocoding import vocode_windowed
from inference.errors import BootError, EngineFailure, TextError
from inference.memory import output_frames, release_free_memory
from inference.models.store import ModelStore, default_store_dir
from inference.prosody import TempoPlan, apply_plan, plan_tempo, shape
from inference.tempo_map import TimeMap, symbol_kinds
from inference.text.alignment import Timeline, align_piece
from inference.text.lexicon import load_checked
from tts_vocab.engines import FASTSPEECH2_BAKER, FASTSPEECH2_PRESETS
from tts_vocab.messages import FrontendView
from tts_vocab.ssml import Say

if TYPE_CHECKING:  # the frontend pulls in pypinyin and WeTextProcessing; load() imports it
    from inference.text.frontend import Chunk

log = logging.getLogger("tts_ops.engine")

MODEL_ID = FASTSPEECH2_BAKER.id
SAMPLE_RATE = 24000
VOICE = "baker"
ACOUSTIC_FILE = "fastspeech2_quan.tflite"
VOCODER_FILE = "mb_melgan.tflite"
MAPPER_FILE = "baker_mapper.json"
# Output 1 of the acoustic model is the post-net mel (output 0 is the pre-net one).
MEL_OUTPUT = 1
# Output 2: frames per input symbol ([1, T] int32), the duration ratio already applied; they sum to the mel length.
DURATION_OUTPUT = 2

# Emotion presets: the shared vocabulary's defaults (tts_vocab.engines, where their measurements are noted);
# config overrides them.
DEFAULT_PRESETS = FASTSPEECH2_PRESETS
# The decoder's position table has 2049 rows: a mel longer than 2048 frames (~25 s) fails in a GATHER op. Frames
# per input id measured 4.7-5.5 x the duration ratio (Chinese, digits, spelled letters), so pieces are sized for
# 6 frames per id within a 1800-frame budget; should an estimate still miss, the piece is halved and retried.
FRAMES_PER_ID = 6.0
FRAME_BUDGET = 1800
RETRY_SPLITS = 2
# Endings break on long inputs: past a length the model stops mid-sound and the closing syllable is lost (the mel
# barely grows). Measured 2026-12-04 on 24 unpunctuated prefixes of the sample paragraph at duration ratios 0.5, 1.0
# and 2.0: every call up to 128 ids ended in silence; the first cut endings appeared at 134 ids (ratio 0.5) and
# 140 ids (ratio 1.0), and from 146 ids most calls were cut. One model call gets at most MAX_IDS ids (a margin of
# 14 below the first failure); longer chunks are re-split at clauses, then at prosodic-word boundaries.
MAX_IDS = 120
HOP_SAMPLES = 300  # samples per mel frame
# Silence where a chunk had to be cut into model-sized pieces (normally at a comma).
PIECE_PAUSE_S = 0.12
# Bounded memory (issue 11): the acoustic interpreter is re-created after a call whose mel had more frames than
# this (buffers ~15 + 0.065 MiB/frame, see inference/memory.py). 900 frames keeps every preset at speed 1
# (a 120-id piece is ~660 frames, x1.25 for "sad") on one interpreter; slower speeds pay ~20 ms to re-create it.
# The vocoder runs in bounded windows instead (inference/engines/vocoding.py).
ACOUSTIC_KEEP_FRAMES = 900
# Where a preset with a clause pause (pause_s) cuts a chunk: after these marks (not between digits, as in 1,000).
CLAUSE_SPLIT = re.compile(r"(?<=[，、；：,;:])(?!\d)")


class FastSpeech2Engine(Engine):
    id = MODEL_ID

    def __init__(self, *, store_dir: Path | None = None, threads: int = 1,
                 emotions: Mapping[str, Mapping[str, float]] | None = None,
                 pause_s: float = FASTSPEECH2_BAKER.pause_s, max_chunk_chars: int = FASTSPEECH2_BAKER.max_chunk_chars,
                 verify: bool = True, lexicon: str | None = None) -> None:
        self._store_dir = store_dir
        #: Path of the operators' pronunciation dictionary (the daemon's validated snapshot of it), or None.
        self._lexicon_path = lexicon
        self._threads = threads
        self._presets = {name: dict(DEFAULT_PRESETS[name], **dict((emotions or {}).get(name, {}))) for name in EMOTIONS}
        self.pause_s = pause_s
        self.max_chunk_chars = max_chunk_chars
        self._verify = verify
        self._acoustic: Any = None
        self._vocoder: Any = None
        self._frontend: Any = None
        self._acoustic_bytes = b""
        self._vocoder_bytes = b""
        self._model_dir = Path()
        self._skipped: list[str] = []
        self._version = "unknown"
        # While a timed synthesis runs: each rendered piece with its symbol durations and length in samples.
        self._rendered: list[tuple[Chunk, np.ndarray, int] | None] | None = None
        self._durations = np.zeros(0, np.int32)
        self._last_ids = 0  # input length of the last acoustic invoke
        # The last synthesize_chunk's map from the model's output to the delivered audio (for its timestamps).
        self._time_map = TimeMap.uniform(0, 1.0)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def preload(self) -> None:
        """Locate, verify and read the model files and build the frontend, without LiteRT: the zygote runs this
        once before forking, so its children share the result and ``load`` only creates the interpreters."""
        if self._frontend is not None:
            return
        model_dir = self._locate_model()
        # Heavy (pypinyin, jieba, WeTextProcessing's FSTs): imported when the engine loads, not with the module.
        from inference.models.tflite_patch import patch_flex_random_uniform
        from inference.text import MandarinFrontend

        try:
            mapper = json.loads((model_dir / MAPPER_FILE).read_text(encoding="utf-8"))
            self._acoustic_bytes = patch_flex_random_uniform((model_dir / ACOUSTIC_FILE).read_bytes())
            # Read here too, so a worker forked from the zygote runs exactly the files the zygote verified, never
            # a vocoder replaced on disk since (a newer pull) beside an older acoustic model.
            self._vocoder_bytes = (model_dir / VOCODER_FILE).read_bytes()
        except BootError:
            raise
        except Exception as exc:  # unreadable or malformed files
            raise BootError(f"cannot load {MODEL_ID} from {model_dir}: {exc}") from exc
        self._model_dir = model_dir
        lexicon = load_checked(self._lexicon_path) if self._lexicon_path else None
        self._frontend = MandarinFrontend(mapper, lexicon)
        if lexicon:
            # A changed dictionary changes the audio: its digest joins the model version, hence the cache key.
            self._version = f"{self._version}+lexicon.{lexicon.digest}"
            log.info("pronunciation dictionary: %d entries (%s)", len(lexicon), lexicon.digest)

    def load(self) -> None:
        self.preload()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise BootError(f"LiteRT is not installed ({exc}); run: pip install ai-edge-litert") from exc
        model_dir = self._model_dir
        interpreters = []
        for name, content in ((ACOUSTIC_FILE, self._acoustic_bytes), (VOCODER_FILE, self._vocoder_bytes)):
            try:
                interpreters.append(Interpreter(model_content=content, num_threads=self._threads))
            except Exception as exc:  # LiteRT raises ValueError/RuntimeError for unreadable models
                raise BootError(f"cannot load {MODEL_ID} from {model_dir}: {name}: {exc}") from exc
        self._acoustic, self._vocoder = interpreters
        self._inputs = {d["name"]: d["index"] for d in self._acoustic.get_input_details()}
        missing = {"input_ids", "speaker_ids", "speed_ratios", "f0_ratios", "energy_ratios"} - set(self._inputs)
        if missing:
            raise BootError(f"{ACOUSTIC_FILE} lacks expected inputs {sorted(missing)}; wrong model file?")
        log.info("loaded %s %s from %s (threads=%d)", MODEL_ID, self._version, model_dir, self._threads)

    def _new_acoustic(self) -> Any:
        from ai_edge_litert.interpreter import Interpreter  # heavy: LiteRT, imported once load() runs

        return Interpreter(model_content=self._acoustic_bytes, num_threads=self._threads)

    def _locate_model(self) -> Path:
        store = ModelStore(self._store_dir or default_store_dir())
        path = store.ensure(MODEL_ID, progress=lambda line: log.info("model pull: %s", line))
        if self._verify:
            store.verify(MODEL_ID)
        self._version = store.manifest(MODEL_ID).get("version", "unknown")
        return path

    def info(self) -> EngineInfo:
        return EngineInfo(MODEL_ID, self._version, SAMPLE_RATE, (VOICE,), VOICE)

    def presets(self) -> dict[str, dict[str, float]]:
        """The prosody preset of every emotion (documented in the README)."""
        return {name: dict(values) for name, values in self._presets.items()}

    # -- synthesis -------------------------------------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        self._require_loaded()
        chunks = self._frontend.encode(text, max_chars=self.max_chunk_chars)
        # Includes what chunks dropped as unspeakable could not read; the same characters counted again when each
        # chunk is rendered are merged, as the reply names distinct code points.
        self._skipped.extend(char for chunk in chunks for char in chunk.skipped)
        return [chunk.text for chunk in chunks]

    def take_skipped(self) -> tuple[str, ...]:
        skipped, self._skipped = tuple(self._skipped), []
        return skipped

    def phonemize(self, text: str) -> FrontendView:
        self._require_loaded()
        return FrontendView.from_wire(self._frontend.phonemize(text, max_chars=self.max_chunk_chars))

    def synthesize_run(self, run: Sequence[Say], params: SynthesisParams,
                       timeline: Timeline | None = None) -> np.ndarray:
        """An SSML run (added to ``timeline`` when given); each ``<phoneme>`` becomes a pronunciation-dictionary entry
        for this one synthesis, so its characters keep their place in the sentence's prosody. When the same characters
        also occur untagged (or tagged with another reading) in the run, the tagged segments are synthesised on their
        own instead."""
        self._require_loaded()
        forced = {segment.text: segment.pinyin for segment in run if segment.pinyin}
        unreadable = sorted({r for readings in forced.values() for r in readings if not self._frontend.readable(r)})
        if unreadable:
            raise TextError(f"SSML <phoneme>: this voice has no symbols for {', '.join(unreadable)}")
        text = "".join(segment.text for segment in run)
        tagged = [segment.text for segment in run if segment.pinyin]
        if (all(text.count(word) == tagged.count(word) for word in forced)
                and all(segment.pinyin == forced[segment.text] for segment in run if segment.pinyin)):
            with self._frontend.extra_entries(forced):
                return self.synthesize_whole(text, params, timeline)
        pieces = []
        for segment in run:
            with self._frontend.extra_entries({segment.text: segment.pinyin} if segment.pinyin else {}):
                try:
                    pieces.append(self.synthesize_whole(segment.text, params, timeline))
                except TextError:
                    if segment.pinyin:
                        raise  # a bit of punctuation between two tagged words is silent, not an error
        return np.concatenate(pieces)

    def synthesize_chunk(self, text: str, params: SynthesisParams) -> np.ndarray:
        self._require_loaded()
        self.resolve_voice(params.voice)
        preset = self._presets[params.emotion]
        plan = self.tempo_plan(params)
        clauses = [c for c in CLAUSE_SPLIT.split(text) if c.strip()] if preset.get("pause_s") else [text]
        joined: list[tuple[np.ndarray, np.ndarray]] = []
        for index, clause in enumerate(clauses):
            try:
                pieces = self._model_sized(clause, plan.model_duration)
            except TextError:
                if joined or index < len(clauses) - 1:
                    continue  # a clause with nothing to say ("😀", a closing quote) is silent, not an error
                raise
            if self._rendered is not None:
                self._rendered.append(None)  # a clause starts: synthesize_chunk_timed places its pause
            joined.append(join_rendered([self._render(piece, plan.model_duration, preset, RETRY_SPLITS)
                                         for piece in pieces], PIECE_PAUSE_S, SAMPLE_RATE))
        audio, kinds = join_rendered(joined, preset.get("pause_s", 0.0), SAMPLE_RATE)
        # Guard the vocoder's own output: the gain's peak limiter would otherwise hide clipping.
        check_output(audio, SAMPLE_RATE)
        audio, time_map = apply_plan(audio, plan, SAMPLE_RATE, kinds)
        audio, shape_map = shape(audio, preset, SAMPLE_RATE)
        self._time_map = time_map.then(shape_map)
        return apply_gain(audio, preset.get("gain_db", 0.0))

    def tempo_plan(self, params: SynthesisParams) -> TempoPlan:
        """How the model and the waveform stretch share this request's tempo and pitch level; its ``time_scale`` is
        the overall length factor (where each moment lands is the time map the synthesis keeps)."""
        preset = self._presets[params.emotion]
        return plan_tempo(preset["duration_ratio"], params.speed, preset.get("pitch_st", 0.0))

    def _model_sized(self, text: str, duration: float) -> list[Chunk]:
        """``text`` encoded in pieces whose mel fits the decoder at this duration ratio (usually one piece)."""
        max_ids = max(8, min(MAX_IDS, int(FRAME_BUDGET / (FRAMES_PER_ID * duration))))
        todo = list(self._frontend.encode(text, max_chars=max(self.max_chunk_chars, len(text))))
        # Counted on this first encoding only: the re-splits below encode the same characters again.
        self._skipped.extend(char for chunk in todo for char in chunk.skipped)
        fitted: list[Chunk] = []
        while todo:
            chunk = todo.pop(0)
            if len(chunk.ids) <= max_ids or len(chunk.text) == 1:
                fitted.append(chunk)
                continue
            # Re-split proportionally (at clauses first, see split_chunks); strictly shorter, so this ends.
            max_chars = max(1, min(len(chunk.text) - 1, len(chunk.text) * max_ids // len(chunk.ids)))
            todo[:0] = self._frontend.encode(chunk.text, max_chars=max_chars)
        return fitted

    def _render(self, chunk: Chunk, duration: float, preset: Mapping[str, float],
                splits_left: int) -> tuple[np.ndarray, np.ndarray]:
        """One piece's audio and its per-sample kinds (inference/tempo_map.py, for the stretch)."""
        try:
            audio = self._mel_to_audio(self._text_to_mel(chunk.ids, duration, preset["f0_ratio"],
                                                         preset["energy_ratio"]))
        except (RuntimeError, ValueError) as exc:
            self._renew_acoustic()  # a failed call may have grown its buffers before failing
            if splits_left and len(chunk.text) > 1:
                return self._render_halves(chunk, duration, preset, splits_left, f"inference failed ({exc})")
            raise EngineFailure(f"{MODEL_ID} inference failed: {exc}") from exc
        self._bound_acoustic()
        if splits_left and len(chunk.ids) >= GUARD_MIN_IDS and ending_is_cut(audio, HOP_SAMPLES, duration):
            return self._render_halves(chunk, duration, preset, splits_left, "ending cut off")
        if self._rendered is not None:
            self._rendered.append((chunk, self._durations, len(audio)))
        return audio, symbol_kinds(chunk.ids, self._durations, HOP_SAMPLES, len(audio))

    def synthesize_chunk_timed(self, text: str, params: SynthesisParams, timeline: Timeline) -> np.ndarray:
        """``synthesize_chunk`` plus its pieces on ``timeline``: the model's durations per symbol, the pauses
        ``join_rendered`` put between pieces and clauses, all carried to the delivered audio by the time map of the
        stretch and the contour effects applied after the model."""
        self._rendered = []
        try:
            audio = self.synthesize_chunk(text, params)
            rendered = self._rendered
        finally:
            self._rendered = None
        gap = int(PIECE_PAUSE_S * SAMPLE_RATE)
        clause_pause = int(self._presets[params.emotion].get("pause_s", 0.0) * SAMPLE_RATE)
        model_time = Timeline(text, SAMPLE_RATE)
        first_in_clause = True
        for event in rendered:
            if event is None:
                if model_time.samples:
                    model_time.silence(clause_pause)
                first_in_clause = True
                continue
            chunk, durations, samples = event
            if not first_in_clause:
                model_time.silence(gap)
            first_in_clause = False
            segments = align_piece(chunk.text, chunk.normalized, chunk.owners, durations.tolist())
            model_time.piece(chunk.text, segments, HOP_SAMPLES, samples)
        timeline.stretched(model_time, len(audio), self._time_map.at)
        return audio

    def _render_halves(self, chunk: Chunk, duration: float, preset: Mapping[str, float], splits_left: int,
                       why: str) -> tuple[np.ndarray, np.ndarray]:
        halves = self._frontend.encode(chunk.text, max_chars=(len(chunk.text) + 1) // 2)
        log.warning("%s %s on %d ids; retrying in %d pieces", MODEL_ID, why, len(chunk.ids), len(halves))
        return join_rendered([self._render(half, duration, preset, splits_left - 1) for half in halves],
                             PIECE_PAUSE_S, SAMPLE_RATE)

    def _text_to_mel(self, ids: np.ndarray, duration: float, f0: float, energy: float) -> np.ndarray:
        model = self._acoustic
        if len(ids) == self._last_ids:
            # The model's dropout (RANDOM_UNIFORM, see tflite_patch) restarts its seeded stream only when the op is
            # prepared again, i.e. after a change of input shape: without this detour the same text twice in a row
            # (or after a warm-up of the same length) would give different audio.
            model.resize_tensor_input(self._inputs["input_ids"], [1, len(ids) + 1])
            model.allocate_tensors()
        model.resize_tensor_input(self._inputs["input_ids"], [1, len(ids)])
        model.allocate_tensors()
        self._last_ids = len(ids)
        model.set_tensor(self._inputs["input_ids"], ids.astype(np.int32).reshape(1, -1))
        model.set_tensor(self._inputs["speaker_ids"], np.zeros([1], np.int32))
        model.set_tensor(self._inputs["speed_ratios"], np.array([duration], np.float32))
        model.set_tensor(self._inputs["f0_ratios"], np.array([f0], np.float32))
        model.set_tensor(self._inputs["energy_ratios"], np.array([energy], np.float32))
        model.invoke()
        outputs = model.get_output_details()
        self._durations = model.get_tensor(outputs[DURATION_OUTPUT]["index"])[0].copy()
        return model.get_tensor(outputs[MEL_OUTPUT]["index"])

    def _bound_acoustic(self) -> None:
        """Re-create the acoustic interpreter if its last mel grew its buffers past ACOUSTIC_KEEP_FRAMES."""
        if output_frames(self._acoustic, MEL_OUTPUT) > ACOUSTIC_KEEP_FRAMES:
            self._renew_acoustic()

    def _renew_acoustic(self) -> None:
        self._acoustic = self._new_acoustic()
        self._last_ids = 0  # a new interpreter prepares its ops afresh
        release_free_memory()

    def _mel_to_audio(self, mel: np.ndarray) -> np.ndarray:
        """The waveform of ``mel``, vocoded in windows of bounded size (see inference/engines/vocoding.py)."""
        return vocode_windowed(self._vocode, mel, HOP_SAMPLES)

    def _vocode(self, mel: np.ndarray) -> np.ndarray:
        vocoder = self._vocoder
        index = vocoder.get_input_details()[0]["index"]
        vocoder.resize_tensor_input(index, mel.shape)
        vocoder.allocate_tensors()
        vocoder.set_tensor(index, mel)
        vocoder.invoke()
        return vocoder.get_tensor(vocoder.get_output_details()[0]["index"])[0, :, 0].astype(np.float32, copy=True)

    def _require_loaded(self) -> None:
        if self._acoustic is None:
            raise EngineFailure(f"{MODEL_ID} engine used before load()")

    def close(self) -> None:
        self._acoustic = self._vocoder = None


__all__ = ["FastSpeech2Engine", "MAX_IDS", "DEFAULT_PRESETS", "MODEL_ID", "SAMPLE_RATE"]
