from bos_common.migrations import run_env
from webhooks.endpoints import models as _endpoint_tables  # noqa: F401 - declares its tables
from webhooks.models import metadata

run_env(metadata, "webhooks")
