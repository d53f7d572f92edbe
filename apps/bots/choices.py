from django.db import models


class Platform(models.TextChoices):
    WEB = "web", "Web chat"
    TELEGRAM = "telegram", "Telegram"
    FEISHU = "feishu", "Feishu / Lark"


DEFAULT_API_BASE_URLS = {
    Platform.WEB: "",
    Platform.TELEGRAM: "https://api.telegram.org",
    Platform.FEISHU: "https://open.feishu.cn",
}
