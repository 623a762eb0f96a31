import sys

from outsidein.cli import main

sys.exit(main())
