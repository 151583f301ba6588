"""Reading the pages the benchmarks and scale tests fetch."""

from html.parser import HTMLParser


class _TableRows(HTMLParser):
    """Counts the rows in the bodies of a page's tables, leaving out a row that is
    one cell spanning the table (the "nothing matches" line)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.rows = 0
        self._cells = 0
        self._spanning = False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self.depth += 1
        elif tag == "tr" and self.depth:
            self._end_row()
            self._cells, self._spanning = 0, False
        elif tag in ("td", "th") and self.depth:
            self._cells += 1
            self._spanning = self._spanning or any(name == "colspan" for name, _ in attrs)

    def handle_endtag(self, tag):
        if tag == "tr" and self.depth:
            self._end_row()
        elif tag == "tbody" and self.depth:
            self._end_row()
            self.depth -= 1

    def _end_row(self):
        if self._cells and not (self._cells == 1 and self._spanning):
            self.rows += 1
        self._cells, self._spanning = 0, False


def table_rows(html: str) -> int:
    """How many rows of data (outside table headers) a page's tables show."""
    parser = _TableRows()
    parser.feed(html)
    parser.close()
    return parser.rows
