import sys

from .cli import main

if __name__ == "__main__":  # batch workers are spawned processes: they import this module, not run it
    sys.exit(main())
