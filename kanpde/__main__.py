import sys

from kanpde.cli import main

sys.exit(main())
