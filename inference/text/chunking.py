"""Split request text into synthesis chunks: sentences, merged when tiny, split when too long.

Runs in three places: the HTTP front-end process (it streams audio chunk by chunk in this order), the worker
process and ``tts-ops synth`` (the Mandarin frontend re-splits what it is given). The front end must stay light,
so this module is pure ``re`` and imports nothing else: no numpy, no pypinyin, no WeTextProcessing.

Rules, in order:
1. Sentences end at 。！？!?；;… or a newline; the punctuation (and any closing quote or bracket right after it)
   stays with its sentence.
2. A sentence longer than ``max_chars`` is cut at clause punctuation (，、：and ASCII , : when not between
   digits, so "1,000" and "12:30" survive for text normalisation), clauses packed greedily up to ``max_chars``.
3. A clause still longer than that is hard-cut at ``max_chars``, moved back to the start of an ASCII run
   ("iPhone", "3.14", "12:30") if the cut would fall inside one.
4. Pieces shorter than ``MIN_CHUNK_CHARS`` are merged with a neighbour when the result fits in ``max_chars``:
   one-word sentences ("好。") get odd prosody on their own and cost a model call each.

Chunks are slices of the original text (whitespace stripped at the ends), so joining them loses nothing but
whitespace. Re-splitting a chunk with the same ``max_chars`` returns it unchanged, which lets the worker
re-split what the front end sent without changing the boundaries.
"""

from __future__ import annotations

import re

# Below this many characters a piece is merged with a neighbour (when the merge fits in max_chars).
MIN_CHUNK_CHARS = 8

_SENTENCE = re.compile(
    r"""[^。！？!?；;…\n]*          # the sentence body
        (?:[。！？!?；;…]+           # its end punctuation (runs like ?! or …… count once)
           [”’"'」』）)\]】》]*     # closing quotes/brackets belong to the sentence they close
        |\n                        # a line break ends it too (a quote after it opens the next line)
        |$)""",
    re.VERBOSE,
)
# Clause boundaries; ASCII , and : only when not inside a number ("1,000", "12:30" are one token for TN).
_CLAUSE_END = re.compile(r"[，、：]|(?<!\d)[,:]|[,:](?!\d)")
# Runs a hard cut must not fall inside: words, numbers with their separators, versions, times.
_ASCII_RUN = re.compile(r"[A-Za-z0-9]+(?:[.:,/%-][A-Za-z0-9]+)*%?")

Span = tuple[int, int]


def split_chunks(text: str, max_chars: int = 60) -> list[str]:
    """Split ``text`` into stripped, non-empty chunks of at most ``max_chars`` characters each."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces: list[Span] = []
    for sentence in _sentence_spans(text):
        pieces.extend(_fit(text, sentence, max_chars))
    return [text[start:end].strip() for start, end in _merge_short(text, pieces, max_chars)]


def _sentence_spans(text: str) -> list[Span]:
    spans = []
    for match in _SENTENCE.finditer(text):
        span = _stripped(text, match.start(), match.end())
        if span:
            spans.append(span)
    return spans


def _fit(text: str, span: Span, max_chars: int) -> list[Span]:
    """The span itself if short enough, else clause-sized pieces, else hard cuts."""
    if _length(text, span) <= max_chars:
        return [span]
    packed: list[Span] = []
    for clause in _clause_spans(text, span):
        if _length(text, clause) > max_chars:
            packed.extend(_hard_cut(text, clause, max_chars))
        elif packed and _length(text, (packed[-1][0], clause[1])) <= max_chars:
            packed[-1] = (packed[-1][0], clause[1])
        else:
            packed.append(clause)
    return packed


def _clause_spans(text: str, span: Span) -> list[Span]:
    start, end = span
    spans, piece_start = [], start
    for match in _CLAUSE_END.finditer(text, start, end):
        spans.append((piece_start, match.end()))
        piece_start = match.end()
    spans.append((piece_start, end))
    return [s for s in (_stripped(text, a, b) for a, b in spans) if s]


def _hard_cut(text: str, span: Span, max_chars: int) -> list[Span]:
    start, end = span
    protected = [m.span() for m in _ASCII_RUN.finditer(text, start, end)]
    spans = []
    while end - start > max_chars:
        cut = start + max_chars
        for run_start, run_end in protected:
            # Back off to the run's start unless the run itself is longer than a chunk (then cutting is forced).
            if run_start < cut < run_end and run_start > start:
                cut = run_start
                break
        piece = _stripped(text, start, cut)
        if piece:
            spans.append(piece)
        start = cut
    tail = _stripped(text, start, end)
    if tail:
        spans.append(tail)
    return spans


def _merge_short(text: str, pieces: list[Span], max_chars: int) -> list[Span]:
    merged: list[Span] = []
    for piece in pieces:
        if merged:
            previous = merged[-1]
            tiny = _length(text, previous) < MIN_CHUNK_CHARS or _length(text, piece) < MIN_CHUNK_CHARS
            if tiny and _length(text, (previous[0], piece[1])) <= max_chars:
                merged[-1] = (previous[0], piece[1])
                continue
        merged.append(piece)
    return merged


def _stripped(text: str, start: int, end: int) -> Span | None:
    """The span without leading/trailing whitespace, or None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _length(text: str, span: Span) -> int:
    return span[1] - span[0]
