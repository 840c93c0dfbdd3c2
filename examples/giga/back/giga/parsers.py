"""The API's only parser: DRF's JSONParser, with nesting beyond what Python's
decoder can recurse into (e.g. 20 KB of "[") refused as a parse error (400)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
