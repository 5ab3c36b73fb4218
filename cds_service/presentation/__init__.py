"""Presentation: evaluations → what a person reads (the card), with record text always escaped."""
