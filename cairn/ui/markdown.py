"""Descriptions as Markdown: rendered by markdown-it-py (CommonMark plus tables and
strikethrough; raw HTML in the text is not passed through), then sanitized by nh3 (an
allow-list of tags and attributes; no images, which the pages' CSP would refuse from
elsewhere anyway; links only to http, https and mailto, marked ``rel="noopener noreferrer
nofollow"``)."""

from __future__ import annotations

import functools
import html
import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

__all__ = ["plain_summary", "render_markdown"]

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}}


_HEADING = re.compile(r"<(/?)h([1-6])>")


def _lower(match: re.Match[str]) -> str:
    return f"<{match.group(1)}h{min(int(match.group(2)) + 2, 6)}>"


@functools.cache
def _parser() -> MarkdownIt:
    # html=False: HTML written in a description shows as text, never as markup.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> Markup:
    # A description's headings sit under the page's own: # becomes h3.
    rendered = _HEADING.sub(_lower, _parser().render(text))
    clean = nh3.clean(
        rendered,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # sanitized just above


def plain_summary(text: str, limit: int = 160) -> str:
    """The description's text without markup, shortened: for lists."""
    words = html.unescape(nh3.clean(_parser().render(text), tags=set())).split()
    summary = " ".join(words)
    return summary if len(summary) <= limit else summary[: limit - 1].rstrip() + "…"
