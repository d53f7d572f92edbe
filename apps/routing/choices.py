from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    """What a matching rule does with the message."""

    PROFILE = "profile", _("Answer with a model profile")
    SKILL = "skill", _("Run a skill")
    REPLY = "reply", _("Send a fixed reply")
    HANDOFF = "handoff", _("Hand off to staff")
    IGNORE = "ignore", _("Ignore the message")


class KeywordMatch(models.TextChoices):
    ANY = "any", _("Any of the keywords")
    ALL = "all", _("All of the keywords")


class Failure(models.TextChoices):
    """Why the assistant does not answer a turn as routed, told apart by this code rather
    than by error text: the turn chooses what to do (and which fixed reply) from it."""

    NO_PROFILE = "no_profile", _("No model profile")
    TAKEN_OVER = "taken_over", _("Staff have taken the conversation over")
    BOT_BUDGET = "bot_budget", _("The bot's daily token budget is used up")
    USER_BUDGET = "user_budget", _("The user's daily token budget is used up")


class RoutingLanguage(models.TextChoices):
    CHINESE = "zh-hans", _("Chinese")
    ENGLISH = "en", _("English")


class ReleaseState(models.TextChoices):
    """Where a gray release stands."""

    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    ROLLED_BACK = "rolled_back", _("Rolled back")


class ReleaseEvent(models.TextChoices):
    """One line of a release's history."""

    STARTED = "started", _("Started")
    ADVANCED = "advanced", _("Advanced to the next step")
    COMPLETED = "completed", _("Completed")
    ROLLED_BACK = "rolled_back", _("Rolled back")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
