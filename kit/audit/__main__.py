import sys

from kit.audit.cli import main

sys.exit(main())
