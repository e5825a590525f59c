import sys

from kit.report import main

sys.exit(main())
