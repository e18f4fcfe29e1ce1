from fashiongan.cli import main

raise SystemExit(main())
