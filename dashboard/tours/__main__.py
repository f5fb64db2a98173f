"""``python -m dashboard.tours [FILE …]``: check tour files and say what is wrong with them."""
import sys

from dashboard.tours import main

sys.exit(main())
