"""Text normalizations that more than one core needs a name for (`text.py`)."""
