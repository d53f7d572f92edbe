from django.db import transaction

from apps.audit.api import AuditedModelViewSet
from apps.audit.services import audit_record, client_ip
from apps.routing.selectors import release_list, routing_rule_list, variant_list
from apps.routing.serializers import ReleaseSerializer, RoutingRuleSerializer, VariantSerializer
from apps.routing.services import (
    release_create,
    release_update,
    routing_rule_create,
    routing_rule_update,
    variant_create,
    variant_update,
)


class RoutingRuleViewSet(AuditedModelViewSet):
    """Routing rules: which messages get which answer, tried by priority (lowest first)."""

    queryset = routing_rule_list()
    serializer_class = RoutingRuleSerializer

    def save_new(self, serializer):
        rule = routing_rule_create(**serializer.validated_data)
        self._audit_bots(rule, before=[])
        return rule

    def save_existing(self, serializer):
        rule = serializer.instance
        before = _bot_names(rule)
        rule = routing_rule_update(rule=rule, **serializer.validated_data)
        self._audit_bots(rule, before=before)
        return rule

    def _audit_bots(self, rule, *, before: list[str]) -> None:
        # Many-to-many changes are not in the row's snapshot: recorded as the admin does.
        after = _bot_names(rule)
        if after != before:
            with transaction.atomic():
                audit_record(
                    action="routingrule.bots",
                    actor=self.request.user,
                    target=rule,
                    changes={"bots": {"from": before, "to": after}},
                    ip_address=client_ip(self.request),
                )


def _bot_names(rule) -> list[str]:
    return sorted(str(bot) for bot in rule.bots.all())


class VariantViewSet(AuditedModelViewSet):
    """A/B variants: a rule's (or a bot's default) answers split by weight between profiles."""

    queryset = variant_list()
    serializer_class = VariantSerializer

    def save_new(self, serializer):
        return variant_create(**serializer.validated_data)

    def save_existing(self, serializer):
        return variant_update(variant=serializer.instance, **serializer.validated_data)


class ReleaseViewSet(AuditedModelViewSet):
    """Gray releases: a variant's share grows step by step, or goes back to the control."""

    queryset = release_list()
    serializer_class = ReleaseSerializer

    def save_new(self, serializer):
        return release_create(**serializer.validated_data)

    def save_existing(self, serializer):
        return release_update(release=serializer.instance, **serializer.validated_data)
