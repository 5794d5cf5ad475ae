"""Web pages: main content in, chrome out, and every character of the content mapped to where it came from."""
from __future__ import annotations

import html
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.html import extract_html
from text.mapped import MappedText

FIXTURES = Path(__file__).parent / "fixtures" / "html"
SPACES = " \t\n\r\f\v\xa0\u3000"


def check_offsets(original: str, content: MappedText) -> None:
    """Every character maps inside `original`, in order; a copied character to itself, an entity's characters to
    the entity, a collapsed space to whitespace (and what lies between), an inserted break or cell separator to
    an empty span."""
    text, starts, ends = content.text, content.starts.tolist(), content.ends.tolist()
    assert len(starts) == len(ends) == len(text) == len(content.atoms)
    assert all(0 <= start <= end <= len(original) for start, end in zip(starts, ends))
    assert starts == sorted(starts) and ends == sorted(ends)
    i = 0
    while i < len(text):
        start, end = starts[i], ends[i]
        j = i + 1
        while j < len(text) and end - start != 1 and (starts[j], ends[j]) == (start, end):
            j += 1
        piece, source = text[i:j], original[start:end]
        if start == end:
            assert piece in ("\n", " | "), (i, piece)
        elif piece == " " and source != " ":  # whitespace runs, and the markup or comments between them
            unescaped = html.unescape(source)
            assert unescaped[0] in SPACES and unescaped[-1] in SPACES, (i, source)
        else:
            assert source == piece or html.unescape(source) == piece, (i, piece, source)
        i = j


def lines(page: str) -> list[str]:
    return extract_html(page).content.text.split("\n")


FIXTURE_EXPECTATIONS = {
    "zh_news.html": (
        "再不跟Meta联合 微软就被OpenAI一个人掏空了_科技频道_新闻网",
        ["再不跟Meta联合 微软就被OpenAI一个人掏空了", "扎克伯格同学最近心情很不错。", "微软云Azure将帮Meta训练和推广Llama大模型"],
        ["首页", "科技频道", "Cookie", "分享到", "相关阅读", "Llama 2大模型", "热门评论", "赢麻了", "热门排行", "广告",
         "Copyright", "关于我们", "不是正文", "订阅", "dataLayer"],
    ),
    "en_blog.html": (
        "Why Microsoft Has to Save OpenAI – The Cloud Notebook",
        ["Why Microsoft Has to Save OpenAI\nBy Jane Doe", "$13 billion in OpenAI", "trains & serves",
         "GitHub Copilot is built on OpenAI models.\n", "“We remain committed",
         "if board.fires(ceo):\n    microsoft.hire(ceo)",
         "unusually heated. Perhaps"],
        ["Archive", "RSS", "Share on", "Tags:", "Related posts", "Comments", "Great write-up", "Subscribe", "Popular",
         "Powered by", "newsletter", "BlogPosting"],
    ),
    "zh_hant_table.html": (
        "OpenAI的動作比所有人想象的都要快 | 科技週報",
        ["OpenAI的動作比所有人想象的都要快\n", "合作方 | 金額 | 期限\n微軟 Azure | 2500億美元 | 至2030年\n亞馬遜 AWS | 380億美元 | 7年",
         "從OpenAI近期的種種動作來看"],
        ["首頁", "雲端\n", "分享到", "延伸閱讀", "輝達", "版權所有", "隱藏"],
    ),
    "zh_legacy_table_layout.html": (
        "微软OpenAI联手围剿英伟达，首款自研AI芯片下月发布！-EEPW博客",
        ["微软OpenAI联手围剿英伟达，首款自研AI芯片下月发布！\n发布人", "\n微软自研AI芯片,追赶谷歌亚马逊\n", "最直接的原因就是"],
        ["EEPW首页", "博客专栏", "嵌入式", "汽车电子", "上一篇", "下一篇", "Copyright", "doZoom", "\xa0"],
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_fixture_main_content_in_chrome_out(name: str) -> None:
    page = (FIXTURES / name).read_text(encoding="utf-8")
    title, present, absent = FIXTURE_EXPECTATIONS[name]
    extracted = extract_html(page)
    assert extracted.original == page and extracted.format == "html" and extracted.page_starts == ()
    assert extracted.title == title
    for text in present:
        assert text in extracted.content.text
    for text in absent:
        assert text not in extracted.content.text
    check_offsets(page, extracted.content)


def test_inline_elements_join_and_whitespace_collapses() -> None:
    page = "<p><span>微</span><b>软</b>与\n  OpenAI\n合作，\n共同\n发布</p><p>one\n   two <i>three</i></p>"
    assert lines(page) == ["微软与 OpenAI 合作，共同发布", "one two three"]


def test_a_space_between_cjk_characters_on_one_line_stays() -> None:
    assert lines("<h1>再不跟Meta联合 微软就被掏空了</h1>") == ["再不跟Meta联合 微软就被掏空了"]


def test_entities_map_to_their_source() -> None:
    page = "<p>AT&amp;T &lt;b&gt; &#x4e2d;&#25991; caf&eacute; AT&T</p>"
    content = extract_html(page).content
    assert content.text == "AT&T <b> 中文 café AT&T"
    amp = content.text.index("&")
    assert page[content.starts[amp] : content.ends[amp]] == "&amp;"
    check_offsets(page, content)


def test_blocks_lists_and_breaks_make_lines() -> None:
    page = "<div>first<br>second</div><ul><li>one<li>two</ul><h2>head</h2><blockquote>quote</blockquote>"
    content = extract_html(page).content
    assert content.text.split("\n") == ["first", "second", "one", "two", "head", "quote"]
    newline = content.text.index("\n")
    assert content.starts[newline] == content.ends[newline] == page.index("<br>")


def test_table_cells_row_by_row() -> None:
    page = "<table><tr><th>a</th><th>b</th><th>c</th></tr><tr><td>1<td>2<td>3</table><p>after</p>"
    assert lines(page) == ["a | b | c", "1 | 2 | 3", "after"]


def test_hidden_and_role_chrome_goes() -> None:
    page = (
        "<div role='navigation'>menu</div><div hidden>h1</div><div aria-hidden='true'>h2</div>"
        "<div style='DISPLAY: none'>h3</div><div role='banner'>b</div><p>正文内容</p><template>t</template>"
    )
    assert lines(page) == ["正文内容"]


def test_header_inside_article_stays_page_header_goes() -> None:
    page = (
        "<header>Site name</header><article><header><h1>Title</h1></header><p>Body text.</p></article>"
        "<footer>f</footer>"
    )
    assert lines(page) == ["Title", "Body text."]


def test_boilerplate_classes_go_but_not_content_ones() -> None:
    page = (
        "<body class='has-sidebar'><div class='article-content'><p>正文第一段，内容。</p></div>"
        "<div id='sidebar'>侧栏</div><div class='share-box'>分享</div><div class='ad'>广告</div></body>"
    )
    assert lines(page) == ["正文第一段，内容。"]


def test_a_page_wide_form_or_named_wrapper_is_not_chrome() -> None:
    article = "".join(f"<p>第{i}段正文，内容，比较长。</p>" for i in range(4))
    page = f"<body><form id='form1'><div id='main-nav-offset'>{article}</div><div class='nav'>菜单</div></form></body>"
    assert lines(page) == [f"第{i}段正文，内容，比较长。" for i in range(4)]


def test_link_list_inside_main_goes() -> None:
    article = "".join(f"<p>这是第{i}段正文，内容比较长，有逗号，也有句号。</p>" for i in range(5))
    related = "<ul>" + "".join(f"<li><a href='/{i}'>相关文章{i}</a></li>" for i in range(6)) + "</ul>"
    text = extract_html(f"<div class='post'>{article}<h3>相关阅读</h3>{related}</div>").content.text
    assert "这是第4段正文" in text and "相关文章" not in text


def test_scored_container_beats_navigation() -> None:
    nav = "<div>" + "".join(f"<a href='/{i}'>栏目{i}</a> " for i in range(40)) + "</div>"
    article = "<div>" + "".join(f"<p>第{i}段：微软与OpenAI的合作，云计算，芯片。</p>" for i in range(6)) + "</div>"
    text = extract_html(f"<body>{nav}{article}<div>短评</div></body>").content.text
    assert text.startswith("第0段") and "栏目" not in text and "短评" not in text


@pytest.mark.parametrize("page", ["<![foo[ x ]]>正文", "<![ 1\n<p>正文", "<p>正文<![if !IE]>", "<!-->正文", "<a b='正文"])
def test_odd_declarations_do_not_crash(page: str) -> None:
    check_offsets(page, extract_html(page).content)


def test_title_falls_back_to_og_title() -> None:
    assert extract_html("<meta property='og:title' content='OG 标题'><p>x</p>").title == "OG 标题"
    assert extract_html("<p>x</p>").title is None


def test_pre_keeps_its_whitespace() -> None:
    assert extract_html("<pre>a  b\n  c</pre>").content.text == "a  b\n  c"


def test_from_pieces_maps_copies_and_spans() -> None:
    mapped = MappedText.from_pieces([("ab", 3, 5), ("&", 5, 10), ("\n", 10, 10), ("xy", 10, 20)])
    assert mapped.text == "ab&\nxy"
    assert mapped.starts.tolist() == [3, 4, 5, 10, 10, 10]
    assert mapped.ends.tolist() == [4, 5, 10, 10, 20, 20]
    assert mapped.atoms.tolist()[:4] == [0, 0, 0, 0] and mapped.atoms[4] == mapped.atoms[5] > 0


def test_deep_and_unclosed_nesting_is_fast() -> None:
    page = "<div>" * 20000 + "<p>深" + "<li><b>x" * 20000 + "</i>" * 5000 + "</div>" * 100
    started = time.perf_counter()
    content = extract_html(page).content
    assert time.perf_counter() - started < 10
    assert content.text.startswith("深")
    check_offsets(page, content)


FRAGMENTS = [
    "<p>", "</p>", "<div class='nav'>", "<div>", "</div>", "<br/>", "<li>", "<ul>", "</ul>", "<table>", "<tr>",
    "<td>", "</td>", "<th>", "<pre>", "</pre>", "<script>", "</script>", "<style>", "<article>", "</article>",
    "<a href='x'>", "</a>", "<span hidden>", "</span>", "<title>", "</title>", "<!--", "-->", "<![CDATA[", "]]>",
    "<?xml ?>", "<!DOCTYPE html>", "<![foo[", "<![ x", "<![if !IE]>", "<![endif]>", "<!x", "</ x>", "&amp;", "&amp", "&ampx", "&#x4e2d;", "&#20013", "&#;", "&#xZZ;", "&nbsp;",
    "&unknown;", "&", "<", ">", "</", "<a", "\n", "\r\n", "\r", "  ", "\u3000", "微软", "OpenAI", ", ", "。",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=60).map("".join))
def test_arbitrary_html_never_crashes_and_stays_mapped(page: str) -> None:
    extracted = extract_html(page)
    assert extracted.original == page
    check_offsets(page, extracted.content)
