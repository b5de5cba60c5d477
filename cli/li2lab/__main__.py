"""``python -m li2lab ...``: the same as the ``li2lab`` command."""

from li2lab.main import main

raise SystemExit(main())
