"""Duplicate removal cores: text keys and survivor choice. The shuffles that use them live in pipelines/."""
