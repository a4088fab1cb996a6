"""``python -m califusion.coordinator --port P --database-url U --blob-dir D|--blob-url U``."""

from califusion.coordinator.server import main

main()
