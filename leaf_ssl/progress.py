"""How long-running jobs print elapsed times and ETAs."""


def format_duration(seconds: float) -> str:
    """H:MM:SS, negative times as 0:00:00."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
