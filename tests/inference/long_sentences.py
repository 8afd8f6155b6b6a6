"""Long unpunctuated Chinese sentences (40-80 characters) and the measure of a cut-off ending, shared by the engine
test of endings and by the probe that measured the model's limit."""

from __future__ import annotations

import numpy as np

RATE = 24000
FRAME = RATE // 100  # 10 ms

_SUBJECTS = ["今天上午市政府召开新闻发布会", "我们公司的研发团队经过三年努力", "住在城东的老王每天早上六点起床",
             "这家开在学校门口的小面馆", "气象台发布的最新预报显示", "图书馆二楼新开放的自习区",
             "参加这次马拉松比赛的选手们", "刚刚毕业的年轻工程师小李"]
_MIDDLES = ["在全体员工的共同支持下", "不顾连续几天的阴雨天气", "为了让更多的人了解这个项目",
            "按照事先制定好的详细计划", "趁着周末难得的空闲时间", "面对越来越激烈的市场竞争"]
_ENDS = ["正式宣布将在明年春天开通连接两座城市的高速铁路", "终于完成了新一代智能语音系统的全部测试工作",
         "沿着河边的小路慢慢地跑完了整整十公里", "推出了价格实惠而且味道地道的家常牛肉面",
         "提醒市民出门记得带好雨具并且注意交通安全", "吸引了许多附近大学的学生前来读书学习",
         "在终点线前相互拥抱庆祝自己取得的好成绩", "认真地把每一个细节都重新检查了一遍"]


_TAILS = ["让大家都感到非常满意", "这件事很快就在网上传开了", "据说下个月还会继续举办类似的活动",
          "负责人表示接下来还要进一步扩大规模"]


def _sentences() -> list[str]:
    """36 sentences: 12 of about 40-50 characters, 12 of 55-70, 12 of 70-80 (one more clause each time)."""
    out: list[str] = []
    for i in range(36):
        subject, middle = _SUBJECTS[i % len(_SUBJECTS)], _MIDDLES[(i * 5) % len(_MIDDLES)]
        end, tail = _ENDS[(i * 3) % len(_ENDS)], _TAILS[i % len(_TAILS)]
        text = subject + middle + end
        if i >= 12:
            text += tail
        if i >= 24:
            text = subject + middle + _MIDDLES[(i * 5 + 1) % len(_MIDDLES)] + end + tail
        while len(text) > 80:
            text = text[:-1]
        out.append(text)
    return out


SENTENCES = _sentences()


def tail_ratio(samples: np.ndarray) -> float:
    """The RMS of the last 20 ms, relative to the speech level (75th percentile of 10 ms frame RMS). A clean
    rendering ends in the model's own closing silence ("sil eos": near or exactly zero); a cut one stops while
    still at speech level (measured 0.33-1.38 with the id cap and the guard turned off)."""
    x = np.asarray(samples, dtype=np.float64)
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    level = float(np.percentile(np.sqrt((frames ** 2).mean(axis=1)), 75)) if len(frames) else 0.0
    tail = x[-2 * FRAME:]
    return float(np.sqrt((tail ** 2).mean())) / level if level else 0.0
