"""Status bookkeeping: conditions and phases, as pure functions over status dicts."""
