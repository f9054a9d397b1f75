"""The problem description and the record: the parameter table, the setting, the result and
its status vocabulary, the diffusion ``a(t), h(t)``, the registry of the seams and the shared
input checks.  It imports no seam's plug-in and no evaluator."""
