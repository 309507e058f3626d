"""`serve --workers N`: N translator processes on one machine, each a cluster node on the shared Redis
store, all bound to the same UDP ports with SO_REUSEPORT (the kernel hashes a source address to one of
them), under one supervisor that runs the embedded emulator once, restarts a worker that dies, and serves
the workers' metrics summed. docs/cluster.md, "Workers"."""
