# Shared fixtures for every test suite in the repository.
import os

pytest_plugins = ["bos_common.testing"]

# The stack under test exports its traces (scripts/lib.sh, stack_env); the code run in this
# process does not: clients instrumented here would replace the traceparent a test sends.
for _name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_BSP_SCHEDULE_DELAY"):
    os.environ.pop(_name, None)
