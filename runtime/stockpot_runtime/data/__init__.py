"""The runtime data pipeline: read rows, normalise formats, render chat templates, mask, pack and collate."""
