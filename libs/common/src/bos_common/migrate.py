"""`python -m bos_common.migrate [all|<service>...]`: apply services' migrations."""

import sys

from bos_common.migrations import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
