"""What a training run reads (`reader.py`)."""
