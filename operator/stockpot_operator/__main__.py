from stockpot_operator.cli import main

raise SystemExit(main())
