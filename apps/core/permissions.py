"""REST API permissions: the same model permissions the admin enforces.

Staff status alone opens nothing: reading needs the model's `view_` permission and
writing its `add_`/`change_`/`delete_`, as in the admin. Custom actions name the
permissions they need in the view's `action_permissions`.
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is not None:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(required))
        return super().has_permission(request, view)
