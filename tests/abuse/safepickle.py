"""An allowlisting unpickler for what a worker returns to the scheduler.

The scheduler runs `pickle.loads` on the job in worker.done/dropped (and on a
payload's TaskSpawn in spawn), so anything that loads there runs there. This
unpickler admits each global only in the shape upstream really produces
(PROTOCOL.md 3.1-3.3):

* the lifeblood classes, built with NEWOBJ + BUILD (or copyreg._reconstructor
  with builtins.object in protocols 0/1);
* builtins.getattr only as getattr(<lifeblood.enums class>, <member name>);
* re._compile only as re._compile(str|bytes pattern, int flags);
* builtins.set / builtins.frozenset only over a list/tuple of plain values;
* _codecs.encode only as (str, 'latin1') — bytes in protocols 0-2;

and raises `Refused` naming the global and its arguments for anything else.
It never calls a function it was not built to check."""
import _compat_pickle
import enum
import io
import os
import pickle
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
import lifeblood.enums  # noqa: E402
import lifeblood.environment_resolver  # noqa: E402
import lifeblood.invocationjob  # noqa: E402
import lifeblood.net_classes  # noqa: E402
import lifeblood.taskspawn  # noqa: E402


class Refused(pickle.UnpicklingError):
    pass


CLASSES = {
    ('lifeblood.invocationjob', 'InvocationJob'): lifeblood.invocationjob.InvocationJob,
    ('lifeblood.invocationjob', 'InvocationEnvironment'):
        lifeblood.invocationjob.InvocationEnvironment,
    ('lifeblood.invocationjob', 'InvocationRequirements'):
        lifeblood.invocationjob.InvocationRequirements,
    ('lifeblood.environment_resolver', 'EnvironmentResolverArguments'):
        lifeblood.environment_resolver.EnvironmentResolverArguments,
    ('lifeblood.net_classes', 'WorkerResources'): lifeblood.net_classes.WorkerResources,
    ('lifeblood.taskspawn', 'TaskSpawn'): lifeblood.taskspawn.TaskSpawn,
    ('lifeblood.taskspawn', 'NewTask'): lifeblood.taskspawn.NewTask,
}
SPAWN_ALIASES = ('TaskSpawn', 'NewTask', 'EnvironmentResolverArguments')
PLAIN = (type(None), bool, int, float, str, bytes)


def _enum_classes():
    out = {}
    for k, v in vars(lifeblood.enums).items():
        if isinstance(v, type) and issubclass(v, enum.Enum) and v is not enum.Enum:
            out[k] = v
    return out


ENUMS = _enum_classes()


def _checked_getattr(obj, name, *rest):
    if rest or not (isinstance(obj, type) and obj in ENUMS.values()) \
            or not isinstance(name, str) or name not in obj.__members__:
        raise Refused('builtins.getattr%r is not an enum member lookup' % ((obj, name) + rest,))
    return obj.__members__[name]


def _checked_compile(pattern, flags=0, *rest):
    if rest or not isinstance(pattern, (str, bytes)) or type(flags) is not int:
        raise Refused('re._compile%r is not a pattern' % ((pattern, flags) + rest,))
    return re.compile(pattern, flags)


def _checked_coll(kind):
    def make(items=(), *rest):
        if rest or type(items) not in (list, tuple, set, frozenset) \
                or not all(type(x) in PLAIN for x in items):
            raise Refused('builtins.%s%r is not a set of plain values'
                          % (kind.__name__, (items,) + rest))
        return kind(items)
    return make


def _checked_reconstructor(cls, base, state):
    if cls not in CLASSES.values() or base is not object or state is not None:
        raise Refused('copyreg._reconstructor%r is not a plain instance' % ((cls, base, state),))
    return object.__new__(cls)


def _checked_encode(text, encoding='utf-8', *rest):
    # protocols 0-2 write bytes as _codecs.encode(str, 'latin1')
    if rest or type(text) is not str or encoding not in ('latin1', 'latin-1'):
        raise Refused('_codecs.encode%r is not bytes' % ((text, encoding) + rest,))
    return text.encode('latin1')


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, data, spawn=False):
        super().__init__(io.BytesIO(data))
        self.spawn = spawn

    def find_class(self, module, name):
        # protocols 0-2 spell copyreg/builtins the Python 2 way
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in CLASSES:
            return CLASSES[(module, name)]
        if self.spawn and name in SPAWN_ALIASES and (
                module.rsplit('.', 1)[-1] == 'lifeblood_connection'
                or module.endswith('lifeblood_client.submitting')):
            return CLASSES[('lifeblood.taskspawn', 'TaskSpawn')] if name == 'TaskSpawn' else \
                CLASSES[('lifeblood.taskspawn', 'NewTask')] if name == 'NewTask' else \
                CLASSES[('lifeblood.environment_resolver', 'EnvironmentResolverArguments')]
        if module == 'lifeblood.enums' and name in ENUMS:
            return ENUMS[name]
        if (module, name) == ('builtins', 'getattr'):
            return _checked_getattr
        if (module, name) == ('re', '_compile'):
            return _checked_compile
        if (module, name) == ('builtins', 'set'):
            return _checked_coll(set)
        if (module, name) == ('builtins', 'frozenset'):
            return _checked_coll(frozenset)
        if (module, name) == ('copyreg', '_reconstructor'):
            return _checked_reconstructor
        if (module, name) == ('_codecs', 'encode'):
            return _checked_encode
        if (module, name) == ('builtins', 'object'):
            return object
        raise Refused('global %s.%s is outside upstream\'s shapes' % (module, name))

    def persistent_load(self, pid):
        raise Refused('persistent id %r' % (pid,))


def check_job(data):
    """Loads a returned job; raises Refused (or UnpicklingError) when it is
    not a plain InvocationJob of upstream's shapes."""
    obj = SafeUnpickler(data).load()
    if type(obj) is not lifeblood.invocationjob.InvocationJob:
        raise Refused('top object is %s, not InvocationJob' % type(obj).__name__)
    return obj


def check_spawn(data):
    obj = SafeUnpickler(data, spawn=True).load()
    if type(obj) not in (lifeblood.taskspawn.TaskSpawn, lifeblood.taskspawn.NewTask):
        raise Refused('top object is %s, not TaskSpawn' % type(obj).__name__)
    return obj
