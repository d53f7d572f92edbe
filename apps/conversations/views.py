"""Pages: the web chat, and the staff console (live list, conversation, history, dashboard).

Thin: parse the request, check permissions, call one selector or service, render.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from apps.audit.services import client_ip
from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.conversations.choices import Author, MessageStatus, Rating
from apps.conversations.models import Conversation
from apps.conversations.selectors import (
    STATE_LABELS,
    HistoryFilter,
    console_conversations,
    conversation_summary,
    conversations_waiting,
    dashboard_stats,
    history_rows,
    history_search,
    transcript,
)
from apps.conversations.services.console import (
    ConsoleError,
    conversation_hand_back,
    conversation_take_over,
    conversations_export_csv,
    conversations_export_jsonl,
    staff_reply_send,
)
from apps.routing.selectors import variant_comparison, variant_owners

VISITOR_SESSION_KEY = "webchat_visitor"
VIEW_PERMISSION = "conversations.view_conversation"
TAKEOVER_PERMISSION = "conversations.takeover_conversation"
BOT_PREVIEW_PERMISSION = "bots.change_bot"


def web_chat(request, bot_id):
    """The web chat page for a web bot: open to all while enabled; while disabled, to
    those who may change bots (to try one before enabling it)."""
    bot = get_object_or_404(Bot, pk=bot_id, platform=Platform.WEB)
    if not bot.enabled and not bot_preview_permitted(request.user):
        raise Http404(_("No such chat."))
    request.session.setdefault(VISITOR_SESSION_KEY, uuid.uuid4().hex)
    return render(request, "webchat/chat.html", {"bot": bot})


# Permissions ----------------------------------------------------------------------


def console_permitted(user) -> bool:
    """May this user watch conversations (console, history, dashboard, their websockets)?"""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(VIEW_PERMISSION)
    )


def bot_preview_permitted(user) -> bool:
    """May this user chat with a disabled bot? Staff status alone is not enough."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(BOT_PREVIEW_PERMISSION)
    )


def takeover_permitted(user) -> bool:
    """May this user take conversations over and reply as staff?"""
    return console_permitted(user) and user.has_perm(TAKEOVER_PERMISSION)


def console_view(view):
    """Staff log in through the admin; staff without "view conversation" get 403."""

    @staff_member_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not console_permitted(request.user):
            raise PermissionDenied(_("You may not view conversations."))
        return view(request, *args, **kwargs)

    return wrapped


def _nav(request, active: str) -> dict:
    return {
        "active": active,
        "can_take_over": takeover_permitted(request.user),
        "bots": Bot.objects.order_by("name"),
        "platforms": Platform.choices,
        "labels": console_labels(),
        # Handed off to staff and not yet taken: a badge on every console page.
        "waiting": conversations_waiting(),
    }


def console_labels() -> dict[str, dict[str, str]]:
    """Names of states, platforms, authors and statuses in the page's language, for its
    scripts: live updates carry the keys (they are built once for every watcher)."""
    return {
        "states": {key: str(label) for key, label in STATE_LABELS.items()},
        "platforms": {key: str(label) for key, label in Platform.choices},
        "authors": {key: str(label) for key, label in Author.choices},
        "statuses": {key: str(label) for key, label in MessageStatus.choices},
    }


# The live console -------------------------------------------------------------------


@console_view
def console_list(request):
    """The live list of conversations, newest activity first."""
    bot_id = request.GET.get("bot") or None
    platform = request.GET.get("platform") or ""
    rating = request.GET.get("rating") or ""
    try:
        rows = console_conversations(bot_id=bot_id, platform=platform, rating=rating)
    except ValidationError as error:  # a malformed bot id
        raise Http404(_("No such bot.")) from error
    return render(
        request,
        "console/list.html",
        {
            **_nav(request, "live"),
            "rows": rows,
            "bot_id": bot_id or "",
            "platform": platform,
            "rating": rating,
            "ratings": [
                (Rating.HELPFUL, _("Rated helpful")),
                (Rating.NOT_HELPFUL, _("Rated not helpful")),
            ],
        },
    )


def console_conversation_snapshot(conversation_id: int) -> dict | None:
    """What the conversation page's websocket sends first: the summary and the messages."""
    from apps.conversations.events import message_payload

    summary = conversation_summary(conversation_id=conversation_id)
    if summary is None:
        return None
    messages = [
        # Staff only (the visitor's snapshot is ingest's): with the answers' tool calls.
        {**message_payload(row["message"]), "tool_calls": row["message"].tool_calls}
        for row in transcript(conversation_id=conversation_id)
    ]
    return {"conversation": summary, "messages": messages}


@console_view
def console_conversation(request, conversation_id: int):
    """One conversation, live: the transcript streams; staff may take over and reply."""
    conversation = get_object_or_404(Conversation.objects.select_related("bot"), pk=conversation_id)
    return render(
        request,
        "console/conversation.html",
        {
            **_nav(request, "live"),
            "conversation": conversation,
            "summary": conversation_summary(conversation_id=conversation.pk),
            "rows": transcript(conversation_id=conversation.pk),
        },
    )


def _takeover_action(action):
    """POST endpoints for staff with the takeover permission; JSON for fetch(), else redirect."""

    @console_view
    @require_POST
    @functools.wraps(action)
    def wrapped(request, conversation_id: int):
        if not takeover_permitted(request.user):
            raise PermissionDenied(_("You may not take conversations over."))
        get_object_or_404(Conversation, pk=conversation_id)
        try:
            result = action(request, conversation_id)
        except ConsoleError as error:
            if _wants_json(request):
                return JsonResponse({"ok": False, "error": str(error)}, status=400)
            raise PermissionDenied(str(error)) from error
        if _wants_json(request):
            return JsonResponse({"ok": True, **result})
        return HttpResponseRedirect(reverse("console-conversation", args=[conversation_id]))

    return wrapped


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@_takeover_action
def console_take_over(request, conversation_id: int) -> dict:
    conversation_take_over(
        conversation_id=conversation_id, actor=request.user, ip_address=client_ip(request)
    )
    return {}


@_takeover_action
def console_hand_back(request, conversation_id: int) -> dict:
    conversation_hand_back(
        conversation_id=conversation_id, actor=request.user, ip_address=client_ip(request)
    )
    return {}


@_takeover_action
def console_reply(request, conversation_id: int) -> dict:
    message = staff_reply_send(
        conversation_id=conversation_id,
        actor=request.user,
        text=request.POST.get("text", ""),
        ip_address=client_ip(request),
    )
    return {"message_id": message.pk}


# History ------------------------------------------------------------------------------


class HistoryFilterForm(forms.Form):
    """The history page's search fields."""

    bot = forms.ModelChoiceField(
        queryset=Bot.objects.order_by("name"), required=False, label=_("Bot")
    )
    platform = forms.ChoiceField(
        choices=[("", _("Any platform")), *Platform.choices], required=False, label=_("Platform")
    )
    user = forms.CharField(
        required=False, max_length=128, label=_("User"), help_text=_("Name or platform user id")
    )
    date_from = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    text = forms.CharField(required=False, max_length=200, label=_("Text"))
    rating = forms.ChoiceField(
        choices=[
            ("", _("Any rating")),
            *Rating.choices,
            ("any", _("Rated")),
            ("none", _("Not rated")),
        ],
        required=False,
        label=_("Feedback"),
    )
    failed = forms.BooleanField(required=False, label=_("Failed only"))

    def search(self) -> HistoryFilter:
        if not self.is_valid():
            return HistoryFilter()
        data = self.cleaned_data
        return HistoryFilter(
            bot_id=data["bot"].pk if data["bot"] else None,
            platform=data["platform"],
            user=data["user"].strip(),
            date_from=data["date_from"],
            date_to=data["date_to"],
            text=data["text"].strip(),
            rating=data["rating"],
            failed=data["failed"],
        )


@console_view
def history(request):
    """Search past conversations; export the filtered set."""
    form = HistoryFilterForm(request.GET or None)
    conversations = history_search(search=form.search())
    page = Paginator(conversations, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/history.html",
        {
            **_nav(request, "history"),
            "form": form,
            "page": page,
            "rows": history_rows(conversations=page.object_list),
            "query": query.urlencode(),
        },
    )


@console_view
def history_conversation(request, conversation_id: int):
    """A read-only transcript with each answer's profile, latency and tokens."""
    conversation = get_object_or_404(Conversation.objects.select_related("bot"), pk=conversation_id)
    return render(
        request,
        "console/transcript.html",
        {
            **_nav(request, "history"),
            "conversation": conversation,
            "summary": conversation_summary(conversation_id=conversation.pk),
            "rows": transcript(conversation_id=conversation.pk),
        },
    )


EXPORTS = {
    "csv": (conversations_export_csv, "text/csv; charset=utf-8"),
    "jsonl": (conversations_export_jsonl, "application/jsonl; charset=utf-8"),
}


async def _in_batches(lines: Iterator[str], size: int = 200) -> AsyncIterator[str]:
    """Serve a database-reading iterator from ASGI without loading it all at once."""
    take = sync_to_async(lambda: "".join(itertools.islice(lines, size)), thread_sensitive=True)
    while chunk := await take():
        yield chunk


@console_view
def history_export(request, fmt: str):
    """The filtered conversations as CSV, or JSONL for chat fine-tuning; streamed."""
    if fmt not in EXPORTS:
        raise Http404(_("Unknown export format."))
    export, content_type = EXPORTS[fmt]
    conversations = history_search(search=HistoryFilterForm(request.GET or None).search())
    lines = export(conversations=conversations)
    # Django buffers a sync iterator whole under ASGI: hand daphne an async one.
    content = _in_batches(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.{fmt}"'
    return response


# Dashboard ------------------------------------------------------------------------------


@console_view
def dashboard(request):
    """Charts: messages per day per bot, latency split, tokens and cost, errors, feedback."""
    try:
        days = min(90, max(1, int(request.GET.get("days", 14))))
    except ValueError:
        days = 14
    stats = dashboard_stats(days=days)
    split = request.GET.get("split", "")  # a rule or bot with A/B variants: "rule:<id>"
    comparison = variant_comparison(owner=split, days=days) if split else None
    return render(
        request,
        "console/dashboard.html",
        {
            **_nav(request, "dashboard"),
            "stats": stats,
            "days": days,
            "splits": variant_owners(),
            "split": split,
            "comparison": comparison,
        },
    )
