"""kit.report: runs, blends, studies and the leaderboard as pictures (`python -m kit.report --help`)."""
from kit.report.cli import main

__all__ = ["main"]
