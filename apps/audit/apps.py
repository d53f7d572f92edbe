from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = _("Audit")
    label = "audit"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import (
            user_logged_in,
            user_logged_out,
            user_login_failed,
        )

        user_logged_in.connect(_logged_in, dispatch_uid="audit-login")
        user_locked_out.connect(_locked_out, dispatch_uid="audit-locked-out")
        user_logged_out.connect(_logged_out, dispatch_uid="audit-logout")
        user_login_failed.connect(_login_failed, dispatch_uid="audit-login-failed")


# Django's own sign-in signals are the one place every login passes (admin, console, API
# session): they only call the audit service.


def _logged_in(sender, request, user, **kwargs) -> None:
    from apps.audit.services import audit_sign_in

    audit_sign_in(action="auth.login", request=request, user=user)


def _logged_out(sender, request, user, **kwargs) -> None:
    from apps.audit.services import audit_sign_in

    audit_sign_in(action="auth.logout", request=request, user=user)


def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    from apps.audit.services import audit_sign_in

    username = credentials.get("username", "") if isinstance(credentials, dict) else ""
    audit_sign_in(action="auth.login_failed", request=request, username=str(username)[:150])


def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    from apps.audit.services import audit_sign_in

    audit_sign_in(action="auth.locked_out", request=request, username=str(username or "")[:150])
