"""Pure renderers: config in, argv lists / script text out. No I/O."""
