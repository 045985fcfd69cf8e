"""Make this directory's support module importable (uniquely named: several plugins' tests run together)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oidc_support import *
