"""`python -m collector.sim serve ...`: the simulator without the rest of kubeinv."""

from collector.sim.serve import main

raise SystemExit(main())
