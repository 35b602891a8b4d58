"""A sweep: its lifecycle, same-shape groups trained together, launchers and the progress line."""
