#!/usr/bin/env python3
"""genl.py's command line (same arguments), through an import of genl, so
that its bytecode is cached (PYTHONPYCACHEPREFIX, set by tools/guest-init).
Run as a script from the read-only repository, genl.py is compiled at
every start: about 0.6 s of each call in a TCG guest."""
import sys

import genl

sys.exit(genl.main())
