"""`python -m simulator [serve] [--host H] [--port N] [--seed N] [sizes] [--faults SPEC]`."""

from simulator.serve import main

raise SystemExit(main())
