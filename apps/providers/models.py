from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.fields import EncryptedJSONField, EncryptedTextField


class Provider(models.Model):
    """An OpenAI-compatible endpoint: OpenAI, DeepSeek, GLM, Qwen, Ollama, vLLM, llama.cpp…"""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(
        max_length=500,
        help_text="The API root including /v1, e.g. https://api.openai.com/v1 or "
        "http://127.0.0.1:11434/v1 for Ollama.",
    )
    api_key = EncryptedTextField(
        blank=True, help_text="Stored encrypted. Leave empty for servers that need no key."
    )
    request_timeout = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(1.0)],
        help_text="Seconds before a request to this provider is abandoned.",
    )
    extra_headers = EncryptedJSONField(
        default=dict,
        blank=True,
        help_text='Sent with every request, e.g. {"X-Org": "acme"}. Stored encrypted '
        "(an Authorization header is a credential), shown masked.",
    )
    enabled = models.BooleanField(default=True)
    max_retries = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(10)],
        help_text="Retries of a retryable failure (429, 5xx, connection) before falling back; "
        "exponential backoff with jitter, honouring Retry-After.",
    )
    cooldown_after_failures = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="After this many consecutive failures the provider is skipped for a while.",
    )
    cooldown_seconds = models.PositiveIntegerField(
        default=60, help_text="How long a failing provider is skipped (shared by all workers)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelProfile(models.Model):
    """A model on a provider plus how to use it: prompt, sampling, history, fallback."""

    name = models.CharField(max_length=100, unique=True)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="profiles")
    model = models.CharField(
        max_length=200, help_text="The model name the provider expects, e.g. gpt-4o-mini."
    )
    system_prompt = models.TextField(blank=True, help_text="Sent first in every request.")
    temperature = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    max_tokens = models.PositiveIntegerField(
        default=1024, help_text="Upper bound on the length of one answer, in tokens."
    )
    history_messages = models.PositiveIntegerField(
        default=20,
        help_text="How many earlier messages of the conversation are sent with each turn.",
    )
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallback_for",
        help_text="Tried when this profile's provider fails, times out or stalls.",
    )
    first_token_timeout = models.FloatField(
        default=3.0,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds to wait for the first token before trying the fallback.",
    )
    stall_timeout = models.FloatField(
        default=20.0,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds without a new token that count as a stalled stream.",
    )
    context_budget = models.PositiveIntegerField(
        default=4096,
        validators=[MinValueValidator(256)],
        help_text="Tokens (estimated) the prompt plus the answer may use: system prompt, summary "
        "and as much recent history as fits. Older turns are summarized.",
    )
    price_input_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, help_text="Price of 1K prompt tokens."
    )
    price_output_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, help_text="Price of 1K completion tokens."
    )
    cache_ttl = models.PositiveIntegerField(
        default=0,
        help_text="Seconds to cache answers to the same first question (no history); 0: off.",
    )
    accepts_images = models.BooleanField(
        default=False, help_text="The model understands images (sent as image_url parts)."
    )
    transcription_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Voice messages are transcribed with this model on the same provider "
        "(/audio/transcriptions, e.g. whisper-1). Empty: voice is not understood.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
