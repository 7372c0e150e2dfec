import sys

from eventwire._cli import main

sys.exit(main())
