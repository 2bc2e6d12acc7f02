from bos_common.migrations import run_env
from catalog.models import metadata

run_env(metadata, "catalog")
