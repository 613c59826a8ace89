"""Pictures of flow for checking an extraction by eye: colour coding, contact sheets and
flow videos, matplotlib rendering."""
