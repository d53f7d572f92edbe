"""The roles operators know, kept in code and applied to groups after every migrate.

- Admin: everything.
- Operator: bots, prompts and model profiles, routing rules, A/B variants and gray
  releases, pairing, unprocessed events, flood limits, skills, taking conversations over
  and retrying messages; providers only read (their keys are write-only anyway); no
  users, groups or audit changes.
- Reviewer: reads conversations, messages and feedback, and exports them; no configuration.

`roles_sync()` makes each group hold exactly these permissions; a change here applies
on the next `migrate` (which `make run` and deployments run).
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

ADMIN = "Admin"
OPERATOR = "Operator"
REVIEWER = "Reviewer"

CONVERSATION_READS = [
    "conversations.view_conversation",
    "conversations.view_message",
    "conversations.view_messageattachment",
    "conversations.view_feedback",
]
ROLE_PERMISSIONS: dict[str, list[str] | None] = {
    ADMIN: None,  # every permission
    OPERATOR: [
        *CONVERSATION_READS,
        "conversations.takeover_conversation",
        "conversations.change_message",
        "bots.view_bot",
        "bots.add_bot",
        "bots.change_bot",
        "bots.delete_bot",
        "bots.view_pairingrequest",
        "bots.change_pairingrequest",
        "bots.view_unprocessedevent",
        "bots.change_unprocessedevent",
        "providers.view_provider",
        "providers.view_modelprofile",
        "providers.add_modelprofile",
        "providers.change_modelprofile",
        "providers.delete_modelprofile",
        "audit.view_auditevent",
        "guard.view_floodlimits",
        "guard.change_floodlimits",
        "routing.view_routingrule",
        "routing.add_routingrule",
        "routing.change_routingrule",
        "routing.delete_routingrule",
        "skills.view_skillinstance",
        "skills.add_skillinstance",
        "skills.change_skillinstance",
        "skills.delete_skillinstance",
        "routing.view_variant",
        "routing.add_variant",
        "routing.change_variant",
        "routing.delete_variant",
        "routing.view_release",
        "routing.add_release",
        "routing.change_release",
        "routing.delete_release",
    ],
    REVIEWER: CONVERSATION_READS,
}


def roles_sync(**kwargs) -> None:
    """Create the role groups and give each exactly its permissions (a post_migrate hook)."""
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        if codenames is None:
            group.permissions.set(Permission.objects.all())
            continue
        wanted = Q(pk__in=[])
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            wanted |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.filter(wanted))
