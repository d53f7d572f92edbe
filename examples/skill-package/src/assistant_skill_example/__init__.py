"""An example skill package: `faq_lookup` answers frequent questions by keyword.

A skill subclasses `apps.skills.base.Skill`: a unique `name`, a `label`, the JSON Schema
of its settings (validated by the assistant in the admin and the API), and `handle()`.
"""

from __future__ import annotations

from apps.skills.base import Skill, SkillContext, SkillError, SkillResult


class FaqLookupSkill(Skill):
    """Answers with the first entry one of whose keywords is in the message."""

    name = "faq_lookup"
    label = "FAQ lookup"
    description = "Answers frequent questions from a list of keywords and answers."
    time_limit = 2.0
    config_schema = {
        "type": "object",
        "required": ["entries"],
        "additionalProperties": False,
        "properties": {
            "entries": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["keywords", "answer"],
                    "additionalProperties": False,
                    "properties": {
                        "keywords": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "minLength": 1},
                        },
                        "answer": {"type": "string", "minLength": 1},
                    },
                },
            },
            "fallback": {"type": "string"},
        },
    }

    def handle(self, context: SkillContext) -> SkillResult:
        text = context.text.casefold()
        for number, entry in enumerate(context.config["entries"]):
            if any(keyword.casefold() in text for keyword in entry["keywords"]):
                return SkillResult(text=entry["answer"], details={"entry": number})
        fallback = context.config.get("fallback")
        if not fallback:
            raise SkillError("no entry matched and no fallback is set")
        return SkillResult(text=fallback, details={"entry": None})

    def tool(self, config: dict) -> dict | None:
        return {
            "description": "Look up the answer to a frequent question.",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
        }
