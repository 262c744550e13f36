"""``python -m openpose_plus.commands`` is ``openpose-plus``."""
import sys

from openpose_plus.commands import main

sys.exit(main())
