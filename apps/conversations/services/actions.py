"""Button presses on answers: feedback and regenerate."""

from __future__ import annotations

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from apps.bots.models import Bot
from apps.bots.platforms import adapter_for
from apps.bots.platforms.base import InboundAction
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Feedback, Message
from apps.conversations.selectors import reply_language
from apps.conversations.services.dispatch import dispatch_turn
from apps.core.redis import get_redis

ACTION_REPLIES = {
    Rating.HELPFUL: gettext_lazy("Thanks for the feedback!"),
    Rating.NOT_HELPFUL: gettext_lazy("Thanks, we'll use this to improve."),
    "regenerate": gettext_lazy("Writing a new answer…"),
}


def feedback_record(*, message: Message, rating: str, platform_user_id: str) -> Feedback:
    """Store (or change) one user's rating of an answer."""
    feedback, _ = Feedback.objects.update_or_create(
        message=message, platform_user_id=platform_user_id, defaults={"rating": rating}
    )
    return feedback


@transaction.atomic
def answer_regenerate(*, message: Message) -> bool:
    """Answer again the messages an answer replied to; False if a turn is already pending."""
    if message.reply_to_id is None:
        return False
    reopened = Message.objects.filter(
        pk=message.reply_to_id, direction=Direction.IN, status=MessageStatus.ANSWERED
    ).update(status=MessageStatus.RECEIVED)
    if reopened:
        dispatch_turn(message.conversation_id)
    return bool(reopened)


def action_ingest(*, bot: Bot, action: InboundAction) -> Feedback | Message | None:
    """Handle a button press once (platforms retry); acknowledge it to the user."""
    if not get_redis().set(f"assistant:action:{bot.pk}:{action.external_id}", 1, nx=True, ex=86400):
        return None
    message = Message.objects.filter(
        pk=action.message_id,
        bot=bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        conversation__chat_id=action.chat_id,
    ).first()
    adapter = adapter_for(bot)
    # The acknowledgement is in the language of the answer the button is under.
    with translation.override(reply_language(bot=bot, message=message)):
        return _action_handle(adapter, action, message)


def _action_handle(
    adapter, action: InboundAction, message: Message | None
) -> Feedback | Message | None:
    if message is None:
        adapter.answer_action(action, gettext("This answer is no longer available."))
        return None
    result: Feedback | Message | None
    if action.action == "regenerate":
        result = message if answer_regenerate(message=message) else None
    elif action.action in Rating.values:
        result = feedback_record(
            message=message, rating=action.action, platform_user_id=action.sender_id
        )
    else:
        adapter.answer_action(action, gettext("Unknown action."))
        return None
    adapter.answer_action(action, str(ACTION_REPLIES[action.action]))
    return result
