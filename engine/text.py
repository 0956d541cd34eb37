"""Names from the user's data (class names, file names) inside text that the dashboard renders as Markdown."""

from __future__ import annotations

import re


def literal(text: str) -> str:
    """`text` as a Markdown code span, so that a class name such as `**x**`, `:red[x]` or `$x$` is shown as written
    wherever it appears in rendered text. A line break or other control character is shown escaped (`\\n`): a blank
    line would end the span, and what follows it (a link, a remote image) would render."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
