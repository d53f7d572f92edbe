from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.fields import EncryptedJSONField, EncryptedTextField


class Provider(models.Model):
    """An OpenAI-compatible endpoint: OpenAI, DeepSeek, GLM, Qwen, Ollama, vLLM, llama.cpp…"""

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    base_url = models.URLField(
        max_length=500,
        help_text=_(
            "The API root including /v1, e.g. https://api.openai.com/v1 or "
            "http://127.0.0.1:11434/v1 for Ollama."
        ),
        verbose_name=_("base URL"),
    )
    api_key = EncryptedTextField(
        blank=True,
        help_text=_("Stored encrypted. Leave empty for servers that need no key."),
        verbose_name=_("API key"),
    )
    request_timeout = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(1.0)],
        help_text=_("Seconds before a request to this provider is abandoned."),
        verbose_name=_("request timeout"),
    )
    extra_headers = EncryptedJSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Sent with every request, e.g. {"X-Org": "acme"}. Stored encrypted '
            "(an Authorization header is a credential), shown masked."
        ),
        verbose_name=_("extra headers"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    max_retries = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(10)],
        help_text=_(
            "Retries of a retryable failure (429, 5xx, connection) before falling back; "
            "exponential backoff with jitter, honouring Retry-After."
        ),
        verbose_name=_("max retries"),
    )
    cooldown_after_failures = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("After this many consecutive failures the provider is skipped for a while."),
        verbose_name=_("cooldown after failures"),
    )
    cooldown_seconds = models.PositiveIntegerField(
        default=60,
        help_text=_("How long a failing provider is skipped (shared by all workers)."),
        verbose_name=_("cooldown seconds"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("model provider")
        verbose_name_plural = _("model providers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# What a new profile starts with (the admin's add form, the local model's profile). Written
# for the model, so in English: models follow it whatever language the user writes in.
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer briefly. Always answer in the language the user "
    "writes in: in Chinese to a message written in Chinese, in English to one in English."
)


class ModelProfile(models.Model):
    """A model on a provider plus how to use it: prompt, sampling, history, fallback."""

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="profiles", verbose_name=_("provider")
    )
    model = models.CharField(
        max_length=200,
        help_text=_("The model name the provider expects, e.g. gpt-4o-mini."),
        verbose_name=_("model"),
    )
    system_prompt = models.TextField(
        blank=True, help_text=_("Sent first in every request."), verbose_name=_("system prompt")
    )
    temperature = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        verbose_name=_("temperature"),
    )
    max_tokens = models.PositiveIntegerField(
        default=1024,
        help_text=_("Upper bound on the length of one answer, in tokens."),
        verbose_name=_("max tokens"),
    )
    history_messages = models.PositiveIntegerField(
        default=20,
        help_text=_("How many earlier messages of the conversation are sent with each turn."),
        verbose_name=_("history messages"),
    )
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallback_for",
        help_text=_("Tried when this profile's provider fails, times out or stalls."),
        verbose_name=_("fallback"),
    )
    first_token_timeout = models.FloatField(
        default=3.0,
        validators=[MinValueValidator(0.1)],
        help_text=_("Seconds to wait for the first token before trying the fallback."),
        verbose_name=_("first token timeout"),
    )
    stall_timeout = models.FloatField(
        default=20.0,
        validators=[MinValueValidator(0.1)],
        help_text=_("Seconds without a new token that count as a stalled stream."),
        verbose_name=_("stall timeout"),
    )
    context_budget = models.PositiveIntegerField(
        default=4096,
        validators=[MinValueValidator(256)],
        help_text=_(
            "Tokens (estimated) the prompt plus the answer may use: system prompt, summary "
            "and as much recent history as fits. Older turns are summarized."
        ),
        verbose_name=_("context budget"),
    )
    price_input_per_1k = models.DecimalField(
        max_digits=10,
        decimal_places=6,
        default=0,
        help_text=_("Price of 1K prompt tokens."),
        verbose_name=_("price input per 1K"),
    )
    price_output_per_1k = models.DecimalField(
        max_digits=10,
        decimal_places=6,
        default=0,
        help_text=_("Price of 1K completion tokens."),
        verbose_name=_("price output per 1K"),
    )
    cache_ttl = models.PositiveIntegerField(
        default=0,
        help_text=_("Seconds to cache answers to the same first question (no history); 0: off."),
        verbose_name=_("cache TTL"),
    )
    accepts_images = models.BooleanField(
        default=False,
        help_text=_("The model understands images (sent as image_url parts)."),
        verbose_name=_("accepts images"),
    )
    supports_tools = models.BooleanField(
        default=False,
        help_text=_(
            "The model can call tools (OpenAI function calling): it is offered the bot's "
            "enabled skills that describe a tool, e.g. an HTTP action with a tool "
            "description, and may call them while it answers."
        ),
        verbose_name=_("supports tools"),
    )
    transcription_model = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Voice messages are transcribed with this model on the same provider "
            "(/audio/transcriptions, e.g. whisper-1). Empty: voice is not understood."
        ),
        verbose_name=_("transcription model"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("model profile")
        verbose_name_plural = _("model profiles")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
