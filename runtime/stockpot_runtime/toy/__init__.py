"""An offline toy model (tiny random Llama + byte-level BPE tokenizer) and synthetic tasks with checkable answers."""
