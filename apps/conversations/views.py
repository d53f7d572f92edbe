import uuid

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from apps.bots.choices import Platform
from apps.bots.models import Bot

VISITOR_SESSION_KEY = "webchat_visitor"


def web_chat(request, bot_id):
    """The web chat page for a web bot: open to all while enabled, to staff always."""
    bot = get_object_or_404(Bot, pk=bot_id, platform=Platform.WEB)
    if not bot.enabled and not request.user.is_staff:
        raise Http404("No such chat.")
    request.session.setdefault(VISITOR_SESSION_KEY, uuid.uuid4().hex)
    return render(request, "webchat/chat.html", {"bot": bot})
