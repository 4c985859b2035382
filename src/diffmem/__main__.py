import sys

from diffmem.cli import main

sys.exit(main())
