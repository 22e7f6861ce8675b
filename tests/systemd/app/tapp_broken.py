"""An app that cannot be imported: the unit must end failed and say why."""

raise ImportError("tapp-broken-marker: this application cannot be loaded")
