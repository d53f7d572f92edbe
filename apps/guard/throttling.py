"""The REST API's flood limit per client address, as a DRF throttle (429 + Retry-After)."""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle

from apps.guard.services import address_flood_check, client_address


class AddressFloodThrottle(BaseThrottle):
    """FloodLimits.api_requests_per_minute per client IP address."""

    def allow_request(self, request, view) -> bool:
        decision = address_flood_check(scope="api", address=request_address(request))
        self.retry_after = decision.retry_after
        return decision.allowed

    def wait(self) -> float | None:
        return self.retry_after or None


def request_address(request) -> str:
    """The client address of a Django or DRF request (see `client_address`)."""
    return client_address(
        remote_addr=request.META.get("REMOTE_ADDR"),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
    )
