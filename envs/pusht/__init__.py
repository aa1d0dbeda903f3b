"""Push-T: the paper's planar pushing task (env, geometry, renderer, scripted demonstrator)."""
