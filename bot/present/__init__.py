"""The presentation layer: what every message says, chat-neutral (see model.py); renderers draw it."""
