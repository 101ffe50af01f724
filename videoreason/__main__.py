"""``python -m videoreason`` (how ``torchrun -m videoreason fit ...`` launches the CLI on every rank)."""

import sys

from videoreason.cli import main

sys.exit(main())
