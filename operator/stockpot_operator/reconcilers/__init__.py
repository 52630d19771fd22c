"""One reconciler per kind: observe the world, make the children match the spec, write the status once."""
