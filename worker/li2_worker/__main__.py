"""``python -m li2_worker [--device ...]``: the same as ``li2lab worker``."""

from li2_worker.main import main

raise SystemExit(main())
