"""Routing rules compiled for evaluation: validation, conditions and reply templates.

A `CompiledRule` holds everything a rule needs to judge a message, prepared once per
process (id lists as sets, the time zone loaded), so deciding a message is a loop of
cheap comparisons. The text conditions of every rule are searched in one pass each:
all keywords (case-folded) in one RE2 set, all regular expressions in another
(`TextMatcher`), so a message costs two linear scans whatever the number of rules,
and a rule's text condition is a set lookup. `CompiledRule.miss()` names the first
condition that does not hold, or None: the engine uses it to decide, the "Which rule
answers this?" page to explain.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.core.i18n import language_detect
from apps.routing.choices import Action, KeywordMatch

logger = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("user_name", "user_id", "chat_id", "bot_name", "text")
PATTERN_MAX_MEMORY = 8 << 20  # bytes RE2 may use for one pattern; bigger ones are refused
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@\S*)?")

# Condition names, as `miss()` returns them (in the order they are checked: cheap first).
BOT, PLATFORM, CHAT_TYPE, CHAT_ID, USER_ID = "bot", "platform", "chat_type", "chat_id", "user_id"
COMMAND, ATTACHMENT, KEYWORDS, PATTERN = "command", "attachment", "keywords", "pattern"
LANGUAGE, TIME = "language", "time"


def _pattern_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = PATTERN_MAX_MEMORY
    return options


def pattern_compile(pattern: str):
    """The RE2 pattern (linear time: no catastrophic backtracking), or ValueError."""
    try:
        return re2.compile(pattern, _pattern_options())
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(str(detail)) from error


def template_render(template: str, values: dict[str, str]) -> str:
    """Fill a reply template's {placeholders}; only plain names, never attributes or formats."""
    parts = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(values.get(name, ""))
    return "".join(parts)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def rule_validate(*, rule) -> None:
    """Raise ValidationError naming each field of `rule` that cannot work."""
    errors: dict[str, Any] = {}
    for name in ("chat_ids", "user_ids", "keywords"):
        if not _strings(getattr(rule, name)):
            errors[name] = _("A list of non-empty texts.")
    if not isinstance(rule.weekdays, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7
        for day in rule.weekdays
    ):
        errors["weekdays"] = _("A list of days, 1 (Monday) to 7 (Sunday).")
    if rule.pattern:
        try:
            pattern_compile(rule.pattern)
        except ValueError as error:
            errors["pattern"] = _("Not a usable RE2 regular expression: %(error)s") % {
                "error": error
            }
    if rule.command and not re.fullmatch(r"/?[A-Za-z0-9_]{1,32}", rule.command):
        errors["command"] = _("A command is letters, digits or _, e.g. /order.")
    try:
        ZoneInfo(rule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = _("Unknown time zone.")
    if (rule.active_from is None) != (rule.active_until is None):
        errors["active_until"] = _("A time window needs both its start and its end.")
    elif rule.active_from is not None and rule.active_from == rule.active_until:
        errors["active_until"] = _("The window's end must differ from its start.")
    template_error = _template_error(rule.reply_template)
    if template_error:
        errors["reply_template"] = template_error
    if rule.action == Action.SKILL:
        skill_error = _skill_error(rule)
        if skill_error:
            errors["skill"] = skill_error
    elif rule.action == Action.REPLY and not rule.reply_template.strip():
        errors["reply_template"] = _("A fixed reply needs its text.")
    if errors:
        raise ValidationError(errors)


def _skill_error(rule):
    from apps.skills.registry import skill_get

    if rule.skill_instance_id is None and not rule.skill:
        return _("Name the skill to run, or choose a configured one.")
    if rule.skill and skill_get(rule.skill) is None:
        return _("No installed skill is called “%s”.") % rule.skill
    if (
        rule.skill_instance_id is not None
        and rule.skill
        and rule.skill_instance.skill != rule.skill
    ):
        return _("The configured skill runs “%(runs)s”, not “%(named)s”.") % {
            "runs": rule.skill_instance.skill,
            "named": rule.skill,
        }
    return None


def _template_error(template: str):
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return _("Braces must be paired: write {{ and }} for literal braces.")
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conversion:
            return _("Unknown placeholder {%(name)s}; use %(fields)s.") % {
                "name": name,
                "fields": ", ".join("{" + known + "}" for known in TEMPLATE_FIELDS),
            }
    return None


@dataclass
class RoutingInput:
    """What a routing decision looks at: who wrote where, and what."""

    bot_id: str
    platform: str
    chat_type: str
    chat_id: str
    user_id: str
    text: str
    now: datetime
    attachment_kinds: frozenset[str] = frozenset()
    user_name: str = ""
    bot_name: str = ""
    # What keeps a conversation on its A/B variant (apps/routing/variants.py); without a
    # conversation (the "Which rule answers this?" page), the chat stands for it.
    conversation_id: int | None = None
    commands: frozenset[str] = field(init=False)
    matcher: TextMatcher | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        found = (_COMMAND.match(line.strip()) for line in self.text.splitlines())
        self.commands = frozenset(match.group(1).lower() for match in found if match)

    @property
    def sticky_key(self) -> str:
        if self.conversation_id is not None:
            return str(self.conversation_id)
        return f"chat:{self.bot_id}:{self.chat_id}"

    @cached_property
    def language(self) -> str | None:
        return language_detect(self.text)

    @cached_property
    def keyword_hits(self) -> frozenset[int]:
        return self.matcher.keywords_in(self.text.casefold()) if self.matcher else frozenset()

    @cached_property
    def pattern_hits(self) -> frozenset[int]:
        return self.matcher.patterns_in(self.text) if self.matcher else frozenset()


def _keyword_regex(keyword: str) -> str:
    # Latin letters and digits at a keyword's edge must not continue a longer word (RE2's
    # \b is ASCII-only, so "vip" is found in "我是vip客户" but not in "vipx"); Chinese has
    # no spaces between words, so CJK edges match anywhere.
    escaped = re2.escape(keyword)
    if keyword[0].isascii() and keyword[0].isalnum():
        escaped = r"\b" + escaped
    if keyword[-1].isascii() and keyword[-1].isalnum():
        escaped += r"\b"
    return escaped


class TextMatcher:
    """Every rule's keywords and regular expressions, each kind searched in one RE2 pass."""

    def __init__(self) -> None:
        self._keywords: dict[str, int] = {}
        self._patterns: list[str] = []
        self._keyword_set = self._pattern_set = None

    def keyword_id(self, keyword: str) -> int:
        return self._keywords.setdefault(keyword, len(self._keywords))

    def pattern_id(self, pattern: str) -> int:
        try:
            pattern_compile(pattern)
        except ValueError:
            logger.warning("routing pattern %r does not compile; its rule never matches", pattern)
            return -1
        self._patterns.append(pattern)
        return len(self._patterns) - 1

    def compile(self) -> None:
        options = _pattern_options()
        options.max_mem = 64 * PATTERN_MAX_MEMORY
        if self._keywords:
            keyword_set = re2.Set.SearchSet(options)
            for keyword in self._keywords:  # in id order: dicts keep insertion order
                keyword_set.Add(_keyword_regex(keyword))
            keyword_set.Compile()
            self._keyword_set = keyword_set
        if self._patterns:
            pattern_set = re2.Set.SearchSet(options)
            for pattern in self._patterns:
                pattern_set.Add(pattern)
            pattern_set.Compile()
            self._pattern_set = pattern_set

    def keywords_in(self, folded: str) -> frozenset[int]:
        if self._keyword_set is None:
            return frozenset()
        return frozenset(self._keyword_set.Match(folded) or ())

    def patterns_in(self, text: str) -> frozenset[int]:
        if self._pattern_set is None:
            return frozenset()
        return frozenset(self._pattern_set.Match(text) or ())


class CompiledRule:
    """One enabled rule, ready to judge messages (read-only, shared between threads)."""

    __slots__ = (
        "id",
        "name",
        "priority",
        "bot_ids",
        "platform",
        "chat_type",
        "chat_ids",
        "user_ids",
        "command",
        "attachment_kind",
        "keywords",
        "keyword_all",
        "pattern",
        "language",
        "window",
        "weekdays",
        "zone",
        "action",
        "profile_id",
        "extra_system_prompt",
        "reply_template",
        "skill",
        "skill_instance_id",
    )

    def __init__(self, rule, bot_ids: list[str], matcher: TextMatcher) -> None:
        self.id: int = rule.pk
        self.name: str = rule.name
        self.priority: int = rule.priority
        self.bot_ids = frozenset(bot_ids) or None
        self.platform: str = rule.platform
        self.chat_type: str = rule.chat_type
        self.chat_ids = frozenset(rule.chat_ids) or None
        self.user_ids = frozenset(rule.user_ids) or None
        self.command: str = rule.command.lstrip("/").lower()
        self.attachment_kind: str = rule.attachment_kind
        words = [word.strip().casefold() for word in rule.keywords if word.strip()]
        self.keywords = frozenset(matcher.keyword_id(word) for word in words) or None
        self.keyword_all = rule.keyword_match == KeywordMatch.ALL
        self.pattern = matcher.pattern_id(rule.pattern) if rule.pattern else None
        self.language: str = rule.language
        self.window: tuple[time, time] | None = (
            (rule.active_from, rule.active_until) if rule.active_from is not None else None
        )
        self.weekdays = frozenset(rule.weekdays) or None
        self.zone = ZoneInfo(rule.time_zone) if self.window or self.weekdays else None
        self.action: str = rule.action
        self.profile_id: int | None = rule.profile_id
        self.extra_system_prompt: str = rule.extra_system_prompt
        self.reply_template: str = rule.reply_template
        self.skill: str = rule.skill
        self.skill_instance_id: int | None = rule.skill_instance_id

    def miss(self, item: RoutingInput) -> str | None:
        """The first condition that does not hold for `item`, or None when the rule matches."""
        if self.bot_ids is not None and item.bot_id not in self.bot_ids:
            return BOT
        if self.platform and item.platform != self.platform:
            return PLATFORM
        if self.chat_type and item.chat_type != self.chat_type:
            return CHAT_TYPE
        if self.chat_ids is not None and item.chat_id not in self.chat_ids:
            return CHAT_ID
        if self.user_ids is not None and item.user_id not in self.user_ids:
            return USER_ID
        if self.command and self.command not in item.commands:
            return COMMAND
        if self.attachment_kind and self.attachment_kind not in item.attachment_kinds:
            return ATTACHMENT
        if self.keywords is not None:
            hits = item.keyword_hits
            if not (self.keywords <= hits if self.keyword_all else self.keywords & hits):
                return KEYWORDS
        if self.pattern is not None and self.pattern not in item.pattern_hits:
            return PATTERN
        if self.language and item.language != self.language:
            return LANGUAGE
        if self.zone is not None and not self._in_time(item.now):
            return TIME
        return None

    def _in_time(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        if self.weekdays is not None and local.isoweekday() not in self.weekdays:
            return False
        if self.window is None:
            return True
        start, end = self.window
        moment = local.time().replace(tzinfo=None)
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end  # the window spans midnight


@dataclass
class RuleSet:
    """Every enabled rule in order, and the profiles their actions use."""

    rules: list[CompiledRule]
    profiles: dict[int, Any]
    matcher: TextMatcher
    splits: dict[str, Any] = field(default_factory=dict)  # owner key -> variants.Split
    _per_bot: dict[str, list[CompiledRule]] = field(default_factory=dict)

    def prepare(self, item: RoutingInput) -> RoutingInput:
        """Let `item` search its text for this rule set's keywords and patterns (on demand)."""
        item.matcher = self.matcher
        item.__dict__.pop("keyword_hits", None)
        item.__dict__.pop("pattern_hits", None)
        return item

    def for_bot(self, bot_id: str) -> list[CompiledRule]:
        """The rules that may apply to a bot, in order (computed once per bot)."""
        found = self._per_bot.get(bot_id)
        if found is None:
            found = [r for r in self.rules if r.bot_ids is None or bot_id in r.bot_ids]
            self._per_bot[bot_id] = found  # a benign race: both threads compute the same
        return found


def ruleset_compile(
    rules: list, bot_ids: dict[int, list[str]], profiles: dict, splits: dict | None = None
) -> RuleSet:
    """Compile `rules` (already in order) with each rule's bot ids into a RuleSet.

    `splits` are the A/B splits by owner key (apps/routing/variants.py); `profiles` holds
    their variants' profiles too.
    """
    matcher = TextMatcher()
    compiled = [CompiledRule(rule, bot_ids.get(rule.pk, []), matcher) for rule in rules]
    matcher.compile()
    return RuleSet(rules=compiled, profiles=profiles, matcher=matcher, splits=splits or {})
