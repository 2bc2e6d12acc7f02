from bos_common.migrations import run_env
from webhooks.models import metadata

run_env(metadata, "webhooks")
