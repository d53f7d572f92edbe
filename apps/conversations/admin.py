from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.audit.services import client_ip
from apps.conversations.models import Conversation, Feedback, Message


class MessageInline(admin.TabularInline):
    model = Message
    readonly_fields = ("received_at", "author", "text", "status", "error", "profile")
    fields = readonly_fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "bot",
        "chat_type",
        "started_at",
        "last_activity_at",
        "handled_by",
        "console_link",
    ]
    list_filter = ["bot", "bot__platform", "chat_type", ("handled_by", admin.EmptyFieldListFilter)]
    search_fields = ["chat_id", "participants"]
    readonly_fields = [
        "bot",
        "chat_id",
        "chat_type",
        "participants",
        "started_at",
        "last_activity_at",
        "handled_by",
        "taken_over_at",
        "closed_at",
        "console_link",
    ]
    inlines = [MessageInline]
    actions = ["take_over", "hand_back"]

    def has_add_permission(self, request):
        return False  # conversations come from chats (every field here is read-only)

    def has_takeover_permission(self, request) -> bool:
        return request.user.has_perm("conversations.takeover_conversation")

    @admin.display(description=_("Console"))
    def console_link(self, conversation: Conversation) -> str:
        url = reverse("console-conversation", args=[conversation.pk])
        return format_html('<a href="{}">{}</a>', url, _("Open live"))

    @admin.action(description=_("Take over (the AI stops answering)"), permissions=["takeover"])
    def take_over(self, request, queryset):
        from apps.conversations.services.console import conversation_take_over

        for conversation_id in queryset.values_list("id", flat=True):
            conversation_take_over(
                conversation_id=conversation_id, actor=request.user, ip_address=client_ip(request)
            )
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Took over %d conversation.", "Took over %d conversations.", count) % count,
        )

    @admin.action(description=_("Hand back to the AI"), permissions=["takeover"])
    def hand_back(self, request, queryset):
        from apps.conversations.services.console import conversation_hand_back

        for conversation_id in queryset.values_list("id", flat=True):
            conversation_hand_back(
                conversation_id=conversation_id, actor=request.user, ip_address=client_ip(request)
            )
        count = queryset.count()
        self.message_user(
            request,
            ngettext(
                "Handed %d conversation back to the AI.",
                "Handed %d conversations back to the AI.",
                count,
            )
            % count,
        )


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "rating", "platform_user_id", "created_at"]
    list_filter = ["rating", "message__bot"]
    search_fields = ["platform_user_id", "message__text"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Feedback._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "conversation",
        "direction",
        "author",
        "short_text",
        "status",
        "received_at",
    ]
    list_filter = ["status", "direction", "author", "bot"]
    search_fields = ["text", "error", "external_id"]
    date_hierarchy = "received_at"

    actions = ["retry_failed"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Message._meta.fields]

    # Without `permissions`, anyone who may list messages (a Reviewer) would be offered it.
    @admin.action(description=_("Retry the selected failed messages"), permissions=["change"])
    def retry_failed(self, request, queryset):
        from apps.conversations.services.turns import MessageNotRetryable, message_retry

        retried, refused = 0, []
        for message_id in queryset.values_list("id", flat=True):
            try:
                message_retry(message_id=message_id)
                retried += 1
            except MessageNotRetryable as error:
                refused.append(str(error))
        if retried:
            self.message_user(
                request,
                ngettext("Retrying %d message.", "Retrying %d messages.", retried) % retried,
                messages.SUCCESS,
            )
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("Text"))
    def short_text(self, message: Message) -> str:
        return message.text[:80]
