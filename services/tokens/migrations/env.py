from bos_common.migrations import run_env
from tokens.models import metadata

run_env(metadata, "tokens")
