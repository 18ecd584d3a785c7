"""The module stable-audio-tools loads at training time (``get_custom_metadata``).

Standard library only: SAT users often train in an environment of their own.
Filled in by the builder issue; empty until then.
"""
