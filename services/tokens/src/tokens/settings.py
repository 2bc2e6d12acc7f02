from typing import ClassVar

from bos_common.settings import ServiceSettings


class TokensSettings(ServiceSettings):
    service_name: ClassVar[str] = "tokens"
