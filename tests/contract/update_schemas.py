"""Commit the JSON Schema of every newly registered event:
`.venv/bin/python tests/contract/update_schemas.py`.

It never overwrites an existing schema: a published event's shape is frozen, and a
breaking change is a new version (`payment.succeeded.v2`) with a schema of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bos_common.events import json_schemas

SCHEMAS = Path(__file__).parent / "schemas"


def schema_path(event_type: str) -> Path:
    return SCHEMAS / f"{event_type}.json"


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    for event_type, schema in json_schemas().items():
        path = schema_path(event_type)
        if path.exists():
            continue
        path.write_text(render(schema))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
