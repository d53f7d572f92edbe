"""Login attempts per client address: a flood limit in front of the admin's login form."""

from __future__ import annotations

import math

from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext

from apps.guard.services import address_flood_check
from apps.guard.throttling import request_address


class LoginFloodMiddleware:
    """POSTs to the login page beyond FloodLimits.login_attempts_per_minute per address
    are answered 429 with Retry-After, before any password is checked. django-axes
    still locks out a username after repeated failures."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.login_path = None

    def __call__(self, request):
        if self.login_path is None:
            self.login_path = reverse("admin:login")
        if request.method == "POST" and request.path == self.login_path:
            decision = address_flood_check(scope="login", address=request_address(request))
            if not decision.allowed:
                seconds = math.ceil(decision.retry_after)
                text = gettext(
                    "Too many login attempts from your address. Try again in %(seconds)d seconds."
                ) % {"seconds": seconds}
                return HttpResponse(
                    text,
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": str(seconds)},
                )
        return self.get_response(request)
