"""The C TOML reader against Python's tomllib (the reference TOML 1.0
parser in the standard library): every valid document must parse to the
same values, every invalid one must be rejected with a line and column.
Dates and times are out of scope (the reader rejects them on purpose), and
integers beyond 64 bits are errors as TOML 1.0 requires (tomllib keeps them).

Usage: toml_vs_tomllib.py HELPER"""
import json
import math
import subprocess
import sys
import tomllib

VALID = [
    '',
    '# only a comment\n',
    'a = 1\nb = "two"\nc = 3.5\nd = true\ne = false\n',
    'int1 = +99\nint2 = 42\nint3 = 0\nint4 = -17\nint5 = 1_000\nint6 = 5_349_221\n',
    'hex = 0xDEADbeef\noct = 0o755\nbin = 0b11010110\nbig = 9223372036854775807\n'
    'neg = -9223372036854775808\n',
    'f1 = +1.0\nf2 = 3.1415\nf3 = -0.01\nf4 = 5e+22\nf5 = 1e06\nf6 = -2E-2\nf7 = 6.626e-34\n'
    'f8 = 224_617.445_991_228\nsf1 = inf\nsf2 = +inf\nsf3 = -inf\nsf4 = nan\nsf5 = -0.0\n',
    's = "tab\\there \\"quoted\\" back\\\\slash \\u00e9 \\U0001F3AC"\n',
    "lit = 'C:\\Users\\nodejs\\templates'\nq = '<\\i\\c*\\s*>'\n",
    'ml = """\nRoses are red\nViolets are blue"""\n',
    'ml2 = """\\\n   The quick brown \\\n\n   fox."""\n',
    'ml3 = """Here are two quotation marks: "". Simple enough."""\nml4 = """""x"""""\n',
    "raw = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''\n",
    "raw2 = '''That's still pointless'''\nraw3 = ''''That,' she said, 'is enough.''''\n",
    '[worker]\nlisten_to_broadcast = true\nscheduler_address = "192.168.0.2:1386"\n'
    '[resources]\ncpu_count = 32\ncpu_mem = "128G"\ngpu_count = 1\ngpu_mem = "8G"\n',
    'name = "Orange"\nphysical.color = "orange"\nphysical.shape = "round"\nsite."google.com" = true\n',
    'fruit.apple.smooth = true\nfruit.orange = 2\n',
    '"127.0.0.1" = "value"\n"character encoding" = "value"\n\'key2\' = "value"\n'
    '"ʎǝʞ" = "value"\nbare_key-1 = 1\n1234 = "num key"\n',
    '[dog."tater.man"]\ntype.name = "pug"\n[ a . b . c ]\nx = 1\n',
    '[x.y.z.w]\n[x]\na = 1\n',
    'arr = [ 1, 2, 3 ]\nnested = [ [ 1, 2 ], ["a", "b", "c"] ]\nmixed = [ 0.1, "x", { a = 1 } ]\n'
    'multi = [\n  1, # one\n  2,\n  # comment line\n  3,\n]\nempty = []\n',
    'point = { x = 1, y = 2 }\nanimal = { type.name = "pug" }\nempty = {}\n'
    'nested = { a = { b = { c = [1, {d = "e"}] } } }\n',
    '[[products]]\nname = "Hammer"\nsku = 738594937\n\n[[products]]\n\n[[products]]\n'
    'name = "Nail"\nsku = 284758393\ncolor = "gray"\n',
    '[[fruits]]\nname = "apple"\n[fruits.physical]\ncolor = "red"\n[[fruits.varieties]]\n'
    'name = "red delicious"\n[[fruits.varieties]]\nname = "granny smith"\n[[fruits]]\n'
    'name = "banana"\n[[fruits.varieties]]\nname = "plantain"\n',
    '[packages."houdini.py3_10"."20.0.506"]\nlabel = "SideFX Houdini"\npriority = 50\n'
    'env.PATH.prepend = "/opt/hfs20.0.506/bin"\nenv.PYTHONPATH.append = ["/a", "/b"]\n'
    'env.HOUDINI_VERSION = "20.0.506"\n',
    'a = 1 # trailing comment\r\nb = 2\r\n',
    'k = "x"\t# tab before comment\n',
    'key = """a\\\r\n  b"""\n',
]

INVALID = [
    'a = \n', 'a = 1 b = 2\n', 'a = 1\na = 2\n', '[t]\n[t]\n', 'a = 01\n', 'a = 1__0\n',
    'a = _1\n', 'a = 1_\n', 'a = 0x\n', 'a = +0x10\n', 'a = 1.\n', 'a = .5\n', 'a = 1e\n',
    'a = "unterminated\n', "a = 'x\n", 'a = """x\n', 'a = "\\x41"\n', 'a = "\\uD800"\n',
    'a = "\\u12"\n', 'a = [1, 2\n', 'a = [1,,2]\n', 'a = { b = 1, }\n', 'a = { b = 1\n}\n',
    'a = {b = 1}\na.c = 2\n', 'a.b = 1\n[a]\n', 'a = 1\n[a]\n', '[a]\nb = 1\n[a.b]\n',
    '[[a]]\n[a]\n', 'a = [1]\n[[a]]\n', '[a\n', '[[a]\n', '= 1\n', 'a b = 1\n', 'a = true1\n',
    'a = TRUE\n', 'a = 1979-05-27\n', 'a = 07:32:00\n', 'a = 1979-05-27T07:32:00Z\n',
    'a = 9223372036854775808\n', 'a = "tab\x01"\n', 'a = 1 # \x00\n', 'a = [1 2]\n',
    'x = 1\n[x.y]\n', '"""a""" = 1\n', 'a.b. = 1\n[a]\n', '[a.]\n', 'a = { b = 1, b = 2 }\n', 'a = "\\e"\n',
]


def norm(v):
    """tomllib's value as the helper prints it (JSON; special floats as strings)."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, float):
        if math.isnan(v):
            return 'nan'
        if math.isinf(v):
            return 'inf' if v > 0 else '-inf'
    return v


def run(helper, text):
    p = subprocess.run([helper], input=text.encode('utf-8'), stdout=subprocess.PIPE)
    return p.returncode, p.stdout.decode('utf-8')


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def main():
    helper = sys.argv[1]
    passed = failed = 0
    for text in VALID:
        want = norm(tomllib.loads(text))
        rc, out = run(helper, text)
        if rc != 0:
            print('valid document rejected: %r -> %s' % (text, out.strip()))
            failed += 1
            continue
        got = json.loads(out)
        if not same(got, want):
            print('different values for %r:\n  C:       %r\n  tomllib: %r' % (text, got, want))
            failed += 1
            continue
        passed += 1
    for text in INVALID:
        try:
            tomllib.loads(text)
            ok_in_python = True
        except tomllib.TOMLDecodeError:
            ok_in_python = False
        rc, out = run(helper, text)
        # Stricter than tomllib on purpose: dates (out of scope) and integers
        # beyond 64 bits (TOML 1.0 requires an error; Python has big ints).
        stricter = any(c in text for c in ('1979', '07:32', '9223372036854775808'))
        if ok_in_python and not stricter:
            print('test case is valid TOML, fix the test: %r' % text)
            failed += 1
        elif rc == 0:
            print('invalid document accepted: %r -> %s' % (text, out.strip()))
            failed += 1
        elif not out.startswith('ERROR: line '):
            print('error without line/column for %r: %s' % (text, out.strip()))
            failed += 1
        else:
            passed += 1
    print('toml vs tomllib: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
