"""Tables of the tokens schema."""

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("tokens")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
