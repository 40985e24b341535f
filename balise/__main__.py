from balise.cli import main

raise SystemExit(main())
