from django.contrib import admin, messages

from apps.conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["received_at", "author", "text", "status", "error", "profile"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "bot", "chat_type", "started_at", "last_activity_at"]
    list_filter = ["bot", "bot__platform", "chat_type"]
    search_fields = ["chat_id", "participants"]
    readonly_fields = [
        "bot",
        "chat_id",
        "chat_type",
        "participants",
        "started_at",
        "last_activity_at",
    ]
    inlines = [MessageInline]


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

    @admin.action(description="Retry the selected failed messages")
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
            self.message_user(request, f"Retrying {retried} message(s).", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Text")
    def short_text(self, message: Message) -> str:
        return message.text[:80]
