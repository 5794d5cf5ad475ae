"""The cleaning rules, one by one, and on the seed corpus."""
from pathlib import Path

import pytest

from text.clean import clean, is_chrome_line
from text.normalize import PINYIN_ANNOTATION

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def read(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


def test_pinyin_annotations_go_and_legitimate_parentheses_stay():
    text = clean("雙方達成協(xié)議，數(shù)據(jù)中心 250吉瓦(gigawatts)，纳德拉(Satya Nadella)，推理層面(inferencestack)。").text
    assert text == "雙方達成協議，數據中心 250吉瓦(gigawatts)，纳德拉(Satya Nadella)，推理層面(inferencestack)。"


def test_every_well_formed_pinyin_annotation_in_002_is_removed():
    raw = read("002_88511f47bc2856da.txt")
    assert len(PINYIN_ANNOTATION.findall(raw)) == 170
    cleaned = clean(raw).text
    assert PINYIN_ANNOTATION.search(cleaned) is None
    assert "協議" in cleaned and "數據中心" in cleaned and "(gigawatts)" in cleaned


def test_markdown_links_and_images_become_their_label():
    assert clean("译自 [Why Microsoft Has to Save OpenAI](https://x.io/a_(b)) 。![]()\n![图](y.png)").text == (
        "译自 Why Microsoft Has to Save OpenAI 。\n图"
    )


def test_kangxi_radicals_and_compatibility_ideographs_become_ordinary_ideographs_one_for_one():
    raw = "⼈⼯智能的发展⽅向，⾸次⽣成\uf9f4"  # as PDF text layers write 人工智能的发展方向，首次生成林
    cleaned = clean(raw)
    assert cleaned.text == "人工智能的发展方向，首次生成林"
    assert [cleaned.mapped.original_span(i, i + 1) for i in range(3)] == [(0, 1), (1, 2), (2, 3)]


def test_html_comment_header_goes():
    assert clean("<!-- \ntitle: 标题\ncover: x.jpg\n -->\n\n正文。").text == "正文。"


@pytest.mark.parametrize(
    "line",
    ["加载中...", "    最新资讯", "Top 10", "1 (25%)", "已有 条意见", "created by ceallan",
     "2023年07月31日 16:07 次阅读 稿源:Pingwest品玩 条评论", "EEPW首页 > 博客 > 微软OpenAI联手围剿英伟达",
     "关键词: OpenAI", "技术专区", "关闭", "郵箱 | yokyliu@pingwest.com", "點個“愛心”,再走 吧",
     "特別聲明:以上內容為自媒體平臺用戶上傳", "Notice: The content above is uploaded and posted by a user",
     "*博客内容为网友个人发布,仅代表博主个人观点,如有侵权请联系工作人员删除。*", "图源:arxiv.org"],
)
def test_site_chrome_lines(line):
    assert is_chrome_line(line)


@pytest.mark.parametrize("line", ["微软关闭了这个项目。", "OpenAI 的招聘计划", "来源:新智元", "Top 10 公司的营收都在增长"])
def test_content_is_not_chrome(line):
    assert not is_chrome_line(line)


def test_rating_widget_tail_goes():
    assert clean("正文第一段。\n对文章打分\n标题再现\n1 (25%)\n正文不该在这").text == "正文第一段。"


def test_repeated_lead_goes_and_leaves_a_break():
    raw = "标题\n摘要:这是一段在正文里还会再出现一次的导语文字，足够长。\n这是一段在正文里还会再出现一次的导语文字，足够长。\n后文。"
    cleaned = clean(raw)
    assert cleaned.text == "标题\n这是一段在正文里还会再出现一次的导语文字，足够长。\n后文。"
    assert cleaned.breaks == (len("标题\n"),)


def test_seed_corpus_chrome_is_gone():
    cleaned = {name.name: clean(name.read_text(encoding="utf-8")).text for name in CORPUS.glob("*.txt")}
    assert cleaned["000_3861388c3be20388.txt"].startswith("雇佣 CEO")
    assert "加载中" not in cleaned["001_423367123e860ede.txt"]
    assert cleaned["001_423367123e860ede.txt"].count("扎克伯格同学最近心情很不错") == 1
    assert "Notice:" not in cleaned["002_88511f47bc2856da.txt"]
    assert cleaned["003_69a75a54e2ab49f8.txt"].count("在过去三年中") == 1
    assert cleaned["004_e0dd1fc4cceb475f.txt"].startswith("微软OpenAI联手围剿英伟达")
    assert cleaned["004_e0dd1fc4cceb475f.txt"].endswith("来源:新智元")
