"""Writes the job pickles the load generator sends (InvocationJob as the
scheduler pickles it, made by the reference peer's make_job), each with the
invocation id 2000000001 that loadgen replaces per task.
Usage: make_jobs.py OUTDIR STAMP LINES LOG_MIB"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'peer'))
from lbpeer import make_job  # noqa: E402

out, stamp, lines, mib = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
jobs = {
    'job_stamp.pickle': [stamp],
    'job_true.pickle': ['/bin/true'],
    'job_lines.pickle': [lines, mib],
    'job_sleep.pickle': ['sleep', '100'],
}
for name, args in jobs.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(make_job(args, 2000000001))
