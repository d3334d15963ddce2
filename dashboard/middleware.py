from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class RefuseNulMiddleware:
    """Refuse page requests whose query or form values hold a NUL character.

    PostgreSQL cannot store or compare text with NUL, so such a value would otherwise end
    as a server error deep in a query. The API answers the same in its own error shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/") and "\x00" in request.path + _values(request):
            return HttpResponseBadRequest(
                "Text cannot contain the NUL character (\\u0000).", content_type="text/plain"
            )
        return self.get_response(request)


def _values(request: HttpRequest) -> str:
    parts = [f"{k}{v}" for k, values in request.GET.lists() for v in values]
    if request.method == "POST" and request.content_type != "multipart/form-data":
        parts += [f"{k}{v}" for k, values in request.POST.lists() for v in values]
    return "".join(parts)
