"""oncue's benchmarks: oncue beside the Python task queues people would pick instead.

Run with ``python -m bench <workload|all> [--quick|--smoke]``; see bench/README.md.
"""
