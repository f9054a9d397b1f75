import os

# Keep BLAS/Numba from oversubscribing the small CI machine when pytest runs in parallel jobs.
os.environ.setdefault("MPLBACKEND", "Agg")
