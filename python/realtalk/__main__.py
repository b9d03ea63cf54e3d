from realtalk.cli import main

raise SystemExit(main())
