"""A scheduler peer in its own process, so that a test can SIGKILL it:
    sched_proc.py PORT
prints one JSON line per request it receives (name, invocation id, exit
code) and `{"ready": "ADDR"}` once it listens."""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core  # noqa: E402


class Sched(core.CampaignScheduler):
    async def handle(self, name, args, frame):
        r = await super().handle(name, args, frame)
        ev = {'name': name}
        if name in ('worker.done', 'worker.dropped') and self.reps:
            ev['iid'] = self.reps[-1][3]
            try:
                job = core.safepickle.check_job(args['task'].encode('latin1'))
                ev['exitcode'] = job.__dict__['_InvocationJob__exitcode']
            except Exception as e:  # noqa: BLE001
                ev['error'] = str(e)
        if name == 'worker.hello':
            ev['addr'] = args['worker_addr']
        print(json.dumps(ev), flush=True)
        return r


async def main():
    s = Sched(port=int(sys.argv[1]))
    await s.start()
    print(json.dumps({'ready': s.addr}), flush=True)
    await asyncio.Event().wait()


if __name__ == '__main__':
    asyncio.get_event_loop().run_until_complete(main())
