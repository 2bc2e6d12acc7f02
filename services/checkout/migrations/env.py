from bos_common.migrations import run_env
from checkout.models import metadata

run_env(metadata, "checkout")
