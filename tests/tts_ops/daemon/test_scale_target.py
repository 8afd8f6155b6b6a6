"""The runtime worker-count target: a runtime scale survives reloads until the file's count changes or a reset."""

from tts_ops.daemon import ScaleTarget


def test_follows_the_file_until_scaled():
    target = ScaleTarget(2)
    assert target.count == 2 and target.public() == {"configured": 2, "override": None}
    assert target.reloaded(3).count == 3


def test_runtime_scale_survives_a_reload_with_the_same_file_count():
    target = ScaleTarget(2).scaled(5).reloaded(2)
    assert target.count == 5 and target.public() == {"configured": 2, "override": 5}


def test_an_edited_file_count_wins_over_the_runtime_scale():
    target = ScaleTarget(2).scaled(5).reloaded(4)
    assert target.count == 4 and target.override is None


def test_reset_goes_back_to_the_file():
    assert ScaleTarget(2).scaled(5).reset() == ScaleTarget(2)
