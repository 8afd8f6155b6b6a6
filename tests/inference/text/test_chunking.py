"""split_chunks: sentence splitting, merging of tiny pieces, length limits, and that nothing is lost."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from inference.text import split_chunks

LONG_TEXT = (
    "今天天气真好。我们去公园散步吧！好。你说呢？他说：“好的！”然后我们就出发了……"
    "路上车很多，人也很多，大家都很开心，一直走到了下午3:30才回家，回家以后大家都累坏了，"
    "早早地就睡觉了，第二天又是新的一天。\n\n新段落\nThe GPU costs ¥1,299.50; iPhone 15 Pro 售价7999元！"
)


def _non_space(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("max_chars", [10, 20, 30, 60])
def test_long_text_splits_within_limit_and_loses_nothing(max_chars):
    chunks = split_chunks(LONG_TEXT, max_chars)
    assert len(chunks) > 1
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    assert _non_space("".join(chunks)) == _non_space(LONG_TEXT)


def test_sentences_keep_their_punctuation_and_closing_quotes():
    chunks = split_chunks("第一句话说完了。第二句话也说完了！“第三句话呢？”最后一句话在这里", max_chars=60)
    assert chunks == ["第一句话说完了。", "第二句话也说完了！", "“第三句话呢？”", "最后一句话在这里"]


def test_tiny_sentences_are_merged_with_neighbours():
    assert split_chunks("好。今天天气真的很好啊。走吧！") == ["好。今天天气真的很好啊。走吧！"]
    # ...but never beyond max_chars.
    assert split_chunks("好。今天天气真的很好啊。", max_chars=10) == ["好。", "今天天气真的很好啊。"]


def test_newlines_end_sentences():
    assert split_chunks("第一行的文字内容\n第二行的文字内容\n") == ["第一行的文字内容", "第二行的文字内容"]


def test_unpunctuated_run_is_hard_split():
    text = "我" * 300
    chunks = split_chunks(text)
    assert [len(chunk) for chunk in chunks] == [60] * 5
    assert "".join(chunks) == text


def test_long_sentence_is_split_at_clause_punctuation():
    clause = "这是一个比较长的分句，"
    chunks = split_chunks(clause * 8 + "完。", max_chars=25)
    assert chunks[0] == clause * 2
    assert all(chunk.endswith("，") for chunk in chunks[:-1])


def test_numbers_and_words_are_not_cut():
    # , and : inside numbers are not clause boundaries: the normaliser needs "1,000,000" and "12:30" whole.
    chunks = split_chunks("价格是1,000,000元，时间12:30，地点在北京，人物是张三，事情是开会", max_chars=20)
    assert "价格是1,000,000元，" in chunks and any("12:30" in chunk for chunk in chunks)
    # A hard cut backs off to the start of an ASCII run rather than split "iPhone15ProMax".
    chunks = split_chunks("我们" * 20 + "iPhone15ProMax" + "你好" * 30, max_chars=45)
    assert any(chunk.startswith("iPhone15ProMax") for chunk in chunks)


def test_whitespace_only_and_empty_give_no_chunks():
    assert split_chunks("") == []
    assert split_chunks("  \n\t \n") == []


def test_max_chars_must_be_positive():
    with pytest.raises(ValueError, match=r"^max_chars must be at least 1, got 0$"):
        split_chunks("你好", max_chars=0)


def test_random_texts_keep_the_invariants_and_resplit_stably():
    rng = random.Random(7)
    alphabet = list("我你他好的是了在有和天气今真") + list("。！？；，、：,.!?… \n") + list("ab12😀")
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        max_chars = rng.randint(1, 70)
        chunks = split_chunks(text, max_chars)
        assert chunks == split_chunks(text, max_chars)
        assert all(0 < len(chunk) <= max_chars and chunk == chunk.strip() for chunk in chunks)
        assert _non_space("".join(chunks)) == _non_space(text)
        # The worker re-splits what the front end sent it; a chunk must come back unchanged.
        assert all(split_chunks(chunk, max_chars) == [chunk] for chunk in chunks)


def test_chunking_imports_nothing_heavy():
    code = (
        "import sys, inference.text.chunking, inference.text; "
        "print(sorted(m for m in ('numpy', 'pypinyin', 'tn', 'pynini') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
