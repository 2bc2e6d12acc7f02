"""The row type of merchant webhooks' data: a table's row (or the changes to one) as a
dict of column name to value, as the repository reads it and the service works on it."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]
