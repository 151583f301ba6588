"""A JSON parser that refuses oversized bodies before reading them: a thin-client
request is a few hundred bytes, so anything large is an error, not a login."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SmallJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.THIN_CLIENT_MAX_BODY
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            length = 0
        if length > limit:
            raise ParseError(f"The request body is larger than {limit} bytes.")
        return super().parse(stream, media_type, parser_context)
