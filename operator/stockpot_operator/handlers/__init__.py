"""kopf handlers: thin triggers that call the reconcilers (``stockpot operator`` loads this package)."""
