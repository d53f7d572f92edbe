from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.bots.api import BotViewSet
from apps.bots.webhooks import platform_webhook
from apps.conversations.api import ConversationViewSet
from apps.conversations.views import web_chat
from apps.core.views import favicon, health, healthz, home, metrics, readyz
from apps.providers.api import ModelProfileViewSet, ProviderViewSet
from apps.routing.api import ReleaseViewSet, RoutingRuleViewSet, VariantViewSet
from apps.skills.api import SkillInstanceViewSet

admin.site.site_header = _("Assistant administration")
admin.site.site_title = _("Assistant admin")
admin.site.index_title = _("Bots, models and conversations")

# The API answers an unmatched URL in JSON too (schemathesis checks every answer's type).
handler404 = "apps.core.views.not_found"

router = DefaultRouter()
router.register("providers", ProviderViewSet)
router.register("profiles", ModelProfileViewSet)
router.register("bots", BotViewSet)
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("routing-rules", RoutingRuleViewSet)
router.register("skills", SkillInstanceViewSet)
router.register("variants", VariantViewSet)
router.register("releases", ReleaseViewSet)

urlpatterns = [
    path("", home, name="home"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/webhooks/<str:platform>/<uuid:bot_id>/", platform_webhook, name="webhook"),
    path("chat/<uuid:bot_id>/", web_chat, name="web-chat"),
    path("console/", include("apps.conversations.urls")),
    path("health/", health, name="health"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    # The language switch posts to i18n/setlang/; scripts' strings come from jsi18n/.
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
]
