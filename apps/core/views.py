from functools import cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe
from django.views.defaults import page_not_found

from apps.core.health import liveness, readiness
from apps.core.metrics import PROXY_HEADERS, exposition, scrape_allowed
from apps.core.selectors import web_chat_bots_list


@require_safe
def health(request):
    """The original check, kept for existing probes: the database and Redis both answer."""
    ready, answer = readiness(only=("database", "redis"))
    checks = {
        name: "ok" if result["status"] == "ok" else f"error: {result['error']}"
        for name, result in answer["checks"].items()
    }
    return JsonResponse(
        {"status": "ok" if ready else "degraded", **checks}, status=200 if ready else 503
    )


@require_safe
@never_cache
def healthz(request):
    """/healthz: liveness. The process answers (with its version and uptime); no checks."""
    return JsonResponse(liveness())


@require_safe
@never_cache
def readyz(request):
    """/readyz: readiness. 200 when the database, Redis, the broker, workers and connectors
    all answer; 503 with what failed otherwise."""
    ready, answer = readiness()
    return JsonResponse(answer, status=200 if ready else 503)


@require_safe
@never_cache
def metrics(request):
    """/metrics: Prometheus exposition, for METRICS_ALLOWED_NETWORKS or the METRICS_TOKEN."""
    allowed = scrape_allowed(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.headers.get("Authorization", ""),
        proxied=any(header in request.headers for header in PROXY_HEADERS),
    )
    if not allowed:
        return JsonResponse(
            {"error": gettext("Metrics need a bearer token (METRICS_TOKEN).")},
            status=401 if settings.METRICS_TOKEN else 403,
            headers={"WWW-Authenticate": "Bearer"} if settings.METRICS_TOKEN else {},
        )
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


@require_safe
def home(request):
    """/: where to go from here (admin, console, the web chats, the API docs)."""
    return render(request, "home.html", {"web_chat_bots": web_chat_bots_list()})


@cache
def _favicon() -> bytes:
    return (settings.BASE_DIR / "static" / "favicon.svg").read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request):
    """/favicon.ico, which browsers ask for on every site (pages link the SVG too)."""
    return HttpResponse(_favicon(), content_type="image/svg+xml")


def not_found(request, exception):
    """404: JSON under /api/ (an id the URL patterns cannot match), the usual page elsewhere."""
    if request.path.startswith("/api/"):
        from rest_framework.exceptions import NotFound

        return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
    return page_not_found(request, exception)
