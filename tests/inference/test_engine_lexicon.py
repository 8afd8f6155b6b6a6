"""The bundled engine with a pronunciation dictionary (``lexicon`` option, the daemon's validated copy): the view
and the audio follow the entry, and the dictionary's digest joins the model version (hence the cache key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.engines import create_engine
from inference.engines.base import SynthesisParams
from inference.errors import BootError


@pytest.fixture(scope="module")
def lexicon_engine(model_store_dir: Path, tmp_path_factory):
    path = tmp_path_factory.mktemp("lexicon") / "lexicon.tsv"
    # 银行 as yin2 xing2 is the reading of 银形 (形 xing2): the same symbols, so the same audio.
    path.write_text("# test\n银行\tyin2 xing2\n", encoding="utf-8")
    engine = create_engine("fastspeech2-baker", store_dir=model_store_dir, options={"lexicon": str(path)})
    engine.load()
    return engine


def test_view_and_audio_follow_the_entry(engine, lexicon_engine):
    text = "我们去银行办事。"
    assert engine.phonemize(text).chunks[0].pinyin[3:5] == ("yin2", "hang2")
    assert lexicon_engine.phonemize(text).chunks[0].pinyin[3:5] == ("yin2", "xing2")
    plain = engine.synthesize(text, SynthesisParams())
    with_entry = lexicon_engine.synthesize(text, SynthesisParams())
    homophone = engine.synthesize("我们去银形办事。", SynthesisParams())
    # The entry changes the audio's length to exactly that of the text the entry reads like.
    assert len(with_entry) == len(homophone) != len(plain)


def test_digest_joins_the_model_version(engine, lexicon_engine):
    base = engine.info().model_version
    assert lexicon_engine.info().model_version.startswith(base + "+lexicon.")


def test_bad_file_fails_the_boot_naming_the_line(model_store_dir, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("银行\tyin2 xing2\n行长\thang2\n", encoding="utf-8")
    engine = create_engine("fastspeech2-baker", store_dir=model_store_dir, options={"lexicon": str(path)})
    with pytest.raises(BootError, match="line 2: 2 characters"):
        engine.load()
