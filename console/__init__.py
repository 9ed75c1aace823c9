"""What a run shows on the terminal: its own lines, without Beam's and warcio's chatter (console/quiet.py)."""
