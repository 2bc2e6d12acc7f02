from bos_common.migrations import run_env
from subscriptions.models import metadata

run_env(metadata, "subscriptions")
