"""The findings page (book/findings.md): every number on it is pasted from an executed chapter,
never typed. (That every pasted key exists is checked by the site build, which refuses a glue
reference it cannot resolve: tests/test_book.py.)"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "findings.md"
GLUE = re.compile(r"\{glue:text\}`(executed/[\w.]+)::(\w+)(?::[^`]*)?`")
ALLOWED = re.compile(
    r"\$[^$]*\$"  # mathematics ($R^2$, $\alpha = 0$)
    r"|(?:Theorem|Corollar(?:y|ies)|Figures?|Table|appendix|section|Eq\.)\s+[\dA-J.]+"
    r"(?:\s*(?:and|/)\s*[\d.]+)?"
    r"|^:(?:widths|header-rows):.*$"
    r"|\{cite\}`[^`]*`"
    r"|\]\([^)]*\)",  # link targets
    re.MULTILINE)


def test_no_number_on_the_findings_page_is_typed_by_hand():
    text = GLUE.sub("", PAGE.read_text())
    text = ALLOWED.sub("", text)
    typed = re.findall(r".{0,30}\d.{0,30}", text)
    assert not typed, f"numbers typed on the findings page: {typed}"
