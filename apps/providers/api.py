from apps.audit.api import AuditedModelViewSet
from apps.providers.models import ModelProfile, Provider
from apps.providers.serializers import ModelProfileSerializer, ProviderSerializer


class ProviderViewSet(AuditedModelViewSet):
    """Model providers (OpenAI-compatible endpoints). The API key is write-only."""

    queryset = Provider.objects.all()
    serializer_class = ProviderSerializer


class ModelProfileViewSet(AuditedModelViewSet):
    """Model profiles: a model on a provider, its prompt, sampling and fallback."""

    queryset = ModelProfile.objects.select_related("provider")
    serializer_class = ModelProfileSerializer
