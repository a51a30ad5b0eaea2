"""Refuse a NUL character in a URL or query string before any view runs.

PostgreSQL text cannot hold NUL: a name like `a%00b` in a URL or a `?model=` filter would
reach a query and fail as a server error. Refusing it here covers every endpoint at once.
"""

from django.http import JsonResponse

from registry.errors import error_body


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.GET
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in query.getlist(key))
            for key in query
        ):
            return JsonResponse(
                error_body(400, "invalid", "the URL contains a NUL character"), status=400
            )
        return self.get_response(request)
