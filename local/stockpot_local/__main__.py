"""``python -m stockpot_local``: the local cluster CLI (see ``stockpot_local.cli``)."""

from stockpot_local.cli import main

raise SystemExit(main())
