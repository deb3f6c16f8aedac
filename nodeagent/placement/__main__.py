"""`python -m nodeagent.placement`: the placement check on its own, as `nodeagent check-placement`."""

from nodeagent.placement.cli import main

raise SystemExit(main())
