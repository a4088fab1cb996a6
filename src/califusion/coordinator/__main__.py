"""``python -m califusion.coordinator --port P --database-url U --blob-dir D``."""

from califusion.coordinator.server import main

main()
