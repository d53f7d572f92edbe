"""The tools a turn's model may call: the bot's skills that describe a tool.

Kept apart from turns.py: `turn_prepare` asks for them in one line, and the model client
runs the loop (apps/providers/tool_loop.py) through `apps.skills.tools.TurnTools`.
"""

from __future__ import annotations

from apps.conversations.events import ToolCallsEvent, publish
from apps.conversations.models import Conversation, Message
from apps.conversations.services.skill_turns import turn_skill_context
from apps.providers.models import ModelProfile
from apps.providers.tool_loop import ToolLoop
from apps.skills.base import Skill
from apps.skills.registry import skill_get
from apps.skills.selectors import bot_skills_enabled
from apps.skills.tools import TurnTools


def _may_offer_tools(skill: Skill | None) -> bool:
    # A skill whose class describes no tool (help_menu) offers none, whatever its settings.
    if skill is None:
        return False
    kind = type(skill)
    return kind.tools is not Skill.tools or kind.tool is not Skill.tool


def turn_tools_prepare(
    *, conversation: Conversation, pending: list[Message], chain: list[ModelProfile]
) -> ToolLoop | None:
    """The tool loop of a turn whose profile (or a fallback) supports tools and whose bot has
    enabled skills that may offer some; None otherwise (the model is sent no tools).

    The skills describe their tools when the model call starts (on the engine's I/O
    threads: an MCP skill may ask its server), not here on a database thread.
    """
    if not any(profile.supports_tools for profile in chain):
        return None
    bot = conversation.bot
    instances = [
        instance
        for instance in bot_skills_enabled(bot_id=bot.pk)
        if _may_offer_tools(skill_get(instance.skill))
    ]
    if not instances:
        return None
    context = turn_skill_context(conversation=conversation, pending=pending, config={})
    return ToolLoop(TurnTools(instances, context, mask=bot.mask_personal_data))


def tool_calls_publish(*, answer: Message) -> None:
    """Show the answer's tool calls to staff watching its conversation (after commit)."""
    if answer.tool_calls:
        publish(
            answer.conversation_id,
            ToolCallsEvent(message_id=answer.pk, tool_calls=answer.tool_calls),
        )
