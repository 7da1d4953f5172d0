"""Pipeline stages. Each module exposes VERSION, identity(ctx, config) and run(ctx, config)."""
