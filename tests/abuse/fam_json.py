"""JSON family (PROTOCOL.md 2): deep nesting of arrays and objects, huge
strings and numbers, bad escapes, lone surrogates, invalid UTF-8, bodies that
are not the command envelope, and wrong types for every argument of every
command a scheduler sends to a worker. Well-formed requests of a command
that has a reply must be answered (a bad `task` with a non-zero status)."""
import json

from core import Case, show


def env(name, args):
    return json.dumps({'command': {'name': name, 'arguments': args}}).encode()


def cases(full):
    out = []

    def add(name, fn, heavy=False, shows=''):
        out.append(Case('json', name, fn, heavy, shows))

    def body_case(name, body, heavy=False, expect=None):
        """expect: None (only the invariants), 'reply' (any reply within 2 s),
        'refused' (a reply with a non-zero status)."""
        async def fn(c):
            r = await c.request(body, reply_timeout=2.0 if expect else None)
            if expect == 'reply' and r is None:
                raise AssertionError('no reply within 2 s')
            if expect == 'refused' and not (isinstance(r, dict) and r.get('status') not in
                                            (0, None)):
                raise AssertionError('task not refused: %r' % (r,))
        add(name, fn, heavy, show(body))

    # ---- nesting --------------------------------------------------------------
    depths = (64, 1000, 10000, 50000, 100000) + ((400000,) if full else ())
    for d in depths:
        heavy = d >= 50000
        # the issue's own inputs (100,000 deep arrays and objects) always run
        body_case('nest-array-%d' % d, b'[' * d + b']' * d, heavy and d != 100000)
        body_case('nest-object-%d' % d, b'{"a":' * d + b'1' + b'}' * d, heavy and d != 100000)
        body_case('nest-array-unclosed-%d' % d, b'[' * d, heavy)
        body_case('nest-in-task-arg-%d' % d,
                  b'{"command": {"name": "task", "arguments": {"task": ' + b'[' * d + b']' * d
                  + b'}}}', heavy)
        body_case('nest-in-log-arg-%d' % d,
                  b'{"command": {"name": "log", "arguments": {"invoc_id": ' + b'{"a":' * d
                  + b'1' + b'}' * d + b'}}}', heavy)
        body_case('nest-mixed-%d' % d, b'[{"a":' * (d // 2) + b'0' + b'}]' * (d // 2), heavy)

    # ---- sizes ---------------------------------------------------------------
    for mib in (1, 8) + ((32,) if full else ()):
        body_case('huge-string-task-%dMiB' % mib, env('task', {'task': 'A' * (mib << 20),
                                                               'reply_to': None}),
                  mib >= 8, expect='refused')
        body_case('huge-unknown-key-%dMiB' % mib, env('ping', {'x': 'B' * (mib << 20)}),
                  mib >= 8)
    body_case('many-keys-100k', b'{"command": {"name": "ping", "arguments": {'
              + b','.join(b'"k%d": %d' % (i, i) for i in range(100000)) + b'}}}')
    body_case('many-ints-1M', b'{"command": {"name": "ping", "arguments": {"a": ['
              + b','.join(b'1' for _ in range(1000000)) + b']}}}', True)
    for digits in (20, 4300, 100000, 1000000):
        body_case('long-int-log-%d-digits' % digits,
                  b'{"command": {"name": "log", "arguments": {"invoc_id": 1'
                  + b'7' * (digits - 1) + b'}}}', digits >= 100000, expect='reply')
    body_case('long-float-1M-digits', b'{"command": {"name": "ping", "arguments": {"f": 0.'
              + b'3' * 1000000 + b'}}}', True)
    body_case('exponent-huge', b'{"command": {"name": "log", "arguments": '
              b'{"invoc_id": 1e999999999}}}', expect='reply')
    body_case('many-escapes-1M', b'{"command": {"name": "ping", "arguments": {"s": "'
              + b'\\u00e9' * 200000 + b'"}}}')

    # ---- escapes, unicode, utf-8 ------------------------------------------------
    strs = [b'"\\x41"', b'"\\u12"', b'"\\uZZZZ"', b'"\\ud800"', b'"\\udc00"',
            b'"\\ud800\\u0041"', b'"\\udbff\\udfff"', b'"\\u0000"', b'"a\x01b"', b'"\t"',
            b'"\\', b'"\xff"', b'"\xc0\x80"', b'"\xed\xa0\x80"', b'"\xf8\x88\x80\x80\x80"',
            b'"\xf4\x90\x80\x80"', b'"\xe2\x82"', b'"\\U0001F600"', b'"\\/"', b'"\\ "']
    for i, s in enumerate(strs):
        body_case('escape-%d-log' % i, b'{"command": {"name": "log", "arguments": '
                  b'{"invoc_id": ' + s + b'}}}')
        body_case('escape-%d-name' % i, b'{"command": {"name": ' + s + b'}}')
        body_case('escape-%d-task' % i, b'{"command": {"name": "task", "arguments": '
                  b'{"task": ' + s + b', "reply_to": null}}}')
    body_case('bom', b'\xef\xbb\xbf' + env('ping', {}))
    body_case('nul-after', env('ping', {}) + b'\0')
    body_case('utf16', env('ping', {}).decode().encode('utf-16'))

    # ---- not the envelope ---------------------------------------------------------
    for b in (b'', b' ', b'[]', b'1', b'"x"', b'null', b'true', b'{}', b'{"command": 1}',
              b'{"command": []}', b'{"command": {}}', b'{"command": {"name": 1}}',
              b'{"command": {"name": null}}', b'{"command": {"name": "ping", "arguments": []}}',
              b'{"command": {"name": "ping", "arguments": "x"}}',
              b'{"command": {"name": "ping", "arguments": 5}}',
              b'{"command": {"name": "ping"}, "command": 1}',
              b'{"command": {"name": "ping"}} trailing', b'{"command": {"name": "ping"}}}',
              b'{"command": {"name": "ping",}}', b"{'command': 1}", b'{"a":NaN}',
              b'{"a":Infinity,"b":-Infinity}', b'{"a":nan}', b'{"a":01}', b'{"a":1.}',
              b'{"a":.5}', b'{"a":+1}', b'{"a":0x10}', b'{"a":--1}', b'{"a":1e}',
              b'{"a" 1}', b'{"a":tru}', b'{"a":"\n"}', b'/*c*/{}', b'{"command":{"name":"'
              + b'n' * 100000 + b'"}}'):
        body_case('shape-' + show(b, 30), b)

    # ---- wrong types for every argument --------------------------------------------
    wrong = [None, True, 1.5, -1, 2 ** 70, -2 ** 70, '', 'x', [], {}, [1], {'a': 1},
             '\ud800', 1e308, float('nan'), '127.0.0.1:1|' * 50]
    valid_job = None

    def task_arg(v, key):
        async def fn(c):
            nonlocal valid_job
            import lbpeer
            args = {'task': lbpeer.make_job(['/bin/true'], lbpeer.next_invocation_id())
                    .decode('latin1'), 'reply_to': c.s.addr}
            args[key] = v
            r = await c.request(json.dumps({'command': {'name': 'task', 'arguments': args}})
                                .encode(), reply_timeout=2.0)
            if key == 'task':
                if not (isinstance(r, dict) and r.get('status') not in (0, None)):
                    raise AssertionError('task=%r not refused: %r' % (v, r))
            elif r is None:
                raise AssertionError('reply_to=%r: no reply' % (v,))
            elif isinstance(r, dict) and r.get('status') == 0:
                c.s.busy = True              # it runs /bin/true; let it finish
                for _ in range(100):
                    if (await c.command('ping', {}, 1.0) or {}).get('ps') == 0:
                        break
                    import asyncio
                    await asyncio.sleep(0.05)
                c.s.busy = False
        return fn
    for v in wrong:
        add('task.task=%s' % show(json.dumps(v), 20), task_arg(v, 'task'))
        add('task.reply_to=%s' % show(json.dumps(v), 20), task_arg(v, 'reply_to'))
    add('task.no-arguments', lambda c: _expect(c, 'task', {}, 'refused'))
    add('task.extra-arguments', lambda c: _expect(c, 'task', {'task': 'x', 'reply_to': None,
                                                              'evil': [1] * 1000}, 'refused'))
    for v in wrong:
        add('log.invoc_id=%s' % show(json.dumps(v), 20),
            lambda c, v=v: _expect(c, 'log', {'invoc_id': v}, 'reply'))
    add('log.no-arguments', lambda c: _expect(c, 'log', {}, 'reply'))
    im = {'dst_invoc_id': 1, 'src_invoc_id': 2, 'addressee': 'a', 'addressee_timeout': 0.1,
          'message_data_raw': 'x'}
    for key in im:
        for v in wrong:
            a = dict(im)
            a[key] = v
            add('invocation_message.%s=%s' % (key, show(json.dumps(v), 20)),
                lambda c, a=a: _expect(c, 'invocation_message', a, 'reply'))
    for name in ('ping', 'drop', 'status', 'nosuchcommand', 'worker.hello', 'worker.done',
                 'spawn', 'tupdateattribs'):
        for v in (None, [1, 2], 'x', {'invoc_id': 'x', 'task': 1}):
            add('%s.args=%s' % (name, show(json.dumps(v), 20)),
                lambda c, n=name, v=v: _expect(c, n, v, 'reply' if n in ('ping', 'drop')
                                               and isinstance(v, dict) else None))
    return out


async def _expect(c, name, args, expect):
    r = await c.command(name, args, 2.0 if expect else None)
    if expect == 'reply' and r is None:
        raise AssertionError('%s: no reply within 2 s' % name)
    if expect == 'refused' and not (isinstance(r, dict) and r.get('status') not in (0, None)):
        raise AssertionError('%s not refused: %r' % (name, r))
