"""Writes the job pickles the load generator sends (InvocationJob as the
scheduler pickles it, made by the reference peer's make_job), each with the
invocation id 2000000001 that loadgen replaces per task.
The tree payload (FORKTREE, 1,000 processes) runs as nobody with a process
limit: RLIMIT_NPROC does not bind root.
Usage: make_jobs.py OUTDIR STAMP LINES LOG_MIB FORKTREE"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'peer'))
from lbpeer import make_job  # noqa: E402

out, stamp, lines, mib, forktree = sys.argv[1:6]
os.makedirs(out, exist_ok=True)
jobs = {
    'job_stamp.pickle': [stamp],
    'job_true.pickle': ['/bin/true'],
    'job_lines.pickle': [lines, mib],
    'job_sleep.pickle': ['sleep', '100'],
}
# 1,000 processes as nobody, at most 1,200 (RLIMIT_NPROC does not bind root);
# the orphans outlive their parent (the crash benchmark), for 60 s at most.
nobody = 'ulimit -u 1200 && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- '
jobs['job_tree.pickle'] = ['/bin/bash', '-c', nobody + '%s 1000 120' % forktree]
jobs['job_orphans.pickle'] = ['/bin/bash', '-c', nobody + '%s 1000 60 orphans' % forktree]
for name, args in jobs.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(make_job(args, 2000000001))
