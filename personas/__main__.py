import sys

from personas.cli import main

sys.exit(main())
